import Numerics
import Foundation

/// The shape of a point-spread function modelling partial coherence.
public enum PSFModel: String, CaseIterable, Sendable {
    /// Gaussian, exp(−x²/2σ²) per axis.
    case gaussian = "gauss"
    /// Lorentzian (Cauchy) per axis, 1/(1 + x²/γ²): heavy tails.
    case lorentzian = "lorentz"
    /// Pseudo-Voigt: η × Lorentzian + (1 − η) × Gaussian of the same FWHM (PyNX's BCDI default).
    case pseudoVoigt = "pvoigt"
}

/// A point-spread function K of the measured intensity, I = |F|² ⊗ K: partial coherence
/// (and detector blur) seen in the detector's pixels. Separable per axis (z, y, x), each
/// part normalised to unit sum, widths in pixels. Its transform is analytic:
/// exp(−σ²q²/2) for the Gaussian and exp(−γ|q|) for the Lorentzian per axis (q in rad per
/// pixel), which defines K on the periodic grid of the pattern.
public struct PointSpreadFunction: Sendable, Equatable, CustomStringConvertible {
    public var model: PSFModel
    /// Full width at half maximum per axis (z, y, x), pixels; 0 is no blur along that axis.
    public var fwhm: [Double]
    /// The Lorentzian fraction (1 for a Lorentzian, 0 for a Gaussian).
    public var eta: Double
    /// A flat background (counts per pixel) added to the model intensity, fitted with the
    /// widths when they are refined (0 for a fixed kernel).
    public var background: Double = 0

    public static let gaussianFWHMPerSigma = 2 * (2 * log(2.0)).squareRoot()

    public init(model: PSFModel, fwhm: [Double], eta: Double? = nil) {
        self.model = model; self.fwhm = fwhm
        switch model {
        case .gaussian: self.eta = 0
        case .lorentzian: self.eta = 1
        case .pseudoVoigt: self.eta = min(1, max(0, eta ?? 0.1))
        }
    }

    public static func gaussian(sigma: [Double]) -> PointSpreadFunction {
        PointSpreadFunction(model: .gaussian, fwhm: sigma.map { $0 * gaussianFWHMPerSigma })
    }

    public static func lorentzian(halfWidth: [Double]) -> PointSpreadFunction {
        PointSpreadFunction(model: .lorentzian, fwhm: halfWidth.map { 2 * $0 })
    }

    /// The Gaussian part's σ per axis (pixels).
    public var sigma: [Double] { fwhm.map { $0 / Self.gaussianFWHMPerSigma } }
    /// The Lorentzian part's half width per axis (pixels).
    public var halfWidth: [Double] { fwhm.map { $0 / 2 } }

    /// The mean of the per-axis FWHM (pixels): how much blur the kernel models.
    public var meanFWHM: Double { fwhm.isEmpty ? 0 : fwhm.reduce(0, +) / Double(fwhm.count) }

    /// The widths in the model's own words: σ (Gaussian), half width (Lorentzian) or FWHM.
    public var widths: [Double] {
        switch model {
        case .gaussian: return sigma
        case .lorentzian: return halfWidth
        case .pseudoVoigt: return fwhm
        }
    }

    public var widthName: String {
        switch model {
        case .gaussian: return "sigma"
        case .lorentzian: return "half width"
        case .pseudoVoigt: return "FWHM"
        }
    }

    public var description: String {
        let w = widths.map { String(format: "%.3f", $0) }.joined(separator: ",")
        let bg = background > 0 ? String(format: ", background %.3g", background) : ""
        switch model {
        case .pseudoVoigt: return "pvoigt FWHM \(w) px, eta \(String(format: "%.3f", eta))\(bg)"
        default: return "\(model.rawValue) \(widthName) \(w) px\(bg)"
        }
    }

