import Foundation
import Numerics

/// Buffers of the Poisson maximum-likelihood refinement (`ML:N`), made on its first use in a
/// run and kept: the gradient, the search direction and its spectrum (interleaved complex),
/// the model intensity and three per-pixel quantities (blurred with a point-spread function).
final class PoissonRefinement: @unchecked Sendable {
    let gradient: FloatStorage
    let direction: FloatStorage
    let directionSpectrum: FloatStorage
    /// I_c, then per pixel K ⊗ W, K ⊗ A and K ⊗ B (see `PhasingEngine.iterateML`; no K when
    /// coherent).
    let ic: FloatStorage, kw: FloatStorage, ka: FloatStorage, kb: FloatStorage
    /// Σ|g|² of the last gradient (Polak–Ribière's denominator); 0: start a new conjugate sequence.
    var gradientNorm = 0.0
    /// The Poisson misfit L of the iterate entering the last iteration.
    var lastMisfit = Double.nan

    init(count: Int) {
        gradient = FloatStorage(count: 2 * count)
        direction = FloatStorage(count: 2 * count)
        directionSpectrum = FloatStorage(count: 2 * count)
        ic = FloatStorage(count: count); kw = FloatStorage(count: count)
        ka = FloatStorage(count: count); kb = FloatStorage(count: count)
    }
}

/// Model intensities below this (counts) are floored in the Poisson misfit and its
/// derivatives: a pixel that counted photons where the model has none would otherwise give an
/// infinite misfit and gradient.
let poissonIntensityFloor: Float = 1e-2

