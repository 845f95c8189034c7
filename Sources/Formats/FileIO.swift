import Foundation
import Numerics
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
        // A header can declare any size: refuse one the file cannot hold before allocating it.
        guard count == 0 || (count > 0 && offset >= 0 && (ElementCount.sum(offset, count) ?? Int.max) <= size) else {
            throw FormatError.truncated(path: path, reason: "\(what) needs \(count) bytes at offset \(offset) but the file has \(size) bytes")
        }
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
        TemporaryFiles.removeStale(for: path)
        let tmp = TemporaryFiles.path(for: path)
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

/// Checks made on an output path before any work starts, so a long run never ends by
/// refusing to write: the folder exists and can be written (a probe file is created and
/// removed, which also catches read-only file systems and root-squashed shares), and an
/// existing output is refused unless overwriting is allowed.
public enum OutputCheck {
    /// `path` will be written as one file (through SafeOutput).
    public static func file(_ path: String, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { throw FormatError.writeFailed(path: path, reason: "it is a directory") }
            if !overwrite { throw FormatError.outputExists(path: path) }
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw FormatError.writeFailed(path: path, reason: "folder \(dir) does not exist")
        }
        try probe(dir, for: path)
    }

    /// `path` is a folder the command fills (created with its parents when missing). An
    /// existing folder is refused when `refuseExisting` and not `overwrite`.
    public static func folder(_ path: String, overwrite: Bool, refuseExisting: Bool = false) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw FormatError.writeFailed(path: path, reason: "it is a file, not a folder") }
            if refuseExisting && !overwrite { throw FormatError.outputExists(path: path) }
            try probe(path, for: path)
            return
        }
        // The nearest existing ancestor is where the folder will be made.
        var url = URL(fileURLWithPath: path).standardizedFileURL
        while !fm.fileExists(atPath: url.path, isDirectory: &isDir) && url.path != "/" {
            url = url.deletingLastPathComponent()
        }
        guard isDir.boolValue else {
            throw FormatError.writeFailed(path: path, reason: "\(url.path) is a file, not a folder")
        }
        try probe(url.path, for: path)
    }

    /// Files that will be written inside an output folder: each existing one is refused
    /// unless `overwrite` (the folder itself is checked with `folder`).
    public static func files(_ paths: [String], overwrite: Bool) throws {
        guard !overwrite else { return }
        for p in paths where FileManager.default.fileExists(atPath: p) { throw FormatError.outputExists(path: p) }
    }

    /// Creates and removes a temporary file in `dir` (named as SafeOutput names them).
    static func probe(_ dir: String, for path: String) throws {
        let tmp = TemporaryFiles.path(for: dir + "/probe")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            let reason = errno == EACCES || errno == EPERM ? "folder \(dir) is not writable (permission denied)"
                : errno == EROFS ? "folder \(dir) is on a read-only file system"
                : "folder \(dir) cannot be written (\(String(cString: strerror(errno))))"
            throw FormatError.writeFailed(path: path, reason: reason)
        }
        close(fd)
        unlink(tmp)
    }
}
