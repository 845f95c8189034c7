import Foundation
import Numerics
import CPNG   // zlib comes with libpng's wrapper

/// numpy's .npz: a zip archive of .npy members, stored or deflated (np.savez /
/// np.savez_compressed). Zip64 archives are read.
public enum NPZ {
    /// One member of the archive, as its central directory describes it.
    struct Entry {
        var name: String
        var method: UInt16
        var crc: UInt32
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
        var arrayName: String { name.hasSuffix(".npy") ? String(name.dropLast(4)) : name }
    }

    @inline(__always) static func u16(_ b: [UInt8], _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    @inline(__always) static func u32(_ b: [UInt8], _ o: Int) -> Int { u16(b, o) | u16(b, o + 2) << 16 }
    @inline(__always) static func u64(_ b: [UInt8], _ o: Int) -> Int { u32(b, o) | u32(b, o + 4) << 32 }

    static func entries(_ f: InputFile) throws -> [Entry] {
        let tailLen = min(f.size, 65_557)
        let tail = [UInt8](try f.readPrefix(tailLen, at: f.size - tailLen))
        var eocd = -1
        var i = tail.count - 22
        while i >= 0 {
            if tail[i] == 0x50 && tail[i + 1] == 0x4B && tail[i + 2] == 0x05 && tail[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else {
            throw FormatError.badHeader(path: f.path, reason: "no zip end-of-directory record (not an NPZ archive, or truncated)")
        }
        var count = u16(tail, eocd + 10)
        var cdSize = u32(tail, eocd + 12)
        var cdOffset = u32(tail, eocd + 16)
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the classic record.
            let locAt = f.size - tailLen + eocd - 20
            let loc = [UInt8](try f.read(count: 20, at: locAt, what: "zip64 locator"))
            guard u32(loc, 0) == 0x0706_4B50 else { throw FormatError.badHeader(path: f.path, reason: "zip64 locator missing") }
            let rec = [UInt8](try f.read(count: 56, at: u64(loc, 8), what: "zip64 end record"))
            guard u32(rec, 0) == 0x0606_4B50 else { throw FormatError.badHeader(path: f.path, reason: "zip64 end record missing") }
            count = u64(rec, 32); cdSize = u64(rec, 40); cdOffset = u64(rec, 48)
        }
        // Zip64 fields are 8 bytes read into an Int: a hostile archive can make them negative
        // or make their sum overflow, so both are checked before use.
        guard count >= 0, cdSize >= 0, cdOffset >= 0 else {
            throw FormatError.badHeader(path: f.path, reason: "the zip directory declares a negative size or offset")
        }
        guard let cdEnd = ElementCount.sum(cdOffset, cdSize), cdEnd <= f.size else {
            throw FormatError.truncated(path: f.path, reason: "the zip directory lies beyond the end of the file")
        }
        let cd = [UInt8](try f.read(count: cdSize, at: cdOffset, what: "zip directory"))
        var out = [Entry]()
        var p = 0
        for _ in 0..<count {
            guard p + 46 <= cd.count, u32(cd, p) == 0x0201_4B50 else {
                throw FormatError.badHeader(path: f.path, reason: "corrupt zip directory entry")
            }
            let nlen = u16(cd, p + 28), elen = u16(cd, p + 30), clen = u16(cd, p + 32)
            guard p + 46 + nlen + elen <= cd.count else { throw FormatError.badHeader(path: f.path, reason: "corrupt zip directory entry") }
            let name = String(decoding: cd[(p + 46)..<(p + 46 + nlen)], as: UTF8.self)
            var e = Entry(name: name, method: UInt16(u16(cd, p + 10)), crc: UInt32(u32(cd, p + 16)),
                          compressedSize: u32(cd, p + 20), size: u32(cd, p + 24), localHeaderOffset: u32(cd, p + 42))
            // Zip64 extra field: the 0xFFFFFFFF values follow in a fixed order.
            var x = p + 46 + nlen
            let xEnd = x + elen
            while x + 4 <= xEnd {
                let id = u16(cd, x), len = u16(cd, x + 2)
                if id == 1 {
                    var q = x + 4
                    if e.size == 0xFFFF_FFFF { e.size = u64(cd, q); q += 8 }
                    if e.compressedSize == 0xFFFF_FFFF { e.compressedSize = u64(cd, q); q += 8 }
                    if e.localHeaderOffset == 0xFFFF_FFFF { e.localHeaderOffset = u64(cd, q) }
                }
                x += 4 + len
            }
            guard e.size >= 0, (0...f.size).contains(e.compressedSize), (0..<f.size).contains(e.localHeaderOffset) else {
                throw FormatError.badHeader(path: f.path, reason: "member \(e.name) declares a size or offset outside the file")
            }
            // Deflate expands at most ~1032:1; a larger declared size is corrupt (and would be
            // allocated before inflating).
            if (e.method == 0 && e.size != e.compressedSize) ||
               (e.method == 8 && e.size > e.compressedSize.multipliedReportingOverflow(by: 1032).partialValue + 1024) {
                throw FormatError.badHeader(path: f.path, reason: "member \(e.name) declares \(e.size) bytes from \(e.compressedSize) compressed bytes, which is impossible")
            }
            out.append(e)
            p += 46 + nlen + elen + clen
        }
        return out
    }

    /// Names of the arrays in an archive (member names without ".npy").
    public static func memberNames(_ path: String) throws -> [String] {
        try entries(InputFile(path)).map { $0.arrayName }
    }

    /// The raw .npy bytes of a member.
    static func memberData(_ f: InputFile, _ e: Entry) throws -> Data {
        let lh = [UInt8](try f.read(count: 30, at: e.localHeaderOffset, what: "member \(e.name) header"))
        guard u32(lh, 0) == 0x0403_4B50 else {
            throw FormatError.badHeader(path: f.path, reason: "member \(e.name) has no local header")
        }
        let start = e.localHeaderOffset + 30 + u16(lh, 26) + u16(lh, 28)
        guard let end = ElementCount.sum(start, e.compressedSize), end <= f.size else {
            throw FormatError.truncated(path: f.path, reason: "member \(e.name) needs \(e.compressedSize) bytes but the file ends first")
        }
        let raw = try f.read(count: e.compressedSize, at: start)
        let out: Data
        switch e.method {
        case 0: out = raw
        case 8: out = try inflate(raw, size: e.size, path: f.path, member: e.name)
        default:
            throw FormatError.unsupported(path: f.path, reason: "member \(e.name) uses zip compression method \(e.method) (only stored and deflated are read)")
        }
        let crc = out.withUnsafeBytes { b in crc32(0, b.bindMemory(to: Bytef.self).baseAddress, uInt(b.count)) }
        if UInt32(crc) != e.crc {
            throw FormatError.badHeader(path: f.path, reason: "member \(e.name) fails its CRC check (corrupt archive)")
        }
        return out
    }

    /// The first bytes (up to `count`) of a member's .npy content, enough for its header,
    /// without reading or inflating the whole member.
    static func memberPrefix(_ f: InputFile, _ e: Entry, count: Int = 1 << 16) throws -> Data {
        let lh = [UInt8](try f.read(count: 30, at: e.localHeaderOffset, what: "member \(e.name) header"))
        guard u32(lh, 0) == 0x0403_4B50 else {
            throw FormatError.badHeader(path: f.path, reason: "member \(e.name) has no local header")
        }
        let start = e.localHeaderOffset + 30 + u16(lh, 26) + u16(lh, 28)
        let want = min(count, e.size)
        switch e.method {
        case 0:
            return try f.readPrefix(want, at: start)
        case 8:
            // Deflate output of the first compressed bytes; feed more until `want` bytes come out.
            var strm = z_stream()
            guard inflateInit2_(&strm, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw FormatError.unreadable(path: f.path, reason: "zlib could not start")
            }
            defer { inflateEnd(&strm) }
            var out = Data(count: want)
            var produced = 0, fed = 0
            while produced < want && fed < e.compressedSize {
                let piece = try f.read(count: min(1 << 16, e.compressedSize - fed), at: start + fed)
                fed += piece.count
                var status: Int32 = Z_OK
                piece.withUnsafeBytes { s in
                    out.withUnsafeMutableBytes { d in
                        strm.next_in = UnsafeMutablePointer(mutating: s.bindMemory(to: Bytef.self).baseAddress)
                        strm.avail_in = uInt(s.count)
                        strm.next_out = d.bindMemory(to: Bytef.self).baseAddress! + produced
                        strm.avail_out = uInt(want - produced)
                        status = CPNG.inflate(&strm, Z_NO_FLUSH)
                        produced = want - Int(strm.avail_out)
                    }
                }
                if status == Z_STREAM_END { break }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    throw FormatError.badHeader(path: f.path, reason: "member \(e.name) is not valid deflate data")
                }
            }
            return out.prefix(produced)
        default:
            throw FormatError.unsupported(path: f.path, reason: "member \(e.name) uses zip compression method \(e.method) (only stored and deflated are read)")
        }
    }

    static func inflate(_ src: Data, size: Int, path: String, member: String) throws -> Data {
        var out = Data(count: size)
        var strm = z_stream()
        guard inflateInit2_(&strm, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError.unreadable(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&strm) }
        var status: Int32 = Z_OK
        var produced = 0
        src.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { d in
                strm.next_in = UnsafeMutablePointer(mutating: s.bindMemory(to: Bytef.self).baseAddress)
                strm.avail_in = uInt(s.count)
                let dp = d.bindMemory(to: Bytef.self).baseAddress
                // avail_out is 32-bit: feed the output in pieces.
                while true {
                    let room = min(d.count - produced, 1 << 30)
                    strm.next_out = dp.map { $0 + produced }
                    strm.avail_out = uInt(room)
                    status = CPNG.inflate(&strm, Z_NO_FLUSH)
                    produced += room - Int(strm.avail_out)
                    if status != Z_OK || produced >= d.count { break }
                }
            }
        }
        guard (status == Z_STREAM_END || status == Z_OK) && produced == size else {
            throw FormatError.truncated(path: path, reason: "member \(member) inflates to \(produced) of its \(size) bytes (zlib status \(status))")
        }
        return out
    }

