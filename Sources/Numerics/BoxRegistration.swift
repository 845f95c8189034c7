import Foundation

/// Sub-voxel registration of two registration boxes by the upsampled DFT (Guizar-Sicairos,
/// Thurman & Fienup, Opt. Lett. 33, 156 (2008)): `Registration.shift(…, method:
/// .twoStepUpsampledDFT(factor:))`. As `.upsampledDFT(factor:)`, but with
/// the fine search done in two steps: the correlation's Fourier series is evaluated on a
/// grid 1/4 voxel fine over ±0.75 voxel around the integer peak, then 1/upsampling fine over
/// ±1/4 voxel around the best point of that grid (the points of the second grid are points
/// of the single 1/upsampling grid). Same result for a correlation with one maximum within
/// ±0.75 voxel (a registration box of a Bragg peak), at about a third of the cost; the
/// first contraction (the bulk of it) runs in single precision over split real and
/// imaginary parts, which vectorises. In Numerics beside `Registration` so that it is one
/// `SubvoxelMethod` of `Registration.shift`; `package`, because the preparation calls the
/// half-spectrum form below (it keeps a reference box's spectrum and the FFT plans across
/// thousands of boxes, which `shift(of:onto:method:)`, taking two volumes, cannot).
package enum BoxRegistration {
    /// The shift that moves `moving` onto `reference` (`moving.fourierShifted(by: s)` ≈
    /// `reference`), to 1/`upsampling` voxel, in (−n/2, n/2] per axis, and Pearson's r at
    /// that shift. 3D volumes of equal shape.
    package static func upsampledShift(of moving: RealVolume, onto reference: RealVolume, upsampling: Int) throws
        -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        guard moving.rank == 3 else {
            throw NumericsError.invalidArgument("the two-step upsampled-DFT registration takes 3D volumes, not shape \(moving.shape)")
        }
        let f = try BoxFourier(shape: moving.shape)
        return try f.upsampledShift(of: f.spectrum(moving), onto: f.spectrum(reference), upsampling: upsampling)
    }

    /// The same from half spectra (`BoxFourier.spectrum`) of the two boxes.
    /// `coarse`: only the integer peak of the correlation and a parabola through it and its
    /// neighbours per axis (about 0.1 voxel, without the DFT search).
    package static func upsampledShift(of moving: FloatStorage, onto reference: FloatStorage, fourier f: BoxFourier,
                               upsampling: Int, coarse coarseOnly: Bool = false) throws -> (shift: [Double], correlation: Double) {
        guard upsampling >= 1 else { throw NumericsError.invalidArgument("upsampling must be at least 1 (got \(upsampling))") }
        let sh = f.shape
        let (n0, n1, n2) = (sh[0], sh[1], sh[2])
        let h2 = n2 / 2 + 1
        // Cross power X = A · conj(B) on the half spectrum, without the zero frequency (the
        // means subtracted); the norms by Parseval (inner columns of the half count twice).
        let x = FloatStorage(count: 2 * f.halfCount)
        var saa = 0.0, sbb = 0.0
        let a = reference.pointer, b = moving.pointer, xp = x.pointer
        for row in 0..<(n0 * n1) {
            var ra = 0.0, rb = 0.0, ea = 0.0, eb = 0.0
            for k in 0..<h2 {
                let i = 2 * (row * h2 + k)
                let ar = a[i], ai = a[i + 1], br = b[i], bi = -b[i + 1]
                xp[i] = ar * br - ai * bi
                xp[i + 1] = ar * bi + ai * br
                let pa = Double(ar * ar + ai * ai), pb = Double(br * br + bi * bi)
                if k == 0 || (n2 % 2 == 0 && k == n2 / 2) { ea += pa; eb += pb } else { ra += pa; rb += pb }
            }
            saa += ea + 2 * ra; sbb += eb + 2 * rb
        }
        let a0 = Double(a[0] * a[0] + a[1] * a[1]), b0 = Double(b[0] * b[0] + b[1] * b[1])
        xp[0] = 0; xp[1] = 0
        let count = Double(n0 * n1 * n2)
        let norm = ((saa - a0) * (sbb - b0)).squareRoot() / count
        let c = f.inverse(xp)
        let coarse = c.index(ofFlat: c.argmax()).enumerated().map { ax, i -> Double in
            Double(i > sh[ax] / 2 ? i - sh[ax] : i)
        }
        if coarseOnly {
            let ci = c.index(ofFlat: c.argmax())
            var shift = [0.0, 0.0, 0.0]
            c.withUnsafeFloats { p in
                let strides = [sh[1] * sh[2], sh[2], 1]
                for ax in 0..<3 {
                    var frac = 0.0
                    if sh[ax] >= 3 {
                        var lo = ci, hi = ci
                        lo[ax] = (ci[ax] - 1 + sh[ax]) % sh[ax]; hi[ax] = (ci[ax] + 1) % sh[ax]
                        let at = { (i: [Int]) in Double(p[i[0] * strides[0] + i[1] * strides[1] + i[2]]) }
                        let f0 = at(ci), fm = at(lo), fp = at(hi)
                        let d = fm - 2 * f0 + fp
                        if d < 0 { frac = max(-0.5, min(0.5, 0.5 * (fm - fp) / d)) }
                    }
                    shift[ax] = coarse[ax] + frac
                }
            }
            return (shift, norm > 0 ? Double(c.withUnsafeFloats { $0[ci[0] * sh[1] * sh[2] + ci[1] * sh[2] + ci[2]] }) / norm : 0)
        }
        // Full spectrum, split into real and imaginary parts, for the fine search.
        let full = n0 * n1 * n2
        var xr = [Float](repeating: 0, count: full), xi = [Float](repeating: 0, count: full)
        for k0 in 0..<n0 {
            let m0 = (n0 - k0) % n0
            for k1 in 0..<n1 {
                let m1 = (n1 - k1) % n1
                let dst = (k0 * n1 + k1) * n2
                let src = 2 * (k0 * n1 + k1) * h2, mirror = 2 * (m0 * n1 + m1) * h2
                for k in 0..<h2 { xr[dst + k] = xp[src + 2 * k]; xi[dst + k] = xp[src + 2 * k + 1] }
                for k in h2..<n2 { xr[dst + k] = xp[mirror + 2 * (n2 - k)]; xi[dst + k] = -xp[mirror + 2 * (n2 - k) + 1] }
            }
        }
        let n = count
        // Half-widths of the fine grids per axis (an axis of length 1 has nothing to search).
        func halves(_ h: Int) -> [Int] { sh.map { $0 == 1 ? 0 : h } }
        var centre = coarse
        var step = 1.0
        var hs = [0, 0, 0]
        let u1 = min(upsampling, 4)
        if upsampling > 1 {
            step = 1 / Double(u1)
            hs = halves(Int((0.75 * Double(u1)).rounded(.up)))
        }
        var fine = evaluate(xr, xi, shape: sh, centre: centre, step: step, h: hs)
        if upsampling > u1 {
            let jb = gridIndex(argmax(fine), h: hs)
            centre = (0..<3).map { centre[$0] + Double(jb[$0] - hs[$0]) * step }
            step = 1 / Double(upsampling)
            hs = halves(Int((Double(upsampling) / Double(u1)).rounded(.up)))
            fine = evaluate(xr, xi, shape: sh, centre: centre, step: step, h: hs)
        }
        let ms = hs.map { 2 * $0 + 1 }
        let best = argmax(fine)
        let jb = gridIndex(best, h: hs)
        let shift = (0..<3).map { ax in
            let frac = Registration.parabolicPeakOffset(fine, counts: ms, peak: jb, axis: ax)
            return Registration.wrapped(centre[ax] + (Double(jb[ax] - hs[ax]) + frac) * step, period: sh[ax])
        }
        return (shift, norm > 0 ? fine[best] / n / norm : 0)
    }

    static func gridIndex(_ flat: Int, h: [Int]) -> [Int] {
        let m1 = 2 * h[1] + 1, m2 = 2 * h[2] + 1
        return [flat / (m1 * m2), flat / m2 % m1, flat % m2]
    }

    static func argmax(_ v: [Double]) -> Int {
        var best = 0
        for i in 1..<v.count where v[i] > v[best] { best = i }
        return best
    }

    /// Re Σ_k X(k) exp(+2πi f(k)·x) on the grid x_j = centre + (j − h)·step, j = 0…2h per
    /// axis ((2h+1)³ values, C order), by separable contractions: last axis (Float, split
    /// parts), then the middle and the first (Double).
    static func evaluate(_ xr: [Float], _ xi: [Float], shape sh: [Int], centre: [Double], step: Double, h: [Int]) -> [Double] {
        let ms = h.map { 2 * $0 + 1 }
        let (n0, n1, n2) = (sh[0], sh[1], sh[2])
        let (m0, m1, m2) = (ms[0], ms[1], ms[2])
        // Kernels E_a[j][k] = exp(+2πi f(k) x_j).
        func kernel(_ ax: Int) -> (re: [Double], im: [Double]) {
            let len = sh[ax], m = ms[ax]
            var er = [Double](repeating: 0, count: m * len), ei = er
            for j in 0..<m {
                let xj = centre[ax] + Double(j - h[ax]) * step
                for k in 0..<len {
                    let ph = 2 * Double.pi * FFT.frequency(k, len) * xj
                    er[j * len + k] = cos(ph); ei[j * len + k] = sin(ph)
                }
            }
            return (er, ei)
        }
        let k2 = kernel(2), k1 = kernel(1), k0 = kernel(0)
        let e2r = k2.re.map { Float($0) }, e2i = k2.im.map { Float($0) }
        // t2[row][j2], row = (k0, k1)
        var t2r = [Double](repeating: 0, count: n0 * n1 * m2), t2i = t2r
        xr.withUnsafeBufferPointer { pr in xi.withUnsafeBufferPointer { pi in
        e2r.withUnsafeBufferPointer { er in e2i.withUnsafeBufferPointer { ei in
        t2r.withUnsafeMutableBufferPointer { tr in t2i.withUnsafeMutableBufferPointer { ti in
            let xr = SendablePointer(UnsafeMutablePointer(mutating: pr.baseAddress!))
            let xi = SendablePointer(UnsafeMutablePointer(mutating: pi.baseAddress!))
            let er = SendablePointer(UnsafeMutablePointer(mutating: er.baseAddress!))
            let ei = SendablePointer(UnsafeMutablePointer(mutating: ei.baseAddress!))
            let tr = SendablePointer(tr.baseAddress!), ti = SendablePointer(ti.baseAddress!)
            // One thread: a box is small, and the other core has the scans' FFTs.
            Parallel.forEachChunk(n0 * n1, threads: 1) { rows in
                for row in rows {
                    let a = xr.pointer + row * n2, b = xi.pointer + row * n2
                    for j in 0..<m2 {
                        let c = er.pointer + j * n2, d = ei.pointer + j * n2
                        // Eight partial sums per part: a float reduction vectorises only
                        // when written so.
                        var vr = SIMD8<Float>(), vi = SIMD8<Float>()
                        var k = 0
                        while k + 8 <= n2 {
                            let av = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
                            let bv = UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self)
                            let cv = UnsafeRawPointer(c + k).loadUnaligned(as: SIMD8<Float>.self)
                            let dv = UnsafeRawPointer(d + k).loadUnaligned(as: SIMD8<Float>.self)
                            vr += av * cv - bv * dv
                            vi += av * dv + bv * cv
                            k += 8
                        }
                        var sr = vr.sum(), si = vi.sum()
                        while k < n2 {
                            sr += a[k] * c[k] - b[k] * d[k]
                            si += a[k] * d[k] + b[k] * c[k]
                            k += 1
                        }
                        tr.pointer[row * m2 + j] = Double(sr); ti.pointer[row * m2 + j] = Double(si)
                    }
                }
            }
        } } } } } }
        // t1[k0][j1][j2]
        var t1r = [Double](repeating: 0, count: n0 * m1 * m2), t1i = t1r
        for q in 0..<n0 {
            for j1 in 0..<m1 {
                for k in 0..<n1 {
                    let cr = k1.re[j1 * n1 + k], ci = k1.im[j1 * n1 + k]
                    let src = (q * n1 + k) * m2, dst = (q * m1 + j1) * m2
                    for j2 in 0..<m2 {
                        let ar = t2r[src + j2], ai = t2i[src + j2]
                        t1r[dst + j2] += ar * cr - ai * ci
                        t1i[dst + j2] += ar * ci + ai * cr
                    }
                }
            }
        }
        let mm = m1 * m2
        var out = [Double](repeating: 0, count: m0 * mm)
        for j0 in 0..<m0 {
            for q in 0..<n0 {
                let cr = k0.re[j0 * n0 + q], ci = k0.im[j0 * n0 + q]
                for j in 0..<mm {
                    out[j0 * mm + j] += t1r[q * mm + j] * cr - t1i[q * mm + j] * ci
                }
            }
        }
        return out
    }
}

