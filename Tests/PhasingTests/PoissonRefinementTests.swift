import XCTest
import Foundation
import Numerics
import Simulation
@testable import Phasing

/// Poisson maximum-likelihood refinement (`ML:N`, issue 21): its gradient against finite
/// differences of the misfit, with and without a point-spread function; the misfit going
/// down at every step from an ER solution; the recipe syntax.
final class PoissonRefinementTests: XCTestCase {
    /// An engine on a 32³ crystal's pattern with its true support, started from the truth
    /// plus a smooth random perturbation (free pixels withheld, so that they are left out).
    private func engine(blur: CoherenceBlur = .none, background: Double = 0, kernel: PointSpreadFunction? = nil,
                        seed: UInt64 = 3) throws -> (PhasingEngine, [Float], SimulatedCrystal) {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, peakPhotons: 1e5, blur: blur, background: background, seed: seed)
        let support = sim.object.modulus().thresholded(above: 0.5)
        let e = try PhasingEngine(data: try PhasingData(intensity: sim.intensity), support: support, threads: 1)
        var rng = PhasingRNG(seed: 5)
        e.withholdFreePixels(fraction: 0.04, rng: &rng)
        if let kernel { try e.applyPSF(.fixed(kernel)) }
        var start = sim.object.ifftshifted().withUnsafeFloats { Array($0) }
        for i in 0..<start.count { start[i] *= Float(1 + 0.2 * (rng.uniform() - 0.5)) }
        start.withUnsafeBufferPointer { e.start(from: $0.baseAddress!) }
        return (e, start, sim)
    }

    /// dL along a random direction δ inside the support equals 2 Re⟨g, δ⟩ for the gradient g
    /// the first ML iteration computed (central differences of `poissonMisfit`).
    private func checkGradient(_ e: PhasingEngine, start: [Float], label: String) {
        let n = e.count
        start.withUnsafeBufferPointer { e.start(from: $0.baseAddress!) }
        e.iterateML(first: true, computeError: false)
        let g = Array(UnsafeBufferPointer(start: e.poisson!.gradient.pointer, count: 2 * n))
        var rng = PhasingRNG(seed: 11)
        var delta = [Float](repeating: 0, count: 2 * n)
        var scale = 0.0
        for i in 0..<n where e.support[i] != 0 {
            delta[2 * i] = Float(rng.gaussian()); delta[2 * i + 1] = Float(rng.gaussian())
            scale += Double(start[2 * i] * start[2 * i] + start[2 * i + 1] * start[2 * i + 1])
        }
        let inside = Double((0..<n).filter { e.support[$0] != 0 }.count)
        let eps = Float(1e-3 * (scale / inside).squareRoot())
        func misfit(_ s: Float) -> Double {
            let x = (0..<(2 * n)).map { start[$0] + s * delta[$0] }
            x.withUnsafeBufferPointer { e.start(from: $0.baseAddress!) }
            return e.poissonMisfit()
        }
        let numeric = (misfit(eps) - misfit(-eps)) / Double(2 * eps)
        var analytic = 0.0
        for i in 0..<(2 * n) { analytic += 2 * Double(g[i]) * Double(delta[i]) }
        print(String(format: "ML gradient (%@): analytic %.6g, central difference %.6g", label, analytic, numeric))
        XCTAssertEqual(analytic, numeric, accuracy: 0.01 * abs(numeric), label)
    }

    func testGradientMatchesFiniteDifferences() throws {
        let (e, start, _) = try engine()
        checkGradient(e, start: start, label: "coherent")
        let kernel = PointSpreadFunction(model: .pseudoVoigt, fwhm: [1.2, 1.0, 0.9], eta: 0.3)
        var withBackground = kernel
        withBackground.background = 0.5
        let (b, startB, _) = try engine(blur: .gaussian(sigma: 0.45), background: 0.5, kernel: withBackground)
        checkGradient(b, start: startB, label: "pseudo-Voigt kernel and background")
    }

    /// From an ER solution of a noisy coherent pattern, and of a blurred one with its kernel:
    /// the Poisson misfit goes down at every ML step, the final llk is lower than ER's, and
    /// the object is no further from the truth.
    func testMLLowersTheMisfitFromAnERSolution() throws {
        for (label, blur, kernel) in [("coherent", CoherenceBlur.none, PointSpreadFunction?.none),
                                      ("Gaussian σ 0.5", .gaussian(sigma: 0.5), .gaussian(sigma: [0.5, 0.5, 0.5]))] {
            let (e, _, sim) = try engine(blur: blur, kernel: kernel, seed: 7)
            for _ in 0..<100 { e.iterate(.er, beta: 0) }
            let before = e.finalMetrics()
            // Against the truth with the output's convention for the linear phase ramp.
            func error() throws -> Double { let o = e.object; return try sim.error(of: o.removingPhaseRamp(o.braggPeakRamp())) }
            let errorBefore = try error()
            var misfits: [Double] = []
            for k in 0..<40 {
                e.iterateML(first: k == 0, computeError: false)
                misfits.append(e.poisson!.lastMisfit)
            }
            let after = e.finalMetrics()
            let errorAfter = try error()
            print(String(format: "ML (%@): llk %.5f -> %.5f, χ² %.5f -> %.5f, error %.4f -> %.4f, misfit %.6g -> %.6g", label,
                         before.llk, after.llk, before.chi2, after.chi2, errorBefore, errorAfter, misfits.first!, misfits.last!))
            // Non-increasing up to round-off: with a kernel I_c comes from Float FFTs, and the
            // deviance, a sum of ~30 000 terms, moves by ~10⁻⁶ of itself once converged.
            for k in 1..<misfits.count { XCTAssertLessThanOrEqual(misfits[k], misfits[k - 1] + 1e-5 * misfits[0], "\(label): step \(k)") }
            XCTAssertLessThan(misfits.last!, misfits.first!, label)
            XCTAssertLessThan(after.llk, before.llk, label)
            XCTAssertLessThanOrEqual(errorAfter, errorBefore * 1.05 + 0.002, label)
        }
    }

    /// `ML:N` in a recipe: parsed and printed back; options it would ignore are refused; a
    /// recipe ending in ML runs through the phaser and reports its steps.
    func testRecipeSyntax() throws {
        let r = try Recipe.parse("HIO:50 beta=0.9, ER:20, ML:30")
        XCTAssertEqual(r.steps.last?.algorithm, .ml)
        XCTAssertEqual(r.steps.last?.shrinkWrapEvery, 0)
        XCTAssertEqual(try Recipe.parse(r.description), r)
        XCTAssertNoThrow(try Recipe.parse("ER:10, ML:10 psf=gauss:0.5"))
        XCTAssertNoThrow(try Recipe.parse("ER:10, ML:10 sw=0"))
        for bad in ["ER:10, ML:10 beta=0.5", "ER:10, ML:10 sw=20", "ER:10, ML:10 psfmode=deconvolve", "ER:10, ML:10 threshold=0.3"] {
            XCTAssertThrowsError(try Recipe.parse(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("step 2"), "\(error)")
            }
        }
    }
}
