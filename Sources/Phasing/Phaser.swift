import Numerics
import Foundation

/// Which figure ranks the runs (lower is better for each).
public enum PhasingRankMetric: String, CaseIterable, Sendable {
    case chi2
    case llk
    case freeLLK = "free-llk"
}

/// Everything a phasing job needs besides the data.
public struct PhasingOptions: Sendable {
    public var recipe: Recipe = .standard
    /// Independent random starts, and how many of the best are aligned and averaged.
    public var runs = 1
    public var keep = 1
    public var seed: UInt64 = 1
    public var support: InitialSupport = .standard
    public var shrinkWrap = ShrinkWrapSchedule()
    /// Fraction of measured pixels withheld from the fit for the free log-likelihood
    /// (0 disables it; the issue asks for 3–5%). The same pixels for every run of a job
    /// (drawn from `seed`), so that the runs' free log-likelihoods compare like with like:
    /// when each run drew its own, two runs of scan 54 with equal χ² and llk had free llk
    /// 2.9 and 6.3, and the second-ranked run was one of a worse kernel shape.
    public var freeFraction = 0.04
    /// The figure that ranks the runs. The free log-likelihood by default: it scores each run
    /// on pixels it was not fitted to, so a run that overfits noise does not rank first. With
    /// no pixels withheld (`freeFraction` 0) the ranking falls back to `llk`.
    public var rankBy: PhasingRankMetric = .freeLLK
    /// Stalled runs: after this fraction of its own recipe alternative (0 turns the check off)
    /// a run whose χ² (Eq. 1, of P_S ρ) is more than `stallFactor` times the best of the
    /// other runs of its alternative (or `stallFactorAcrossAlternatives` times the best of
    /// another alternative's) is restarted from a new random start, at most `stallRestarts`
    /// times, then dropped; a dropped run spends none of its remaining iterations. On the 64³
    /// prisms at 55–80% of the default's Gaussian recipe (RAAR with the point-spread function
    /// on) runs that end far from the answer (error 0.3–0.7) have 1.7–8× the best run's χ²,
    /// those that end near it under 1.4×; at 30–40% (inside HIO) they could not be told
    /// apart. Checked at a common iteration instead, Lorentzian runs (before their
    /// deconvolution) looked worse than Gaussian ones on Lorentzian data and were restarted as
    /// Gaussian (errors 0.44–0.73); at 80% of each alternative's own recipe too, by 2×, and
    /// so a run is judged against its own alternative's runs (bench/README.md, Stalled runs
    /// and free pixels; session 19).
    public var stallCheckFraction = 0.8
    /// A run is stalled at `stallFactor` times the best check-point χ² of the other runs of
    /// its own recipe alternative, or at `stallFactorAcrossAlternatives` (at least
    /// `stallFactor`) times the best of another alternative's runs, and only then restarts
    /// with the best run's alternative: the check points of different alternatives fall in
    /// different phases of their recipes, where χ² does not say which alternative fits the data.
    public var stallFactor = 2.0
    public var stallFactorAcrossAlternatives = 5.0
    /// The factor in force against another alternative's runs: never below `stallFactor`.
    public var effectiveStallFactorAcrossAlternatives: Double { max(stallFactorAcrossAlternatives, stallFactor) }
    public var stallRestarts = 1
    /// The recipe alternative chosen from the data (nil: off; needs alternatives and more than
    /// one run): at `AlternativeChoice.point` (iteration 600 of the default) the runs of an
    /// alternative whose kernel models almost no blur while another's found one, or whose
    /// best χ² is more than this factor times another's, go on with the better alternative's
    /// steps from their own iterate (`AlternativeChoice.decide`). On the Lorentzian 64³ prisms
    /// the Lorentzian runs' best χ² there was 1.22–2.35× ahead of the Gaussian runs'; on
    /// Gaussian blur the Lorentzian fits modelled almost no blur (bench/README.md, session 20).
    public var alternativeChoiceFactor: Double? = 1.1
    /// The first mode of the kept runs is written when its χ² is at most this many times the
    /// best run's; otherwise the best run is written (and the result's notes say so).
    public var mergeTolerance = 1.1
    /// A run among the `keep` best whose χ² is more than this many times the best run's is
    /// not merged (a note says so); the next run in rank within this tolerance is merged in
    /// its place.
    public var keepTolerance = 1.5
    /// Refinement of the first mode against the data before it is compared with the best run
    /// (support fixed to the union of the kept runs', the best run's point-spread function
    /// fixed; kept when it lowers χ²; nil or no steps: none). The first mode's χ² before and
    /// after are both reported.
    public var mergeRefinement: Recipe? = PhasingOptions.defaultMergeRefinement
    /// ER:50, support fixed.
    public static let defaultMergeRefinement = Recipe(steps: [RecipeStep(.er, iterations: 50, shrinkWrapEvery: 0)])
    /// The final pass over the written object (empty: none): `supportTighteningRecipe` (support
    /// fixed) is run from it in its own support and in supports tightened by one shrink-wrap of
    /// its modulus with each of these smoothing σ (voxels; at the recipe's last threshold and
    /// reference), with the best run's point-spread function fixed; the pass of lowest free
    /// log-likelihood (the withheld pixels) is written when it is lower than the object's as it
    /// stands, so the data, not a setting, decide how tight the support is. Why: the recipe's
    /// σ schedule ends at 1 voxel, which leaves the support about a voxel shell outside a sharp
    /// crystal (20–30% too many voxels on the 64³ prisms), and runs on blurred data settle in
    /// local minima (a facet a voxel off, a density ripple) that HIO escapes only in a support
    /// near the crystal's; a whole schedule ending at 0.5 fitted the real scan 54 worse
    /// (bench/README.md, A final pass in a tightened support). Needs withheld pixels
    /// (`freeFraction` > 0).
    public var supportTightening: [Double] = [0.3, 0.5]
    /// The final pass's recipe (shrink-wrap off in every step). HIO, not only ER: from a wrong
    /// local minimum ER only settles; HIO in a support near the crystal's leaves it.
    public var supportTighteningRecipe = PhasingOptions.defaultTighteningRecipe
    /// HIO:50 β 0.9, then ER:50.
    public static let defaultTighteningRecipe = Recipe(steps: [RecipeStep(.hio, iterations: 50, beta: 0.9, shrinkWrapEvery: 0),
                                                              RecipeStep(.er, iterations: 50, shrinkWrapEvery: 0)])
    /// Tests only: called on the engine of each run's first start after its random start
    /// (to force a run off course).
    var startOverride: (@Sendable (Int, PhasingEngine) -> Void)? = nil
    /// χ² is computed (one fused pass) every this many iterations and on the last.
    public var reportEvery = 10
    /// Threads in all (default `Parallel.threads`).
    public var threads: Int? = nil

    public init() {}

