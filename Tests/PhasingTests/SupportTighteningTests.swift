import XCTest
import Foundation
import Numerics
@testable import Phasing

/// The final pass in a tightened support (issue #21): the shrink-wrap σ schedule ends at 1
/// voxel, which leaves the support about a voxel shell outside a sharp crystal; the written
/// object is refitted in its own support and in supports tightened by one more shrink-wrap
/// with smaller σ, with each kernel the runs found, and the pass of lowest free
/// log-likelihood is written only when the withheld pixels are predicted better.
final class SupportTighteningTests: XCTestCase {
    /// A 32³ crystal phased in a support two voxels too wide (ER from the truth, so noise fills
    /// the shell): the tightened support is the direct shrink-wrap of that object (its modulus
    /// blurred by a Gaussian of σ 0.5 voxel, thresholded at 0.3 of its RMS over the support),
    /// has fewer voxels and nearer the crystal's, fits the withheld pixels better than the
    /// object as it was and than the same ER in its own support, and the object is nearer the
    /// truth.
    func testAnOversizedSupportIsTightenedTowardsTheCrystal() throws {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, phaseRMS: 0.8, peakPhotons: 1e6, seed: 2)
        let data = try PhasingData(intensity: sim.intensity)
        let crystal = sim.object.modulus().thresholded(above: 0)
        let wide = try crystal.gaussianFiltered(sigma: 1.5, method: .fourier).thresholded(above: 0.05)
        func count(_ v: RealVolume) -> Int { v.withUnsafeFloats { $0.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } } }
        XCTAssertGreaterThan(Double(count(wide)), 1.5 * Double(count(crystal)))
        // The object a run would end with in that support: ER from the truth, the shell
        // filled by what the noise asks for, the free pixels withheld as a job's runs do.
        let freeSeed: UInt64 = 77
        let engine = try PhasingEngine(data: data, support: wide, threads: 1)
        var rng = PhasingRNG(seed: freeSeed)
        engine.withholdFreePixels(fraction: 0.04, rng: &rng)
        sim.object.ifftshifted().withUnsafeFloats { engine.start(from: $0.baseAddress!) }
        try engine.run(recipe: Recipe(steps: [RecipeStep(.er, iterations: 100, shrinkWrapEvery: 0)]), shrinkWrap: ShrinkWrapSchedule())
        let object = engine.object
        func error(_ o: ComplexVolume) throws -> Double { try sim.error(of: o.removingPhaseRamp(o.braggPeakRamp())) }
        let t = try RunMerging.finalPass(object, support: wide, ramp: .zero(), data: data, kernels: [nil], sigmas: [0.5],
                                         threshold: 0.3, reference: .rms, recipe: try Recipe.parse("ER:50"), freeFraction: 0.04,
                                         freeSeed: freeSeed, threads: 1)
        XCTAssertEqual(t.candidates.map(\.sigma), [nil, 0.5])
        let same = t.candidates[0].metrics, tight = t.candidates[1].metrics
        // The direct shrink-wrap of the object in its support.
        let blurred = try object.modulus().gaussianFiltered(sigma: 0.5, method: .fourier)
        var sq = 0.0, n = 0.0
        blurred.withUnsafeFloats { b in wide.withUnsafeFloats { s in
            for i in 0..<b.count where s[i] > 0 { sq += Double(b[i]) * Double(b[i]); n += 1 }
        } }
        let level = Float(0.3 * (sq / n).squareRoot())
        var direct = 0, differ = 0
        blurred.withUnsafeFloats { b in wide.withUnsafeFloats { s in t.support.withUnsafeFloats { got in
            for i in 0..<b.count {
                let inside = s[i] > 0 && b[i] > level
                if inside { direct += 1 }
                if inside != (got[i] > 0) { differ += 1 }
            }
        } } }
        print("support: crystal \(count(crystal)), wide \(count(wide)), tightened \(tight.supportVoxels) (direct \(direct), \(differ) differ);",
              String(format: "free llk %.4f (same support %.4f) → %.4f; error %.4f → %.4f", t.before.freeLLK, same.freeLLK, tight.freeLLK,
                     try error(object), try error(t.object)))
        XCTAssertEqual(t.before.supportVoxels, count(wide))
        XCTAssertEqual(t.best, 1)
        XCTAssertEqual(tight.supportVoxels, count(t.support))
        XCTAssertLessThanOrEqual(differ, direct / 200)          // float rounding at the threshold only
        XCTAssertLessThan(tight.supportVoxels, t.before.supportVoxels)
        XCTAssertLessThan(abs(tight.supportVoxels - count(crystal)), abs(t.before.supportVoxels - count(crystal)) / 2)
        XCTAssertLessThan(tight.freeLLK, t.before.freeLLK)
        XCTAssertLessThan(tight.freeLLK, same.freeLLK)
        XCTAssertEqual(same.supportVoxels, t.before.supportVoxels)
        XCTAssertLessThan(try error(t.object), 0.7 * (try error(object)))
    }

    /// Through `Phaser`: the final pass is tried on the written object (its own support, then
    /// each σ of the default), reported, and written only when the
    /// free log-likelihood is lower than the object's as it stood; none with
    /// `supportTightening` empty, not tried without withheld pixels (a note says so) or without
    /// shrink-wrap in the recipe; a σ that is not a positive number is refused.
    func testPhaserTriesTheTighteningAndWritesItOnlyWhenTheFreePixelsSaySo() throws {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, phaseRMS: 0.8, peakPhotons: 1e6, seed: 4)
        let data = try PhasingData(intensity: sim.intensity)
        var o = PhasingOptions()
        o.recipe = try Recipe.parse("ER:100 sw=20 threshold=0.3 ref=rms")
        o.runs = 2; o.keep = 1; o.threads = 1; o.stallCheckFraction = 0
        // Every run starts from the truth: shrink-wrap (σ 2 → 1) then settles on a support
        // about a voxel shell wider than the crystal.
        let truth = sim.object.ifftshifted()
        o.startOverride = { _, engine in truth.withUnsafeFloats { engine.start(from: $0.baseAddress!) } }
        let r = try Phaser.phase(data, options: o)
        let t = try XCTUnwrap(r.tightening)
        XCTAssertEqual(t.candidates.map(\.sigma), [nil, 0.3, 0.5])
        XCTAssertEqual(t.chosen, t.candidates.indices.min { t.candidates[$0].metrics.freeLLK < t.candidates[$1].metrics.freeLLK })
        XCTAssertEqual(t.kept, t.best.metrics.freeLLK < t.before.freeLLK)
        let note = try XCTUnwrap(r.notes.last)
        XCTAssertTrue(note.hasPrefix("final pass (HIO:50 beta=0.9 sw=0, ER:50 sw=0, support fixed, the best run's point-spread function, from the written object"), note)
        o.supportTightening = []
        let plain = try Phaser.phase(data, options: o)
        XCTAssertNil(plain.tightening)
        // Same runs, so the untightened result is the object the pass started from.
        XCTAssertEqual(plain.metrics.supportVoxels, t.before.supportVoxels)
        XCTAssertEqual(plain.metrics.chi2, t.before.chi2, accuracy: 1e-6 * t.before.chi2)
        XCTAssertTrue(t.tightened)      // shrink-wrap's σ ends at 1 voxel: a shell too wide for this crystal
        if t.kept {
            XCTAssertEqual(r.metrics.freeLLK, t.best.metrics.freeLLK)
            XCTAssertEqual(r.metrics.supportVoxels, t.best.metrics.supportVoxels)
            XCTAssertEqual(r.support.withUnsafeFloats { $0.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }, t.best.metrics.supportVoxels)
            XCTAssertTrue(note.hasSuffix("that object is written"), note)
        } else {
            XCTAssertEqual(r.metrics.supportVoxels, plain.metrics.supportVoxels)
            XCTAssertTrue(note.hasSuffix("not kept (none predicts the withheld pixels better than the object as it stood)"), note)
        }
        print(String(format: "final pass %@: free llk %.4f → %.4f, support %d → %d; error %.4f (untightened %.4f)", t.kept ? "kept" : "not kept",
                     t.before.freeLLK, t.best.metrics.freeLLK, t.before.supportVoxels, t.best.metrics.supportVoxels,
                     try sim.error(of: r.object), try sim.error(of: plain.object)))
        XCTAssertLessThan(try sim.error(of: r.object), 0.9 * (try sim.error(of: plain.object)))

        o.supportTightening = [0.5]; o.freeFraction = 0; o.rankBy = .llk
        let unfree = try Phaser.phase(data, options: o)
        XCTAssertNil(unfree.tightening)
        XCTAssertTrue(unfree.notes.contains { $0.hasPrefix("no final pass in a tightened support: no pixels are withheld") }, unfree.notes.description)
        o.freeFraction = 0.04
        o.recipe = try Recipe.parse("HIO:50 sw=0, ER:20 sw=0")
        XCTAssertNil(try Phaser.phase(data, options: o).tightening)      // a fixed support stays fixed
        for bad in [0.0, -1, .nan, .infinity] {
            o.supportTightening = [0.5, bad]
            XCTAssertThrowsError(try Phaser.phase(data, options: o)) { e in
                XCTAssertTrue("\(e)".contains("the support tightening σ must be a positive number of voxels"), "\(e)")
            }
        }
    }

    /// The best run's kernel models almost no blur (a Lorentzian-recipe run on Gaussian blur)
    /// while other runs found one: the blur of the best of those (by free log-likelihood) is
    /// tried too. Not when the best run found a blur, nor when no run did (coherent data), nor
    /// from a run that failed.
    func testANearCoherentBestRunBorrowsTheBlurAnotherRunFound() throws {
        func run(_ k: Int, _ psf: PointSpreadFunction?, free: Double?) -> PhasingRunResult {
            var r = PhasingRunResult(index: k, seed: UInt64(k))
            r.psf = psf
            r.metrics = free.map { PhasingMetrics(chi2: 0.001, llk: $0, freeLLK: $0, supportVoxels: 100) }
            return r
        }
        let nearCoherent = PointSpreadFunction.lorentzian(halfWidth: [0.06, 0.05, 0.05])
        let runs = [run(0, .gaussian(sigma: [0.35, 0.36, 0.38]), free: 1.2), run(1, nearCoherent, free: 0.8),
                    run(2, .gaussian(sigma: [0.36, 0.35, 0.37]), free: 0.9), run(3, .gaussian(sigma: [0.35, 0.35, 0.35]), free: nil)]
        XCTAssertEqual(Phaser.blurredKernelRun(best: runs[1], runs: runs)?.index, 2)
        XCTAssertNil(Phaser.blurredKernelRun(best: runs[2], runs: runs))                 // the best run found the blur
        XCTAssertNil(Phaser.blurredKernelRun(best: runs[1], runs: [runs[1], runs[3]]))    // the only blur is a failed run's
        var coherentRuns = runs
        coherentRuns[0].psf = .gaussian(sigma: [0.04, 0.09, 0.02]); coherentRuns[2].psf = .lorentzian(halfWidth: [0.02, 0.01, 0.02])
        XCTAssertNil(Phaser.blurredKernelRun(best: coherentRuns[1], runs: coherentRuns))   // nobody found a blur
        XCTAssertEqual(Phaser.blurredKernelRun(best: run(1, nil, free: 0.8), runs: runs)?.index, 2)   // a coherent best run

        // The pass itself, on a 32³ crystal blurred by a Gaussian of σ 0.35 px, from the truth
        // in its own support: with the blur the withheld pixels are predicted better than with
        // the near-coherent kernel, so a pass with the second kernel is chosen.
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, phaseRMS: 0.8, peakPhotons: 1e6,
                                       blur: .gaussian(sigma: 0.35), seed: 3)
        let data = try PhasingData(intensity: sim.intensity)
        let support = sim.object.modulus().thresholded(above: 0.5)
        let blur = PointSpreadFunction.gaussian(sigma: [0.35, 0.35, 0.35])
        let t = try RunMerging.finalPass(sim.object, support: support, ramp: .zero(), data: data, kernels: [nearCoherent, blur],
                                         sigmas: [0.5], threshold: 0.3, reference: .rms, recipe: try Recipe.parse("ER:30"),
                                         freeFraction: 0.04, freeSeed: 5, threads: 1)
        XCTAssertEqual(t.candidates.map(\.kernel), [0, 0, 1, 1])
        XCTAssertEqual(t.candidates.map(\.sigma), [nil, 0.5, nil, 0.5])
        XCTAssertEqual(t.candidates[2].psf, blur)
        XCTAssertEqual(t.candidates[0].psf, nearCoherent)
        print(String(format: "free llk near-coherent %.4f / %.4f, with the blur %.4f / %.4f", t.candidates[0].metrics.freeLLK,
                     t.candidates[1].metrics.freeLLK, t.candidates[2].metrics.freeLLK, t.candidates[3].metrics.freeLLK))
        XCTAssertLessThan(t.candidates[2].metrics.freeLLK, 0.8 * t.candidates[0].metrics.freeLLK)
        XCTAssertEqual(t.candidates[t.best].kernel, 1)
        XCTAssertLessThan(try sim.error(of: t.object.removingPhaseRamp(t.object.braggPeakRamp())), 0.05)
    }
}
