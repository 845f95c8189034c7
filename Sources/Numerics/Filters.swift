import Foundation

// Filters and shifts: Gaussian smoothing (separable or through the FFT), circular
// convolution and correlation through the FFT, and sub-voxel Fourier shifts.

/// Multiplies an unshifted spectrum of shape `shape` by a separable factor
/// f(axis, k) = factor[axis][k] (complex, interleaved), in place.
func applySeparableSpectralFactor(_ v: inout ComplexVolume, factors: [[Complex32]]) {
    let sh = v.shape, r = sh.count
    let rowLen = sh[r - 1], rows = v.count / max(rowLen, 1)
    let last = factors[r - 1]
    v.withUnsafeMutableFloats { d in
        let b = SendablePointer(d.baseAddress!)
        Parallel.forEachChunk(rows, minChunk: max(1, 16384 / max(rowLen, 1))) { range in
            for row in range {
                var rem = row
                var f = Complex32(1, 0)
                for a in stride(from: r - 2, through: 0, by: -1) {
                    let i = rem % sh[a]; rem /= sh[a]
                    f = f * factors[a][i]
                }
                let base = row &* rowLen
                for x in 0..<rowLen {
                    let g = f * last[x]
                    let p = 2 &* (base &+ x)
                    let re = b.pointer[p], im = b.pointer[p &+ 1]
                    b.pointer[p] = re * g.re - im * g.im
                    b.pointer[p &+ 1] = re * g.im + im * g.re
                }
            }
        }
    }
}

/// How a Gaussian filter is computed.
public enum GaussianMethod: Sendable {
    /// Separable real-space kernel truncated at 4σ, edges treated as zero.
    case separable
    /// Multiplication by the Gaussian's transform (circular boundaries): fastest for large σ.
    case fourier
    /// Fourier for large kernels, separable otherwise.
    case automatic
}