    func validate() throws {
        guard runs >= 1 else { throw PhasingError.invalidOption("the number of runs must be at least 1 (got \(runs))") }
        guard keep >= 1, keep <= runs else {
            throw PhasingError.invalidOption("the runs to keep must number between 1 and the runs (\(runs)) (got \(keep))")
        }
        guard freeFraction >= 0, freeFraction <= 0.2 else {
            throw PhasingError.invalidOption("the free-pixel fraction must be in [0, 0.2] (got \(freeFraction))")
        }
        guard shrinkWrap.sigmaStart >= 0, shrinkWrap.sigmaEnd >= 0 else {
            throw PhasingError.invalidOption("shrink-wrap σ must be ≥ 0 (got \(shrinkWrap.sigmaStart) → \(shrinkWrap.sigmaEnd))")
        }
        guard stallCheckFraction >= 0, stallCheckFraction < 1, stallFactor > 1, stallRestarts >= 0 else {
            throw PhasingError.invalidOption("the stall check needs a fraction in [0, 1), a factor above 1 and restarts ≥ 0 (got \(stallCheckFraction), \(stallFactor), \(stallRestarts))")
        }
        guard stallFactorAcrossAlternatives > 1 else {
            throw PhasingError.invalidOption("the stall factor across recipe alternatives must be above 1 (got \(stallFactorAcrossAlternatives))")
        }
        if let f = alternativeChoiceFactor, !(f >= 1 && f.isFinite) {
            throw PhasingError.invalidOption("the factor that chooses a recipe alternative must be a ratio of χ² of at least 1 (got \(f))")
        }
        guard keepTolerance >= 1 else {
            throw PhasingError.invalidOption("the keep tolerance is a ratio of χ² of at least 1 (got \(keepTolerance))")
        }
        if let t = supportTightening.first(where: { !($0 > 0 && $0.isFinite) }) {
            throw PhasingError.invalidOption("the support tightening σ must be a positive number of voxels (got \(t))")
        }
        if !supportTightening.isEmpty && supportTighteningRecipe.totalIterations < 1 {
            throw PhasingError.invalidOption("the final pass's recipe has no iterations")
        }
        guard mergeTolerance >= 1 else {
            throw PhasingError.invalidOption("the merge tolerance is a ratio of χ² of at least 1 (got \(mergeTolerance))")
        }
    }

    /// The ranking used: `rankBy`, or `llk` when ranking by free-llk with no pixels withheld.
    public var effectiveRankBy: PhasingRankMetric { rankBy == .freeLLK && freeFraction == 0 ? .llk : rankBy }
}

/// The outcome of one run.
public struct PhasingRunResult: Sendable {
    public var index: Int
    /// The seed of the start that produced the result (a restarted run's new seed).
    public var seed: UInt64
    /// Nil when the run stopped (support collapse or fill, or stalled); `failure` says why.
    public var metrics: PhasingMetrics?
    public var failure: String?
    /// Centred, de-ramped object and its support (only kept for the best `keep` runs).
    public var object: ComplexVolume?
    public var support: RealVolume?
    /// Removed phase ramp and the roll that centred it.
    public var ramp = PhaseRamp.zero()
    public var roll: [Int] = []
    public var chi2History: [(iteration: Int, chi2: Double)] = []
    public var seconds: Double = 0
    /// Iterations spent on this run over all its starts (a stalled start counts the
    /// iterations it ran before the check; a dropped run spends no more).
    public var iterations = 0
    /// New random starts this run was given after stalling.
    public var restarts = 0
    /// χ² (Eq. 1) of P_S ρ at the stall check of each start (empty without a check).
    public var checkChi2: [Double] = []
    /// The free log-likelihood of P_S ρ at the same check points (NaN without free pixels).
    public var checkFreeLLK: [Double] = []
    /// The recipe alternative the run followed (`Recipe.forRun`): its index, unless a restart
    /// took the best run's.
    public var alternative: Int
    /// The point-spread function the run ended with (nil: coherent).
    public var psf: PointSpreadFunction?
    /// χ² (Eq. 1) of P_S ρ at the choice of recipe alternative (nil: no choice, or the run
    /// did not get there).
    public var choiceChi2: Double?
    /// The alternative (`Recipe.alternativeNumber`) the run began with when the choice
    /// switched it to another (nil: not switched).
    public var switchedFrom: Int?

    public init(index: Int, seed: UInt64, alternative: Int? = nil) {
        self.index = index; self.seed = seed; self.alternative = alternative ?? index
    }

    func score(_ m: PhasingRankMetric) -> Double {
        guard let x = metrics else { return .infinity }
        let v: Double
        switch m { case .chi2: v = x.chi2; case .llk: v = x.llk; case .freeLLK: v = x.freeLLK }
        return v.isNaN ? .infinity : v
    }
}

/// What the final pass found (`PhasingOptions.supportTightening`): the written object's
/// metrics as it stood (`before`), every pass (`candidates`: the support as it was, σ nil, then
/// each tightened one) and which had the lowest free log-likelihood
/// (`chosen`); `kept` when that one is lower than `before`'s, and then it is what was written.
public struct SupportTightening: Sendable {
    public struct Candidate: Sendable {
        /// The shrink-wrap σ of the tightened support; nil for the support as it was.
        public var sigma: Double?
        /// Which of `SupportTightening.kernels` the pass modelled the intensity with (0: the
        /// one the object was fitted with), and that point-spread function (nil: coherent).
        public var kernel: Int = 0
        public var psf: PointSpreadFunction? = nil
        public var metrics: PhasingMetrics
    }
    public var before: PhasingMetrics
    public var candidates: [Candidate]
    public var chosen: Int
    public var kept: Bool
    /// The point-spread functions the passes were run with: the best run's first, then, when
    /// it modelled almost no blur while another run found one, that run's
    /// (`Phaser.blurredKernelRun`).
    public var kernels: [PointSpreadFunction?] = []
    /// The run whose kernel is `kernels[1]`, when there is one.
    public var otherKernelRun: Int? = nil
    /// The chosen pass.
    public var best: Candidate { candidates[chosen] }
    /// Whether the written object's support was tightened (kept, with a σ).
    public var tightened: Bool { kept && best.sigma != nil }
}

/// The result of a phasing job and what it came from.
public struct PhasingResult: Sendable {
    /// The written object (centred, ramp removed, global phase 0): the first mode of the
    /// kept runs, refined (`merged`), or the best run when there was one kept run or when the first
    /// mode fitted the data worse than `PhasingOptions.mergeTolerance` × the best run.
    public var object: ComplexVolume
    /// The best run's support, or the union of the kept runs' (aligned) when merged.
    public var support: RealVolume
    /// Every run, in run order (objects only on the kept ones).
    public var runs: [PhasingRunResult]
    /// Indices of the kept runs, best first.
    public var kept: [Int]
    /// RMS over kept runs of their normalised complex error against the first mode (after
    /// alignment and the best complex scale; 0 for one run).
    public var spread: Double
    /// Which kept runs were replaced by their twin to align.
    public var twinned: [Int]
    /// The removed phase ramp of the best run (z y x).
    public var ramp: PhaseRamp
    /// Metrics of the written object against the data.
    public var metrics: PhasingMetrics
    public var recipe: Recipe
    public var options: PhasingOptions
    /// Weights of the modes of the aligned kept runs (eigenvalues of their Gram matrix over
    /// their sum, largest first; [1] for one run). The first is `modeWeight`.
    public var modeWeights: [Double] = [1]
    public var modeWeight: Double { modeWeights.first ?? 1 }
    /// χ² (Eq. 1) of the merged object offered for writing (the first mode after the merge
    /// refinement, if any; nil with one kept run), and whether it is the object written.
    public var mergedChi2: Double? = nil
    /// χ² of the first mode as the mode decomposition gave it (before any refinement).
    public var firstModeChi2: Double? = nil
    /// χ² of each kept run after alignment onto the best (best first), evaluated like the
    /// first mode (the best run's ramp and point-spread function): alignment that moved a
    /// run off the data shows here.
    public var alignedChi2: [Double] = []
    /// The refinement of the first mode (nil: none, or not kept because it did not lower
    /// χ²), and how far it moved it: the normalised complex error between the refined and
    /// the unrefined first mode. `mergedChi2` is then the refined object's.
    public var mergeRefinement: Recipe? = nil
    public var refinementChange: Double? = nil
    public var merged = false
    /// The final pass (`PhasingOptions.supportTightening`), when tried: the object's metrics
    /// before it, every pass (own support, each tightened support), the one of lowest free
    /// log-likelihood, and whether it was kept (written).
    public var tightening: SupportTightening? = nil
    /// The point-spread function the written object's intensity is modelled with (nil:
    /// coherent): the best run's, unless the final pass wrote a pass with another run's.
    public var psf: PointSpreadFunction? = nil
    /// The choice of recipe alternative part-way through (nil: none was made).
    public var alternativeChoice: AlternativeChoice? = nil
    /// Decisions the job took, one sentence each (stalled runs, the merge), as reported
    /// through the progress handler's notes.
    public var notes: [String] = []
}