    /// The kernel's transform on the half spectrum of a real transform of `shape` (last axis
    /// n → n/2 + 1), times `scale`, written to `out`. Returns K(0), the kernel's central
    /// value in real space (the mean of the full transform).
    @discardableResult
    func transform(shape: [Int], scale: Float, into out: UnsafeMutablePointer<Float>) -> Float {
        let nz = shape[0], ny = shape[1], nx = shape[2], nh = nx / 2 + 1
        let sig = sigma, gam = halfWidth
        func factors(_ a: Int, _ n: Int, _ count: Int) -> (g: [Float], l: [Float]) {
            var g = [Float](repeating: 1, count: count), l = g
            for k in 0..<count {
                let q = 2 * Double.pi * abs(FFT.frequency(k, n))
                g[k] = Float(exp(-0.5 * sig[a] * sig[a] * q * q))
                l[k] = Float(exp(-gam[a] * q))
            }
            return (g, l)
        }
        let fz = factors(0, nz, nz), fy = factors(1, ny, ny), fx = factors(2, nx, nh)
        let e = Float(eta), ge = 1 - e
        // K(0) = (1/N) Σ over the full spectrum: per part, the product of per-axis means.
        func axisMean(_ v: [Float], _ n: Int, half: Bool) -> Double {
            guard half else { return v.reduce(0.0) { $0 + Double($1) } / Double(n) }
            var s = 0.0
            for k in 0..<n { s += Double(v[min(k, n - k)]) }
            return s / Double(n)
        }
        let k0 = Double(ge) * axisMean(fz.g, nz, half: false) * axisMean(fy.g, ny, half: false) * axisMean(fx.g, nx, half: true)
            + Double(e) * axisMean(fz.l, nz, half: false) * axisMean(fy.l, ny, half: false) * axisMean(fx.l, nx, half: true)
        for z in 0..<nz { for y in 0..<ny {
            let gzy = fz.g[z] * fy.g[y] * ge * scale, lzy = fz.l[z] * fy.l[y] * e * scale
            let base = (z * ny + y) * nh
            for x in 0..<nh { out[base + x] = gzy * fx.g[x] + lzy * fx.l[x] }
        } }
        return Float(k0)
    }

    /// The kernel in real space, centred (zero offset at n/2 per axis), unit sum.
    public func kernel(shape: [Int]) throws -> RealVolume {
        let sh = shape.count == 3 ? shape : [1] + shape
        let plan = try RealFFTPlan.plan(shape: sh, direction: .backward, threads: 1, effort: .estimate)
        let h = plan.halfCount
        let khat = FloatStorage(count: h), spec = FloatStorage(count: 2 * h), real = FloatStorage(count: plan.count)
        transform(shape: sh, scale: 1 / Float(plan.count), into: khat.pointer)
        for i in 0..<h { spec.pointer[2 * i] = khat.pointer[i] }
        plan.execute(real: real.pointer, spectrum: spec.pointer)
        return try RealVolume(shape: sh, storage: real).fftshifted().reshaped(shape)
    }
}

/// How a point-spread function enters the iterations (`psfmode=` in a recipe step).
public enum PSFMode: String, CaseIterable, Sendable {
    /// In the modulus projection: F ← F·√(I / (|F|² ⊗ K + b)) on measured pixels (PyNX,
    /// cohere, Bonsu).
    case model
    /// The measured intensity deconvolved by K (Richardson–Lucy, masked pixels excluded),
    /// then the coherent projection onto √ of the estimate. A kernel not yet fitted is fitted
    /// against the measured data when the mode starts; one already found (in model mode) is
    /// kept, since refits from iterates made on deconvolved data drift wide. A new fixed
    /// kernel warm-starts a new deconvolution. χ², llk and the free llk are
    /// still those of |F|² ⊗ K + b against the measured data. On the simulated prisms the
    /// in-loop model stagnates at a wrong object under a Lorentzian blur (error 0.57–0.68 even
    /// told the true kernel) where deconvolution reaches 0.07 (bench/README.md).
    case deconvolve
}

/// How a recipe step treats partial coherence.
public enum PSFSetting: Sendable, Equatable, CustomStringConvertible {
    /// The coherent modulus projection.
    case off
    /// A given point-spread function, kept fixed.
    case fixed(PointSpreadFunction)
    /// A point-spread function of this model whose widths are fitted to the data when the
    /// step starts and every `every` iterations (continuing from the widths found so far).
    case refined(PSFModel, every: Int, background: Bool = false)
    /// Refined, with the kernel's shape alternating over the runs (`psf=auto:both`): runs 1,
    /// 3, … fit a pseudo-Voigt, runs 2, 4, … a Lorentzian, and the runs' likelihood on the
    /// measured data chooses. From the iterate of a coherent start each shape's fit is biased
    /// towards itself (a pseudo-Voigt fit takes Lorentzian data for a broad Gaussian, a
    /// Lorentzian fit takes Gaussian data for no blur), while the finished runs' χ² differ
    /// 2–8× between the right and the wrong shape (bench/README.md).
    case refinedAlternating(every: Int, background: Bool = false)

