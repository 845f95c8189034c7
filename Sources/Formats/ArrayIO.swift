import Foundation
import Numerics

/// The file formats arrays are read from and written to.
public enum FileFormat: String, Sendable {
    case npy, npz, hdf5, vti

    /// The format an extension names (.npy, .npz, .h5/.hdf5/.hdf/.cxi/.nxs/.nx5, .vti).
    public static func from(path: String) -> FileFormat? {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "npy": return .npy
        case "npz": return .npz
        case "h5", "hdf5", "hdf", "he5", "cxi", "nxs", "nx5": return .hdf5
        case "vti": return .vti
        default: return nil
        }
    }
}

/// `FILE` or `FILE:DATASET`: a file, and optionally an array inside it (an HDF5 path, an
/// NPZ member or a VTI array name).
public struct ArraySpec: Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var dataset: String?

    public init(path: String, dataset: String? = nil) { self.path = path; self.dataset = dataset }

    /// Splits at the first ':' that follows a known extension (so `C:` or colons inside
    /// folder names do not confuse it); a spec naming an existing file is taken whole.
    public init(_ spec: String) {
        if FileManager.default.fileExists(atPath: spec) || !spec.contains(":") {
            self.init(path: spec); return
        }
        var search = spec.startIndex
        while let colon = spec[search...].firstIndex(of: ":") {
            let file = String(spec[..<colon])
            if FileFormat.from(path: file) != nil {
                let ds = String(spec[spec.index(after: colon)...])
                self.init(path: file, dataset: ds.isEmpty ? nil : ds); return
            }
            search = spec.index(after: colon)
        }
        self.init(path: spec)
    }

    public var description: String { dataset.map { "\(path):\($0)" } ?? path }

    /// The format: by extension, else by the file's first bytes.
    public func format() throws -> FileFormat {
        if let f = FileFormat.from(path: path) { return f }
        let f = try InputFile(path)
        let head = [UInt8](try f.readPrefix(16))
        if head.starts(with: NPY.magic) { return .npy }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .npz }
        if head.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) { return .hdf5 }
        if head.starts(with: Array("<?xml".utf8)) || head.starts(with: Array("<VTKFile".utf8)) { return .vti }
        throw FormatError.unknownFormat(path: path)
    }
}

/// One array in a file, as `bragg info` lists it.
public struct ArrayInfo: Equatable, Sendable {
    /// HDF5 path, NPZ member or VTI array name; nil for a plain .npy.
    public var name: String?
    public var shape: [Int]
    /// numpy name of the element type, or the HDF5 type when it maps to none of ours.
    public var dtype: String
}

/// Reading and writing arrays by spec, whatever the format: the entry point the
/// pipeline and `bragg` use.
public enum ArrayIO {
    /// Reads an array keeping its dtype (for conversion and inspection).
    public static func read(_ spec: String) throws -> NDArray { try read(ArraySpec(spec)) }

    public static func read(_ s: ArraySpec) throws -> NDArray {
        switch try s.format() {
        case .npy:
            try noDataset(s)
            return try NPY.read(s.path)
        case .npz:
            return try NPZ.read(s.path, member: s.dataset)
        case .hdf5:
            let f = try HDF5File(reading: s.path)
            return try f.readArray(f.resolve(s.dataset))
        case .vti:
            return try VTI.read(s.path, array: s.dataset)
        }
    }

    /// Reads a real array as float32 volume (any numeric dtype is converted; complex data
    /// is refused). NPY and HDF5 fill the volume directly, never holding the file twice.
    public static func readReal(_ spec: String) throws -> RealVolume {
        let s = ArraySpec(spec)
        switch try s.format() {
        case .npy:
            try noDataset(s)
            let (shape, storage) = try NPY.readFloats(s.path, complex: false)
            return try RealVolume(shape: shape, storage: storage)
        case .hdf5:
            let f = try HDF5File(reading: s.path)
            return try f.readReal(f.resolve(s.dataset))
        default:
            return try read(s).realVolume(source: s.path, dataset: s.dataset)
        }
    }

    /// Reads a complex array as complex64 volume. Real arrays get a zero imaginary part,
    /// except real HDF5 datasets whose last axis has length 2, read as (re, im) pairs.
    public static func readComplex(_ spec: String) throws -> ComplexVolume {
        let s = ArraySpec(spec)
        switch try s.format() {
        case .npy:
            try noDataset(s)
            let (shape, storage) = try NPY.readFloats(s.path, complex: true)
            return try ComplexVolume(shape: shape, storage: storage)
        case .hdf5:
            let f = try HDF5File(reading: s.path)
            return try f.readComplex(f.resolve(s.dataset))
        default:
            return try read(s).complexVolume(source: s.path, dataset: s.dataset)
        }
    }