/// Runs phase retrieval: `runs` seeded random starts (concurrently when there are more
/// runs than threads, each on one thread; else one after another on all threads).
///
/// With more than one run and a recipe of alternatives, every run first goes to the point
/// where the alternatives part (`AlternativeChoice.point`), and an alternative that does not
/// model the blur in the data gives its runs to one that does (`alternativeChoiceFactor`),
/// which they continue from their own iterate.
///
/// With more than one run, every run first goes through `stallCheckFraction` of its own
/// recipe alternative (the check point falls on a shrink-wrap boundary) and stops there; χ²
/// (Eq. 1) of each run's P_S ρ is compared with the best of the other runs', and a run more
/// than `stallFactor` times worse than the other runs of its recipe alternative is restarted
/// from a new random start, or dropped, before anyone spends the rest of the recipe. The decision waits for every run's check point, so it does not depend
/// on which run finished first: a given seed gives the same result however the runs were
/// scheduled. Runs are then ranked by a metric (free log-likelihood by default); the best
/// `keep` are aligned (twin, sub-voxel shift, global phase, in the data frame) and merged by
/// mode decomposition (the first eigenvector of their Gram matrix, as PyNX's
/// `pynx-cdi-analysis`), then the first mode is refined against the data
/// (`mergeRefinement`) and written when it fits within `mergeTolerance` of the best run.
/// Last, a final pass refits the written object in its own and in tightened supports
/// (`supportTightening`), written only when the withheld pixels are predicted better.
public enum Phaser {
    public static func phase(_ data: PhasingData, options: PhasingOptions = PhasingOptions(),
                             progress: ProgressHandler? = nil) throws -> PhasingResult {
        try phase(data, options: options, progress: progress, world: SingleProcess())!
    }