/// Real-to-complex transforms of registration boxes (one thread: the boxes are small, and
/// the reading thread works beside), so that a box's half spectrum, computed once, serves
/// its registration, the Fourier shifts that fill bad voxels, and the reference sum.
package final class BoxFourier {
    package let shape: [Int]
    package let count: Int
    package let halfCount: Int
    package let forward: RealFFTPlan
    package let backward: RealFFTPlan
    /// c2r overwrites its input: spectra are copied here first.
    package let scratch: FloatStorage

    package init(shape: [Int]) throws {
        self.shape = shape
        count = shape.reduce(1, *)
        forward = try RealFFTPlan.plan(shape: shape, direction: .forward, threads: 1)
        backward = try RealFFTPlan.plan(shape: shape, direction: .backward, threads: 1)
        halfCount = forward.halfCount
        scratch = FloatStorage(count: 2 * halfCount)
    }

    /// The half spectrum (2 × halfCount Floats, interleaved) of a box.
    package func spectrum(_ v: RealVolume) -> FloatStorage {
        let s = FloatStorage(count: 2 * halfCount)
        v.withUnsafeFloats { p in forward.execute(real: UnsafeMutablePointer(mutating: p.baseAddress!), spectrum: s.pointer) }
        return s
    }

    /// The real box of a half spectrum (normalised inverse); `spec` is left unchanged.
    package func inverse(_ spec: UnsafePointer<Float>) -> RealVolume {
        scratch.pointer.update(from: spec, count: 2 * halfCount)
        let out = FloatStorage(count: count)
        backward.execute(real: out.pointer, spectrum: scratch.pointer)
        let inv = 1 / Float(count)
        for i in 0..<count { out.pointer[i] *= inv }
        return try! RealVolume(shape: shape, storage: out)
    }

    /// The box of half spectrum `spec` translated by `shift` voxels (Fourier shift theorem,
    /// periodic; the Nyquist bin of an even axis keeps its real part only), as
    /// `RealVolume.fourierShifted(by:)`.
    package func shifted(_ spec: FloatStorage, by shift: [Double]) -> RealVolume {
        let half = RealFFTPlan.halfShape(of: shape)
        func factors(_ a: Int) -> [Float] {
            let n = shape[a], len = half[a]
            var out = [Float](repeating: 0, count: 2 * len)
            for k in 0..<len {
                let q = 2 * Double.pi * FFT.frequency(k, n)
                if n % 2 == 0 && k == n / 2 {
                    out[2 * k] = Float(cos(q * shift[a]))
                } else {
                    out[2 * k] = Float(cos(-q * shift[a])); out[2 * k + 1] = Float(sin(-q * shift[a]))
                }
            }
            return out
        }
        let g0 = factors(0), g1 = factors(1), g2 = factors(2)
        let (n1, n2) = (half[1], half[2])
        let s = spec.pointer, d = scratch.pointer
        for row in 0..<(half[0] * n1) {
            let k0 = row / n1, k1 = row % n1
            let ar = g0[2 * k0], ai = g0[2 * k0 + 1], br = g1[2 * k1], bi = g1[2 * k1 + 1]
            let rr = ar * br - ai * bi, ri = ar * bi + ai * br
            let base = 2 * row * n2
            for k in 0..<n2 {
                let fr = rr * g2[2 * k] - ri * g2[2 * k + 1]
                let fi = rr * g2[2 * k + 1] + ri * g2[2 * k]
                let xr = s[base + 2 * k], xi = s[base + 2 * k + 1]
                d[base + 2 * k] = xr * fr - xi * fi
                d[base + 2 * k + 1] = xr * fi + xi * fr
            }
        }
        let out = FloatStorage(count: count)
        backward.execute(real: out.pointer, spectrum: d)
        let inv = 1 / Float(count)
        for i in 0..<count { out.pointer[i] *= inv }
        return try! RealVolume(shape: shape, storage: out)
    }

    /// Registration of two boxes from their half spectra (see `BoxRegistration`).
    package func upsampledShift(of moving: FloatStorage, onto reference: FloatStorage, upsampling: Int, coarse: Bool = false) throws
        -> (shift: [Double], correlation: Double) {
        try BoxRegistration.upsampledShift(of: moving, onto: reference, fourier: self, upsampling: upsampling, coarse: coarse)
    }
}