extension Volume where Element == Float {
    /// Gaussian smoothing with standard deviation `sigma` voxels per axis (0 leaves an axis alone).
    public func gaussianFiltered(sigma: [Double], method: GaussianMethod = .automatic) throws -> RealVolume {
        guard sigma.count == rank, sigma.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw NumericsError.invalidArgument("Gaussian sigma \(sigma) for a volume of rank \(rank)")
        }
        var m = method
        if m == .automatic { m = (sigma.max() ?? 0) > 2.5 && rank == 3 ? .fourier : .separable }
        switch m {
        case .fourier:
            var c = complex()
            try FFT.forward(&c)
            let factors = (0..<rank).map { a in
                (0..<shape[a]).map { k -> Complex32 in
                    let q = 2 * Double.pi * FFT.frequency(k, shape[a])
                    return Complex32(Float(exp(-0.5 * sigma[a] * sigma[a] * q * q)), 0)
                }
            }
            applySeparableSpectralFactor(&c, factors: factors)
            try FFT.inverse(&c)
            return c.real()
        default:
            var out = self
            for a in 0..<rank where sigma[a] > 0 { out = out.convolvedAlongAxis(a, kernel: gaussianKernel(sigma[a])) }
            return out
        }
    }

    /// Gaussian smoothing with one σ for every axis.
    public func gaussianFiltered(sigma: Double, method: GaussianMethod = .automatic) throws -> RealVolume {
        try gaussianFiltered(sigma: [Double](repeating: sigma, count: rank), method: method)
    }

    /// 1D convolution along one axis with a centred odd-length kernel, zero edges.
    func convolvedAlongAxis(_ axis: Int, kernel: [Float]) -> RealVolume {
        let n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), outer = shape[..<axis].reduce(1, *)
        let h = kernel.count / 2
        var out = RealVolume(shape: shape)
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let dp = SendablePointer(d.baseAddress!)
                let sp = s.baseAddress!
                // Work on a (outer) × n × (inner) view; vectorise over `inner` where it is long.
                Parallel.forEachChunk(outer * n, minChunk: max(1, 4096 / max(inner, 1))) { range in
                    for on in range {
                        let o = on / n, i = on % n
                        let dst = dp.pointer + (o * n + i) * inner
                        let lo = max(0, i - h), hi = min(n - 1, i + h)
                        for j in lo...hi {
                            let w = kernel[j - i + h]
                            let src = sp + (o * n + j) * inner
                            for x in 0..<inner { dst[x] += w * src[x] }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// A normalised Gaussian kernel of standard deviation σ, truncated at 4σ.
func gaussianKernel(_ sigma: Double) -> [Float] {
    let h = max(1, Int((4 * sigma).rounded(.up)))
    var k = (-h...h).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
    let s = k.reduce(0, +)
    k = k.map { $0 / s }
    return k.map(Float.init)
}

extension Volume where Element == Complex32 {
    /// Translates by a sub-voxel `shift` (voxels per axis, positive moves content to higher
    /// indices) with the Fourier shift theorem: circular, exact for band-limited data.
    public func fourierShifted(by shift: [Double]) throws -> ComplexVolume {
        guard shift.count == rank else { throw NumericsError.shapeMismatch("shift \(shift) on \(shape)") }
        var c = self
        try FFT.forward(&c)
        let factors = (0..<rank).map { a in
            (0..<shape[a]).map { k -> Complex32 in
                var q = 2 * Double.pi * FFT.frequency(k, shape[a])
                // The Nyquist bin of an even axis has no sign: use its real part only.
                if shape[a] % 2 == 0 && k == shape[a] / 2 { return Complex32(Float(cos(q * shift[a])), 0) }
                q *= -shift[a]
                return Complex32(Float(cos(q)), Float(sin(q)))
            }
        }
        applySeparableSpectralFactor(&c, factors: factors)
        try FFT.inverse(&c)
        return c
    }

    /// The mean phase step between neighbours along each axis, arg Σ ρ*(r) ρ(r + e_a) in
    /// (−π, π] radians per voxel: from the complex field, so phase wraps do not bias it, and
    /// weighted by the product of the neighbours' moduli. Over the whole box circularly
    /// (the Bragg peak's circular centre of mass, `braggPeakRamp`), or over the pairs whose
    /// two voxels are both inside `support` (nonzero), not across the box's edge. As a
    /// typed ramp: `braggPeakRamp`, `phaseRamp(inside:)`.
    public func meanPhaseStep(inside support: [UInt8]? = nil) -> [Double] {
        precondition(support == nil || support!.count == count, "support of \(support!.count) voxels for \(shape)")
        let sh = shape, st = strides
        return withUnsafeFloats { p -> [Double] in
            (0..<sh.count).map { a -> Double in
                let n = sh[a], s = st[a]
                guard n > 1 else { return 0 }
                var re = 0.0, im = 0.0
                // Blocks of n lines of s voxels; voxel t·s + u's neighbour up axis a is
                // (t + 1)·s + u, circularly.
                for block in stride(from: 0, to: count, by: n * s) {
                    for t in 0..<n {
                        if t == n - 1 && support != nil { break }
                        let row = block + t * s, next = t == n - 1 ? block : row + s
                        for u in 0..<s {
                            let f = row + u, g = next + u
                            if let m = support, m[f] == 0 || m[g] == 0 { continue }
                            let ar = Double(p[2 * f]), ai = Double(p[2 * f + 1])
                            let br = Double(p[2 * g]), bi = Double(p[2 * g + 1])
                            re += ar * br + ai * bi          // conj(a)·b
                            im += ar * bi - ai * br
                        }
                    }
                }
                return re == 0 && im == 0 ? 0 : atan2(im, re)
            }
        }
    }

    /// Circular convolution (a ⊛ b)(x) = Σ_y a(y) b(x − y), through the FFT.
    public func convolved(with other: ComplexVolume) throws -> ComplexVolume {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("convolve \(shape) with \(other.shape)") }
        var a = self, b = other
        try FFT.forward(&a); try FFT.forward(&b)
        try a.multiply(by: b)
        try FFT.inverse(&a)
        return a
    }

    /// Circular cross-correlation c(x) = Σ_y conj(a(y)) b(y + x), through the FFT; its peak
    /// is at the shift that moves `self` onto `other`.
    public func correlated(with other: ComplexVolume) throws -> ComplexVolume {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("correlate \(shape) with \(other.shape)") }
        var a = self, b = other
        try FFT.forward(&a); try FFT.forward(&b)
        a = a.conjugated()
        try a.multiply(by: b)
        try FFT.inverse(&a)
        return a
    }
}

extension Volume where Element == Float {
    /// Sub-voxel Fourier shift of a real volume (the real part of the shifted signal).
    public func fourierShifted(by shift: [Double]) throws -> RealVolume {
        try complex().fourierShifted(by: shift).real()
    }

    /// Circular convolution through the FFT.
    public func convolved(with other: RealVolume) throws -> RealVolume {
        try complex().convolved(with: other.complex()).real()
    }

    /// Circular cross-correlation through the FFT (see the complex version).
    public func correlated(with other: RealVolume) throws -> RealVolume {
        try complex().correlated(with: other.complex()).real()
    }
}
