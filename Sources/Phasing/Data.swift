import Numerics
import Foundation

/// A measured pattern made ready for phasing: checked, its invalid pixels masked, and
/// its amplitudes √I stored once in FFT (unshifted) order for the whole run.
///
/// Policy for bad values: negative, NaN and infinite intensities are **masked** (left
/// free, like detector gaps) and counted in `warnings`; they are never clipped to zero,
/// which would pretend they were measured as dark.
public struct PhasingData: @unchecked Sendable {
    /// Shape used for phasing (3D; a 2D pattern is phased as one 1×ny×nx slab).
    public let shape: [Int]
    /// The shape the pattern came with.
    public let originalShape: [Int]
    /// √I in FFT order, −∞ on masked pixels (the sentinel keeps P_M one branch-free pass).
    let amplitude: FloatStorage
    /// √I in FFT order with masked pixels filled so that the autocorrelation is most compact
    /// (`compactAutocorrelationFilled`): used only to start (autocorrelation support, random
    /// start), never in the fit. A start with a hole in the centre of the pattern (a gap
    /// through the Bragg peak) would begin from an object with the wrong low frequencies.
    let startAmplitude: FloatStorage
    /// Number of pixels the mask excludes (given mask plus invalid values).
    public let maskedCount: Int
    /// Pixels masked because their intensity was negative, NaN or infinite.
    public let negativeCount: Int
    public let nonFiniteCount: Int
    /// Σ I over measured pixels, and the largest measured intensity.
    public let totalIntensity: Double
    public let maximumIntensity: Double
    /// Human-readable notes about masked values (empty when the data were clean).
    public let warnings: [String]

    public var count: Int { shape.reduce(1, *) }
    public var measuredCount: Int { count - maskedCount }

    /// Checks and prepares a centred pattern (zero frequency at n/2, as on disk).
    /// - Parameters:
    ///   - intensity: the centred diffraction intensity (photons), 2D or 3D.
    ///   - mask: same shape, nonzero = bad pixel (excluded from the Fourier constraint).
    ///   - name: how errors refer to the pattern (a file name).
    public init(intensity: RealVolume, mask: RealVolume? = nil, name: String = "the pattern") throws {
        guard intensity.rank == 2 || intensity.rank == 3 else {
            throw PhasingError.invalidData("\(name) has shape \(intensity.shape); phasing needs a 2D or 3D pattern")
        }
        guard intensity.shape.allSatisfy({ $0 >= 2 }) else {
            throw PhasingError.invalidData("\(name) has shape \(intensity.shape); every axis needs at least 2 pixels")
        }
        if let m = mask, m.shape != intensity.shape {
            throw PhasingError.invalidData("the mask has shape \(m.shape) but \(name) has shape \(intensity.shape); they must match")
        }
        originalShape = intensity.shape
        let sh = intensity.rank == 3 ? intensity.shape : [1] + intensity.shape
        shape = sh
        let n = sh.reduce(1, *)
        let iShift = try intensity.reshaped(sh).ifftshifted()
        let mShift = try mask.map { try $0.reshaped(sh).ifftshifted() }
        let amp = FloatStorage(count: n)
        var masked = 0, negative = 0, nonFinite = 0
        var total = 0.0, peak = 0.0
        iShift.withUnsafeFloats { ip in
            let mp = mShift?.withUnsafeFloats { $0.baseAddress! }
            for i in 0..<n {
                let v = ip[i]
                var bad = false
                if let mp, mp[i] != 0 { bad = true }
                if !v.isFinite { nonFinite += 1; bad = true } else if v < 0 { if !bad { negative += 1 }; bad = true }
                if bad { masked += 1; amp.pointer[i] = -.infinity; continue }
                amp.pointer[i] = v.squareRoot()
                total += Double(v); peak = max(peak, Double(v))
            }
        }
        withExtendedLifetime(mShift) {}
        amplitude = amp
        if masked > 0 && masked < n {
            startAmplitude = try PhasingData.compactAutocorrelationFilled(amp, start: PhasingData.filled(amp, shape: sh), shape: sh)
        } else {
            startAmplitude = amp
        }
        maskedCount = masked; negativeCount = negative; nonFiniteCount = nonFinite
        totalIntensity = total; maximumIntensity = peak
        var notes: [String] = []
        if negative > 0 { notes.append("\(negative) negative intensit\(negative == 1 ? "y" : "ies") in \(name) masked (treated as unmeasured)") }
        if nonFinite > 0 { notes.append("\(nonFinite) NaN/infinite intensit\(nonFinite == 1 ? "y" : "ies") in \(name) masked (treated as unmeasured)") }
        warnings = notes
        guard masked < n else {
            throw PhasingError.invalidData("every pixel of \(name) is masked or invalid; nothing is left to phase")
        }
        guard total > 0 else {
            throw PhasingError.invalidData("\(name) is all zero on its \(n - masked) unmasked pixels; there is no diffraction to phase")
        }
    }

    /// Normalised convolution (the conjugate-gradient fill's starting point):
    /// I_fill = G∗(I·w) / G∗w on masked pixels (w = 1 where measured),
    /// with σ = 2 voxels, then σ = 8 for pixels still out of reach.
    static func filled(_ amp: FloatStorage, shape: [Int]) throws -> FloatStorage {
        let n = shape.reduce(1, *)
        let out = amp.copyForPhasing()
        var weight = RealVolume(shape: shape), value = RealVolume(shape: shape)
        weight.withUnsafeMutableFloats { w in value.withUnsafeMutableFloats { v in
            for i in 0..<n where amp.pointer[i] >= 0 { w[i] = 1; v[i] = amp.pointer[i] * amp.pointer[i] }
        } }
        var pending = true
        for sigma in [2.0, 8.0] where pending {
            let gw = try weight.gaussianFiltered(sigma: sigma, method: .fourier)
            let gv = try value.gaussianFiltered(sigma: sigma, method: .fourier)
            pending = false
            gw.withUnsafeFloats { w in gv.withUnsafeFloats { v in
                for i in 0..<n where out.pointer[i] < 0 {
                    if w[i] > 1e-3 { out.pointer[i] = max(v[i] / w[i], 0).squareRoot() } else { pending = true }
                }
            } }
        }
        for i in 0..<n where out.pointer[i] < 0 { out.pointer[i] = 0 }
        return out
    }