extension PhasingEngine {
    /// One iteration of Poisson maximum-likelihood refinement by conjugate gradients, as PyNX
    /// ends its recipes: ρ (inside the support, which stays fixed) moves along the
    /// Polak–Ribière direction built from the gradient of
    ///
    ///     L(ρ) = Σ_measured  I_c − I − I ln(I_c / I),   I_c = |F|² (⊗ K + b with a kernel),  F = FFT ρ,
    ///
    /// (the Poisson deviance: −log-likelihood up to a constant, 0 for a perfect model, which
    /// keeps the sum small enough to compare steps in Double),
    /// ∂L/∂ρ* = P_S FFT⁻¹[F · (K ⊗ W)] (unnormalised), W = 1 − I/I_c on measured pixels (0 on
    /// masked and free ones). The step length is the Newton step of L along the direction, from
    /// the exact first and second derivatives of L(ρ + γd) at γ = 0 (I_c(γ) = I_c + γA + γ²B with
    /// A = 2 Re F̄·F_d, B = |F_d|², each blurred by K), halved until L decreases. With a kernel,
    /// the measured data are fitted through it (also after `psfmode=deconvolve`); its widths
    /// are kept. `first` starts a new conjugate sequence from P_S ρ. Returns χ² (Eq. 1) of the
    /// iterate entering the iteration when `computeError` is set. Leaves `work` = FFT ρ.
    @discardableResult
    func iterateML(first: Bool, computeError: Bool) -> Double? {
        let n = count
        let state: PoissonRefinement
        if let p = poisson { state = p } else { state = PoissonRefinement(count: n); poisson = state }
        let r = SendablePointer(rho.pointer), w = SendablePointer(work.pointer), s = SendableBytes(support)
        if first || !poissonContinues {
            // F = FFT(P_S ρ), a new conjugate sequence.
            phasingChunks(n, threads: threads) { _, range in
                for i in range {
                    let v = Float(s.pointer[i])
                    let a = r.pointer[2 &* i] * v, b = r.pointer[2 &* i &+ 1] * v
                    r.pointer[2 &* i] = a; r.pointer[2 &* i &+ 1] = b
                    w.pointer[2 &* i] = a; w.pointer[2 &* i &+ 1] = b
                }
            }
            forward.execute(work.pointer, work.pointer)
            state.gradientNorm = 0
        }
        poissonContinues = true
        workInPlaneSpace = false
        let pc = coherence.flatMap { $0.negligible ? nil : $0 }
        pc?.fitPending = false
        let amp = SendableConstPointer(measuredAmplitudes.pointer)
        let k0 = pc?.centre ?? 1, bg = pc?.background ?? 0, floor = poissonIntensityFloor
        let g = SendablePointer(state.gradient.pointer), d = SendablePointer(state.direction.pointer)
        let fd = SendablePointer(state.directionSpectrum.pointer)
        let ic = SendablePointer(state.ic.pointer), kw = SendablePointer(state.kw.pointer)
        let ka = SendablePointer(state.ka.pointer), kb = SendablePointer(state.kb.pointer)
        // x ← K ⊗ x with a kernel (through its real transforms); nothing when coherent.
        func blur(_ x: SendablePointer<Float>) {
            guard let pc else { return }
            pc.real.pointer.update(from: x.pointer, count: n)
            pc.blurInPlace()
            x.pointer.update(from: pc.real.pointer, count: n)
        }

        // I_c (|F|², or |F|² ⊗ K + b) and W = 1 − I/I_c; the sums for L and χ².
        if let pc {
            pc.transformModel(of: work.pointer)
            pc.convolve(source: pc.spectrum.pointer, kernel: pc.khat.pointer)
            ic.pointer.update(from: pc.real.pointer, count: n)
        }
        let coherent = pc == nil
        var sums = ChunkSums(threads: threads)
        sums.run(n) { range, acc in
            for i in range {
                let fr = w.pointer[2 &* i], fi = w.pointer[2 &* i &+ 1], m2 = fr * fr + fi * fi
                let c = max((coherent ? m2 : max(ic.pointer[i], k0 * m2)) + bg, floor)
                ic.pointer[i] = c
                let a = amp.pointer[i]
                let measured = a >= 0, data = measured ? a * a : 0
                kw.pointer[i] = measured ? 1 - data / c : 0
                if measured { acc.add(Double(c), Double(data), Double(a * c.squareRoot()), Double(data > 0 ? data * Foundation.log(c / data) : 0)) }
            }
        }
        let (sumIC, sumI, sumAF, sumILog) = sums.total
        let misfit = sumIC - sumI - sumILog
        state.lastMisfit = misfit
        let chi2 = computeError ? PhasingEngine.chi2(aF: sumAF, ff: sumIC, aa: sumI) : nil

        // The gradient's spectrum F·(K ⊗ W) (in `fd`, scratch until the new direction).
        blur(kw)
        phasingChunks(n, threads: threads) { _, range in
            for i in range {
                let k = kw.pointer[i]
                fd.pointer[2 &* i] = w.pointer[2 &* i] * k; fd.pointer[2 &* i &+ 1] = w.pointer[2 &* i &+ 1] * k
            }
        }

        // The gradient in real space, restricted to the support; Polak–Ribière direction.
        backward.execute(fd.pointer, fd.pointer)
        var dots = ChunkSums(threads: threads)
        dots.run(n) { range, acc in
            var gg = 0.0, go = 0.0
            for i in range {
                let v = Float(s.pointer[i])
                let a = fd.pointer[2 &* i] * v, b = fd.pointer[2 &* i &+ 1] * v
                gg += Double(a * a + b * b)
                go += Double(a * g.pointer[2 &* i] + b * g.pointer[2 &* i &+ 1])
                fd.pointer[2 &* i] = a; fd.pointer[2 &* i &+ 1] = b
            }
            acc.add(gg, go, 0, 0)
        }
        let (gg, go, _, _) = dots.total
        let beta = state.gradientNorm > 0 ? max(0, (gg - go) / state.gradientNorm) : 0
        state.gradientNorm = gg
        let bf = Float(beta)
        phasingChunks(n, threads: threads) { _, range in
            for i in range {
                let a = fd.pointer[2 &* i], b = fd.pointer[2 &* i &+ 1]
                g.pointer[2 &* i] = a; g.pointer[2 &* i &+ 1] = b
                let da = -a + bf * d.pointer[2 &* i], db = -b + bf * d.pointer[2 &* i &+ 1]
                d.pointer[2 &* i] = da; d.pointer[2 &* i &+ 1] = db
                fd.pointer[2 &* i] = da; fd.pointer[2 &* i &+ 1] = db
            }
        }
        forward.execute(fd.pointer, fd.pointer)

        // L(γ) along d, with I_c(γ) = I_c + γ K⊗A + γ² K⊗B (exact: A = 2 Re F̄·F_d, B = |F_d|²):
        // derivatives at 0, the Newton step, halved until L decreases.
        phasingChunks(n, threads: threads) { _, range in
            for i in range {
                let fr = w.pointer[2 &* i], fi = w.pointer[2 &* i &+ 1], dr = fd.pointer[2 &* i], di = fd.pointer[2 &* i &+ 1]
                ka.pointer[i] = 2 * (fr * dr + fi * di)
                kb.pointer[i] = dr * dr + di * di
            }
        }
        blur(ka); blur(kb)
        var der = ChunkSums(threads: threads)
        der.run(n) { range, acc in
            var d1 = 0.0, d2 = 0.0
            for i in range where amp.pointer[i] >= 0 {
                let a = amp.pointer[i], data = a * a, c = ic.pointer[i], wi = 1 - data / c
                d1 += Double(wi * ka.pointer[i])
                d2 += Double(2 * wi * kb.pointer[i] + data / (c * c) * ka.pointer[i] * ka.pointer[i])
            }
            acc.add(d1, d2, 0, 0)
        }
        let (d1, d2, _, _) = der.total
        let step = lineSearch(d1: d1, d2: d2, misfit: misfit) { gamma in
            var m = ChunkSums(threads: self.threads)
            let gm = Float(gamma)
            m.run(n) { range, acc in
                var l = 0.0
                for i in range where amp.pointer[i] >= 0 {
                    let a = amp.pointer[i], data = a * a
                    let c = max(ic.pointer[i] + gm * ka.pointer[i] + gm * gm * kb.pointer[i], floor)
                    l += Double(c - data - (data > 0 ? data * Foundation.log(c / data) : 0))
                }
                acc.add(l, 0, 0, 0)
            }
            return m.total.0
        }
        if step > 0 {
            // ρ ← ρ + γd and, FFT being linear, F ← F + γF_d.
            let gm = Float(step)
            phasingChunks(n, threads: threads) { _, range in
                for i in range {
                    r.pointer[2 &* i] += gm * d.pointer[2 &* i]; r.pointer[2 &* i &+ 1] += gm * d.pointer[2 &* i &+ 1]
                    w.pointer[2 &* i] += gm * fd.pointer[2 &* i]; w.pointer[2 &* i &+ 1] += gm * fd.pointer[2 &* i &+ 1]
                }
            }
        } else {
            state.gradientNorm = 0   // no descent along d: steepest descent next time
        }
        recordIteration(chi2: chi2)
        return chi2
    }