    public static let defaultRefinementPeriod = 50

    /// The setting a given run (0-based) uses: `refinedAlternating` resolved to its shape.
    public func forRun(_ k: Int) -> PSFSetting {
        guard case .refinedAlternating(let every, let bg) = self else { return self }
        return .refined(k % 2 == 0 ? .pseudoVoigt : .lorentzian, every: every, background: bg)
    }

    /// The refit period of a refined setting (nil for the others).
    public var refinementPeriod: Int? {
        switch self {
        case .refined(_, let every, _), .refinedAlternating(let every, _): return every
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .off: return "off"
        case .fixed(let f):
            let w = f.widths.allSatisfy({ $0 == f.widths[0] }) ? Recipe.format(f.widths[0])
                : f.widths.map { Recipe.format($0) }.joined(separator: "x")
            return f.model == .pseudoVoigt ? "pvoigt:\(w):\(Recipe.format(f.eta))" : "\(f.model.rawValue):\(w)"
        case .refined(let m, let every, let bg):
            return (m == .gaussian ? "auto" : "auto:\(m.rawValue)")
                + (every == PSFSetting.defaultRefinementPeriod ? "" : ":\(every)") + (bg ? ":bg" : "")
        case .refinedAlternating(let every, let bg):
            return "auto:both" + (every == PSFSetting.defaultRefinementPeriod ? "" : ":\(every)") + (bg ? ":bg" : "")
        }
    }

    /// Parses `off`, `auto[:MODEL][:EVERY][:bg]` (bg: fit a flat background too), `gauss:S`, `lorentz:G`, `pvoigt:FWHM[:ETA]`, a
    /// width optionally per axis as `Z x Y x X` (e.g. `gauss:0.5x0.4x0.4`).
    static func parse(_ text: String) -> PSFSetting? {
        let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts == ["off"] { return .off }
        if parts[0] == "auto" {
            var model = PSFModel.gaussian, every = defaultRefinementPeriod, bg = false, both = false
            for p in parts.dropFirst() {
                if let m = PSFModel(rawValue: p) { model = m } else if let e = Int(p), e > 0 { every = e }
                else if p == "bg" { bg = true } else if p == "both" { both = true } else { return nil }
            }
            return both ? .refinedAlternating(every: every, background: bg) : .refined(model, every: every, background: bg)
        }
        guard let model = PSFModel(rawValue: parts[0]), parts.count >= 2,
              parts.count <= (model == .pseudoVoigt ? 3 : 2) else { return nil }
        let w = parts[1].split(separator: "x").compactMap { Double($0) }
        guard w.count == 1 || w.count == 3, parts[1].split(separator: "x").count == w.count,
              w.allSatisfy({ $0 >= 0 && $0 <= 64 && $0.isFinite }) else { return nil }
        let widths = w.count == 1 ? [w[0], w[0], w[0]] : w
        switch model {
        case .gaussian: return .fixed(.gaussian(sigma: widths))
        case .lorentzian: return .fixed(.lorentzian(halfWidth: widths))
        case .pseudoVoigt:
            var eta = 0.1
            if parts.count == 3 { guard let e = Double(parts[2]), e >= 0, e <= 1 else { return nil }; eta = e }
            return .fixed(PointSpreadFunction(model: .pseudoVoigt, fwhm: widths, eta: eta))
        }
    }
}

