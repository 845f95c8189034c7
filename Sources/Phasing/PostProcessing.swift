import Numerics
import Foundation

/// What is done to a finished object: centring, phase-ramp removal, twin handling,
/// alignment between runs and the error measures used to compare reconstructions.
public enum PhasingPost {
    /// Centre of a non-negative weight on a periodic box, per axis (the circular mean, in
    /// index units), robust to an object that wraps around the box edge.
    public static func circularCentre(_ w: RealVolume) -> [Double] {
        let sh = w.shape, r = w.rank
        var c = [Double](repeating: 0, count: r)
        let st = w.strides
        for a in 0..<r {
            var cs = [Double](repeating: 0, count: sh[a])
            w.withUnsafeFloats { p in
                for i in 0..<p.count { cs[(i / st[a]) % sh[a]] += Double(p[i]) }
            }
            var re = 0.0, im = 0.0
            for k in 0..<sh[a] {
                let t = 2 * Double.pi * Double(k) / Double(sh[a])
                re += cs[k] * cos(t); im += cs[k] * sin(t)
            }
            var m = atan2(im, re) / (2 * Double.pi) * Double(sh[a])
            if m < 0 { m += Double(sh[a]) }
            c[a] = (re == 0 && im == 0) ? Double(sh[a] / 2) : m
        }
        return c
    }

    /// Rolls object and support (by whole voxels) so that the support's centre of mass sits
    /// at the box centre n/2. Returns the roll applied.
    public static func centred(object: ComplexVolume, support: RealVolume) throws -> (object: ComplexVolume, support: RealVolume, roll: [Int]) {
        let c = circularCentre(support)
        let roll = (0..<support.rank).map { a -> Int in
            var d = Int((Double(support.shape[a] / 2) - c[a]).rounded())
            let n = support.shape[a]
            d = ((d % n) + n) % n
            return d > n / 2 ? d - n : d
        }
        return (try object.rolled(by: roll), try support.rolled(by: roll), roll)
    }

    /// Puts a reconstruction in the frame every result is reported in: centred on its
    /// support, its linear phase ramp removed (the Bragg peak's circular centre of mass at zero
    /// frequency) and its global phase zeroed. Returns the ramp and the roll it applied.
    public static func reportingFrame(object: ComplexVolume, support: RealVolume) throws
        -> (object: ComplexVolume, support: RealVolume, ramp: PhaseRamp, roll: [Int]) {
        let centred = try centred(object: object, support: support)
        let ramp = centred.object.braggPeakRamp()
        return (zeroingGlobalPhase(centred.object.removingPhaseRamp(ramp)), centred.support, ramp, centred.roll)
    }

    /// Rotates the global phase so that Σρ over the object is real and positive.
    public static func zeroingGlobalPhase(_ object: ComplexVolume) -> ComplexVolume {
        let s = object.sum()
        var out = object
        if s.re != 0 || s.im != 0 { out.rotatePhase(by: -atan2(s.im, s.re)) }
        return out
    }

    /// Normalised complex error after the best complex scale (global phase and amplitude):
    /// min_c ‖c·a − b‖ / ‖b‖ = √(1 − |⟨a,b⟩|² / (‖a‖²‖b‖²)).
    public static func normalisedError(_ a: ComplexVolume, _ b: ComplexVolume) throws -> Double {
        let ip = try a.inner(b)
        let na = a.squaredNorm(), nb = b.squaredNorm()
        guard na > 0, nb > 0 else { return 1 }
        return max(0, 1 - (ip.re * ip.re + ip.im * ip.im) / (na * nb)).squareRoot()
    }

    /// The same error between the moduli alone, √(1 − (Σ|a||b|)² / (Σ|a|² Σ|b|²)): what part
    /// of a difference between reconstructions is in the shape rather than the phase.
    public static func modulusError(_ a: ComplexVolume, _ b: ComplexVolume) throws -> Double {
        guard a.shape == b.shape else { throw PhasingError.invalidData("volumes of shapes \(a.shape) and \(b.shape) compared") }
        var ab = 0.0, aa = 0.0, bb = 0.0
        a.withUnsafeFloats { p in b.withUnsafeFloats { q in
            for i in stride(from: 0, to: p.count, by: 2) {
                let x = Double(p[i] * p[i] + p[i + 1] * p[i + 1]), y = Double(q[i] * q[i] + q[i + 1] * q[i + 1])
                ab += (x * y).squareRoot(); aa += x; bb += y
            }
        } }
        guard aa > 0, bb > 0 else { return 1 }
        return max(0, 1 - ab * ab / (aa * bb)).squareRoot()
    }

    /// Aligns `moving` onto `reference` before two reconstructions are compared or merged:
    /// (1) each candidate, `moving` and its twin, is given the reference's phase ramp (the
    /// circular centre of mass of |F|², `braggPeakRamp`), so that a ramp difference does not
    /// spoil the complex correlation; (2) the candidate correlating better is taken; (3) its
    /// shift is refined to ~0.01 voxel on the complex correlation itself (`.peakSearch`; the
    /// parabola through three samples is biased by ~0.1 voxel on a sharp crystal, and the
    /// moduli of Fourier-shifted sharp crystals ring) and applied in Fourier space; (4) the phase ramp left between them,
    /// arg Σ conj(ρ_ref)ρ, conj(ρ_ref)ρ one voxel on (per axis), is removed; (5) the global phase is
    /// matched. Returns the aligned object, whether the twin was taken, the shift, the
    /// removed relative ramp and the phase added.
    ///
    /// With `matchingRamps` false, steps (1) and (4) are skipped: `moving` is taken with the
    /// phase ramp it has, e.g. put in the reference's data frame by the caller, so that each
    /// step left (twin, Fourier shift, global phase) keeps its diffraction pattern's modulus
    /// where it is: an aligned run still fits the data as the run did.
    public static func align(_ moving: ComplexVolume, onto reference: ComplexVolume, matchingRamps: Bool = true) throws
        -> (object: ComplexVolume, twinned: Bool, shift: [Double], ramp: PhaseRamp, phase: Double) {
        let gRef = reference.braggPeakRamp()
        func matchingRamp(_ v: ComplexVolume) throws -> ComplexVolume {
            matchingRamps ? v.removingPhaseRamp(v.braggPeakRamp() - gRef) : v
        }
        let direct = try matchingRamp(moving)
        let tw = try matchingRamp(moving.twin())
        let rd = try Registration.shift(of: direct, onto: reference)
        let rt = try Registration.shift(of: tw, onto: reference)
        let useTwin = rt.correlation > rd.correlation
        let cand = useTwin ? tw : direct
        let shift = try Registration.shift(of: cand, onto: reference, method: .peakSearch(from: .parabolic)).shift
        var shifted = shift.allSatisfy({ $0 == 0 }) ? cand : try cand.fourierShifted(by: shift)
        var ramp = PhaseRamp.zero(rank: reference.rank)
        if matchingRamps {
            var product = reference.conjugated()
            try product.multiply(by: shifted)
            ramp = PhaseRamp(radiansPerVoxel: product.meanPhaseStep())
            shifted.removePhaseRamp(ramp)
        }
        let ip = try reference.inner(shifted)     // Σ conj(ref)·shifted
        let phi = -atan2(ip.im, ip.re)
        shifted.rotatePhase(by: Float(phi))
        return (shifted, useTwin, shift, ramp, phi)
    }
}
