import XCTest
@testable import bragg
import BraggKit

/// `bragg phase` is option parsing and printing around BraggKit's calls: run in process, it
/// writes the same results file as a Swift program calling `Reconstruction.iterative` or
/// `NeuralReconstruction` with the same settings (every array, parameter, metric and curve).
final class PhaseThroughLibraryTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("bragg-phase-library-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func pattern(size: Int, seed: UInt64) throws -> String {
        var o = TrainingPairOptions(); o.photons = 1e6...1e6; o.phaseRMS = 0.5...0.5; o.poissonNoise = false
        let path = dir.appendingPathComponent("p\(size).cxi").path
        try CXIResults(pattern: try TrainingPair.make(size: size, seed: seed, options: o).intensity,
                       geometry: CXIGeometry(BraggGeometry.seedStudy)).write(to: path, overwrite: true)
        return path
    }

    func run(_ args: [String]) throws {
        let command = try XCTUnwrap(try Bragg.parseAsRoot(args) as? PhaseCommand)
        try command.run()
    }

    func assertSameFile(_ a: String, _ b: String, ignoring: Set<String> = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try CXIResults.read(from: a), y = try CXIResults.read(from: b)
        let ox = try XCTUnwrap(x.object), oy = try XCTUnwrap(y.object)
        XCTAssertEqual((try ox - oy).modulus().maximum(), 0, "object", file: file, line: line)
        XCTAssertEqual(x.support?.floats, y.support?.floats, "support", file: file, line: line)
        XCTAssertEqual(x.parameters, y.parameters, file: file, line: line)
        // NaN (a run without a check, a coherent run's PSF width) equals NaN here
        func exact(_ v: Double) -> String { v.isNaN ? "nan" : "\(v.bitPattern)" }
        XCTAssertEqual(x.metrics.filter { !ignoring.contains($0.key) }.mapValues(exact),
                       y.metrics.filter { !ignoring.contains($0.key) }.mapValues(exact), file: file, line: line)
        XCTAssertEqual(x.curves.mapValues { $0.map(exact) }, y.curves.mapValues { $0.map(exact) }, file: file, line: line)
        XCTAssertEqual(x.geometry, y.geometry, file: file, line: line)
    }

    func testIterativeCommandIsTheLibraryCall() throws {
        let p = try pattern(size: 32, seed: 5)
        let viaCommand = dir.appendingPathComponent("cli.cxi").path, viaLibrary = dir.appendingPathComponent("lib.cxi").path
        try run(["phase", p, "--recipe", "HIO:60, ER:40", "--seed", "3", "--runs", "2", "--keep", "2", "--out", viaCommand, "-q"])
        var options = PhasingOptions()
        options.recipe = try Recipe.parse("HIO:60, ER:40"); options.seed = 3; options.runs = 2; options.keep = 2
        try Reconstruction.iterative(try PatternInput.read(p, mask: nil), source: p, options: options, supportDescription: "auto")
            .write(to: viaLibrary, overwrite: false)
        try assertSameFile(viaCommand, viaLibrary)
        // The final pass is recorded: what was tried (every pass: σ, free llk, χ², voxels),
        // the free log-likelihoods it was judged by, and whether one was written.
        let x = try CXIResults.read(from: viaCommand, arrays: false)
        guard case .string(let said)? = x.parameters["support_tightening"] else { return XCTFail("no support_tightening parameter") }
        XCTAssertTrue(said.hasPrefix("HIO:50 beta=0.9 sw=0, ER:50 sw=0 (support fixed, the best run's point-spread function) from the written object in its own support and in supports tightened by one shrink-wrap with sigma 0.3, 0.5 voxels; "), said)
        XCTAssertEqual(x.curves["tightening_candidate_sigma"], [0, 0.3, 0.5])
        XCTAssertEqual(x.curves["tightening_candidate_kernel"], [0, 0, 0])      // no run found a blur: the best run's kernel only
        // Each run's free log-likelihood at the stall check (80% of the recipe), beside its χ² there.
        let checkFree = try XCTUnwrap(x.curves["run_check_free_llk"])
        XCTAssertEqual(checkFree.count, 2)
        XCTAssertTrue(checkFree.allSatisfy { $0.isFinite && $0 > 0 }, "\(checkFree)")
        // One recipe: no choice of alternative is recorded; both runs followed alternative 0.
        XCTAssertEqual(x.curves["run_alternative"], [0, 0])
        XCTAssertNil(x.curves["run_choice_chi2"]); XCTAssertNil(x.parameters["alternative_choice"])
        let free = try XCTUnwrap(x.curves["tightening_candidate_free_llk"])
        XCTAssertEqual(free.count, 3); XCTAssertEqual(x.curves["tightening_candidate_chi2"]?.count, 3)
        XCTAssertEqual(x.curves["tightening_candidate_support_voxels"]?.count, 3)
        let before = try XCTUnwrap(x.metrics["tightening_free_llk_before"]), after = try XCTUnwrap(x.metrics["tightening_free_llk_after"])
        XCTAssertEqual(after, free.min())
        XCTAssertEqual(x.metrics["tightening_free_llk_same_support"], free[0])
        let chosen = free.firstIndex(of: free.min()!)!
        XCTAssertEqual(said.hasSuffix("; not kept"), after >= before, said)
        guard case .string(let written)? = x.parameters["result_is"] else { return XCTFail("no result_is parameter") }
        XCTAssertEqual(written.hasSuffix(", support tightened"), after < before && chosen > 0, written)
        XCTAssertEqual(written.hasSuffix(", refitted in its own support"), after < before && chosen == 0, written)
        XCTAssertEqual(x.metrics["tightening_support_voxels_after"], x.curves["tightening_candidate_support_voxels"]?[chosen])
        XCTAssertNotNil(x.metrics["tightening_support_voxels_before"])
    }

    /// A choice of recipe alternative is recorded: where it was made, each alternative's best χ²
    /// and kernel there, which was chosen and which runs switched. The second alternative's
    /// kernel (σ 0.05 px, FWHM 0.12 px) models almost no blur while the first's (σ 0.5 px) is
    /// one: run 2 switches to the first at iteration 80.
    func testAlternativeChoiceIsWritten() throws {
        let p = try pattern(size: 32, seed: 5)
        let out = dir.appendingPathComponent("alt.cxi").path
        let hio = "HIO:60 beta=0.9 sw=20 threshold=0.25 ref=rms"
        try run(["phase", p, "--recipe", "\(hio), RAAR:60 sw=20 psf=gauss:0.5, ER:20 sw=20 | \(hio), RAAR:20 sw=20 psf=gauss:0.05, ER:60 sw=20",
                 "--runs", "2", "--keep", "1", "--out", out, "-q"])
        let x = try CXIResults.read(from: out, arrays: false)
        XCTAssertEqual(x.metrics["alternative_choice_iteration"], 80)
        XCTAssertEqual(x.metrics["alternative_chosen"], 0)
        let fwhm = try XCTUnwrap(x.curves["alternative_choice_kernel_fwhm"])
        XCTAssertEqual(fwhm.count, 2)
        XCTAssertEqual(fwhm[0], 0.5 * 2 * (2 * log(2.0)).squareRoot(), accuracy: 1e-9)
        XCTAssertEqual(fwhm[1], 0.05 * 2 * (2 * log(2.0)).squareRoot(), accuracy: 1e-9)
        let best = try XCTUnwrap(x.curves["alternative_choice_best_chi2"]), runs = try XCTUnwrap(x.curves["run_choice_chi2"])
        XCTAssertEqual(best, runs, "one run per alternative: each is its alternative's best")
        XCTAssertEqual(x.curves["run_switched_from_alternative"], [-1, 1])
        XCTAssertEqual(x.curves["run_alternative"], [0, 0])
        XCTAssertEqual(x.curves["run_iterations"], [140, 140])
        guard case .string(let rule)? = x.parameters["alternative_choice"] else { return XCTFail("no alternative_choice parameter") }
        XCTAssertTrue(rule.contains("more than 1.1 times another's"), rule)
        guard case .string(let notes)? = x.parameters["notes"] else { return XCTFail("no notes") }
        XCTAssertTrue(notes.contains("found a blur where the others' kernels model almost none: run 2 goes on with it"), notes)
    }

    func testNeuralCommandIsTheLibraryCall() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = repo.appendingPathComponent(NeuralModel.defaultRelativePath).path
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("no default model at \(model)") }
        let p = try pattern(size: 48, seed: 7)
        let viaCommand = dir.appendingPathComponent("cli.cxi").path, viaLibrary = dir.appendingPathComponent("lib.cxi").path
        try run(["phase", p, "--method", "neural", "--model", model, "--then", "ER:20", "--sigma", "1.5,0.5", "--out", viaCommand, "-q"])
        let prediction = try NeuralReconstruction.predict(try PatternInput.read(p, mask: nil), source: p, model: try NeuralModel(path: model))
        try prediction.handOff(recipe: try Recipe.parse("ER:20"), shrinkWrap: ShrinkWrapSchedule(sigmaStart: 1.5, sigmaEnd: 0.5))
            .write(to: viaLibrary, overwrite: false)
        try assertSameFile(viaCommand, viaLibrary)
        // --sigma reached the hand-off: its schedule is in the results file.
        guard case .doubles(let sw)? = try CXIResults.read(from: viaCommand, arrays: false).parameters["shrink_wrap_sigma"] else {
            return XCTFail("no shrink_wrap_sigma parameter")
        }
        XCTAssertEqual(sw, [1.5, 0.5])
        // the prediction alone: the same but for the seconds it took
        let aloneCommand = dir.appendingPathComponent("cli1.cxi").path, aloneLibrary = dir.appendingPathComponent("lib1.cxi").path
        try run(["phase", p, "--method", "neural", "--model", model, "--out", aloneCommand, "-q"])
        let again = try NeuralReconstruction.predict(try PatternInput.read(p, mask: nil), source: p, model: try NeuralModel(path: model))
        try again.reconstruction().write(to: aloneLibrary, overwrite: false)
        try assertSameFile(aloneCommand, aloneLibrary, ignoring: ["seconds"])
    }
}
