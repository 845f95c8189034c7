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
    /// √I in FFT order with masked pixels filled by a normalised Gaussian interpolation of
    /// their neighbours: used only to start (autocorrelation support, random start), never
    /// in the fit. A start with a hole in the centre of the pattern (a gap through the Bragg
    /// peak) would begin from an object with the wrong low frequencies.
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
        startAmplitude = masked > 0 && masked < n ? try PhasingData.filled(amp, shape: sh) : amp
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

    /// Normalised convolution: I_fill = G∗(I·w) / G∗w on masked pixels (w = 1 where measured),
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
