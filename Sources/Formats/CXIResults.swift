import Foundation
import Numerics

/// Experiment geometry stored with a pattern or a result (SI units; energy in eV; circle
/// angles in degrees, by the beamline's motor names, as the beamline records them).
///
/// `prepare` fills what it reads from the beamline's files; `phase` copies it into the
/// results and adds the real-space grid (voxel sizes and basis) of the object it wrote;
/// `analyze`, `report` and `view` read it back. Older files hold only the first six values
/// (and `out_of_plane` among the extras) and still read.
public struct CXIGeometry: Equatable, Sendable {
    /// Photon energy (eV); stored as CXI's source_1/energy in joules.
    public var energy: Double?
    /// Detector angle 2θ (rad).
    public var twoTheta: Double?
    /// Sample–detector distance (m).
    public var detectorDistance: Double?
    /// Detector pixel size (m) along the columns (x_pixel_size); also along the rows unless
    /// `rowPixelSize` says otherwise.
    public var pixelSize: Double?
    /// Rocking-curve angular step (rad).
    public var rockingStep: Double?
    /// Scattering vector Q (1/m), three components (lab x, y, z).
    public var qVector: [Double]?
    /// Any other instrument number, stored as /entry_1/instrument_1/<name>.
    public var extra: [String: Double]

    /// Pixel size along the detector rows (y_pixel_size, m) when it differs from `pixelSize`.
    public var rowPixelSize: Double?
    /// Detector elevation out of the horizontal plane (rad; `BraggGeometry.outOfPlane`).
    public var outOfPlane: Double?
    /// The beamline (`bragg prepare --beamline` name, e.g. "34idc").
    public var beamline: String?
    /// Every sample and detector circle angle (degrees) by motor name, at the pattern's
    /// centre (the rocking circle at the centre frame).
    public var angles: [String: Double]
    /// The rocked circle's name (e.g. "Theta") and its axis in the lab frame.
    public var rockingCircle: String?
    public var rockingAxis: [Double]?
    /// Region of interest: first (row, column) of the frames on the full detector, the full
    /// detector's (rows, columns), and the full-detector pixel of the pattern's centre.
    public var roiOrigin: [Int]?
    public var detectorShape: [Int]?
    public var peakPixel: [Double]?
    /// The direct beam's full-detector pixel at zero detector angles (row, column), if known.
    public var directBeam: [Double]?
    /// The diffraction geometry as named scalars (the diffractometer model's serialisation:
    /// vectors by component, angles, sizes), stored under instrument_1/geometry/.
    public var model: [String: Double]
    /// Where the geometry came from (e.g. "example.spec #S 54"), and other text worth keeping.
    public var notes: [String: String]
    /// The array the geometry describes: its shape (frames, rows, columns) and, for results,
    /// the real-space voxel edge along each array axis (m) and the real-space basis (three
    /// columns a_0, a_1, a_2 as lab x, y, z in m: voxel n sits at A·(n − N/2)).
    public var shape: [Int]?
    public var voxelSize: [Double]?
    public var realSpaceBasis: [[Double]]?

    public init(energy: Double? = nil, twoTheta: Double? = nil, detectorDistance: Double? = nil,
                pixelSize: Double? = nil, rockingStep: Double? = nil, qVector: [Double]? = nil,
                extra: [String: Double] = [:]) {
        self.energy = energy; self.twoTheta = twoTheta; self.detectorDistance = detectorDistance
        self.pixelSize = pixelSize; self.rockingStep = rockingStep; self.qVector = qVector; self.extra = extra
        self.angles = [:]; self.model = [:]; self.notes = [:]
    }

    public var isEmpty: Bool {
        energy == nil && twoTheta == nil && detectorDistance == nil && pixelSize == nil &&
            rockingStep == nil && qVector == nil && extra.isEmpty && rowPixelSize == nil && outOfPlane == nil &&
            beamline == nil && angles.isEmpty && rockingCircle == nil && rockingAxis == nil && roiOrigin == nil &&
            detectorShape == nil && peakPixel == nil && directBeam == nil && model.isEmpty && notes.isEmpty &&
            shape == nil && voxelSize == nil && realSpaceBasis == nil
    }

