import ArgumentParser
import BraggKit
import Foundation

// Options several commands (or both methods of one command) share, declared once as
// option groups. Each group turns its values into the library's types; the messages that
// name a flag are made here, never in the library.

/// The pattern to phase and its mask (`bragg phase`).
struct PatternOptions: ParsableArguments {
    @Argument(help: "The pattern: FILE or FILE:DATASET (.npy, .npz, .h5, .cxi).")
    var pattern: String

    @Option(help: "Bad-pixel mask of the pattern's shape (nonzero = bad).")
    var mask: String?
}

/// One output file of a reconstruction and whether it may replace one.
struct OutputFileOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output: .h5/.cxi (CXI results) or .npy (complex object).")
    var out: String

    @Flag(help: "Replace an existing output file.")
    var force = false
}

/// An output folder and whether its outputs may be replaced (`bragg analyze`, `bragg simulate operando|scans`).
struct OutputFolderOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output folder (created if missing).")
    var out: String

    @Flag(help: "Replace existing outputs.")
    var force = false
}

/// The names of the options of a group given a value other than their default.
protocol MethodOptions: ParsableArguments {
    /// (flag, whether it differs from `defaults`) for every option of the group, in help order.
    func differences(from defaults: Self) -> [(String, Bool)]
}

extension MethodOptions {
    /// The group as parsed from nothing: the defaults declared on the options themselves.
    static func defaults() throws -> Self { try Self.parse([]) }

    /// The options given a value other than their default.
    func optionsGiven() throws -> [String] { differences(from: try Self.defaults()).filter(\.1).map(\.0) }
}

/// `bragg phase --method iterative`: the recipe, the runs and how they are ranked and merged.
struct IterativeOptions: MethodOptions {
    @Option(help: "Algorithm recipe (see the description above).")
    var recipe: String = Recipe.defaultString

    @Option(help: "Independent random starts.")
    var runs: Int = 1

    @Option(help: "Best runs aligned and merged by mode decomposition into the result (≤ --runs).")
    var keep: Int = 1

    @Option(help: "Random seed (the same seed gives the same result).")
    var seed: UInt64 = 1

    @Option(help: "Initial support: auto (autocorrelation), auto:T (threshold fraction T), box:Z,Y,X, sphere:R (voxels), or FILE[:DATASET] (nonzero inside, centred).")
    var support: String = "auto"

    @Option(name: .customLong("sigma"), help: "Shrink-wrap Gaussian σ in voxels, START,END (decays linearly over the recipe).")
    var sigma: String = "\(ShrinkWrapSchedule().sigmaStart),\(ShrinkWrapSchedule().sigmaEnd)"

    @Option(name: .customLong("threshold-reference"), help: "What the shrink-wrap threshold is a fraction of: max (of the blurred modulus) or rms (over the support; robust to a bright spot, e.g. with a gap through the Bragg peak).")
    var thresholdReference: ShrinkWrapReference = .maximum

    @Option(name: .customLong("free-fraction"), help: "Fraction of measured pixels withheld for the free log-likelihood (0–0.2; 0 disables).")
    var freeFraction: Double = 0.04

    @Option(name: .customLong("rank-by"), help: "Metric ranking the runs: free-llk (the default; llk when --free-fraction is 0), llk or chi2.")
    var rankBy: PhasingRankMetric?

    @Option(name: .customLong("stall-check"), help: "Fraction of the recipe after which stalled runs are found (0 turns the check off): a run whose chi2 is more than --stall-factor times the best of the other runs of its recipe alternative (or 5 times, and at least --stall-factor times, the best of another alternative's runs) is restarted from a new random start (--stall-restarts times; with the best run's alternative when it stalled against another alternative), then dropped.")
    var stallCheck: Double = PhasingOptions().stallCheckFraction

    @Option(name: .customLong("stall-factor"), help: "How many times the best chi2 of the other runs of its recipe alternative makes a run stalled.")
    var stallFactor: Double = PhasingOptions().stallFactor

    @Option(name: .customLong("stall-restarts"), help: "New random starts a stalled run gets before it is dropped.")
    var stallRestarts: Int = 1

    @Option(name: .customLong("alternative-choice"), help: "Where the recipe has alternatives (the default: gaussian | lorentzian), every run pauses where they part (iteration 600 of the default, while each fits its own point-spread function to the data) and they are compared: when an alternative's kernel models almost no blur while another's found one, or its best chi2 is more than this factor times another's, its runs go on with the better alternative from their own iterate (\"off\": every run keeps its own alternative).")
    var alternativeChoice: String = PhasingOptions().alternativeChoiceFactor.map { "\($0)" } ?? "off"

