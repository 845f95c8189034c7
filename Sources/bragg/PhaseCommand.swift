import ArgumentParser
import Foundation
import BraggKit

struct PhaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phase",
        abstract: "Iterative phase retrieval (ER, HIO, RAAR with shrink-wrap) of a Bragg CDI pattern.",
        discussion: """
            PATTERN is a centred 3D (or 2D) intensity in NPY, NPZ or HDF5, addressed as FILE or \
            FILE:DATASET. Negative, NaN and infinite intensities are MASKED (left free like \
            detector gaps) with a warning, never clipped; an all-zero pattern, a mask of another \
            shape or a bad recipe is refused with exit status 2.

            Recipe: steps separated by commas, NAME:ITERATIONS then options, e.g. \
            "HIO:400 beta=0.9 sw=20, RAAR:500 beta=0.8, ER:100". Algorithms: ER (ρ ← P_S P_M ρ), \
            HIO (ρ' in S, ρ − βρ' outside), RAAR (ρ' in S, βρ + (1−2β)ρ' outside), with \
            ρ' = P_M ρ. Options: beta, sw (shrink-wrap every sw iterations, 0 = off), \
            threshold (shrink-wrap fraction of the blurred modulus' maximum, or of its RMS over \
            the support with ref=rms, as in the default recipe; ref=max|rms overrides \
            --threshold-reference for that step), psf (partial coherence from that step on: the \
            model intensity is |F|² convolved with a point-spread function; psf=auto fits a \
            Gaussian's widths per axis to the data and refits them every 50 iterations, \
            auto:lorentz or auto:pvoigt another shape, auto:MODEL:N every N; gauss:S, \
            lorentz:G or pvoigt:FWHM[:ETA] fix it, widths in pixels, one or ZxYxX; off). An \
            option a step does not use (beta on ER, threshold with sw=0) is refused. The \
            default recipe switches psf=auto on after HIO, so that coherent and partially \
            coherent data both phase; the PSF found is printed per run and written to the \
            results file. Two recipes have names: "default" (1000 \
            iterations) and "short" (HIO:100, RAAR:50, ER:50: 200 iterations, for a start \
            near the answer, as with --method neural --then short).

            With --runs K, K seeded random starts run (in parallel when K ≥ threads), are \
            checked for stalled runs after --stall-check of the recipe (a run whose chi2 is \
            --stall-factor times the median of the others' is restarted or dropped, and said so), \
            ranked by --rank-by (free log-likelihood by default), and the --keep best are \
            aligned (twin, sub-voxel shift, phase ramp, global phase) and merged by mode \
            decomposition (the first eigenvector of their Gram matrix, as PyNX's \
            pynx-cdi-analysis); its weight says how much the runs agree. The first mode is \
            written unless its chi2 exceeds --merge-tolerance times the best run's, when the best \
            run is written instead (and said so). Output: .h5/.cxi gets the CXI results file (object, support, \
            pattern, mask, recipe and metrics); .npy the complex object alone. The object is \
            centred on its support and its linear phase ramp is removed (recorded in the file).
            """
    )

    @OptionGroup var input: PatternOptions

    @Option(help: "iterative (ER/HIO/RAAR recipe) or neural (the trained network, see --model).")
    var method: PhaseMethod = .iterative

    @OptionGroup(title: "Iterative method") var iterative: IterativeOptions

    @OptionGroup(title: "Neural method") var neural: NeuralOptions

    @OptionGroup var output: OutputFileOptions

    @OptionGroup var common: CommonOptions

    /// An option of the other method would be silently ignored: say so instead.
    func checkMethodOptions() throws {
        let foreign = method == .neural ? try iterative.optionsGiven() : try neural.optionsGiven()
        if !foreign.isEmpty {
            throw UsageError("\(foreign.joined(separator: ", ")) \(foreign.count == 1 ? "applies" : "apply") only to --method \(method == .neural ? "iterative" : "neural")")
        }
    }

    func run() throws {
        let out = output.out, force = output.force, pattern = input.pattern, mask = input.mask
        try OutputCheck.file(out, overwrite: force)   // before any work (#22)
        common.apply()
        try checkMethodOptions()
        if method == .neural {
            try ClusterRun.refuseRanks("--method neural")   // one network pass: nothing to spread (#24)
            try NeuralPhaseRun(pattern: pattern, mask: mask, model: neural.model, refineSteps: neural.refineSteps,
                               learningRate: neural.refineLearningRate, anySize: neural.anySize, out: out, force: force,
                               quiet: common.quiet, then: try neural.then.map { try Recipe.parse($0) },
                               symmetries: neural.symmetries).run()
            common.saveWisdom()
            return
        }
        // Check everything cheap before the long work.
        guard Reconstruction.canWrite(to: out) else {
            throw UsageError("output '\(out)' must end in .h5, .cxi (CXI results) or .npy (complex object)")
        }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("output '\(out)' exists; use --force to replace it")
        }
        var options = try iterative.phasingOptions()
        let runs = options.runs
        let patternInput = try PatternInput.read(pattern, mask: mask)
        options.support = try iterative.initialSupport()
        let data = try PhasingData(intensity: patternInput.pattern, mask: patternInput.mask, name: "'\(pattern)'")
        let bar = ProgressBar(quiet: common.quiet || !ClusterRun.isRoot)   // one view under mpirun (#24)
        for w in data.warnings { bar.message("bragg: warning: \(w)") }
        if !common.quiet {
            bar.message("phasing \(data.originalShape.map(String.init).joined(separator: "×")) pattern, \(data.measuredCount) measured pixels, "
                        + "\(runs) run(s) of \(options.recipe.totalIterations) iterations: \(options.recipe)")
        }
        // Under mpirun the runs are spread over the ranks; rank 0 merges and writes (#24).
        guard let result = try ClusterRun.phase(data, options: options, progress: bar.handler,
                                                threadsGiven: common.threads != nil) else { return }
        bar.finish()
        common.saveWisdom()

        for r in result.runs {
            let kept = result.kept.contains(r.index) ? (r.index == result.kept.first ? " [best]" : " [kept]") : ""
            var restarted = r.restarts > 0 ? " (restarted \(r.restarts)×)" : ""
            if let q = r.checkChi2.last { restarted += String(format: "  check chi2 %.4f", q) }
            if let m = r.metrics {
                print(String(format: "run %d: chi2 %.5f  llk %.4f  free-llk %@  support %d voxels  %d iterations  %.1f s%@%@",
                             r.index + 1, m.chi2, m.llk, m.freeLLK.isNaN ? "–" : String(format: "%.4f", m.freeLLK),
                             m.supportVoxels, r.iterations, r.seconds, restarted + (r.psf.map { "  psf \($0)" } ?? ""), kept))
            } else {
                print("run \(r.index + 1): stopped after \(r.iterations) iterations\(restarted): \(r.failure ?? "unknown")")
            }
        }
        let what: String
        if result.kept.count == 1 {
            what = "best run (ranked by \(options.effectiveRankBy.rawValue))"
        } else {
            what = String(format: "%@ of %d kept runs (first-mode weight %.3f, modes %@; first mode chi2 %.5f)",
                          result.merged ? "first mode" : "best run", result.kept.count, result.modeWeight,
                          result.modeWeights.map { String(format: "%.3f", $0) }.joined(separator: " "), result.mergedChi2 ?? .nan)
        }
        print(String(format: "result: %@, spread %.4f, chi2 %.5f, llk %.4f, phase ramp removed (%.5f, %.5f, %.5f) cycles/voxel → %@",
                     what, result.spread, result.metrics.chi2, result.metrics.llk,
                     result.ramp.cyclesPerVoxel[0], result.ramp.cyclesPerVoxel[1], result.ramp.cyclesPerVoxel[2], out))

        let reconstruction = Reconstruction(iterative: result, options: options, pattern: patternInput, source: pattern,
                                            supportDescription: iterative.support)
        try reconstruction.write(to: out, overwrite: force)
    }
}

