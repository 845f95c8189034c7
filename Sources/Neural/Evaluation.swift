import Foundation
import Numerics

/// Comparison of a reconstruction with the known object of a simulation.
public enum ReconstructionError {
    /// Normalised complex error min ‖γ ρ′ − ρ*‖ / ‖ρ*‖ over the twin (ρ or conj ρ(−r)),
    /// the sub-voxel shift (complex cross-correlation peak) and the complex scalar γ (global
    /// phase and scale, by least squares). Both volumes of one shape, objects centred.
    /// 0 is perfect; an object uncorrelated with the truth gives ≈ 1.
    ///
    /// With `removingRamps` (the default) both are first put in the frame BCDI results are
    /// reported in, each with its own linear phase ramp removed (the circular centre of mass of its
    /// |F|² moved to zero frequency, as `bragg phase` does to every iterative result). The
    /// ramp only says where the Bragg peak sits in the detector box; without this step an
    /// output whose ramp was removed is charged for the truth's ramp, which for the
    /// training distribution's long-wavelength strain alone is an error of 0.09–0.54.
    public static func normalised(_ estimate: ComplexVolume, truth: ComplexVolume, removingRamps: Bool = true) throws -> Double {
        guard estimate.shape == truth.shape else {
            throw NeuralError.invalidInput("cannot compare an estimate of shape \(estimate.shape) with a truth of shape \(truth.shape)")
        }
        guard removingRamps else { return try normalisedKeepingRamps(estimate, truth: truth) }
        return try normalisedKeepingRamps(estimate.removingPhaseRamp(estimate.braggPeakRamp()),
                                          truth: truth.removingPhaseRamp(truth.braggPeakRamp()))
    }

    static func normalisedKeepingRamps(_ estimate: ComplexVolume, truth: ComplexVolume) throws -> Double {
        let tn = truth.squaredNorm()
        guard tn > 0 else { throw NeuralError.invalidInput("the true object is zero") }
        let twin = estimate.twin()
        let B = try FFT.forward(truth)
        var best = Double.infinity
        for candidate in [estimate, twin] {
            let mn = candidate.squaredNorm()
            guard mn > 0 else { continue }
            let (s0, _) = try Registration.shift(of: candidate, onto: truth)
            let A = try FFT.forward(candidate)
            // X(q) = conj(A) B; ⟨ρ′(r − s), ρ*⟩ = (1/N) Σ_q X(q) e^{+i q·s}
            var X = A.conjugated()
            try X.multiply(by: B)
            let s = refineShift(X, start: s0)
            let c = correlation(X, shift: s)
            let n = Double(truth.count)
            let overlap = (c.re * c.re + c.im * c.im) / (n * n)
            // ‖γρ′ − ρ*‖² minimised by γ = ⟨ρ′, ρ*⟩ / ‖ρ′‖²: residual ‖ρ*‖² − |⟨ρ′, ρ*⟩|²/‖ρ′‖²
            let residual = max(0, tn - overlap / mn)
            best = min(best, (residual / tn).squareRoot())
        }
        return best.isFinite ? best : 1
    }

    /// Σ_q X(q) e^{+i q·s} at a continuous shift, by separable phase factors.
    static func correlation(_ X: ComplexVolume, shift s: [Double]) -> (re: Double, im: Double) {
        let sh = X.shape
        let factors: [[(Double, Double)]] = (0..<3).map { a in
            (0..<sh[a]).map { k in
                let q = 2 * Double.pi * FFT.frequency(k, sh[a]) * s[a]
                return (cos(q), sin(q))
            }
        }
        var re = 0.0, im = 0.0
        X.withUnsafeFloats { p in
            var i = 0
            for z in 0..<sh[0] {
                let fz = factors[0][z]
                for y in 0..<sh[1] {
                    let fy = factors[1][y]
                    let zyr = fz.0 * fy.0 - fz.1 * fy.1, zyi = fz.0 * fy.1 + fz.1 * fy.0
                    var rr = 0.0, ri = 0.0
                    for x in 0..<sh[2] {
                        let fx = factors[2][x]
                        let er = zyr * fx.0 - zyi * fx.1, ei = zyr * fx.1 + zyi * fx.0
                        let xr = Double(p[2 * i]), xi = Double(p[2 * i + 1])
                        rr += xr * er - xi * ei; ri += xr * ei + xi * er
                        i += 1
                    }
                    re += rr; im += ri
                }
            }
        }
        return (re, im)
    }

    /// Maximises |correlation| by coordinate search with halving steps from `start`.
    static func refineShift(_ X: ComplexVolume, start: [Double]) -> [Double] {
        func score(_ s: [Double]) -> Double { let c = correlation(X, shift: s); return c.re * c.re + c.im * c.im }
        var s = start, best = score(s)
        var step = 0.5
        while step > 2e-3 {
            var moved = false
            for a in 0..<3 {
                for d in [step, -step] {
                    var t = s; t[a] += d
                    let v = score(t)
                    if v > best { best = v; s = t; moved = true; break }
                }
            }
            if !moved { step *= 0.5 }
        }
        return s
    }
}