/// The state of partial-coherence modelling in one run: the kernel's transform on the half
/// spectrum (computed once per change of widths), the real-to-complex plans (from the plan
/// cache: made once) and their buffers. The model intensity is I_c = |F|² ⊗ K, computed as
/// the inverse real transform of (FFT|F|²)·K̂.
final class PartialCoherence: @unchecked Sendable {
    let shape: [Int]
    let count: Int
    let halfCount: Int
    let r2c: RealFFTPlan
    let c2r: RealFFTPlan
    /// |F|², then I_c, in FFT order.
    let real: FloatStorage
    /// The half spectrum the transforms run on.
    let spectrum: FloatStorage
    /// FFT of |F|² kept for the width fit (each trial kernel destroys `spectrum`).
    let spectrumOfModel: FloatStorage
    /// K̂ / N on the half spectrum (the 1/N of the inverse transform folded in).
    let khat: FloatStorage
    private(set) var function: PointSpreadFunction
    /// K(0): I_c ≥ K(0)|F|² for a nonnegative kernel, the floor used against round-off.
    private(set) var centre: Float
    /// Widths are refitted when set (the run loop sets it).
    var refine: PSFModel?
    var fitPending = false
    /// Whether a refinement fits a flat background too (`psf=auto:bg`).
    var fitBackground = false
    /// Whether the kernel is too narrow to matter: it keeps more than 80% of a pixel's
    /// intensity in that pixel (K(0) > 0.8: a Gaussian of FWHM < 0.51 px, σ < 0.215 px, as the
    /// former rule of every FWHM below 0.5 px; a Lorentzian of half width < 0.045 px) and there
    /// is no background. The run then iterates with the coherent projection (as a recipe
    /// without psf) until a refit finds a blur, so that coherent data phase as before. The
    /// former rule let a Lorentzian of γ 0.2 px (FWHM 0.4 px, K(0) 0.41) count as negligible.
    var negligible: Bool { function.background == 0 && centre > 0.8 }
    /// The background in the model intensity (counts per pixel).
    var background: Float { Float(function.background) }
    let threads: Int

    init(shape: [Int], function: PointSpreadFunction, threads: Int) throws {
        self.shape = shape; self.threads = threads
        count = shape.reduce(1, *)
        r2c = try RealFFTPlan.plan(shape: shape, direction: .forward, threads: threads)
        c2r = try RealFFTPlan.plan(shape: shape, direction: .backward, threads: threads)
        halfCount = r2c.halfCount
        real = FloatStorage(count: count)
        spectrum = FloatStorage(count: 2 * halfCount)
        spectrumOfModel = FloatStorage(count: 2 * halfCount)
        khat = FloatStorage(count: halfCount)
        self.function = function
        centre = 1
        set(function)
    }

    func set(_ f: PointSpreadFunction) {
        function = f
        centre = f.transform(shape: shape, scale: 1 / Float(count), into: khat.pointer)
    }

    /// Whether the data are deconvolved by K (`PSFMode.deconvolve`) instead of K entering the
    /// projection.
    var deconvolve = false
    /// The Richardson–Lucy estimate of the coherent intensity (FFT order), and the kernel it
    /// was made with; nil before the first deconvolution.
    private(set) var estimate: FloatStorage?
    private(set) var estimateKernel: PointSpreadFunction?
    private var ratio: FloatStorage?
    private var norm: FloatStorage?

    /// A refit of the widths (when they are refined) from the spectrum `f` of the iterate
    /// against the measured amplitudes `amp`, outside a model-mode iteration.
    func refit(from f: UnsafePointer<Float>, amp: UnsafePointer<Float>) {
        fitPending = false
        guard let model = refine else { return }
        transformModel(of: f)
        spectrumOfModel.pointer.update(from: spectrum.pointer, count: 2 * halfCount)
        fit(model: model, amp: amp)
    }

    /// `real` ← K ⊗ x for a real volume x (FFT order).
    private func blur(_ x: UnsafePointer<Float>) {
        real.pointer.update(from: x, count: count)
        r2c.execute(real: real.pointer, spectrum: spectrum.pointer)
        convolve(source: spectrum.pointer, kernel: khat.pointer)
    }

    /// `real` ← K ⊗ `real`.
    func blurInPlace() {
        r2c.execute(real: real.pointer, spectrum: spectrum.pointer)
        convolve(source: spectrum.pointer, kernel: khat.pointer)
    }

    /// Whether the estimate was made with the kernel in use (widths within 1%, same η and
    /// background): a refit that moved nothing needs no new deconvolution.
    var estimateIsCurrent: Bool {
        guard let k = estimateKernel, estimate != nil, k.model == function.model else { return false }
        for a in 0..<3 where abs(k.fwhm[a] - function.fwhm[a]) > 0.01 * max(function.fwhm[a], 0.05) { return false }
        return abs(k.eta - function.eta) < 0.01 && abs(k.background - function.background) <= 0.01 * max(function.background, 0.01)
    }