    /// The same job with its runs spread over the processes of `world` (MPI ranks, #24): run
    /// k on rank k mod size, the stall check's χ² exchanged between ranks so that every rank
    /// takes the same decisions, the finished runs gathered to rank 0, which ranks, aligns
    /// and merges them. Every rank calls it with the same data and options; rank 0 gets the
    /// result, the others nil. A run's random start depends on its index only and its threads
    /// on `runs` and `threads` only (as in one process), so with the same `threads` the result
    /// is the same bits as `phase` in one process.
    public static func phase(_ data: PhasingData, options: PhasingOptions, progress: ProgressHandler?,
                             world: Communicator) throws -> PhasingResult? {
        try options.validate()
        let threads = max(1, options.threads ?? Parallel.threads)
        let support0 = try options.support.fftOrder(for: data, threads: threads)
        var voxels = 0
        for i in 0..<data.count where support0.pointer[i] != 0 { voxels += 1 }
        let fraction = Double(voxels) / Double(data.count)
        if voxels < options.shrinkWrap.minimumVoxels {
            throw PhasingError.invalidData("the initial support has only \(voxels) voxel(s); lower the autocorrelation threshold or give a larger box/sphere")
        }
        if fraction > options.shrinkWrap.maximumFraction {
            throw PhasingError.invalidData(String(format: "the initial support covers %.0f%% of the box, which leaves no real-space constraint; raise the autocorrelation threshold or give a box/sphere support (is the pattern oversampled?)", fraction * 100))
        }

        let K = options.runs
        let concurrent = K >= threads && threads > 1
        let workers = concurrent ? threads : 1
        let perRun = concurrent ? 1 : threads
        let total = options.recipe.longestTotalIterations
        let tracker = ProgressTracker(runs: K, total: total, concurrent: concurrent, handler: progress,
                                      counted: (0..<K).filter { $0 % world.size == world.rank }.count)
        let rankBy = options.effectiveRankBy
        var notes: [String] = []
        func note(_ s: String) {
            notes.append(s)
            progress?(ProgressReport(stage: "note", done: 0, total: 0, note: s))
        }
        let env = RunEnvironment(data: data, support: support0, options: options, threads: perRun, tracker: tracker)
        // Each alternative's runs are checked at the same share of their own recipe, so that
        // runs of different alternatives are compared in like phases (at a common iteration a
        // Lorentzian run is still before its deconvolution while a Gaussian run is refining).
        @Sendable func checkPoint(_ alternative: Int) -> Int? {
            K > 1 ? StallCheck.point(recipe: options.recipe.forRun(alternative), reportEvery: options.reportEvery,
                                     fraction: options.stallCheckFraction) : nil
        }
        @Sendable func checkAt(_ alternative: Int) -> Int { checkPoint(alternative) ?? options.recipe.forRun(alternative).totalIterations }
        let check: Int? = (0..<max(1, options.recipe.alternatives.count + 1)).compactMap(checkPoint).first
        // Where the recipe alternative is chosen from the data (nil: no choice).
        let choicePoint: Int? = K > 1 && options.alternativeChoiceFactor != nil
            && Set((0..<K).map(options.recipe.alternativeNumber(ofRun:))).count > 1
            ? AlternativeChoice.point(recipe: options.recipe, reportEvery: options.reportEvery).flatMap { a in
                (0..<K).allSatisfy { a < checkAt($0) } ? a : nil
            } : nil
        // The recipe each run follows from here on (a run index for `Recipe.forRun`), the same on
        // every rank: the choice below is taken from every rank's χ².
        var alternativeOf = Array(0..<K)
        var choice: AlternativeChoice? = nil

        // This process' runs (all of them in a world of one).
        let mine = (0..<K).filter { $0 % world.size == world.rank }
        var results: [PhasingRunResult]
        if check != nil || choicePoint != nil {
            var state = [Int: RunState]()
            if let a = choicePoint {
                // Phase 0: every run up to the choice of alternative; then on, each with the
                // alternative chosen or its own, to its check point.
                for (k, s) in parallelMap(mine, workers: workers, { k in startRun(index: k, attempt: 0, checkAt: a, env) }) {
                    state[k] = s
                }
                try Interruption.check()
                let chi2 = try RunExchange.perRun(mine.map { ($0, state[$0]!.checkpoint?.chi2) }, world)
                let kernels = try RunExchange.kernels(mine.map { k in (k, state[k]!.checkpoint?.kernel) }, world)
                var widths = [Int: Double]()
                for k in chi2.keys { widths[k] = kernels[k]?.meanFWHM ?? 0 }
                let made = AlternativeChoice.decide(iteration: a, chi2: chi2, kernelFWHM: widths,
                                                    alternativeOf: (0..<K).map(options.recipe.alternativeNumber(ofRun:)),
                                                    factor: options.alternativeChoiceFactor!)
                choice = made
                for k in made.switched { alternativeOf[k] = made.chosenRun! }
                note(Self.choiceNote(made))
                for k in mine {
                    state[k]!.result.choiceChi2 = chi2[k]
                    state[k]!.result.checkChi2 = []; state[k]!.result.checkFreeLLK = []
                    if made.switched.contains(k) { state[k]!.result.switchedFrom = options.recipe.alternativeNumber(ofRun: k) }
                }
                // A switched run starts from the kernel the chosen alternative's best run has
                // there: a fit from its own iterate, made with another kernel shape, found a
                // narrower one (Lorentzian prisms: 0.62–0.69 px FWHM against 0.82–0.93 px).
                let paused = state, to = alternativeOf, kernel = made.chosenRun.flatMap { kernels[$0] }
                for (k, s) in parallelMap(mine, workers: workers, { k in
                    advanceRun(paused[k]!, to: checkAt(to[k]), alternative: to[k], switching: made.switched.contains(k), kernel: kernel, env)
                }) {
                    state[k] = s
                }
            } else {
                // Phase 1: every run up to its check point.
                for (k, s) in parallelMap(mine, workers: workers, { k in startRun(index: k, attempt: 0, checkAt: checkAt(k), env) }) {
                    state[k] = s
                }
            }
            try Interruption.check()
            // Runs many times worse than the best of the others are stalled. Every decision
            // is taken from the same set of check-point χ² values (every rank's).
            var checkChi2 = try RunExchange.perRun(mine.map { ($0, state[$0]!.checkpoint?.chi2) }, world)
            let firstChi2 = checkChi2
            // A run is judged against the runs of its own recipe alternative (the same steps):
            // at their check points runs of different alternatives are in different phases
            // and intensity models, and their χ² do not say which fits the data. On the
            // Lorentzian prisms the Lorentzian runs (deconvolved) sat at 2× the Gaussian
            // runs' χ² yet ended with 1.5–2× lower free llk, and were restarted as Gaussian
            // runs; on Gaussian blur the reverse (bench/README.md, session 19). Against
            // another alternative's runs only `stallFactorAcrossAlternatives` makes a run
            // stalled (a recipe that does not fit the data at all), and only such a run
            // restarts with the best run's alternative.
            let steps = (0..<K).map { options.recipe.forRun(alternativeOf[$0]).steps }
            func sameAlternative(_ j: Int, _ k: Int) -> Bool { steps[j] == steps[k] }
            var stalled: [Int] = [], stalledAcross: Set<Int> = []
            for k in 0..<K {
                guard let q = firstChi2[k] else { continue }
                let own = firstChi2.filter { $0.key != k && sameAlternative($0.key, k) }.map(\.value).min()
                let other = firstChi2.filter { !sameAlternative($0.key, k) }.map(\.value).min()
                if let own, q > options.stallFactor * own { stalled.append(k) }
                else if let other, q > options.effectiveStallFactorAcrossAlternatives * other {
                    stalled.append(k); stalledAcross.insert(k)
                }
            }
            let across = stalledAcross
            let healthy = firstChi2.filter { !stalled.contains($0.key) }
            // What a stalled run is measured against: the best healthy run of its own
            // alternative, or of the other alternatives when it stalled across them.
            func reference(_ k: Int) -> Double {
                healthy.filter { sameAlternative($0.key, k) != across.contains(k) }.values.min() ?? healthy.values.min() ?? 0
            }
            // A run stalled across alternatives restarts with the recipe alternative of the
            // best run at the check; any other keeps its own.
            let bestRun = healthy.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }?.key
            let bestAlternative = bestRun.map { alternativeOf[$0] }
            let current = alternativeOf
            @Sendable func restartAlternative(_ k: Int) -> Int { across.contains(k) ? bestAlternative ?? current[k] : current[k] }
            var attempt = 0
            while !stalled.isEmpty {
                let restart = attempt < options.stallRestarts
                for k in stalled {
                    let q = checkChi2[k]!, ref = reference(k)
                    let alt = state[k]?.result.alternative ?? alternativeOf[k]
                    let c = checkAt(alt), total = options.recipe.forRun(alt).totalIterations
                    let what = attempt == 0 ? "stalled" : "stalled again after \(attempt) restart\(attempt == 1 ? "" : "s")"
                    let head = String(format: "run %d %@: χ² %.4g at iteration %d of %d is %.1f× the best run's %.4g%@",
                                      k + 1, what, q, c, total, q / max(ref, 1e-300), ref,
                                      options.recipe.alternatives.isEmpty ? "" : across.contains(k) ? " (of another recipe alternative)" : " (of its recipe alternative)")
                    if restart {
                        let a = restartAlternative(k)
                        let with = options.recipe.alternatives.isEmpty || alt == a ? "" :
                            " with the recipe of run \(bestRun! + 1) (alternative \(a % (options.recipe.alternatives.count + 1) + 1))"
                        note(head + "; restarted from a new random start" + with)
                    } else {
                        note(head + "; dropped, its remaining \(total - c) iterations not spent")
                        tracker.finished(run: k)
                        guard var r = state[k]?.result else { continue }
                        r.failure = String(format: "stalled at iteration %d (χ² %.4g, %.1f× the best run's)", c, q, q / max(ref, 1e-300))
                        state[k] = RunState(result: r, checkpoint: nil)
                    }
                }
                guard restart else { break }
                attempt += 1
                let a = attempt
                let again = parallelMap(stalled.filter { state[$0] != nil }, workers: workers) { k in
                    startRun(index: k, attempt: a, checkAt: checkAt(restartAlternative(k)), alternative: restartAlternative(k), env)
                }
                try Interruption.check()
                let restartChi2 = try RunExchange.perRun(again.map { ($0.0, $0.1.checkpoint?.chi2) }, world)
                var still: [Int] = []
                for k in stalled {
                    checkChi2[k] = restartChi2[k]
                    let factor = across.contains(k) && restartAlternative(k) == k
                        ? options.effectiveStallFactorAcrossAlternatives : options.stallFactor
                    if let q = restartChi2[k], q > factor * reference(k) { still.append(k) }
                }
                for (k, s) in again {
                    var s = s
                    let before = state[k]!.result
                    s.result.iterations += before.iterations
                    s.result.restarts = attempt
                    s.result.checkChi2 = before.checkChi2 + s.result.checkChi2
                    s.result.checkFreeLLK = before.checkFreeLLK + s.result.checkFreeLLK
                    s.result.seconds += before.seconds
                    state[k] = s
                }
                stalled = still.sorted()
            }
            // Phase 2: the rest of the recipe for every run still going.
            // Runs still going, and runs of a recipe alternative shorter than the check point
            // (finished in phase 1; `finishRun` takes their engine as it is).
            let going = mine.filter { state[$0].map { !$0.failedBeforeFinish } ?? false }
            let paused = state
            for (k, r) in parallelMap(going, workers: workers, { k in finishRun(paused[k]!, env) }) {
                state[k] = RunState(result: r, checkpoint: nil)
            }
            results = mine.map { state[$0]!.result }
        } else {
            results = parallelMap(mine, workers: workers) { k in
                finishRun(startRun(index: k, attempt: 0, checkAt: options.recipe.forRun(k).totalIterations, env), env)
            }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        try Interruption.check()
        // Every run's metrics on every rank (so all rank them alike), then only the best
        // `keep` runs' objects, to rank 0: nothing else is needed from here on.
        results = try RunExchange.summaries(results, world)
        let ranked = results.filter { $0.metrics != nil }.sorted { $0.score(rankBy) < $1.score(rankBy) }
        guard !ranked.isEmpty else {
            throw PhasingError.invalidData("all \(K) run(s) failed; the first: \(results.first?.failure ?? "unknown")")
        }
        // Of the `keep` best, those far worse than the best in χ² are not merged: averaged in,
        // a run that ended elsewhere (another kernel shape, a stagnated start) drags the first
        // mode away from the best run while the merged χ² can stay within the tolerance.
        // The next run in rank within the tolerance takes such a run's place.
        let bestChi2 = ranked[0].metrics!.chi2
        for r in ranked.prefix(options.keep).dropFirst() where r.metrics!.chi2 > options.keepTolerance * bestChi2 {
            note(String(format: "run %d not merged: its χ² %.4g is %.2f× the best run's (over %.2g×)", r.index + 1, r.metrics!.chi2,
                        r.metrics!.chi2 / bestChi2, options.keepTolerance))
        }
        let keptRanked = Array(([ranked[0]] + ranked.dropFirst().filter { $0.metrics!.chi2 <= options.keepTolerance * bestChi2 }).prefix(options.keep))
        let keepIdx = Set(keptRanked.map(\.index))
        for j in results.indices where !keepIdx.contains(results[j].index) { results[j].object = nil; results[j].support = nil }
        guard try RunExchange.keptObjects(&results, kept: keepIdx, world) else { return nil }
        let keptRuns = keptRanked.map { r in results.first { $0.index == r.index }! }
        if ranked.count < options.keep {
            note("only \(ranked.count) run(s) finished, fewer than the \(options.keep) to keep")
        }
        progress?(ProgressReport(stage: "aligning \(keptRuns.count) best run(s)", done: 0, total: keptRuns.count))
        let best = keptRuns[0]
        let support = best.support!
        var result = PhasingResult(object: best.object!, support: support, runs: results, kept: keptRuns.map(\.index),
                                   spread: 0, twinned: [], ramp: best.ramp, metrics: best.metrics!,
                                   recipe: options.recipe, options: options)
        result.psf = best.psf
        result.alternativeChoice = choice
        if keptRuns.count > 1 {
            var aligned: [ComplexVolume] = [best.object!]
            // The union of the kept runs' supports, each moved as its run was (twin, shift):
            // where the first mode lives, and the support its refinement keeps.
            var union = support
            // Each run aligned in the data frame: its own removed ramp put back relative to the
            // best run's (so that with the best run's ramp it fits the data as it did), then
            // twin, Fourier shift and global phase, which all keep its pattern's modulus in
            // place. Matching the runs' ramps to each other instead (from their phase
            // difference) moved a run's pattern off the measured one: on scan 54 at 64³ the
            // second kept run's χ² rose 15% (0.00968 → 0.01109) against 2% this way.
            for r in keptRuns.dropFirst() {
                let a = try PhasingPost.align(r.object!.removingPhaseRamp(best.ramp - r.ramp), onto: best.object!,
                                              matchingRamps: false)
                if a.twinned { result.twinned.append(r.index) }
                aligned.append(a.object)
                let moved = try (a.twinned ? r.support!.twin() : r.support!).fourierShifted(by: a.shift).thresholded(above: 0.5)
                union.withUnsafeMutableFloats { u in moved.withUnsafeFloats { m in
                    for i in 0..<u.count where m[i] > 0 { u[i] = 1 }
                } }
            }
            let modes = try RunMerging.firstMode(of: aligned)
            var mode = PhasingPost.zeroingGlobalPhase(modes.mode)
            result.modeWeights = modes.weights
            var s2 = 0.0
            for a in aligned { let e = try PhasingPost.normalisedError(a, mode); s2 += e * e }
            result.spread = (s2 / Double(aligned.count)).squareRoot()
            // χ² of exactly the first mode (no support applied), in the data's frame: the best
            // run's ramp put back (the modulus ignores the shift that centred it).
            // The same intensity model as the runs: the best run's point-spread function.
            var mergedMetrics = try metricsOfObject(mode, ramp: best.ramp, data: data, psf: best.psf, threads: threads)
            result.firstModeChi2 = mergedMetrics.chi2
            result.alignedChi2 = try aligned.map { try metricsOfObject($0, ramp: best.ramp, data: data, psf: best.psf, threads: threads).chi2 }
            let bestChi2 = best.metrics!.chi2
            var head = String(format: "first mode of %d aligned runs (weight %.3f): χ² %.5g, %.3f× the best run's %.5g (aligned runs' χ² %@)",
                              aligned.count, result.modeWeight, mergedMetrics.chi2, mergedMetrics.chi2 / max(bestChi2, 1e-300), bestChi2,
                              result.alignedChi2.map { String(format: "%.5g", $0) }.joined(separator: ", "))
            // How the runs differ from the best: in all, and in the moduli alone (shape vs phase).
            let apart = try aligned.dropFirst().map { a in
                String(format: "%.3f (moduli %.3f)", try PhasingPost.normalisedError(a, aligned[0]), try PhasingPost.modulusError(a, aligned[0]))
            }
            head += "; aligned runs' normalised error against the best run " + apart.joined(separator: ", ")
            if let r = options.mergeRefinement, r.totalIterations > 0 {
                let recipe = RunMerging.withFixedSupport(r)
                let refined = try RunMerging.refine(mode, support: union, ramp: best.ramp, data: data, psf: best.psf,
                                                    recipe: recipe, freeFraction: options.freeFraction, freeSeed: freePixelSeed(options.seed),
                                                    threads: threads)
                let change = try PhasingPost.normalisedError(refined.object, mode)
                head += String(format: "; refined (%@, the kept runs' union support, the best run's point-spread function) to χ² %.5g, moving it by %.3f (normalised error)",
                               recipe.description, refined.metrics.chi2, change)
                let distances = try aligned.map { String(format: "%.3f", try PhasingPost.normalisedError(refined.object, $0)) }
                head += "; refined object against the aligned runs: " + distances.joined(separator: ", ")
                // The refinement is kept only when it fits better: a first mode that already
                // fits as well as the runs is not pulled towards one of them.
                if refined.metrics.chi2 < mergedMetrics.chi2 {
                    result.refinementChange = change
                    result.mergeRefinement = recipe
                    mode = refined.object
                    mergedMetrics = refined.metrics
                } else {
                    head += "; not kept (no better than the first mode)"
                }
            }
            result.mergedChi2 = mergedMetrics.chi2
            let ratio = mergedMetrics.chi2 / max(bestChi2, 1e-300)
            head += String(format: "; merged χ² %.5g, %.3f× the best run's", mergedMetrics.chi2, ratio)
            if ratio <= options.mergeTolerance {
                result.object = mode; result.metrics = mergedMetrics; result.merged = true
                result.support = union
                note(head + (ratio > 1 ? String(format: "; worse than the best run but within the %.2f× tolerance: the merged object is written", options.mergeTolerance)
                                       : "; the merged object is written"))
            } else {
                note(head + String(format: "; above the %.2f× tolerance: the best run (run %d) is written instead", options.mergeTolerance, best.index + 1))
            }
        }
        progress?(ProgressReport(stage: "aligning \(keptRuns.count) best run(s)", done: keptRuns.count, total: keptRuns.count))
        // The support tightened, kept when the withheld pixels are predicted better.
        if !options.supportTightening.isEmpty, options.freeFraction == 0,
           options.recipe.forRun(best.alternative).steps.contains(where: { $0.shrinkWrapEvery > 0 }) {
            note("no final pass in a tightened support: no pixels are withheld to judge it by (free fraction 0)")
        }
        if !options.supportTightening.isEmpty, options.freeFraction > 0,
           let last = options.recipe.forRun(best.alternative).steps.last(where: { $0.shrinkWrapEvery > 0 }) {
            progress?(ProgressReport(stage: "final pass in a tightened support", done: 0, total: 1))
            let reference = last.reference ?? options.shrinkWrap.reference
            // A best run that modelled almost no blur while another run found one: its kernel
            // is tried too (on Gaussian blur a Lorentzian-recipe run can win with a near-coherent
            // kernel when every Gaussian run lost; bench/README.md, session 19).
            let other = Self.blurredKernelRun(best: best, runs: results)
            let kernels = [best.psf] + (other.map { [$0.psf] } ?? [])
            let t = try RunMerging.finalPass(result.object, support: result.support, ramp: best.ramp, data: data, kernels: kernels,
                                             sigmas: options.supportTightening, threshold: last.threshold, reference: reference,
                                             recipe: options.supportTighteningRecipe, freeFraction: options.freeFraction,
                                             freeSeed: freePixelSeed(options.seed), threads: threads)
            let kept = t.candidates[t.best].metrics.freeLLK < t.before.freeLLK
            var tightening = SupportTightening(before: t.before, candidates: t.candidates, chosen: t.best, kept: kept)
            tightening.kernels = kernels; tightening.otherKernelRun = other?.index
            result.tightening = tightening
            let passes = t.candidates.map { c in
                String(format: "%@%@: %d voxels, free llk %.5g, χ² %.5g", c.sigma.map { String(format: "σ %g", $0) } ?? "own support",
                       c.kernel == 0 ? "" : " with run \(other!.index + 1)'s kernel",
                       c.metrics.supportVoxels, c.metrics.freeLLK, c.metrics.chi2)
            }.joined(separator: "; ")
            let kernelText = other.map { o in
                "the best run's point-spread function (\(best.psf?.description ?? "none")) and, as it models almost no blur, run \(o.index + 1)'s (\(o.psf!.description))"
            } ?? "the best run's point-spread function"
            let head = String(format: "final pass (%@, support fixed, %@, from the written object: %d voxels, free llk %.5g, χ² %.5g) in its own support and tightened by one shrink-wrap at %.2g of the %@ with each smoothing σ: %@",
                              options.supportTighteningRecipe.description, kernelText, t.before.supportVoxels, t.before.freeLLK, t.before.chi2,
                              last.threshold, reference == .rms ? "RMS" : "maximum", passes)
            if kept {
                result.object = t.object; result.support = t.support; result.metrics = tightening.best.metrics
                result.psf = tightening.best.psf
                let which = (tightening.best.sigma.map { String(format: "the support tightened with σ %g", $0) } ?? "its own support")
                    + (tightening.best.kernel == 0 ? "" : " with run \(other!.index + 1)'s kernel")
                note(head + "; in \(which) the withheld pixels are predicted best: that object is written")
            } else {
                note(head + "; not kept (none predicts the withheld pixels better than the object as it stood)")
            }
            progress?(ProgressReport(stage: "final pass in a tightened support", done: 1, total: 1))
        }
        if data.originalShape.count == 2 {
            result.object = try result.object.reshaped(data.originalShape)
            result.support = try result.support.reshaped(data.originalShape)
        }
        result.notes = notes
        return result
    }

