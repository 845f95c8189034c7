import Foundation
import Numerics

// Reconstructions written by the field's other phasing programs, read so that `bragg view`,
// `analyze` and `convert` open them as they open BraggKit's own results:
// - PyNX CXI (pynx/cdi/cdi.py save_obj_cxi; pynx-cdi-analysis for mode files):
//   /entry_1/image_1/data, complex, (nz, ny, nx) or a mode stack (nmodes, nz, ny, nx)
//   (the mode analysis writes the modes' weights to /entry_1/data_2/data); the support at
//   /entry_1/image_1/mask (with /entry_1/image_1/support a soft link to it); the process
//   parameters under /entry_1/image_1/process_1/configuration and its log-likelihoods under
//   process_1/results; energy (J), distance and pixel size (m) under
//   /entry_1/image_1/instrument_1; image_1/image_size is the object's extent (m).
//   Note /entry_1/data_1/data is a soft link to the object there, not a pattern.
// - cohere: a results folder with image.npy (complex object) and support.npy beside it.
// - bcdi (bcdi/postprocessing): .npz with `obj` (complex object, e.g. S*_avg_obj_prtf*.npz,
//   process_scan.py) or `amp` and `phase` (save_modulus_phase, save_results_as_npz, which
//   also stores `voxel_sizes` in nm, `bulk` and `strain`).

/// A reconstruction read from a peer program's file.
public struct PeerResult {
    /// The complex object, 3D.
    public var object: ComplexVolume
    /// The support (nonzero inside), when the file has one.
    public var support: RealVolume?
    /// "PyNX", "cohere" or "bcdi".
    public var program: String
    /// One line saying what was read (and what was left, e.g. the other modes).
    public var note: String
    /// Voxel size (z, y, x) in nm, when the file gives it.
    public var voxelSizeNm: [Double]?
    public var geometry: CXIGeometry
    /// The peer's process parameters, as text.
    public var parameters: [String: String]
}

public enum PeerResults {
    /// Reads `path` when it is a peer's result; nil when it is not (a BraggKit result, a
    /// plain array), so the caller reads it as before.
    public static func read(_ path: String) throws -> PeerResult? {
        switch FileFormat.from(path: path) {
        case .hdf5?: return try pynx(path)
        case .npy?: return try cohere(path)
        case .npz?: return try bcdi(path)
        default: return nil
        }
    }

    static let imagePath = "/entry_1/image_1"

    static func pynx(_ path: String) throws -> PeerResult? {
        let f = try HDF5File(reading: path)
        let obj = "\(imagePath)/data"
        guard f.isDataset(obj) else { return nil }
        let program = [(try? f.readString("/entry_1/program_name")) ?? "",
                       (try? f.readString("\(imagePath)/process_1/program")) ?? "",
                       (try? f.attribute("creator", of: "/"))??.stringValue ?? ""]
        let shape = try f.shape(of: obj)
        guard program.contains(where: { $0.hasPrefix("PyNX") }) || shape.count == 4 else { return nil }
        guard shape.count == 3 || shape.count == 4 else {
            throw FormatError.wrongShape(path: path, dataset: obj, reason: "has shape \(shape); a PyNX object is (nz, ny, nx) or a mode stack (nmodes, nz, ny, nx)")
        }
        var object = try f.readComplex(obj)
        var note = "PyNX result \(path)"
        if shape.count == 4 {
            let modes = shape[0], one = Array(shape.dropFirst())
            let n = one.reduce(1, *)
            let storage = FloatStorage(count: 2 * n)
            object.withUnsafeFloats { storage.pointer.update(from: $0.baseAddress!, count: 2 * n) }
            object = try ComplexVolume(shape: one, storage: storage)
            var w = ""
            if let weights = try? f.readDoubles("/entry_1/data_2/data"), let w0 = weights.first {
                w = String(format: ", weight %.1f%%", 100 * w0)
            }
            note += ": a stack of \(modes) mode(s); the first mode is used\(w)"
        }
        var support: RealVolume?
        for p in ["\(imagePath)/mask", "\(imagePath)/support"] where support == nil && f.isDataset(p) {
            let s = try f.readReal(p)
            if s.shape == object.shape { support = s }
        }
        if support == nil { note += "; no support in the file" }

        var g = CXIGeometry()
        let ins = "\(imagePath)/instrument_1"
        if let e = try? f.readScalar("\(ins)/source_1/energy") { g.energy = e / 1.602176634e-19 }
        if let d = try? f.readScalar("\(ins)/detector_1/distance") { g.detectorDistance = d }
        if let p = try? f.readScalar("\(ins)/detector_1/x_pixel_size") { g.pixelSize = p }
        var voxel: [Double]?
        if let size = try? f.readDoubles("\(imagePath)/image_size"), size.count == object.rank {
            voxel = zip(size, object.shape).map { $0 / Double($1) * 1e9 }
        }
        var params = [String: String]()
        for group in ["\(imagePath)/process_1/configuration", "\(imagePath)/process_1/results"] where f.isGroup(group) {
            for name in (try? f.members(of: group)) ?? [] {
                let p = "\(group)/\(name)"
                guard f.isDataset(p), let sh = try? f.shape(of: p), sh.reduce(1, *) <= 16 else { continue }
                if let s = try? f.readString(p) { params[name] = s }
                else if let v = try? f.readDoubles(p) { params[name] = v.map { String(format: "%.6g", $0) }.joined(separator: ",") }
            }
        }
        if !params.isEmpty { note += "; \(params.count) PyNX process parameters" }
        return PeerResult(object: object, support: support, program: "PyNX", note: note,
                          voxelSizeNm: voxel, geometry: g, parameters: params)
    }

