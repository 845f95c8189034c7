import Foundation
import Numerics

/// Partial coherence modelled as a blur of the intensity by a kernel (in pixels).
public enum CoherenceBlur: Equatable, Sendable {
    case none
    /// Gaussian kernel of standard deviation `sigma` pixels per axis.
    case gaussian(sigma: Double)
    /// Separable Lorentzian (Cauchy) kernel of half width at half maximum `halfWidth`
    /// pixels per axis (heavier tails than a Gaussian).
    case lorentzian(halfWidth: Double)
    /// Pseudo-Voigt: `eta` × the Lorentzian plus (1 − `eta`) × the Gaussian, both of full
    /// width at half maximum `fwhm` pixels per axis.
    case pseudoVoigt(fwhm: Double, eta: Double)
}

/// Detector defects: module gaps (planes of dead pixels through every frame) and hot
/// pixels (a fixed few pixels that read a large count in every frame).
public struct DetectorDefects: Equatable, Sendable {
    /// Pixels per module along rows and columns (0: no gaps).
    public var moduleSize: Int
    /// Width of each gap in pixels.
    public var gapWidth: Int
    /// Number of hot pixels.
    public var hotPixels: Int
    /// Count a hot pixel reads.
    public var hotValue: Float
    public init(moduleSize: Int = 0, gapWidth: Int = 2, hotPixels: Int = 0, hotValue: Float = 1e6) {
        self.moduleSize = moduleSize; self.gapWidth = gapWidth; self.hotPixels = hotPixels; self.hotValue = hotValue
    }
    public static let none = DetectorDefects()
}

/// Bragg diffraction of a complex object: F(q) = Σ ρ(r) e^{−iq·r} on the box's grid, the
/// intensity |F|² centred (zero frequency at index n/2 of each axis).
public enum Diffraction {

    /// The noise-free intensity |FT(ρ)|² of `object` placed at the centre of a zero box
    /// of shape `box` (each axis at least the object's), centred. Unscaled: Σ I = N Σ|ρ|²
    /// (Parseval, N = box voxel count).
    public static func intensity(of object: ComplexVolume, box: [Int]) throws -> RealVolume {
        var f = try farField(of: object, box: box)
        return shiftedIntensity(&f)
    }

    /// The complex far field F = FT(ρ) on the box, unshifted (zero frequency at index 0).
    public static func farField(of object: ComplexVolume, box: [Int]) throws -> ComplexVolume {
        guard object.rank == 3, box.count == 3 else {
            throw SimulationError.invalidParameter("diffraction needs a 3D object and box (got \(object.shape) in \(box))")
        }
        for a in 0..<3 where box[a] < object.shape[a] {
            throw SimulationError.invalidParameter("the box \(box) is smaller than the object \(object.shape)")
        }
        var f = ComplexVolume(shape: box)
        // Place the object's centre (n/2) at index 0, wrapping: embed + ifftshift in one pass.
        let sh = object.shape
        object.withUnsafeFloats { s in
            f.withUnsafeMutableFloats { d in
                for i0 in 0..<sh[0] {
                    let j0 = (i0 - sh[0] / 2 + box[0]) % box[0]
                    for i1 in 0..<sh[1] {
                        let j1 = (i1 - sh[1] / 2 + box[1]) % box[1]
                        let src = (i0 * sh[1] + i1) * sh[2], dst = (j0 * box[1] + j1) * box[2]
                        for i2 in 0..<sh[2] {
                            let j2 = (i2 - sh[2] / 2 + box[2]) % box[2]
                            d[2 * (dst + j2)] = s[2 * (src + i2)]
                            d[2 * (dst + j2) + 1] = s[2 * (src + i2) + 1]
                        }
                    }
                }
            }
        }
        try SimFFT.forward(&f)
        return f
    }

