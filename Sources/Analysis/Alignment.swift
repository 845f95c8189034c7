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
        let g = v.phaseRamp(inside: known.enumerated().map { $0.element != 0 && isFill[$0.offset] == 0 ? 1 : 0 }).radiansPerVoxel
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

extension AnalysisOptions {
    /// The registration `subVoxel` asks for: the search of |c(s)| from the integer peak, or that peak alone.
    var registration: SubvoxelMethod { subVoxel ? .peakSearch(from: .integer) : .integer }
}
