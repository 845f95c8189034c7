import Foundation
import Numerics

/// Merging aligned reconstructions by mode decomposition, as PyNX's `pynx-cdi-analysis`
/// does: the runs ρ₁…ρ_K are the columns of R; the eigen-decomposition of their small
/// Gram matrix G = RᴴR, Gᵢⱼ = Σ conj(ρᵢ)ρⱼ, gives R's singular vectors without touching the
/// voxel-by-voxel covariance. The first mode R v₁/√λ₁ (v₁ the eigenvector of the largest
/// eigenvalue λ₁) is the object all runs share; λ₁ / Σλ is the fraction of the runs' total
/// intensity it carries (1 when every run is the same object up to a complex factor).
public enum RunMerging {
    /// The first mode of aligned `runs`, scaled so that identical runs give back the run
    /// itself (the unit mode times s₁/√K), and the weights λₖ/Σλ of all modes, largest first.
    public static func firstMode(of runs: [ComplexVolume]) throws -> (mode: ComplexVolume, weights: [Double]) {
        guard let first = runs.first else { throw PhasingError.invalidData("no runs to merge") }
        let K = runs.count
        var g = [[(re: Double, im: Double)]](repeating: [(re: Double, im: Double)](repeating: (0, 0), count: K), count: K)
        for i in 0..<K {
            for j in i..<K {
                let ip = try runs[i].inner(runs[j])     // Σ conj(ρᵢ)ρⱼ
                g[i][j] = ip
                g[j][i] = (ip.re, -ip.im)
            }
        }
        let (values, vectors) = hermitianEigen(g)
        let sum = values.reduce(0) { $0 + max($1, 0) }
        guard sum > 0, values[0] > 0 else { throw PhasingError.invalidData("the runs to merge are all zero") }
        var mode = ComplexVolume(shape: first.shape)
        let v = vectors[0]
        let scale = 1 / (values[0].squareRoot()) * (values[0] / Double(K)).squareRoot()
        mode.withUnsafeMutableFloats { m in
            for (k, run) in runs.enumerated() {
                let cr = Float(v[k].re * scale), ci = Float(v[k].im * scale)
                run.withUnsafeFloats { p in
                    for i in stride(from: 0, to: p.count, by: 2) {
                        let a = p[i], b = p[i + 1]
                        m[i] += cr * a - ci * b
                        m[i + 1] += cr * b + ci * a
                    }
                }
            }
        }
        return (mode, values.map { max($0, 0) / sum })
    }

    /// A short refinement of a merged object against the data, what users do after merging:
    /// the first mode is an average, and averaging runs that differ (in phase, in the weak
    /// edges of the crystal) lowers the contrast of its diffraction pattern, so its χ² is
    /// worse than each run's even when the runs are well aligned. `recipe` (ER by default,
    /// support fixed) is run from `object` (centred, the ramp `ramp` removed) inside `support`
    /// (centred; the kept runs' union support), with the point-spread function `psf` fixed (nil: coherent) and the pixels
    /// `freeSeed` withheld (the free pixels every run withheld, so that its free
    /// log-likelihood is scored on the same pixels). Returns P_S ρ in the same frame
    /// (ramp removed, global phase zeroed) and its metrics.
    static func refine(_ object: ComplexVolume, support: RealVolume, ramp: PhaseRamp, data: PhasingData,
                       psf: PointSpreadFunction?, recipe: Recipe, freeFraction: Double, freeSeed: UInt64,
                       threads: Int) throws -> (object: ComplexVolume, metrics: PhasingMetrics) {
        let (engine, _) = try started(object, support: support, ramp: ramp, data: data, psf: psf, freeFraction: freeFraction,
                                      freeSeed: freeSeed, threads: threads)
        try engine.run(recipe: withFixedSupport(recipe), shrinkWrap: ShrinkWrapSchedule(), reportEvery: 0)
        let m = engine.finalMetrics()
        return (PhasingPost.zeroingGlobalPhase(engine.object.removingPhaseRamp(ramp)), m)
    }

    /// The final pass (`PhasingOptions.supportTightening`): `object` (centred, ramp `ramp`
    /// removed) refitted by `recipe` (support fixed, the job's free pixels withheld) in its own
    /// `support` and in supports tightened from it, with each point-spread function of
    /// `kernels` fixed in turn (nil: coherent; the first is the one the object was fitted
    /// with, and `before` is measured with it). A tightened support is one shrink-wrap of the
    /// object's modulus with a smoothing σ of `sigmas` at `threshold` of `reference`; every
    /// pass starts from the same object. The candidates are, for each kernel, the support as
    /// it was (σ nil) first, then each σ; `best` is the candidate of lowest free
    /// log-likelihood, its object P_S ρ and support centred, ramp removed, global phase
    /// zeroed. A σ whose support vanishes is skipped.
    static func finalPass(_ object: ComplexVolume, support: RealVolume, ramp: PhaseRamp, data: PhasingData,
                          kernels: [PointSpreadFunction?], sigmas: [Double], threshold: Double, reference: ShrinkWrapReference,
                          recipe: Recipe, freeFraction: Double, freeSeed: UInt64, threads: Int) throws
        -> (before: PhasingMetrics, candidates: [SupportTightening.Candidate], best: Int, object: ComplexVolume, support: RealVolume) {
        precondition(!kernels.isEmpty, "the final pass needs at least the object's own kernel")
        let fixed = withFixedSupport(recipe)
        let (first, start) = try started(object, support: support, ramp: ramp, data: data, psf: kernels[0], freeFraction: freeFraction,
                                         freeSeed: freeSeed, threads: threads)
        let before = first.finalMetrics()
        // finalMetrics leaves the engine's work buffer in metric space: start again.
        start.withUnsafeFloats { p in first.start(from: p.baseAddress!) }
        var candidates: [SupportTightening.Candidate] = []
        var best: (index: Int, object: ComplexVolume, support: RealVolume)? = nil
        for (k, psf) in kernels.enumerated() {
            for sigma in [nil] + sigmas.map(Optional.some) {
                // Each pass from the same object in the same support: the own-support pass with
                // the object's kernel on the engine that measured it, every other on a fresh one
                // (the shrink-wrap masks the modulus by the support it replaces).
                let e = sigma == nil && k == 0 ? first : try started(object, support: support, ramp: ramp, data: data, psf: psf,
                                                                     freeFraction: freeFraction, freeSeed: freeSeed, threads: threads).engine
                if let sigma {
                    let voxels = e.shrinkWrap(sigma: sigma, threshold: threshold, reference: reference)
                    guard voxels >= ShrinkWrapSchedule().minimumVoxels else { continue }
                }
                try e.run(recipe: fixed, shrinkWrap: ShrinkWrapSchedule(), reportEvery: 0)
                let m = e.finalMetrics()
                candidates.append(SupportTightening.Candidate(sigma: sigma, kernel: k, psf: psf, metrics: m))
                if best == nil || m.freeLLK < candidates[best!.index].metrics.freeLLK {
                    best = (candidates.count - 1, PhasingPost.zeroingGlobalPhase(e.object.removingPhaseRamp(ramp)), e.supportVolume)
                }
                try Interruption.check()
            }
        }
        return (before, candidates, best!.index, best!.object, best!.support)
    }