    /// Richardson–Lucy deconvolution of the measured intensities I = amp² (pixels with
    /// amp < 0 unmeasured: mask M = 0) by the kernel in use and its background:
    /// u ← u · K ⊗ (M I / (K ⊗ u + b)) / K ⊗ M (K is even, so it is its own adjoint).
    /// Warm-starts from the last estimate when there is one, else from the data (unmeasured
    /// pixels from their neighbourhood, K ⊗ (M I) / K ⊗ M). Returns the estimate.
    func deconvolve(amp: UnsafePointer<Float>, iterations: Int) -> UnsafePointer<Float> {
        let n = count
        let u = estimate ?? FloatStorage(count: n), r = ratio ?? FloatStorage(count: n), m = norm ?? FloatStorage(count: n)
        let up = SendablePointer(u.pointer), rp = SendablePointer(r.pointer), mp = SendablePointer(m.pointer)
        let ap = SendableConstPointer(amp), re = SendablePointer(real.pointer)
        if norm == nil {
            for i in 0..<n { r.pointer[i] = amp[i] >= 0 ? 1 : 0 }
            blur(r.pointer)
            phasingChunks(n, threads: threads) { _, range in for i in range { mp.pointer[i] = max(re.pointer[i], 1e-6) } }
            norm = m; ratio = r
        }
        if estimate == nil {
            phasingChunks(n, threads: threads) { _, range in
                for i in range { let a = ap.pointer[i]; rp.pointer[i] = a >= 0 ? a * a : 0 }
            }
            blur(r.pointer)
            phasingChunks(n, threads: threads) { _, range in
                for i in range {
                    let a = ap.pointer[i]
                    up.pointer[i] = max(a >= 0 ? a * a : re.pointer[i] / mp.pointer[i], 1e-3)
                }
            }
            estimate = u
        }
        let b = background
        for _ in 0..<iterations {
            blur(u.pointer)
            phasingChunks(n, threads: threads) { _, range in
                for i in range {
                    let a = ap.pointer[i]
                    rp.pointer[i] = a >= 0 ? a * a / max(re.pointer[i] + b, 1e-6) : 0
                }
            }
            blur(r.pointer)
            phasingChunks(n, threads: threads) { _, range in
                for i in range { up.pointer[i] = max(up.pointer[i] * re.pointer[i] / mp.pointer[i], 1e-6) }
            }
        }
        estimateKernel = function
        return UnsafePointer(u.pointer)
    }

    /// Forgets the estimate (the data or the kernel's model changed).
    func dropEstimate() { estimate = nil; estimateKernel = nil }

    /// `real` ← |F|² of the interleaved spectrum `f`, and `spectrum` ← its transform.
    func transformModel(of f: UnsafePointer<Float>) {
        let r = SendablePointer(real.pointer), fp = SendableConstPointer(f)
        phasingChunks(count, threads: threads) { _, range in
            for i in range {
                let re = fp.pointer[2 &* i], im = fp.pointer[2 &* i &+ 1]
                r.pointer[i] = re * re + im * im
            }
        }
        r2c.execute(real: real.pointer, spectrum: spectrum.pointer)
    }

    /// `real` ← I_c from `source` (a transform of |F|²) and the kernel `k` (K̂/N).
    func convolve(source: UnsafePointer<Float>, kernel k: UnsafePointer<Float>) {
        let s = SendablePointer(spectrum.pointer), src = SendableConstPointer(source), kp = SendableConstPointer(k)
        phasingChunks(halfCount, threads: threads) { _, range in
            for i in range {
                let g = kp.pointer[i]
                s.pointer[2 &* i] = src.pointer[2 &* i] * g
                s.pointer[2 &* i &+ 1] = src.pointer[2 &* i &+ 1] * g
            }
        }
        c2r.execute(real: real.pointer, spectrum: spectrum.pointer)
    }

