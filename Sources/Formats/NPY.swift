import Foundation
import Numerics

/// numpy's .npy format (versions 1.0, 2.0, 3.0), read and written.
/// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// What an .npy header declares.
    public struct Header: Equatable {
        public var dtype: DType
        public var bigEndian: Bool
        public var fortranOrder: Bool
        public var shape: [Int]
        /// Byte offset of the first element.
        public var dataOffset: Int
        public var count: Int { shape.reduce(1, *) }
        public var dataBytes: Int { count * dtype.itemSize }
    }

    /// Reads the header from the first bytes of a file (`prefix` must hold at least the
    /// whole header; `fileSize` is used to report truncation).
    static func parseHeader(_ prefix: Data, path: String) throws -> Header {
        let b = [UInt8](prefix.prefix(12))
        guard b.count >= 10, Array(b[0..<6]) == magic else {
            if b.count < 10 && Array(b.prefix(min(6, b.count))) == Array(magic.prefix(min(6, b.count))) && !b.isEmpty {
                throw FormatError.truncated(path: path, reason: "the NPY header is cut short (\(b.count) bytes)")
            }
            throw FormatError.badHeader(path: path, reason: "it does not start with the NPY magic string \\x93NUMPY")
        }
        let major = b[6]
        let headerLen: Int, start: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8; start = 10
        case 2, 3:
            guard b.count >= 12 else { throw FormatError.truncated(path: path, reason: "the NPY header is cut short") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        default:
            throw FormatError.badHeader(path: path, reason: "NPY format version \(major).\(b[7]) is not 1, 2 or 3")
        }
        guard prefix.count >= start + headerLen else {
            throw FormatError.truncated(path: path, reason: "the NPY header declares \(headerLen) bytes but the file ends after \(prefix.count - start)")
        }
        let textData = prefix.subdata(in: (prefix.startIndex + start)..<(prefix.startIndex + start + headerLen))
        guard let text = String(data: textData, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw FormatError.badHeader(path: path, reason: "the NPY header is not text")
        }
        let descr = try field(text, "descr", path: path)
        let fortran = try field(text, "fortran_order", path: path)
        let shapeText = try field(text, "shape", path: path)
        guard descr.hasPrefix("'") || descr.hasPrefix("\"") else {
            throw FormatError.unknownDType(path: path, dtype: descr)   // structured dtype: a list
        }
        let d = String(descr.dropFirst().dropLast())
        guard let (dtype, big) = DType.fromNPY(d) else { throw FormatError.unknownDType(path: path, dtype: d) }
        guard fortran == "True" || fortran == "False" else {
            throw FormatError.badHeader(path: path, reason: "fortran_order is '\(fortran)'")
        }
        let inner = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        var shape = [Int]()
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0 else { throw FormatError.badHeader(path: path, reason: "shape \(shapeText) is not a tuple of sizes") }
            shape.append(n)
        }
        // The shape is untrusted: its byte count (and the end of the data) must fit in an Int.
        guard let bytes = ElementCount.of(shape, itemSize: dtype.itemSize),
              ElementCount.sum(start + headerLen, bytes) != nil else {
            throw FormatError.badHeader(path: path, reason: "shape \(shapeText) of \(dtype) declares more elements than any file can hold")
        }
        return Header(dtype: dtype, bigEndian: big, fortranOrder: fortran == "True", shape: shape,
                      dataOffset: start + headerLen)
    }

    /// The text of a value in the header's Python dict literal.
    private static func field(_ text: String, _ key: String, path: String) throws -> String {
        guard let k = text.range(of: "'\(key)'") ?? text.range(of: "\"\(key)\"") else {
            throw FormatError.badHeader(path: path, reason: "the NPY header has no '\(key)' entry")
        }
        guard let colon = text[k.upperBound...].firstIndex(of: ":") else {
            throw FormatError.badHeader(path: path, reason: "the NPY header entry '\(key)' has no value")
        }
        var i = text.index(after: colon)
        while i < text.endIndex && text[i] == " " { i = text.index(after: i) }
        guard i < text.endIndex else { throw FormatError.badHeader(path: path, reason: "the NPY header entry '\(key)' has no value") }
        let c = text[i]
        var j = i
        if c == "'" || c == "\"" {
            j = text.index(after: i)
            while j < text.endIndex && text[j] != c { j = text.index(after: j) }
            guard j < text.endIndex else { throw FormatError.badHeader(path: path, reason: "unterminated string in the NPY header") }
            return String(text[i...j])
        }
        if c == "(" || c == "[" {
            let close: Character = c == "(" ? ")" : "]"
            var depth = 0
            while j < text.endIndex {
                if text[j] == c { depth += 1 }
                if text[j] == close { depth -= 1; if depth == 0 { return String(text[i...j]) } }
                j = text.index(after: j)
            }
            throw FormatError.badHeader(path: path, reason: "unbalanced brackets in the NPY header")
        }
        while j < text.endIndex && text[j] != "," && text[j] != "}" { j = text.index(after: j) }
        return text[i..<j].trimmingCharacters(in: .whitespaces)
    }

    /// Reads and checks the header of an .npy file, including that the file holds all the data.
    public static func header(of file: String) throws -> Header {
        let f = try InputFile(file)
        return try header(f)
    }

    static func header(_ f: InputFile) throws -> Header {
        var prefix = try f.readPrefix(4096)
        var h: Header
        do { h = try parseHeader(prefix, path: f.path) } catch FormatError.truncated(_, _) where f.size > prefix.count {
            prefix = try f.readPrefix(min(f.size, 1 << 26))   // a very long (v2/v3) header
            h = try parseHeader(prefix, path: f.path)
        }
        let need = h.dataOffset + h.dataBytes
        if f.size < need {
            throw FormatError.truncated(path: f.path, reason: "the header declares shape \(shapeText(h.shape)) of \(h.dtype) (\(h.dataBytes) bytes of data) but only \(max(0, f.size - h.dataOffset)) bytes follow it")
        }
        return h
    }

    /// Reads an .npy file as it is (dtype kept; big-endian converted, Fortran order made C order).
    public static func read(_ path: String) throws -> NDArray {
        let f = try InputFile(path)
        let h = try header(f)
        var data = try f.read(count: h.dataBytes, at: h.dataOffset)
        return try finish(h, &data, path: path)
    }

    /// Parses an in-memory .npy (an NPZ member).
    static func read(data: Data, name: String) throws -> NDArray {
        let h = try parseHeader(data, path: name)
        guard data.count >= h.dataOffset + h.dataBytes else {
            throw FormatError.truncated(path: name, reason: "the header declares shape \(shapeText(h.shape)) of \(h.dtype) (\(h.dataBytes) bytes) but only \(max(0, data.count - h.dataOffset)) bytes follow it")
        }
        var body = data.subdata(in: (data.startIndex + h.dataOffset)..<(data.startIndex + h.dataOffset + h.dataBytes))
        return try finish(h, &body, path: name)
    }

    private static func finish(_ h: Header, _ data: inout Data, path: String) throws -> NDArray {
        if h.bigEndian {
            data.withUnsafeMutableBytes { ElementCodec.swapInPlace($0.baseAddress!, dtype: h.dtype, count: h.count) }
        }
        if h.fortranOrder && h.shape.count > 1 {
            data = NDArray.fortranToC(data, shape: h.shape, itemSize: h.dtype.itemSize)
        }
        return try NDArray(dtype: h.dtype, shape: h.shape, data: data)
    }

    /// Reads an .npy file into Float storage (complex as pairs when `complex`), converting
    /// the dtype in slabs as it streams, so only the destination volume is held in memory.
    static func readFloats(_ path: String, complex: Bool) throws -> (shape: [Int], storage: FloatStorage) {
        let f = try InputFile(path)
        let h = try header(f)
        if h.dtype.isComplex && !complex {
            throw FormatError.wrongShape(path: path, dataset: nil,
                                         reason: "is complex (\(h.dtype)); a real array was expected (take its modulus or phase first)")
        }
        let shape = h.shape.isEmpty ? [1] : h.shape
        if h.fortranOrder && h.shape.count > 1 {
            let a = try read(path)
            let storage = FloatStorage(count: a.count * (complex ? 2 : 1))
            a.data.withUnsafeBytes { ElementCodec.decode($0.baseAddress!, dtype: a.dtype, count: a.count, swap: false,
                                                        into: storage.pointer, complexOut: complex) }
            return (shape, storage)
        }
        let comps = complex ? 2 : 1
        let storage = FloatStorage(count: h.count * comps)
        let directFloat = !h.bigEndian && ((h.dtype == .float32 && !complex) || h.dtype == .complex64)
        if directFloat {
            try f.read(into: storage.pointer, count: h.dataBytes, at: h.dataOffset)
            return (shape, storage)
        }
        let chunk = max(1, (8 << 20) / h.dtype.itemSize)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk * h.dtype.itemSize, alignment: 64)
        defer { scratch.deallocate() }
        var i = 0
        while i < h.count {
            try Interruption.check()
            let n = min(chunk, h.count - i)
            try f.read(into: scratch, count: n * h.dtype.itemSize, at: h.dataOffset + i * h.dtype.itemSize)
            ElementCodec.decode(scratch, dtype: h.dtype, count: n, swap: h.bigEndian,
                                into: storage.pointer + i * comps, complexOut: complex)
            i += n
        }
        return (shape, storage)
    }

    /// Statistics of an .npy file, streamed in slabs (order does not matter for them).
    public static func statistics(_ path: String) throws -> ArrayStatistics {
        let f = try InputFile(path)
        let h = try header(f)
        var s = ArrayStatistics(dtype: h.dtype)
        let chunk = max(1, (16 << 20) / h.dtype.itemSize)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunk * h.dtype.itemSize, alignment: 64)
        defer { scratch.deallocate() }
        var i = 0
        while i < h.count {
            try Interruption.check()
            let n = min(chunk, h.count - i)
            try f.read(into: scratch, count: n * h.dtype.itemSize, at: h.dataOffset + i * h.dtype.itemSize)
            if h.bigEndian { ElementCodec.swapInPlace(scratch, dtype: h.dtype, count: n) }
            s.accumulate(scratch, count: n)
            i += n
        }
        return s
    }

    static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }

    /// The header bytes for a C-order little-endian array (version 1.0, or 2.0 when long),
    /// padded so the data starts on a 64-byte boundary as numpy does.
    public static func encodeHeader(dtype: DType, shape: [Int]) -> Data {
        let dict = "{'descr': '\(dtype.npyDescr)', 'fortran_order': False, 'shape': \(shapeText(shape)), }"
        var version: UInt8 = 1
        var prefixLen = 10
        if dict.utf8.count + 1 + 10 > 65535 { version = 2; prefixLen = 12 }
        let total = ((prefixLen + dict.utf8.count + 1 + 63) / 64) * 64
        let headerLen = total - prefixLen
        var d = Data(magic)
        d.append(version); d.append(0)
        if version == 1 {
            d.append(UInt8(headerLen & 0xFF)); d.append(UInt8(headerLen >> 8))
        } else {
            for k in 0..<4 { d.append(UInt8((headerLen >> (8 * k)) & 0xFF)) }
        }
        d.append(contentsOf: Array(dict.utf8))
        d.append(contentsOf: [UInt8](repeating: 0x20, count: headerLen - dict.utf8.count - 1))
        d.append(0x0A)
        return d
    }

    /// A whole .npy file in memory (used for NPZ members).
    public static func encode(_ a: NDArray) -> Data {
        var d = encodeHeader(dtype: a.dtype, shape: a.shape)
        d.append(a.data)
        return d
    }

    /// Writes an .npy file (safely: temporary name, then rename).
    public static func write(_ a: NDArray, to path: String, overwrite: Bool) throws {
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            let out = try OutputFile(tmp, shownAs: path)
            try out.write(encodeHeader(dtype: a.dtype, shape: a.shape))
            try out.write(a.data)
            try out.close()
        }
    }

    /// Writes a volume as float32 / complex64 .npy straight from its storage.
    public static func write<E>(_ v: Volume<E>, to path: String, overwrite: Bool) throws {
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            let out = try OutputFile(tmp, shownAs: path)
            try out.write(encodeHeader(dtype: E.components == 2 ? .complex64 : .float32, shape: v.shape))
            try v.withUnsafeFloats { try out.write(UnsafeRawPointer($0.baseAddress!), count: $0.count * 4) }
            try out.close()
        }
    }
}
