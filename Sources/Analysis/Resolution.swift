import Foundation
import Numerics

/// Spatial resolution estimates.
public enum Resolution {

    /// The result of an edge-profile fit.
    public struct EdgeFit: Sendable, Equatable {
        /// Gaussian σ of the edge blur (m): the amplitude across a facet is a/2·erfc(t/(√2σ)).
        public var sigma: Double
        /// FWHM of that Gaussian, 2√(2 ln 2) σ (m): the resolution we report.
        public var fwhm: Double
        /// Number of edge profiles fitted (their median σ is reported).
        public var profiles: Int
    }

    /// Fits the amplitude's profile across the crystal's facets. On a cubic-voxel grid (the
    /// lab frame), profiles are sampled along the outward normal (from the gradient of the
    /// smoothed amplitude) at surface voxels of `support`, 16 voxels long in quarter-voxel
    /// steps; each is fitted by b + a/2·erfc((t − t₀)/(√2σ)) (Gauss–Newton), and the median
    /// σ over profiles is returned.
    public static func edgeProfile(amplitude: RealVolume, support: [UInt8], voxelSize: Double,
                                   maxProfiles: Int = 1500) throws -> EdgeFit {
        let s = amplitude.shape
        let smooth = try amplitude.gaussianFiltered(sigma: 1.0).floats
        let raw = amplitude.floats
        let st = [s[1] * s[2], s[2], 1]
        // Surface voxels: in the support with a neighbour outside it.
        var surface: [Int] = []
        for i in 1..<(s[0] - 1) { for j in 1..<(s[1] - 1) { for k in 1..<(s[2] - 1) {
            let o = (i * s[1] + j) * s[2] + k
            guard support[o] != 0 else { continue }
            if support[o - st[0]] == 0 || support[o + st[0]] == 0 || support[o - st[1]] == 0 ||
                support[o + st[1]] == 0 || support[o - 1] == 0 || support[o + 1] == 0 { surface.append(o) }
        } } }
        guard !surface.isEmpty else { throw AnalysisError.emptySupport("no surface to fit an edge profile on") }
        let every = max(1, surface.count / maxProfiles)
        var sigmas: [Double] = []
        let tSteps = Array(stride(from: -8.0, through: 8.0, by: 0.25))
        raw.withUnsafeBufferPointer { rb in
            let tri = Trilinear(s0: s[0], s1: s[1], s2: s[2], p: rb.baseAddress!, comps: 1)
            let w = UnsafeMutablePointer<(Int, Float)>.allocate(capacity: 8)
            defer { w.deallocate() }
            var idx = 0
            while idx < surface.count {
                let o = surface[idx]; idx += every
                let i = o / st[0], j = (o % st[0]) / st[1], k = o % st[1]
                let g = Vector3(Double(smooth[o + st[0]] - smooth[o - st[0]]),
                                Double(smooth[o + st[1]] - smooth[o - st[1]]),
                                Double(smooth[o + 1] - smooth[o - 1]))
                let gn = norm(g)
                guard gn > 0 else { continue }
                let dir = -g / gn   // outward
                let x0 = Vector3(Double(i), Double(j), Double(k))
                let prof = tSteps.map { t -> Double in
                    let p = x0 + t * dir
                    let m = tri.sample(p.x, p.y, p.z, weights: w)
                    var acc: Float = 0
                    for q in 0..<m { acc += w[q].1 * tri.p[w[q].0] }
                    return Double(acc)
                }
                if let sg = fitErfEdge(t: tSteps, y: prof), sg > 0.05, sg < 8 { sigmas.append(sg) }
            }
        }
        guard !sigmas.isEmpty else { throw AnalysisError.emptySupport("no edge profile could be fitted") }
        sigmas.sort()
        let med = sigmas[sigmas.count / 2] * voxelSize
        return EdgeFit(sigma: med, fwhm: 2 * (2 * log(2.0)).squareRoot() * med, profiles: sigmas.count)
    }

