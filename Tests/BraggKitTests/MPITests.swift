import XCTest
import Foundation
@testable import BraggKit

/// `bragg phase` and `bragg batch` under `mpirun` (#24), against the same commands in one
/// process: the same bytes, a bad file reported by name, a killed rank ending the job.
/// Skipped where Open MPI's `mpirun` is not installed (the Makefile's DEBS install it).
final class MPITests: XCTestCase {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("mpi-tests-\(getpid())")
    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    override func setUp() { try? FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true) }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    var braggPath: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
    }

    func mpirunPath() throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw XCTSkip("mpirun is not installed (apt-get install openmpi-bin)")
    }

    /// Runs a program to its end: exit status and standard output + error.
    func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = try start(exe, args)
        let data = (p.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func start(_ exe: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = tmp
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        return p
    }

    func bragg(_ args: [String]) throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: braggPath) else { throw XCTSkip("bragg is not built next to the tests") }
        return try run(braggPath, args)
    }

    /// `mpirun -n N bragg ARGS`, as root too, more ranks than cores allowed.
    func mpirunArgs(_ n: Int, _ args: [String]) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "-n", "\(n)", braggPath] + args
    }

    /// Simulated crystals' patterns (size³, seeds 1…n).
    func patterns(_ n: Int, size: Int = 32) throws -> [String] {
        try (1...n).map { s in
            let f = "p\(s)_\(size).npy"
            let r = try bragg(["simulate", "crystal", "--size", "\(size)", "--seed", "\(s)", "--phase-rms", "0.5", "--out", path(f), "-q"])
            XCTAssertEqual(r.status, 0, r.output)
            return f
        }
    }

    func bytes(_ p: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(p))) }

    // Every rank and the single process phase each run on one thread with FFTW 'estimate'
    // plans: the bits of a run depend on its thread count (how sums are split) and on the
    // plan FFTW picks, not on the rank that ran it.
    let phaseArgs = ["--runs", "6", "--keep", "2", "--seed", "7", "--recipe", "HIO:80 sw=20, ER:40 sw=20",
                     "--fft-effort", "estimate", "--threads", "1", "--stall-factor", "20"]

    /// `mpirun -n 3 bragg phase P --runs 6 --keep 2` on a 64³ pattern (the issue's case)
    /// writes the same bytes as `bragg phase` alone, and each rank ran its share of the runs
    /// (2 of the 6).
    func testPhaseOverThreeRanksWritesTheSameBytes() throws {
        let mpirun = try mpirunPath()
        let p = try patterns(1, size: 64)[0]
        let one = try bragg(["phase", p, "--out", "one.cxi"] + phaseArgs)
        XCTAssertEqual(one.status, 0, one.output)
        let three = try run(mpirun, mpirunArgs(3, ["phase", p, "--out", "three.cxi"] + phaseArgs))
        XCTAssertEqual(three.status, 0, three.output)
        XCTAssertTrue(three.output.contains("6 run(s) over 3 MPI ranks"), three.output)
        XCTAssertEqual(three.output.components(separatedBy: "result:").count, 2, "one rank writes and reports: \(three.output)")
        XCTAssertEqual(try bytes("one.cxi"), try bytes("three.cxi"))
        // The same runs' table (times aside) in both reports.
        func runLines(_ s: String) -> [String] {
            s.split(separator: "\n").filter { $0.hasPrefix("run ") && $0.contains(": chi2") }
                .map { $0.replacingOccurrences(of: #"\s+[0-9.]+ s"#, with: "", options: .regularExpression) }
        }
        XCTAssertEqual(runLines(one.output).count, 6)
        XCTAssertEqual(runLines(one.output), runLines(three.output))
    }

    func writeList(_ name: String, _ items: [String]) throws {
        try Data((items.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path(name)))
    }

    /// A batch of six patterns over three ranks: the same result files and summary table as
    /// the batch in one process (the summary names every pattern, in list order).
    func testBatchOverThreeRanksWritesTheSameFiles() throws {
        let mpirun = try mpirunPath()
        let ps = try patterns(6)
        try writeList("six.txt", ps)
        let batchPhase = ["--", "--runs", "2", "--keep", "1", "--seed", "3", "--recipe", "HIO:60 sw=20, ER:20 sw=20",
                          "--fft-effort", "estimate"]
        let one = try bragg(["batch", "six.txt", "--out", "one", "--threads", "1"] + batchPhase)
        XCTAssertEqual(one.status, 0, one.output)
        let three = try run(mpirun, mpirunArgs(3, ["batch", "six.txt", "--out", "three", "--threads", "1"] + batchPhase))
        XCTAssertEqual(three.status, 0, three.output)
        for f in ps.map({ ($0 as NSString).deletingPathExtension + ".cxi" }) + ["summary.csv"] {
            XCTAssertEqual(try bytes("one/" + f), try bytes("three/" + f), f)
        }
        let rows = try String(contentsOfFile: path("three/summary.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.count, 7)
        XCTAssertEqual(rows.dropFirst().map { String($0.split(separator: ",")[0]) }, ps)
        XCTAssertTrue(rows.dropFirst().allSatisfy { $0.split(separator: ",")[1] == "ok" })
        // rank 0's one progress view: a line per pattern, the other ranks' included
        XCTAssertEqual(three.output.components(separatedBy: "/6] ").count, 7, three.output)
        XCTAssertTrue(three.output.contains("(rank 2,"), three.output)
    }

    /// A batch with an unreadable file: that file is reported by name, the others' results
    /// are written, and the exit status says that one failed.
    func testBatchWithABadFileFinishesTheOthers() throws {
        let mpirun = try mpirunPath()
        let ps = try patterns(2)
        try Data("not an array\n".utf8).write(to: URL(fileURLWithPath: path("broken.npy")))
        try writeList("bad.txt", [ps[0], "broken.npy", ps[1]])
        let r = try run(mpirun, mpirunArgs(2, ["batch", "bad.txt", "--out", "bad", "--threads", "1", "--",
                                                "--runs", "2", "--recipe", "HIO:40 sw=20", "--fft-effort", "estimate"]))
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("1 of 3 pattern(s) failed: broken.npy (file broken.npy has an invalid header"), r.output)
        for p in ps { XCTAssertTrue(FileManager.default.fileExists(atPath: path("bad/" + (p as NSString).deletingPathExtension + ".cxi"))) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad/broken.cxi")))
        let rows = try String(contentsOfFile: path("bad/summary.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.map { String($0.split(separator: ",")[1]) }, ["status", "ok", "failed", "ok"])
        XCTAssertTrue(rows[2].contains("broken.npy"))
    }

    /// A rank killed in the middle of a batch ends the whole job (Open MPI aborts the others)
    /// with a message naming the rank, instead of rank 0 waiting for it forever.
    func testKilledRankEndsTheJob() throws {
        let mpirun = try mpirunPath()
        let ps = try patterns(3)
        try writeList("long.txt", ps)
        // Long enough that every rank is still phasing when one is killed.
        let p = try start(mpirun, mpirunArgs(3, ["batch", "long.txt", "--out", "long", "--threads", "1", "--",
                                                  "--runs", "2", "--recipe", "HIO:20000 sw=0", "--fft-effort", "estimate"]))
        let output = (p.standardOutput as! Pipe).fileHandleForReading
        var ranks: [Int32] = []
        let deadline = Date().addingTimeInterval(60)
        while ranks.count < 3 && Date() < deadline {
            usleep(200_000)
            ranks = children(of: p.processIdentifier)
        }
        XCTAssertEqual(ranks.count, 3, "the ranks did not start")
        usleep(1_000_000)
        kill(ranks[1], SIGKILL)
        let ended = Date().addingTimeInterval(30)
        while p.isRunning && Date() < ended { usleep(100_000) }
        if p.isRunning { p.terminate(); XCTFail("mpirun did not end the job within 30 s of a rank's death") }
        let text = String(decoding: output.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertTrue(text.contains("exited on signal 9"), text)
        XCTAssertTrue(children(of: p.processIdentifier).isEmpty)
    }

    /// The processes whose parent is `pid` (from /proc).
    func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { c in
            guard let stat = try? String(contentsOfFile: "/proc/\(c)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }

    /// The list and output names, without MPI.
    func testListAndOutputNames() throws {
        try writeList("l.txt", ["# scans of the day", "", "a.npy", "/abs/b.h5:/entry/data", "  c.npz  "])
        let items = try Batch.readList(path("l.txt"))
        XCTAssertEqual(items, [path("a.npy"), "/abs/b.h5:/entry/data", path("c.npz")])
        XCTAssertEqual(try Batch.outputNames(items), ["a", "b_data", "c"])
        XCTAssertThrowsError(try Batch.outputNames(["x/a.npy", "y/a.npy"])) { e in
            XCTAssertTrue("\(e)".contains("x/a.npy and y/a.npy would both write a.cxi"), "\(e)")
        }
        try writeList("empty.txt", ["# nothing"])
        XCTAssertThrowsError(try Batch.readList(path("empty.txt"))) { XCTAssertTrue("\($0)".contains("names no pattern")) }
        XCTAssertEqual(Batch.share(of: 7, rank: 1, size: 3), [1, 4])
    }
}