    /// The step γ > 0 along a direction with L'(0) = d1 and L''(0) = d2: the Newton step
    /// −d1/d2, halved (up to 8 times) until L(γ) < L(0); 0 when d is no descent direction.
    private func lineSearch(d1: Double, d2: Double, misfit: Double, _ along: (Double) -> Double) -> Double {
        guard d1 < 0, d1.isFinite else { return 0 }
        var gamma = d2 > 0 && d2.isFinite ? -d1 / d2 : 0
        if gamma <= 0 || !gamma.isFinite {
            // Curvature not positive: a small trial step, scaled from the slope.
            gamma = 1e-3 * abs(misfit) / abs(d1)
        }
        for _ in 0..<8 {
            if along(gamma) < misfit { return gamma }
            gamma *= 0.5
        }
        return 0
    }

    /// The Poisson misfit L(ρ) of `iterateML` for the iterate P_S ρ (for tests and reports).
    /// Uses `work`, and leaves it holding ρ.
    func poissonMisfit() -> Double {
        let n = count
        let r = SendablePointer(rho.pointer), w = SendablePointer(work.pointer), s = SendableBytes(support)
        phasingChunks(n, threads: threads) { _, range in
            for i in range {
                let v = Float(s.pointer[i])
                w.pointer[2 &* i] = r.pointer[2 &* i] * v; w.pointer[2 &* i &+ 1] = r.pointer[2 &* i &+ 1] * v
            }
        }
        forward.execute(work.pointer, work.pointer)
        let pc = coherence.flatMap { $0.negligible ? nil : $0 }
        let amp = SendableConstPointer(measuredAmplitudes.pointer)
        let k0 = pc?.centre ?? 1, bg = pc?.background ?? 0, floor = poissonIntensityFloor
        if let pc {
            pc.transformModel(of: work.pointer)
            pc.convolve(source: pc.spectrum.pointer, kernel: pc.khat.pointer)
        }
        let re = pc.map { SendableConstPointer($0.real.pointer) }
        var m = ChunkSums(threads: threads)
        m.run(n) { range, acc in
            var l = 0.0
            for i in range where amp.pointer[i] >= 0 {
                let fr = w.pointer[2 &* i], fi = w.pointer[2 &* i &+ 1], m2 = fr * fr + fi * fi
                let c = max((re.map { max($0.pointer[i], k0 * m2) } ?? m2) + bg, floor)
                let a = amp.pointer[i], data = a * a
                l += Double(c - data - (data > 0 ? data * Foundation.log(c / data) : 0))
            }
            acc.add(l, 0, 0, 0)
        }
        work.pointer.update(from: rho.pointer, count: 2 * n)
        workInPlaneSpace = false
        return m.total.0
    }
}