    /// An engine on `data` in `support` (centred), `psf` fixed, the pixels of `freeSeed`
    /// withheld, started from `object` (centred, its ramp `ramp` put back); and that start in
    /// FFT order, to start again from.
    private static func started(_ object: ComplexVolume, support: RealVolume, ramp: PhaseRamp, data: PhasingData,
                                psf: PointSpreadFunction?, freeFraction: Double, freeSeed: UInt64,
                                threads: Int) throws -> (engine: PhasingEngine, start: ComplexVolume) {
        let s = try support.reshaped(data.shape).ifftshifted()
        let st = FloatStorage(count: data.count)
        s.withUnsafeFloats { p in for i in 0..<data.count { st.pointer[i] = p[i] != 0 ? 1 : 0 } }
        let engine = try PhasingEngine(data: data, supportFFTOrder: st, threads: threads)
        var rng = PhasingRNG(seed: freeSeed)
        engine.withholdFreePixels(fraction: freeFraction, rng: &rng)
        if let psf { try engine.applyPSF(.fixed(psf)) }
        let start = try object.reshaped(data.shape).removingPhaseRamp(-ramp).ifftshifted()
        start.withUnsafeFloats { p in engine.start(from: p.baseAddress!) }
        return (engine, start)
    }

    /// `recipe` with shrink-wrap off in every step: the refinement keeps the support fixed
    /// (shrink-wrap would let it drift from the runs').
    static func withFixedSupport(_ recipe: Recipe) -> Recipe {
        var steps = recipe.steps
        for i in steps.indices { steps[i].shrinkWrapEvery = 0 }
        return Recipe(steps: steps)
    }

    /// Eigenvalues (largest first) and unit eigenvectors of a small Hermitian matrix H = A + iB,
    /// from the real symmetric [[A, −B], [B, A]] (each eigenvalue of H appears twice there,
    /// with eigenvectors (x, y) and (−y, x) for the eigenvector x + iy of H) by cyclic Jacobi
    /// rotations.
    static func hermitianEigen(_ h: [[(re: Double, im: Double)]]) -> (values: [Double], vectors: [[(re: Double, im: Double)]]) {
        let n = h.count, m = 2 * n
        var a = [[Double]](repeating: [Double](repeating: 0, count: m), count: m)
        for i in 0..<n {
            for j in 0..<n {
                a[i][j] = h[i][j].re; a[i + n][j + n] = h[i][j].re
                a[i][j + n] = -h[i][j].im; a[i + n][j] = h[i][j].im
            }
        }
        // Its own tolerance: a half off-diagonal sum ≤ 1e-30 Σ a_ii² (the full sum ≤ 2e-30).
        let (diagonal, v) = symmetricEigen(a, tolerance: 2e-30, floor: 0)
        // Pair up the doubled spectrum: take eigenvectors in decreasing order, skipping any
        // whose complex form is parallel to one already taken.
        let order = (0..<m).sorted { diagonal[$0] > diagonal[$1] }
        var values: [Double] = [], vectors: [[(re: Double, im: Double)]] = []
        for j in order where values.count < n {
            var z = (0..<n).map { (re: v[$0][j], im: v[$0 + n][j]) }
            // Remove components along the vectors taken (Gram–Schmidt in ℂⁿ).
            for u in vectors {
                var dr = 0.0, di = 0.0     // ⟨u, z⟩ = Σ conj(u)z
                for k in 0..<n { dr += u[k].re * z[k].re + u[k].im * z[k].im; di += u[k].re * z[k].im - u[k].im * z[k].re }
                for k in 0..<n { z[k].re -= dr * u[k].re - di * u[k].im; z[k].im -= dr * u[k].im + di * u[k].re }
            }
            let norm = z.reduce(0) { $0 + $1.re * $1.re + $1.im * $1.im }.squareRoot()
            guard norm > 0.5 else { continue }
            values.append(diagonal[j])
            vectors.append(z.map { (re: $0.re / norm, im: $0.im / norm) })
        }
        return (values, vectors)
    }
}
