import XCTest
@testable import Formats
import Numerics
#if canImport(Glibc)
import Glibc
#endif

/// Large arrays are read straight into their destination: peak memory grows by about one
/// copy of the dataset, never two. Measured on a 64 MiB float32 HDF5 dataset (the 1 GiB
/// figures are in bench/README.md).
final class MemoryTests: XCTestCase {
    static let shape = [16, 1024, 1024]          // 64 MiB of float32
    static var bytes: Double { Double(shape.reduce(1, *) * 4) }

    /// Peak resident memory (bytes) of a child process: its VmHWM, sampled every 2 ms until it
    /// exits. (wait4's ru_maxrss cannot be used: Linux carries the spawning process's own
    /// high-water mark into it, since posix_spawn shares our address space until exec. For the
    /// same reason a sample is kept only once /proc/PID/exe is the program itself: before the
    /// exec, the child's status shows this test process's memory. A run too short to be
    /// sampled after its exec is repeated, up to five times.)
    func peakRSS(_ exe: String, _ args: [String]) throws -> (status: Int32, peak: Double) {
        // The program's file by device and inode: /proc/PID/exe names it by its canonical path.
        var st = stat()
        guard stat(exe, &st) == 0 else { throw XCTSkip("cannot stat \(exe)") }
        let target = (st.st_dev, st.st_ino)
        for _ in 0..<5 {
            let run = try sampledRun(exe, args, target: target)
            if run.samples > 0 { return (run.status, run.peak) }
        }
        struct Unsampled: Error, CustomStringConvertible { let description: String }
        throw Unsampled(description: "\(exe) exited before its memory could be sampled, five times")
    }

    private func sampledRun(_ exe: String, _ args: [String], target: (dev_t, ino_t)) throws
        -> (status: Int32, peak: Double, samples: Int) {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        guard posix_spawn(&pid, exe, &actions, nil, argv, environ) == 0 else { throw XCTSkip("cannot start \(exe)") }
        var status: Int32 = 0
        var peak = 0.0
        var samples = 0
        while true {
            var now = stat()
            if stat("/proc/\(pid)/exe", &now) == 0, now.st_dev == target.0, now.st_ino == target.1,
               let hwm = MemoryTests.statusValue("VmHWM", file: "/proc/\(pid)/status") {
                peak = max(peak, hwm)
                samples += 1
            }
            if waitpid(pid, &status, WNOHANG) != 0 { break }
            usleep(2000)
        }
        return ((status >> 8) & 0xFF, peak, samples)
    }

    /// Resets this process's peak-RSS mark (Linux: writing 5 to clear_refs), or false.
    func resetPeak() -> Bool {
        guard let f = fopen("/proc/self/clear_refs", "w") else { return false }
        defer { fclose(f) }
        return fputs("5", f) >= 0
    }

    func status(_ key: String) -> Double? { MemoryTests.statusValue(key, file: "/proc/self/status") }

    /// A memory figure (bytes) from a /proc status file.
    static func statusValue(_ key: String, file: String) -> Double? {
        guard let s = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(key + ":") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }

    func makeFile(_ dir: String) throws -> String {
        let path = dir + "/big.h5"
        var v = RealVolume(shape: MemoryTests.shape)
        v.withUnsafeMutableFloats { b in
            Parallel.forEachChunk(b.count) { r in for i in r { b[i] = Float(i & 1023) } }
        }
        try HDF5File.create(path, overwrite: false) { f in try f.write(v, at: "/entry/data", compression: nil) }
        return path
    }

    func testLargeHDF5ReadHoldsOneCopy() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try makeFile(dir)

        // In this process: readReal and readComplex fill the volume in place.
        if resetPeak(), let before = status("VmRSS") {
            let v = try ArrayIO.readReal(path + ":/entry/data")
            XCTAssertEqual(v[3, 5, 7], 7)
            let grown = status("VmHWM")! - before
            print("readReal of 64 MiB: peak RSS grew \(Int(grown / 1048576)) MiB")
            XCTAssertLessThan(grown, 1.3 * MemoryTests.bytes, "readReal peak grew by \(grown / 1048576) MiB")
        }
        if resetPeak(), let before = status("VmRSS") {
            let c = try ArrayIO.readComplex(path + ":/entry/data")
            XCTAssertEqual(c[3, 5, 7], Complex32(7, 0))
            let grown = status("VmHWM")! - before
            print("readComplex of 64 MiB real: peak RSS grew \(Int(grown / 1048576)) MiB (128 MiB of complex64 result)")
            XCTAssertLessThan(grown, 2.3 * MemoryTests.bytes, "readComplex (2× the floats) peak grew by \(grown / 1048576) MiB")
        }

        // The command line: info streams in slabs; convert holds the array once.
        let bragg = try braggExecutable()
        let base = try peakRSS(bragg, ["info", fixture("float32.npy")])
        XCTAssertEqual(base.status, 0)
        let info = try peakRSS(bragg, ["info", path + ":/entry/data"])
        XCTAssertEqual(info.status, 0)
        let conv = try peakRSS(bragg, ["convert", path + ":/entry/data", dir + "/big.npy"])
        XCTAssertEqual(conv.status, 0)
        print("bragg peak RSS: baseline \(Int(base.peak / 1048576)) MiB, info +\(Int((info.peak - base.peak) / 1048576)) MiB, convert +\(Int((conv.peak - base.peak) / 1048576)) MiB for 64 MiB")
        // Streaming in 16 MiB slabs plus HDF5's chunk cache stays below one copy (one copy = 1.0).
        XCTAssertLessThan(info.peak - base.peak, 0.8 * MemoryTests.bytes,
                          "info grew by \((info.peak - base.peak) / 1048576) MiB")
        XCTAssertLessThan(conv.peak - base.peak, 1.3 * MemoryTests.bytes,
                          "convert grew by \((conv.peak - base.peak) / 1048576) MiB")
        // Sanity of the measurement itself: convert does hold the array once.
        XCTAssertGreaterThan(conv.peak - base.peak, 0.8 * MemoryTests.bytes, "convert peak not seen")
        XCTAssertEqual(try NPY.header(of: dir + "/big.npy").shape, MemoryTests.shape)
    }
}