    /// Below this mean FWHM (pixels) a fitted kernel models almost no blur: on the coherent
    /// 64³ prisms the fits stay under 0.23 px, and on σ 0.35 px Gaussian blur a Lorentzian
    /// fit finds 0.06–0.25 px where the Gaussian fits find 0.78–0.95 px.
    public static let nearCoherentFWHM = 0.3
    /// From this mean FWHM (pixels) on, a run's kernel counts as a blur found.
    public static let blurFoundFWHM = 0.5

    /// The run whose kernel the final pass tries beside the best run's: when the best run's
    /// kernel models almost no blur (mean FWHM under `nearCoherentFWHM`, or none), the
    /// finished run of lowest free log-likelihood whose kernel has a mean FWHM of at least
    /// `blurFoundFWHM`; nil otherwise (the final pass needs free pixels). On Gaussian blur every Gaussian
    /// run can lose to a Lorentzian-recipe run whose kernel is near-coherent; the blur the
    /// Gaussian runs found is then the better model for the final pass.
    static func blurredKernelRun(best: PhasingRunResult, runs: [PhasingRunResult]) -> PhasingRunResult? {
        guard (best.psf?.meanFWHM ?? 0) < nearCoherentFWHM else { return nil }
        return runs.filter { $0.metrics != nil && $0.index != best.index && ($0.psf?.meanFWHM ?? 0) >= blurFoundFWHM }
            .min { $0.score(.freeLLK) < $1.score(.freeLLK) }
    }

