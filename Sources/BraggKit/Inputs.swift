import Foundation
import Numerics
import Formats
import Analysis

/// A pattern to phase, with its mask and the geometry its file records.
public struct PatternInput {
    public var pattern: RealVolume
    public var mask: RealVolume?
    /// Where the mask came from (for the results' provenance).
    public var maskSource: String?
    /// The geometry of the file's /entry_1/instrument_1 (CXI files of `bragg prepare` and
    /// `bragg simulate`), nil when it records none.
    public var geometry: CXIGeometry?

    /// A pattern held in memory (centred intensity, mask nonzero = bad); `maskSource` and
    /// `geometry` are recorded in the results when given.
    public init(pattern: RealVolume, mask: RealVolume? = nil, maskSource: String? = nil, geometry: CXIGeometry? = nil) {
        self.pattern = pattern; self.mask = mask; self.maskSource = maskSource; self.geometry = geometry
    }

    /// Reads the pattern (and mask) to phase. A CXI/HDF5 file named without a dataset gives
    /// its pattern at /entry_1/data_1/data, its geometry, and, when no `mask` is given, its
    /// mask at /entry_1/data_1/mask if it has one. Other inputs (FILE:DATASET, .npy, .npz)
    /// carry no geometry.
    public static func read(_ spec: String, mask: String?) throws -> PatternInput {
        let s = ArraySpec(spec)
        if s.dataset == nil, (try? s.format()) == .hdf5 {
            let f = try HDF5File(reading: s.path)
            if f.exists(CXIResults.patternPath) {
                let pattern = try f.readReal(CXIResults.patternPath)
                let geometry = try CXIResults.readGeometry(from: s.path)
                if let m = mask { return PatternInput(pattern: pattern, mask: try ArrayIO.readReal(m), maskSource: m, geometry: geometry) }
                if f.exists(CXIResults.maskPath) {
                    return PatternInput(pattern: pattern, mask: try f.readReal(CXIResults.maskPath),
                                        maskSource: s.path + ":" + CXIResults.maskPath, geometry: geometry)
                }
                return PatternInput(pattern: pattern, mask: nil, maskSource: nil, geometry: geometry)
            }
        }
        return PatternInput(pattern: try ArrayIO.readReal(spec), mask: try mask.map { try ArrayIO.readReal($0) },
                            maskSource: mask, geometry: nil)
    }
}

extension CXIResults {
    /// The geometry alone of a CXI file (nil when it records none), without reading its arrays.
    public static func readGeometry(from path: String) throws -> CXIGeometry? {
        let g = try CXIResults.read(from: path, arrays: false).geometry
        return g.isEmpty ? nil : g
    }

    /// Carries the geometry of the phased pattern into these results, with the real-space
    /// grid of the object (see `ResultsGeometry.carry`).
    public mutating func carryGeometry(_ record: CXIGeometry?, patternShape: [Int]) throws {
        guard let record, let o = object else { return }
        geometry = try ResultsGeometry.carry(record, patternShape: patternShape, objectShape: o.shape)
    }
}

/// Bringing the states of a series to one shape.
public enum SeriesShapes {
    /// Brings every state's object to the reference's shape, with one message per state
    /// changed. States prepared one by one may have patterns of different shapes; with one
    /// geometry their reciprocal-space steps are the same, so the object's Fourier transform
    /// is cropped or zero-padded (centred) to the reference's shape and transformed back:
    /// the object then sits on the reference's real-space grid (the voxel of a grid of n
    /// points is 2π/(n Δq)), which cropping the patterns to one shape would have given. The
    /// state's support and extra runs are resampled the same way (support: the transformed
    /// support above one half).
    public static func conform(_ states: inout [StateInput], reference: Int) throws -> [String] {
        guard states.indices.contains(reference) else { return [] }
        let target = states[reference].object.shape
        var messages: [String] = []
        for i in states.indices where states[i].object.shape != target {
            let from = states[i].object.shape
            guard from.count == target.count else {
                throw PipelineError.input("state '\(states[i].label)': a \(from.count)D reconstruction cannot join a series of \(target.count)D ones")
            }
            states[i].object = try resample(states[i].object, to: target)
            if let s = states[i].support {
                let t = try resample(ComplexVolume(real: s, imaginary: RealVolume(shape: s.shape)), to: target)
                states[i].support = t.real().map { $0 > 0.5 ? 1 : 0 }
            }
            states[i].runs = try states[i].runs.map { try resample($0, to: target) }
            if let p = states[i].pattern { states[i].pattern = try p.centred(in: target) }
            let how = zip(from, target).map { $0 < $1 ? "padded" : ($0 > $1 ? "cropped" : "kept") }
            messages.append("state '\(states[i].label)': reconstruction \(from.map(String.init).joined(separator: "×")) brought to the reference's \(target.map(String.init).joined(separator: "×")) (its Fourier transform \(how.joined(separator: "/")) along the three axes, so it shares the reference's voxel)")
        }
        return messages
    }

