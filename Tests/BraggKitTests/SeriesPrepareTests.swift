import XCTest
import Foundation
@testable import BraggKit

/// `bragg prepare` of several states at once on the shared real scan (APS 34-ID-C scan 54):
/// every state gets one shape, each state's pattern equals a one-by-one preparation
/// `--like` the first, and bad input is refused before any frame is read.
final class SeriesPrepareTests: XCTestCase {
    static let folder: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/realdata/aps-34idc-scan54").standardizedFileURL.path
    }()
    var frames: String { Self.folder + "/Staff20-1a_S0054" }
    var spec: String { Self.folder + "/example.spec" }
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bk-series-\(UUID().uuidString)")

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: Self.folder + "/example.spec") else {
            throw XCTSkip("the real scan is not at \(Self.folder)")
        }
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }
    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func bragg(_ args: [String]) throws -> (status: Int32, output: String) {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func ints(_ r: CXIResults, _ key: String) -> [Int] {
        if case .ints(let v)? = r.parameters[key] { return v }
        return []
    }

    /// The same pattern, mask and crop, bit for bit.
    func assertSame(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try CXIResults.read(from: a), y = try CXIResults.read(from: b)
        XCTAssertEqual(x.pattern?.shape, y.pattern?.shape, file: file, line: line)
        XCTAssertEqual(x.pattern?.floats, y.pattern?.floats, "pattern of \(a) vs \(b)", file: file, line: line)
        XCTAssertEqual(x.mask?.floats, y.mask?.floats, "mask of \(a) vs \(b)", file: file, line: line)
        XCTAssertEqual(ints(x, "crop_start"), ints(y, "crop_start"), file: file, line: line)
        XCTAssertEqual(ints(x, "crop_size"), ints(y, "crop_size"), file: file, line: line)
    }

    /// Two 34-ID-C states (the scan, and the scan again through a folder of another name),
    /// binned: one shape, the geometry of each, and each equal to `--like` one by one.
    func testSPECStatesTakeOneShapeAndEqualOneByOne() throws {
        try FileManager.default.createSymbolicLink(atPath: path("b"), withDestinationPath: frames)
        let dir = path("series") + "/"
        var r = try bragg(["prepare", frames, path("b"), "--spec", spec, "--scan", "54", "--scan", "54", "--bin", "2",
                           "--out", dir, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        let a = dir + "Staff20-1a_S0054.cxi", b = dir + "b.cxi"
        XCTAssertTrue(r.output.contains("state b: pattern "), r.output)
        let pa = try CXIResults.read(from: a), pb = try CXIResults.read(from: b)
        XCTAssertEqual(pa.pattern?.shape, pb.pattern?.shape)
        XCTAssertEqual(pa.geometry.beamline, "34idc"); XCTAssertNotNil(pb.geometry.qVector)
        r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--like", a, "--out", path("one.cxi"), "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        try assertSame(a, path("one.cxi"))
        try assertSame(b, path("one.cxi"))
    }

    /// States of different lengths (the full scan and its frames 40–200): the common crop
    /// fits around each state's own Bragg peak inside each state's frames, is the largest
    /// fast size that does (recomputed from the peaks each state has alone), and each state
    /// equals its one-by-one preparation --like the first.
    func testStatesOfDifferentLengthsShareTheLargestCommonBox() throws {
        let short = path("short")
        try FileManager.default.createDirectory(atPath: short, withIntermediateDirectories: true)
        for k in 40..<201 {
            let name = String(format: "Staff20-1a_S0054_%05d.tif", k)
            try FileManager.default.createSymbolicLink(atPath: short + "/" + name, withDestinationPath: frames + "/" + name)
        }
        let dir = path("s2")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)   // an existing folder: a series
        // the states listed in a file (paths relative to it; comments and blank lines skipped)
        try FileManager.default.createSymbolicLink(atPath: path("full"), withDestinationPath: frames)
        try "# the scan and its frames 40–200\nfull  full\n\nshort short   # a shorter state\n"
            .write(toFile: path("states.txt"), atomically: true, encoding: .utf8)
        var r = try bragg(["prepare", "--states", path("states.txt"), "--bin", "2", "--out", dir, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        let a = dir + "/full.cxi", b = dir + "/short.cxi"
        let pa = try CXIResults.read(from: a), pb = try CXIResults.read(from: b)
        XCTAssertEqual(pa.pattern?.shape, pb.pattern?.shape)
        let crop = ints(pa, "crop_size")
        XCTAssertEqual(ints(pb, "crop_size"), crop)
        // Alone, each state centres on its own peak; the series' box holds both.
        var centres: [[Int]] = [], shapes: [[Int]] = []
        for (k, (folder, lengths)) in [(frames, 201), (short, 161)].enumerated() {
            r = try bragg(["prepare", folder, "--bin", "2", "--out", path("alone\(k).cxi"), "--quiet"])
            XCTAssertEqual(r.status, 0, r.output)
            let alone = try CXIResults.read(from: path("alone\(k).cxi"))
            guard case .doubles(let peak)? = alone.parameters["bragg_peak_in_sum"] else { return XCTFail("no peak in \(path("alone\(k).cxi"))") }
            centres.append(peak.map { Int($0.rounded()) }); shapes.append([lengths, 256, 256])
            for ax in 0..<3 { XCTAssertLessThanOrEqual(crop[ax], ints(alone, "crop_size")[ax], "axis \(ax) of state \(k)") }
            let start = ints(k == 0 ? pa : pb, "crop_start")
            for ax in 0..<3 {
                XCTAssertEqual(start[ax], centres[k][ax] - crop[ax] / 2, "the box is centred on state \(k)'s own peak")
                XCTAssertGreaterThanOrEqual(start[ax], 0); XCTAssertLessThanOrEqual(start[ax] + crop[ax], shapes[k][ax])
            }
        }
        XCTAssertEqual(try Preparation.commonFittingSize(stackShapes: shapes, centres: centres, binning: [2, 2, 2]), crop)
        XCTAssertNotEqual(crop[0], ints(try CXIResults.read(from: path("alone0.cxi")), "crop_size")[0],
                          "the short state narrows the frame axis (else this test shows nothing)")
        for (k, folder) in [frames, short].enumerated() {
            r = try bragg(["prepare", folder, "--like", a, "--out", path("like\(k).cxi"), "--quiet"])
            XCTAssertEqual(r.status, 0, r.output)
            try assertSame(k == 0 ? a : b, path("like\(k).cxi"))
        }
    }

    /// Several scans of one multi-scan file (ESRF ID01 BLISS, written in its layout by
    /// Tests/scripts/make_beamline_scans.py) as states: `--scan 3 --scan 4`, one file each.
    func testScansOfOneFileAsStates() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/make_beamline_scans.py").path
        var made = false
        for py in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: py) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = [script, path("files"), "id01"]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            if p.terminationStatus == 0 { made = true; break }
        }
        guard made else { throw XCTSkip("no python3 with numpy and h5py to write the ID01 file") }
        let dir = path("id01") + "/"
        let r = try bragg(["prepare", path("files/id01.h5"), "--scan", "3", "--scan", "4", "--out", dir, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        let a = try CXIResults.read(from: dir + "id01_3.cxi"), b = try CXIResults.read(from: dir + "id01_4.cxi")
        XCTAssertEqual(a.pattern?.shape, b.pattern?.shape)
        XCTAssertEqual(a.geometry.beamline, "id01"); XCTAssertEqual(b.geometry.beamline, "id01")
        XCTAssertNotEqual(a.pattern?.floats, b.pattern?.floats, "two scans, two patterns")
    }

    /// A state that cannot be read, or of another detector shape, is refused with one
    /// sentence naming its file, exit 2, before any frame is read and with nothing written.
    func testBadStatesAreRefusedBeforeAnyWork() throws {
        let dir = path("s3") + "/"
        var r = try bragg(["prepare", frames, path("missing"), "--out", dir])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains(path("missing")), r.output)
        XCTAssertFalse(r.output.contains("pattern "), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "Staff20-1a_S0054.cxi"))

        let odd = path("odd.npy")
        try ArrayIO.write(RealVolume(shape: [5, 20, 30], repeating: 1), to: odd, overwrite: false)
        r = try bragg(["prepare", frames, odd, "--out", dir])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("state odd (\(odd)) has 20×30-pixel frames but state Staff20-1a_S0054"), r.output)
        XCTAssertEqual(r.output.split(separator: "\n").filter { $0.hasPrefix("bragg: error") || $0.hasPrefix("Error") }.count, 1, r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "Staff20-1a_S0054.cxi"))

        // two states of one name would overwrite each other
        r = try bragg(["prepare", frames, frames, "--out", dir])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("two states are named Staff20-1a_S0054"), r.output)
        // a series needs a folder
        r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--scan", "54", "--out", path("x.cxi")])
        XCTAssertEqual(r.status, 2, r.output)
    }
}