    /// `real` ← I_c = |F|² ⊗ K for the spectrum `f` (refitting the widths first when due).
    func modelIntensity(of f: UnsafePointer<Float>, amp: UnsafePointer<Float>) {
        transformModel(of: f)
        if fitPending, let model = refine {
            fitPending = false
            spectrumOfModel.pointer.update(from: spectrum.pointer, count: 2 * halfCount)
            fit(model: model, amp: amp)
            convolve(source: spectrumOfModel.pointer, kernel: khat.pointer)
        } else {
            // In place: the spectrum is both source and destination.
            convolve(source: spectrum.pointer, kernel: khat.pointer)
        }
    }

    /// The Poisson misfit of the model μ = kI_c + b to the measured intensities I,
    /// Σ μ − I ln μ, with the scale k that makes Σμ = ΣI (the optimum in a common scale):
    /// −Σ I ln μ up to a constant. Needs `real` = I_c.
    private func backgroundMisfit(_ b: Double, amp: UnsafePointer<Float>) -> Double {
        let chunks = max(1, threads * 8)
        var sums = [Double](repeating: 0, count: 3 * chunks)
        let r = SendableConstPointer(real.pointer), a = SendableConstPointer(amp)
        sums.withUnsafeMutableBufferPointer { sp in
            let s = SendablePointer(sp.baseAddress!)
            phasingChunks(count, threads: threads) { k, range in
                var ic = 0.0, itot = 0.0, n = 0.0
                for i in range where a.pointer[i] >= 0 {
                    ic += max(Double(r.pointer[i]), 0); itot += Double(a.pointer[i] * a.pointer[i]); n += 1
                }
                s.pointer[3 * k] = ic; s.pointer[3 * k + 1] = itot; s.pointer[3 * k + 2] = n
            }
        }
        var ic = 0.0, itot = 0.0, n = 0.0
        for k in 0..<chunks { ic += sums[3 * k]; itot += sums[3 * k + 1]; n += sums[3 * k + 2] }
        let scale = (itot - n * b) / max(ic, 1e-300)
        guard scale > 0 else { return .infinity }
        let floor = 1e-3
        for k in 0..<chunks { sums[k] = 0 }
        sums.withUnsafeMutableBufferPointer { sp in
            let s = SendablePointer(sp.baseAddress!)
            phasingChunks(count, threads: threads) { k, range in
                var ilog = 0.0
                let sc = Float(scale), bf = Float(b), fl = Float(floor)
                var lo = range.lowerBound
                while lo < range.upperBound {
                    let hi = min(range.upperBound, lo &+ 4096)
                    var acc: Float = 0
                    for i in lo..<hi {
                        let av = a.pointer[i], d = av > 0 ? av * av : 0
                        acc += d * Foundation.log(max(sc * r.pointer[i] + bf, fl))
                    }
                    ilog += Double(acc)
                    lo = hi
                }
                s.pointer[k] = ilog
            }
        }
        var ilog = 0.0
        for k in 0..<chunks { ilog += sums[k] }
        return -ilog
    }

    /// The Poisson misfit of I_c(K) (+ the background) to the measured intensities with the
    /// best scale k: Σ kI_c − I ln(kI_c) at k = ΣI/ΣI_c, i.e. ΣI ln ΣI_c − Σ I ln I_c up to a
    /// constant. Needs `spectrumOfModel`; uses `real`, `spectrum` and `trial`.
    private func misfit(_ f: PointSpreadFunction, amp: UnsafePointer<Float>, trial: FloatStorage, withBackgroundTerm: Bool = false) -> Double {
        f.transform(shape: shape, scale: 1 / Float(count), into: trial.pointer)
        convolve(source: spectrumOfModel.pointer, kernel: trial.pointer)
        if f.background > 0 || withBackgroundTerm { return backgroundMisfit(f.background, amp: amp) }
        let chunks = max(1, threads * 8)
        var sums = [Double](repeating: 0, count: 3 * chunks)
        let r = SendableConstPointer(real.pointer), a = SendableConstPointer(amp)
        sums.withUnsafeMutableBufferPointer { sp in
            let s = SendablePointer(sp.baseAddress!)
            phasingChunks(count, threads: threads) { k, range in
                var ic = 0.0, ilog = 0.0, itot = 0.0
                var lo = range.lowerBound
                while lo < range.upperBound {
                    let hi = min(range.upperBound, lo &+ 4096)
                    var sIC: Float = 0, sLog: Float = 0, sI: Float = 0
                    for i in lo..<hi {
                        let av = a.pointer[i], measured = av >= 0
                        let d = measured ? av * av : 0, m = max(r.pointer[i], 1e-3)
                        sIC += measured ? m : 0; sI += d
                        sLog += d * Foundation.log(m)
                    }
                    ic += Double(sIC); ilog += Double(sLog); itot += Double(sI)
                    lo = hi
                }
                s.pointer[3 * k] = ic; s.pointer[3 * k + 1] = ilog; s.pointer[3 * k + 2] = itot
            }
        }
        var ic = 0.0, ilog = 0.0, itot = 0.0
        for k in 0..<chunks { ic += sums[3 * k]; ilog += sums[3 * k + 1]; itot += sums[3 * k + 2] }
        return itot * log(max(ic, 1e-300)) - ilog
    }