    /// Writes an array keeping its dtype where the format can hold it (VTI stores bool as
    /// UInt8 and complex as two components). The output file is replaced as a whole.
    public static func write(_ a: NDArray, to spec: String, overwrite: Bool) throws {
        let s = ArraySpec(spec)
        guard let format = FileFormat.from(path: s.path) else { throw FormatError.unknownFormat(path: s.path) }
        switch format {
        case .npy:
            try noDataset(s)
            try NPY.write(a, to: s.path, overwrite: overwrite)
        case .npz:
            try NPZ.write([(s.dataset ?? "arr_0", a)], to: s.path, compressed: false, overwrite: overwrite)
        case .hdf5:
            let path = s.dataset ?? defaultDataset(s.path)
            try HDF5File.create(s.path, overwrite: overwrite) { f in
                try f.write(a, at: path)
            }
        case .vti:
            try VTI.write([(s.dataset ?? "data", a)], to: s.path, overwrite: overwrite)
        }
    }

    /// Writes a real volume as float32.
    public static func write(_ v: RealVolume, to spec: String, overwrite: Bool) throws {
        let s = ArraySpec(spec)
        if FileFormat.from(path: s.path) == .npy {
            try noDataset(s)
            try NPY.write(v, to: s.path, overwrite: overwrite)
        } else if FileFormat.from(path: s.path) == .hdf5 {
            let path = s.dataset ?? defaultDataset(s.path)
            try HDF5File.create(s.path, overwrite: overwrite) { f in try f.write(v, at: path) }
        } else {
            try write(NDArray(v), to: spec, overwrite: overwrite)
        }
    }

    /// Writes a complex volume as complex64 (HDF5: an (r, i) compound, as h5py writes).
    public static func write(_ v: ComplexVolume, to spec: String, overwrite: Bool) throws {
        let s = ArraySpec(spec)
        if FileFormat.from(path: s.path) == .npy {
            try noDataset(s)
            try NPY.write(v, to: s.path, overwrite: overwrite)
        } else if FileFormat.from(path: s.path) == .hdf5 {
            let path = s.dataset ?? defaultDataset(s.path)
            try HDF5File.create(s.path, overwrite: overwrite) { f in try f.write(v, at: path) }
        } else {
            try write(NDArray(v), to: spec, overwrite: overwrite)
        }
    }

    /// Every array in a file: path or member name, shape, dtype.
    public static func list(_ path: String) throws -> [ArrayInfo] {
        switch try ArraySpec(path: path).format() {
        case .npy:
            let h = try NPY.header(of: path)
            return [ArrayInfo(name: nil, shape: h.shape, dtype: h.dtype.rawValue)]
        case .npz:
            let f = try InputFile(path)
            return try NPZ.entries(f).map { e in
                let d = try NPZ.memberPrefix(f, e)
                let h = try NPY.parseHeader(d, path: "\(path):\(e.arrayName)")
                return ArrayInfo(name: e.arrayName, shape: h.shape, dtype: h.dtype.rawValue)
            }
        case .hdf5:
            return try HDF5File(reading: path).datasets()
        case .vti:
            return try VTI.list(path)
        }
    }

    /// Statistics of one array (modulus for complex), streamed where the format allows.
    public static func statistics(_ spec: String) throws -> ArrayStatistics {
        let s = ArraySpec(spec)
        switch try s.format() {
        case .npy:
            try noDataset(s)
            return try NPY.statistics(s.path)
        case .hdf5:
            let f = try HDF5File(reading: s.path)
            return try f.statistics(f.resolve(s.dataset))
        default:
            return try read(s).statistics()
        }
    }

    /// The dataset written when an HDF5 spec names none: the CXI object for .cxi, else /data.
    public static func defaultDataset(_ path: String) -> String {
        URL(fileURLWithPath: path).pathExtension.lowercased() == "cxi" ? CXIResults.objectPath : "/data"
    }

    private static func noDataset(_ s: ArraySpec) throws {
        if let d = s.dataset {
            throw FormatError.datasetNotFound(path: s.path, dataset: d, available: ["(an .npy file holds one array: give the file alone)"])
        }
    }
}