    /// Gauss–Newton fit of y ≈ b + a/2·erfc((t − t₀)/(√2σ)); returns σ (in t units) or nil.
    static func fitErfEdge(t: [Double], y: [Double]) -> Double? {
        let n = t.count
        guard n >= 8, let ymax = y.max(), let ymin = y.min(), ymax > ymin else { return nil }
        // Start: plateau inside, background outside, t₀ at the half crossing, σ = 1 voxel.
        var a = ymax - ymin, b = ymin, t0 = 0.0, sg = 1.0
        let half = ymin + 0.5 * a
        for q in 1..<n where (y[q - 1] - half) * (y[q] - half) <= 0 {
            let f = (half - y[q - 1]) / (y[q] - y[q - 1]); t0 = t[q - 1] + f * (t[q] - t[q - 1]); break
        }
        var p = [a, b, t0, sg]
        func model(_ p: [Double], _ x: Double) -> Double { p[1] + 0.5 * p[0] * erfc((x - p[2]) / (2.0.squareRoot() * p[3])) }
        func cost(_ p: [Double]) -> Double { var c = 0.0; for q in 0..<n { let r = y[q] - model(p, t[q]); c += r * r }; return c }
        var c = cost(p)
        var lambda = 1e-3
        for _ in 0..<50 {
            // Jacobian by analytic derivatives.
            var jtj = [Double](repeating: 0, count: 16), jtr = [Double](repeating: 0, count: 4)
            for q in 0..<n {
                let u = (t[q] - p[2]) / (2.0.squareRoot() * p[3])
                let e = erfc(u), g = exp(-u * u) / Double.pi.squareRoot()   // d erfc/du = −2g
                let jac = [0.5 * e, 1.0, p[0] * g / (2.0.squareRoot() * p[3]), p[0] * g * u / p[3]]
                let r = y[q] - model(p, t[q])
                for r1 in 0..<4 { jtr[r1] += jac[r1] * r; for c1 in 0..<4 { jtj[r1 * 4 + c1] += jac[r1] * jac[c1] } }
            }
            var m = jtj
            for d in 0..<4 { m[d * 4 + d] *= 1 + lambda }
            guard let step = solve4(m, jtr) else { return nil }
            var trial = p
            for d in 0..<4 { trial[d] += step[d] }
            trial[3] = max(1e-3, abs(trial[3]))
            let ct = cost(trial)
            if ct < c {
                let rel = (c - ct) / max(c, 1e-300)
                p = trial; c = ct; lambda = max(1e-9, lambda * 0.3)
                if rel < 1e-10 { break }
            } else { lambda *= 10; if lambda > 1e8 { break } }
        }
        _ = a; _ = b; _ = sg
        a = p[0]; b = p[1]; sg = p[3]
        return a > 0 && sg.isFinite ? sg : nil
    }