    /// The factor of --alternative-choice (nil: off), or a reason it is not one.
    static func alternativeChoiceFactor(_ text: String) -> Result<Double?, ValidationError> {
        if text.lowercased() == "off" { return .success(nil) }
        guard let f = Double(text), f >= 1, f.isFinite else {
            return .failure(ValidationError("--alternative-choice must be a ratio of chi2 of at least 1, or off (got '\(text)')"))
        }
        return .success(f)
    }

    @Option(name: .customLong("merge-tolerance"), help: "The first mode of the kept runs is written when its chi2 is at most this many times the best run's; otherwise the best run is written (1 = never worse than the best run).")
    var mergeTolerance: Double = 1.1

    @Option(name: .customLong("merge-refine"), help: "Recipe refining the first mode of the kept runs against the data before it is compared with the best run (support fixed to the kept runs' union, point-spread function to the best run's; kept only when it lowers chi2; \"none\" for no refinement).")
    var mergeRefine: String = "ER:50"

    @Option(name: .customLong("tighten-support"), help: "A final pass over the written object: --tighten-recipe (support fixed) in its own support and in supports tightened by one shrink-wrap with each of these smoothing sigmas (voxels, comma-separated), with the best run's point-spread function (and, when that models almost no blur while another run found one, with that run's too); the pass whose withheld pixels' free log-likelihood is lowest is written when it is lower than the object's as it stood (\"none\": no final pass; needs --free-fraction above 0).")
    var tightenSupport: String = PhasingOptions().supportTightening.isEmpty ? "none" : PhasingOptions().supportTightening.map { "\($0)" }.joined(separator: ",")

    @Option(name: .customLong("tighten-recipe"), help: "Recipe of the final pass of --tighten-support (shrink-wrap off in every step).")
    var tightenRecipe: String = PhasingOptions.defaultTighteningRecipe.description