struct BenchPhase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phase",
        abstract: "Time one HIO iteration (FFT, fused modulus projection, inverse FFT, fused support update), without and with a point-spread function.",
        discussion: "Prints the median HIO iteration beside the median forward+inverse FFT pair of the same plans, timed alternately in the same run, and their ratio; then the median HIO iteration with partial coherence (a Gaussian point-spread function) and its ratio to the plain one, and the time of one fit of its widths. Compare with `python3 bench/phasing_hio.py --size N` (numpy + scipy.fft) in the same session."
    )

    @Option(help: "Edge of the cubic pattern.")
    var size: Int = 128

    @Option(help: "Timed iterations (and FFT pairs).")
    var repeats: Int = 20

    @Flag(help: "Print one machine-readable JSON line instead of text.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard size >= 4 && size <= 1024 else { throw ValidationError("--size must be between 4 and 1024 (got \(size))") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
    }

    func run() throws {
        common.apply()
        let n = size, shape = [n, n, n], c = n / 2
        // The same data as the numpy peer: a sphere's pattern, two masked rows, a cubic support.
        var obj = ComplexVolume(shape: shape)
        let r2 = Double(n) / 6
        obj.withUnsafeMutableFloats { p in
            for z in 0..<n { for y in 0..<n { for x in 0..<n {
                let d = Double((z - c) * (z - c) + (y - c) * (y - c) + (x - c) * (x - c))
                if d < r2 * r2 { p[2 * ((z * n + y) * n + x)] = 1 }
            } } }
        }
        try FFT.forward(&obj)
        let intensity = obj.intensity().fftshifted()
        var mask = RealVolume(shape: shape)
        mask.withUnsafeMutableFloats { p in for z in 0..<n { for y in 0..<2 { for x in 0..<n { p[(z * n + y) * n + x] = 1 } } } }
        let data = try PhasingData(intensity: intensity, mask: mask.fftshifted())
        let t = Parallel.threads
        var planTime = 0.0
        var engine: PhasingEngine!
        planTime = try timeIt {
            engine = try PhasingEngine(data: data, support: InitialSupportVolume.box(shape: shape, size: n / 2), threads: t)
        }
        common.saveWisdom()
        var rng = PhasingRNG(seed: 1)
        engine.randomStart(rng: &rng)
        let fwd = try FFTPlanner.plan(shape: shape, direction: .forward, threads: t)
        let bwd = try FFTPlanner.plan(shape: shape, direction: .backward, threads: t)
        var scratch = ComplexVolume(shape: shape, repeating: Complex32(0.5, 0.25))
        var hio: [Double] = [], pair: [Double] = []
        try scratch.withUnsafeMutableFloats { p in
            let ptr = p.baseAddress!
            for k in 0..<(repeats + 2) {
                try Interruption.check()
                let a = timeIt { engine.iterate(.hio, beta: 0.9) }
                let b = timeIt { fwd.execute(ptr, ptr); bwd.execute(ptr, ptr) }
                for i in 0..<p.count { p[i] *= 1 / Float(n * n * n) }
                if k >= 2 { hio.append(a); pair.append(b) }
            }
        }
        // The same iteration with partial coherence (a fixed Gaussian point-spread function:
        // real transforms of |F|², product with K̂, F·√(I/I_c)), and one fit of its widths.
        var psfPlan = 0.0
        psfPlan = try timeIt { try engine.applyPSF(.fixed(.gaussian(sigma: [0.5, 0.5, 0.5]))) }
        var psfIter: [Double] = []
        for k in 0..<(repeats + 2) {
            try Interruption.check()
            let a = timeIt { engine.iterate(.hio, beta: 0.9) }
            if k >= 2 { psfIter.append(a) }
        }
        try engine.applyPSF(.refined(.gaussian, every: 25))
        let fit = timeIt { engine.iterate(.hio, beta: 0.9) } - median(psfIter)
        let h = median(hio), f = median(pair), p = median(psfIter)
        if json {
            print(#"{"bench":"phase","size":\#(n),"threads":\#(t),"hio_ms":\#(String(format: "%.4f", h * 1e3)),"fft_pair_ms":\#(String(format: "%.4f", f * 1e3)),"ratio":\#(String(format: "%.3f", h / f)),"hio_psf_ms":\#(String(format: "%.4f", p * 1e3)),"psf_ratio":\#(String(format: "%.3f", p / h)),"psf_fit_ms":\#(String(format: "%.2f", fit * 1e3))}"#)
        } else {
            print(String(format: "phase %d³ HIO iteration: %.3f ms median of %d (min %.3f); FFT pair of the same plans: %.3f ms; HIO/FFT-pair %.3f; %d thread(s); setup %.2f s",
                         n, h * 1e3, hio.count, (hio.min() ?? 0) * 1e3, f * 1e3, h / f, t, planTime))
            print(String(format: "with a point-spread function (partial coherence): %.3f ms median of %d, %.2f× the plain iteration; one width fit %.1f ms; real-FFT planning %.2f s",
                         p * 1e3, psfIter.count, p / h, fit * 1e3, psfPlan))
        }
    }
}

/// A centred box support volume (for the bench).
enum InitialSupportVolume {
    static func box(shape: [Int], size: Int) -> RealVolume {
        let n = shape[2], c = n / 2
        return RealVolume(shape: shape) { f in
            let z = f / (n * n), y = (f / n) % n, x = f % n
            return abs(z - c) < size / 2 && abs(y - c) < size / 2 && abs(x - c) < size / 2 ? 1 : 0
        }
    }
}