    /// Metrics of a centred object as it stands (no support applied) against all measured
    /// pixels, a removed ramp `ramp` put back first.
    /// `psf`: the partial-coherence model the runs ended with (nil: coherent).
    public static func metricsOfObject(_ object: ComplexVolume, ramp: PhaseRamp, data: PhasingData,
                                       psf: PointSpreadFunction? = nil,
                                       threads: Int = Parallel.threads) throws -> PhasingMetrics {
        let everywhere = FloatStorage(count: data.count)
        for i in 0..<data.count { everywhere.pointer[i] = 1 }
        let engine = try PhasingEngine(data: data, supportFFTOrder: everywhere, threads: threads)
        if let psf { try engine.applyPSF(.fixed(psf)) }
        try object.reshaped(data.shape).removingPhaseRamp(-ramp).ifftshifted()
            .withUnsafeFloats { p in engine.start(from: p.baseAddress!) }
        var m = engine.finalMetrics()
        m.supportVoxels = object.modulus().nonzeroCount()
        return m
    }

    /// `body` over `items` on up to `workers` threads, items handed out in order as threads
    /// free up; the results paired with their items.
    static func parallelMap<T: Sendable>(_ items: [Int], workers: Int, _ body: @escaping @Sendable (Int) -> T) -> [(Int, T)] {
        let box = ResultBox<T>(items)
        let w = min(workers, items.count)
        let run: @Sendable (Int) -> Void = { _ in
            while let k = box.next() {
                if Interruption.requested { return }
                box.put(k, body(k))
            }
        }
        if w > 1 { DispatchQueue.concurrentPerform(iterations: w, execute: run) } else { run(0) }
        return box.results
    }

    /// The seed of start `attempt` of run `k`: the first start keeps the seed runs have
    /// always had; a restart draws from another stream of the same user seed.
    /// The seed of the free pixels every run of a job withholds.
    static func freePixelSeed(_ seed: UInt64) -> UInt64 { PhasingRNG.runSeed(seed ^ 0xF4EE_F4EE_0000_0001, run: 0) }

    static func startSeed(_ seed: UInt64, run k: Int, attempt: Int) -> UInt64 {
        attempt == 0 ? PhasingRNG.runSeed(seed, run: k)
            : PhasingRNG.runSeed(seed ^ (0xA076_1D64_78BD_642F &* UInt64(attempt)), run: k)
    }

