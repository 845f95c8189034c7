import CTIFF
import Foundation
import Numerics

// Detector frames in TIFF files (through libtiff): single- and multi-page greyscale
// images of 8-, 16- or 32-bit integers (signed or not) or 32/64-bit floats, read as
// Float32. libtiff's own messages are captured (never printed) and become the reason
// of a FormatError naming the file and page.

/// libtiff reports errors through a process-wide handler: it is replaced once by one that
/// records the last message, read back under a lock by the reader that failed.
enum TIFFMessages {
    static let lock = NSLock()
    nonisolated(unsafe) static var last = ""

    static let installed: Void = {
        let handler: TIFFErrorHandler = { module, fmt, args in
            guard let fmt, let args else { return }
            var buf = [CChar](repeating: 0, count: 512)
            _ = vsnprintf(&buf, buf.count, fmt, args)
            let text = String(cString: buf)
            let m = module.map { String(cString: $0) } ?? ""
            TIFFMessages.lock.lock()
            TIFFMessages.last = m.isEmpty ? text : "\(m): \(text)"
            TIFFMessages.lock.unlock()
        }
        _ = TIFFSetErrorHandler(handler)
        _ = TIFFSetWarningHandler(nil)   // warnings (unknown tags…) are not errors: drop them
    }()

    static func reset() { lock.lock(); last = ""; lock.unlock() }
    static func take(_ fallback: String) -> String {
        lock.lock(); defer { lock.unlock() }
        let s = last.isEmpty ? fallback : last
        last = ""
        return s
    }
}

/// An open TIFF file of one or more greyscale pages, all of one size.
public final class TIFFReader {
    public let path: String
    /// Number of pages (frames).
    public let pageCount: Int
    public let rows: Int
    public let columns: Int
    let tif: OpaquePointer

    /// [pages, rows, columns].
    public var shape: [Int] { [pageCount, rows, columns] }

