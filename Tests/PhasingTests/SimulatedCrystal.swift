import Foundation
import Numerics
import Simulation
@testable import Phasing

/// A minimal simulated BCDI measurement for the phasing tests: a hexagonal prism with a
/// smooth random phase, its centred diffraction intensity scaled to a peak photon count,
/// with Poisson noise. Written here so the tests depend only on Numerics.
struct SimulatedCrystal {
    var object: ComplexVolume      // centred truth
    var intensity: RealVolume      // centred, noisy
    var seed: UInt64

    /// `blur` (partial coherence, the simulator's kernels) is applied to the clean intensity
    /// before scaling; `background` (counts per pixel) is added before the noise.
    init(size n: Int = 64, radius: Double = 10, length: Double = 20, phaseRMS: Double = 0.8,
         peakPhotons: Double = 1e6, blur: CoherenceBlur = .none, background: Double = 0, seed: UInt64) throws {
        self.seed = seed
        var rng = PhasingRNG(seed: seed &* 7919 &+ 17)
        let angle = rng.uniform() * Double.pi / 3
        let tilt = (rng.uniform() - 0.5) * 0.6
        let c = Double(n / 2)
        let apothem = radius * 3.0.squareRoot() / 2
        // Shape: prism axis along z tilted by `tilt` in the z–x plane; hexagon rotated by `angle`.
        let shape = RealVolume(shape: [n, n, n]) { f in
            let z = Double(f / (n * n)) - c, y = Double((f / n) % n) - c, x = Double(f % n) - c
            let zr = z * cos(tilt) - x * sin(tilt), xr = z * sin(tilt) + x * cos(tilt)
            if abs(zr) > length / 2 { return 0 }
            for k in 0..<3 {
                let t = angle + Double(k) * Double.pi / 3
                if abs(xr * cos(t) + y * sin(t)) > apothem { return 0 }
            }
            return 1
        }
        // Correlated phase: Gaussian-filtered white noise scaled to the RMS inside the crystal.
        let noise = RealVolume(shape: [n, n, n]) { _ in Float(rng.gaussian()) }
        let smooth = try noise.gaussFiltered(4)
        var mean = 0.0, cnt = 0.0
        shape.withUnsafeFloats { s in smooth.withUnsafeFloats { p in
            for i in 0..<s.count where s[i] > 0 { mean += Double(p[i]); cnt += 1 }
        } }
        mean /= cnt
        var ms = 0.0
        shape.withUnsafeFloats { s in smooth.withUnsafeFloats { p in
            for i in 0..<s.count where s[i] > 0 { let d = Double(p[i]) - mean; ms += d * d }
        } }
        let scale = phaseRMS / (ms / cnt).squareRoot()
        let phase = smooth.map { Float((Double($0) - mean) * scale) }
        object = try ComplexVolume(modulus: shape, phase: phase)
        var f = object.ifftshifted()
        try FFT.forward(&f)
        let clean = try Diffraction.blurred(f.intensity().fftshifted(), blur)
        let k = Float(peakPhotons) / clean.maximum()
        intensity = clean.map { v -> Float in Float(SimulatedCrystal.poisson(Double(max(0, v) * k) + background, &rng)) }
    }

    static func poisson(_ lambda: Double, _ rng: inout PhasingRNG) -> Double {
        if lambda <= 0 { return 0 }
        if lambda > 30 { return max(0, (lambda + lambda.squareRoot() * rng.gaussian()).rounded()) }
        let l = exp(-lambda)
        var k = 0.0, p = 1.0
        repeat { k += 1; p *= rng.uniform() } while p > l
        return k - 1
    }

    /// Normalised complex error of `reconstruction` against the truth after removing, in the
    /// test itself, the twin (conjugate point reflection), the translation (sub-voxel
    /// registration) and the global phase and scale; the truth's linear phase ramp is
    /// removed by the same convention as the output (centre of mass of |F|²).
    func error(of reconstruction: ComplexVolume) throws -> Double { try diagnose(reconstruction).error }

    /// For studies: the normalised error against the truth and against its twin, each alone
    /// (a run that is a mixture of the two is far from both; a clean run is ~0.8 from the
    /// other one on these prisms).
    func bothErrors(_ reconstruction: ComplexVolume) throws -> (Double, Double) {
        let truth = object.removingPhaseRamp(object.braggPeakRamp())
        let n = reconstruction.shape
        let twin = try reconstruction.conjugated().flipped().rolled(by: n.map { $0 % 2 == 0 ? 1 : 0 })
        var out: [Double] = []
        for cand in [reconstruction, twin] {
            let (shift, _) = try Registration.shift(of: cand, onto: truth)
            let moved = try cand.fourierShifted(by: shift)
            let ip = try moved.inner(truth)
            let na = moved.squaredNorm(), nb = truth.squaredNorm()
            out.append(max(0, 1 - (ip.re * ip.re + ip.im * ip.im) / (na * nb)).squareRoot())
        }
        return (out[0], out[1])
    }

    /// For studies: the best-aligned candidate's modulus error (normalised L2 of the moduli)
    /// and its phase error (RMS over the truth's support, weighted by |truth|²) in rad.
    func diagnose(_ reconstruction: ComplexVolume) throws -> (error: Double, modulus: Double, phase: Double) {
        let truth = object.removingPhaseRamp(object.braggPeakRamp())
        let n = reconstruction.shape
        let twin = try reconstruction.conjugated().flipped().rolled(by: n.map { $0 % 2 == 0 ? 1 : 0 })
        var best = (error: 1.0, modulus: 1.0, phase: 10.0)
        for cand in [reconstruction, twin] {
            let (shift, _) = try Registration.shift(of: cand, onto: truth)
            let moved = try cand.fourierShifted(by: shift)
            let ip = try moved.inner(truth)
            let na = moved.squaredNorm(), nb = truth.squaredNorm()
            let e = max(0, 1 - (ip.re * ip.re + ip.im * ip.im) / (na * nb)).squareRoot()
            guard e < best.error else { continue }
            // Global phase: the truth's phase minus the candidate's is arg(⟨moved, truth⟩).
            let g = atan2(ip.im, ip.re)
            let ma = moved.modulus(), mt = truth.modulus(), pa = moved.phase(), pt = truth.phase()
            var dm = 0.0, w = 0.0, dp = 0.0
            let sa = na.squareRoot(), st = nb.squareRoot()
            ma.withUnsafeFloats { a in mt.withUnsafeFloats { t in pa.withUnsafeFloats { p in pt.withUnsafeFloats { q in
                for i in 0..<a.count {
                    let d = Double(a[i]) / sa - Double(t[i]) / st; dm += d * d
                    if t[i] > 0.5 {
                        var x = Double(p[i]) + g - Double(q[i])
                        x = remainder(x, 2 * Double.pi)
                        dp += Double(t[i] * t[i]) * x * x; w += Double(t[i] * t[i])
                    }
                }
            } } } }
            best = (e, dm.squareRoot(), (dp / max(w, 1e-30)).squareRoot())
        }
        return best
    }
}

extension RealVolume {
    func gaussFiltered(_ s: Double) throws -> RealVolume { try gaussianFiltered(sigma: s, method: .fourier) }
}
