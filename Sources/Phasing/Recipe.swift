import Foundation

/// One iterative algorithm. With P_M the modulus projection (the Fourier modulus replaced
/// by the measured one; masked pixels keep the model's), P_S the support projection (zero
/// outside S) and ρ' = P_M ρ, each iteration updates ρ as:
public enum PhasingAlgorithm: String, CaseIterable, Sendable {
    /// Error reduction: ρ ← P_S P_M ρ, i.e. ρ' inside S, 0 outside.
    case er = "ER"
    /// Hybrid input–output (Fienup 1982): ρ ← ρ' inside S, ρ − β ρ' outside.
    case hio = "HIO"
    /// Relaxed averaged alternating reflections (Luke 2005): ρ ← ρ' inside S,
    /// β ρ + (1 − 2β) ρ' outside.
    case raar = "RAAR"
    /// Poisson maximum-likelihood refinement (PyNX's ML): conjugate-gradient steps on the
    /// Poisson log-likelihood of the measured data, ρ kept inside a fixed support
    /// (`PhasingEngine.iterateML`). For the end of a recipe, from an iterate already near
    /// the answer.
    case ml = "ML"

    /// The outside-support update written as a ρ + b ρ' (inside it is always ρ').
    public func outsideCoefficients(beta: Double) -> (a: Float, b: Float) {
        switch self {
        case .er, .ml: return (0, 0)
        case .hio: return (1, Float(-beta))
        case .raar: return (Float(beta), Float(1 - 2 * beta))
        }
    }
}

/// One step of a recipe: an algorithm run for a number of iterations, with its options.
public struct RecipeStep: Sendable, Equatable, CustomStringConvertible {
    public var algorithm: PhasingAlgorithm
    public var iterations: Int
    /// Feedback β (HIO, RAAR; ignored by ER).
    public var beta: Double
    /// Shrink-wrap every `shrinkWrapEvery` iterations of this step (0: support fixed).
    public var shrinkWrapEvery: Int
    /// Shrink-wrap threshold, a fraction of the reference level of the blurred modulus.
    public var threshold: Double
    /// What the threshold is a fraction of (`ref=max` or `ref=rms`); nil: the run's
    /// `ShrinkWrapSchedule.reference` (the maximum unless set, `--threshold-reference`).
    public var reference: ShrinkWrapReference?
    /// Partial coherence from this step on (`psf=…`); nil: as the step before (coherent at first).
    public var psf: PSFSetting?
    /// How the point-spread function enters from this step on (`psfmode=model|deconvolve`);
    /// nil: as the step before (`model` at first).
    public var psfMode: PSFMode?
    /// Detwinning (`detwin=z|y|x`, as PyNX's DetwinHIO/DetwinRAAR): the step runs on the half
    /// of the support on one side of its centre along this axis (0 = z), and the whole
    /// support comes back after it. The autocorrelation support and a centrosymmetric
    /// crystal's are their own twins, so a run can grow the object and its twin at once and
    /// stagnate in the mixture; half a support holds one of the two.
    public var detwinAxis: Int?

    public init(_ algorithm: PhasingAlgorithm, iterations: Int, beta: Double = 0.9,
                shrinkWrapEvery: Int = 20, threshold: Double = 0.2, reference: ShrinkWrapReference? = nil,
                psf: PSFSetting? = nil) {
        self.algorithm = algorithm; self.iterations = iterations; self.beta = beta
        self.shrinkWrapEvery = shrinkWrapEvery; self.threshold = threshold; self.reference = reference
        self.psf = psf
    }

    public var description: String {
        var s = "\(algorithm.rawValue):\(iterations)"
        if algorithm != .er && algorithm != .ml { s += " beta=\(Recipe.format(beta))" }
        s += " sw=\(shrinkWrapEvery)"
        if shrinkWrapEvery > 0 { s += " threshold=\(Recipe.format(threshold))" }
        if shrinkWrapEvery > 0, let r = reference { s += " ref=\(r.rawValue)" }
        if let p = psf { s += " psf=\(p)" }
        if let m = psfMode { s += " psfmode=\(m.rawValue)" }
        if let a = detwinAxis { s += " detwin=\(["z", "y", "x"][a])" }
        return s
    }
}