    /// |F|² of an unshifted far field, fftshifted into a centred pattern.
    static func shiftedIntensity(_ f: inout ComplexVolume) -> RealVolume {
        let b = f.shape
        var out = RealVolume(shape: b)
        let h2 = b[2] / 2
        f.withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let sp = s.baseAddress!
                let dp = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(b[0] * b[1], minChunk: max(1, 16384 / b[2])) { range in
                    for row in range {
                        let k0 = row / b[1], k1 = row % b[1]
                        let dst = (((k0 + b[0] / 2) % b[0]) * b[1] + (k1 + b[1] / 2) % b[1]) * b[2]
                        let src = row * b[2]
                        for k2 in 0..<b[2] {
                            let re = sp[2 &* (src &+ k2)], im = sp[2 &* (src &+ k2) &+ 1]
                            var j = k2 &+ h2
                            if j >= b[2] { j &-= b[2] }
                            dp.pointer[dst &+ j] = re * re + im * im
                        }
                    }
                }
            }
        }
        return out
    }

    /// A simulated measurement: the intensity of `object` in `box`, scaled so that its
    /// brightest pixel holds `photons` counts, blurred for partial coherence, plus a flat
    /// `background` (counts per pixel), then Poisson noise drawn from `seed` (nil: no
    /// noise, the expected counts are returned).
    public static func diffract(_ object: ComplexVolume, box: [Int], photons: Double, seed: UInt64?,
                                background: Double = 0, blur: CoherenceBlur = .none) throws -> RealVolume {
        guard photons > 0, photons.isFinite else {
            throw SimulationError.invalidParameter("the peak photon count must be > 0 (got \(photons))")
        }
        guard background >= 0, background.isFinite else {
            throw SimulationError.invalidParameter("the background must be ≥ 0 counts per pixel (got \(background))")
        }
        var i = try intensity(of: object, box: box)
        if blur != .none { i = try blurred(i, blur) }
        let peak = i.maximum()
        guard peak > 0 else { throw SimulationError.invalidParameter("the object is empty: it diffracts no intensity") }
        let s = Float(photons / Double(peak)), bg = Float(background)
        i.withUnsafeMutableFloats { p in for k in 0..<p.count { p[k] = p[k] * s + bg } }
        if let seed { i = i.poissonSampled(seed: seed) }
        return i
    }

    /// The intensity convolved with a normalised coherence kernel (through the FFT:
    /// circular, harmless for a centred pattern that has fallen off at the box edges).
    public static func blurred(_ intensity: RealVolume, _ blur: CoherenceBlur) throws -> RealVolume {
        switch blur {
        case .none: return intensity
        case .gaussian(let sigma):
            guard sigma >= 0 else { throw SimulationError.invalidParameter("the coherence blur σ must be ≥ 0 pixels (got \(sigma))") }
            return try PhaseField.gaussianSmoothed(intensity, sigma: sigma)
        case .lorentzian(let gamma):
            guard gamma >= 0 else { throw SimulationError.invalidParameter("the coherence blur half width must be ≥ 0 pixels (got \(gamma))") }
            return try separableLorentzian(intensity, gamma: gamma, eta: 1, sigma: 0)
        case .pseudoVoigt(let fwhm, let eta):
            guard fwhm >= 0, eta >= 0, eta <= 1 else {
                throw SimulationError.invalidParameter("the pseudo-Voigt blur needs a FWHM ≥ 0 pixels and 0 ≤ η ≤ 1 (got \(fwhm), \(eta))")
            }
            return try separableLorentzian(intensity, gamma: fwhm / 2, eta: eta, sigma: fwhm / (2 * (2 * log(2.0)).squareRoot()))
        }
    }

    /// η × (separable Cauchy kernel of HWHM γ) + (1 − η) × (Gaussian of σ), through the FFT.
    /// The FT of a unit-area Cauchy kernel of HWHM γ is exp(−γ|q|) per axis.
    static func separableLorentzian(_ intensity: RealVolume, gamma: Double, eta: Double, sigma: Double) throws -> RealVolume {
        var c = intensity.complex()
        try SimFFT.forward(&c)
        let sh = c.shape
        let f = (0..<sh.count).map { a in (0..<sh[a]).map { k -> Float in
            Float(exp(-gamma * abs(2 * Double.pi * FFT.frequency(k, sh[a])))) } }
        let g = (0..<sh.count).map { a in (0..<sh[a]).map { k -> Float in
            let q = 2 * Double.pi * FFT.frequency(k, sh[a]); return Float(exp(-0.5 * sigma * sigma * q * q)) } }
        let n1 = sh[1], n2 = sh[2], e = Float(eta)
        c.withUnsafeMutableFloats { p in
            for row in 0..<(sh[0] * n1) {
                let l = f[0][row / n1] * f[1][row % n1] * e, gg = g[0][row / n1] * g[1][row % n1] * (1 - e)
                for x in 0..<n2 {
                    let w = eta == 1 ? l * f[2][x] : l * f[2][x] + gg * g[2][x]
                    p[2 * (row * n2 + x)] *= w; p[2 * (row * n2 + x) + 1] *= w
                }
            }
        }
        try SimFFT.inverse(&c)
        return c.real()
    }

    /// A detector mask for frames of shape (frames, rows, cols): 1 on module-gap rows and
    /// columns (every `moduleSize` pixels, `gapWidth` wide, through all frames) and on
    /// `hotPixels` random pixels; 0 elsewhere (the CXI convention: nonzero = bad).
    /// Returns the mask and the hot pixels' (row, col).
    public static func detectorMask(shape: [Int], defects: DetectorDefects, seed: UInt64) -> (mask: RealVolume, hot: [(Int, Int)]) {
        let rows = shape[1], cols = shape[2]
        var bad2D = [Float](repeating: 0, count: rows * cols)
        if defects.moduleSize > 0 && defects.gapWidth > 0 {
            let m = defects.moduleSize, g = defects.gapWidth
            // Gaps sit after each module, centred on the module boundary.
            for r in 0..<rows where isGap(r, m, g, rows) { for c in 0..<cols { bad2D[r * cols + c] = 1 } }
            for c in 0..<cols where isGap(c, m, g, cols) { for r in 0..<rows { bad2D[r * cols + c] = 1 } }
        }
        var rng = SimulationRNG(seed: seed, stream: 0x4D41534B)
        var hot: [(Int, Int)] = []
        while hot.count < min(defects.hotPixels, rows * cols / 2) {
            let r = rng.integer(below: rows), c = rng.integer(below: cols)
            if bad2D[r * cols + c] == 0 { bad2D[r * cols + c] = 1; hot.append((r, c)) }
        }
        var mask = RealVolume(shape: shape)
        mask.withUnsafeMutableFloats { p in
            for f in 0..<shape[0] { for k in 0..<(rows * cols) { p[f * rows * cols + k] = bad2D[k] } }
        }
        return (mask, hot)
    }

    static func isGap(_ i: Int, _ m: Int, _ g: Int, _ n: Int) -> Bool {
        // Distance to the nearest module boundary (multiples of m, excluding the edges).
        let k = ((Double(i) + 0.5) / Double(m)).rounded()
        let b = k * Double(m)
        guard k > 0, b < Double(n) else { return false }
        return abs(Double(i) + 0.5 - b) < Double(g) / 2
    }

    /// Applies detector defects to frames: gap pixels read 0, hot pixels `hotValue`.
    public static func applyDefects(_ frames: inout RealVolume, mask: RealVolume, hot: [(Int, Int)], hotValue: Float) {
        let rows = frames.shape[1], cols = frames.shape[2]
        var isHot = [Bool](repeating: false, count: rows * cols)
        for (r, c) in hot { isHot[r * cols + c] = true }
        mask.withUnsafeFloats { m in
            frames.withUnsafeMutableFloats { p in
                for i in 0..<p.count where m[i] != 0 { p[i] = isHot[i % (rows * cols)] ? hotValue : 0 }
            }
        }
    }
}
