import XCTest
import Numerics
@testable import Phasing

/// The recipe alternative chosen from the data part-way through a job (`AlternativeChoice`).
final class AlternativeChoiceTests: XCTestCase {
    /// The default recipe's alternatives share HIO:400; the Lorentzian one's RAAR:200 (model
    /// mode, its kernel fitted) ends first: the runs are compared at iteration 600, while the
    /// Gaussian runs are 200 iterations into their RAAR:500 (a shrink-wrap boundary).
    func testChoicePoint() throws {
        XCTAssertEqual(AlternativeChoice.point(recipe: .standard, reportEvery: 10), 600)
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("gaussian"), reportEvery: 10), "no alternatives")
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("gaussian | gaussian"), reportEvery: 10), "identical alternatives")
        // The next step of one alternative deconvolves (the runs would not fit the same data).
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("HIO:40 sw=20, RAAR:40 sw=20 psf=auto | HIO:40 sw=20, ER:20 sw=20 psf=auto psfmode=deconvolve, ER:40"), reportEvery: 10))
        // No point-spread function in a next step: nothing to compare the kernels by.
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("HIO:40 sw=20, RAAR:40 sw=20 psf=auto | HIO:40 sw=20, ER:20 sw=20, ER:40"), reportEvery: 10))
        // 40 + 30 cuts the first alternative's RAAR off its shrink-wrap period of 20.
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("HIO:40 sw=20, RAAR:40 sw=20 psf=auto | HIO:40 sw=20, RAAR:30 sw=10 psf=auto:lorentz, ER:40"), reportEvery: 10))
        XCTAssertEqual(AlternativeChoice.point(recipe: try Recipe.parse("HIO:40 sw=20, RAAR:40 sw=20 psf=auto | HIO:40 sw=20, RAAR:20 sw=10 psf=auto:lorentz, ER:40"), reportEvery: 10), 60)
        // An alternative that ends at the point has nothing left to switch to.
        XCTAssertNil(AlternativeChoice.point(recipe: try Recipe.parse("HIO:40 sw=20, RAAR:40 sw=20 psf=auto | HIO:40 sw=20, RAAR:20 sw=10 psf=auto:lorentz"), reportEvery: 10))

        let mixed = try Recipe.parse("gaussian | lorentzian | gaussian | gaussian")
        XCTAssertEqual((0..<8).map(mixed.alternativeNumber(ofRun:)), [0, 1, 0, 0, 0, 1, 0, 0])
        XCTAssertEqual((0..<4).map(Recipe.standard.alternativeNumber(ofRun:)), [0, 1, 0, 1])
        // What a run switched at 600 takes on: the Lorentzian fit in model mode; deconvolution from 700.
        let lorentzian = try Recipe.parse("lorentzian")
        XCTAssertEqual(lorentzian.psfInForce(after: 600).setting?.description, "auto:lorentz")
        XCTAssertEqual(lorentzian.psfInForce(after: 600).mode, .model)
        XCTAssertEqual(lorentzian.psfInForce(after: 700).mode, .deconvolve)
        XCTAssertNil(lorentzian.psfInForce(after: 400).setting)
        XCTAssertEqual(try Recipe.parse("gaussian").psfInForce(after: 600).setting?.description, "auto")
    }

    /// The decisions, with figures the 64³ prisms gave at iteration 600 (bench/README.md,
    /// session 20).
    func testDecision() {
        // Gaussian blur σ 0.35 px, seed 35: both Gaussian runs off to a bad start, the
        // Lorentzian runs' χ² 3× lower, but their kernels model almost no blur (mean FWHM
        // 0.12–0.2 px) where the Gaussian runs found ~1 px: the Lorentzian runs switch.
        let seed35 = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.00555, 1: 0.00194, 2: 0.00585, 3: 0.00872],
                                              kernelFWHM: [0: 1.08, 1: 0.12, 2: 1.10, 3: 0.20], alternativeOf: [0, 1, 0, 1], factor: 1.1)
        XCTAssertEqual(seed35.chosen, 0); XCTAssertEqual(seed35.chosenRun, 0); XCTAssertTrue(seed35.byBlur)
        XCTAssertEqual(seed35.switched, [1, 3])
        XCTAssertEqual(seed35.bestChi2, [0: 0.00555, 1: 0.00194])
        XCTAssertEqual(seed35.kernelFWHM, [0: 1.08, 1: 0.12], "each alternative's kernel is its best run's")
        // Lorentzian blur γ 0.4 px + 1 count, seed 2: both kernels found a blur; the Lorentzian
        // runs are 1.70× ahead in χ² and take over the Gaussian ones.
        let lorentz = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.00170, 1: 0.00091, 2: 0.00155, 3: 0.00103],
                                               kernelFWHM: [0: 0.63, 1: 0.83, 2: 0.62, 3: 0.81], alternativeOf: [0, 1, 0, 1], factor: 1.1)
        XCTAssertEqual(lorentz.chosen, 1); XCTAssertEqual(lorentz.chosenRun, 1); XCTAssertFalse(lorentz.byBlur)
        XCTAssertEqual(lorentz.switched, [0, 2])
        XCTAssertEqual(lorentz.margin!, 0.00155 / 0.00091, accuracy: 1e-12)
        // Within the factor: no choice, no run switched.
        let close = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.00100, 1: 0.00105, 2: 0.00120],
                                             kernelFWHM: [0: 0.7, 1: 0.8, 2: 0.7], alternativeOf: [0, 1, 0], factor: 1.1)
        XCTAssertNil(close.chosen); XCTAssertEqual(close.switched, []); XCTAssertNil(close.chosenRun)
        // No kernel counts as no blur; a run that failed before the point (absent) is neither
        // counted nor switched.
        let failed = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.002, 2: 0.003, 3: 0.001],
                                              kernelFWHM: [0: 0.9, 2: 0.8], alternativeOf: [0, 1, 0, 1], factor: 1.1)
        XCTAssertEqual(failed.chosen, 0); XCTAssertTrue(failed.byBlur); XCTAssertEqual(failed.switched, [3])
        XCTAssertEqual(failed.kernelFWHM[1], 0)
        // A single alternative with runs there: nothing to choose.
        let one = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.002, 2: 0.003], kernelFWHM: [0: 0.1, 2: 0.9],
                                           alternativeOf: [0, 1, 0, 1], factor: 1.1)
        XCTAssertNil(one.chosen)
        // Kernels between "almost none" and "found": judged by χ².
        let between = AlternativeChoice.decide(iteration: 600, chi2: [0: 0.002, 1: 0.0015], kernelFWHM: [0: 0.9, 1: 0.4],
                                               alternativeOf: [0, 1], factor: 1.1)
        XCTAssertEqual(between.chosen, 1); XCTAssertFalse(between.byBlur); XCTAssertEqual(between.switched, [0])
    }

    /// 32³ data blurred by a Gaussian of σ 0.5 px and two alternatives with fixed kernels: the
    /// first models the blur (σ 0.5 px), the second almost none (σ 0.05 px). At the point where
    /// they part the second's runs switch to the first's steps and kernel from their own
    /// iterate: they end with the first's iterations, kernel and a χ² near its runs', well
    /// below what they reach with the wrong kernel when no choice is made.
    static func blurredTwoKernels() throws -> (PhasingData, PhasingOptions) {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, blur: .gaussian(sigma: 0.5), seed: 2)
        var o = PhasingOptions()
        let hio = "HIO:60 beta=0.9 sw=20 threshold=0.25 ref=rms"
        o.recipe = try Recipe.parse("\(hio), RAAR:60 beta=0.8 sw=20 threshold=0.3 ref=rms psf=gauss:0.5, ER:20 sw=20 threshold=0.3 ref=rms"
                                    + " | \(hio), RAAR:20 beta=0.8 sw=20 threshold=0.3 ref=rms psf=gauss:0.05, ER:60 sw=20 threshold=0.3 ref=rms")
        o.runs = 4; o.keep = 1; o.seed = 3; o.threads = 1; o.stallFactor = 1e6
        return (try PhasingData(intensity: sim.intensity), o)
    }

    func testRunsOfAnAlternativeThatModelsNoBlurSwitch() throws {
        var (data, o) = try Self.blurredTwoKernels()
        XCTAssertEqual(AlternativeChoice.point(recipe: o.recipe, reportEvery: o.reportEvery), 80)
        let notes = NoteCollector()
        let chosen = try Phaser.phase(data, options: o, progress: notes.handler)
        let c = try XCTUnwrap(chosen.alternativeChoice)
        XCTAssertEqual(c.iteration, 80); XCTAssertEqual(c.chosen, 0); XCTAssertTrue(c.byBlur)
        XCTAssertEqual(c.switched, [1, 3])
        XCTAssertEqual(c.kernelFWHM[0]!, 0.5 * 2 * (2 * log(2.0)).squareRoot(), accuracy: 1e-9)
        let note = try XCTUnwrap(notes.notes.first { $0.hasPrefix("recipe alternatives compared at iteration 80") }, "\(notes.notes)")
        XCTAssertTrue(note.hasSuffix("alternative 1 (run \(c.chosenRun! + 1)'s) found a blur where the others' kernels model almost none: runs 2, 4 go on with it from their own iterate, with run \(c.chosenRun! + 1)'s point-spread function"), note)
        o.alternativeChoiceFactor = nil
        let kept = try Phaser.phase(data, options: o)
        XCTAssertNil(kept.alternativeChoice)
        for k in 0..<4 {
            let r = chosen.runs[k], m = try XCTUnwrap(r.metrics)
            XCTAssertEqual(r.iterations, 140, "run \(k + 1)")
            XCTAssertEqual(r.psf?.sigma[0] ?? 0, 0.5, accuracy: 1e-9, "run \(k + 1)")
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(r.choiceChi2), c.bestChi2[k % 2]!)
            // The χ² history runs on without a gap or a repeat across the pause.
            let its = r.chi2History.map(\.iteration)
            XCTAssertEqual(its, Array(stride(from: 10, through: 140, by: 10)), "run \(k + 1)")
            if k % 2 == 1 {
                XCTAssertEqual(r.switchedFrom, 1); XCTAssertEqual(r.alternative, c.chosenRun)
                let wrong = try XCTUnwrap(kept.runs[k].metrics)
                XCTAssertEqual(kept.runs[k].alternative, k)
                XCTAssertLessThan(m.chi2, 0.5 * wrong.chi2, "run \(k + 1): the blur modelled fits better than the run that kept its kernel")
                XCTAssertLessThan(m.chi2, 3 * chosen.runs[k - 1].metrics!.chi2, "run \(k + 1)")
            } else {
                XCTAssertNil(r.switchedFrom); XCTAssertEqual(r.alternative, k)
                // Runs that keep their alternative are not changed by the pause.
                XCTAssertEqual(m.chi2, kept.runs[k].metrics!.chi2, accuracy: 1e-9 * m.chi2, "run \(k + 1)")
            }
        }
    }
}
