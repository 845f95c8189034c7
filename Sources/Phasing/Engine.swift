import Numerics
import Foundation

/// Shrink-wrap settings shared by every step of a run: S ← {G_σ ∗ |P_S ρ| > t · max}, with σ
/// (voxels) decaying linearly from `sigmaStart` to `sigmaEnd` over the recipe's iterations.
///
/// 2 → 1 by default. Ending at 0.5 (as PyNX does), 1.5 → 0.5, helped the sharp-faceted 64³
/// test prisms (σ 0.35 px blur: 14/17 → 17/17 crystals within error 0.05, every case's median
/// lower) but fitted the real 34-ID-C scan 54 at full size worse: its supports came out 16%
/// smaller and the free log-likelihood of the same runs rose from 0.318 / 0.329 to 0.383 /
/// 0.379 (2 → 0.7: 0.343 / 0.351), so the default stays (bench/README.md, Shrink-wrap σ).
public struct ShrinkWrapSchedule: Sendable, Equatable {
    public var sigmaStart: Double
    public var sigmaEnd: Double
    /// A support with fewer voxels than this counts as collapsed.
    public var minimumVoxels: Int
    /// A support covering more than this fraction of the box counts as filled.
    public var maximumFraction: Double

    /// What the threshold is a fraction of.
    public var reference: ShrinkWrapReference

    public init(sigmaStart: Double = 2.0, sigmaEnd: Double = 1.0, minimumVoxels: Int = 8, maximumFraction: Double = 0.6,
                reference: ShrinkWrapReference = .maximum) {
        self.sigmaStart = sigmaStart; self.sigmaEnd = sigmaEnd; self.reference = reference
        self.minimumVoxels = minimumVoxels; self.maximumFraction = maximumFraction
    }

    func sigma(at iteration: Int, of total: Int) -> Double {
        let f = total > 1 ? Double(iteration) / Double(total - 1) : 1
        return sigmaStart + (sigmaEnd - sigmaStart) * min(1, max(0, f))
    }
}

/// The level the shrink-wrap threshold is a fraction of: the maximum of the blurred
/// modulus, or its RMS over the current support (PyNX's 'rms', robust to a bright spot).
/// A recipe step may choose its own (`ref=rms`); the default recipe uses RMS: with the
/// maximum, runs whose iterate grows a bright spot shrink their support around it and never
/// recover (on the 64³ test prisms 1–2 runs in 4, and most runs with a detector gap through
/// the Bragg peak).
public enum ShrinkWrapReference: String, Sendable, Equatable {
    case maximum = "max"
    case rms
}

/// Splits 0..<count into at most `threads` chunks and runs body(chunkIndex, range).
@inline(__always)
func phasingChunks(_ count: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
    let t = min(threads, max(1, count / 16_384))
    if t <= 1 { body(0, 0..<count); return }
    let chunk = (count + t - 1) / t
    withoutActuallyEscaping(body) { b in
        DispatchQueue.concurrentPerform(iterations: t) { k in
            let lo = k * chunk, hi = min(count, lo + chunk)
            if lo < hi { b(k, lo..<hi) }
        }
    }
}

