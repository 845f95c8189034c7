import Foundation
import Numerics
import Formats
import Preparation

/// Why the geometry glue could not do what was asked: one sentence.
public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case geometry(String)
    case input(String)
    /// An output could not be written.
    case output(String)
    /// No source gave a complete diffraction geometry (a program says which values to give).
    case noGeometry
    /// A monitor named as an HDF5 dataset for scan `scan` (0-based) of `source`, which is not HDF5.
    case monitorNotHDF5(scan: Int, source: String)
    /// Two states of a series share a name (their outputs would collide).
    case duplicateStateName(name: String, paths: [String])
    /// Scan `scan` (0-based) of `source` could not be opened as a frame stack (`reason`
    /// says why; `PreparationError.framesNotFound` when no frames dataset was found).
    case scanUnreadable(scan: Int, source: String, reason: Error)
    /// A file given for a prepared pattern's shape records no crop size and binning.
    case notPrepared(path: String)
    /// `labels` state labels were given for `reconstructions` reconstructions.
    case labelCount(labels: Int, reconstructions: Int)
    /// The reference state named is neither an index nor a state's label.
    case unknownReference(String)
    public static func == (a: PipelineError, b: PipelineError) -> Bool { a.description == b.description }
    public var description: String {
        switch self {
        case .geometry(let s): return s
        case .input(let s): return s
        case .output(let s): return s
        case .noGeometry: return "no geometry: the results files record none and no [geometry] was given"
        case .monitorNotHDF5(let k, let s):
            return "scan \(k + 1) (\(s)): the monitor names an HDF5 dataset, but this scan is not an HDF5 file"
        case .duplicateStateName(let n, let paths):
            return "two states are named \(n) (\(paths.joined(separator: ", "))): their files would overwrite each other; name them apart"
        case .scanUnreadable(let k, let s, let reason):
            return "scan \(k + 1) (\(s)): \(reason)"
        case .notPrepared(let p):
            return "\(p) is not a prepared pattern (it has no crop_size and binning under \(CXIResults.processPath))"
        case .labelCount(let l, let n): return "\(l) state labels for \(n) reconstructions"
        case .unknownReference(let r): return "the reference '\(r)' is neither an index nor a state label"
        }
    }
}

// MARK: - From a beamline scan to the geometry record of a prepared pattern

public enum ScanGeometry {
    /// Where the centre voxel (n/2 per axis) of a prepared pattern lies in the scan: the
    /// frame (fractional) and the full-detector pixel (row, column). A binned voxel n/2
    /// covers raw voxels b·(n/2) … b·(n/2) + b − 1 of the crop, so its centre is
    /// cropStart + b·(n/2) + (b − 1)/2.
    public static func centre(of prepared: PreparedPattern, roiOrigin: (row: Int, column: Int))
        -> (frame: Double, row: Double, column: Double) {
        let c = (0..<3).map { a -> Double in
            let b = prepared.binning[a], n = prepared.cropSize[a] / b
            return Double(prepared.cropStart[a] + b * (n / 2)) + Double(b - 1) / 2
        }
        return (c[0], c[1] + Double(roiOrigin.row), c[2] + Double(roiOrigin.column))
    }

    /// The diffraction geometry of a prepared pattern of `scan` (the pattern's pixels and
    /// frames: binned pixel size and rocking step), from the beamline's circle angles at the
    /// pattern's centre.
    public static func braggGeometry(scan: BeamlineScan, prepared: PreparedPattern) throws -> BraggGeometry {
        let record = try self.record(scan: scan, prepared: prepared)
        guard let g = try record.braggGeometry() else {
            throw PipelineError.geometry("\(scan.scanName): the geometry is incomplete")
        }
        return g
    }