    /// Fits the widths (and η for a pseudo-Voigt, and the flat background with `fitBackground`)
    /// to the data by golden-section searches of the Poisson misfit: one common width first
    /// (from 0 to 8 px FWHM on the first fit), then each axis, then η, then the background;
    /// later fits search near the values found so far. A pseudo-Voigt's first fit starts
    /// from both pure shapes (η = 0 and η = 1) and keeps the better: from one start the
    /// searches, one parameter at a time, settle on a broad mostly-Gaussian kernel for
    /// Lorentzian data. With a background the first fit alternates widths and background
    /// twice: widths fitted without it first take it for a broad blur.
    private func fit(model: PSFModel, amp: UnsafePointer<Float>) {
        let trial = FloatStorage(count: halfCount)
        var f0 = function
        if f0.model != model { f0 = PointSpreadFunction(model: model, fwhm: f0.fwhm, eta: f0.eta) }
        let first = function.model != model || function.fwhm.allSatisfy { $0 == 0 }
        let g = (5.0.squareRoot() - 1) / 2
        func search(_ lo: Double, _ hi: Double, steps: Int, _ make: (Double) -> PointSpreadFunction) -> Double {
            var a = lo, b = hi
            var c = b - g * (b - a), d = a + g * (b - a)
            var fc = misfit(make(c), amp: amp, trial: trial), fd = misfit(make(d), amp: amp, trial: trial)
            for _ in 0..<steps {
                if fc <= fd { b = d; d = c; fd = fc; c = b - g * (b - a); fc = misfit(make(c), amp: amp, trial: trial) }
                else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = misfit(make(d), amp: amp, trial: trial) }
            }
            // The bracket's end at 0 is a candidate too: no blur must be reachable exactly.
            let best = fc <= fd ? c : d
            if lo == 0 && a == 0 && misfit(make(0), amp: amp, trial: trial) <= min(fc, fd) { return 0 }
            return best
        }
        let axes = (0..<3).filter { shape[$0] > 1 }
        func widths(_ f: inout PointSpreadFunction, wide: Bool) {
            if wide {
                let w = search(0, 8, steps: 12) { w in var h = f; for a in axes { h.fwhm[a] = w }; return h }
                for a in axes { f.fwhm[a] = w }
            }
            // Per axis near the widths so far: a wider, finer search the first time (the later
            // fits move little; they are kept cheap, a fit costing ~20 real inverse transforms).
            // A narrow kernel's bracket starts at 0, so that a blur found early can vanish again.
            for a in axes {
                let w0 = f.fwhm[a], span = wide ? max(0.4, 0.4 * w0) : max(0.3, 0.25 * w0)
                let lo = w0 < 0.6 ? 0 : w0 - span
                f.fwhm[a] = search(lo, w0 + span, steps: wide ? 8 : 6) { w in var h = f; h.fwhm[a] = w; return h }
            }
        }
        var mean = 0.0
        if fitBackground {
            var itot = 0.0, n = 0.0
            for i in 0..<count where amp[i] >= 0 { itot += Double(amp[i] * amp[i]); n += 1 }
            mean = itot / max(n, 1)
        }
        func background(_ f: inout PointSpreadFunction, wide: Bool) {
            // The flat background with these widths: up to the mean measured intensity. On a
            // square-root scale, b = mean·t², t in [0, 1]: fine steps near 0.
            f.transform(shape: shape, scale: 1 / Float(count), into: trial.pointer)
            convolve(source: spectrumOfModel.pointer, kernel: trial.pointer)
            func m(_ t: Double) -> Double { backgroundMisfit(mean * t * t, amp: amp) }
            let t0 = (f.background / max(mean, 1e-300)).squareRoot()
            var lo = wide ? 0 : max(0, t0 - 0.1), hi = wide ? 1 : min(1, t0 + 0.1)
            var c = hi - g * (hi - lo), d = lo + g * (hi - lo)
            var fc = m(c), fd = m(d)
            for _ in 0..<(wide ? 12 : 7) {
                if fc <= fd { hi = d; d = c; fd = fc; c = hi - g * (hi - lo); fc = m(c) }
                else { lo = c; c = d; fc = fd; d = lo + g * (hi - lo); fd = m(d) }
            }
            let t = fc <= fd ? c : d
            f.background = m(0) <= min(fc, fd) ? 0 : mean * t * t
        }
        func eta(_ f: inout PointSpreadFunction, wide: Bool) {
            let e0 = f.eta
            f.eta = wide ? search(0, 1, steps: 8) { e in var h = f; h.eta = e; return h }
                : search(max(0, e0 - 0.15), min(1, e0 + 0.15), steps: 5) { e in var h = f; h.eta = e; return h }
        }
        var f = f0
        if first {
            // Every start from no blur and no background; the misfits compared in one form
            // (with the background term, b = 0 allowed).
            var best: (f: PointSpreadFunction, misfit: Double)? = nil
            for e in (model == .pseudoVoigt ? [0.0, 1.0] : [f0.eta]) {
                var h = f0
                h.eta = e; h.background = 0
                for a in axes { h.fwhm[a] = 0 }
                widths(&h, wide: true)
                if fitBackground { background(&h, wide: true); widths(&h, wide: false); background(&h, wide: false) }
                let m = misfit(h, amp: amp, trial: trial, withBackgroundTerm: true)
                if best == nil || m < best!.misfit { best = (h, m) }
            }
            f = best!.f
            if model == .pseudoVoigt { eta(&f, wide: false); widths(&f, wide: false) }
        } else {
            widths(&f, wide: false)
            if model == .pseudoVoigt { eta(&f, wide: false) }
            if fitBackground { background(&f, wide: false) }
        }
        set(f)
    }
}