    /// Pixel size along the rows (m).
    public var pixelSizeRow: Double? { rowPixelSize ?? pixelSize }
}

/// A reconstruction result in the CXI layout of DESIGN.md. Every field is optional;
/// `read(from:)` returns what `write(to:)` stored.
///
/// Layout:
/// - /entry_1/image_1/data: complex64 object; /entry_1/image_1/support (uint8 when binary)
/// - /entry_1/data_1/data: the pattern; /entry_1/data_1/mask (uint8 when binary; nonzero = bad)
/// - /entry_1/image_1/process_1: parameters as attributes; metrics/<name> scalars;
///   curves/<name> 1D float64 (loss curves); arrays/<name> any extra arrays
/// - /entry_1/instrument_1: source_1/energy (J), detector_1/distance, x_pixel_size,
///   y_pixel_size (m), two_theta (rad), rocking_step (rad), q_vector (1/m), extra scalars;
///   name (beamline), out_of_plane (rad), angles/<circle> (deg), rocking_circle,
///   rocking_axis, detector_1/roi_origin, detector_shape, peak_pixel, direct_beam,
///   geometry/<name> (the diffractometer model's scalars), notes/<name> (text),
///   grid_shape, voxel_size (m, per array axis), real_space_basis (m, 3×3)
public struct CXIResults: @unchecked Sendable {
    public static let objectPath = "/entry_1/image_1/data"
    public static let supportPath = "/entry_1/image_1/support"
    public static let patternPath = "/entry_1/data_1/data"
    public static let maskPath = "/entry_1/data_1/mask"
    public static let processPath = "/entry_1/image_1/process_1"
    public static let instrumentPath = "/entry_1/instrument_1"
    static let electronVolt = 1.602176634e-19

    public var object: ComplexVolume?
    public var support: RealVolume?
    public var pattern: RealVolume?
    public var mask: RealVolume?
    /// Process parameters (algorithm, iterations, β, σ, …) as attributes of process_1.
    public var parameters: [String: HDF5Attribute]
    /// Scalar metrics (χ², support size, …).
    public var metrics: [String: Double]
    /// Curves over iterations (loss, χ²…).
    public var curves: [String: [Double]]
    /// Any other named arrays (kept with their dtype).
    public var arrays: [String: NDArray]
    public var geometry: CXIGeometry
    public var programName: String

    public init(object: ComplexVolume? = nil, support: RealVolume? = nil, pattern: RealVolume? = nil,
                mask: RealVolume? = nil, parameters: [String: HDF5Attribute] = [:], metrics: [String: Double] = [:],
                curves: [String: [Double]] = [:], arrays: [String: NDArray] = [:],
                geometry: CXIGeometry = CXIGeometry(), programName: String = "BraggKit") {
        self.object = object; self.support = support; self.pattern = pattern; self.mask = mask
        self.parameters = parameters; self.metrics = metrics; self.curves = curves; self.arrays = arrays
        self.geometry = geometry; self.programName = programName
    }

    /// A 0/1 volume as uint8 (8× smaller than float32, read back as the same values).
    static func compact(_ v: RealVolume) -> NDArray {
        let binary = v.withUnsafeFloats { b in b.allSatisfy { $0 == 0 || $0 == 1 } }
        guard binary else { return NDArray(v) }
        let bytes = v.withUnsafeFloats { b in b.map { UInt8($0) } }
        return NDArray(bytes, dtype: .uint8, shape: v.shape)
    }

    static func validName(_ name: String, _ what: String, _ path: String) throws {
        if name.isEmpty || name.contains("/") {
            throw FormatError.writeFailed(path: path, reason: "\(what) name '\(name)' must be non-empty and contain no '/'")
        }
    }