    /// cohere: image.npy with support.npy beside it (cohere's results_phasing folder).
    static func cohere(_ path: String) throws -> PeerResult? {
        let url = URL(fileURLWithPath: path)
        let supportFile = url.deletingLastPathComponent().appendingPathComponent("support.npy").path
        guard url.lastPathComponent == "image.npy", FileManager.default.fileExists(atPath: supportFile) else { return nil }
        let object = try ArrayIO.readComplex(path)
        let support = try ArrayIO.readReal(supportFile)
        guard support.shape == object.shape else {
            throw FormatError.wrongShape(path: supportFile, dataset: nil, reason: "has shape \(support.shape) but image.npy beside it has \(object.shape)")
        }
        return PeerResult(object: object, support: support, program: "cohere",
                          note: "cohere result \(path) with its support \(supportFile)",
                          voxelSizeNm: nil, geometry: CXIGeometry(), parameters: [:])
    }

    /// bcdi: `obj` (complex) or `amp` + `phase` (radians).
    static func bcdi(_ path: String) throws -> PeerResult? {
        let names = Set(try NPZ.memberNames(path).map { $0.hasSuffix(".npy") ? String($0.dropLast(4)) : $0 })
        var object: ComplexVolume
        var note: String
        if names.contains("obj") {
            let a = try NPZ.read(path, member: "obj")
            guard a.dtype.isComplex else {
                throw FormatError.wrongShape(path: path, dataset: "obj", reason: "is real (\(a.dtype)): a bcdi support or intensity, not a complex object")
            }
            object = try a.complexVolume(source: path, dataset: "obj")
            note = "bcdi result \(path): complex object 'obj'"
        } else if names.contains("amp") && names.contains("phase") {
            let amp = try NPZ.read(path, member: "amp").realVolume(source: path, dataset: "amp")
            let phase = try NPZ.read(path, member: "phase").realVolume(source: path, dataset: "phase")
            guard amp.shape == phase.shape else {
                throw FormatError.wrongShape(path: path, dataset: "phase", reason: "has shape \(phase.shape) but 'amp' has \(amp.shape)")
            }
            object = ComplexVolume(shape: amp.shape)
            amp.withUnsafeFloats { a in phase.withUnsafeFloats { p in
                object.withUnsafeMutableFloats { o in
                    for i in 0..<a.count { o[2 * i] = a[i] * cos(p[i]); o[2 * i + 1] = a[i] * sin(p[i]) }
                }
            } }
            note = "bcdi result \(path): object = amp · exp(i·phase)"
        } else {
            return nil
        }
        var voxel: [Double]?
        if names.contains("voxel_sizes"), let v = try? NPZ.read(path, member: "voxel_sizes").doubles(), v.count == object.rank, v.allSatisfy({ $0 > 0 && $0.isFinite }) {
            voxel = v
            note += String(format: ", voxel %@ nm", v.map { String(format: "%.3g", $0) }.joined(separator: "×"))
        }
        note += "; no support in the file"
        return PeerResult(object: object, support: nil, program: "bcdi", note: note,
                          voxelSizeNm: voxel, geometry: CXIGeometry(), parameters: [:])
    }
}