/// A sequence of algorithm steps written PyNX-style, e.g.
/// `"HIO:400 beta=0.9 sw=20, RAAR:500, ER:100"`. Steps are separated by commas (or `;`),
/// each `NAME:ITERATIONS` followed by optional `key=value` options:
/// `beta` (0 < β ≤ 1), `sw` (shrink-wrap period in iterations, 0 = off), `threshold`
/// (0 < t < 1), `ref` (`max` or `rms`: what the threshold is a fraction of) and `psf`
/// (partial coherence from this step on: `auto[:MODEL][:EVERY]` fits the point-spread
/// function's widths to the data and refits them every EVERY iterations, `gauss:S`,
/// `lorentz:G`, `pvoigt:FWHM[:ETA]` fix it, widths in pixels, one or `ZxYxX`; `off`). Names
/// and keys are case-insensitive. An option the step does not use (beta on ER; threshold
/// or ref with sw=0) is refused rather than ignored, and so is a recipe of more than
/// `maximumIterations` iterations in all.
public struct Recipe: Sendable, Equatable, CustomStringConvertible {
    public var steps: [RecipeStep]
    /// Further step lists that runs alternate with (`A | B` in the text): run k (0-based)
    /// follows `steps` when k mod (1 + alternatives.count) is 0, else that alternative. The
    /// runs' likelihood on the measured data then ranks the alternatives like random starts.
    /// A single engine run (`PhasingEngine.run`) follows `steps`.
    public var alternatives: [[RecipeStep]] = []

    /// The recipe used when none is given: runs alternate between `gaussianString` (runs 1,
    /// 3, …) and `lorentzianString` (runs 2, 4, …); at iteration 600, where they part, the
    /// alternative that models the blur in the data takes over the other's runs
    /// (`PhasingOptions.alternativeChoiceFactor`), and the runs' free log-likelihood on the
    /// measured data ranks them, so that neither the blur nor its shape need be known; a run
    /// far behind the other runs of its alternative at 80% of its recipe restarts
    /// (`PhasingOptions.stallCheckFraction`). On the 64³ prisms with four runs, seeds 1–17,
    /// with the job's final pass (`PhasingOptions.supportTightening`; bench/README.md,
    /// session 20): coherent 17/17 within 0.065 (median 0.012), Gaussian σ 0.35 px 17/17
    /// within 0.05 (median 0.016; fresh seeds 21–60: 38/40), σ 0.5 px 17/17 and Lorentzian
    /// γ 0.4 px with one count of background 16/17 within 0.30 (medians 0.021 and 0.083;
    /// fresh Lorentzian seeds 21–40: 19/20). The Gaussian recipe alone left the Lorentzian
    /// case at 0.56–0.70.
    public static let defaultString = "\(gaussianString) | \(lorentzianString)"

    /// The Gaussian recipe (the whole default until 2026-12-04): HIO finds the shape, RAAR
    /// refines it, and ER settles into the nearest consistent solution. Shrink-wrap thresholds are fractions of
    /// the RMS of the blurred modulus over the support (`ref=rms`): 0.25 while HIO searches
    /// (0.3 there collapsed some runs), 0.3 after (at 0.25 some runs settled with a support
    /// ~5% too large and a worse fit; 0.4 collapses). Measured on the 64³ test prisms
    /// (bench/README.md, Phasing): with 0.2 of the maximum, 1–2 runs in 4 collapsed, and
    /// most runs with a detector gap through the Bragg peak. From RAAR on, partial coherence
    /// is modelled (`psf=auto`: a Gaussian point-spread function fitted to the data when RAAR
    /// starts, as PyNX switches its PSF on after the first block, and refitted every 50
    /// iterations); on coherent data the fitted widths are ~0 and the run stays on the
    /// coherent projection (bench/README.md, Partial coherence). RAAR runs 500 iterations, not
    /// 300: at 300 the runs had not converged on some crystals (coherent seed 1: every run at
    /// error 0.085–0.19, with or without the PSF), and a shorter HIO instead (200 or 300)
    /// lost the σ 0.5 px crystals (bench/README.md, issue 21, 2026-12-04).
    public static let gaussianString = "HIO:400 beta=0.9 sw=20 threshold=0.25 ref=rms, RAAR:500 beta=0.8 sw=20 threshold=0.3 ref=rms psf=auto, ER:100 sw=20 threshold=0.3 ref=rms"
    public static var standard: Recipe { try! parse(defaultString) }

