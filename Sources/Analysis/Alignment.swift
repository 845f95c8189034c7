import Foundation
import Numerics

/// How the supports of the states are merged into one morphology.
public enum CommonSupportRule: String, Sendable, CaseIterable {
    /// Voxels in the support of more than half of the states.
    case majority
    /// Voxels in the support of any state.
    case union
    /// Voxels in the support of every state.
    case intersection
}

/// The operations that bring one reconstruction onto the reference's morphology.
public enum Alignment {

    /// Sub-voxel registration of two real volumes (amplitudes): the shift s with
    /// `moving.fourierShifted(by: s)` ≈ `reference`, and the normalised correlation at the
    /// peak (see the complex version).
    public static func register(_ moving: RealVolume, onto reference: RealVolume, refine: Bool = true) throws -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape, moving.rank == 3 else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        return try register(moving.complex(), onto: reference.complex(), refine: refine)
    }

    /// Sub-voxel registration of two complex volumes: the shift s with
    /// `moving.fourierShifted(by: s)` ≈ `reference`, and the normalised correlation
    /// |Σ conj(ρ_ref) ρ_moved| / (‖ρ_ref‖ ‖ρ_moving‖) at the peak (refined when `refine`), which
    /// for complex objects is the overlap the twin choice compares. The integer peak of the
    /// FFT cross-correlation is refined by maximising |c(s)| = |Σ_k conj(M_k) R_k e^{2πi k·s/N}|
    /// directly (coordinate-wise parabolas with a halving step), which reaches ~0.01 voxel
    /// where a parabola through three samples of a sharp peak is biased by ~0.1.
    public static func register(_ moving: ComplexVolume, onto reference: ComplexVolume, refine: Bool = true) throws -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape, moving.rank == 3 else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        let s = moving.shape
        var m = moving, r = reference
        try FFT.forward(&m); try FFT.forward(&r)
        var x = m.conjugated()
        try x.multiply(by: r)
        var c = x
        try FFT.inverse(&c)
        let cm = c.modulus()
        let peak = cm.argmax()
        let idx = cm.index(ofFlat: peak)
        let shift = (0..<3).map { a -> Double in
            var v = Double(idx[a]); if v > Double(s[a]) / 2 { v -= Double(s[a]) }; return v
        }
        let norms = (moving.squaredNorm() * reference.squaredNorm()).squareRoot()
        let corr = norms > 0 ? Double(cm[flat: peak]) / norms : 0
        guard refine else { return (shift, corr) }
        let (refined, magnitude) = Registration.refinedCorrelationPeak(x, from: shift)
        let total = Double(moving.count)
        return (refined, norms > 0 ? (magnitude / total) / norms : 0)
    }

    /// The mean phase gradient per array axis (rad per voxel), measured from the complex
    /// field as arg Σ ρ*(x) ρ(x + e_a) over neighbouring pairs inside the support, so wraps
    /// do not bias it. A linear phase ramp is a displaced Bragg peak (or a uniform strain).
    public static func phaseRamp(_ v: ComplexVolume, support: [UInt8]) -> [Double] {
        v.meanPhaseStep(inside: support)
    }

    /// Multiplies by exp(−i Σ_a g_a (n_a − N_a/2)): removes a linear phase ramp g (rad/voxel)
    /// about the box centre.
    public static func removeRamp(_ v: inout ComplexVolume, gradient g: [Double]) {
        let s = v.shape
        let ph = (0..<3).map { a in (0..<s[a]).map { g[a] * Double($0 - s[a] / 2) } }
        v.withUnsafeMutableFloats { buf in
            let p = SendablePointer(buf.baseAddress!)
            Parallel.forEachChunk(s[0], minChunk: 1) { r in
                for i in r { for j in 0..<s[1] { for k in 0..<s[2] {
                    let t = -(ph[0][i] + ph[1][j] + ph[2][k])
                    let c = Float(cos(t)), sn = Float(sin(t))
                    let f = ((i &* s[1] &+ j) &* s[2] &+ k) &* 2
                    let re = p.pointer[f], im = p.pointer[f &+ 1]
                    p.pointer[f] = re * c - im * sn; p.pointer[f &+ 1] = re * sn + im * c
                } } }
            }
        }
    }

    /// Merges supports (0/1 masks of one length) by the given rule.
    public static func commonSupport(_ supports: [[UInt8]], rule: CommonSupportRule) -> [UInt8] {
        guard let n = supports.first?.count else { return [] }
        var count = [Int32](repeating: 0, count: n)
        for s in supports { for i in 0..<n where s[i] != 0 { count[i] += 1 } }
        let k = Int32(supports.count)
        return count.map { c -> UInt8 in
            switch rule {
            case .majority: return 2 * c > k ? 1 : 0
            case .union: return c > 0 ? 1 : 0
            case .intersection: return c == k ? 1 : 0
            }
        }
    }

    /// The median of wrapped phases about their circular mean (rad), for the global phase.
    public static func circularMedian(_ phases: [Double]) -> Double {
        guard !phases.isEmpty else { return 0 }
        var sr = 0.0, si = 0.0
        for p in phases { sr += cos(p); si += sin(p) }
        let centre = atan2(si, sr)
        let rel = phases.map { wrap($0 - centre) }.sorted()
        let n = rel.count
        let med = n % 2 == 1 ? rel[n / 2] : 0.5 * (rel[n / 2 - 1] + rel[n / 2])
        return wrap(centre + med)
    }

    /// Wraps an angle to (−π, π].
    @inlinable public static func wrap(_ x: Double) -> Double {
        var y = x.truncatingRemainder(dividingBy: 2 * .pi)
        if y > .pi { y -= 2 * .pi } else if y <= -.pi { y += 2 * .pi }
        return y
    }

    /// Fills the voxels `fill` (flat indices) of a complex field: the amplitude from
    /// `amplitude` (the other states' mean) and the phase from a harmonic (Laplace)
    /// inpainting of this state's own unit phasor from the surrounding known voxels
    /// (`known` ≠ 0), so phase wraps are respected; the state's mean phase gradient is taken
    /// out before and put back after, so a linear phase is filled exactly. Unknown voxels with no known voxel in
    /// reach keep phase 0. Gauss–Seidel sweeps with over-relaxation until the largest
    /// change is below 1e-5 (at most `maxSweeps`).
    public static func inpaint(_ v: inout ComplexVolume, fill: [Int], amplitude: [Float], known: [UInt8],
                               domain: [UInt8], maxSweeps: Int = 2000) {
        guard !fill.isEmpty else { return }
        let s = v.shape
        let n = v.count
        var isFill = [UInt8](repeating: 0, count: n)
        for f in fill { isFill[f] = 1 }
        // Working phasors: known voxels hold their unit phasor, fill voxels start at 0.
        var zr = [Float](repeating: 0, count: n), zi = zr
        v.withUnsafeFloats { p in
            for i in 0..<n where known[i] != 0 && isFill[i] == 0 {
                let re = p[2 * i], im = p[2 * i + 1]
                let m = (re * re + im * im).squareRoot()
                if m > 0 { zr[i] = re / m; zi[i] = im / m }
            }
        }
        // Demodulate by the state's mean phase gradient over the known voxels: the phasor of a
        // linear phase is not harmonic, its demodulated version is (constant).
        let g = phaseRamp(v, support: known.enumerated().map { $0.element != 0 && isFill[$0.offset] == 0 ? 1 : 0 })
        let ramp = (0..<3).map { a in (0..<s[a]).map { g[a] * Double($0 - s[a] / 2) } }
        let st = [s[1] * s[2], s[2], 1]
        func rampAt(_ f: Int) -> Double { ramp[0][f / st[0]] + ramp[1][(f / st[1]) % s[1]] + ramp[2][f % s[2]] }
        for i in 0..<n where zr[i] != 0 || zi[i] != 0 {
            let t = -rampAt(i)
            let c = Float(cos(t)), sn = Float(sin(t))
            let re = zr[i], im = zi[i]
            zr[i] = re * c - im * sn; zi[i] = re * sn + im * c
        }
        // Neighbour lists of each fill voxel (inside the domain: fill or known voxels).
        var nbr = [[Int]](repeating: [], count: fill.count)
        for (t, f) in fill.enumerated() {
            var rem = f
            let i = rem / st[0]; rem %= st[0]
            let j = rem / st[1], k = rem % st[1]
            let idx = [i, j, k]
            for a in 0..<3 {
                for d in stride(from: -1, through: 1, by: 2) {
                    let q = idx[a] + d
                    guard q >= 0, q < s[a] else { continue }
                    let g = f + d * st[a]
                    if (isFill[g] != 0) || (known[g] != 0 && domain[g] != 0) { nbr[t].append(g) }
                }
            }
        }
        let omega: Float = 1.7
        for _ in 0..<maxSweeps {
            var change: Float = 0
            for (t, f) in fill.enumerated() where !nbr[t].isEmpty {
                var ar: Float = 0, ai: Float = 0
                for g in nbr[t] { ar += zr[g]; ai += zi[g] }
                let inv = 1 / Float(nbr[t].count)
                let nr = zr[f] + omega * (ar * inv - zr[f]), ni = zi[f] + omega * (ai * inv - zi[f])
                change = max(change, abs(nr - zr[f]) + abs(ni - zi[f]))
                zr[f] = nr; zi[f] = ni
            }
            if change < 1e-5 { break }
        }
        v.withUnsafeMutableFloats { p in
            for f in fill {
                let m = (zr[f] * zr[f] + zi[f] * zi[f]).squareRoot()
                let (cr, ci): (Float, Float) = m > 1e-12 ? (zr[f] / m, zi[f] / m) : (1, 0)
                let t = rampAt(f)
                let c = Float(cos(t)), sn = Float(sin(t))
                p[2 * f] = amplitude[f] * (cr * c - ci * sn); p[2 * f + 1] = amplitude[f] * (cr * sn + ci * c)
            }
        }
    }
}