/// Per-chunk sums of up to four quantities over a parallel pass, added in chunk order (the
/// same total whatever thread ran which chunk).
struct ChunkSums {
    private var parts: [Double]
    let threads: Int
    private let chunks: Int

    init(threads: Int) { self.threads = threads; chunks = max(1, threads * 8); parts = [Double](repeating: 0, count: 4 * chunks) }

    struct Accumulator {
        var s = (0.0, 0.0, 0.0, 0.0)
        mutating func add(_ a: Double, _ b: Double, _ c: Double, _ d: Double) { s.0 += a; s.1 += b; s.2 += c; s.3 += d }
    }

    /// Runs body over 0..<count in chunks, each with its own accumulator.
    mutating func run(_ count: Int, _ body: (Range<Int>, inout Accumulator) -> Void) {
        let c = chunks, per = (count + c - 1) / c
        parts.withUnsafeMutableBufferPointer { p in
            let out = SendablePointer(p.baseAddress!)
            withoutActuallyEscaping(body) { b in
                DispatchQueue.concurrentPerform(iterations: threads <= 1 ? 1 : c) { k in
                    let ks = threads <= 1 ? 0..<c : k..<(k + 1)
                    for j in ks {
                        let lo = j * per, hi = min(count, lo + per)
                        var acc = Accumulator()
                        if lo < hi { b(lo..<hi, &acc) }
                        out.pointer[4 * j] = acc.s.0; out.pointer[4 * j + 1] = acc.s.1
                        out.pointer[4 * j + 2] = acc.s.2; out.pointer[4 * j + 3] = acc.s.3
                    }
                }
            }
        }
    }

    var total: (Double, Double, Double, Double) {
        var t = (0.0, 0.0, 0.0, 0.0)
        for j in 0..<chunks { t.0 += parts[4 * j]; t.1 += parts[4 * j + 1]; t.2 += parts[4 * j + 2]; t.3 += parts[4 * j + 3] }
        return t
    }
}