    /// 200 iterations (a quarter of the former 800-iteration default), for a start that is already near the answer
    /// (the neural prediction: `bragg phase --method neural --then short`). HIO first, so
    /// that the support can still grow or shrink, then RAAR and ER. Chosen on 20 simulated
    /// crystals that the evaluation does not use (models/README.md): from the prediction it
    /// reaches a median error of 0.049 there (the default recipe from a random start: 0.060;
    /// this one from a random start: 0.25).
    public static let shortString = "HIO:100 beta=0.9 sw=20 threshold=0.25 ref=rms, RAAR:50 beta=0.8 sw=20 threshold=0.3 ref=rms, ER:50 sw=20 threshold=0.3 ref=rms"

    /// For heavy-tailed (Lorentzian-like) partial coherence: a Lorentzian point-spread function
    /// fitted in model mode after HIO, then the data deconvolved by it (Richardson–Lucy) and
    /// phased again from HIO on. On the 64³ prisms blurred by a Lorentzian of γ 0.4 px with one
    /// count of background it reaches errors 0.08–0.12 (seeds 1–3; the default: 0.56–0.70),
    /// coherent prisms 0.012–0.025; on Gaussian blur the Lorentzian fit finds almost no blur,
    /// so it is not the default (bench/README.md, Partial coherence by deconvolution).
    public static let lorentzianString = "HIO:400 beta=0.9 sw=20 threshold=0.25 ref=rms, RAAR:200 beta=0.8 sw=20 threshold=0.3 ref=rms psf=auto:lorentz, HIO:300 beta=0.9 sw=20 threshold=0.25 ref=rms psfmode=deconvolve, RAAR:300 beta=0.8 sw=20 threshold=0.3 ref=rms, ER:100 sw=20 threshold=0.3 ref=rms"

    /// Recipes known by name: "default", "gaussian", "lorentzian" and "short".
    public static let named: [String: String] = ["default": defaultString, "gaussian": gaussianString, "short": shortString,
                                                 "lorentzian": lorentzianString]

    public init(steps: [RecipeStep], alternatives: [[RecipeStep]] = []) { self.steps = steps; self.alternatives = alternatives }

    /// Iterations in all of `steps` (`parse` refuses recipes of more than `maximumIterations`).
    public var totalIterations: Int { steps.reduce(0) { $0 + $1.iterations } }

    /// The most iterations any alternative has.
    public var longestTotalIterations: Int {
        ([steps] + alternatives).map { $0.reduce(0) { $0 + $1.iterations } }.max() ?? 0
    }

    /// The most iterations a recipe may have in all: far beyond any use (10⁹ iterations of
    /// a 64³ pattern take weeks), and small enough that counts times runs cannot overflow.
    public static let maximumIterations = 1_000_000_000

    public var description: String {
        ([steps] + alternatives).map { $0.map(\.description).joined(separator: ", ") }.joined(separator: " | ")
    }

    static let optionNames = ["beta", "sw", "threshold", "ref", "psf", "psfmode", "detwin"]