    /// Fills masked intensities with the values that make the pattern's autocorrelation (the
    /// Patterson function A = F⁻¹[I]) most compact: the masked intensities x minimise
    /// Σ_r w(r) |A(r)|², w(r) = Σ_axes (2|r_a| / n_a)^16, by conjugate gradients from `start`.
    ///
    /// Why: the autocorrelation of a finite crystal vanishes beyond twice its size, and an
    /// oversampled pattern puts that inside the box; a wrong guess for masked pixels adds to A
    /// a component spread over the whole box (for a gap of planes, one constant along the
    /// gap's normal), which the steep weight, ~0 near the origin and 1 at the box edge,
    /// penalises. A normalised Gaussian interpolation across a gap through the Bragg peak
    /// recovers ~13% of the peak (measured on the 64³ test prisms); this recovers it to
    /// ~0.1% and the gap's intensities to ~1% (L1), so that the autocorrelation support and
    /// the random start begin from the right low frequencies. The fill only starts a run;
    /// the modulus projection leaves masked pixels free.
    static func compactAutocorrelationFilled(_ amp: FloatStorage, start: FloatStorage, shape: [Int],
                                             iterations: Int = 30, threads: Int = Parallel.threads) throws -> FloatStorage {
        let n = shape.reduce(1, *)
        let masked = (0..<n).filter { amp.pointer[$0] < 0 }
        guard !masked.isEmpty, shape.count == 3 else { return start.copyForPhasing() }
        let fwd = try FFTPlanner.plan(shape: shape, direction: .forward, inPlace: true, threads: threads)
        let bwd = try FFTPlanner.plan(shape: shape, direction: .backward, inPlace: true, threads: threads)
        // The weight per axis, w_a(k) = (2|k|/n_a)^16, with the n² of the unnormalised transforms folded in.
        let nn = Double(n) * Double(n)
        let axisWeight = (0..<3).map { a in
            (0..<shape[a]).map { k -> Float in Float(pow(Double(min(k, shape[a] - k)) * 2 / Double(shape[a]), 16) / nn) }
        }
        let buffer = FloatStorage(count: 2 * n)
        let b = buffer.pointer
        let m = masked.count
        // The quadratic form's operator: 2 Re(F[w · F⁻¹ v]) on masked pixels, v given on the
        // masked pixels (and the measured intensities added when `withData`).
        func apply(_ v: UnsafePointer<Float>, withData: Bool, into out: UnsafeMutablePointer<Float>) {
            for i in 0..<(2 * n) { b[i] = 0 }
            if withData { for i in 0..<n where amp.pointer[i] >= 0 { b[2 * i] = amp.pointer[i] * amp.pointer[i] } }
            for j in 0..<m { b[2 * masked[j]] = v[j] }
            bwd.execute(b, b)
            let ny = shape[1], nx = shape[2]
            for z in 0..<shape[0] { for y in 0..<ny {
                let wzy = axisWeight[0][z] + axisWeight[1][y], base = (z * ny + y) * nx
                for x in 0..<nx {
                    let f = wzy + axisWeight[2][x]
                    b[2 &* (base &+ x)] *= f; b[2 &* (base &+ x) &+ 1] *= f
                }
            } }
            fwd.execute(b, b)
            for j in 0..<m { out[j] = 2 * b[2 * masked[j]] }
        }
        // Conjugate gradients on the masked intensities x (measured ones fixed).
        var x = masked.map { start.pointer[$0] * start.pointer[$0] }
        var r = [Float](repeating: 0, count: m), d = r, q = r
        x.withUnsafeBufferPointer { xp in r.withUnsafeMutableBufferPointer { apply(xp.baseAddress!, withData: true, into: $0.baseAddress!) } }
        var rr = 0.0
        for j in 0..<m { r[j] = -r[j]; d[j] = r[j]; rr += Double(r[j]) * Double(r[j]) }
        let rr0 = rr
        for _ in 0..<iterations where rr > 1e-10 * rr0 {
            d.withUnsafeBufferPointer { dp in q.withUnsafeMutableBufferPointer { apply(dp.baseAddress!, withData: false, into: $0.baseAddress!) } }
            var dq = 0.0
            for j in 0..<m { dq += Double(d[j]) * Double(q[j]) }
            guard dq > 0 else { break }
            let alpha = Float(rr / dq)
            var rrNew = 0.0
            for j in 0..<m {
                x[j] += alpha * d[j]
                r[j] -= alpha * q[j]
                rrNew += Double(r[j]) * Double(r[j])
            }
            let beta = Float(rrNew / rr)
            rr = rrNew
            for j in 0..<m { d[j] = r[j] + beta * d[j] }
        }
        let out = amp.copyForPhasing()
        for j in 0..<m { out.pointer[masked[j]] = max(0, x[j]).squareRoot() }
        return out
    }

    /// The measured amplitudes (centred, −∞ where masked), for inspection and tests.
    public var centredAmplitude: RealVolume {
        let v = try! RealVolume(shape: shape, storage: amplitude.copyForPhasing())
        return v.fftshifted()
    }
}

extension FloatStorage {
    func copyForPhasing() -> FloatStorage {
        let s = FloatStorage(count: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}
