import Foundation

// Sub-voxel registration by the upsampled DFT (Guizar-Sicairos, Thurman & Fienup,
// Opt. Lett. 33, 156 (2008)): locate the integer peak of the FFT cross-correlation,
// then evaluate the correlation's Fourier series on a grid 1/upsampling voxel fine
// around it, with separable matrix products (no large zero-padded FFT).

extension Registration {
    /// `shift(of:onto:method: .upsampledDFT(factor: upsampling))`: the shift (voxels per axis,
    /// in (−n/2, n/2]) that moves `moving` onto `reference` (`moving.fourierShifted(by: s)` ≈
    /// `reference`), to 1/`upsampling` voxel, and the normalised correlation coefficient at
    /// that shift (Pearson's r when `subtractMean`). Volumes of rank 1 to 3. Cost: one FFT
    /// pair plus O(N · 1.5 upsampling) for the fine search; meant for boxes up to ~128³.
    static func upsampledShift(of moving: RealVolume, onto reference: RealVolume,
                               upsampling: Int = 20, subtractMean: Bool = true) throws
        -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        guard (1...3).contains(moving.rank) else {
            throw NumericsError.invalidArgument("upsampled registration needs rank 1 to 3 (got shape \(moving.shape))")
        }
        guard upsampling >= 1 else { throw NumericsError.invalidArgument("upsampling must be at least 1 (got \(upsampling))") }
        let r = moving.rank
        let sh3 = [Int](repeating: 1, count: 3 - r) + moving.shape
        var a = reference.complex(), b = moving.complex()
        if subtractMean {
            let ma = Float(reference.mean()), mb = Float(moving.mean())
            a.withUnsafeMutableFloats { p in for i in stride(from: 0, to: p.count, by: 2) { p[i] -= ma } }
            b.withUnsafeMutableFloats { p in for i in stride(from: 0, to: p.count, by: 2) { p[i] -= mb } }
        }
        let norm = (a.squaredNorm() * b.squaredNorm()).squareRoot()
        a = try a.reshaped(sh3); b = try b.reshaped(sh3)
        try FFT.forward(&a); try FFT.forward(&b)
        // Cross power X = A · conj(B); its inverse transform peaks at the shift.
        var x = a
        x.withUnsafeMutableFloats { px in
            b.withUnsafeFloats { pb in
                for i in stride(from: 0, to: px.count, by: 2) {
                    let ar = px[i], ai = px[i + 1], br = pb[i], bi = -pb[i + 1]
                    px[i] = ar * br - ai * bi
                    px[i + 1] = ar * bi + ai * br
                }
            }
        }
        let n = Double(x.count)
        var c = x
        try FFT.inverse(&c)
        let re = c.real()
        let coarse = re.index(ofFlat: re.argmax()).enumerated().map { ax, i -> Double in
            Double(i > sh3[ax] / 2 ? i - sh3[ax] : i)
        }
        // Fine grid: x_j = coarse + (j − h)/u, j = 0…2h, spanning ±0.75 voxel.
        let u = Double(upsampling)
        let h = upsampling == 1 ? 0 : Int((0.75 * u).rounded(.up))
        let m = 2 * h + 1
        let counts = sh3.map { $0 == 1 ? 1 : m }
        // Kernels E_a[j][k] = exp(+2πi f(k) x_j), stored as (re, im) Double pairs.
        func kernel(_ ax: Int) -> [Double] {
            let len = sh3[ax], cnt = counts[ax]
            var e = [Double](repeating: 0, count: 2 * cnt * len)
            for j in 0..<cnt {
                let xj = cnt == 1 ? 0 : coarse[ax] + Double(j - h) / u
                for k in 0..<len {
                    let ph = 2 * Double.pi * FFT.frequency(k, len) * xj
                    e[2 * (j * len + k)] = cos(ph); e[2 * (j * len + k) + 1] = sin(ph)
                }
            }
            return e
        }
        let e0 = kernel(0), e1 = kernel(1), e2 = kernel(2)
        let (n0, n1, n2) = (sh3[0], sh3[1], sh3[2])
        let (m0, m1, m2) = (counts[0], counts[1], counts[2])
        // Contract the last axis, then the middle, then the first.
        var t2 = [Double](repeating: 0, count: 2 * n0 * n1 * m2)
        x.withUnsafeFloats { px in
            t2.withUnsafeMutableBufferPointer { tp in
                let out = SendablePointer(tp.baseAddress!)
                Parallel.forEachChunk(n0 * n1, minChunk: max(1, 4096 / max(n2 * m2, 1))) { rows in
                    for row in rows {
                        let src = row * n2
                        for j in 0..<m2 {
                            var sr = 0.0, si = 0.0
                            let eb = j * n2
                            for k in 0..<n2 {
                                let xr = Double(px[2 * (src + k)]), xi = Double(px[2 * (src + k) + 1])
                                let er = e2[2 * (eb + k)], ei = e2[2 * (eb + k) + 1]
                                sr += xr * er - xi * ei; si += xr * ei + xi * er
                            }
                            out.pointer[2 * (row * m2 + j)] = sr; out.pointer[2 * (row * m2 + j) + 1] = si
                        }
                    }
                }
            }
        }
        var t1 = [Double](repeating: 0, count: 2 * n0 * m1 * m2)
        for k0 in 0..<n0 {
            for j1 in 0..<m1 {
                for j2 in 0..<m2 {
                    var sr = 0.0, si = 0.0
                    for k1 in 0..<n1 {
                        let ti = 2 * ((k0 * n1 + k1) * m2 + j2), ei = 2 * (j1 * n1 + k1)
                        let xr = t2[ti], xi = t2[ti + 1], er = e1[ei], eim = e1[ei + 1]
                        sr += xr * er - xi * eim; si += xr * eim + xi * er
                    }
                    t1[2 * ((k0 * m1 + j1) * m2 + j2)] = sr; t1[2 * ((k0 * m1 + j1) * m2 + j2) + 1] = si
                }
            }
        }
        var fine = [Double](repeating: 0, count: m0 * m1 * m2)
        for j0 in 0..<m0 {
            for j12 in 0..<(m1 * m2) {
                var sr = 0.0
                for k0 in 0..<n0 {
                    let ti = 2 * (k0 * m1 * m2 + j12), ei = 2 * (j0 * n0 + k0)
                    sr += t1[ti] * e0[ei] - t1[ti + 1] * e0[ei + 1]
                }
                fine[j0 * m1 * m2 + j12] = sr / n
            }
        }
        var best = 0
        for i in 1..<fine.count where fine[i] > fine[best] { best = i }
        let jb = [best / (m1 * m2), best / m2 % m1, best % m2]
        var shift3 = [Double](repeating: 0, count: 3)
        for ax in 0..<3 {
            guard counts[ax] > 1 else { continue }
            let frac = Registration.parabolicPeakOffset(fine, counts: counts, peak: jb, axis: ax)
            shift3[ax] = Registration.wrapped(coarse[ax] + (Double(jb[ax] - h) + frac) / u, period: sh3[ax])
        }
        return (Array(shift3[(3 - r)...]), norm > 0 ? fine[best] / norm : 0)
    }

    /// The peak's offset from grid point `peak` along `axis`, in grid steps within ±0.5:
    /// the vertex of the parabola through the peak and its two neighbours on a 3D grid of
    /// `counts` values (row-major). 0 at the grid's edge or where the three do not curve
    /// down. The last fraction of an upsampled cross-correlation peak.
    public static func parabolicPeakOffset(_ values: [Double], counts: [Int], peak: [Int], axis: Int) -> Double {
        let j = peak[axis]
        guard j > 0 && j < counts[axis] - 1 else { return 0 }
        func value(_ p: [Int]) -> Double { values[(p[0] * counts[1] + p[1]) * counts[2] + p[2]] }
        var lo = peak, hi = peak
        lo[axis] -= 1; hi[axis] += 1
        let f0 = value(peak), fm = value(lo), fp = value(hi)
        let d = fm - 2 * f0 + fp
        return d < 0 ? max(-0.5, min(0.5, 0.5 * (fm - fp) / d)) : 0
    }

    /// A shift on a periodic axis of `period` samples, brought into (−period/2, period/2].
    public static func wrapped(_ s: Double, period: Int) -> Double {
        let len = Double(period)
        return s > len / 2 ? s - len : (s <= -len / 2 ? s + len : s)
    }
}
