import XCTest
import Foundation
import Numerics
@testable import Phasing

/// The merged object of the kept runs (issue #21): the first mode of runs that differ fits
/// the data worse than each run (averaging lowers the contrast of its pattern); a short
/// refinement against the data, support and point-spread function fixed, brings it back,
/// and both χ² are reported.
final class MergeRefinementTests: XCTestCase {
    func options(_ sim: SimulatedCrystal) throws -> PhasingOptions {
        var o = PhasingOptions()
        // Short runs, true support: the runs end near the truth but not on the same point.
        o.recipe = try Recipe.parse("HIO:40 sw=0, ER:20 sw=0")
        let s = sim.object.modulus().thresholded(above: 0)
        o.support = .volume(try s.gaussianFiltered(sigma: 1, method: .fourier).thresholded(above: 0.1))
        o.runs = 3; o.keep = 2; o.seed = 3; o.threads = 1
        o.stallCheckFraction = 0
        return o
    }

    /// With the refinement the merged object is written within 1.1× the best run's χ²; the
    /// first mode's own χ² (before) and the aligned runs' χ² are reported; without it the
    /// first mode is above the tolerance and the best run is written.
    func testRefinedFirstModeFitsLikeTheBestRun() throws {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, phaseRMS: 0.8, peakPhotons: 1e5, seed: 6)
        let data = try PhasingData(intensity: sim.intensity)
        var o = try options(sim)
        let refined = try Phaser.phase(data, options: o)
        let best = refined.runs[refined.kept[0]].metrics!.chi2
        let before = try XCTUnwrap(refined.firstModeChi2), after = try XCTUnwrap(refined.mergedChi2)
        print(String(format: "runs χ² %@; weight %.4f; first mode %.5g (%.3f× best %.5g), refined %.5g (%.3f×), change %.4f; aligned %@; truth error %.4f",
                     refined.runs.map { String(format: "%.5g", $0.metrics?.chi2 ?? .nan) }.joined(separator: " "),
                     refined.modeWeight, before, before / best, best, after, after / best, refined.refinementChange ?? .nan,
                     refined.alignedChi2.description, try sim.error(of: refined.object)))
        // Merging is worth it: the refined first mode is nearer the truth than the best run.
        let keptErrors = try refined.kept.map { try sim.error(of: refined.runs[$0].object!) }
        let writtenError = try sim.error(of: refined.object)
        print(String(format: "error against the truth: kept runs %@, written %.4f",
                     keptErrors.map { String(format: "%.4f", $0) }.joined(separator: " "), writtenError))
        XCTAssertLessThan(writtenError, keptErrors[0])
        XCTAssertEqual(refined.modeWeights.count, 2)
        XCTAssertGreaterThan(refined.modeWeight, 0.9)
        XCTAssertEqual(refined.alignedChi2.count, 2)
        XCTAssertEqual(refined.alignedChi2[0], best, accuracy: 0.02 * best)   // the best run, unmoved
        // The other kept run aligned in the data frame (its own ramp kept) still fits about as
        // it did (0.7% with the earlier starts; matching its ramp to the best run's from their
        // phase difference cost 3.7%): the first mode's worse fit is mostly the averaging.
        // Not always so close: since every run withholds the same free pixels (other random
        // starts), the second kept run (not twinned) comes out 23% above its own χ² with seed 3
        // and 3.7% with seed 5; the sub-voxel shift of a run whose support sits differently is
        // suspected (noted on issue 21). Bounded here, not claimed to vanish.
        let second = refined.runs[refined.kept[1]].metrics!.chi2
        XCTAssertEqual(refined.alignedChi2[1], second, accuracy: 0.3 * second)
        XCTAssertGreaterThan(before, o.mergeTolerance * best)                   // the case the refinement is for
        XCTAssertLessThan(after, before)
        XCTAssertLessThanOrEqual(after, o.mergeTolerance * best)
        XCTAssertTrue(refined.merged)
        XCTAssertEqual(refined.metrics.chi2, after)
        XCTAssertNotNil(refined.mergeRefinement)
        let change = try XCTUnwrap(refined.refinementChange)
        XCTAssertLessThan(change, 0.3)       // a refinement, not a new reconstruction
        XCTAssertTrue(refined.notes.last!.contains("refined (ER:50"), refined.notes.last!)

        o.mergeRefinement = nil
        let plain = try Phaser.phase(data, options: o)
        XCTAssertEqual(plain.firstModeChi2!, before, accuracy: 1e-9 * before)   // same runs, same mode
        XCTAssertEqual(plain.mergedChi2!, before, accuracy: 1e-9 * before)
        XCTAssertFalse(plain.merged)
        XCTAssertNil(plain.refinementChange)
        XCTAssertEqual(plain.metrics.chi2, best)
    }

    /// The refinement started from the truth, inside the true support, with coherent data:
    /// it stays at the truth (ER cannot move far from a consistent object) and fits at least
    /// as well as the truth does.
    func testRefinementFromTheTruthStaysThere() throws {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, peakPhotons: 1e6, seed: 2)
        let data = try PhasingData(intensity: sim.intensity)
        let support = sim.object.modulus().thresholded(above: 0)
        let truthChi2 = try Phaser.metricsOfObject(sim.object, ramp: .zero(), data: data, threads: 1).chi2
        let r = try RunMerging.refine(sim.object, support: support, ramp: .zero(), data: data, psf: nil,
                                      recipe: PhasingOptions.defaultMergeRefinement, freeFraction: 0.04, freeSeed: 1, threads: 1)
        let moved = try PhasingPost.normalisedError(r.object, sim.object)
        print(String(format: "truth χ² %.5g, refined %.5g, moved %.4f", truthChi2, r.metrics.chi2, moved))
        XCTAssertLessThanOrEqual(r.metrics.chi2, truthChi2 * 1.001)
        XCTAssertLessThan(moved, 0.02)
        XCTAssertFalse(r.metrics.freeLLK.isNaN)
    }
}