    /// The geometry record `bragg prepare` writes into its CXI file: energy, distance,
    /// pixel sizes and rocking step of the pattern (binned), every circle angle at the
    /// pattern's centre, the beamline, the rocking circle, the region of interest, the
    /// pattern centre's detector pixel, Q and the diffractometer's named scalars.
    public static func record(scan: BeamlineScan, prepared: PreparedPattern) throws -> CXIGeometry {
        var g = CXIGeometry()
        g.beamline = scan.beamline.rawValue
        g.energy = scan.energy
        g.detectorDistance = scan.distance
        let bin = prepared.binning
        if let p = scan.pixelSize {
            g.pixelSize = p.column * Double(bin[2])
            if p.row * Double(bin[1]) != g.pixelSize { g.rowPixelSize = p.row * Double(bin[1]) }
        }
        let c = centre(of: prepared, roiOrigin: scan.roiOrigin)
        var angles = scan.angles
        if let m = scan.rockingMotor, let s = scan.rockingStep, let a0 = angles[m] {
            angles[m] = a0 + s * c.frame
            g.rockingStep = s * Double(bin[0]) * .pi / 180
        }
        g.angles = angles
        g.rockingCircle = scan.rockingMotor
        g.roiOrigin = [scan.roiOrigin.row, scan.roiOrigin.column]
        if let d = scan.detectorShape { g.detectorShape = [d.rows, d.columns] }
        g.peakPixel = [c.row, c.column]
        if let d = scan.directBeam { g.directBeam = [d.row, d.column] }
        g.shape = prepared.pattern.shape
        g.notes = scan.notes
        g.notes["scan"] = scan.scanName
        if bin != [1, 1, 1] { g.notes["binning"] = bin.map(String.init).joined(separator: ",") }
        // The diffractometer: sample and detector circles to Q, the detector's pixel steps and
        // the rocking axis, at the pattern's centre pixel.
        guard var diffractometer = Diffractometer.named(scan.beamline.rawValue) else {
            throw PipelineError.geometry("\(scan.scanName): no diffractometer model for beamline \(scan.beamline.rawValue)")
        }
        if let d = scan.pixelDirections {
            diffractometer.rowPixelDirection = d.row; diffractometer.columnPixelDirection = d.column
            g.notes["pixel_directions"] = "rows \(d.row), columns \(d.column) (lab, from the file)"
        }
        // A detector circle the file does not record would silently sit at zero (no
        // scattering angle): the geometry stays incomplete instead (e.g. an I13-1 file read
        // by the I16/I13 reader: its robot-arm detector is not I16's six-circle).
        // (A circle carrying sample and detector together, SIXS's beta, is left at its zero as
        // before: SIXS files do not record it.)
        let sampleNames = Set(diffractometer.sampleCircles.map { $0.name.lowercased() })
        let unrecorded = diffractometer.detectorCircles
            .filter { !sampleNames.contains($0.name.lowercased()) && $0.reading(in: angles) == nil }.map(\.name)
        if !unrecorded.isEmpty {
            g.notes["geometry"] = "\(diffractometer.name): detector circle(s) \(unrecorded.joined(separator: ", ")) not recorded"
            return g
        }
        guard let energy = scan.energy, let distance = scan.distance, let pixel = scan.pixelSize,
              let circle = scan.rockingMotor, let step = scan.rockingStep else {
            return g   // incomplete: the command names what to give
        }
        let raw: BraggGeometry
        do {
            raw = try diffractometer.braggGeometry(energy: energy, angles: angles, rockingCircle: circle, rockingStep: step,
                                                   distance: distance, pixelSize: pixel, peakPixel: (c.row, c.column),
                                                   directBeam: scan.directBeam)
        } catch let e as NumericsError { throw PipelineError.geometry("\(scan.scanName): \(e)") }
        // The pattern's voxels: binned pixels and frames.
        let bg = BraggGeometry(energy: raw.energy, exitDirection: raw.exitDirection, rowStep: raw.rowStep * Double(bin[1]),
                               columnStep: raw.columnStep * Double(bin[2]), distance: raw.distance,
                               rockingAxis: raw.rockingAxis, rockingStep: raw.rockingStep * Double(bin[0]))
        g.fill(from: bg)
        // detector_1/distance and the pixel sizes stay what the beamline recorded (the camera
        // length and the binned pixel pitch), as in CXI; the vectors above hold the distance
        // to the peak pixel and the pixel steps seen from the sample.
        g.detectorDistance = distance
        g.pixelSize = pixel.column * Double(bin[2])
        g.rowPixelSize = pixel.row * Double(bin[1]) != g.pixelSize ? pixel.row * Double(bin[1]) : nil
        return g
    }
}

// MARK: - Between the record and the diffraction geometry