    /// The object on a grid of `shape` points with the same reciprocal-space step: its
    /// centred Fourier transform cropped or zero-padded, amplitudes kept.
    static func resample(_ v: ComplexVolume, to shape: [Int]) throws -> ComplexVolume {
        var f = v.ifftshifted()
        try FFT.forward(&f)
        var g = try f.fftshifted().centred(in: shape).ifftshifted()
        try FFT.inverse(&g)
        g.scale(by: Float(Double(g.count) / Double(v.count)))
        return g.fftshifted()
    }
}

/// Detector calibration images (dark, flat field, mask) for `bragg prepare`.
public enum CalibrationImage {
    /// Reads FILE or FILE:DATASET: a TIFF (.tif/.tiff, as beamlines write their dark and white
    /// fields: one page gives a 2D image, several a stack), else any array ArrayIO reads (.npy,
    /// .npz, HDF5). A 3D array of one frame is returned as 2D.
    public static func read(_ spec: String) throws -> RealVolume {
        let lower = spec.lowercased()
        var v: RealVolume
        if lower.hasSuffix(".tif") || lower.hasSuffix(".tiff") {
            v = try TIFFReader(spec).readAll()   // refuses a stack larger than memory before allocating it
        } else {
            v = try ArrayIO.readReal(spec)
        }
        if v.rank == 3 && v.shape[0] == 1 { v = try v.reshaped(Array(v.shape.dropFirst())) }
        return v
    }
}

/// One state's reconstruction as a series analysis reads it: a CXI results file (BraggKit's:
/// object, support, χ², pattern, geometry), another program's results (PyNX, cohere, bcdi),
/// or a complex array (.npy, FILE:DATASET).
public struct ReconstructionFile {
    public var object: ComplexVolume
    public var support: RealVolume?
    /// χ² recorded by the phasing (nil when the file records none).
    public var chi2: Double?
    /// The pattern phased, when the file holds it.
    public var pattern: RealVolume?
    /// The geometry the file records (nil when none).
    public var geometry: CXIGeometry?
    /// What was read from another program's results (nil for BraggKit's own and arrays).
    public var note: String?

    /// Reads `file` as the reconstruction of state `label`; every failure is a
    /// `PipelineError.input` naming the state.
    public static func read(_ file: String, state label: String) throws -> ReconstructionFile {
        let path = String(file.split(separator: ":", maxSplits: 1).first ?? Substring(file))
        let ext = (path as NSString).pathExtension.lowercased()
        do {
            if !file.contains(":"), let p = try PeerResults.read(path) {   // PyNX, cohere, bcdi
                return ReconstructionFile(object: p.object, support: p.support, chi2: nil, pattern: nil,
                                          geometry: p.geometry.isEmpty ? nil : p.geometry, note: p.note)
            }
            if (ext == "cxi" || ext == "h5" || ext == "hdf5") && !file.contains(":") {
                let r = try CXIResults.read(from: path)
                guard let o = r.object else {
                    throw PipelineError.input("state '\(label)': '\(path)' holds no object at \(CXIResults.objectPath)")
                }
                if let s = r.support, s.nonzeroCount() == 0 {   // else the whole box is taken for the crystal
                    throw PipelineError.input("state '\(label)': the support in '\(path)' (\(CXIResults.supportPath)) is empty: no voxel lies inside the crystal")
                }
                return ReconstructionFile(object: o, support: r.support, chi2: r.metrics["chi2"], pattern: r.pattern,
                                          geometry: r.geometry.isEmpty ? nil : r.geometry, note: nil)
            }
            return ReconstructionFile(object: try ArrayIO.readComplex(file), support: nil, chi2: nil, pattern: nil,
                                      geometry: nil, note: nil)
        } catch let e as PipelineError {
            throw e
        } catch {
            throw PipelineError.input("state '\(label)': \(error)")
        }
    }
}