/// The fused per-pixel kernels of one iteration, on interleaved complex Float buffers.
/// Kept free of allocation and branches so that they vectorise.
package enum PhasingKernels {
    /// P_M fused with the inverse FFT's 1/N: F ← F · (√I / |F|) / N where `amp` = √I ≥ 0 is
    /// measured; masked pixels (`amp` < 0) are free: the model is kept, F ← F / N. One square
    /// root and one division per pixel (vectorised, 8 pixels a time): this pass is bound by
    /// them rather than by memory at 128³.
    @inlinable
    package static func projectModulus(_ f: UnsafeMutablePointer<Float>, amp: UnsafePointer<Float>,
                                      range: Range<Int>, scale: Float) {
        for i in range {
            let re = f[2 &* i], im = f[2 &* i &+ 1]
            let a = amp[i]
            let m = (re * re + im * im + 1e-30).squareRoot()
            let g = (a >= 0 ? a / m : 1) * scale
            f[2 &* i] = re * g
            f[2 &* i &+ 1] = im * g
        }
    }

    /// `projectModulus` that also accumulates, over measured pixels, Σ√I|F|, Σ|F|² and
    /// Σ I from the spectrum before projection (for χ² of Eq. 1).
    @inlinable
    package static func projectModulusWithSums(_ f: UnsafeMutablePointer<Float>, amp: UnsafePointer<Float>,
                                              range: Range<Int>, scale: Float) -> (aF: Double, ff: Double, aa: Double) {
        var aF = 0.0, ff = 0.0, aa = 0.0
        var lo = range.lowerBound
        while lo < range.upperBound {
            let hi = min(range.upperBound, lo &+ 4096)
            var sAF: Float = 0, sFF: Float = 0, sAA: Float = 0
            for i in lo..<hi {
                let re = f[2 &* i], im = f[2 &* i &+ 1]
                let a = amp[i]
                let m2 = re * re + im * im
                let m = (m2 + 1e-30).squareRoot()
                let measured = a >= 0
                let ap = measured ? a : 0
                sAF += ap * m
                sFF += measured ? m2 : 0
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

    /// The support update with ρ' (in `work`) and ρ (in `rho`): new = ρ' inside S, a ρ + b ρ'
    /// outside (ER a=b=0; HIO a=1, b=−β; RAAR a=β, b=1−2β). Writes the result to both
    /// arrays, so the next forward FFT can run in place on `work` with no copy pass (an
    /// out-of-place forward FFT from `rho` measured slower than this extra write). The
    /// support is one byte per voxel (nonzero inside): a quarter of the traffic of a Float
    /// mask, which made this pass 28% faster at 128³.
    @inlinable
    package static func updateSupport(rho: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Float>,
                                     support: UnsafePointer<UInt8>, range: Range<Int>, a: Float, b: Float) {
        for i in range {
            let p0 = work[2 &* i], p1 = work[2 &* i &+ 1]
            let r0 = rho[2 &* i], r1 = rho[2 &* i &+ 1]
            let o0 = a * r0 + b * p0, o1 = a * r1 + b * p1
            let inside = support[i] != 0
            let n0 = inside ? p0 : o0, n1 = inside ? p1 : o1
            rho[2 &* i] = n0; rho[2 &* i &+ 1] = n1
            work[2 &* i] = n0; work[2 &* i &+ 1] = n1
        }
    }
}

/// The state of one phase-retrieval run: the iterate ρ, a work array the FFTs run on in
/// place, the support and the measured amplitudes, all in FFT order. Nothing is allocated
/// inside the iteration loop.
public final class PhasingEngine: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let threads: Int
    let rho: FloatStorage
    let work: FloatStorage
    /// The support S in FFT order, one byte per voxel (1 inside).
    let support: UnsafeMutablePointer<UInt8>
    /// √I with −∞ on masked pixels and on this run's free pixels.
    let amp: FloatStorage
    /// `amp` in slab order, (y, z, x), for the blocked iteration's P_M: there a y-slab's
    /// rows lie a plane apart in FFT order, 2·n_x-byte pieces the prefetcher follows badly;
    /// in slab order the slab's amplitudes are one contiguous stream.
    let ampSlab: FloatStorage?
    /// Amplitudes for the random start (masked pixels interpolated).
    let startAmp: FloatStorage
    /// Free (withheld) pixels: indices in FFT order and their measured intensities.
    var freeIndex: [Int] = []
    var freeIntensity: [Float] = []
    let forward: FFTPlan
    let backward: FFTPlan
    /// The blocked iteration's transforms (nil: 3D transforms, see `iterate`): 2D over one
    /// (y, x) plane, and 1D along z over the n_x columns of one y.
    let planeForward: FFTBatchPlan?, planeBackward: FFTBatchPlan?
    let columnForward: FFTBatchPlan?, columnBackward: FFTBatchPlan?
    /// Whether `work` holds the plane-transformed iterate (2D FFT of every z-plane of ρ), as
    /// the blocked iteration leaves it, rather than ρ itself.
    var workInPlaneSpace = false
    private var gaussFactors: [Float]
    private let partials: UnsafeMutablePointer<Double>
    private let maxChunks: Int
    /// Partial coherence (nil: the coherent modulus projection).
    var coherence: PartialCoherence?
    /// Poisson refinement buffers (`ML:N`), made on first use.
    var poisson: PoissonRefinement?
    /// Whether the last iteration was an ML one (`work` then holds FFT ρ, and the conjugate
    /// direction is still valid); anything else that touches ρ, S or the data clears it.
    var poissonContinues = false
    /// Completed iterations (over all steps).
    public private(set) var iteration = 0
    /// The χ² (Eq. 1, of the current iterate) on the iterations where it was computed.
    public private(set) var chi2History: [(iteration: Int, chi2: Double)] = []

    /// Sets up a run on prepared data with an initial support in FFT order (nonzero inside).
    init(data: PhasingData, supportFFTOrder: FloatStorage, threads: Int, blocked: Bool = true) throws {
        shape = data.shape
        count = data.count
        self.threads = max(1, threads)
        rho = FloatStorage(count: 2 * count)
        work = FloatStorage(count: 2 * count)
        support = .allocate(capacity: count)
        for i in 0..<count { support[i] = supportFFTOrder.pointer[i] != 0 ? 1 : 0 }
        amp = data.amplitude.copyForPhasing()
        startAmp = data.startAmplitude
        forward = try FFTPlanner.plan(shape: shape, direction: .forward, inPlace: true, threads: self.threads)
        backward = try FFTPlanner.plan(shape: shape, direction: .backward, inPlace: true, threads: self.threads)
        // Blocked transforms need plane and column starts on 64-byte boundaries (n_x a
        // multiple of 8) and more than one plane.
        if blocked && shape[0] > 1 && shape[2] % 8 == 0 {
            let plane = shape[1] * shape[2]
            planeForward = try FFTPlanner.batchPlan(shape: [shape[1], shape[2]], howmany: 1, stride: 1, distance: plane, direction: .forward)
            planeBackward = try FFTPlanner.batchPlan(shape: [shape[1], shape[2]], howmany: 1, stride: 1, distance: plane, direction: .backward)
            columnForward = try FFTPlanner.batchPlan(shape: [shape[0]], howmany: shape[2], stride: plane, distance: 1, direction: .forward)
            columnBackward = try FFTPlanner.batchPlan(shape: [shape[0]], howmany: shape[2], stride: plane, distance: 1, direction: .backward)
        } else {
            planeForward = nil; planeBackward = nil; columnForward = nil; columnBackward = nil
        }
        if planeForward != nil {
            let (nz, ny, nx) = (shape[0], shape[1], shape[2])
            let slab = FloatStorage(count: count), a = amp.pointer
            for y in 0..<ny { for z in 0..<nz {
                (slab.pointer + (y * nz + z) * nx).update(from: a + (z * ny + y) * nx, count: nx)
            } }
            ampSlab = slab
        } else {
            ampSlab = nil
        }
        gaussFactors = [Float](repeating: 0, count: shape.reduce(0, +))
        maxChunks = self.threads * 8
        partials = .allocate(capacity: 4 * maxChunks)
    }

    /// A run on prepared data whose initial support is given centred (as on disk).
    public convenience init(data: PhasingData, support centred: RealVolume, threads: Int) throws {
        guard centred.shape == data.shape || centred.shape == data.originalShape else {
            throw PhasingError.invalidData("the support has shape \(centred.shape) but the pattern has shape \(data.originalShape)")
        }
        let s = try centred.reshaped(data.shape).ifftshifted()
        let st = FloatStorage(count: data.count)
        s.withUnsafeFloats { p in for i in 0..<data.count { st.pointer[i] = p[i] } }
        try self.init(data: data, supportFFTOrder: st, threads: threads)
    }

    deinit { partials.deallocate(); support.deallocate() }

    /// Withholds a random `fraction` of the measured pixels from the fit (they become
    /// free like masked pixels) to score the run by its free log-likelihood.
    public func withholdFreePixels(fraction: Double, rng: inout PhasingRNG) {
        freeIndex = []; freeIntensity = []
        guard fraction > 0 else { return }
        let a = amp.pointer
        let limit = UInt64(min(1, fraction) * 0x1p53)
        for i in 0..<count where a[i] >= 0 {
            if (rng.next() >> 11) < limit {
                freeIndex.append(i); freeIntensity.append(a[i] * a[i]); a[i] = -.infinity
                if let slab = ampSlab {
                    let (ny, nx) = (shape[1], shape[2]), x = i % nx, zy = i / nx
                    slab.pointer[((zy % ny) * shape[0] + zy / ny) * nx + x] = -.infinity
                }
            }
        }
    }

    /// Random start: the measured amplitudes (interpolated where masked) with uniformly
    /// random phases, transformed back and restricted to the support.
    public func randomStart(rng: inout PhasingRNG) {
        let w = work.pointer, a = startAmp.pointer
        for i in 0..<count {
            let phi = Float(rng.uniform() * 2 * Double.pi)
            let m = max(a[i], 0)
            w[2 * i] = m * cos(phi); w[2 * i + 1] = m * sin(phi)
        }
        backward.execute(w, w)
        let scale = 1 / Float(count)
        let r = SendablePointer(rho.pointer), wp = SendablePointer(w), s = SendableBytes(support)
        phasingChunks(count, threads: threads) { _, range in
            for i in range {
                let f = Float(s.pointer[i]) * scale
                let v0 = wp.pointer[2 &* i] * f, v1 = wp.pointer[2 &* i &+ 1] * f
                r.pointer[2 &* i] = v0; r.pointer[2 &* i &+ 1] = v1
                wp.pointer[2 &* i] = v0; wp.pointer[2 &* i &+ 1] = v1
            }
        }
        iteration = 0; chi2History = []
        workInPlaneSpace = false; poissonContinues = false
    }

    /// Starts from a given object (FFT order, interleaved complex), e.g. for tests.
    func start(from object: UnsafePointer<Float>) {
        rho.pointer.update(from: object, count: 2 * count)
        work.pointer.update(from: object, count: 2 * count)
        iteration = 0; chi2History = []
        workInPlaneSpace = false; poissonContinues = false
    }

    /// One iteration of `algorithm`: ρ' = P_M ρ through a forward FFT, the fused modulus
    /// projection and an inverse FFT, then the fused support update. Returns χ² (Eq. 1,
    /// of the iterate entering the iteration) when `computeError` is set.
    ///
    /// With blocked transforms (3D patterns with n_x a multiple of 8) the 3D FFTs are split
    /// into 2D plane and 1D column transforms and each pass works on data still in cache:
    /// per y, the column FFTs along z, P_M and the inverse column FFTs on one x–z slab; then
    /// per z, the inverse plane FFT, the support update and the next iteration's forward
    /// plane FFT on one plane. Two sweeps over memory per iteration instead of the 3D FFTs'
    /// own sweeps plus two elementwise ones. Same arithmetic; `work` is left holding the
    /// plane-transformed ρ (`workInPlaneSpace`), `rho` the iterate.
    @discardableResult
    public func iterate(_ algorithm: PhasingAlgorithm, beta: Double, computeError: Bool = false) -> Double? {
        if algorithm == .ml { return iterateML(first: false, computeError: computeError) }
        leavePoissonRefinement()
        if let c = coherence {
            if c.deconvolve {
                if c.fitPending { refreshDeconvolution(c) }
            } else if c.fitPending || !c.negligible {
                return iteratePartiallyCoherent(algorithm, beta: beta, computeError: computeError)
            }
        }
        if planeForward != nil { return iterateBlocked(algorithm, beta: beta, computeError: computeError) }
        let w = work.pointer
        forward.execute(w, w)
        let chi2 = projectModulus(computeError: computeError)
        backward.execute(w, w)
        let (ca, cb) = algorithm.outsideCoefficients(beta: beta)
        let r = SendablePointer(rho.pointer), wp = SendablePointer(w), s = SendableBytes(support)
        phasingChunks(count, threads: threads) { _, range in
            PhasingKernels.updateSupport(rho: r.pointer, work: wp.pointer, support: s.pointer, range: range, a: ca, b: cb)
        }
        iteration += 1
        if let chi2 { chi2History.append((iteration, chi2)) }
        return chi2
    }

    /// After ML iterations `work` holds FFT ρ: back to ρ for the projection algorithms.
    func leavePoissonRefinement() {
        guard poissonContinues else { return }
        poissonContinues = false
        work.pointer.update(from: rho.pointer, count: 2 * count)
        workInPlaneSpace = false
    }

    /// Counts an iteration done outside this file (ML) and its χ².
    func recordIteration(chi2: Double?) {
        iteration += 1
        if let chi2 { chi2History.append((iteration, chi2)) }
    }

    /// Runs body(chunk, range) over 0..<count (planes or slabs) on `threads` threads, in up to
    /// 8 chunks per thread handed out as threads free up: with a core shared with other work,
    /// equal halves made the whole sweep wait for the slower thread.
    func blockChunks(_ count: Int, _ body: (Int, Range<Int>) -> Void) {
        if threads <= 1 || count < 2 { body(0, 0..<count); return }
        let t = min(maxChunks, count)
        let chunk = (count + t - 1) / t
        withoutActuallyEscaping(body) { b in
            DispatchQueue.concurrentPerform(iterations: t) { k in
                let lo = k * chunk, hi = min(count, lo + chunk)
                if lo < hi { b(k, lo..<hi) }
            }
        }
    }

    private func iterateBlocked(_ algorithm: PhasingAlgorithm, beta: Double, computeError: Bool) -> Double? {
        let nz = shape[0], ny = shape[1], nx = shape[2], plane = ny * nx
        let w = SendablePointer(work.pointer)
        let pf = planeForward!, pb = planeBackward!, cf = columnForward!, cb = columnBackward!
        if !workInPlaneSpace {
            blockChunks(nz) { _, zs in for z in zs { pf.execute(w.pointer + 2 * z * plane) } }
        }
        // Per y: column FFTs along z, P_M (with χ² sums when asked), inverse column FFTs.
        let a = ampSlab!.pointer, scale = 1 / Float(count)
        let part = SendablePointer(partials)
        for k in 0..<(3 * maxChunks) { partials[k] = 0 }
        blockChunks(ny) { k, ys in
            var aF = 0.0, ff = 0.0, aa = 0.0
            for y in ys {
                let slab = w.pointer + 2 * y * nx
                cf.execute(slab)
                for z in 0..<nz {
                    let row = w.pointer + 2 * (z * ny + y) * nx, ar = a + (y * nz + z) * nx
                    if computeError {
                        let s = PhasingKernels.projectModulusWithSums(row, amp: ar, range: 0..<nx, scale: scale)
                        aF += s.aF; ff += s.ff; aa += s.aa
                    } else {
                        PhasingKernels.projectModulus(row, amp: ar, range: 0..<nx, scale: scale)
                    }
                }
                cb.execute(slab)
            }
            part.pointer[3 * k] = aF; part.pointer[3 * k + 1] = ff; part.pointer[3 * k + 2] = aa
        }
        // Per z: inverse plane FFT (ρ'), support update (ρ and the next input), forward plane FFT.
        let (ca, cbeta) = algorithm.outsideCoefficients(beta: beta)
        let r = SendablePointer(rho.pointer), s = SendableBytes(support)
        blockChunks(nz) { _, zs in
            for z in zs {
                let base = z * plane
                pb.execute(w.pointer + 2 * base)
                PhasingKernels.updateSupport(rho: r.pointer, work: w.pointer, support: s.pointer,
                                             range: base..<(base + plane), a: ca, b: cbeta)
                pf.execute(w.pointer + 2 * base)
            }
        }
        workInPlaneSpace = true
        iteration += 1
        guard computeError else { return nil }
        var aF = 0.0, ff = 0.0, aa = 0.0
        for k in 0..<maxChunks { aF += partials[3 * k]; ff += partials[3 * k + 1]; aa += partials[3 * k + 2] }
        let chi2 = PhasingEngine.chi2(aF: aF, ff: ff, aa: aa)
        chi2History.append((iteration, chi2))
        return chi2
    }

    /// The measured amplitudes while `amp` holds √ of a deconvolved intensity
    /// (`PSFMode.deconvolve`); nil otherwise.
    private var measuredAmp: FloatStorage?
    /// How a point-spread function enters the iterations (the last `psfmode` a step gave).
    public private(set) var psfMode: PSFMode = .model

    /// The amplitudes the data were measured with (free pixels withheld), whichever mode.
    var measuredAmplitudes: FloatStorage { measuredAmp ?? amp }

    /// Sets the target amplitudes (and their slab copy for the blocked iteration).
    private func setAmplitudes(_ body: (Int) -> Float) {
        let a = amp.pointer
        for i in 0..<count { a[i] = body(i) }
        if let slab = ampSlab {
            let (nz, ny, nx) = (shape[0], shape[1], shape[2])
            for y in 0..<ny { for z in 0..<nz {
                (slab.pointer + (y * nz + z) * nx).update(from: a + (z * ny + y) * nx, count: nx)
            } }
        }
    }

    /// Back to the measured amplitudes after a deconvolution.
    private func restoreMeasuredAmplitudes() {
        guard let m = measuredAmp else { return }
        let mp = m.pointer
        setAmplitudes { mp[$0] }
        measuredAmp = nil
        coherence?.dropEstimate()
    }

    /// Refits the kernel (when refined) from the iterate against the measured data and, when
    /// it changed, deconvolves the data again: 100 Richardson–Lucy iterations the first time,
    /// 30 from the last estimate after. A negligible kernel restores the measured amplitudes.
    /// Leaves `work` = ρ (not in plane space), as at a start.
    private func refreshDeconvolution(_ c: PartialCoherence) {
        let measured: FloatStorage
        if let m = measuredAmp { measured = m } else { measured = amp.copyForPhasing(); measuredAmp = measured }
        // Only a kernel not yet fitted is fitted here: refits against the data from an iterate
        // made on the deconvolved data feed back (a too-wide kernel sharpens the estimate, the
        // sharper iterate asks for a wider kernel; on the Lorentzian prisms γ drifted 25% wide).
        // The widths are found in model mode (`psfmode=model`), where object and kernel are
        // fitted to the measured data together, and kept.
        if c.refine != nil && c.function.fwhm.allSatisfy({ $0 == 0 }) && c.function.background == 0 {
            work.pointer.update(from: rho.pointer, count: 2 * count)
            forward.execute(work.pointer, work.pointer)
            c.refit(from: work.pointer, amp: measured.pointer)
        }
        c.fitPending = false
        if c.negligible {
            restoreMeasuredAmplitudes()
        } else if !c.estimateIsCurrent {
            let u = c.deconvolve(amp: measured.pointer, iterations: c.estimate == nil ? 100 : 30)
            let mp = measured.pointer
            setAmplitudes { i in mp[i] >= 0 ? max(u[i], 0).squareRoot() : mp[i] }
        }
        work.pointer.update(from: rho.pointer, count: 2 * count)
        workInPlaneSpace = false
    }

    /// Sets how a point-spread function enters the iterations from now on.
    public func applyPSFMode(_ mode: PSFMode) {
        leavePoissonRefinement()
        psfMode = mode
        guard let c = coherence else { return }
        c.deconvolve = mode == .deconvolve
        if c.deconvolve { c.fitPending = true } else { restoreMeasuredAmplitudes() }
    }

    /// Puts back the partial-coherence state of a run paused at a check point: its `psf`
    /// setting and mode, and the kernel it had (not refitted; after `psfmode=deconvolve` the
    /// data are deconvolved by it again before the next iteration).
    func restorePSF(setting: PSFSetting?, mode: PSFMode, kernel: PointSpreadFunction?) throws {
        applyPSFMode(mode)
        guard let setting else { return }
        try applyPSF(setting)
        if let kernel, let c = coherence {
            c.set(kernel)
            c.fitPending = mode == .deconvolve
        }
    }

    /// The partial-coherence setting in force (the last one a recipe step gave).
    private(set) var lastPSFSetting: PSFSetting?

    /// The point-spread function in use (nil: coherent).
    public var pointSpreadFunction: PointSpreadFunction? { coherence?.function }

    /// Switches partial coherence per a recipe step's setting: off, a fixed kernel, or a
    /// kernel whose widths are fitted now and then refined (from the widths found so far
    /// when one is already in use).
    public func applyPSF(_ setting: PSFSetting) throws {
        leavePoissonRefinement()
        lastPSFSetting = setting
        switch setting.forRun(0) {
        case .off:
            restoreMeasuredAmplitudes()
            coherence = nil
        case .fixed(let f):
            if let c = coherence { c.set(f) } else { coherence = try PartialCoherence(shape: shape, function: f, threads: threads) }
            coherence!.refine = nil
            if psfMode == .deconvolve { coherence!.deconvolve = true; coherence!.fitPending = true }
        case .refined(let model, _, let background):
            if coherence == nil {
                coherence = try PartialCoherence(shape: shape, function: PointSpreadFunction(model: model, fwhm: [0, 0, 0]),
                                                 threads: threads)
            }
            coherence!.refine = model
            coherence!.fitBackground = background
            coherence!.fitPending = true
            coherence!.deconvolve = psfMode == .deconvolve
        case .refinedAlternating:
            break   // resolved by forRun(0) above
        }
    }

    /// One iteration with the partially coherent modulus projection: F = FFT ρ; I_c = |F|² ⊗ K
    /// (real transforms of |F|², product with K̂, the widths refitted first when due);
    /// F ← F·√(I/I_c); inverse FFT and support update. With blocked transforms the 3D FFTs
    /// are the plane and column passes of `iterateBlocked`, so `work` is left as there.
    private func iteratePartiallyCoherent(_ algorithm: PhasingAlgorithm, beta: Double, computeError: Bool) -> Double? {
        let pc = coherence!
        let w = SendablePointer(work.pointer)
        let nz = shape[0], ny = shape[1], nx = shape[2], plane = ny * nx
        if let pf = planeForward, let cf = columnForward {
            if !workInPlaneSpace {
                blockChunks(nz) { _, zs in for z in zs { pf.execute(w.pointer + 2 * z * plane) } }
            }
            blockChunks(ny) { _, ys in for y in ys { cf.execute(w.pointer + 2 * y * nx) } }
        } else {
            forward.execute(w.pointer, w.pointer)
        }
        pc.modelIntensity(of: w.pointer, amp: amp.pointer)
        let a = amp.pointer, ic = SendableConstPointer(pc.real.pointer), scale = 1 / Float(count), k0 = pc.centre, bg = pc.background
        let part = SendablePointer(partials)
        for k in 0..<(3 * maxChunks) { partials[k] = 0 }
        // A fit that found no blur: this iteration is the coherent one (same arithmetic per
        // pixel as the blocked iteration), so that coherent data follow the coherent path.
        let coherent = pc.negligible
        phasingChunks(count, threads: threads) { k, range in
            let s = coherent ? PhasingKernels.projectModulusWithSums(w.pointer, amp: a, range: range, scale: scale)
                : PhasingKernels.projectModulusPSF(w.pointer, amp: a, ic: ic.pointer, range: range, scale: scale, centre: k0, background: bg)
            part.pointer[3 * k] = s.aF; part.pointer[3 * k + 1] = s.ff; part.pointer[3 * k + 2] = s.aa
        }
        let (ca, cbeta) = algorithm.outsideCoefficients(beta: beta)
        let r = SendablePointer(rho.pointer), s = SendableBytes(support)
        if let pf = planeForward, let pb = planeBackward, let cb = columnBackward {
            blockChunks(ny) { _, ys in for y in ys { cb.execute(w.pointer + 2 * y * nx) } }
            blockChunks(nz) { _, zs in
                for z in zs {
                    let base = z * plane
                    pb.execute(w.pointer + 2 * base)
                    PhasingKernels.updateSupport(rho: r.pointer, work: w.pointer, support: s.pointer,
                                                 range: base..<(base + plane), a: ca, b: cbeta)
                    pf.execute(w.pointer + 2 * base)
                }
            }
            workInPlaneSpace = true
        } else {
            backward.execute(w.pointer, w.pointer)
            phasingChunks(count, threads: threads) { _, range in
                PhasingKernels.updateSupport(rho: r.pointer, work: w.pointer, support: s.pointer, range: range, a: ca, b: cbeta)
            }
        }
        iteration += 1
        guard computeError else { return nil }
        var aF = 0.0, ff = 0.0, aa = 0.0
        for k in 0..<maxChunks { aF += partials[3 * k]; ff += partials[3 * k + 1]; aa += partials[3 * k + 2] }
        let chi2 = PhasingEngine.chi2(aF: aF, ff: ff, aa: aa)
        chi2History.append((iteration, chi2))
        return chi2
    }

    /// The modulus projection pass on `work` (holding F), with χ² when asked.
    private func projectModulus(computeError: Bool) -> Double? {
        let wp = SendablePointer(work.pointer), a = amp.pointer
        let scale = 1 / Float(count)
        if !computeError {
            phasingChunks(count, threads: threads) { _, range in
                PhasingKernels.projectModulus(wp.pointer, amp: a, range: range, scale: scale)
            }
            return nil
        }
        let part = SendablePointer(partials)
        for k in 0..<(3 * maxChunks) { partials[k] = 0 }
        phasingChunks(count, threads: threads) { k, range in
            let s = PhasingKernels.projectModulusWithSums(wp.pointer, amp: a, range: range, scale: scale)
            part.pointer[3 * k] = s.aF; part.pointer[3 * k + 1] = s.ff; part.pointer[3 * k + 2] = s.aa
        }
        var aF = 0.0, ff = 0.0, aa = 0.0
        for k in 0..<maxChunks { aF += partials[3 * k]; ff += partials[3 * k + 1]; aa += partials[3 * k + 2] }
        return PhasingEngine.chi2(aF: aF, ff: ff, aa: aa)
    }

    /// Eq. (1) from the sums Σ√D√R, ΣR and ΣD (`ChiSquare.eq1`).
    static func chi2(aF: Double, ff: Double, aa: Double) -> Double {
        ChiSquare.eq1(dataModelAmplitudes: aF, model: ff, data: aa)
    }

    /// Shrink-wrap: S ← {G_σ ∗ |P_S ρ| > t · max}. Uses `work` as scratch and leaves it
    /// holding ρ again. Returns the number of voxels in the new support.
    @discardableResult
    public func shrinkWrap(sigma: Double, threshold: Double, reference: ShrinkWrapReference = .maximum) -> Int {
        let w = SendablePointer(work.pointer), r = rho.pointer, s = SendableBytes(support)
        phasingChunks(count, threads: threads) { _, range in
            for i in range {
                let re = r[2 &* i], im = r[2 &* i &+ 1]
                w.pointer[2 &* i] = (re * re + im * im).squareRoot() * Float(s.pointer[i])
                w.pointer[2 &* i &+ 1] = 0
            }
        }
        forward.execute(w.pointer, w.pointer)
        // The Gaussian's transform exp(−σ²q²/2) per axis, with 1/N folded in.
        var off = 0
        for a in 0..<3 {
            for k in 0..<shape[a] {
                let q = 2 * Double.pi * FFT.frequency(k, shape[a])
                gaussFactors[off + k] = Float(exp(-0.5 * sigma * sigma * q * q) / (a == 0 ? Double(count) : 1))
            }
            off += shape[a]
        }
        let nz = shape[0], ny = shape[1], nx = shape[2]
        gaussFactors.withUnsafeBufferPointer { g in
            let gz = g.baseAddress!, gy = gz + nz, gx = gy + ny
            phasingChunks(nz * ny, threads: threads) { _, rows in
                for row in rows {
                    let f = gz[row / ny] * gy[row % ny]
                    let base = row &* nx
                    for x in 0..<nx {
                        let h = f * gx[x]
                        w.pointer[2 &* (base &+ x)] *= h
                        w.pointer[2 &* (base &+ x) &+ 1] *= h
                    }
                }
            }
        }
        backward.execute(w.pointer, w.pointer)
        let part = SendablePointer(partials)
        for k in 0..<(3 * maxChunks) { partials[k] = 0 }
        phasingChunks(count, threads: threads) { k, range in
            var m: Float = 0
            var sq = 0.0, inside = 0.0
            for i in range {
                let b = w.pointer[2 &* i]
                m = max(m, b)
                let si = Float(s.pointer[i])
                sq += Double(b * b * si); inside += Double(si)
            }
            part.pointer[3 * k] = Double(m); part.pointer[3 * k + 1] = sq; part.pointer[3 * k + 2] = inside
        }
        var peak = 0.0, sq = 0.0, inside = 0.0
        for k in 0..<maxChunks { peak = max(peak, partials[3 * k]); sq += partials[3 * k + 1]; inside += partials[3 * k + 2] }
        if reference == .rms && inside > 0 { peak = (sq / inside).squareRoot() }
        let t = Float(threshold * peak)
        for k in 0..<maxChunks { partials[k] = 0 }
        phasingChunks(count, threads: threads) { k, range in
            var c: Float = 0
            var block = 0.0
            var n = 0
            for i in range {
                let inside = w.pointer[2 &* i] > t
                s.pointer[i] = inside ? 1 : 0
                c += inside ? 1 : 0
                n &+= 1
                if n == 1 << 20 { block += Double(c); c = 0; n = 0 }
            }
            part.pointer[k] = block + Double(c)
        }
        var voxels = 0.0
        for k in 0..<maxChunks { voxels += partials[k] }
        work.pointer.update(from: rho.pointer, count: 2 * count)
        workInPlaneSpace = false; poissonContinues = false
        return peak > 0 ? Int(voxels) : 0
    }

    /// Detwinning: keeps the half of the support at or beyond its centre along `axis` (the
    /// centre a circular mean, since the support wraps round index 0 in FFT order) and returns
    /// the whole support for `restoreSupport`.
    func halveSupport(axis: Int) -> [UInt8] {
        let whole = Array(UnsafeBufferPointer(start: support, count: count))
        let n = shape[axis], stride = shape[(axis + 1)...].reduce(1, *)
        var c = 0.0, s = 0.0
        var perIndex = [Int](repeating: 0, count: n)
        for i in 0..<count where support[i] != 0 { perIndex[(i / stride) % n] += 1 }
        for k in 0..<n {
            let a = 2 * Double.pi * Double(k) / Double(n)
            c += Double(perIndex[k]) * cos(a); s += Double(perIndex[k]) * sin(a)
        }
        let centre = (Int((atan2(s, c) / (2 * Double.pi) * Double(n)).rounded()) % n + n) % n
        for i in 0..<count where ((i / stride) % n - centre + n) % n >= n / 2 { support[i] = 0 }
        // `work` still holds the transform of ρ, valid with any support: only ML's search restarts.
        poissonContinues = false
        return whole
    }

    func restoreSupport(_ whole: [UInt8]) {
        whole.withUnsafeBufferPointer { support.update(from: $0.baseAddress!, count: count) }
        poissonContinues = false
    }

    /// Number of voxels in the support.
    public var supportVoxels: Int {
        var n = 0
        for i in 0..<count where support[i] != 0 { n += 1 }
        return n
    }

    /// Runs a recipe from the current iterate. `report` is called every `reportEvery`
    /// iterations and on the last one with (iteration, χ²). Throws on support collapse or
    /// fill, and on interruption.
    public func run(recipe: Recipe, shrinkWrap schedule: ShrinkWrapSchedule, reportEvery: Int = 10,
                    runIndex: Int = 0, report: ((Int, PhasingAlgorithm, Double) -> Void)? = nil) throws {
        let total = recipe.totalIterations
        var done = 0
        for step in recipe.steps {
            if let mode = step.psfMode { applyPSFMode(mode) }
            if let setting = step.psf { try applyPSF(setting) }
            let whole = step.detwinAxis.map { halveSupport(axis: $0) }
            defer { if let whole { restoreSupport(whole) } }
            for k in 0..<step.iterations {
                if let c = coherence, let every = (step.psf ?? lastPSFSetting)?.refinementPeriod, k > 0, k % every == 0 {
                    c.fitPending = true
                }
                let last = done + 1 == total
                let reportNow = last || (reportEvery > 0 && (done + 1) % reportEvery == 0)
                let chi2 = step.algorithm == .ml ? iterateML(first: k == 0, computeError: reportNow)
                    : iterate(step.algorithm, beta: step.beta, computeError: reportNow)
                done += 1
                if step.shrinkWrapEvery > 0 && (k + 1) % step.shrinkWrapEvery == 0 && !last {
                    let sigma = schedule.sigma(at: done, of: total)
                    let voxels = shrinkWrap(sigma: sigma, threshold: step.threshold, reference: step.reference ?? schedule.reference)
                    if voxels < schedule.minimumVoxels {
                        throw PhasingError.supportCollapsed(run: runIndex, iteration: done, voxels: voxels)
                    }
                    let fraction = Double(voxels) / Double(count)
                    if fraction > schedule.maximumFraction {
                        throw PhasingError.supportFilled(run: runIndex, iteration: done, fraction: fraction)
                    }
                }
                if let chi2, let report { report(done, step.algorithm, chi2) }
                if done % 8 == 0 { try Interruption.check() }
            }
        }
    }

    /// Final metrics of the support-projected object P_S ρ: χ² (Eq. 1) over every measured
    /// pixel (free ones included), the Poisson log-likelihood over the fitted pixels and
    /// the free log-likelihood over the withheld ones. Both log-likelihoods are the mean
    /// Poisson deviance per pixel, (kR − D) − D ln(kR/D), 0 for a perfect model, with the
    /// model R = |F|² scaled by k so that k ΣR = ΣD over the fitted pixels.
    /// Leaves P_S ρ in `rho` (and its spectrum in `work`).
    public func finalMetrics() -> PhasingMetrics {
        workInPlaneSpace = false; poissonContinues = false
        let r = SendablePointer(rho.pointer), w = SendablePointer(work.pointer), s = SendableBytes(support)
        phasingChunks(count, threads: threads) { _, range in
            for i in range {
                let v = Float(s.pointer[i])
                r.pointer[2 &* i] *= v; r.pointer[2 &* i &+ 1] *= v
                w.pointer[2 &* i] = r.pointer[2 &* i]; w.pointer[2 &* i &+ 1] = r.pointer[2 &* i &+ 1]
            }
        }
        forward.execute(w.pointer, w.pointer)
        // Against the measured data, also while the iterations use a deconvolved intensity.
        let a = measuredAmplitudes.pointer
        // With partial coherence the model intensity is I_c = |F|² ⊗ K (floored as in P_M).
        var ic: UnsafePointer<Float>? = nil, k0 = 0.0, bg = 0.0
        if let pc = coherence, !pc.negligible {
            pc.fitPending = false
            pc.modelIntensity(of: w.pointer, amp: a)
            ic = UnsafePointer(pc.real.pointer); k0 = Double(pc.centre); bg = Double(pc.background)
        }
        @inline(__always) func model(_ i: Int) -> Double {
            let re = Double(w.pointer[2 * i]), im = Double(w.pointer[2 * i + 1])
            let m2 = re * re + im * im
            guard let ic else { return m2 }
            return max(Double(ic[i]), k0 * m2) + bg
        }
        // Pass 1: sums for the scale and χ².
        var aF = 0.0, ff = 0.0, aa = 0.0, nFit = 0
        for i in 0..<count where a[i] >= 0 {
            let m2 = model(i), ai = Double(a[i])
            aF += ai * m2.squareRoot(); ff += m2; aa += ai * ai; nFit += 1
        }
        let k = ff > 0 ? aa / ff : 1
        var faF = 0.0, fff = 0.0, faa = 0.0
        for (j, i) in freeIndex.enumerated() {
            let m2 = model(i), d = Double(freeIntensity[j])
            faF += d.squareRoot() * m2.squareRoot(); fff += m2; faa += d
        }
        let chi2 = PhasingEngine.chi2(aF: aF + faF, ff: ff + fff, aa: aa + faa)
        let floor = 1e-9 * max(aa / Double(max(nFit, 1)), 1e-30)
        func deviance(_ d: Double, _ m2: Double) -> Double {
            let model = max(k * m2, floor)
            return d > 0 ? model - d - d * log(model / d) : model
        }
        var llk = 0.0
        for i in 0..<count where a[i] >= 0 {
            let ai = Double(a[i])
            llk += deviance(ai * ai, model(i))
        }
        var free = 0.0
        for (j, i) in freeIndex.enumerated() {
            free += deviance(Double(freeIntensity[j]), model(i))
        }
        return PhasingMetrics(chi2: chi2, llk: nFit > 0 ? llk / Double(nFit) : .nan,
                              freeLLK: freeIndex.isEmpty ? .nan : free / Double(freeIndex.count),
                              supportVoxels: supportVoxels)
    }

    /// The current iterate, fftshifted (centred), as a volume.
    public var object: ComplexVolume {
        let st = rho.copyForPhasing()
        return try! ComplexVolume(shape: shape, storage: st).fftshifted()
    }

    /// The current support, fftshifted (centred), 1 inside.
    public var supportVolume: RealVolume {
        let st = FloatStorage(count: count)
        for i in 0..<count { st.pointer[i] = Float(support[i]) }
        return try! RealVolume(shape: shape, storage: st).fftshifted()
    }
}

/// A byte pointer that may cross into `DispatchQueue.concurrentPerform` (chunks are disjoint).
struct SendableBytes: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt8>
    init(_ p: UnsafeMutablePointer<UInt8>) { pointer = p }
}

/// Figures of merit of a finished run (lower is better for all three).
public struct PhasingMetrics: Sendable, Equatable {
    /// χ² of Eq. (1) over every measured pixel.
    public var chi2: Double
    /// Mean Poisson deviance per fitted pixel.
    public var llk: Double
    /// Mean Poisson deviance per withheld (free) pixel; NaN when none were withheld.
    public var freeLLK: Double
    public var supportVoxels: Int
}