extension CXIGeometry {
    /// The diffraction geometry this record describes: the diffractometer model's named
    /// scalars when the record holds them (the vector form), else the angle form from the
    /// energy, 2θ, out-of-plane angle, distance, pixel size, rocking step and axis; nil when
    /// a number is missing. Throws when the numbers are there but describe no reflection.
    public func braggGeometry() throws -> BraggGeometry? {
        let g: BraggGeometry
        // A model of other keys (written before the diffractometer model) falls back to the angle form.
        if !model.isEmpty, let m = try? BraggGeometry(scalars: model) {
            g = m
        } else {
            guard let e = energy, let t = twoTheta, let d = detectorDistance, let p = pixelSize, let r = rockingStep else {
                if !model.isEmpty {
                    do { _ = try BraggGeometry(scalars: model) }
                    catch { throw PipelineError.geometry("the recorded geometry is unreadable: \(error)") }
                }
                return nil
            }
            if let rp = rowPixelSize, abs(rp - p) > 1e-9 * p {
                throw PipelineError.geometry("the detector's pixels are \(rp * 1e6) µm × \(p * 1e6) µm (rows × columns) but the record holds no detector vectors to describe them")
            }
            var axis = Vector3(0, 1, 0)
            if let a = rockingAxis, a.count == 3 { axis = Vector3(a[0], a[1], a[2]) }
            g = BraggGeometry(energy: e, twoTheta: t, outOfPlane: outOfPlane ?? extra["out_of_plane"] ?? 0, distance: d,
                              pixelSize: p, rockingStep: r, rockingAxis: axis)
        }
        if let problem = g.problem { throw PipelineError.geometry("invalid geometry: \(problem)") }
        return g
    }

    /// Sets every number derived from `g`: energy, 2θ, out-of-plane angle, distance, pixel
    /// sizes, rocking step and axis, Q and the model's named scalars.
    public mutating func fill(from g: BraggGeometry) {
        energy = g.energy; twoTheta = g.twoTheta; outOfPlane = g.outOfPlane; detectorDistance = g.distance
        pixelSize = g.columnPixelSize
        rowPixelSize = abs(g.rowPixelSize - g.columnPixelSize) > 1e-12 * g.columnPixelSize ? g.rowPixelSize : nil
        rockingStep = g.rockingStep
        rockingAxis = [g.axis.x, g.axis.y, g.axis.z]
        qVector = [g.q.x, g.q.y, g.q.z]
        model = g.scalars
    }

    /// The record of a geometry given whole (experiment file, command line).
    public init(_ g: BraggGeometry) {
        self.init()
        fill(from: g)
    }

    /// What `table.json` and reports show of the record (units in the names).
    public var summary: [String: Any] {
        var d: [String: Any] = [:]
        if let v = beamline { d["beamline"] = v }
        if let v = energy { d["energy_eV"] = v }
        if let v = detectorDistance { d["distance_m"] = v }
        if let v = pixelSize { d["pixel_size_column_m"] = v }
        if let v = pixelSizeRow { d["pixel_size_row_m"] = v }
        if let v = twoTheta { d["two_theta_deg"] = v * 180 / .pi }
        if let v = outOfPlane { d["out_of_plane_deg"] = v * 180 / .pi }
        if let v = rockingStep { d["rocking_step_deg"] = v * 180 / .pi }
        if let v = rockingCircle { d["rocking_circle"] = v }
        if let v = rockingAxis { d["rocking_axis_xyz"] = v }
        if !angles.isEmpty { d["angles_deg"] = angles }
        if let v = qVector {
            d["q_vector_xyz_per_m"] = v
            d["q_magnitude_per_m"] = (v.map { $0 * $0 }.reduce(0, +)).squareRoot()
        }
        if let v = roiOrigin { d["roi_origin_row_column"] = v }
        if let v = detectorShape { d["detector_shape_rows_columns"] = v }
        if let v = peakPixel { d["peak_pixel_row_column"] = v }
        if let v = directBeam { d["direct_beam_row_column"] = v }
        if let v = shape { d["grid_shape_zyx"] = v }
        if let v = voxelSize { d["voxel_size_nm"] = v.map { $0 * 1e9 } }
        if let v = realSpaceBasis { d["real_space_basis_nm"] = v.map { $0.map { $0 * 1e9 } } }
        if !notes.isEmpty { d["notes"] = notes }
        if !model.isEmpty { d["model"] = model }
        return d
    }
}

// MARK: - Into results: the geometry with the real-space grid of the object

