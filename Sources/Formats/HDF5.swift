import Foundation
import CHDF5
import Numerics

/// A value stored as an HDF5 attribute (or a small dataset).
public enum HDF5Attribute: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case ints([Int])
    case doubles([Double])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let s): return s
        case .ints(let a): return "[" + a.map(String.init).joined(separator: ", ") + "]"
        case .doubles(let a): return "[" + a.map { String($0) }.joined(separator: ", ") + "]"
        }
    }

    /// The value as a Double when it is one number.
    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let v): return v
        case .ints(let a) where a.count == 1: return Double(a[0])
        case .doubles(let a) where a.count == 1: return a[0]
        default: return nil
        }
    }

    /// The value as an array of Doubles when it is numeric.
    public var doublesValue: [Double]? {
        switch self {
        case .int(let v): return [Double(v)]
        case .double(let v): return [v]
        case .ints(let a): return a.map(Double.init)
        case .doubles(let a): return a
        case .string: return nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
}

/// An HDF5 file, opened for reading or being created. Every failure becomes a
/// `FormatError` naming the file and dataset; HDF5's own error printing is switched off.
public final class HDF5File {
    /// The path shown in messages (the final name, also while writing a temporary file).
    public let path: String
    let id: hid_t
    public let writable: Bool
    private var closed = false

    static let setUp: Void = {
        _ = H5open()
        H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
        _ = HDF5Plugins.appendSystemFolders   // compression plugins (bitshuffle/LZ4) without HDF5_PLUGIN_PATH
    }()

    static var P: hid_t { bk_h5p_default() }

    /// Opens an existing file read-only, after checking that it exists and is HDF5.
    public init(reading path: String) throws {
        _ = HDF5File.setUp
        _ = try InputFile(path)   // existence and readability, with the usual messages
        guard H5Fis_hdf5(path) > 0 else { throw FormatError.notHDF5(path: path) }
        try HDF5File.checkGroupStructure(path)   // a corrupt B-tree can crash libhdf5: walk it in a child first
        let fid = H5Fopen(path, bk_h5f_acc_rdonly(), HDF5File.P)
        guard fid >= 0 else {
            // The usual cause: a copy cut short. Say so, with the sizes, when the superblock shows it.
            if let end = HDF5File.declaredEnd(of: path), let size = HDF5File.fileSize(path), size < end {
                throw FormatError.truncated(path: path, reason: "its HDF5 superblock declares \(end) bytes but the file has \(size)")
            }
            throw FormatError.hdf5(path: path, reason: "the file cannot be opened")
        }
        self.path = path; id = fid; writable = false
    }

    static func fileSize(_ path: String) -> UInt64? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value
    }

    /// Where the file should end: its superblock's base address plus end-of-file address,
    /// read without the library (which refuses a truncated file whole). The superblock is at
    /// 0, 512, 1024, 2048, … (after a user block); versions 0–1 and 2–3 place the address
    /// differently. Nil when no superblock is found or it cannot be read.
    public static func declaredEnd(of path: String) -> UInt64? {
        guard let h = FileHandle(forReadingAtPath: path), let size = fileSize(path) else { return nil }
        defer { try? h.close() }
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var at: UInt64 = 0
        while at + 16 <= size {   // a superblock needs 16 bytes before its addresses; address() checks the rest
            guard (try? h.seek(toOffset: at)) != nil, let d = try? h.read(upToCount: 128) else { return nil }
            let b = [UInt8](d)
            if b.count >= 16 && Array(b[0..<8]) == signature {
                func address(_ o: Int, _ width: Int) -> UInt64? {
                    guard [2, 4, 8].contains(width), o + width <= b.count else { return nil }
                    return (0..<width).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) }
                }
                let version = b[8]
                let base: UInt64?, eof: UInt64?
                switch version {
                case 0, 1:
                    // signature 8, versions 4, reserved 1, sizes 2, reserved 1, K 4, flags 4, (v1: 4)
                    let width = Int(b[13]), first = version == 0 ? 24 : 28
                    base = address(first, width); eof = address(first + 2 * width, width)
                case 2, 3:
                    // signature 8, version 1, sizes 2, flags 1, then base, extension, end of file
                    let width = Int(b[9])
                    base = address(12, width); eof = address(12 + 2 * width, width)
                default:
                    return nil
                }
                guard let base, let eof else { return nil }
                let (end, overflow) = base.addingReportingOverflow(eof)
                return overflow ? nil : end
            }
            at = at == 0 ? 512 : at * 2
        }
        return nil
    }

    /// Creates (truncates) `file`; messages name `shownAs`.
    init(creating file: String, shownAs: String) throws {
        _ = HDF5File.setUp
        let fcpl = H5Pcreate(bk_h5p_file_create()); defer { H5Pclose(fcpl) }
        H5Pset_obj_track_times(fcpl, false)   // the root group without creation times
        let fid = H5Fcreate(file, bk_h5f_acc_trunc(), fcpl, HDF5File.P)
        guard fid >= 0 else { throw FormatError.writeFailed(path: shownAs, reason: "HDF5 could not create the file") }
        path = shownAs; id = fid; writable = true
    }

    /// Creates the HDF5 file `path` through `body`, safely: written under a temporary name,
    /// closed, then renamed into place; an existing file is replaced only when `overwrite`.
    public static func create(_ path: String, overwrite: Bool, _ body: (HDF5File) throws -> Void) throws {
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            let f = try HDF5File(creating: tmp, shownAs: path)
            do { try body(f) } catch { f.close(); throw error }
            f.close()
        }
    }

    /// Closes the file (also done on deinit).
    public func close() {
        if !closed { H5Fflush(id, H5F_SCOPE_GLOBAL); H5Fclose(id); closed = true }
    }

    deinit { close() }

    // MARK: - Navigation

    static func normalise(_ p: String) -> String {
        let parts = p.split(separator: "/").filter { !$0.isEmpty }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether a link exists at `path` (checking each level, as HDF5 requires).
    public func exists(_ path: String) -> Bool {
        let parts = HDF5File.normalise(path).split(separator: "/")
        var prefix = ""
        for p in parts {
            prefix += "/" + p
            if H5Lexists(id, prefix, HDF5File.P) <= 0 { return false }
        }
        return true
    }

    private func objectType(_ path: String) -> H5I_type_t? {
        guard exists(path) else { return HDF5File.normalise(path) == "/" ? H5I_GROUP : nil }
        let o = H5Oopen(id, HDF5File.normalise(path), HDF5File.P)
        guard o >= 0 else { return nil }
        defer { H5Oclose(o) }
        return H5Iget_type(o)
    }

    public func isDataset(_ path: String) -> Bool { objectType(path) == H5I_DATASET }
    public func isGroup(_ path: String) -> Bool { objectType(path) == H5I_GROUP }

    /// Names of the links in a group.
    public func members(of group: String) throws -> [String] {
        let g = H5Gopen2(id, HDF5File.normalise(group), HDF5File.P)
        guard g >= 0 else { throw FormatError.datasetNotFound(path: path, dataset: group, available: []) }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw FormatError.hdf5(path: path, reason: "cannot list group \(group)") }
        guard info.nlinks <= hsize_t(HDF5File.maxWalkLinks) else {
            throw FormatError.badHeader(path: path, reason: "group \(group) declares \(info.nlinks) links (corrupt, or not a data file)")
        }
        var names = [String]()
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, HDF5File.P)
            guard n >= 0 else { continue }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, HDF5File.P)
            names.append(String(cString: buf))
        }
        return names
    }

    /// Bounds of a walk through the file's groups: legal HDF5 can link a group into itself
    /// (hard or soft links), and a corrupt file can declare any number of links.
    static let maxWalkDepth = 64
    static let maxWalkLinks = 1_000_000

    /// The file and header address of the object at `opath` (nil when it cannot be opened).
    private func identity(_ opath: String) -> [UInt64]? {
        let o = H5Oopen(id, HDF5File.normalise(opath), HDF5File.P)
        guard o >= 0 else { return nil }
        defer { H5Oclose(o) }
        var fileno: UInt = 0
        var key: UInt64 = 0
        guard bk_h5o_identity(o, &fileno, &key) >= 0 else { return nil }
        return [UInt64(fileno), key]
    }

    /// Every dataset in the file (visiting groups), with shape and dtype. Each group is entered
    /// once, whatever links lead to it, so a link cycle ends the walk instead of looping (a
    /// dataset linked from two groups is still listed under both paths).
    public func datasets() throws -> [ArrayInfo] {
        var out = [ArrayInfo]()
        var seen = Set<[UInt64]>()
        var links = 0
        if let root = identity("/") { seen.insert(root) }
        func visit(_ group: String, depth: Int) throws {
            guard depth < HDF5File.maxWalkDepth else { return }
            for name in try members(of: group) {
                links += 1
                guard links <= HDF5File.maxWalkLinks else {
                    throw FormatError.badHeader(path: path, reason: "its groups hold more than \(HDF5File.maxWalkLinks) links (corrupt, or not a data file)")
                }
                let child = group == "/" ? "/" + name : group + "/" + name
                switch objectType(child) {
                case H5I_GROUP?:
                    guard let key = identity(child), seen.insert(key).inserted else { continue }
                    try visit(child, depth: depth + 1)
                case H5I_DATASET?:
                    let (shape, t) = try describe(child)
                    out.append(ArrayInfo(name: child, shape: shape, dtype: t.name))
                default: break
                }
            }
        }
        try visit("/", depth: 0)
        return out
    }

    /// The dataset path a spec means: the given one (checked), or when none is given the
    /// file's only dataset, the CXI object, or /data.
    public func resolve(_ dataset: String?) throws -> String {
        if let d = dataset {
            let p = HDF5File.normalise(d)
            if isDataset(p) { return p }
            throw FormatError.datasetNotFound(path: path, dataset: p, available: suggestions(for: p))
        }
        let all = try datasets().filter { $0.dtype != "string" && !$0.shape.isEmpty }
        if all.count == 1 { return all[0].name! }
        for p in [CXIResults.objectPath, "/data"] where isDataset(p) { return p }
        if all.isEmpty { throw FormatError.badHeader(path: path, reason: "the file holds no array datasets") }
        throw FormatError.datasetNeeded(path: path, available: all.map { $0.name! })
    }

    /// Existing paths near a missing one: datasets with the same last name, the contents of
    /// the deepest group that exists on the way, else the top-level names.
    func suggestions(for missing: String) -> [String] {
        let all = ((try? datasets()) ?? []).compactMap { $0.name }
        let last = missing.split(separator: "/").last.map(String.init) ?? ""
        var out = all.filter { $0.hasSuffix("/" + last) }
        var parts = missing.split(separator: "/").map(String.init)
        while !parts.isEmpty {
            parts.removeLast()
            let g = "/" + parts.joined(separator: "/")
            if isGroup(g), let m = try? members(of: g) {
                if !parts.isEmpty || out.isEmpty {
                    out += m.map { g == "/" ? "/" + $0 : g + "/" + $0 }.filter { !out.contains($0) }
                }
                if !out.isEmpty { break }
            }
        }
        return out
    }

    // MARK: - Types

    /// What a file datatype is, for listing and for choosing a memory type.
    struct TypeInfo {
        var dtype: DType?          // nil: not an array type we convert (string, opaque…)
        var name: String           // numpy-like name for listings
        var memberNames: [String]  // compound (complex) member names
        var isFloat16 = false
    }

    static func typeInfo(_ t: hid_t) -> TypeInfo {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_INTEGER:
            let unsigned = H5Tget_sign(t) == H5T_SGN_NONE
            let d: DType? = [1: unsigned ? .uint8 : .int8, 2: unsigned ? .uint16 : .int16,
                             4: unsigned ? .uint32 : .int32, 8: unsigned ? .uint64 : .int64][size]
            return TypeInfo(dtype: d, name: d?.rawValue ?? "int\(size * 8)", memberNames: [])
        case H5T_FLOAT:
            if size == 4 { return TypeInfo(dtype: .float32, name: "float32", memberNames: []) }
            if size == 8 { return TypeInfo(dtype: .float64, name: "float64", memberNames: []) }
            if size == 2 { return TypeInfo(dtype: .float32, name: "float16", memberNames: [], isFloat16: true) }
            return TypeInfo(dtype: nil, name: "float\(size * 8)", memberNames: [])
        case H5T_COMPOUND:
            if H5Tget_nmembers(t) == 2 {
                var names = [String]()
                var ok = true
                for k: UInt32 in 0..<2 {
                    let mt = H5Tget_member_type(t, k)
                    defer { H5Tclose(mt) }
                    if H5Tget_class(mt) != H5T_FLOAT || H5Tget_size(mt) * 2 != size { ok = false }
                    if let c = H5Tget_member_name(t, k) { names.append(String(cString: c)); H5free_memory(c) }
                }
                if ok && names.count == 2 {
                    let d: DType = size == 16 ? .complex128 : .complex64
                    return TypeInfo(dtype: d, name: d.rawValue, memberNames: names)
                }
            }
            return TypeInfo(dtype: nil, name: "compound", memberNames: [])
        case H5T_ENUM where size == 1:
            return TypeInfo(dtype: .bool, name: "bool", memberNames: [])
        case H5T_STRING:
            return TypeInfo(dtype: nil, name: "string", memberNames: [])
        default:
            return TypeInfo(dtype: nil, name: "other", memberNames: [])
        }
    }

    /// The in-memory type for a dtype; complex types use the file's member names so that
    /// HDF5 matches the fields ("r"/"i" for h5py, anything else elsewhere).
    static func memoryType(_ d: DType, memberNames: [String] = ["r", "i"], fileType: hid_t? = nil) -> (id: hid_t, owned: Bool) {
        switch d {
        case .bool:
            if let ft = fileType { return (H5Tget_native_type(ft, H5T_DIR_ASCEND), true) }
            return (boolType(), true)
        case .uint8: return (bk_h5t_native_uint8(), false)
        case .int8: return (bk_h5t_native_int8(), false)
        case .int16: return (bk_h5t_native_int16(), false)
        case .uint16: return (bk_h5t_native_uint16(), false)
        case .int32: return (bk_h5t_native_int32(), false)
        case .uint32: return (bk_h5t_native_uint32(), false)
        case .int64: return (bk_h5t_native_int64(), false)
        case .uint64: return (bk_h5t_native_uint64(), false)
        case .float32: return (bk_h5t_native_float(), false)
        case .float64: return (bk_h5t_native_double(), false)
        case .complex64, .complex128:
            let half = d.itemSize / 2
            let part = d == .complex64 ? bk_h5t_native_float() : bk_h5t_native_double()
            let t = H5Tcreate(H5T_COMPOUND, d.itemSize)
            H5Tinsert(t, memberNames[0], 0, part)
            H5Tinsert(t, memberNames[1], half, part)
            return (t, true)
        }
    }

    /// h5py's boolean type: an int8 enum {FALSE: 0, TRUE: 1}.
    static func boolType() -> hid_t {
        let t = H5Tenum_create(bk_h5t_native_int8())
        var f: Int8 = 0, tr: Int8 = 1
        H5Tenum_insert(t, "FALSE", &f)
        H5Tenum_insert(t, "TRUE", &tr)
        return t
    }

    /// Opens a dataset, with the missing-dataset message.
    private func openDataset(_ dpath: String) throws -> hid_t {
        let p = HDF5File.normalise(dpath)
        guard isDataset(p) else { throw FormatError.datasetNotFound(path: path, dataset: p, available: suggestions(for: p)) }
        let d = H5Dopen2(id, p, HDF5File.P)
        guard d >= 0 else { throw FormatError.hdf5(path: path, reason: "dataset \(p) cannot be opened") }
        return d
    }

    /// The extents of a dataspace, checked: a corrupt file can declare extents whose product
    /// (in bytes of the widest element) does not fit in an Int, and is refused here.
    static func shape(ofSpace s: hid_t, path: String, dataset: String) throws -> [Int] {
        let r = Int(H5Sget_simple_extent_ndims(s))
        guard r > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: r)
        H5Sget_simple_extent_dims(s, &dims, nil)
        let shape = dims.compactMap { Int(exactly: $0) }
        guard shape.count == r, ElementCount.of(shape, itemSize: 16) != nil else {
            throw FormatError.badHeader(path: path, reason: "dataset \(dataset) declares extents \(dims) whose element count does not fit in memory addresses")
        }
        return shape
    }

    /// Shape and type of a dataset.
    func describe(_ dpath: String) throws -> ([Int], TypeInfo) {
        let d = try openDataset(dpath)
        defer { H5Dclose(d) }
        let s = H5Dget_space(d); defer { H5Sclose(s) }
        let t = H5Dget_type(d); defer { H5Tclose(t) }
        return (try HDF5File.shape(ofSpace: s, path: path, dataset: HDF5File.normalise(dpath)), HDF5File.typeInfo(t))
    }

    /// Shape of a dataset (empty for a scalar).
    public func shape(of dpath: String) throws -> [Int] { try describe(dpath).0 }

    /// Element type of a dataset (nil when it is not a numeric array type).
    public func dtype(of dpath: String) throws -> DType? { try describe(dpath).1.dtype }

    // MARK: - Reading

    /// An open dataset of a numeric type, valid inside `withNumericDataset`.
    private struct NumericDataset {
        let name: String
        let id: hid_t
        let space: hid_t
        let type: hid_t
        let info: TypeInfo
        let dtype: DType
        let shape: [Int]

        /// The memory type HDF5 converts this dataset to as it reads (its own dtype);
        /// `owned`: the caller closes it.
        func memoryType() -> (id: hid_t, owned: Bool) {
            HDF5File.memoryType(dtype, memberNames: info.memberNames.isEmpty ? ["r", "i"] : info.memberNames, fileType: type)
        }
    }

    /// Opens `dpath`, checks that its type is a numeric one, runs `body` on it and closes
    /// the dataset, its file space and type whatever `body` does.
    private func withNumericDataset<R>(_ dpath: String, _ body: (NumericDataset) throws -> R) throws -> R {
        let p = HDF5File.normalise(dpath)
        let d = try openDataset(p)
        defer { H5Dclose(d) }
        let s = H5Dget_space(d); defer { H5Sclose(s) }
        let t = H5Dget_type(d); defer { H5Tclose(t) }
        let info = HDF5File.typeInfo(t)
        guard let dt = info.dtype else { throw FormatError.unknownDType(path: "\(path):\(p)", dtype: info.name) }
        return try body(NumericDataset(name: p, id: d, space: s, type: t, info: info, dtype: dt, shape: try HDF5File.shape(ofSpace: s, path: path, dataset: p)))
    }

    /// Refuses, before allocating, a whole-dataset read that cannot succeed: a contiguous
    /// dataset whose declared bytes lie past the end of the file (a header declaring 2³⁴
    /// elements in a small file), or any dataset (chunked and compressed ones too, whose
    /// size the file cannot bound) larger in memory than this machine's physical memory.
    private func checkWholeRead(_ ds: NumericDataset, bytesPerElement: Int) throws {
        let n = ds.shape.reduce(1, *)   // shape(ofSpace:) refused counts whose bytes overflow
        let (bytes, overflow) = n.multipliedReportingOverflow(by: bytesPerElement)
        let memory = ProcessInfo.processInfo.physicalMemory
        guard !overflow, UInt64(bytes) <= memory else {
            throw FormatError.unsupported(path: path, reason: "dataset \(ds.name) declares \(n) elements (\(bytes) bytes to read), more than this machine's \(memory) bytes of memory")
        }
        let dcpl = H5Dget_create_plist(ds.id)
        guard dcpl >= 0 else { return }
        defer { H5Pclose(dcpl) }
        guard H5Pget_layout(dcpl) == H5D_CONTIGUOUS, H5Pget_external_count(dcpl) == 0 else { return }
        let offset = UInt64(H5Dget_offset(ds.id))   // HADDR_UNDEF (all bits set) until data is written: fill values
        guard offset != UInt64.max, let size = HDF5File.fileSize(path) else { return }
        let stored = UInt64(n).multipliedReportingOverflow(by: UInt64(H5Tget_size(ds.type)))
        let end = offset.addingReportingOverflow(stored.partialValue)
        if stored.overflow || end.overflow || end.partialValue > size {
            throw FormatError.truncated(path: path, reason: "dataset \(ds.name) declares \(n) elements stored at byte \(offset) (\(stored.partialValue) bytes) but the file has \(size)")
        }
    }

    /// Reads the whole dataset into `buffer` with memory type `mem`.
    private func read(_ d: hid_t, mem: hid_t, into buffer: UnsafeMutableRawPointer?, dpath: String) throws {
        guard H5Dread(d, mem, bk_h5s_all(), bk_h5s_all(), HDF5File.P, buffer) >= 0 else {
            throw FormatError.hdf5(path: path, reason: "reading dataset \(dpath) failed (corrupt file or missing compression filter)")
        }
    }

    /// Reads a numeric dataset keeping its dtype (float16 is widened to float32).
    public func readArray(_ dpath: String) throws -> NDArray {
        try withNumericDataset(dpath) { ds in
            try checkWholeRead(ds, bytesPerElement: ds.dtype.itemSize)
            var a = NDArray(dtype: ds.dtype, shape: ds.shape)
            let (mem, owned) = ds.memoryType()
            defer { if owned { H5Tclose(mem) } }
            if a.count > 0 {
                try a.data.withUnsafeMutableBytes { try read(ds.id, mem: mem, into: $0.baseAddress, dpath: ds.name) }
            }
            return a
        }
    }

    /// Reads a real dataset into a float32 volume, HDF5 converting the type as it reads
    /// straight into the volume's storage (the dataset is held once).
    public func readReal(_ dpath: String) throws -> RealVolume {
        try withNumericDataset(dpath) { ds in
            let (p, dt, shape) = (ds.name, ds.dtype, ds.shape)
            if dt.isComplex {
                throw FormatError.wrongShape(path: path, dataset: p, reason: "is complex (\(dt)); a real array was expected (take its modulus or phase first)")
            }
            if dt == .bool { return try readArray(p).realVolume(source: path, dataset: p) }
            try checkWholeRead(ds, bytesPerElement: MemoryLayout<Float>.size)
            let storage = FloatStorage(count: shape.reduce(1, *))
            if storage.count > 0 { try read(ds.id, mem: bk_h5t_native_float(), into: storage.pointer, dpath: p) }
            return try RealVolume(shape: shape.isEmpty ? [1] : shape, storage: storage)
        }
    }

    /// Reads a dataset as a complex64 volume: an (r, i) compound directly; a real dataset
    /// whose last axis has length 2 as (re, im) pairs; any other real dataset with zero
    /// imaginary part (read in place, then spread out, so it too is held once).
    public func readComplex(_ dpath: String) throws -> ComplexVolume {
        try withNumericDataset(dpath) { ds in
            let (p, dt, shape, info) = (ds.name, ds.dtype, ds.shape, ds.info)
            let n = shape.reduce(1, *)
            if dt == .bool { return try readArray(p).complexVolume(source: path, dataset: p) }
            try checkWholeRead(ds, bytesPerElement: 2 * MemoryLayout<Float>.size)
            if dt.isComplex {
                let storage = FloatStorage(count: 2 * n)
                let (mem, _) = HDF5File.memoryType(.complex64, memberNames: info.memberNames)
                defer { H5Tclose(mem) }
                if n > 0 { try read(ds.id, mem: mem, into: storage.pointer, dpath: ds.name) }
                return try ComplexVolume(shape: shape.isEmpty ? [1] : shape, storage: storage)
            }
            if shape.count >= 2 && shape.last == 2 {
                let storage = FloatStorage(count: n)
                if n > 0 { try read(ds.id, mem: bk_h5t_native_float(), into: storage.pointer, dpath: ds.name) }
                return try ComplexVolume(shape: Array(shape.dropLast()), storage: storage)
            }
            let storage = FloatStorage(count: 2 * n)
            if n > 0 { try read(ds.id, mem: bk_h5t_native_float(), into: storage.pointer, dpath: ds.name) }
            let q = storage.pointer
            var i = n - 1
            while i >= 0 { q[2 &* i] = q[i]; q[2 &* i &+ 1] = 0; i -= 1 }   // backwards: never overwrites unread values
            return try ComplexVolume(shape: shape.isEmpty ? [1] : shape, storage: storage)
        }
    }

    /// A dataset's values as Doubles (small datasets: parameters, curves, geometry).
    public func readDoubles(_ dpath: String) throws -> [Double] {
        let p = HDF5File.normalise(dpath)
        let (shape, info) = try describe(p)
        if info.dtype?.isComplex == true || info.dtype == .bool { return try readArray(p).doubles() }
        guard info.dtype != nil else { throw FormatError.unknownDType(path: "\(path):\(p)", dtype: info.name) }
        let d = try openDataset(p)
        defer { H5Dclose(d) }
        var out = [Double](repeating: 0, count: shape.reduce(1, *))
        if !out.isEmpty { try out.withUnsafeMutableBytes { try read(d, mem: bk_h5t_native_double(), into: $0.baseAddress, dpath: p) } }
        return out
    }

    /// A scalar (or one-element) numeric dataset.
    public func readScalar(_ dpath: String) throws -> Double {
        let v = try readDoubles(dpath)
        guard v.count == 1 else {
            throw FormatError.wrongShape(path: path, dataset: HDF5File.normalise(dpath), reason: "holds \(v.count) values where one number was expected")
        }
        return v[0]
    }

    /// A string dataset (fixed or variable length).
    public func readString(_ dpath: String) throws -> String {
        let p = HDF5File.normalise(dpath)
        let d = try openDataset(p)
        defer { H5Dclose(d) }
        let t = H5Dget_type(d); defer { H5Tclose(t) }
        guard H5Tget_class(t) == H5T_STRING else {
            throw FormatError.wrongShape(path: path, dataset: p, reason: "is not a string")
        }
        return try HDF5File.readString(type: t, path: "\(path):\(p)") { mem, buf in H5Dread(d, mem, bk_h5s_all(), bk_h5s_all(), HDF5File.P, buf) }
    }

    private static func readString(type t: hid_t, path: String, _ reader: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws -> String {
        if H5Tis_variable_str(t) > 0 {
            let mem = H5Tcopy(bk_h5t_c_s1()); defer { H5Tclose(mem) }
            H5Tset_size(mem, -1)   // H5T_VARIABLE, (size_t)-1
            H5Tset_cset(mem, H5Tget_cset(t))
            var ptr: UnsafeMutablePointer<CChar>? = nil
            guard reader(mem, &ptr) >= 0 else { throw FormatError.hdf5(path: path, reason: "cannot read string") }
            defer { if let q = ptr { H5free_memory(q) } }
            return ptr.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(t)
        let mem = H5Tcopy(t); defer { H5Tclose(mem) }
        var buf = [CChar](repeating: 0, count: size + 1)
        guard buf.withUnsafeMutableBytes({ reader(mem, $0.baseAddress!) }) >= 0 else {
            throw FormatError.hdf5(path: path, reason: "cannot read string")
        }
        buf[size] = 0
        return String(cString: buf)
    }

    /// Statistics of a dataset, read in slabs of at most ~16 MiB along the first axis with
    /// HDF5 converting to the dataset's own native type, so a large file is never held whole.
    public func statistics(_ dpath: String, slabBytes: Int = 16 << 20) throws -> ArrayStatistics {
        try withNumericDataset(dpath) { ds in
            let (p, d, fs, dt, shape) = (ds.name, ds.id, ds.space, ds.dtype, ds.shape)
            let n = shape.reduce(1, *)
            // Streamed, so larger than memory is fine; but a dataset declaring far more than
            // the file stores (2⁵⁰ never-written elements read as fill values) would take
            // days: refused when beyond both memory and 1000 times its stored bytes (sparse
            // detector frames compress some 100-fold).
            let declared = UInt64(n) * UInt64(H5Tget_size(ds.type))
            let stored = UInt64(H5Dget_storage_size(d))
            let memory = ProcessInfo.processInfo.physicalMemory
            if declared > memory && declared / 1000 > stored {
                throw FormatError.unsupported(path: path, reason: "dataset \(p) declares \(n) elements (\(declared) bytes) but the file stores \(stored) bytes of it, and they exceed this machine's \(memory) bytes of memory")
            }
            var stats = ArrayStatistics(dtype: dt)
            guard n > 0 else { return stats }
            let (mem, owned) = ds.memoryType()
            defer { if owned { H5Tclose(mem) } }
            let rowBytes = (shape.isEmpty ? 1 : n / max(shape[0], 1)) * dt.itemSize
            let rowsPerSlab = shape.isEmpty ? 1 : max(1, min(shape[0], slabBytes / max(rowBytes, 1)))
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(rowsPerSlab * rowBytes, dt.itemSize), alignment: 64)
            defer { buffer.deallocate() }
            if shape.isEmpty || rowsPerSlab >= shape[0] {
                try read(d, mem: mem, into: buffer, dpath: p)
                stats.accumulate(buffer, count: n)
                return stats
            }
            var start = 0
            while start < shape[0] {
                try Interruption.check()
                let rows = min(rowsPerSlab, shape[0] - start)
                var offset = [hsize_t](repeating: 0, count: shape.count)
                var count = shape.map { hsize_t($0) }
                offset[0] = hsize_t(start); count[0] = hsize_t(rows)
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, offset, nil, count, nil)
                let ms = H5Screate_simple(Int32(shape.count), count, nil)
                defer { H5Sclose(ms) }
                guard H5Dread(d, mem, ms, fs, HDF5File.P, buffer) >= 0 else {
                    throw FormatError.hdf5(path: path, reason: "reading rows \(start)..<\(start + rows) of dataset \(p) failed")
                }
                stats.accumulate(buffer, count: rows * rowBytes / dt.itemSize)
                start += rows
            }
            return stats
        }
    }

    // MARK: - Attributes

    /// All attributes of an object (group or dataset).
    public func attributes(of opath: String) throws -> [String: HDF5Attribute] {
        let p = HDF5File.normalise(opath)
        guard p == "/" || exists(p) else { throw FormatError.datasetNotFound(path: path, dataset: p, available: suggestions(for: p)) }
        let o = H5Oopen(id, p, HDF5File.P)
        guard o >= 0 else { throw FormatError.hdf5(path: path, reason: "cannot open \(p)") }
        defer { H5Oclose(o) }
        var out = [String: HDF5Attribute]()
        var i: hsize_t = 0
        while true {
            let n = H5Aget_name_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, HDF5File.P)
            if n < 0 { break }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            H5Aget_name_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, HDF5File.P)
            let name = String(cString: buf)
            if let v = try readAttribute(o, name, where: p) { out[name] = v }
            i += 1
        }
        return out
    }

    /// One attribute, nil when absent.
    public func attribute(_ name: String, of opath: String) throws -> HDF5Attribute? {
        let p = HDF5File.normalise(opath)
        guard p == "/" || exists(p) else { return nil }
        let o = H5Oopen(id, p, HDF5File.P)
        guard o >= 0 else { return nil }
        defer { H5Oclose(o) }
        guard H5Aexists(o, name) > 0 else { return nil }
        return try readAttribute(o, name, where: p)
    }

    private func readAttribute(_ o: hid_t, _ name: String, where p: String) throws -> HDF5Attribute? {
        let a = H5Aopen(o, name, HDF5File.P)
        guard a >= 0 else { return nil }
        defer { H5Aclose(a) }
        let t = H5Aget_type(a); defer { H5Tclose(t) }
        let s = H5Aget_space(a); defer { H5Sclose(s) }
        let n = Int(H5Sget_simple_extent_npoints(s))
        let scalar = H5Sget_simple_extent_ndims(s) == 0
        switch H5Tget_class(t) {
        case H5T_STRING:
            guard n == 1 else { return nil }
            return .string(try HDF5File.readString(type: t, path: "\(path):\(p)@\(name)") { mem, buf in H5Aread(a, mem, buf) })
        case H5T_INTEGER, H5T_ENUM:
            var v = [Int64](repeating: 0, count: max(n, 1))
            guard H5Aread(a, bk_h5t_native_int64(), &v) >= 0 else { return nil }
            return scalar ? .int(Int(v[0])) : .ints(v.prefix(n).map { Int($0) })
        case H5T_FLOAT:
            var v = [Double](repeating: 0, count: max(n, 1))
            guard H5Aread(a, bk_h5t_native_double(), &v) >= 0 else { return nil }
            return scalar ? .double(v[0]) : .doubles(Array(v.prefix(n)))
        default:
            return nil
        }
    }

    // MARK: - Writing

    private func requireWritable() throws {
        guard writable else { throw FormatError.writeFailed(path: path, reason: "the file is open read-only") }
    }

    private func linkCreationList() -> hid_t {
        let l = H5Pcreate(bk_h5p_link_create())
        H5Pset_create_intermediate_group(l, 1)
        return l
    }

    /// Creates a group and any missing parents (no error if it exists).
    public func createGroup(_ gpath: String) throws {
        try requireWritable()
        let p = HDF5File.normalise(gpath)
        if p == "/" || isGroup(p) { return }
        // Each missing level is made here, with object times off: HDF5's own intermediate
        // groups would carry creation times, and the same run must give the same bytes.
        let gcpl = H5Pcreate(bk_h5p_group_create()); defer { H5Pclose(gcpl) }
        H5Pset_obj_track_times(gcpl, false)
        var prefix = ""
        for part in p.split(separator: "/") {
            prefix += "/" + part
            if isGroup(prefix) { continue }
            let g = H5Gcreate2(id, prefix, HDF5File.P, gcpl, HDF5File.P)
            guard g >= 0 else { throw FormatError.writeFailed(path: path, reason: "cannot create group \(prefix)") }
            H5Gclose(g)
        }
    }

    /// Chunk shape of about `target` bytes: halve the longest axis until it fits.
    static func chunkShape(_ shape: [Int], itemSize: Int, target: Int = 1 << 20) -> [Int] {
        var c = shape.map { max($0, 1) }
        while c.reduce(itemSize, *) > target {
            guard let k = c.indices.max(by: { c[$0] < c[$1] }), c[k] > 1 else { break }
            c[k] = (c[k] + 1) / 2
        }
        return c
    }

    /// Writes a dataset from raw C-order memory of memory type `mem` as file type `fileType`,
    /// chunked and gzip-compressed (level `compression`) unless it is small or compression is nil.
    private func writeRaw(_ bytes: UnsafeRawPointer?, shape: [Int], itemSize: Int, mem: hid_t, fileType: hid_t,
                          at dpath: String, compression: Int?) throws {
        try requireWritable()
        let p = HDF5File.normalise(dpath)
        if exists(p) { H5Ldelete(id, p, HDF5File.P) }
        try createGroup(String(p[..<(p.lastIndex(of: "/") ?? p.startIndex)]))
        let dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), dims, nil)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(bk_h5p_dataset_create()); defer { H5Pclose(dcpl) }
        H5Pset_obj_track_times(dcpl, false)   // no creation times: same inputs, same bytes
        let n = shape.reduce(1, *)
        if let level = compression, !shape.isEmpty, n * itemSize >= 4096, H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 {
            let chunks = HDF5File.chunkShape(shape, itemSize: itemSize).map { hsize_t($0) }
            H5Pset_chunk(dcpl, Int32(chunks.count), chunks)
            H5Pset_deflate(dcpl, UInt32(max(0, min(9, level))))
        }
        let l = linkCreationList(); defer { H5Pclose(l) }
        let d = H5Dcreate2(id, p, fileType, space, l, dcpl, HDF5File.P)
        guard d >= 0 else { throw FormatError.writeFailed(path: path, reason: "cannot create dataset \(p)") }
        defer { H5Dclose(d) }
        if n > 0, H5Dwrite(d, mem, bk_h5s_all(), bk_h5s_all(), HDF5File.P, bytes) < 0 {
            throw FormatError.writeFailed(path: path, reason: "writing dataset \(p) failed (disk full?)")
        }
    }

    /// Writes an array with its dtype (complex as an (r, i) compound, bool as h5py's enum).
    public func write(_ a: NDArray, at dpath: String, compression: Int? = 4) throws {
        let (mem, owned) = HDF5File.memoryType(a.dtype)
        defer { if owned { H5Tclose(mem) } }
        try a.data.withUnsafeBytes { b in
            try writeRaw(b.baseAddress, shape: a.shape, itemSize: a.dtype.itemSize, mem: mem, fileType: mem, at: dpath, compression: compression)
        }
    }

    /// Writes a real volume as float32, straight from its storage.
    public func write(_ v: RealVolume, at dpath: String, compression: Int? = 4) throws {
        try v.withUnsafeFloats { b in
            try writeRaw(b.baseAddress, shape: v.shape, itemSize: 4, mem: bk_h5t_native_float(), fileType: bk_h5t_native_float(),
                         at: dpath, compression: compression)
        }
    }

    /// Writes a complex volume as complex64 (an (r, i) compound, as h5py does).
    public func write(_ v: ComplexVolume, at dpath: String, compression: Int? = 4) throws {
        let (t, _) = HDF5File.memoryType(.complex64)
        defer { H5Tclose(t) }
        try v.withUnsafeFloats { b in
            try writeRaw(b.baseAddress, shape: v.shape, itemSize: 8, mem: t, fileType: t, at: dpath, compression: compression)
        }
    }

    /// Writes a scalar float64 dataset.
    public func write(scalar: Double, at dpath: String) throws {
        var x = scalar
        try writeRaw(&x, shape: [], itemSize: 8, mem: bk_h5t_native_double(), fileType: bk_h5t_native_double(), at: dpath, compression: nil)
    }

    /// Writes a 1D float64 dataset.
    public func write(doubles: [Double], at dpath: String) throws {
        try write(NDArray(doubles), at: dpath, compression: nil)
    }

    /// Writes a scalar UTF-8 variable-length string dataset (h5py reads it as str).
    public func write(string: String, at dpath: String) throws {
        let t = HDF5File.stringType(); defer { H5Tclose(t) }
        let c = strdup(string); defer { free(c) }
        let ptrs: [UnsafeMutablePointer<CChar>?] = [c]
        try ptrs.withUnsafeBytes { b in
            try writeRaw(b.baseAddress, shape: [], itemSize: 8, mem: t, fileType: t, at: dpath, compression: nil)
        }
    }

    static func stringType() -> hid_t {
        let t = H5Tcopy(bk_h5t_c_s1())
        H5Tset_size(t, -1)   // H5T_VARIABLE, (size_t)-1
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    /// Sets (or replaces) an attribute on a group or dataset; the object must exist
    /// (use `createGroup` first for a new group).
    public func setAttribute(_ name: String, _ value: HDF5Attribute, on opath: String) throws {
        try requireWritable()
        let p = HDF5File.normalise(opath)
        if p != "/" && !exists(p) { try createGroup(p) }
        let o = H5Oopen(id, p, HDF5File.P)
        guard o >= 0 else { throw FormatError.writeFailed(path: path, reason: "cannot open \(p) to set attribute \(name)") }
        defer { H5Oclose(o) }
        if H5Aexists(o, name) > 0 { H5Adelete(o, name) }
        func make(_ type: hid_t, count: Int?, _ write: (hid_t) -> herr_t) throws {
            let s: hid_t
            if let n = count { var d = [hsize_t(n)]; s = H5Screate_simple(1, &d, nil) } else { s = H5Screate(H5S_SCALAR) }
            defer { H5Sclose(s) }
            let a = H5Acreate2(o, name, type, s, HDF5File.P, HDF5File.P)
            guard a >= 0 else { throw FormatError.writeFailed(path: path, reason: "cannot create attribute \(name) on \(p)") }
            defer { H5Aclose(a) }
            guard write(a) >= 0 else { throw FormatError.writeFailed(path: path, reason: "cannot write attribute \(name) on \(p)") }
        }
        switch value {
        case .int(let v):
            var x = Int64(v)
            try make(bk_h5t_native_int64(), count: nil) { H5Awrite($0, bk_h5t_native_int64(), &x) }
        case .double(let v):
            var x = v
            try make(bk_h5t_native_double(), count: nil) { H5Awrite($0, bk_h5t_native_double(), &x) }
        case .ints(let v):
            var x = v.map { Int64($0) }
            try make(bk_h5t_native_int64(), count: v.count) { H5Awrite($0, bk_h5t_native_int64(), &x) }
        case .doubles(let v):
            var x = v
            try make(bk_h5t_native_double(), count: v.count) { H5Awrite($0, bk_h5t_native_double(), &x) }
        case .string(let s):
            let t = HDF5File.stringType(); defer { H5Tclose(t) }
            let c = strdup(s); defer { free(c) }
            var ptrs: [UnsafeMutablePointer<CChar>?] = [c]
            try make(t, count: nil) { H5Awrite($0, t, &ptrs) }
        }
    }
}