    /// A fresh random start of run `k` through the first `c` iterations of the recipe. At
    /// `c` < total it returns a check point: the iterate and support (FFT order), and χ² of
    /// P_S ρ there; at the end of the recipe the finished run (via `finishRun`).
    static func startRun(index k: Int, attempt: Int, checkAt c: Int, alternative: Int? = nil, _ env: RunEnvironment) -> RunState {
        let seed = startSeed(env.options.seed, run: k, attempt: attempt)
        var result = PhasingRunResult(index: k, seed: seed, alternative: alternative ?? k)
        let t0 = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 }
        let total = env.options.recipe.forRun(result.alternative).totalIterations
        do {
            let engine = try PhasingEngine(data: env.data, supportFFTOrder: env.support, threads: env.threads)
            var free = PhasingRNG(seed: freePixelSeed(env.options.seed))
            engine.withholdFreePixels(fraction: env.options.freeFraction, rng: &free)
            var rng = PhasingRNG(seed: seed)
            engine.randomStart(rng: &rng)
            if attempt == 0, let hook = env.options.startOverride { hook(k, engine) }
            result.iterations = min(c, total)
            if c >= total {
                try runPart(engine, from: 0, to: total, env, run: k, alternative: result.alternative)
                result.seconds = elapsed()
                var s = RunState(result: result, checkpoint: nil)
                s.engine = engine
                return s
            }
            try runPart(engine, from: 0, to: c, env, run: k, alternative: result.alternative)
            let cp = pause(engine, seed: seed, at: c, history: engine.chi2History, &result)
            result.seconds = elapsed()
            return RunState(result: result, checkpoint: cp)
        } catch {
            result.failure = (error as? PhasingError)?.description ?? String(describing: error)
            result.seconds = elapsed()
            return RunState(result: result, checkpoint: nil)
        }
    }

    /// The check point of a run paused after iteration `c`. ρ itself is kept (HIO and RAAR go
    /// on from it); χ² and the free log-likelihood are those of P_S ρ (recorded in `result`).
    static func pause(_ engine: PhasingEngine, seed: UInt64, at c: Int, history: [(iteration: Int, chi2: Double)],
                      _ result: inout PhasingRunResult) -> RunCheckpoint {
        let rho = engine.rho.copyForPhasing(), support = engine.supportStorage()
        let setting = engine.lastPSFSetting, mode = engine.psfMode, kernel = engine.pointSpreadFunction
        let m = engine.finalMetrics()
        result.checkChi2 = [m.chi2]
        result.checkFreeLLK = [m.freeLLK]
        return RunCheckpoint(seed: seed, rho: rho, support: support, history: history, chi2: m.chi2, iteration: c,
                             psfSetting: setting, psfMode: mode, kernel: kernel)
    }

    /// A new engine holding a paused run: its iterate and support, the job's free pixels, and
    /// its partial-coherence state — or, with `psf`, that setting, mode and kernel (with no
    /// kernel, one is fitted in that form from the iterate before it is used).
    static func resumedEngine(_ cp: RunCheckpoint, _ env: RunEnvironment,
                              psf: (setting: PSFSetting?, mode: PSFMode, kernel: PointSpreadFunction?)? = nil) throws -> PhasingEngine {
        let engine = try PhasingEngine(data: env.data, supportFFTOrder: cp.support, threads: env.threads)
        var free = PhasingRNG(seed: freePixelSeed(env.options.seed))
        engine.withholdFreePixels(fraction: env.options.freeFraction, rng: &free)
        engine.start(from: cp.rho.pointer)
        if let psf {
            try engine.restorePSF(setting: psf.setting, mode: psf.mode, kernel: psf.kernel)
        } else {
            try engine.restorePSF(setting: cp.psfSetting, mode: cp.psfMode, kernel: cp.kernel)
        }
        return engine
    }

    /// A run paused at the choice of alternative taken on to iteration `c` of `alternative`'s
    /// recipe (a run index for `Recipe.forRun`): paused again there, or finished when `c` is
    /// that recipe's end. `switching`: the run goes on with another alternative's steps from
    /// its own iterate, with that alternative's partial-coherence setting and mode there and
    /// `kernel` (nil: one fitted afresh in that form); `kernel` is ignored otherwise.
    static func advanceRun(_ state: RunState, to c: Int, alternative: Int, switching: Bool, kernel: PointSpreadFunction?,
                           _ env: RunEnvironment) -> RunState {
        guard let cp = state.checkpoint else { return state }
        var result = state.result
        result.alternative = alternative
        let t0 = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 }
        let recipe = env.options.recipe.forRun(alternative), end = min(c, recipe.totalIterations)
        do {
            let inForce = recipe.psfInForce(after: cp.iteration)
            let engine = try resumedEngine(cp, env, psf: switching ? (inForce.setting, inForce.mode, kernel) : nil)
            try runPart(engine, from: cp.iteration, to: end, env, run: result.index, alternative: alternative)
            let history = cp.history + engine.chi2History.map { (iteration: $0.iteration + cp.iteration, chi2: $0.chi2) }
            result.iterations += end - cp.iteration
            if end == recipe.totalIterations {
                result.checkChi2 = []; result.checkFreeLLK = []
                result.seconds += elapsed()
                var s = RunState(result: result, checkpoint: nil)
                s.engine = engine; s.engineHistory = (cp.iteration, cp.history)
                return s
            }
            let next = pause(engine, seed: cp.seed, at: end, history: history, &result)
            result.seconds += elapsed()
            return RunState(result: result, checkpoint: next)
        } catch {
            result.failure = (error as? PhasingError)?.description ?? String(describing: error)
            result.seconds += elapsed()
            return RunState(result: result, checkpoint: nil)
        }
    }

    /// The note that reports a choice of recipe alternative.
    static func choiceNote(_ c: AlternativeChoice) -> String {
        let bests = c.bestChi2.sorted { $0.key < $1.key }.map {
            String(format: "alternative %d %.4g, kernel FWHM %.2f px", $0.key + 1, $0.value, c.kernelFWHM[$0.key] ?? 0)
        }.joined(separator: "; ")
        let head = "recipe alternatives compared at iteration \(c.iteration) (each one's best run: χ² of P_S ρ \(bests))"
        guard let chosen = c.chosen, let run = c.chosenRun else {
            return head + (c.bestChi2.count < 2 ? "; fewer than two alternatives' runs got there, every run keeps its own"
                                                : "; none is ahead by the factor, every run keeps its own")
        }
        let runs = c.switched.map { "\($0 + 1)" }.joined(separator: ", ")
        let why = c.byBlur ? String(format: "alternative %d (run %d's) found a blur where the others' kernels model almost none", chosen + 1, run + 1)
            : String(format: "alternative %d (run %d's) is %.2f× ahead in χ²", chosen + 1, run + 1, c.margin ?? 1)
        return head + "; " + why + ": "
            + (c.switched.isEmpty ? "every run already follows it"
               : (c.switched.count == 1 ? "run \(runs) goes on with it from its own iterate" : "runs \(runs) go on with it from their own iterate")
                 + ", with run \(run + 1)'s point-spread function")
    }

    /// The rest of a run from its check point (or, with `from` = total, the engine the start
    /// left), then its final metrics and the reporting frame.
    static func finishRun(_ state: RunState, _ env: RunEnvironment) -> PhasingRunResult {
        var result = state.result
        guard state.failedBeforeFinish == false else { env.tracker.finished(run: result.index); return result }
        let k = result.index
        let t0 = DispatchTime.now().uptimeNanoseconds
        do {
            let (object, supportVolume, m, history, psf) = try { () throws -> (ComplexVolume, RealVolume, PhasingMetrics, [(iteration: Int, chi2: Double)], PointSpreadFunction?) in
                let engine: PhasingEngine
                var history: [(iteration: Int, chi2: Double)] = []
                if let cp = state.checkpoint {
                    let c = cp.iteration
                    engine = try resumedEngine(cp, env)
                    let total = env.options.recipe.forRun(result.alternative).totalIterations
                    try runPart(engine, from: c, to: total, env, run: k, alternative: result.alternative)
                    history = cp.history + engine.chi2History.map { (iteration: $0.iteration + c, chi2: $0.chi2) }
                    result.iterations += total - c
                } else {
                    engine = state.engine!
                    let (from, before) = state.engineHistory ?? (0, [])
                    history = before + engine.chi2History.map { (iteration: $0.iteration + from, chi2: $0.chi2) }
                }
                let m = engine.finalMetrics()
                return (engine.object, engine.supportVolume, m, history, engine.pointSpreadFunction)
            }()
            result.metrics = m
            result.psf = psf
            result.chi2History = history
            let framed = try PhasingPost.reportingFrame(object: object, support: supportVolume)
            result.ramp = framed.ramp
            result.roll = framed.roll
            result.object = framed.object
            result.support = framed.support
        } catch let e as PhasingError {
            result.failure = e.description
        } catch {
            result.failure = String(describing: error)
        }
        result.seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        env.tracker.finished(run: k)
        return result
    }

    /// Iterations `from..<to` of the recipe on `engine`, exactly as the whole recipe would run
    /// them: the steps cut to that range, the shrink-wrap σ schedule mapped onto it, and the
    /// shrink-wrap the whole recipe does after iteration `to` (the part's own last iteration
    /// skips it) done here. `from` must fall on a shrink-wrap boundary of its step.
    static func runPart(_ engine: PhasingEngine, from: Int, to: Int, _ env: RunEnvironment, run k: Int, alternative: Int) throws {
        let recipe = env.options.recipe.forRun(alternative), total = recipe.totalIterations
        let schedule = env.options.shrinkWrap
        if from == 0 && to == total {
            try engine.run(recipe: recipe, shrinkWrap: schedule, reportEvery: env.options.reportEvery, runIndex: k) { it, alg, chi2 in
                env.tracker.update(run: k, iteration: it, algorithm: alg, chi2: chi2)
            }
            return
        }
        var steps: [RecipeStep] = []
        var start = 0
        var stepAtEnd: (step: RecipeStep, index: Int)? = nil
        for step in recipe.steps {
            let lo = max(from, start), hi = min(to, start + step.iterations)
            if lo < hi { var s = step; s.iterations = hi - lo; steps.append(s) }
            if to > start && to <= start + step.iterations { stepAtEnd = (step, to - 1 - start) }
            start += step.iterations
        }
        // σ(x) = σ₀ + (σ₁ − σ₀)·x/(T − 1) of the whole recipe, over the part's L iterations.
        func sigma(_ x: Int) -> Double { schedule.sigma(at: x, of: total) }
        var part = schedule
        part.sigmaStart = sigma(from); part.sigmaEnd = sigma(to - 1)
        try engine.run(recipe: Recipe(steps: steps), shrinkWrap: part, reportEvery: env.options.reportEvery, runIndex: k) { it, alg, chi2 in
            env.tracker.update(run: k, iteration: from + it, algorithm: alg, chi2: chi2)
        }
        if to < total, let e = stepAtEnd, e.step.shrinkWrapEvery > 0, (e.index + 1) % e.step.shrinkWrapEvery == 0 {
            let step = e.step
            let voxels = engine.shrinkWrap(sigma: sigma(to), threshold: step.threshold, reference: step.reference ?? schedule.reference)
            if voxels < schedule.minimumVoxels { throw PhasingError.supportCollapsed(run: k, iteration: to, voxels: voxels) }
            let f = Double(voxels) / Double(engine.count)
            if f > schedule.maximumFraction { throw PhasingError.supportFilled(run: k, iteration: to, fraction: f) }
        }
    }
}

