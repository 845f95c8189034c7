import Foundation

/// Sub-voxel registration of two volumes by cross-correlation.
public enum Registration {
    /// The shift (voxels per axis, circular, in (−n/2, n/2]) that best moves `moving`
    /// onto `reference`: `moving.fourierShifted(by: s)` ≈ `reference`. The peak of the
    /// FFT cross-correlation is refined to sub-voxel precision by a parabola through the
    /// peak and its two neighbours on each axis. Also returns the normalised correlation
    /// coefficient at the peak (1 for identical shapes).
    public static func shift(of moving: ComplexVolume, onto reference: ComplexVolume) throws -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        let c = try moving.correlated(with: reference).modulus()
        let peak = c.argmax()
        let idx = c.index(ofFlat: peak)
        let sh = c.shape
        var shift = [Double](repeating: 0, count: sh.count)
        let p0 = Double(c[flat: peak])
        for a in 0..<sh.count {
            var lo = idx, hi = idx
            lo[a] = (idx[a] - 1 + sh[a]) % sh[a]; hi[a] = (idx[a] + 1) % sh[a]
            let pm = Double(c[flat: c.flatIndex(lo)]), pp = Double(c[flat: c.flatIndex(hi)])
            let denom = pm - 2 * p0 + pp
            let frac = sh[a] >= 3 && denom < 0 ? 0.5 * (pm - pp) / denom : 0
            var s = Double(idx[a]) + max(-0.5, min(0.5, frac))
            if s > Double(sh[a]) / 2 { s -= Double(sh[a]) }
            shift[a] = s
        }
        let norm = (moving.squaredNorm() * reference.squaredNorm()).squareRoot()
        return (shift, norm > 0 ? p0 / norm : 0)
    }

    /// Real-volume version (intensities, amplitudes).
    public static func shift(of moving: RealVolume, onto reference: RealVolume) throws -> (shift: [Double], correlation: Double) {
        try shift(of: moving.complex(), onto: reference.complex())
    }
}

extension Registration {
    /// Sub-voxel peak of a cross-correlation given by its cross-power spectrum
    /// `x` = conj(M)·R (M, R the spectra of the moving and reference volumes): the shift s
    /// maximising |c(s)| = |Σ_k x_k e^{2πi f_k·s}| (f_k the frequencies), from `start` (e.g.
    /// the integer peak) by coordinate-wise parabolas with a halving step (six rounds: ½ … 1/64
    /// voxel), |c| evaluated exactly as a separable sum. Returns the shift and |c| there.
    /// `moving.fourierShifted(by: s)` ≈ `reference`. Shared by the merging of phasing runs
    /// and the alignment of a series (one definition).
    public static func refinedCorrelationPeak(_ x: ComplexVolume, from start: [Double]) -> (shift: [Double], magnitude: Double) {
        let s = x.shape
        guard s.count == 3 else { return (start, .nan) }
        var shift = start
        func value(_ sh: [Double]) -> Double {
            // e_a[k] = exp(2πi f_k s_a); the Nyquist bin of an even axis keeps cos only.
            let e = (0..<3).map { a -> [(Double, Double)] in
                (0..<s[a]).map { k in
                    let ang = 2 * Double.pi * FFT.frequency(k, s[a]) * sh[a]
                    if s[a] % 2 == 0 && k == s[a] / 2 { return (cos(Double.pi * sh[a]), 0) }
                    return (cos(ang), sin(ang))
                }
            }
            var partRe = [Double](repeating: 0, count: s[0]), partIm = partRe
            x.withUnsafeFloats { xf in
                let xp = xf.baseAddress!
                partRe.withUnsafeMutableBufferPointer { pr in
                    partIm.withUnsafeMutableBufferPointer { pi in
                        let prp = SendablePointer(pr.baseAddress!), pip = SendablePointer(pi.baseAddress!)
                        Parallel.forEachChunk(s[0], minChunk: 1) { range in
                            for i in range {
                                var accR = 0.0, accI = 0.0
                                for j in 0..<s[1] {
                                    var rowR = 0.0, rowI = 0.0
                                    let base = (i &* s[1] &+ j) &* s[2]
                                    for k in 0..<s[2] {
                                        let re = Double(xp[(base &+ k) &* 2]), im = Double(xp[(base &+ k) &* 2 &+ 1])
                                        let (er, ei) = e[2][k]
                                        rowR += re * er - im * ei; rowI += re * ei + im * er
                                    }
                                    let (er, ei) = e[1][j]
                                    accR += rowR * er - rowI * ei; accI += rowR * ei + rowI * er
                                }
                                let (er, ei) = e[0][i]
                                prp.pointer[i] = accR * er - accI * ei; pip.pointer[i] = accR * ei + accI * er
                            }
                        }
                    }
                }
            }
            let re = partRe.reduce(0, +), im = partIm.reduce(0, +)
            return (re * re + im * im).squareRoot()
        }
        var h = 0.5
        var f0 = value(shift)
        for _ in 0..<6 {
            for a in 0..<3 where s[a] >= 3 {
                var lo = shift, hi = shift
                lo[a] -= h; hi[a] += h
                let fl = value(lo), fh = value(hi)
                let denom = fl - 2 * f0 + fh
                var step = 0.0
                if denom < 0 { step = max(-h, min(h, 0.5 * h * (fl - fh) / denom)) }
                else if fh > f0 || fl > f0 { step = fh > fl ? h : -h }
                if step != 0 {
                    var t = shift; t[a] += step
                    let ft = value(t)
                    if ft >= f0 { shift = t; f0 = ft }
                }
            }
            h *= 0.5
        }
        return (shift, f0)
    }
}