    /// Parses and validates a recipe; errors name the step and suggest the closest valid word.
    public static func parse(_ text: String) throws -> Recipe {
        if let known = named[text.trimmingCharacters(in: .whitespaces).lowercased()] { return try parse(known) }
        // Split on the scalar '|', not on characters: a prepended scalar (e.g. U+070F) glues
        // itself and the '|' into one character, which a character split would not cut, and
        // the part, still holding '|', recursed without end (a fuzzing finding).
        if text.unicodeScalars.contains("|") {
            let parts = try text.unicodeScalars.split(separator: "|", omittingEmptySubsequences: false).enumerated().map { (k, scalars) -> Recipe in
                let part = String(String.UnicodeScalarView(scalars))
                guard !part.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw PhasingError.invalidRecipe("alternative \(k + 1) of the recipe is empty in \"\(text)\"")
                }
                do { return try parse(part) } catch PhasingError.invalidRecipe(let m) {
                    throw PhasingError.invalidRecipe("in alternative \(k + 1): \(m)")
                }
            }
            return Recipe(steps: parts[0].steps, alternatives: parts[0].alternatives + parts.dropFirst().flatMap { [$0.steps] + $0.alternatives })
        }
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == ";" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !parts.allSatisfy(\.isEmpty) else {
            throw PhasingError.invalidRecipe("the recipe is empty; write steps like \"\(defaultString)\"")
        }
        var steps: [RecipeStep] = []
        var total = 0
        for (k, part) in parts.enumerated() {
            guard !part.isEmpty else {
                throw PhasingError.invalidRecipe("step \(k + 1) is empty (two commas in a row?) in \"\(text)\"")
            }
            let words = part.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let head = words[0]
            let nameCount = head.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let name = nameCount[0]
            guard let algorithm = PhasingAlgorithm.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                let names = PhasingAlgorithm.allCases.map(\.rawValue)
                let best = closest(name.uppercased(), in: names)
                throw PhasingError.invalidRecipe("unknown algorithm '\(name)' in step \(k + 1) (\"\(part)\")"
                    + (best.map { "; did you mean '\($0)'?" } ?? "") + " Known algorithms: \(names.joined(separator: ", ")).")
            }
            if nameCount.count == 2, !nameCount[1].isEmpty, nameCount[1].allSatisfy({ $0.isASCII && $0.isNumber }), Int(nameCount[1]) == nil {
                throw PhasingError.invalidRecipe("step \(k + 1) (\"\(part)\") has \(nameCount[1]) iterations; a recipe may have at most \(maximumIterations) in all")
            }
            guard nameCount.count == 2, let n = Int(nameCount[1]) else {
                throw PhasingError.invalidRecipe("step \(k + 1) (\"\(part)\") needs an iteration count, e.g. \"\(algorithm.rawValue):100\"")
            }
            guard n > 0 else {
                throw PhasingError.invalidRecipe("step \(k + 1) (\"\(part)\") has \(n) iterations; the count must be positive")
            }
            guard n <= maximumIterations else {
                throw PhasingError.invalidRecipe("step \(k + 1) (\"\(part)\") has \(n) iterations; a recipe may have at most \(maximumIterations) in all")
            }
            let (sum, overflow) = total.addingReportingOverflow(n)
            guard !overflow, sum <= maximumIterations else {
                throw PhasingError.invalidRecipe("the recipe's iterations add up beyond the limit at step \(k + 1) (\"\(part)\"); a recipe may have at most \(maximumIterations) in all")
            }
            total = sum
            var step = RecipeStep(algorithm, iterations: n, beta: algorithm == .raar ? 0.8 : 0.9,
                                  shrinkWrapEvery: algorithm == .ml ? 0 : 20)
            var given: [String: String] = [:]
            for w in words.dropFirst() {
                let kv = w.split(separator: "=", omittingEmptySubsequences: false).map(String.init)
                guard kv.count == 2, !kv[0].isEmpty else {
                    throw PhasingError.invalidRecipe("option '\(w)' in step \(k + 1) is not of the form key=value (keys: \(optionNames.joined(separator: ", ")))")
                }
                let key = kv[0].lowercased()
                if optionNames.contains(key) {
                    guard given[key] == nil else {
                        throw PhasingError.invalidRecipe("option '\(key)' is given twice in step \(k + 1) (\"\(part)\")")
                    }
                    given[key] = w
                }
                switch key {
                case "beta":
                    guard let b = Double(kv[1]), b > 0, b <= 1 else {
                        throw PhasingError.invalidRecipe("beta=\(kv[1]) in step \(k + 1): beta must be a number in (0, 1]")
                    }
                    step.beta = b
                case "sw":
                    guard let s = Int(kv[1]), s >= 0 else {
                        throw PhasingError.invalidRecipe("sw=\(kv[1]) in step \(k + 1): the shrink-wrap period must be a whole number ≥ 0 (0 turns it off)")
                    }
                    step.shrinkWrapEvery = s
                case "threshold":
                    guard let t = Double(kv[1]), t > 0, t < 1 else {
                        throw PhasingError.invalidRecipe("threshold=\(kv[1]) in step \(k + 1): the threshold must be a fraction in (0, 1)")
                    }
                    step.threshold = t
                case "ref":
                    guard let r = ShrinkWrapReference(rawValue: kv[1].lowercased()) else {
                        throw PhasingError.invalidRecipe("ref=\(kv[1]) in step \(k + 1): the shrink-wrap reference must be max or rms")
                    }
                    step.reference = r
                case "psf":
                    guard let p = PSFSetting.parse(kv[1]) else {
                        throw PhasingError.invalidRecipe("psf=\(kv[1]) in step \(k + 1): write psf=auto (fitted; auto:gauss, auto:lorentz, auto:pvoigt or auto:both, optionally :EVERY iterations and :bg), psf=gauss:SIGMA, psf=lorentz:HALFWIDTH, psf=pvoigt:FWHM[:ETA] (widths in pixels ≥ 0, one or ZxYxX) or psf=off")
                    }
                    step.psf = p
                case "psfmode":
                    guard let m = PSFMode(rawValue: kv[1].lowercased()) else {
                        throw PhasingError.invalidRecipe("psfmode=\(kv[1]) in step \(k + 1): write psfmode=model (the point-spread function in the modulus projection) or psfmode=deconvolve (the data deconvolved by it)")
                    }
                    step.psfMode = m
                case "detwin":
                    guard let a = ["z", "y", "x"].firstIndex(of: kv[1].lowercased()) else {
                        throw PhasingError.invalidRecipe("detwin=\(kv[1]) in step \(k + 1): write detwin=z, detwin=y or detwin=x (the axis across which the support is halved)")
                    }
                    step.detwinAxis = a
                default:
                    let best = closest(key, in: optionNames)
                    throw PhasingError.invalidRecipe("unknown option '\(kv[0])' in step \(k + 1)"
                        + (best.map { "; did you mean '\($0)'?" } ?? "") + " Options: \(optionNames.joined(separator: ", ")).")
                }
            }
            // Options the step would ignore are refused: the user meant something.
            if algorithm == .er, let w = given["beta"] {
                throw PhasingError.invalidRecipe("'\(w)' in step \(k + 1) (\"\(part)\") is not used: ER has no feedback parameter (beta applies to HIO and RAAR)")
            }
            if algorithm == .ml, let w = given["beta"] ?? given["psfmode"] {
                throw PhasingError.invalidRecipe("'\(w)' in step \(k + 1) (\"\(part)\") is not used: ML has no feedback parameter and fits the measured data through the point-spread function in either psfmode")
            }
            if algorithm == .ml, step.shrinkWrapEvery > 0 {
                throw PhasingError.invalidRecipe("'\(given["sw"] ?? "sw")' in step \(k + 1) (\"\(part)\"): ML keeps its support fixed; shrink-wrap is not used there (leave sw out or write sw=0)")
            }
            if step.detwinAxis != nil {
                // The half support is held during the step: no shrink-wrap unless asked, and then refused.
                if algorithm == .ml {
                    throw PhasingError.invalidRecipe("'\(given["detwin"]!)' in step \(k + 1) (\"\(part)\"): detwinning applies to HIO, RAAR and ER, not to the ML refinement")
                }
                if let w = given["sw"], step.shrinkWrapEvery > 0 {
                    throw PhasingError.invalidRecipe("'\(w)' in step \(k + 1) (\"\(part)\"): a detwin step holds its half support fixed; leave sw out or write sw=0")
                }
                step.shrinkWrapEvery = 0
            }
            if step.shrinkWrapEvery == 0, let w = given["threshold"] ?? given["ref"] {
                throw PhasingError.invalidRecipe("'\(w)' in step \(k + 1) (\"\(part)\") is not used: shrink-wrap is off in that step (sw=0)")
            }
            steps.append(step)
        }
        return Recipe(steps: steps)
    }

    /// The recipe run `k` (0-based) follows: its alternative, with `psf=auto:both` resolved to
    /// its kernel shape.
    public func forRun(_ k: Int) -> Recipe {
        let all = [steps] + alternatives
        var r = Recipe(steps: all[k % all.count])
        for i in r.steps.indices { r.steps[i].psf = r.steps[i].psf?.forRun(k) }
        return r
    }

    /// The candidate nearest to `word` by edit distance, if reasonably near.
    static func closest(_ word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, best.0.count / 2) ? best.0 : nil
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var prev = Array(0...y.count), cur = prev
        for i in 1...x.count {
            cur[0] = i
            for j in 1...y.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[y.count]
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : String(v)
    }
}
