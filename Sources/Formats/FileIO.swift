import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only file read with pread(2): readers fill their destination buffers straight
/// from the file, so a large array is never held twice.
final class InputFile {
    let path: String
    let fd: Int32
    let size: Int

    init(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw FormatError.fileNotFound(path: path) }
            throw FormatError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw FormatError.unreadable(path: path, reason: "it is a directory")
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FormatError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        self.path = path
        self.fd = fd
        self.size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `dst`; a short file is reported as truncated.
    func read(into dst: UnsafeMutableRawPointer, count: Int, at offset: Int, what: String = "data") throws {
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, min(count - done, 1 << 30), off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FormatError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 {
                throw FormatError.truncated(path: path, reason: "\(what) needs \(count) bytes at offset \(offset) but the file has \(size) bytes")
            }
            done += n
        }
    }

    func read(count: Int, at offset: Int, what: String = "data") throws -> Data {
        var d = Data(count: count)
        try d.withUnsafeMutableBytes { b in
            if count > 0 { try read(into: b.baseAddress!, count: count, at: offset, what: what) }
        }
        return d
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    func readPrefix(_ count: Int, at offset: Int = 0) throws -> Data {
        let n = max(0, min(count, size - offset))
        return try read(count: n, at: offset)
    }
}

/// Safe output: everything is written to a hidden temporary file beside the target, then
/// renamed over it, so an interrupted or failed write never leaves a half-written file
/// and never damages an existing one.
public enum SafeOutput {
    /// Checks that `path` may be written (does not exist, or `overwrite`), runs `body` with a
    /// temporary path in the same folder, and renames it to `path` when `body` succeeds.
    /// The temporary file is removed when `body` throws.
    public static func write(to path: String, overwrite: Bool, _ body: (String) throws -> Void) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { throw FormatError.writeFailed(path: path, reason: "it is a directory") }
            if !overwrite { throw FormatError.outputExists(path: path) }
        }
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        if !fm.fileExists(atPath: dir, isDirectory: &isDir) || !isDir.boolValue {
            throw FormatError.writeFailed(path: path, reason: "folder \(dir) does not exist")
        }
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try body(tmp)
            guard rename(tmp, path) == 0 else {
                throw FormatError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }
}

/// A buffered binary output stream over a C FILE, with errors mapped to FormatError.
final class OutputFile {
    let path: String
    let shownPath: String
    private var file: UnsafeMutablePointer<FILE>?
    private(set) var offset = 0

    init(_ path: String, shownAs shown: String) throws {
        self.path = path; shownPath = shown
        guard let f = fopen(path, "wb") else {
            throw FormatError.writeFailed(path: shown, reason: String(cString: strerror(errno)))
        }
        file = f
        setvbuf(f, nil, _IOFBF, 1 << 20)
    }

    deinit { if let f = file { fclose(f) } }

    func write(_ p: UnsafeRawPointer, count: Int) throws {
        guard count > 0 else { return }
        if fwrite(p, 1, count, file) != count {
            throw FormatError.writeFailed(path: shownPath, reason: String(cString: strerror(errno)))
        }
        offset += count
    }

    func write(_ d: Data) throws {
        try d.withUnsafeBytes { b in if let p = b.baseAddress { try write(p, count: b.count) } }
    }

    func write(_ s: String) throws { try write(Data(s.utf8)) }

    func write<T: FixedWidthInteger>(le v: T) throws {
        var x = v.littleEndian
        try withUnsafeBytes(of: &x) { try write($0.baseAddress!, count: MemoryLayout<T>.size) }
    }

    func close() throws {
        guard let f = file else { return }
        file = nil
        if fclose(f) != 0 { throw FormatError.writeFailed(path: shownPath, reason: String(cString: strerror(errno))) }
    }
}