public enum ResultsGeometry {
    /// The record of the pattern `patternShape` carried into the results of an object of
    /// `objectShape`: when the object is smaller (the pattern was binned before phasing by
    /// patternShape/objectShape per axis), the reciprocal steps grow by that factor; the
    /// real-space basis and voxel sizes are those of the object's grid. Without a complete
    /// geometry the record is returned as it is (no voxel size: figures then say "voxels").
    public static func carry(_ record: CXIGeometry, patternShape: [Int], objectShape: [Int]) throws -> CXIGeometry {
        var g = record
        guard objectShape.count == 3, patternShape.count == 3 else { return g }
        let factor = (0..<3).map { Double(patternShape[$0]) / Double(objectShape[$0]) }
        g.shape = objectShape
        guard var bg = try g.braggGeometry() else {
            g.voxelSize = nil; g.realSpaceBasis = nil
            return g
        }
        if factor != [1, 1, 1] {
            // Binned before phasing: each object-grid step spans `factor` pattern steps.
            bg = BraggGeometry(energy: bg.energy, exitDirection: bg.exitDirection, rowStep: bg.rowStep * factor[1],
                               columnStep: bg.columnStep * factor[2], distance: bg.distance, rockingAxis: bg.rockingAxis,
                               rockingStep: bg.rockingStep * factor[0])
            g.fill(from: bg)
            g.notes["binning_before_phasing"] = factor.map { String(format: "%g", $0) }.joined(separator: ",")
        }
        let basis = bg.realSpaceBasis(shape: objectShape)
        g.realSpaceBasis = (0..<3).map { let c = basis.column($0); return [c.x, c.y, c.z] }
        g.voxelSize = bg.voxelSizes(shape: objectShape)
        if g.qVector == nil { g.qVector = [bg.q.x, bg.q.y, bg.q.z] }
        if g.model.isEmpty { g.model = bg.scalars }
        return g
    }

    /// The voxel edge along each array axis (nm) to draw scale bars with, or nil when the
    /// record cannot tell (figures then count voxels).
    public static func voxelSizeNanometres(_ g: CXIGeometry?, objectShape: [Int]) -> [Double]? {
        guard let g else { return nil }
        if let v = g.voxelSize, v.count == 3, g.shape == nil || g.shape! == objectShape { return v.map { $0 * 1e9 } }
        guard objectShape.count == 3, let bg = try? g.braggGeometry() else { return nil }
        return bg.voxelSizes(shape: objectShape).map { $0 * 1e9 }
    }
}

// MARK: - Merging geometry sources

/// One command-line value that replaces the geometry's.
public struct GeometryOverride: Sendable {
    public enum Quantity: Sendable {
        case energy, twoTheta, outOfPlane, distance, pixelSize, rockingStep, rockingAxis
        /// The quantity in words, the label of an override a program gives no name of its own.
        public var name: String {
            switch self {
            case .energy: return "energy"
            case .twoTheta: return "2θ"
            case .outOfPlane: return "out-of-plane angle"
            case .distance: return "distance"
            case .pixelSize: return "pixel size"
            case .rockingStep: return "rocking step"
            case .rockingAxis: return "rocking axis"
            }
        }
    }
    /// How the override is named in the note of what replaced what (a program's own name
    /// for the setting, e.g. its flag).
    public var option: String
    public var quantity: Quantity
    /// SI value (eV, rad, m); for the rocking axis, unused (see `axis`).
    public var value: Double
    public var axis: [Double]?

    public init(option: String, quantity: Quantity, value: Double, axis: [Double]? = nil) {
        self.option = option; self.quantity = quantity; self.value = value; self.axis = axis
    }

    func text(_ v: Double?) -> String {
        guard let v else { return "none" }
        switch quantity {
        case .energy: return String(format: "%g keV", v / 1000)
        case .twoTheta, .outOfPlane, .rockingStep: return String(format: "%g°", v * 180 / .pi)
        case .distance: return String(format: "%g m", v)
        case .pixelSize: return String(format: "%g µm", v * 1e6)
        case .rockingAxis: return "(" + (axis ?? []).map { String(format: "%g", $0) }.joined(separator: ", ") + ")"
        }
    }
}

