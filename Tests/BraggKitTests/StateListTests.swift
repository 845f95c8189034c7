import XCTest
@testable import BraggKit

/// The states `bragg prepare` makes: a states file parsed line by line, and scans named with
/// their scan numbers; bad input gives the typed error that names the file and line.
final class StateListTests: XCTestCase {
    let folder = URL(fileURLWithPath: "/data/run")

    func testStatesFileLines() throws {
        let text = """
            # charge series
            pristine  a/s1.h5 a/s2.h5   # two scans summed

            charged\t/abs/c.h5
            """
        let list = try StateList.parse(text, file: "states.txt", folder: folder, withSPEC: false)
        XCTAssertEqual(list, [StateSpec(name: "pristine", paths: ["/data/run/a/s1.h5", "/data/run/a/s2.h5"]),
                              StateSpec(name: "charged", paths: ["/abs/c.h5"])])
    }

    func testStatesFileWithSPEC() throws {
        let list = try StateList.parse("s54 Staff_S0054 54\ns55 /x/Staff_S0055 55 # next\n", file: "f", folder: folder, withSPEC: true)
        XCTAssertEqual(list, [StateSpec(name: "s54", paths: ["/data/run/Staff_S0054"], specScan: 54),
                              StateSpec(name: "s55", paths: ["/x/Staff_S0055"], specScan: 55)])
    }

    func testBadStatesFiles() {
        func error(_ text: String, spec: Bool) -> StateListError? {
            do { _ = try StateList.parse(text, file: "st.txt", folder: folder, withSPEC: spec); return nil }
            catch { return error as? StateListError }
        }
        XCTAssertEqual(error("a s.h5\nlonely\n", spec: false), .badLine(file: "st.txt", line: 2, text: "lonely", withSPEC: false))
        XCTAssertEqual(error("a folder 5x", spec: true), .badLine(file: "st.txt", line: 1, text: "a folder 5x", withSPEC: true))
        XCTAssertEqual(error("a folder 5 6", spec: true), .badLine(file: "st.txt", line: 1, text: "a folder 5 6", withSPEC: true))
        XCTAssertEqual(error("# nothing\n\n", spec: false), .empty(file: "st.txt"))
        XCTAssertEqual("\(StateListError.badLine(file: "st.txt", line: 2, text: "lonely", withSPEC: false))",
                       "st.txt line 2: a state is 'NAME SCAN [SCAN …]' (got 'lonely')")
        XCTAssertThrowsError(try StateList.read("/nonexistent/states.txt", withSPEC: false)) { e in
            XCTAssertEqual(e as? StateListError, .unreadable(file: "/nonexistent/states.txt"))
        }
        for e: StateListError in [.badLine(file: "f", line: 1, text: "x", withSPEC: true), .unpaired(files: 1, scanNumbers: 2, withSPEC: true),
                                  .unpaired(files: 2, scanNumbers: 3, withSPEC: false)] {
            XCTAssertFalse("\(e)".contains("--"), "the library names a flag: \(e)")
        }
    }

    func testStatesFromScans() throws {
        // one output file: the scans of one state, summed; a folder: one state each
        XCTAssertEqual(try StateList.fromScans(["d/s0.h5", "d/s1.h5"], scanNumbers: [], withSPEC: false, series: false),
                       [StateSpec(name: "s0", paths: ["d/s0.h5", "d/s1.h5"])])
        XCTAssertEqual(try StateList.fromScans(["d/s0.h5", "d/s1.h5"], scanNumbers: [], withSPEC: false, series: true),
                       [StateSpec(name: "s0", paths: ["d/s0.h5"]), StateSpec(name: "s1", paths: ["d/s1.h5"])])
        // one scan number for one file is that file's scan
        XCTAssertEqual(try StateList.fromScans(["b.h5"], scanNumbers: ["3"], withSPEC: false, series: false),
                       [StateSpec(name: "b", paths: ["b.h5"], scan: "3")])
        // several scans of one multi-scan file, or one per file
        XCTAssertEqual(try StateList.fromScans(["b.h5"], scanNumbers: ["3", "4"], withSPEC: false, series: true).map(\.name), ["b_3", "b_4"])
        XCTAssertEqual(try StateList.fromScans(["b.h5", "c.h5"], scanNumbers: ["3", "4"], withSPEC: false, series: true),
                       [StateSpec(name: "b_3", paths: ["b.h5"], scan: "3"), StateSpec(name: "c_4", paths: ["c.h5"], scan: "4")])
        XCTAssertThrowsError(try StateList.fromScans(["b.h5", "c.h5"], scanNumbers: ["3", "4", "5"], withSPEC: false, series: true)) { e in
            XCTAssertEqual(e as? StateListError, .unpaired(files: 2, scanNumbers: 3, withSPEC: false))
        }
        // 34-ID-C: each TIFF folder with its #S number, named by the folder
        XCTAssertEqual(try StateList.fromScans(["r/Staff_S0054/", "r/Staff_S0055"], scanNumbers: ["54", "55"], withSPEC: true, series: true),
                       [StateSpec(name: "Staff_S0054", paths: ["r/Staff_S0054/"], specScan: 54),
                        StateSpec(name: "Staff_S0055", paths: ["r/Staff_S0055"], specScan: 55)])
        XCTAssertThrowsError(try StateList.fromScans(["r/a", "r/b"], scanNumbers: ["54"], withSPEC: true, series: true)) { e in
            XCTAssertEqual(e as? StateListError, .unpaired(files: 2, scanNumbers: 1, withSPEC: true))
        }
    }

    /// --like's shape: the crop and binning a prepared file records; any other file is refused by name.
    func testShapeOfAPreparedFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("statelist-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let prepared = dir.appendingPathComponent("p.cxi").path, other = dir.appendingPathComponent("o.cxi").path
        let pattern = RealVolume(shape: [4, 4, 4], repeating: 1)
        try CXIResults(pattern: pattern, parameters: ["crop_size": .ints([8, 8, 8]), "binning": .ints([2, 2, 2])]).write(to: prepared, overwrite: true)
        try CXIResults(pattern: pattern).write(to: other, overwrite: true)
        let shape = try StateList.shape(ofPrepared: prepared)
        XCTAssertEqual(shape.size, [8, 8, 8]); XCTAssertEqual(shape.binning, [2, 2, 2])
        XCTAssertThrowsError(try StateList.shape(ofPrepared: other)) { e in
            XCTAssertEqual(e as? PipelineError, .notPrepared(path: other))
        }
    }
}
