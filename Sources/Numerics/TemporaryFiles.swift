import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Names of the temporary files outputs are written under before being renamed into place:
/// `.NAME.tmp-PID-RANDOM` beside the target. A process killed mid-write (SIGKILL, power
/// loss) leaves one behind; the next write of the same target removes those whose writer
/// is no longer running, and never touches any other file.
public enum TemporaryFiles {
    /// A fresh temporary path in the folder of `target`.
    public static func path(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        return url.deletingLastPathComponent().path + "/." + url.lastPathComponent
            + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Removes temporaries of `target` left by processes that have ended; returns their paths.
    @discardableResult
    public static func removeStale(for target: String) -> [String] {
        let url = URL(fileURLWithPath: target)
        let dir = url.deletingLastPathComponent().path
        let prefix = "." + url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var removed = [String]()
        for name in names where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard parts.count == 2, let pid = Int32(parts[0]), UInt32(parts[1]) != nil, pid > 0 else { continue }
            // Still being written by a live process (kill with signal 0 only asks).
            if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
            if unlink(dir + "/" + name) == 0 { removed.append(dir + "/" + name) }
        }
        return removed
    }
}