/// A read-only pointer that may cross into `DispatchQueue.concurrentPerform`.
struct SendableConstPointer: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    init(_ p: UnsafePointer<Float>) { pointer = p }
    init(_ p: UnsafeMutablePointer<Float>) { pointer = UnsafePointer(p) }
}

extension PhasingKernels {
    /// The modulus projection with a point-spread function: F ← F·√(I / (I_c + b))/N on
    /// measured pixels (masked ones keep the model, F ← F/N), I_c = |F|² ⊗ K given in `ic`,
    /// floored at K(0)|F|² (its exact lower bound for a nonnegative kernel) against
    /// round-off, b a flat background. Sums
    /// Σ√I√I_c, ΣI_c and ΣI over measured pixels for χ². `package`, like the other
    /// kernels: raw pointers into the engine's buffers.
    @inlinable
    package static func projectModulusPSF(_ f: UnsafeMutablePointer<Float>, amp: UnsafePointer<Float>, ic: UnsafePointer<Float>,
                                         range: Range<Int>, scale: Float, centre: Float, background: Float) -> (aF: Double, ff: Double, aa: Double) {
        var aF = 0.0, ff = 0.0, aa = 0.0
        var lo = range.lowerBound
        while lo < range.upperBound {
            let hi = min(range.upperBound, lo &+ 4096)
            var sAF: Float = 0, sFF: Float = 0, sAA: Float = 0
            for i in lo..<hi {
                let re = f[2 &* i], im = f[2 &* i &+ 1]
                let a = amp[i]
                let c = max(ic[i], centre * (re * re + im * im)) + background + 1e-30
                let m = c.squareRoot()
                let measured = a >= 0
                let ap = measured ? a : 0
                sAF += ap * m
                sFF += measured ? c : 0
                sAA += ap * ap
                let g = (measured ? a / m : 1) * scale
                f[2 &* i] = re * g
                f[2 &* i &+ 1] = im * g
            }
            aF += Double(sAF); ff += Double(sFF); aa += Double(sAA)
            lo = hi
        }
        return (aF, ff, aa)
    }
}