/// Where the stalled-run check happens.
enum StallCheck {
    /// The iteration after which runs are compared: `fraction` of the recipe, moved to the
    /// nearest multiple (from the start of its step) of the step's shrink-wrap period and of
    /// the χ² reporting period, so that the rest of the recipe runs as it would have. Nil
    /// when the check is off or falls at the very start or end.
    static func point(recipe: Recipe, reportEvery: Int, fraction: Double) -> Int? {
        let total = recipe.totalIterations
        guard fraction > 0, fraction < 1, total > 1 else { return nil }
        let target = Int((fraction * Double(total)).rounded())
        var start = 0
        for step in recipe.steps {
            if target < start + step.iterations {
                let m = lcm(max(step.shrinkWrapEvery, 1), max(reportEvery, 1))
                let inStep = Int((Double(target - start) / Double(m)).rounded()) * m
                let c = start + min(inStep, step.iterations)
                return c > 0 && c < total ? c : nil
            }
            start += step.iterations
        }
        return nil
    }

    static func lcm(_ a: Int, _ b: Int) -> Int {
        func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
        return a / gcd(a, b) * b
    }
}

/// What every run of a job shares.
struct RunEnvironment: @unchecked Sendable {
    let data: PhasingData
    let support: FloatStorage
    let options: PhasingOptions
    let threads: Int
    let tracker: ProgressTracker
}

/// A run paused at the stall check: its iterate and support (FFT order), its χ² history and
/// χ² of P_S ρ there. Resumed on a new engine with the same free pixels (same seed).
struct RunCheckpoint: @unchecked Sendable {
    let seed: UInt64
    let rho: FloatStorage
    let support: FloatStorage
    let history: [(iteration: Int, chi2: Double)]
    let chi2: Double
    /// The iteration the run paused after.
    let iteration: Int
    /// The partial-coherence state there: the last `psf` setting, the `psfmode` and the
    /// kernel in use (a fitted one is resumed, not fitted again from nothing).
    let psfSetting: PSFSetting?
    let psfMode: PSFMode
    let kernel: PointSpreadFunction?
}

/// A run between the phases: its result so far, its check point, or (with no check) the
/// engine that ran the whole recipe.
struct RunState: @unchecked Sendable {
    var result: PhasingRunResult
    var checkpoint: RunCheckpoint?
    var engine: PhasingEngine? = nil
    /// For an engine resumed from a check point: the iteration it resumed at and the χ²
    /// history before it.
    var engineHistory: (Int, [(iteration: Int, chi2: Double)])? = nil
    var failedBeforeFinish: Bool { checkpoint == nil && engine == nil }
}

final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [Int]
    private var done: [(Int, T)] = []
    init(_ items: [Int]) { queue = items.reversed() }
    func next() -> Int? { lock.lock(); defer { lock.unlock() }; return queue.popLast() }
    func put(_ k: Int, _ v: T) { lock.lock(); done.append((k, v)); lock.unlock() }
    var results: [(Int, T)] { lock.lock(); defer { lock.unlock() }; return done.sorted { $0.0 < $1.0 } }
}

extension PhasingEngine {
    /// The support as 0/1 floats in FFT order (the form an engine is built from).
    func supportStorage() -> FloatStorage {
        let st = FloatStorage(count: count)
        for i in 0..<count { st.pointer[i] = Float(support[i]) }
        return st
    }
}

/// Turns per-run iteration reports into progress reports for the handler.
final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private let runs: Int, total: Int, concurrent: Bool
    private let handler: ProgressHandler?
    private var doneByRun: [Int]
    /// The runs this process runs (its share when they are spread over ranks).
    private let counted: Int

    init(runs: Int, total: Int, concurrent: Bool, handler: ProgressHandler?, counted: Int? = nil) {
        self.runs = runs; self.total = total; self.concurrent = concurrent; self.handler = handler
        self.counted = counted ?? runs
        doneByRun = [Int](repeating: 0, count: runs)
    }

    func update(run k: Int, iteration: Int, algorithm: PhasingAlgorithm, chi2: Double) {
        guard let handler else { return }
        lock.lock()
        doneByRun[k] = iteration
        let sum = doneByRun.reduce(0, +)
        lock.unlock()
        if concurrent {
            handler(ProgressReport(stage: counted == runs ? "phasing \(runs) runs" : "phasing \(counted) of \(runs) runs here",
                                   done: sum, total: counted * total,
                                   metrics: [("run", Double(k + 1)), ("chi2", chi2)]))
        } else {
            handler(ProgressReport(stage: "run \(k + 1)/\(runs) \(algorithm.rawValue)", done: iteration, total: total,
                                   metrics: [("chi2", chi2)]))
        }
    }

    func finished(run k: Int) {
        lock.lock(); doneByRun[k] = total; lock.unlock()
    }
}