    /// The σ list of --tighten-support (empty for none), nil when it is not one.
    static func tighteningSigmas(_ text: String) -> [Double]? {
        if text.lowercased() == "none" { return [] }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0.map { $0 > 0 && $0.isFinite } ?? false }) else { return nil }
        return parts.map { $0! }
    }

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
        _ = try Self.alternativeChoiceFactor(alternativeChoice).get()
        guard Self.tighteningSigmas(tightenSupport) != nil else {
            throw ValidationError("--tighten-support must be smoothing sigmas in voxels above 0, comma-separated, or none (got '\(tightenSupport)')")
        }
        if tightenSupport.lowercased() == "none" && tightenRecipe != PhasingOptions.defaultTighteningRecipe.description {
            throw ValidationError("--tighten-recipe applies only to the final pass, which --tighten-support none turns off")
        }
    }

    func differences(from d: IterativeOptions) -> [(String, Bool)] {
        [("--recipe", recipe != d.recipe), ("--runs", runs != d.runs), ("--keep", keep != d.keep),
         ("--seed", seed != d.seed), ("--support", support != d.support), ("--sigma", sigma != d.sigma),
         ("--threshold-reference", thresholdReference != d.thresholdReference),
         ("--free-fraction", freeFraction != d.freeFraction), ("--rank-by", rankBy != d.rankBy),
         ("--stall-check", stallCheck != d.stallCheck), ("--stall-factor", stallFactor != d.stallFactor),
         ("--stall-restarts", stallRestarts != d.stallRestarts), ("--alternative-choice", alternativeChoice != d.alternativeChoice),
         ("--merge-tolerance", mergeTolerance != d.mergeTolerance),
         ("--merge-refine", mergeRefine != d.mergeRefine), ("--tighten-support", tightenSupport != d.tightenSupport),
         ("--tighten-recipe", tightenRecipe != d.tightenRecipe)]
    }

    /// The library's options (all but the initial support, which may read a file).
    func phasingOptions() throws -> PhasingOptions {
        var options = PhasingOptions()
        options.recipe = try Recipe.parse(recipe)
        options.runs = runs; options.keep = keep; options.seed = seed
        options.freeFraction = freeFraction
        if let r = rankBy { options.rankBy = r }
        options.stallCheckFraction = stallCheck; options.stallFactor = stallFactor
        options.stallRestarts = stallRestarts; options.mergeTolerance = mergeTolerance
        options.alternativeChoiceFactor = try Self.alternativeChoiceFactor(alternativeChoice).get()
        do { options.mergeRefinement = mergeRefine.lowercased() == "none" ? nil : try Recipe.parse(mergeRefine) }
        catch { throw UsageError("--merge-refine '\(mergeRefine)': \(error)") }
        guard let sigmas = Self.tighteningSigmas(tightenSupport) else {
            throw UsageError("--tighten-support must be smoothing sigmas in voxels above 0, comma-separated, or none (got '\(tightenSupport)')")
        }
        options.supportTightening = sigmas
        do { options.supportTighteningRecipe = try Recipe.parse(tightenRecipe) }
        catch { throw UsageError("--tighten-recipe '\(tightenRecipe)': \(error)") }
        let sig = sigma.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard sig.count == 2, sig.allSatisfy({ $0 >= 0 }) else {
            throw UsageError("--sigma must be START,END in voxels, both ≥ 0 (got '\(sigma)')")
        }
        options.shrinkWrap.sigmaStart = sig[0]; options.shrinkWrap.sigmaEnd = sig[1]
        options.shrinkWrap.reference = thresholdReference
        return options
    }

    /// The initial support `--support` names.
    func initialSupport() throws -> InitialSupport {
        let s = support
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

/// `bragg phase --method neural`: the model, its refinement on the pattern, the hand-off.
struct NeuralOptions: MethodOptions {
    @Option(help: "Model file (.safetensors; default models/default-c8-64.safetensors or $BRAGG_MODEL).")
    var model: String?

    @Option(name: .customLong("refine-steps"), help: "Steps fine-tuning the network on this pattern (physics loss; best prediction kept).")
    var refineSteps: Int = 0

    @Option(name: .customLong("refine-learning-rate"), help: "Adam learning rate of the refinement.")
    var refineLearningRate: Double = 1e-4

    @Option(name: .customLong("then"), help: "Hand the prediction (object and support) to the iterative engine with this recipe, e.g. \"ER:50\" or \"short\" (HIO:100, RAAR:50, ER:50); --sigma and --threshold-reference set its shrink-wrap.")
    var then: String?

    @Option(help: "Run the network on the pattern under symmetries of the cube, none, reflections (8 passes) or cube (48), each pass on the pattern reflected about its centre and/or with its axes permuted; the predictions are transformed back and the one of lowest loss is kept.")
    var symmetries: NeuralPhaser.PredictionSymmetries = .none

    @Flag(name: .customLong("any-size"), help: "Run on a cubic pattern of another edge (multiple of 8) than the model's.")
    var anySize = false

    func differences(from d: NeuralOptions) -> [(String, Bool)] {
        [("--model", model != d.model), ("--refine-steps", refineSteps != d.refineSteps),
         ("--refine-learning-rate", refineLearningRate != d.refineLearningRate), ("--then", then != d.then),
         ("--symmetries", symmetries != d.symmetries), ("--any-size", anySize != d.anySize)]
    }
}

/// Values of the diffraction geometry given on the command line, overriding those of the
/// files (`bragg analyze`); turned into BraggKit's `GeometryOverride`s in SI units.
struct GeometryOverrideOptions: ParsableArguments {
    @Option(name: .customLong("energy-kev"), help: "Photon energy (keV).")
    var energyKeV: Double?
    @Option(name: .customLong("two-theta"), help: "Scattering angle 2θ (degrees).")
    var twoTheta: Double?
    @Option(name: .customLong("out-of-plane"), help: "Detector out-of-plane angle δ (degrees).")
    var outOfPlane: Double?
    @Option(name: .customLong("distance"), help: "Sample–detector distance (m).")
    var distance: Double?
    @Option(name: .customLong("pixel-um"), help: "Detector pixel size (µm).")
    var pixelMicrons: Double?
    @Option(name: .customLong("rocking-step"), help: "Rocking step (degrees).")
    var rockingStep: Double?
    @Option(name: .customLong("rocking-axis"), help: "Rocking axis: x, y or z (lab frame).")
    var rockingAxis: String?

    /// The overrides given, in the order of the options, each labelled with its flag.
    func overrides() throws -> [GeometryOverride] {
        var overrides: [GeometryOverride] = []
        if let v = energyKeV { overrides.append(GeometryOverride(option: "--energy-kev", quantity: .energy, value: v * 1000)) }
        if let v = twoTheta { overrides.append(GeometryOverride(option: "--two-theta", quantity: .twoTheta, value: v * .pi / 180)) }
        if let v = outOfPlane { overrides.append(GeometryOverride(option: "--out-of-plane", quantity: .outOfPlane, value: v * .pi / 180)) }
        if let v = distance { overrides.append(GeometryOverride(option: "--distance", quantity: .distance, value: v)) }
        if let v = pixelMicrons { overrides.append(GeometryOverride(option: "--pixel-um", quantity: .pixelSize, value: v * 1e-6)) }
        if let v = rockingStep { overrides.append(GeometryOverride(option: "--rocking-step", quantity: .rockingStep, value: v * .pi / 180)) }
        if let a = rockingAxis {
            let axes = ["x": [1.0, 0, 0], "y": [0, 1.0, 0], "z": [0, 0, 1.0]]
            guard let v = axes[a] else { throw UsageError("--rocking-axis must be x, y or z (got '\(a)')") }
            overrides.append(GeometryOverride(option: "--rocking-axis", quantity: .rockingAxis, value: 0, axis: v))
        }
        return overrides
    }
}
