import CHDF5
import Foundation
import Numerics

// Partial reads of large HDF5 datasets: a range of frames (a hyperslab along axis 0)
// of a detector stack, converted to Float by HDF5 as it reads, so that a frame stack
// can be streamed without holding it whole.

/// An HDF5 dataset opened once for repeated slab reads along its first axis.
public final class HDF5SlabReader {
    public let file: HDF5File
    public let dataset: String
    /// Shape of the dataset (C order).
    public let shape: [Int]
    /// Chunk shape (nil for contiguous storage): read whole chunks along axis 0 at a time.
    public let chunkShape: [Int]?
    /// The dataset's element type (what `readNative` delivers, in native byte order).
    public let dtype: DType
    let id: hid_t
    let space: hid_t

    /// Opens `dataset` of `file`; it must be a real numeric array of rank ≥ 1.
    public init(file: HDF5File, dataset name: String) throws {
        let p = HDF5File.normalise(name)
        guard file.isDataset(p) else {
            throw FormatError.datasetNotFound(path: file.path, dataset: p, available: file.suggestions(for: p))
        }
        // A chunk cache big enough for a frame block of large chunks (the default 1 MiB would
        // decompress a chunk again for every block that touches it).
        let dapl = H5Pcreate(bk_h5p_dataset_access())
        H5Pset_chunk_cache(dapl, 12_421, 64 << 20, 1.0)
        let d = H5Dopen2(file.id, p, dapl)
        H5Pclose(dapl)
        guard d >= 0 else { throw FormatError.hdf5(path: file.path, reason: "dataset \(p) cannot be opened") }
        let ft = H5Dget_type(d)
        let info = HDF5File.typeInfo(ft)
        H5Tclose(ft)
        guard let dt = info.dtype, !dt.isComplex, dt != .bool, !info.isFloat16 else {
            H5Dclose(d)
            throw FormatError.wrongShape(path: file.path, dataset: p, reason: "holds \(info.name) values; detector frames must be integers or floats")
        }
        let s = H5Dget_space(d)
        let r = Int(H5Sget_simple_extent_ndims(s))
        var dims = [hsize_t](repeating: 0, count: max(r, 1))
        if r > 0 { H5Sget_simple_extent_dims(s, &dims, nil) }
        guard r >= 1 else {
            H5Sclose(s); H5Dclose(d)
            throw FormatError.wrongShape(path: file.path, dataset: p, reason: "is a scalar; a stack of frames was expected")
        }
        let checked: [Int]
        do { checked = try HDF5File.shape(ofSpace: s, path: file.path, dataset: p) } catch { H5Sclose(s); H5Dclose(d); throw error }
        self.file = file; dataset = p; id = d; space = s; dtype = dt
        shape = checked
        let dcpl = H5Dget_create_plist(d)
        if H5Pget_layout(dcpl) == H5D_CHUNKED {
            var c = [hsize_t](repeating: 0, count: r)
            H5Pget_chunk(dcpl, Int32(r), &c)
            chunkShape = c.map { Int($0) }
        } else {
            chunkShape = nil
        }
        H5Pclose(dcpl)
    }

    deinit { H5Sclose(space); H5Dclose(id) }

    /// Entries `range` of axis 0 (all of the other axes) as Floats: a volume of shape
    /// [range.count] + the other axes.
    public func read(_ range: Range<Int>) throws -> RealVolume {
        guard range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw FormatError.wrongShape(path: file.path, dataset: dataset, reason: "has \(shape[0]) entries along axis 0; entries \(range) were asked for")
        }
        var v = RealVolume(shape: [range.count] + shape.dropFirst())
        try v.withUnsafeMutableFloats { try read(range, into: $0.baseAddress!) }
        return v
    }

    /// Reads entries `range` of axis 0 (all of the other axes) as Floats into `buffer`
    /// (range.count × the product of the other axes). `package`: the frame readers fill
    /// their caller's buffer in place; users read through `read(_:)`.
    package func read(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        try read(range, memoryType: bk_h5t_native_float(), into: UnsafeMutableRawPointer(buffer))
    }

    /// Reads entries `range` of axis 0 in the dataset's own type (`dtype`, native byte
    /// order) into `buffer` (range.count × the product of the other axes × dtype.itemSize
    /// bytes). Without a type conversion HDF5 reads a contiguous dataset straight into
    /// `buffer`, so the caller can convert while it makes its own pass over the data.
    /// `package`: raw bytes for the preparation's correction pass only.
    package func readNative(_ range: Range<Int>, into buffer: UnsafeMutableRawPointer) throws {
        let (mem, owned) = HDF5File.memoryType(dtype)
        defer { if owned { H5Tclose(mem) } }
        try read(range, memoryType: mem, into: buffer)
    }

    func read(_ range: Range<Int>, memoryType: hid_t, into buffer: UnsafeMutableRawPointer) throws {
        guard range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw FormatError.wrongShape(path: file.path, dataset: dataset, reason: "has \(shape[0]) entries along axis 0; entries \(range) were asked for")
        }
        if range.isEmpty { return }
        var start = [hsize_t](repeating: 0, count: shape.count)
        var count = shape.map { hsize_t($0) }
        start[0] = hsize_t(range.lowerBound); count[0] = hsize_t(range.count)
        let fs = H5Scopy(space)
        defer { H5Sclose(fs) }
        guard H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nil, count, nil) >= 0 else {
            throw FormatError.hdf5(path: file.path, reason: "cannot select entries \(range) of \(dataset)")
        }
        let ms = H5Screate_simple(Int32(count.count), count, nil)
        defer { H5Sclose(ms) }
        guard H5Dread(id, memoryType, ms, fs, HDF5File.P, buffer) >= 0 else {
            throw FormatError.hdf5(path: file.path, reason: "reading entries \(range.lowerBound)..<\(range.upperBound) of dataset \(dataset) failed (truncated or corrupt file, or a missing compression filter)")
        }
    }
}

extension HDF5File {
    /// Entries `range` of axis 0 of a real dataset, as a float32 volume.
    public func readSlab(_ dpath: String, _ range: Range<Int>) throws -> RealVolume {
        let r = try HDF5SlabReader(file: self, dataset: dpath)
        var shape = r.shape
        shape[0] = range.count
        var v = RealVolume(shape: shape)
        try v.withUnsafeMutableFloats { try r.read(range, into: $0.baseAddress!) }
        return v
    }
}
