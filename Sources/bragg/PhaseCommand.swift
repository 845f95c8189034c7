import ArgumentParser
import Foundation
import Numerics
import Formats
import Neural
import Phasing

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
            aligned (twin, sub-voxel shift, global phase; each run's own phase ramp kept, so it \
            still fits the data) and merged by mode decomposition (the first eigenvector of their \
            Gram matrix, as PyNX's pynx-cdi-analysis); its weight says how much the runs agree. \
            The first mode, an average, often fits worse than the runs; it is refined against the \
            data by --merge-refine (ER:50 in the kept runs' union support, the best run's \
            point-spread function; kept when it lowers chi2) and written unless its chi2 exceeds \
            --merge-tolerance times the best run's, when the best run is written instead (and \
            said so); both chi2 are reported. Output: .h5/.cxi gets the CXI results file (object, support, \
            pattern, mask, recipe and metrics); .npy the complex object alone. The object is \
            centred on its support and its linear phase ramp is removed (recorded in the file).
            """
    )

    @Argument(help: "The pattern: FILE or FILE:DATASET (.npy, .npz, .h5, .cxi).")
    var pattern: String

    @Option(help: "Bad-pixel mask of the pattern's shape (nonzero = bad).")
    var mask: String?

    @Option(help: "Algorithm recipe (see below).")
    var recipe: String = Recipe.defaultString

    @Option(help: "iterative (ER/HIO/RAAR recipe) or neural (the trained network, see --model).")
    var method: PhaseMethod = .iterative

    @Option(help: "Neural method: model file (.safetensors; default models/default-c8-64.safetensors or $BRAGG_MODEL).")
    var model: String?

    @Option(name: .customLong("refine-steps"), help: "Neural method: steps fine-tuning the network on this pattern (physics loss; best prediction kept).")
    var refineSteps: Int = 0

    @Option(name: .customLong("refine-learning-rate"), help: "Neural method: Adam learning rate of the refinement.")
    var refineLearningRate: Double = 1e-4

    @Option(name: .customLong("then"), help: "Neural method: hand the prediction (object and support) to the iterative engine with this recipe, e.g. \"ER:50\" or \"short\" (HIO:100, RAAR:50, ER:50).")
    var then: String?

    @Option(help: "Neural method: run the network on the pattern under symmetries of the cube, none, reflections (8 passes) or cube (48), each pass on the pattern reflected about its centre and/or with its axes permuted; the predictions are transformed back and the one of lowest loss is kept.")
    var symmetries: NeuralPhaser.PredictionSymmetries = .none

    @Flag(name: .customLong("any-size"), help: "Neural method: run on a cubic pattern of another edge (multiple of 8) than the model's.")
    var anySize = false

    @Option(help: "Independent random starts.")
    var runs: Int = 1

    @Option(help: "Best runs aligned and merged by mode decomposition into the result (≤ --runs).")
    var keep: Int = 1

    @Option(help: "Random seed (the same seed gives the same result).")
    var seed: UInt64 = 1

    @Option(help: "Initial support: auto (autocorrelation), auto:T (threshold fraction T), box:Z,Y,X, sphere:R (voxels), or FILE[:DATASET] (nonzero inside, centred).")
    var support: String = "auto"

    @Option(name: .customLong("sigma"), help: "Shrink-wrap Gaussian σ in voxels, START,END (decays linearly over the recipe).")
    var sigma: String = "2,1"

    @Option(name: .customLong("threshold-reference"), help: "What the shrink-wrap threshold is a fraction of: max (of the blurred modulus) or rms (over the support; robust to a bright spot, e.g. with a gap through the Bragg peak).")
    var thresholdReference: ShrinkWrapReference = .maximum

    @Option(name: .customLong("free-fraction"), help: "Fraction of measured pixels withheld for the free log-likelihood (0–0.2; 0 disables).")
    var freeFraction: Double = 0.04

    @Option(name: .customLong("rank-by"), help: "Metric ranking the runs: free-llk (the default; llk when --free-fraction is 0), llk or chi2.")
    var rankBy: PhasingRankMetric?

    @Option(name: .customLong("stall-check"), help: "Fraction of the recipe after which stalled runs are found (0 turns the check off): a run whose chi2 is more than --stall-factor times the median of the other runs' is restarted from a new random start (--stall-restarts times), then dropped.")
    var stallCheck: Double = 0.3

    @Option(name: .customLong("stall-factor"), help: "How many times the median chi2 of the other runs makes a run stalled.")
    var stallFactor: Double = 4

    @Option(name: .customLong("stall-restarts"), help: "New random starts a stalled run gets before it is dropped.")
    var stallRestarts: Int = 1

    @Option(name: .customLong("merge-tolerance"), help: "The first mode of the kept runs is written when its chi2 is at most this many times the best run's; otherwise the best run is written (1 = never worse than the best run).")
    var mergeTolerance: Double = 1.1

    @Option(name: .customLong("merge-refine"), help: "Recipe refining the first mode of the kept runs against the data before it is compared with the best run (support fixed to the kept runs' union, point-spread function to the best run's; kept only when it lowers chi2; \"none\" for no refinement).")
    var mergeRefine: String = "ER:50"

    @Option(name: .shortAndLong, help: "Output: .h5/.cxi (CXI results) or .npy (complex object).")
    var out: String

    @Flag(help: "Replace an existing output file.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1 (got \(runs))") }
        guard keep >= 1 && keep <= runs else { throw ValidationError("--keep must be between 1 and --runs (\(runs)) (got \(keep))") }
        if rankBy == .freeLLK && freeFraction == 0 {
            throw ValidationError("--rank-by free-llk needs withheld pixels; give --free-fraction above 0")
        }
        guard stallCheck >= 0 && stallCheck < 1 else { throw ValidationError("--stall-check must be a fraction in [0, 1) (got \(stallCheck))") }
        guard stallFactor > 1 else { throw ValidationError("--stall-factor must be above 1 (got \(stallFactor))") }
        guard stallRestarts >= 0 else { throw ValidationError("--stall-restarts must be ≥ 0 (got \(stallRestarts))") }
        guard mergeTolerance >= 1 else { throw ValidationError("--merge-tolerance must be at least 1 (got \(mergeTolerance))") }
    }

    /// The command as parsed with nothing but its required arguments: the defaults the
    /// method checks below compare against, declared once, on the options themselves.
    static func defaults() throws -> PhaseCommand { try PhaseCommand.parse(["pattern", "--out", "out"]) }

    /// The neural-only options given a value other than their default.
    func neuralOnlyOptionsGiven() throws -> [String] {
        let d = try Self.defaults()
        return [("--model", model != d.model), ("--refine-steps", refineSteps != d.refineSteps),
                ("--refine-learning-rate", refineLearningRate != d.refineLearningRate), ("--then", then != d.then),
                ("--symmetries", symmetries != d.symmetries), ("--any-size", anySize != d.anySize)]
            .filter(\.1).map(\.0)
    }

    /// The iterative-only options given a value other than their default (the neural
    /// method's hand-off to the iterative engine takes its recipe from --then and the
    /// engine's defaults for the rest).
    func iterativeOnlyOptionsGiven() throws -> [String] {
        let d = try Self.defaults()
        return [("--recipe", recipe != d.recipe), ("--runs", runs != d.runs), ("--keep", keep != d.keep),
                ("--seed", seed != d.seed), ("--support", support != d.support), ("--sigma", sigma != d.sigma),
                ("--threshold-reference", thresholdReference != d.thresholdReference),
                ("--free-fraction", freeFraction != d.freeFraction), ("--rank-by", rankBy != d.rankBy),
                ("--stall-check", stallCheck != d.stallCheck), ("--stall-factor", stallFactor != d.stallFactor),
                ("--stall-restarts", stallRestarts != d.stallRestarts), ("--merge-tolerance", mergeTolerance != d.mergeTolerance),
                ("--merge-refine", mergeRefine != d.mergeRefine)]
            .filter(\.1).map(\.0)
    }

    /// An option of the other method would be silently ignored: say so instead.
    func checkMethodOptions() throws {
        let foreign = method == .neural ? try iterativeOnlyOptionsGiven() : try neuralOnlyOptionsGiven()
        if !foreign.isEmpty {
            throw UsageError("\(foreign.joined(separator: ", ")) \(foreign.count == 1 ? "applies" : "apply") only to --method \(method == .neural ? "iterative" : "neural")")
        }
    }

    func run() throws {
        try OutputCheck.file(out, overwrite: force)   // before any work (#22)
        common.apply()
        try checkMethodOptions()
        if method == .neural {
            try ClusterRun.refuseRanks("--method neural")   // one network pass: nothing to spread (#24)
            try NeuralPhaseRun(pattern: pattern, mask: mask, model: model, refineSteps: refineSteps,
                               learningRate: refineLearningRate, anySize: anySize, out: out, force: force,
                               quiet: common.quiet, then: try then.map { try Recipe.parse($0) }, symmetries: symmetries).run()
            common.saveWisdom()
            return
        }
        // Check everything cheap before the long work.
        let ext = (out as NSString).pathExtension.lowercased()
        guard ["h5", "cxi", "npy"].contains(ext) else {
            throw UsageError("output '\(out)' must end in .h5, .cxi (CXI results) or .npy (complex object)")
        }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("output '\(out)' exists; use --force to replace it")
        }
        var options = PhasingOptions()
        options.recipe = try Recipe.parse(recipe)
        options.runs = runs; options.keep = keep; options.seed = seed
        options.freeFraction = freeFraction
        if let r = rankBy { options.rankBy = r }
        options.stallCheckFraction = stallCheck; options.stallFactor = stallFactor
        options.stallRestarts = stallRestarts; options.mergeTolerance = mergeTolerance
        do { options.mergeRefinement = mergeRefine.lowercased() == "none" ? nil : try Recipe.parse(mergeRefine) }
        catch { throw UsageError("--merge-refine '\(mergeRefine)': \(error)") }
        let sig = sigma.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard sig.count == 2, sig.allSatisfy({ $0 >= 0 }) else {
            throw UsageError("--sigma must be START,END in voxels, both ≥ 0 (got '\(sigma)')")
        }
        options.shrinkWrap.sigmaStart = sig[0]; options.shrinkWrap.sigmaEnd = sig[1]
        options.shrinkWrap.reference = thresholdReference

        let (intensity, maskVolume, maskSource) = try readPatternInput(pattern, mask: mask)
        options.support = try parseSupport(support)
        let data = try PhasingData(intensity: intensity, mask: maskVolume, name: "'\(pattern)'")
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
                          result.modeWeights.map { String(format: "%.3f", $0) }.joined(separator: " "), result.firstModeChi2 ?? .nan)
                + (result.mergeRefinement != nil ? String(format: ", refined %.5f", result.mergedChi2 ?? .nan) : "")
        }
        print(String(format: "result: %@, spread %.4f, chi2 %.5f, llk %.4f, phase ramp removed (%.5f, %.5f, %.5f) cycles/voxel → %@",
                     what, result.spread, result.metrics.chi2, result.metrics.llk,
                     result.ramp.cyclesPerVoxel[0], result.ramp.cyclesPerVoxel[1], result.ramp.cyclesPerVoxel[2], out))

        if ext == "npy" {
            try ArrayIO.write(result.object, to: out, overwrite: force)
        } else {
            var res = iterativeResultsFile(result, options: options, intensity: intensity, mask: maskVolume,
                                           source: pattern, maskSource: maskSource, supportDescription: support)
            try carryPatternGeometry(&res, pattern: pattern, patternShape: intensity.shape)
            try res.write(to: out, overwrite: force)
        }
    }

    func parseSupport(_ s: String) throws -> InitialSupport {
        if s == "auto" { return .standard }
        if s.hasPrefix("auto:") {
            guard let t = Double(s.dropFirst(5)), t > 0, t < 1 else {
                throw UsageError("--support auto:T needs a threshold fraction 0 < T < 1 (got '\(s)')")
            }
            return .autocorrelation(threshold: t)
        }
        if s.hasPrefix("box:") {
            let v = s.dropFirst(4).split(separator: ",").compactMap { Int($0) }
            guard v.count >= 2, v.allSatisfy({ $0 > 0 }) else {
                throw UsageError("--support box:Z,Y,X needs positive sizes in voxels (got '\(s)')")
            }
            return .box(v)
        }
        if s.hasPrefix("sphere:") {
            guard let r = Double(s.dropFirst(7)), r > 0 else {
                throw UsageError("--support sphere:R needs a positive radius in voxels (got '\(s)')")
            }
            return .sphere(radius: r)
        }
        return .volume(try ArrayIO.readReal(s))
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