    public init(_ path: String) throws {
        _ = TIFFMessages.installed
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw FormatError.fileNotFound(path: path) }
            throw FormatError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FormatError.unreadable(path: path, reason: "it is a directory") }
        TIFFMessages.reset()
        guard let t = TIFFOpen(path, "r") else {
            throw FormatError.badHeader(path: path, reason: "not a readable TIFF file (\(TIFFMessages.take("libtiff could not open it")))")
        }
        tif = t
        self.path = path
        TIFFMessages.reset()
        let n = Int(TIFFNumberOfDirectories(t))
        // A page chain cut short (a truncated file) makes libtiff complain while counting.
        let complaint = TIFFMessages.take("")
        if !complaint.isEmpty {
            TIFFClose(t)
            throw FormatError.truncated(path: path, reason: "its chain of pages breaks after page \(n) (\(complaint))")
        }
        guard n >= 1 else {
            TIFFClose(t)
            throw FormatError.badHeader(path: path, reason: "the TIFF holds no image")
        }
        pageCount = n
        guard TIFFSetDirectory(t, 0) == 1 else {
            TIFFClose(t)
            throw FormatError.truncated(path: path, reason: TIFFMessages.take("its first page cannot be read"))
        }
        let w = TIFFReader.uint32Field(t, UInt32(TIFFTAG_IMAGEWIDTH))
        let h = TIFFReader.uint32Field(t, UInt32(TIFFTAG_IMAGELENGTH))
        guard let w, let h, w > 0, h > 0 else {
            TIFFClose(t)
            throw FormatError.badHeader(path: path, reason: "page 1 has no image size")
        }
        rows = Int(h); columns = Int(w)
        guard ElementCount.of([pageCount, rows, columns], itemSize: 8) != nil else {
            // every property is set: deinit closes the file
            throw FormatError.badHeader(path: path, reason: "\(pageCount) pages of \(columns) × \(rows) pixels are more than any memory can hold")
        }
        // A page is read whole: refuse, before the caller allocates it, one that cannot be in
        // the file (uncompressed, so its bytes must all be there) or cannot fit in memory.
        let bits = Int(TIFFReader.uint16Field(t, UInt32(TIFFTAG_BITSPERSAMPLE)) ?? 1)
        let compression = TIFFReader.uint16Field(t, UInt32(TIFFTAG_COMPRESSION)) ?? UInt16(COMPRESSION_NONE)
        let pageBytes = rows * columns * max(bits, 1) / 8   // < 2⁶³: rows, columns < 2³²; bits < 2¹⁶
        if compression == UInt16(COMPRESSION_NONE), pageBytes > st.st_size {
            throw FormatError.truncated(path: path, reason: "page 1 declares \(columns) × \(rows) pixels of \(bits) bits (\(pageBytes) bytes) but the file has \(st.st_size)")
        }
        let memory = ProcessInfo.processInfo.physicalMemory
        if UInt64(rows * columns * MemoryLayout<Float>.size) > memory {
            throw FormatError.unsupported(path: path, reason: "page 1 declares \(columns) × \(rows) pixels, more than this machine's \(memory) bytes of memory can hold")
        }
    }

    deinit { TIFFClose(tif) }

    static func uint32Field(_ t: OpaquePointer, _ tag: UInt32) -> UInt32? {
        var v: UInt32 = 0
        let ok = withUnsafeMutablePointer(to: &v) { p in withVaList([p]) { TIFFVGetField(t, tag, $0) } }
        return ok == 1 ? v : nil
    }

    static func uint16Field(_ t: OpaquePointer, _ tag: UInt32) -> UInt16? {
        var v: UInt16 = 0
        let ok = withUnsafeMutablePointer(to: &v) { p in withVaList([p]) { TIFFVGetFieldDefaulted(t, tag, $0) } }
        return ok == 1 ? v : nil
    }

    /// Page `index` (0-based) as Floats: a [rows, columns] volume.
    public func readPage(_ index: Int) throws -> RealVolume {
        var v = RealVolume(shape: [rows, columns])
        try v.withUnsafeMutableFloats { try readPage(index, into: $0.baseAddress!) }
        return v
    }

    /// Reads page `index` (0-based) as Floats into `buffer` (rows × columns values).
    /// `package`: the TIFF frame stack fills its caller's buffer in place; users read
    /// through `readPage(_:)`.
    package func readPage(_ index: Int, into buffer: UnsafeMutablePointer<Float>) throws {
        let page = "page \(index + 1) of \(pageCount)"
        guard index >= 0 && index < pageCount else {
            throw FormatError.wrongShape(path: path, dataset: nil, reason: "has \(pageCount) pages; \(page) was asked for")
        }
        TIFFMessages.reset()
        guard TIFFSetDirectory(tif, tdir_t(index)) == 1 else {
            throw FormatError.truncated(path: path, reason: "\(page) cannot be read (\(TIFFMessages.take("bad directory")))")
        }
        let w = TIFFReader.uint32Field(tif, UInt32(TIFFTAG_IMAGEWIDTH)).map(Int.init)
        let h = TIFFReader.uint32Field(tif, UInt32(TIFFTAG_IMAGELENGTH)).map(Int.init)
        guard w == columns && h == rows else {
            throw FormatError.wrongShape(path: path, dataset: nil, reason: "\(page) is \(h ?? 0)×\(w ?? 0) pixels but page 1 is \(rows)×\(columns)")
        }
        let bits = Int(TIFFReader.uint16Field(tif, UInt32(TIFFTAG_BITSPERSAMPLE)) ?? 1)
        let format = Int32(TIFFReader.uint16Field(tif, UInt32(TIFFTAG_SAMPLEFORMAT)) ?? UInt16(SAMPLEFORMAT_UINT))
        let spp = Int(TIFFReader.uint16Field(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL)) ?? 1)
        guard spp == 1 else {
            throw FormatError.unsupported(path: path, reason: "\(page) has \(spp) samples per pixel; detector frames must be greyscale")
        }
        guard TIFFIsTiled(tif) == 0 else {
            throw FormatError.unsupported(path: path, reason: "\(page) is tiled; only strip-organised TIFF frames are read")
        }
        let known: Bool
        switch (format, bits) {
        case (SAMPLEFORMAT_UINT, 8), (SAMPLEFORMAT_UINT, 16), (SAMPLEFORMAT_UINT, 32),
             (SAMPLEFORMAT_INT, 8), (SAMPLEFORMAT_INT, 16), (SAMPLEFORMAT_INT, 32),
             (SAMPLEFORMAT_IEEEFP, 32), (SAMPLEFORMAT_IEEEFP, 64): known = true
        default: known = false
        }
        guard known else {
            throw FormatError.unsupported(path: path, reason: "\(page) has \(bits)-bit samples of format \(format); 8/16/32-bit integers and 32/64-bit floats are read")
        }
        let lineBytes = Int(TIFFScanlineSize64(tif))
        guard lineBytes >= columns * bits / 8 else {
            throw FormatError.badHeader(path: path, reason: "\(page) has scanlines of \(lineBytes) bytes for \(columns) pixels of \(bits) bits")
        }
        let line = UnsafeMutableRawPointer.allocate(byteCount: lineBytes, alignment: 16)
        defer { line.deallocate() }
        for r in 0..<rows {
            guard TIFFReadScanline(tif, line, UInt32(r), 0) == 1 else {
                throw FormatError.truncated(path: path, reason: "\(page), row \(r + 1) of \(rows) cannot be read (\(TIFFMessages.take("read error")))")
            }
            let out = buffer + r * columns
            switch (format, bits) {
            case (SAMPLEFORMAT_UINT, 8): let p = line.assumingMemoryBound(to: UInt8.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_UINT, 16): let p = line.assumingMemoryBound(to: UInt16.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_UINT, 32): let p = line.assumingMemoryBound(to: UInt32.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_INT, 8): let p = line.assumingMemoryBound(to: Int8.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_INT, 16): let p = line.assumingMemoryBound(to: Int16.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_INT, 32): let p = line.assumingMemoryBound(to: Int32.self); for x in 0..<columns { out[x] = Float(p[x]) }
            case (SAMPLEFORMAT_IEEEFP, 32): let p = line.assumingMemoryBound(to: Float.self); for x in 0..<columns { out[x] = p[x] }
            default: let p = line.assumingMemoryBound(to: Double.self); for x in 0..<columns { out[x] = Float(p[x]) }
            }
        }
    }

    /// Every page as a [pages, rows, columns] volume.
    public func readAll() throws -> RealVolume {
        let memory = ProcessInfo.processInfo.physicalMemory
        guard UInt64(pageCount * rows * columns * MemoryLayout<Float>.size) <= memory else {
            throw FormatError.unsupported(path: path, reason: "\(pageCount) pages of \(columns) × \(rows) pixels are more than this machine's \(memory) bytes of memory can hold")
        }
        var v = RealVolume(shape: shape)
        try v.withUnsafeMutableFloats { b in
            for k in 0..<pageCount { try readPage(k, into: b.baseAddress! + k * rows * columns) }
        }
        return v
    }
}