public enum GeometryMerge {
    /// Applies `overrides` over `record` (read from `source`). Returns the merged record and
    /// one line naming every value replaced and what it replaced (nil when nothing was
    /// overridden). Values derived from the replaced ones (Q, the model's scalars, the voxel
    /// sizes) are recomputed or dropped.
    public static func apply(_ overrides: [GeometryOverride], to record: CXIGeometry, source: String) throws
        -> (CXIGeometry, String?) {
        guard !overrides.isEmpty else { return (record, nil) }
        var g = record
        var parts: [String] = []
        // The diffraction geometry as recorded (nil when incomplete), changed one value at a time.
        var bg = try record.braggGeometry()
        for o in overrides {
            let old: Double?
            switch o.quantity {
            case .energy: old = g.energy; g.energy = o.value; bg?.energy = o.value
            case .twoTheta: old = g.twoTheta; g.twoTheta = o.value; bg?.twoTheta = o.value
            case .outOfPlane: old = g.outOfPlane ?? g.extra["out_of_plane"]; g.outOfPlane = o.value; bg?.outOfPlane = o.value
            case .distance: old = g.detectorDistance; g.detectorDistance = o.value; bg?.distance = o.value
            case .pixelSize: old = g.pixelSize; g.pixelSize = o.value; g.rowPixelSize = nil; bg?.pixelSize = o.value
            case .rockingStep: old = g.rockingStep; g.rockingStep = o.value; bg?.rockingStep = o.value
            case .rockingAxis:
                let was = g.rockingAxis.map { a in "(" + a.map { String(format: "%g", $0) }.joined(separator: ", ") + ")" } ?? "none"
                g.rockingAxis = o.axis
                if let a = o.axis, a.count == 3 { bg?.rockingAxis = Vector3(a[0], a[1], a[2]) }
                parts.append("\(o.option) \(o.text(nil)) replaces \(was)")
                continue
            }
            parts.append("\(o.option) \(o.text(o.value)) replaces \(old == nil ? "none" : o.text(old))")
        }
        g.voxelSize = nil; g.realSpaceBasis = nil
        if let b = bg {
            g.fill(from: b)
        } else {
            // Completed (or not) by the command line: the angle form of the values now known.
            g.model = [:]; g.qVector = nil
            if let b = try g.braggGeometry() { g.fill(from: b) }
        }
        return (g, "geometry from \(source), overridden on the command line: " + parts.joined(separator: "; "))
    }
}

/// The geometry a series is analysed in, with where it came from.
public struct ResolvedGeometry {
    /// The diffraction geometry (SI units).
    public var geometry: BraggGeometry
    /// The record it was made from, as written into table.json (nil only when none).
    public var record: CXIGeometry?
    /// Where the geometry came from: the experiment file, a results file or the command line.
    public var source: String
    /// One line naming each overridden value and what it replaced (nil without overrides).
    public var overrideNote: String?

    /// What a program says about it: the override note, else "geometry from SOURCE".
    public var summary: String { overrideNote ?? "geometry from \(source)" }
}

extension GeometryMerge {
    /// Merges the geometry sources of a series, by precedence: `overrides` (the command
    /// line) over `experiment` (an experiment file's [geometry], read from `experimentSource`)
    /// over `stored` (the record the reference state's results file carries, read from
    /// `storedSource`). With overrides, the record's voxel size and real-space basis are
    /// dropped (they describe the grid anew). Throws `PipelineError.noGeometry` when no source
    /// is complete, `PipelineError.geometry` when a record is inconsistent.
    public static func resolve(experiment: BraggGeometry?, experimentSource: String = "the experiment file",
                               stored: CXIGeometry?, storedSource: String,
                               overrides: [GeometryOverride]) throws -> ResolvedGeometry {
        var record: CXIGeometry? = nil
        var source = ""
        if let g = experiment { record = CXIGeometry(g); source = experimentSource }
        else if let c = stored { record = c; source = storedSource }
        var note: String? = nil
        if var r = record {
            if !overrides.isEmpty { r.voxelSize = nil; r.realSpaceBasis = nil }
            (r, note) = try apply(overrides, to: r, source: source)
            record = r
        } else if !overrides.isEmpty {
            (record, _) = try apply(overrides, to: CXIGeometry(), source: "the command line")
            source = "the command line"
        }
        guard let r = record, let g = try r.braggGeometry() else { throw PipelineError.noGeometry }
        return ResolvedGeometry(geometry: g, record: record, source: source, overrideNote: note)
    }
}