    /// Reads one member (`name` with or without ".npy"); when nil, the only member.
    public static func read(_ path: String, member: String?) throws -> NDArray {
        let f = try InputFile(path)
        let all = try entries(f)
        let e: Entry
        if let m = member {
            guard let hit = all.first(where: { $0.arrayName == m || $0.name == m }) else {
                throw FormatError.datasetNotFound(path: path, dataset: m, available: all.map { $0.arrayName })
            }
            e = hit
        } else {
            guard all.count == 1 else {
                if all.isEmpty { throw FormatError.badHeader(path: path, reason: "the archive holds no arrays") }
                throw FormatError.datasetNeeded(path: path, available: all.map { $0.arrayName })
            }
            e = all[0]
        }
        return try NPY.read(data: memberData(f, e), name: "\(path):\(e.arrayName)")
    }

    /// Reads every member, in archive order.
    public static func readAll(_ path: String) throws -> [(name: String, array: NDArray)] {
        let f = try InputFile(path)
        return try entries(f).map { e in (e.arrayName, try NPY.read(data: memberData(f, e), name: "\(path):\(e.arrayName)")) }
    }

    /// Writes an archive of named arrays (".npy" is appended to member names), deflated
    /// when `compressed` (like np.savez_compressed), stored otherwise (like np.savez).
    public static func write(_ arrays: [(name: String, array: NDArray)], to path: String,
                             compressed: Bool = false, overwrite: Bool) throws {
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            let out = try OutputFile(tmp, shownAs: path)
            var central = Data()
            for (name, a) in arrays {
                let memberName = name.hasSuffix(".npy") ? name : name + ".npy"
                let header = NPY.encodeHeader(dtype: a.dtype, shape: a.shape)
                let size = header.count + a.data.count
                var crc = header.withUnsafeBytes { crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count)) }
                a.data.withUnsafeBytes { b in
                    var off = 0
                    while off < b.count {
                        let n = min(b.count - off, 1 << 30)
                        crc = crc32(crc, b.bindMemory(to: Bytef.self).baseAddress! + off, uInt(n))
                        off += n
                    }
                }
                var payload: Data? = nil
                if compressed { payload = try deflate([header, a.data], path: path) }
                let csize = payload?.count ?? size
                guard csize < 0xFFFF_FFFF, size < 0xFFFF_FFFF, out.offset < 0xFFFF_FFFF else {
                    throw FormatError.unsupported(path: path, reason: "member \(name) is over 4 GiB, which needs zip64 (write .npy or .h5 instead)")
                }
                let offset = out.offset
                let nameBytes = Data(memberName.utf8)
                let method: UInt16 = compressed ? 8 : 0
                // Local file header.
                try out.write(le: UInt32(0x0403_4B50)); try out.write(le: UInt16(20)); try out.write(le: UInt16(0))
                try out.write(le: method); try out.write(le: UInt16(0)); try out.write(le: UInt16(0x21))
                try out.write(le: UInt32(crc)); try out.write(le: UInt32(csize)); try out.write(le: UInt32(size))
                try out.write(le: UInt16(nameBytes.count)); try out.write(le: UInt16(0))
                try out.write(nameBytes)
                if let p = payload { try out.write(p) } else { try out.write(header); try out.write(a.data) }
                // Its central directory record.
                var c = Data()
                func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { c.append(contentsOf: $0) } }
                le(UInt32(0x0201_4B50)); le(UInt16(20)); le(UInt16(20)); le(UInt16(0)); le(method)
                le(UInt16(0)); le(UInt16(0x21)); le(UInt32(crc)); le(UInt32(csize)); le(UInt32(size))
                le(UInt16(nameBytes.count)); le(UInt16(0)); le(UInt16(0)); le(UInt16(0)); le(UInt16(0))
                le(UInt32(0o100644 << 16)); le(UInt32(offset))
                c.append(nameBytes)
                central.append(c)
            }
            let cdOffset = out.offset
            try out.write(central)
            try out.write(le: UInt32(0x0605_4B50)); try out.write(le: UInt16(0)); try out.write(le: UInt16(0))
            try out.write(le: UInt16(arrays.count)); try out.write(le: UInt16(arrays.count))
            try out.write(le: UInt32(central.count)); try out.write(le: UInt32(cdOffset)); try out.write(le: UInt16(0))
            try out.close()
        }
    }

    /// Raw-deflates the concatenation of `segments` (header and data, never joined in memory).
    static func deflate(_ segments: [Data], path: String) throws -> Data {
        var strm = z_stream()
        guard deflateInit2_(&strm, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FormatError.writeFailed(path: path, reason: "zlib could not start")
        }
        defer { deflateEnd(&strm) }
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        for (k, segment) in segments.enumerated() {
            let last = k == segments.count - 1
            segment.withUnsafeBytes { s in
                var fed = 0
                let sp = s.bindMemory(to: Bytef.self).baseAddress
                while true {
                    if strm.avail_in == 0 && fed < s.count {
                        let n = min(s.count - fed, 1 << 30)
                        strm.next_in = UnsafeMutablePointer(mutating: sp! + fed)
                        strm.avail_in = uInt(n)
                        fed += n
                    }
                    let flush = (last && fed >= s.count) ? Z_FINISH : Z_NO_FLUSH
                    buffer.withUnsafeMutableBufferPointer { b in
                        strm.next_out = b.baseAddress
                        strm.avail_out = uInt(b.count)
                        status = CPNG.deflate(&strm, flush)
                        out.append(b.baseAddress!, count: b.count - Int(strm.avail_out))
                    }
                    if status == Z_STREAM_END || status == Z_STREAM_ERROR { break }
                    // Segment consumed and zlib has nothing pending for it: next segment.
                    if !last && fed >= s.count && strm.avail_in == 0 && strm.avail_out != 0 { break }
                }
            }
        }
        guard status == Z_STREAM_END else { throw FormatError.writeFailed(path: path, reason: "zlib deflate failed (status \(status))") }
        return out
    }
}
