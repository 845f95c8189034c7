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
            ρ' = P_M ρ, and ML (Poisson maximum likelihood: conjugate-gradient steps on the \
            Poisson log-likelihood of the measured data, through the point-spread function when \
            there is one, support fixed; to end a recipe, e.g. ", ML:50"). Options: beta, sw (shrink-wrap every sw iterations, 0 = off), \
            threshold (shrink-wrap fraction of the blurred modulus' maximum, or of its RMS over \
            the support with ref=rms, as in the default recipe; ref=max|rms overrides \
            --threshold-reference for that step), psf (partial coherence from that step on: the \
            model intensity is |F|² convolved with a point-spread function; psf=auto fits a \
            Gaussian's widths per axis to the data and refits them every 50 iterations, \
            auto:lorentz or auto:pvoigt another shape, auto:both a pseudo-Voigt in odd runs and \
            a Lorentzian in even ones, auto:MODEL:N every N, :bg a flat background too; gauss:S, \
            lorentz:G or pvoigt:FWHM[:ETA] fix it, widths in pixels, one or ZxYxX; off) and \
            psfmode (model: the PSF in the modulus projection; deconvolve: the data deconvolved \
            by it, Richardson-Lucy, and phased coherently) and detwin=z|y|x (the step runs on the \
            half of the support beyond its centre along that axis, the whole support back after \
            it, as PyNX's detwinning, e.g. "HIO:20 detwin=z" to open a recipe). An \
            option a step does not use (beta on ER, threshold with sw=0) is refused. Recipes \
            separated by | alternate over the runs (run k follows alternative k mod their \
            number), and the likelihood ranks them. Named recipes: "gaussian" (1000 \
            iterations, psf=auto switched on after HIO), "lorentzian" (1300: a Lorentzian PSF \
            fitted after HIO, then the deconvolved data phased again from HIO, for heavy-tailed \
            blur), "default" (gaussian | lorentzian, so that coherent, Gaussian- and \
            Lorentzian-blurred data phase without saying which) and "short" (HIO:100, RAAR:50, \
            ER:50, for a start near the answer, as with --method neural --then short). The PSF \
            found is printed per run and written to the results file.

            With --runs K, K seeded random starts run (in parallel when K ≥ threads). With \
            recipe alternatives they pause where the alternatives part (iteration 600 of the \
            default), and an alternative whose point-spread function models almost no blur \
            while another's found one, or whose best chi2 is more than --alternative-choice \
            times another's, gives its runs to the better one: they go on with its steps from \
            their own iterate (said so). The runs are then \
            checked for stalled runs after --stall-check of their recipe (a run whose chi2 is \
            --stall-factor times the best of the other runs of its recipe alternative, or 5 \
            times the best of another alternative's, is restarted, or dropped, and said so), \
            ranked by --rank-by (free log-likelihood by default), and the --keep best are \
            aligned (twin, sub-voxel shift, global phase; each run's own phase ramp kept, so it \
            still fits the data) and merged by mode decomposition (the first eigenvector of their \
            Gram matrix, as PyNX's pynx-cdi-analysis); its weight says how much the runs agree. \
            The first mode, an average, often fits worse than the runs; it is refined against the \
            data by --merge-refine (ER:50 in the kept runs' union support, the best run's \
            point-spread function; kept when it lowers chi2) and written unless its chi2 exceeds \
            --merge-tolerance times the best run's, when the best run is written instead (and \
            said so); both chi2 are reported. Then a final pass (--tighten-recipe, HIO:50 then \
            ER:50, support fixed) refits the written object in its own support and in supports \
            tightened by one more shrink-wrap (--tighten-support: sigma 0.3 and 0.5 voxel), with \
            the best run's point-spread function (and, when it models almost no blur while another run found one, with that \
            run's too); the pass that predicts the withheld pixels best is written when it predicts them \
            better than the object as it stood (said either way). Output: .h5/.cxi gets the CXI results file (object, support, \
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

    /// The iterative options the neural method's hand-off (`--then`) takes: the shrink-wrap
    /// schedule of its recipe.
    static let handOffOptions: Set<String> = ["--sigma", "--threshold-reference"]

    /// An option of the other method would be silently ignored: say so instead.
    func checkMethodOptions() throws {
        var foreign = method == .neural ? try iterative.optionsGiven() : try neural.optionsGiven()
        if method == .neural && neural.then != nil { foreign.removeAll { Self.handOffOptions.contains($0) } }
        if !foreign.isEmpty {
            let also = method == .neural && foreign.allSatisfy({ Self.handOffOptions.contains($0) }) ? " (or to --method neural with --then)" : ""
            throw UsageError("\(foreign.joined(separator: ", ")) \(foreign.count == 1 ? "applies" : "apply") only to --method \(method == .neural ? "iterative" : "neural")" + also)
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
                               symmetries: neural.symmetries, shrinkWrap: try iterative.phasingOptions().shrinkWrap).run()
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
                        + "\(runs) run(s) of \(Set(([options.recipe.steps] + options.recipe.alternatives).map { $0.reduce(0) { $0 + $1.iterations } }).sorted().map(String.init).joined(separator: " or ")) iterations: \(options.recipe)")
        }
        // Under mpirun the runs are spread over the ranks; rank 0 merges and writes (#24).
        guard let result = try ClusterRun.phase(data, options: options, progress: bar.handler,
                                                threadsGiven: common.threads != nil) else { return }
        bar.finish()
        common.saveWisdom()

        for r in result.runs {
            let kept = result.kept.contains(r.index) ? (r.index == result.kept.first ? " [best]" : " [kept]") : ""
            var restarted = r.restarts > 0 ? " (restarted \(r.restarts)×)" : ""
            if let from = r.switchedFrom, let c = result.alternativeChoice {
                restarted += "  alternative \(from + 1) → \(options.recipe.alternativeNumber(ofRun: r.alternative) + 1) at iteration \(c.iteration)"
            }
            if let q = r.checkChi2.last { restarted += String(format: "  check chi2 %.4f", q) }
            if let m = r.metrics {
                print(String(format: "run %d: chi2 %.5f  llk %.4f  free-llk %@  support %d voxels  %d iterations  %.1f s%@%@",
                             r.index + 1, m.chi2, m.llk, m.freeLLK.isNaN ? "–" : String(format: "%.4f", m.freeLLK),
                             m.supportVoxels, r.iterations, r.seconds, restarted + (r.psf.map { "  psf \($0)" } ?? ""), kept))
            } else {
                print("run \(r.index + 1): stopped after \(r.iterations) iterations\(restarted): \(r.failure ?? "unknown")")
            }
        }
        var what: String
        if result.kept.count == 1 {
            what = "best run (ranked by \(options.effectiveRankBy.rawValue))"
        } else {
            what = String(format: "%@ of %d kept runs (first-mode weight %.3f, modes %@; first mode chi2 %.5f)",
                          result.merged ? "first mode" : "best run", result.kept.count, result.modeWeight,
                          result.modeWeights.map { String(format: "%.3f", $0) }.joined(separator: " "), result.firstModeChi2 ?? .nan)
                + (result.mergeRefinement != nil ? String(format: ", refined %.5f", result.mergedChi2 ?? .nan) : "")
        }
        if let t = result.tightening, t.kept {
            what += String(format: ", %@%@ %d → %d voxels (free llk %.4f → %.4f)", t.tightened ? String(format: "support tightened (σ %g)", t.best.sigma!) : "refitted in its own support",
                           t.best.kernel == 0 ? "" : " with run \(t.otherKernelRun! + 1)'s kernel (\(t.best.psf?.description ?? "none"))",
                           t.before.supportVoxels, t.best.metrics.supportVoxels, t.before.freeLLK, t.best.metrics.freeLLK)
        }
        print(String(format: "result: %@, spread %.4f, chi2 %.5f, llk %.4f, phase ramp removed (%.5f, %.5f, %.5f) cycles/voxel → %@",
                     what, result.spread, result.metrics.chi2, result.metrics.llk,
                     result.ramp.cyclesPerVoxel[0], result.ramp.cyclesPerVoxel[1], result.ramp.cyclesPerVoxel[2], out))

        let reconstruction = Reconstruction(iterative: result, options: options, pattern: patternInput, source: pattern,
                                            supportDescription: iterative.support)
        try reconstruction.write(to: out, overwrite: force)
    }
}