    /// Writes the file (safely: temporary name, then rename; `overwrite` to replace).
    public func write(to path: String, overwrite: Bool, compression: Int? = 4) throws {
        for k in metrics.keys { try CXIResults.validName(k, "metric", path) }
        for k in curves.keys { try CXIResults.validName(k, "curve", path) }
        for k in arrays.keys { try CXIResults.validName(k, "array", path) }
        for k in geometry.extra.keys { try CXIResults.validName(k, "geometry value", path) }
        for k in geometry.angles.keys { try CXIResults.validName(k, "circle", path) }
        for k in geometry.model.keys { try CXIResults.validName(k, "geometry value", path) }
        for k in geometry.notes.keys { try CXIResults.validName(k, "geometry note", path) }
        try HDF5File.create(path, overwrite: overwrite) { f in
            try f.write(NDArray([150]) .scalarised(), at: "/cxi_version", compression: nil)
            try f.createGroup("/entry_1")
            try f.setAttribute("NX_class", .string("NXentry"), on: "/entry_1")
            try f.write(string: programName, at: "/entry_1/program_name")
            try f.createGroup("/entry_1/image_1")
            try f.setAttribute("NX_class", .string("NXdata"), on: "/entry_1/image_1")
            try f.write(string: "electron density", at: "/entry_1/image_1/data_type")
            try f.write(string: "real", at: "/entry_1/image_1/data_space")
            if let o = object { try f.write(o, at: CXIResults.objectPath, compression: compression) }
            if let s = support { try f.write(CXIResults.compact(s), at: CXIResults.supportPath, compression: compression) }
            if pattern != nil || mask != nil {
                try f.createGroup("/entry_1/data_1")
                try f.setAttribute("NX_class", .string("NXdata"), on: "/entry_1/data_1")
                try f.write(string: "intensity", at: "/entry_1/data_1/data_type")
                try f.write(string: "diffraction", at: "/entry_1/data_1/data_space")
            }
            if let p = pattern { try f.write(p, at: CXIResults.patternPath, compression: compression) }
            if let m = mask { try f.write(CXIResults.compact(m), at: CXIResults.maskPath, compression: compression) }

            let proc = CXIResults.processPath
            try f.createGroup(proc)
            try f.setAttribute("NX_class", .string("NXprocess"), on: proc)
            // In sorted order: Swift's dictionaries iterate in a different order in each process,
            // and the same run must give the same bytes.
            for (k, v) in parameters.sorted(by: { $0.key < $1.key }) where k != "NX_class" { try f.setAttribute(k, v, on: proc) }
            for (k, v) in metrics.sorted(by: { $0.key < $1.key }) { try f.write(scalar: v, at: "\(proc)/metrics/\(k)") }
            for (k, v) in curves.sorted(by: { $0.key < $1.key }) { try f.write(doubles: v, at: "\(proc)/curves/\(k)") }
            for (k, a) in arrays.sorted(by: { $0.key < $1.key }) { try f.write(a, at: "\(proc)/arrays/\(k)", compression: compression) }

            let g = geometry
            guard !g.isEmpty else { return }
            let ins = CXIResults.instrumentPath
            try f.createGroup(ins)
            try f.setAttribute("NX_class", .string("NXinstrument"), on: ins)
            func put(_ v: Double?, _ p: String, _ unit: String) throws {
                guard let x = v else { return }
                try f.write(scalar: x, at: p)
                try f.setAttribute("units", .string(unit), on: p)
            }
            try put(g.energy.map { $0 * CXIResults.electronVolt }, "\(ins)/source_1/energy", "J")
            try put(g.detectorDistance, "\(ins)/detector_1/distance", "m")
            try put(g.pixelSize, "\(ins)/detector_1/x_pixel_size", "m")
            try put(g.rowPixelSize ?? g.pixelSize, "\(ins)/detector_1/y_pixel_size", "m")
            try put(g.twoTheta, "\(ins)/two_theta", "rad")
            try put(g.rockingStep, "\(ins)/rocking_step", "rad")
            if let q = g.qVector {
                try f.write(doubles: q, at: "\(ins)/q_vector")
                try f.setAttribute("units", .string("1/m"), on: "\(ins)/q_vector")
            }
            for (k, v) in g.extra.sorted(by: { $0.key < $1.key }) { try f.write(scalar: v, at: "\(ins)/\(k)") }
            try put(g.outOfPlane, "\(ins)/out_of_plane", "rad")
            if let b = g.beamline { try f.write(string: b, at: "\(ins)/name") }
            for (k, v) in g.angles.sorted(by: { $0.key < $1.key }) { try put(v, "\(ins)/angles/\(k)", "deg") }
            if let c = g.rockingCircle { try f.write(string: c, at: "\(ins)/rocking_circle") }
            if let a = g.rockingAxis { try f.write(doubles: a, at: "\(ins)/rocking_axis") }
            if let o = g.roiOrigin { try f.write(NDArray(o), at: "\(ins)/detector_1/roi_origin", compression: nil) }
            if let d = g.detectorShape { try f.write(NDArray(d), at: "\(ins)/detector_1/detector_shape", compression: nil) }
            if let p = g.peakPixel { try f.write(doubles: p, at: "\(ins)/detector_1/peak_pixel") }
            if let p = g.directBeam { try f.write(doubles: p, at: "\(ins)/detector_1/direct_beam") }
            for (k, v) in g.model.sorted(by: { $0.key < $1.key }) { try f.write(scalar: v, at: "\(ins)/geometry/\(k)") }
            for (k, v) in g.notes.sorted(by: { $0.key < $1.key }) { try f.write(string: v, at: "\(ins)/notes/\(k)") }
            if let s = g.shape { try f.write(NDArray(s), at: "\(ins)/grid_shape", compression: nil) }
            if let v = g.voxelSize {
                try f.write(doubles: v, at: "\(ins)/voxel_size")
                try f.setAttribute("units", .string("m"), on: "\(ins)/voxel_size")
            }
            if let b = g.realSpaceBasis {
                try f.write(NDArray(b.flatMap { $0 }, shape: [b.count, 3]), at: "\(ins)/real_space_basis", compression: nil)
                try f.setAttribute("units", .string("m"), on: "\(ins)/real_space_basis")
                try f.setAttribute("layout", .string("one row per array axis (frame, row, column): its real-space step as lab x, y, z"),
                                   on: "\(ins)/real_space_basis")
            }
        }
    }

