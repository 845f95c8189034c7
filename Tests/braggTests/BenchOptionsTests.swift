import ArgumentParser
import XCTest
@testable import bragg

/// The options every bench command shares (`BenchOptions`, `BenchSizeOption`), parsed in
/// process: each command's own defaults and help, one check of --repeats, its own --size limits.
final class BenchOptionsTests: XCTestCase {
    func parse<T: ParsableCommand>(_ args: [String], as type: T.Type) throws -> T {
        try XCTUnwrap(try Bragg.parseAsRoot(args) as? T)
    }

    func refusal(_ args: [String]) -> String {
        do { _ = try Bragg.parseAsRoot(args); return "" } catch { return Bragg.message(for: error) }
    }

    func testDefaultsPerCommand() throws {
        let fft = try parse(["bench", "fft"], as: BenchFFT.self)
        XCTAssertEqual(fft.cube.size, 128); XCTAssertEqual(fft.bench.repeats, 20); XCTAssertFalse(fft.bench.json)
        let phase = try parse(["bench", "phase", "--size", "64", "--repeats", "3", "--json"], as: BenchPhase.self)
        XCTAssertEqual(phase.cube.size, 64); XCTAssertEqual(phase.bench.repeats, 3); XCTAssertTrue(phase.bench.json)
        let nn = try parse(["bench", "nn"], as: BenchNN.self)
        XCTAssertEqual(nn.cube.size, 64); XCTAssertEqual(nn.bench.repeats, 5); XCTAssertEqual(nn.width, 8)
        XCTAssertEqual(try parse(["bench", "prepare"], as: BenchPrepare.self).bench.repeats, 2)
        let sim = try parse(["bench", "simulate", "--json"], as: BenchSimulate.self)
        XCTAssertEqual(sim.bench.repeats, 10); XCTAssertTrue(sim.bench.json)
    }

    func testSharedChecks() {
        for command in [["bench", "fft"], ["bench", "phase"], ["bench", "nn"], ["bench", "prepare"], ["bench", "simulate"]] {
            XCTAssertEqual(refusal(command + ["--repeats", "0"]), "--repeats must be at least 1 (got 0)", "\(command)")
            XCTAssertEqual(refusal(command + ["--repeats", "1"]), "", "\(command)")
        }
        XCTAssertEqual(refusal(["bench", "fft", "--size", "2000"]), "--size must be between 1 and 1024 (got 2000)")
        XCTAssertEqual(refusal(["bench", "fft", "--size", "1"]), "")
        XCTAssertEqual(refusal(["bench", "phase", "--size", "3"]), "--size must be between 4 and 1024 (got 3)")
        XCTAssertEqual(refusal(["bench", "nn", "--size", "60"]), "--size must be a multiple of 8 up to 256 (got 60)")
        XCTAssertEqual(refusal(["bench", "nn", "--size", "264"]), "--size must be a multiple of 8 up to 256 (got 264)")
        XCTAssertEqual(refusal(["bench", "nn", "--size", "256"]), "")
        XCTAssertEqual(refusal(["bench", "prepare", "--scans", "0"]), "--scans must be at least 1 (got 0)")
        // nn-eval times nothing: it takes none of them
        XCTAssertTrue(refusal(["bench", "nn-eval", "--repeats", "2"]).contains("--repeats"))
    }

    /// Each command's help reads as it did before the options were shared.
    func testHelpKeepsEachCommandsWords() {
        let fft = BenchFFT.helpMessage(columns: 1000)
        XCTAssertTrue(fft.contains("Edge of the cubic volume (any positive size; 2^a 3^b 5^c 7^d is fast). (default: 128)"), fft)
        XCTAssertTrue(fft.contains("Timed forward+inverse pairs. (default: 20)"), fft)
        XCTAssertTrue(fft.contains("Print one machine-readable JSON line instead of text."), fft)
        let phase = BenchPhase.helpMessage(columns: 1000)
        XCTAssertTrue(phase.contains("Edge of the cubic pattern. (default: 128)"), phase)
        XCTAssertTrue(phase.contains("Timed iterations (and FFT pairs). (default: 20)"), phase)
        XCTAssertTrue(BenchNN.helpMessage(columns: 1000).contains("Input pattern edge (multiple of 8). (default: 64)"))
        XCTAssertTrue(BenchPrepare.helpMessage(columns: 1000).contains("Timed repeats of each measurement. (default: 2)"))
        let sim = BenchSimulate.helpMessage(columns: 1000)
        XCTAssertTrue(sim.contains("Timed repeats. (default: 10)"), sim)
        XCTAssertTrue(sim.contains("Print one machine-readable JSON line.\n") || sim.hasSuffix("Print one machine-readable JSON line."), sim)
    }
}
