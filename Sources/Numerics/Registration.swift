import Foundation

/// How a registration refines the integer peak of the cross-correlation c(s) = Σ conj ρ_m(r) ρ_ref(r + s)
/// to a sub-voxel shift: one definition of each method, chosen by the caller.
public indirect enum SubvoxelMethod: Hashable, Sendable {
    /// The integer peak of |c| alone.
    case integer
    /// The vertex of a parabola through the peak of |c| and its two neighbours on each axis:
    /// cheap, but biased by ~0.1 voxel on the sharp peak of a faceted crystal.
    case parabolic
    /// |c(s)| itself maximised from the `from` estimate by coordinate-wise parabolas with a
    /// halving step (½ … 1/64 voxel), each |c(s)| an exact separable Fourier sum
    /// (`refinedCorrelationPeak`): ~0.01 voxel. Rank 3 (other ranks keep the start).
    case peakSearch(from: SubvoxelMethod)
    /// The correlation's Fourier series evaluated on a grid 1/`factor` voxel fine around the
    /// integer peak (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008)), means
    /// subtracted so the correlation is Pearson's r. Real volumes of rank 1 to 3.
    case upsampledDFT(factor: Int)
    /// `.upsampledDFT` searched in two steps: a grid 1/4 voxel fine over ±0.75 voxel around
    /// the integer peak, then 1/`factor` over ±1/4 voxel around its best point (single
    /// precision in the first contraction). The same shift when the correlation has one
    /// maximum within ±0.75 voxel (a box around a Bragg peak), at about a third of the cost:
    /// the preparation's scan registration. Real volumes of rank 3.
    case twoStepUpsampledDFT(factor: Int)
}

/// Sub-voxel registration of two volumes by cross-correlation.
public enum Registration {
    /// The shift (voxels per axis, circular, in (−n/2, n/2]) that best moves `moving`
    /// onto `reference`: `moving.fourierShifted(by: s)` ≈ `reference`, found by `method`,
    /// and the normalised correlation |c| / (‖ρ_m‖ ‖ρ_ref‖) there (1 for identical shapes;
    /// for complex objects the overlap a twin choice compares).
    public static func shift(of moving: ComplexVolume, onto reference: ComplexVolume,
                             method: SubvoxelMethod = .parabolic) throws -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        switch method {
        case .upsampledDFT, .twoStepUpsampledDFT:
            throw NumericsError.invalidArgument("the upsampled-DFT registration takes real volumes")
        default: break
        }
        // Cross-power spectrum x = conj(M)·R and the correlation c = F⁻¹ x.
        var x = try FFT.forward(moving).conjugated()
        try x.multiply(by: try FFT.forward(reference))
        let c = try FFT.inverse(x).modulus()
        let peak = c.argmax()
        let idx = c.index(ofFlat: peak)
        let sh = c.shape
        let p0 = Double(c[flat: peak])
        let norm = (moving.squaredNorm() * reference.squaredNorm()).squareRoot()
        func estimate(_ m: SubvoxelMethod) -> (shift: [Double], correlation: Double) {
            switch m {
            case .integer, .upsampledDFT, .twoStepUpsampledDFT:
                return ((0..<sh.count).map { a in
                    let v = Double(idx[a]); return v > Double(sh[a]) / 2 ? v - Double(sh[a]) : v
                }, norm > 0 ? p0 / norm : 0)
            case .parabolic:
                let shift = (0..<sh.count).map { a -> Double in
                    var lo = idx, hi = idx
                    lo[a] = (idx[a] - 1 + sh[a]) % sh[a]; hi[a] = (idx[a] + 1) % sh[a]
                    let pm = Double(c[flat: c.flatIndex(lo)]), pp = Double(c[flat: c.flatIndex(hi)])
                    let denom = pm - 2 * p0 + pp
                    let frac = sh[a] >= 3 && denom < 0 ? 0.5 * (pm - pp) / denom : 0
                    let s = Double(idx[a]) + max(-0.5, min(0.5, frac))
                    return s > Double(sh[a]) / 2 ? s - Double(sh[a]) : s
                }
                return (shift, norm > 0 ? p0 / norm : 0)
            case .peakSearch(let start):
                let first = estimate(start)
                guard sh.count == 3 else { return first }
                let (refined, magnitude) = refinedCorrelationPeak(x, from: first.shift)
                return (refined, norm > 0 ? (magnitude / Double(moving.count)) / norm : 0)
            }
        }
        return estimate(method)
    }

    /// Real-volume version (intensities, amplitudes); the only one for `.upsampledDFT` and
    /// `.twoStepUpsampledDFT`.
    public static func shift(of moving: RealVolume, onto reference: RealVolume,
                             method: SubvoxelMethod = .parabolic) throws -> (shift: [Double], correlation: Double) {
        if case .upsampledDFT(let factor) = method {
            return try upsampledShift(of: moving, onto: reference, upsampling: factor)
        }
        if case .twoStepUpsampledDFT(let factor) = method {
            return try BoxRegistration.upsampledShift(of: moving, onto: reference, upsampling: factor)
        }
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        return try shift(of: moving.complex(), onto: reference.complex(), method: method)
    }
}

extension Registration {
    /// Sub-voxel peak of a cross-correlation given by its cross-power spectrum
    /// `x` = conj(M)·R (M, R the spectra of the moving and reference volumes): the shift s
    /// maximising |c(s)| = |Σ_k x_k e^{2πi f_k·s}| (f_k the frequencies), from `start` (e.g.
    /// the integer peak) by coordinate-wise parabolas with a halving step (six rounds: ½ … 1/64
    /// voxel), |c| evaluated exactly as a separable sum. Returns the shift and |c| there.
    /// `moving.fourierShifted(by: s)` ≈ `reference`. The `.peakSearch` method of `shift`.
    static func refinedCorrelationPeak(_ x: ComplexVolume, from start: [Double]) -> (shift: [Double], magnitude: Double) {
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