    /// Reads a results file; absent parts stay nil or empty. With `arrays` false the object,
    /// support, pattern and mask are left unread (metadata and geometry only).
    public static func read(from path: String, arrays: Bool = true) throws -> CXIResults {
        let f = try HDF5File(reading: path)
        var r = CXIResults()
        if arrays {
            if f.isDataset(objectPath) { r.object = try f.readComplex(objectPath) }
            if f.isDataset(supportPath) { r.support = try f.readReal(supportPath) }
            if f.isDataset(patternPath) { r.pattern = try f.readReal(patternPath) }
            if f.isDataset(maskPath) { r.mask = try f.readReal(maskPath) }
        }
        if f.isDataset("/entry_1/program_name") { r.programName = (try? f.readString("/entry_1/program_name")) ?? "" }
        if f.isGroup(processPath) {
            r.parameters = try f.attributes(of: processPath).filter { $0.key != "NX_class" }
            for (group, _) in [("metrics", 0), ("curves", 1), ("arrays", 2)] where f.isGroup("\(processPath)/\(group)") {
                for name in try f.members(of: "\(processPath)/\(group)") {
                    let p = "\(processPath)/\(group)/\(name)"
                    guard f.isDataset(p) else { continue }
                    switch group {
                    case "metrics": r.metrics[name] = try f.readScalar(p)
                    case "curves": r.curves[name] = try f.readDoubles(p)
                    default: r.arrays[name] = try f.readArray(p)
                    }
                }
            }
        }
        let ins = instrumentPath
        if f.isGroup(ins) {
            func get(_ p: String) throws -> Double? { f.isDataset(p) ? try f.readScalar(p) : nil }
            var g = CXIGeometry()
            g.energy = try get("\(ins)/source_1/energy").map { $0 / electronVolt }
            g.detectorDistance = try get("\(ins)/detector_1/distance")
            g.pixelSize = try get("\(ins)/detector_1/x_pixel_size")
            g.twoTheta = try get("\(ins)/two_theta")
            g.rockingStep = try get("\(ins)/rocking_step")
            if f.isDataset("\(ins)/q_vector") { g.qVector = try f.readDoubles("\(ins)/q_vector") }
            if f.isDataset("\(ins)/detector_1/y_pixel_size"), let y = try get("\(ins)/detector_1/y_pixel_size"), y != g.pixelSize {
                g.rowPixelSize = y
            }
            g.outOfPlane = try get("\(ins)/out_of_plane")
            if f.isDataset("\(ins)/name") { g.beamline = try f.readString("\(ins)/name") }
            if f.isDataset("\(ins)/rocking_circle") { g.rockingCircle = try f.readString("\(ins)/rocking_circle") }
            if f.isDataset("\(ins)/rocking_axis") { g.rockingAxis = try f.readDoubles("\(ins)/rocking_axis") }
            func ints(_ p: String) throws -> [Int]? { f.isDataset(p) ? try f.readDoubles(p).map { Int($0.rounded()) } : nil }
            g.roiOrigin = try ints("\(ins)/detector_1/roi_origin")
            g.detectorShape = try ints("\(ins)/detector_1/detector_shape")
            g.shape = try ints("\(ins)/grid_shape")
            if f.isDataset("\(ins)/detector_1/peak_pixel") { g.peakPixel = try f.readDoubles("\(ins)/detector_1/peak_pixel") }
            if f.isDataset("\(ins)/detector_1/direct_beam") { g.directBeam = try f.readDoubles("\(ins)/detector_1/direct_beam") }
            if f.isDataset("\(ins)/voxel_size") { g.voxelSize = try f.readDoubles("\(ins)/voxel_size") }
            if f.isDataset("\(ins)/real_space_basis") {
                let b = try f.readDoubles("\(ins)/real_space_basis")
                if b.count == 9 { g.realSpaceBasis = [Array(b[0..<3]), Array(b[3..<6]), Array(b[6..<9])] }
            }
            for (group, kind) in [("angles", 0), ("geometry", 1), ("notes", 2)] where f.isGroup("\(ins)/\(group)") {
                for name in try f.members(of: "\(ins)/\(group)") where f.isDataset("\(ins)/\(group)/\(name)") {
                    let p = "\(ins)/\(group)/\(name)"
                    switch kind {
                    case 0: g.angles[name] = try f.readScalar(p)
                    case 1: g.model[name] = try f.readScalar(p)
                    default: g.notes[name] = try f.readString(p)
                    }
                }
            }
            let known: Set = ["source_1", "detector_1", "two_theta", "rocking_step", "q_vector", "out_of_plane", "name",
                              "rocking_circle", "rocking_axis", "grid_shape", "voxel_size", "real_space_basis",
                              "angles", "geometry", "notes"]
            for name in try f.members(of: ins) where !known.contains(name) {
                let p = "\(ins)/\(name)"
                if f.isDataset(p), let v = try? f.readScalar(p) { g.extra[name] = v }
            }
            // Files of earlier versions kept the detector elevation among the extras.
            if g.outOfPlane == nil, let o = g.extra.removeValue(forKey: "out_of_plane") { g.outOfPlane = o }
            r.geometry = g
        }
        return r
    }
}

extension NDArray {
    /// The same single value as a 0-d array.
    func scalarised() -> NDArray {
        var a = self
        if count == 1 { a.shape = [] }
        return a
    }
}
