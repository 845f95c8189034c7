import XCTest
import Foundation
@testable import Formats
import Numerics

/// Hostile and awkward inputs and outputs (#22), as a user meets them through `bragg`:
/// one sentence naming the file, exit status 2, quickly, and nothing left on disk.
final class HardeningTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try tempDir() }
    override func tearDown() {
        _ = try? runProcess("/bin/chmod", ["-R", "u+w", dir])
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    struct Run { var status: Int32; var output: String; var seconds: Double }

    /// Runs the `bragg` built beside the tests, killed after `timeout` seconds (a hang reads
    /// as status -9). `unprivileged`: as user nobody when the tests run as root, so that
    /// folder permissions apply.
    func bragg(_ args: [String], timeout: Double = 120, cwd: String? = nil, unprivileged: Bool = false) throws -> Run {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        let p = Process()
        if unprivileged && geteuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { throw XCTSkip("setpriv not found: cannot drop root") }
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", exe] + args
        } else {
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
        }
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = dir   // FFTW wisdom stays out of the user's cache
        p.environment = env
        if let c = cwd { p.currentDirectoryURL = URL(fileURLWithPath: c) }
        let log = path(".bragg-output-\(UInt32.random(in: 0...UInt32.max))")
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = h; p.standardError = h
        let t0 = Date()
        try p.run()
        while p.isRunning && Date().timeIntervalSince(t0) < timeout { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let seconds = Date().timeIntervalSince(t0)
        try h.close()
        let out = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: log)
        let status = p.terminationReason == .uncaughtSignal ? -p.terminationStatus : p.terminationStatus
        return Run(status: status, output: out, seconds: seconds)
    }

    /// Exit 2, one line naming `name` and saying `words`, in under `seconds`.
    func assertRefused(_ r: Run, naming name: String, saying words: String, within seconds: Double = 1,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.output, file: file, line: line)
        XCTAssertTrue(r.output.contains(name), "message does not name \(name): \(r.output)", file: file, line: line)
        XCTAssertTrue(r.output.contains(words), "message does not say '\(words)': \(r.output)", file: file, line: line)
        XCTAssertFalse(r.output.contains("NSCocoaErrorDomain"), r.output, file: file, line: line)
        XCTAssertEqual(r.output.split(separator: "\n").count, 1, "more than one line: \(r.output)", file: file, line: line)
        XCTAssertLessThan(r.seconds, seconds, file: file, line: line)
    }

    func files(in d: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).sorted() }

    // MARK: 1. Element counts that overflow

    func npyBytes(shape: String, descr: String = "<f4") -> Data {
        let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        var text = dict
        while (10 + text.utf8.count + 1) % 64 != 0 { text += " " }
        text += "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        d.append(UInt8(text.utf8.count & 0xFF)); d.append(UInt8(text.utf8.count >> 8))
        d.append(Data(text.utf8))
        d.append(Data(count: 64))
        return d
    }

    /// A one-member stored zip (what np.savez writes), by hand: the member needs no valid data.
    func storedZip(member name: String, _ content: Data) -> Data {
        var d = Data()
        func le16(_ v: Int) { d.append(UInt8(v & 0xFF)); d.append(UInt8((v >> 8) & 0xFF)) }
        func le32(_ v: Int) { le16(v & 0xFFFF); le16((v >> 16) & 0xFFFF) }
        let n = Array(name.utf8)
        let crc = 0   // not checked when the header alone is read
        le32(0x0403_4B50); le16(20); le16(0); le16(0); le16(0); le16(0); le32(crc)
        le32(content.count); le32(content.count); le16(n.count); le16(0); d.append(contentsOf: n); d.append(content)
        let cd = d.count
        le32(0x0201_4B50); le16(20); le16(20); le16(0); le16(0); le16(0); le16(0); le32(crc)
        le32(content.count); le32(content.count); le16(n.count); le16(0); le16(0); le16(0); le16(0); le32(0); le32(0)
        d.append(contentsOf: n)
        let cdSize = d.count - cd
        le32(0x0605_4B50); le16(0); le16(0); le16(1); le16(1); le32(cdSize); le32(cd); le16(0)
        return d
    }

    /// Shapes whose element count does not fit in an Int trapped the process (SIGILL, exit 132).
    func testOverflowingShapesAreRefused() throws {
        let big = "(3037000500, 3037000500, 1)"
        let npy = path("huge.npy")
        try npyBytes(shape: big).write(to: URL(fileURLWithPath: npy))
        assertRefused(try bragg(["info", npy]), naming: npy, saying: "more elements than any file can hold")
        assertRefused(try bragg(["phase", npy, "--out", path("o.cxi")]), naming: npy, saying: "more elements")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("o.cxi")))

        let npz = path("huge.npz")
        try storedZip(member: "data.npy", npyBytes(shape: big)).write(to: URL(fileURLWithPath: npz))
        assertRefused(try bragg(["info", npz]), naming: npz, saying: "more elements")

        let vti = path("huge.vti")
        let xml = """
            <?xml version="1.0"?>
            <VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">
              <ImageData WholeExtent="0 3037000499 0 3037000499 0 0" Origin="0 0 0" Spacing="1 1 1">
                <Piece Extent="0 3037000499 0 3037000499 0 0">
                  <PointData>
                    <DataArray type="Float32" Name="a" format="appended" offset="0"/>
                  </PointData>
                </Piece>
              </ImageData>
              <AppendedData encoding="raw">
               _
            """
        var v = Data(xml.utf8); v.append(Data(count: 16))
        try v.write(to: URL(fileURLWithPath: vti))
        assertRefused(try bragg(["info", vti]), naming: vti, saying: "WholeExtent")
        // an extent whose length alone overflows
        try Data(xml.replacingOccurrences(of: "WholeExtent=\"0 3037000499", with: "WholeExtent=\"-9223372036854775807 9223372036854775807").utf8)
            .write(to: URL(fileURLWithPath: vti))
        assertRefused(try bragg(["info", vti]), naming: vti, saying: "WholeExtent")
        // found by fuzz-vti: a closing </PointData> before the opening tag trapped (a range
        // with its bounds reversed); now the file reads as holding no arrays
        let swapped = path("swapped.vti")
        try Data(xml.replacingOccurrences(of: "3037000499", with: "1").replacingOccurrences(of: "<PointData>", with: "</PointData><PointData>").utf8)
            .write(to: URL(fileURLWithPath: swapped))
        let r = try bragg(["info", swapped])
        XCTAssertTrue([0, 2].contains(r.status), r.output)

        let model = path("huge.safetensors")
        let header = #"{"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 0]}}"#
        var st = Data(); var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { st.append(contentsOf: $0) }
        st.append(Data(header.utf8))
        try st.write(to: URL(fileURLWithPath: model))
        let pattern = path("p.npy")
        try ArrayIO.write(RealVolume(shape: [16, 16, 16], repeating: 1), to: pattern, overwrite: false)
        assertRefused(try bragg(["phase", pattern, "--method", "neural", "--model", model, "--out", path("n.cxi")]),
                      naming: model, saying: "more elements")
        XCTAssertEqual(files(in: dir).filter { $0.hasSuffix(".cxi") }, [])
    }

    /// The checked count itself: exact where it fits, nil where it does not.
    func testElementCountReportsOverflow() {
        XCTAssertEqual(ElementCount.of([3, 4, 5], itemSize: 8), 480)
        XCTAssertEqual(ElementCount.of([]), 1)
        XCTAssertEqual(ElementCount.of([0, Int.max]), 0)
        XCTAssertNil(ElementCount.of([3037000500, 3037000500, 1]))
        XCTAssertNil(ElementCount.of([1 << 40, 1 << 40]))
        XCTAssertNil(ElementCount.of([1 << 31, 1 << 31], itemSize: 2))
        XCTAssertNil(ElementCount.of([-1, 4]))
        XCTAssertNil(ElementCount.sum(Int.max, 1))
    }

    // MARK: 2. HDF5 link cycles

    /// A group linked into itself (hard link, legal HDF5) or soft links in a loop hung
    /// `info`, `phase`, `prepare` and `convert` forever.
    func testHDF5LinkCyclesEndTheWalk() throws {
        guard let py = python(with: ["h5py"]) else { throw XCTSkip("python3 with h5py not found") }
        let h5 = path("cycle.h5")
        let script = """
            import h5py, numpy as np
            with h5py.File('\(h5)', 'w') as f:
                f['/entry/data/data'] = np.ones((8, 8, 8), np.float32)
                f['/entry/a'] = f['/entry']                 # hard link: /entry inside itself
                f['/entry/b'] = f['/entry']
                f['/entry/data/up'] = f['/entry']
                f['/entry/s'] = h5py.SoftLink('/entry')     # soft link to an ancestor
                f['/loop/x'] = h5py.SoftLink('/loop/y')     # soft links in a circle
                f['/loop/y'] = h5py.SoftLink('/loop/x')
            """
        let (s, o) = try runProcess(py, ["-c", script])
        XCTAssertEqual(s, 0, o)
        let info = try bragg(["info", h5], timeout: 20)
        XCTAssertEqual(info.status, 0, info.output)
        XCTAssertTrue(info.output.contains("/entry/data/data"), info.output)
        XCTAssertLessThan(info.seconds, 5)
        // the walk that picks the only dataset, behind phase/convert
        let conv = try bragg(["convert", h5, path("c.npy")], timeout: 20)
        XCTAssertLessThan(conv.seconds, 5)
        XCTAssertTrue([0, 2].contains(conv.status), conv.output)
        let missing = try bragg(["phase", h5 + ":/entry/nothing", "--out", path("x.cxi")], timeout: 20)
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertLessThan(missing.seconds, 5)
        // the library lists the dataset once per distinct path it enters
        let names = try HDF5File(reading: h5).datasets().compactMap(\.name)
        XCTAssertTrue(names.contains("/entry/data/data"), "\(names)")
        XCTAssertLessThan(names.count, 10, "\(names)")
    }

    // MARK: 3–4. Outputs checked before the work, in one sentence

    func testOutputsAreCheckedBeforeTheWork() throws {
        // a pattern whose default recipe takes many seconds
        let pattern = path("p.npy")
        let v = RealVolume(shape: [64, 64, 64]) { i in Float(1 + (i * 7919) % 100) }
        try ArrayIO.write(v, to: pattern, overwrite: false)
        let noFolder = path("nofolder/o.cxi")
        assertRefused(try bragg(["phase", pattern, "--out", noFolder]), naming: noFolder, saying: "does not exist")

        // analyze into a folder holding an analysis: refused before reading anything
        let folder = path("analysis")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/table.json", contents: Data("{}".utf8))
        assertRefused(try bragg(["analyze", pattern, pattern, "--out", folder]), naming: folder + "/table.json", saying: "exists already")

        // view into a file that is no folder
        let notFolder = path("plain")
        FileManager.default.createFile(atPath: notFolder, contents: Data())
        assertRefused(try bragg(["view", pattern, "--out", notFolder]), naming: notFolder, saying: "not a folder")
    }

    /// Read-only folders (as a user other than root meets them): refused up front, in one
    /// sentence, never Foundation's `Error Domain=NSCocoaErrorDomain Code=513 …`.
    func testReadOnlyFoldersAreRefusedUpFront() throws {
        let ro = path("rodir")
        try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: true)
        _ = try runProcess("/bin/chmod", ["755", dir])
        _ = try runProcess("/bin/chmod", ["555", ro])
        let pattern = path("p.npy")
        try ArrayIO.write(RealVolume(shape: [16, 16, 16]) { Float(1 + $0 % 5) }, to: pattern, overwrite: false)
        _ = try runProcess("/bin/chmod", ["644", pattern])
        assertRefused(try bragg(["simulate", "operando", "--size", "32", "--out", ro + "/series"], unprivileged: true),
                      naming: ro, saying: "not writable")
        assertRefused(try bragg(["view", pattern, "--out", ro + "/pics"], unprivileged: true), naming: ro, saying: "not writable")
        assertRefused(try bragg(["train", "--samples", "2", "--epochs", "1", "--width", "1", "--size", "16", "--validation", "1",
                                 "--out", ro + "/m.safetensors"], unprivileged: true), naming: ro, saying: "not writable")
        assertRefused(try bragg(["phase", pattern, "--out", ro + "/o.cxi"], unprivileged: true), naming: ro, saying: "not writable")
        XCTAssertEqual(files(in: ro), [])
    }

    // MARK: 5. Same seed, same bytes

    func testSameSeedGivesByteIdenticalFiles() throws {
        // The files record the command line, so each pair runs the same command in two folders.
        let a = path("a"), b = path("b")
        for d in [a, b] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let sim = ["simulate", "crystal", "--size", "24", "--seed", "3", "--out", "s.h5", "--threads", "1", "-q"]
        for d in [a, b] { XCTAssertEqual(try bragg(sim, cwd: d).status, 0) }
        XCTAssertEqual(FileManager.default.contents(atPath: a + "/s.h5"), FileManager.default.contents(atPath: b + "/s.h5"),
                       "simulate .h5 differs between two runs")
        let phase = ["phase", "s.h5", "--recipe", "HIO:10, ER:5", "--runs", "2", "--keep", "1", "--seed", "3",
                     "--out", "o.cxi", "--threads", "1", "-q"]
        for d in [a, b] { let r = try bragg(phase, cwd: d); XCTAssertEqual(r.status, 0, r.output) }
        XCTAssertEqual(FileManager.default.contents(atPath: a + "/o.cxi"), FileManager.default.contents(atPath: b + "/o.cxi"),
                       "phase .cxi differs between two runs")
        let train = ["train", "--samples", "2", "--epochs", "1", "--width", "1", "--size", "16", "--validation", "1",
                     "--seed", "3", "--threads", "1", "--out", "m.safetensors", "-q"]
        for d in [a, b] { let r = try bragg(train, cwd: d); XCTAssertEqual(r.status, 0, r.output) }
        let m = FileManager.default.contents(atPath: a + "/m.safetensors")
        XCTAssertNotNil(m)
        XCTAssertEqual(m, FileManager.default.contents(atPath: b + "/m.safetensors"), "train's model differs between two runs")
    }

    // MARK: 6. Smaller cases

    func testThreadCountsOutOfRangeAreRefused() throws {
        let pattern = path("p.npy")
        try ArrayIO.write(RealVolume(shape: [8, 8, 8], repeating: 1), to: pattern, overwrite: false)
        let many = try bragg(["phase", pattern, "--out", path("o.cxi"), "--threads", "100000"])
        XCTAssertEqual(many.status, 2, many.output)
        XCTAssertTrue(many.output.contains("--threads must be at most"), many.output)
        XCTAssertLessThan(many.seconds, 1)
        let negative = try bragg(["phase", pattern, "--out", path("o.cxi"), "--threads", "-1"])
        XCTAssertEqual(negative.status, 2, negative.output)
        XCTAssertTrue(negative.output.contains("--threads must be at least 1 (got -1)"), negative.output)
        XCTAssertFalse(negative.output.contains("Missing value"), negative.output)
    }

    /// A write killed by SIGKILL leaves `.NAME.tmp-PID-RANDOM`; the next write of NAME removes
    /// it when PID has ended, and leaves anything else alone.
    func testStaleTemporariesAreRemovedOnTheNextWrite() throws {
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = path(".x.npy.tmp-\(dead)-12345")
        let live = path(".x.npy.tmp-\(getpid())-777")
        let other = path(".y.npy.tmp-\(dead)-12345")
        let notOurs = path(".x.npy.tmp-notes")
        for f in [stale, live, other, notOurs] { FileManager.default.createFile(atPath: f, contents: Data("junk".utf8)) }
        let input = path("in.npy")
        try ArrayIO.write(RealVolume(shape: [4, 4, 4], repeating: 2), to: input, overwrite: false)
        let r = try bragg(["convert", input, path("x.npy")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "stale temporary of a dead writer left behind")
        for f in [live, other, notOurs] { XCTAssertTrue(FileManager.default.fileExists(atPath: f), "\(f) was removed") }
    }

    func testPrepareRefusesFramesWithoutCounts() throws {
        for (name, value) in [("zeros", Float(0)), ("nans", Float.nan)] {
            let scan = path("\(name).npy")
            try ArrayIO.write(RealVolume(shape: [8, 32, 32], repeating: value), to: scan, overwrite: false)
            let out = path("\(name).cxi")
            let r = try bragg(["prepare", scan, "--out", out, "--no-register"])
            XCTAssertEqual(r.status, 2, r.output)
            XCTAssertTrue(r.output.contains(scan) && r.output.contains("no positive, finite counts"), r.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }

    /// An empty support made the whole box the crystal (a 5.7 µm "crystal"); the failed
    /// analysis also left its output folder behind.
    func testAnalyzeRefusesAnEmptySupportAndLeavesNothing() throws {
        let obj = ComplexVolume(shape: [16, 16, 16]) { i in Complex32(Float(1 + i % 3), 0) }
        let states = ["s0.cxi", "s1.cxi"].map(path)
        for s in states {
            try CXIResults(object: obj, support: RealVolume(shape: [16, 16, 16])).write(to: s, overwrite: false)
        }
        let out = path("analysis/deeper")
        let r = try bragg(["analyze"] + states + ["--out", out, "--energy-kev", "9", "--two-theta", "30", "--distance", "1",
                                                  "--pixel-um", "55", "--rocking-step", "0.01"])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains(states[0]) && r.output.contains("is empty"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("analysis")), "a failed analysis left its folder")
    }

    /// A state's .vti missing from the analysis folder: the report names it instead of
    /// drawing the series without it.
    func testReportNamesAMissingStateFile() throws {
        let folder = path("analysis")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let table = #"{"states": [{"label": "a"}, {"label": "b"}], "lab_grid": {"voxel_nm": 5}}"#
        FileManager.default.createFile(atPath: folder + "/table.json", contents: Data(table.utf8))
        FileManager.default.createFile(atPath: folder + "/pca.json", contents: Data("{}".utf8))
        try VTI.write([(name: "amplitude", volume: RealVolume(shape: [4, 4, 4], repeating: 1))], to: folder + "/state_00_a.vti",
                      spacing: [1, 1, 1], origin: [0, 0, 0], overwrite: false)
        let r = try bragg(["report", folder])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("state_01_") && r.output.contains("'b'"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/report.html"))
    }
}
