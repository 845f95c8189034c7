import Foundation
import CHDF5

/// The group walk of untrusted HDF5 files, first run in a child process (#22).
///
/// libhdf5 1.10.8 crashes (SIGSEGV in H5G__node_sumup under H5Gget_info) on some corrupt
/// group B-trees: a signal no error handler can turn into a message. Every file opened for
/// reading is therefore walked once in a forked child (bk_h5_isolated_walk, making the same
/// library calls as `datasets()`); if the child dies by a signal, or uses more than
/// `isolatedWalkSeconds` of CPU time, the file is refused with one sentence before this process
/// touches its groups. A file that passed is remembered (by path, device, inode, size and
/// modification time), so reopening it costs nothing.
extension HDF5File {
    /// CPU seconds the child's walk may use: a sound file's walk takes milliseconds, one of
    /// 10 000 datasets in a group 1.3 s (measured; 100 000 would take some 15–20 s).
    public static let isolatedWalkSeconds: UInt32 = 120

    /// Files whose walk ended cleanly in a child; walked again only when changed.
    private static let checked = CheckedFiles()

    /// Walks `path`'s groups in a child process; throws when that walk crashed or hung.
    /// Without a child (fork refused) the file is trusted as before.
    public static func checkGroupStructure(_ path: String) throws {
        guard let key = CheckedFiles.key(path) else { return }
        if checked.contains(key) { return }
        let signal = bk_h5_isolated_walk(path, isolatedWalkSeconds, Int32(maxWalkDepth), maxWalkLinks)
        switch signal {
        case SIGXCPU:
            throw FormatError.unsupported(path: path, reason: "the HDF5 group structure is corrupt (libhdf5 did not finish reading it in \(isolatedWalkSeconds) s of CPU time)")
        case SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS:
            throw FormatError.unsupported(path: path, reason: "the HDF5 group structure is corrupt (libhdf5 failed reading it)")
        case 0:
            checked.insert(key)
        default:
            // Killed from outside (Ctrl-C reaches the child too, or the out-of-memory killer):
            // nothing learnt about the file; this process goes on and meets the same fate.
            break
        }
    }
}

/// A set of files (path, device, inode, size, modification time), safe to use from any thread.
private final class CheckedFiles: @unchecked Sendable {
    private var keys = Set<Key>()

    struct Key: Hashable { let path: String; let stat: [Int] }
    private let lock = NSLock()

    static func key(_ path: String) -> Key? {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        return Key(path: path, stat: [Int(s.st_dev), Int(s.st_ino), Int(s.st_size), Int(s.st_mtim.tv_sec), Int(s.st_mtim.tv_nsec)])
    }

    func contains(_ key: Key) -> Bool { lock.lock(); defer { lock.unlock() }; return keys.contains(key) }
    func insert(_ key: Key) { lock.lock(); defer { lock.unlock() }; keys.insert(key) }
}