/// Writing greyscale TIFF stacks (for tests, benchmarks and exporting frames).
public enum TIFFWriter {
    public enum SampleType: Sendable { case uint16, uint32, int32, float32 }

    /// Writes a [pages, rows, columns] volume (or one [rows, columns] page) as a multi-page
    /// TIFF, one strip per page, values rounded and clipped for integer types. Safe:
    /// written under a temporary name and renamed.
    public static func write(_ v: RealVolume, to path: String, as type: SampleType = .float32, overwrite: Bool) throws {
        _ = TIFFMessages.installed
        let shape = v.rank == 2 ? [1] + v.shape : v.shape
        guard shape.count == 3 else {
            throw FormatError.unsupported(path: path, reason: "a TIFF stack holds 2D pages; got shape \(v.shape)")
        }
        let (pages, rows, cols) = (shape[0], shape[1], shape[2])
        let bits: UInt32, format: UInt32
        switch type {
        case .uint16: bits = 16; format = UInt32(SAMPLEFORMAT_UINT)
        case .uint32: bits = 32; format = UInt32(SAMPLEFORMAT_UINT)
        case .int32: bits = 32; format = UInt32(SAMPLEFORMAT_INT)
        case .float32: bits = 32; format = UInt32(SAMPLEFORMAT_IEEEFP)
        }
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            TIFFMessages.reset()
            guard let t = TIFFOpen(tmp, pages * rows * cols * Int(bits / 8) > (3 << 30) ? "w8" : "w") else {
                throw FormatError.writeFailed(path: path, reason: TIFFMessages.take("libtiff could not create it"))
            }
            defer { TIFFClose(t) }
            let lineBytes = cols * Int(bits / 8)
            let buf = UnsafeMutableRawPointer.allocate(byteCount: lineBytes * rows, alignment: 16)
            defer { buf.deallocate() }
            try v.withUnsafeFloats { src in
                for k in 0..<pages {
                    func set(_ tag: Int32, _ value: UInt32) {
                        _ = withVaList([value]) { TIFFVSetField(t, UInt32(tag), $0) }
                    }
                    set(TIFFTAG_IMAGEWIDTH, UInt32(cols)); set(TIFFTAG_IMAGELENGTH, UInt32(rows))
                    set(TIFFTAG_BITSPERSAMPLE, bits); set(TIFFTAG_SAMPLESPERPIXEL, 1)
                    set(TIFFTAG_SAMPLEFORMAT, format); set(TIFFTAG_ROWSPERSTRIP, UInt32(rows))
                    set(TIFFTAG_PHOTOMETRIC, UInt32(PHOTOMETRIC_MINISBLACK))
                    set(TIFFTAG_PLANARCONFIG, UInt32(PLANARCONFIG_CONTIG))
                    set(TIFFTAG_COMPRESSION, UInt32(COMPRESSION_NONE))
                    if pages > 1 {
                        set(TIFFTAG_SUBFILETYPE, UInt32(FILETYPE_PAGE))
                        _ = withVaList([UInt32(k), UInt32(pages)]) { TIFFVSetField(t, UInt32(TIFFTAG_PAGENUMBER), $0) }
                    }
                    let s = src.baseAddress! + k * rows * cols
                    let n = rows * cols
                    switch type {
                    case .uint16: let p = buf.assumingMemoryBound(to: UInt16.self); for i in 0..<n { p[i] = UInt16(max(0, min(65535, s[i].rounded()))) }
                    case .uint32: let p = buf.assumingMemoryBound(to: UInt32.self); for i in 0..<n { p[i] = UInt32(max(0, min(4.2e9, Double(s[i]).rounded()))) }
                    case .int32: let p = buf.assumingMemoryBound(to: Int32.self); for i in 0..<n { p[i] = Int32(max(-2.1e9, min(2.1e9, Double(s[i]).rounded()))) }
                    case .float32: buf.copyMemory(from: s, byteCount: n * 4)
                    }
                    guard TIFFWriteEncodedStrip(t, 0, buf, tmsize_t(lineBytes * rows)) >= 0, TIFFWriteDirectory(t) == 1 else {
                        throw FormatError.writeFailed(path: path, reason: TIFFMessages.take("libtiff could not write page \(k + 1)"))
                    }
                }
            }
        }
    }
}
