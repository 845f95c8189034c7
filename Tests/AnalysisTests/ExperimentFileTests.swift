import Foundation
import XCTest
@testable import Analysis

/// The experiment file read through TOMLKit: what it accepts, and the sentences that name
/// the file, the line or the key when it does not.
final class ExperimentFileTests: XCTestCase {
    static let states = """
        [[state]]
        label = "a"
        file = "a.cxi"

        [[state]]
        label = "b"
        file = "b.cxi"
        """

    func message(_ text: String) -> String {
        do { _ = try Experiment.parse(text); return "" } catch { return "\(error)" }
    }

    /// The code reads support_fraction; the reader used to refuse it as an unknown key.
    func testSupportFractionIsRead() throws {
        let e = try Experiment.parse("[analysis]\nsupport_fraction = 0.3\n" + Self.states)
        XCTAssertEqual(try XCTUnwrap(e.options.supportFraction), 0.3, accuracy: 1e-15)
        // 0 keeps each reconstruction's own support, as --support-fraction 0 does.
        XCTAssertNil(try Experiment.parse("[analysis]\nsupport_fraction = 0\n" + Self.states).options.supportFraction)
        XCTAssertEqual(message("[analysis]\nsupport_fraction = 1.5\n" + Self.states),
                       "invalid analysis option: support fraction must lie in (0, 1), got 1.5")
    }

    /// Integers and floats are both numbers; TOML's underscores, exponents and comments pass.
    func testNumbersAndComments() throws {
        let e = try Experiment.parse("""
            [analysis]   # options
            voxel_nm = 1_2.5e0
            pca_fraction = 0.99
            reference = 1
            """ + "\n" + Self.states)
        XCTAssertEqual(try XCTUnwrap(e.options.labVoxelSize), 12.5e-9, accuracy: 1e-18)
        XCTAssertEqual(e.options.reference, 1)
    }

    /// The committed fuzz seeds are valid TOML (so the fuzzer starts past the syntax), and the
    /// full one is an experiment file the reader accepts.
    func testFuzzSeedsParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Fuzz/experiment/corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".toml") }
        XCTAssertFalse(files.isEmpty)
        for f in files {
            XCTAssertNoThrow(try ExperimentTOML.parse(String(contentsOf: folder.appendingPathComponent(f), encoding: .utf8)), f)
        }
        let e = try Experiment.load(path: folder.appendingPathComponent("series.toml").path)
        XCTAssertEqual(e.states.map(\.label), ["2.5 V", "3.0 V"])
    }

    /// Syntax errors name the line; values of a kind no key takes are named by key.
    func testErrorsNameLineAndKey() {
        XCTAssertTrue(message("[analysis]\nvoxel_nm = 10\n[analysis]\n" + Self.states).hasPrefix("experiment file: line 3: "),
                      message("[analysis]\nvoxel_nm = 10\n[analysis]\n" + Self.states))
        XCTAssertTrue(message("[analysis]\nvoxel_nm = 10\nvoxel_nm = 11\n" + Self.states).hasPrefix("experiment file: line 3: "))
        XCTAssertTrue(message("[analysis]\n\nvoxel_nm = \n" + Self.states).hasPrefix("experiment file: line 3: "))
        XCTAssertEqual(message("[analysis]\nvoxel_nm = nan\n" + Self.states),
                       "experiment file: 'analysis.voxel_nm' must be a finite number")
        XCTAssertEqual(message("[analysis]\nvoxel_nm = 2026-12-04\n" + Self.states),
                       "experiment file: 'analysis.voxel_nm' is a date or time, which no key takes")
        XCTAssertEqual(message("[analysis]\nvoxel_nm = \"10\"\n" + Self.states),
                       "experiment file: [analysis] voxel_nm must be a number")
        XCTAssertEqual(message("energy_kev = 9\n" + Self.states),
                       "experiment file: key 'energy_kev' must sit inside [geometry], [analysis] or [[state]]")
        XCTAssertEqual(message("[analysis.extra]\nx = 1\n" + Self.states),
                       "experiment file: unknown table [analysis.extra] (expected [geometry], [geometry.angles], [analysis], [[state]])")
        XCTAssertEqual(message("[[run]]\nx = 1\n" + Self.states), "experiment file: unknown table [[run]] (expected [[state]])")
        XCTAssertEqual(message("[analysis]\n"), "experiment file: no [[state]] entries")
        XCTAssertTrue(message("label = \"a\u{0}\"\n" + Self.states).contains("NUL byte"))
        // toml++ asserts (ending the process) on these table headers; they are refused first.
        for (text, line) in [("[\n", 1), ("[analysis]\n[!a]\n", 2), ("[[ #a]]\n", 1), ("[é]\n", 1), ("[[[a]]]\n", 1), ("[\r\n", 1)] {
            XCTAssertTrue(message(text + Self.states).hasPrefix("experiment file: line \(line): a table "), message(text + Self.states))
        }
        XCTAssertTrue(message("[").hasPrefix("experiment file: line 1: "), message("["))
        // toml++ aborts on a brace where an array value belongs (found by Fuzz/experiment after
        // the header check): parsed in a child first, refused here instead of ending the tests.
        for text in ["[analysis]\nvoxel_nm = [}]\n", "[analysis]\nvoxel_nm = [1, }]\n"] {
            XCTAssertEqual(message(text + Self.states),
                           "experiment file: is malformed TOML that the TOML parser (toml++) fails on; check its brackets, braces and values")
        }
        // A sound file still parses, and its syntax errors still name their line.
        XCTAssertTrue(message("[analysis]\nvoxel_nm = [1, 2\n" + Self.states).hasPrefix("experiment file: line "))
    }

    /// Experiment.load puts the file's name in front of every sentence.
    func testLoadNamesTheFile() throws {
        let path = NSTemporaryDirectory() + "braggkit-experiment-\(getpid()).toml"
        defer { unlink(path) }
        try ("[analysis]\nvoxel = 10\n" + Self.states).write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Experiment.load(path: path)) { err in
            XCTAssertEqual("\(err)", "experiment file: '\(path)': [analysis]: unknown key 'voxel'")
        }
        try "[[state]]\nfile = \"a.cxi\nlabel = 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Experiment.load(path: path)) { err in
            XCTAssertTrue("\(err)".hasPrefix("experiment file: '\(path)': line 2: "), "\(err)")
        }
    }
}