    /// Solves a 4×4 system by Gaussian elimination with partial pivoting.
    static func solve4(_ m: [Double], _ r: [Double]) -> [Double]? {
        var a = m, b = r
        for col in 0..<4 {
            var piv = col
            for row in col..<4 where abs(a[row * 4 + col]) > abs(a[piv * 4 + col]) { piv = row }
            guard abs(a[piv * 4 + col]) > 1e-300 else { return nil }
            if piv != col { for c in 0..<4 { a.swapAt(col * 4 + c, piv * 4 + c) }; b.swapAt(col, piv) }
            for row in (col + 1)..<4 {
                let f = a[row * 4 + col] / a[col * 4 + col]
                for c in col..<4 { a[row * 4 + c] -= f * a[col * 4 + c] }
                b[row] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: 4)
        for row in stride(from: 3, through: 0, by: -1) {
            var acc = b[row]
            for c in (row + 1)..<4 { acc -= a[row * 4 + c] * x[c] }
            x[row] = acc / a[row * 4 + row]
        }
        return x
    }

    /// Phase-retrieval transfer function of several runs of one state, already aligned
    /// (same twin, position and global phase): PRTF(q) = |⟨F_k(q)⟩| / √I(q), averaged on
    /// shells of |q| (reciprocal steps `steps`, m⁻¹ per pattern voxel, as columns). Without a
    /// measured intensity the runs' own mean |F_k|² stands for it. The resolution is the
    /// half period π/q where the PRTF first falls below 1/e.
    public static func prtf(runs: [ComplexVolume], intensity: RealVolume?, steps: Matrix3x3,
                            shells: Int = 40) throws -> (q: [Double], prtf: [Double], resolution: Double?) {
        guard let first = runs.first, runs.count >= 2 else {
            throw AnalysisError.badOption("the PRTF needs at least two runs of one state")
        }
        let s = first.shape
        var ffts: [ComplexVolume] = []
        for r in runs {
            guard r.shape == s else { throw AnalysisError.badOption("runs of one state differ in shape: \(r.shape) vs \(s)") }
            var f = r
            try FFT.forward(&f)
            ffts.append(f.fftshifted())
        }
        if let i = intensity, i.shape != s { throw AnalysisError.badOption("the measured pattern \(i.shape) differs from the runs' shape \(s)") }
        let n = first.count
        let cnt = Double(runs.count)
        var num = [Double](repeating: 0, count: n), den = num
        let meas = intensity?.floats
        let fl = ffts.map { $0.floats }
        // Scale the measured intensity to the runs' mean power so the PRTF tends to 1.
        var pw = 0.0
        for r in 0..<runs.count { for i in 0..<n { pw += Double(fl[r][2 * i] * fl[r][2 * i] + fl[r][2 * i + 1] * fl[r][2 * i + 1]) } }
        pw /= cnt
        let measSum = meas.map { $0.reduce(0.0) { $0 + Double(max(0, $1)) } } ?? 0
        let scale = measSum > 0 ? pw / measSum : 1
        for i in 0..<n {
            var re = 0.0, im = 0.0, p = 0.0
            for r in 0..<runs.count {
                let a = Double(fl[r][2 * i]), b = Double(fl[r][2 * i + 1])
                re += a; im += b; p += a * a + b * b
            }
            num[i] = (re * re + im * im).squareRoot() / cnt
            den[i] = meas.map { (Double(max(0, $0[i])) * scale).squareRoot() } ?? (p / cnt).squareRoot()
        }
        var qmax = 0.0
        var qs = [Double](repeating: 0, count: n)
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] {
            let q = steps * Vector3(Double(i - s[0] / 2), Double(j - s[1] / 2), Double(k - s[2] / 2))
            let o = (i * s[1] + j) * s[2] + k
            qs[o] = norm(q); qmax = max(qmax, qs[o])
        } } }
        // Shells up to the largest sphere inside the box.
        let qlim = (0..<3).map { norm(steps.column($0)) * Double(s[$0] / 2) }.min()!
        var sn = [Double](repeating: 0, count: shells), sd = sn, sq = sn, sc = sn
        for i in 0..<n where qs[i] < qlim {
            let b = min(shells - 1, Int(qs[i] / qlim * Double(shells)))
            sn[b] += num[i]; sd[b] += den[i]; sq[b] += qs[i]; sc[b] += 1
        }
        var qOut: [Double] = [], pOut: [Double] = []
        for b in 0..<shells where sc[b] > 0 && sd[b] > 0 { qOut.append(sq[b] / sc[b]); pOut.append(sn[b] / sd[b]) }
        var res: Double? = nil
        let thr = exp(-1.0)
        for b in 1..<max(1, pOut.count) where pOut[b] < thr && pOut[b - 1] >= thr {
            let f = (pOut[b - 1] - thr) / (pOut[b - 1] - pOut[b])
            let qc = qOut[b - 1] + f * (qOut[b] - qOut[b - 1])
            res = Double.pi / qc
            break
        }
        return (qOut, pOut, res)
    }
}
