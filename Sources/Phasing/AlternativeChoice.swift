/// The recipe alternative chosen from the data part-way through a job
/// (`PhasingOptions.alternativeChoiceFactor`).
///
/// Runs of a recipe with alternatives (the default: Gaussian | Lorentzian point-spread
/// function) all stop at a common iteration — the end of the shortest first step after the
/// steps the alternatives share, while every alternative still fits its kernel to the measured
/// intensity in model mode — and each alternative's best run (χ² of P_S ρ, Eq. 1, with its own
/// kernel; the kernel's width) is compared (`decide`). The losing alternatives' runs go on with
/// the chosen one's steps from their own iterate and the chosen run's kernel: a job on
/// Gaussian-blurred data spends all its runs on the Gaussian recipe, one on Lorentzian blur all
/// on the Lorentzian recipe. At iteration 600 of the default the kernel that fits shows (64³
/// prisms, bench/README.md, session 20); at the stall check (80% of each recipe) it did not, as
/// the Lorentzian runs are then deconvolved.
public struct AlternativeChoice: Sendable, Equatable {
    /// The iteration after which the runs were compared.
    public var iteration: Int
    /// Each alternative's best χ² there, by alternative (`Recipe.alternativeNumber`); an
    /// alternative none of whose runs got there is absent.
    public var bestChi2: [Int: Double]
    /// The alternative chosen, nil when none was ahead of every other by the factor.
    public var chosen: Int?
    /// The runs that went on with the chosen alternative's steps (0-based, ascending; a run
    /// that failed before the point is not among them).
    public var switched: [Int] = []
    /// The run whose alternative the switched runs took (its recipe: `Recipe.forRun`).
    public var chosenRun: Int?
    /// The mean FWHM (pixels) of the kernel of each alternative's best run there (0: none).
    public var kernelFWHM: [Int: Double] = [:]
    /// Whether the choice was made because the switched alternatives modelled almost no blur
    /// while the chosen one found one (else by χ²).
    public var byBlur = false

    /// How many times the other alternatives' best χ² is the chosen one's (the smallest such
    /// ratio), or that of the runner-up to the best when none was chosen.
    public var margin: Double? {
        let sorted = bestChi2.values.sorted()
        guard sorted.count > 1 else { return nil }
        return sorted[1] / max(sorted[0], 1e-300)
    }

    /// Where the runs of `recipe`'s alternatives are compared: after the steps every
    /// alternative shares, at the end of the shortest next step, when every alternative's next
    /// step is in model mode with a point-spread function (so that each fits its own kernel to
    /// the measured intensity), the point lies on a shrink-wrap boundary of every step it
    /// cuts and on a χ² report, and every alternative has iterations left after it. Nil for a
    /// recipe without alternatives or where no such point exists.
    public static func point(recipe: Recipe, reportEvery: Int) -> Int? {
        let all = [recipe.steps] + recipe.alternatives
        guard all.count > 1, Set(all.map { $0.map(\.description) }).count > 1 else { return nil }
        var shared = 0
        while all.allSatisfy({ $0.count > shared }) && all.allSatisfy({ $0[shared] == all[0][shared] }) { shared += 1 }
        guard all.allSatisfy({ $0.count > shared }) else { return nil }
        let next = all.map { $0[shared] }
        for (steps, step) in zip(all, next) {
            let mode = (steps[..<shared].compactMap(\.psfMode) + [step.psfMode].compactMap { $0 }).last ?? .model
            guard mode == .model, step.psf != nil else { return nil }
        }
        let start = all[0][..<shared].reduce(0) { $0 + $1.iterations }
        let point = start + next.map(\.iterations).min()!
        guard reportEvery <= 0 || point % reportEvery == 0 else { return nil }
        for (steps, step) in zip(all, next) {
            guard steps.reduce(0, { $0 + $1.iterations }) > point else { return nil }
            if step.iterations > point - start, step.shrinkWrapEvery > 0, (point - start) % step.shrinkWrapEvery != 0 { return nil }
        }
        return point
    }

    /// The decision from each run's χ² at the choice point (`chi2`: runs that got there), the
    /// mean FWHM of its kernel there (`kernelFWHM`; absent: coherent) and each run's alternative
    /// (`alternativeOf`). Each alternative is represented by its run of lowest χ².
    ///
    /// - When some alternatives' kernels model almost no blur (mean FWHM under
    ///   `Phaser.nearCoherentFWHM`) while others found one (at least `Phaser.blurFoundFWHM`),
    ///   the former do not fit the blur in the data: their runs switch to the alternative of
    ///   lowest χ² among the latter, whatever their χ² (on Gaussian blur a Lorentzian fit finds
    ///   almost no blur, and a Lorentzian run's iterate can still be the better start).
    /// - Otherwise the alternative of lowest χ² is chosen when every other's is more than
    ///   `factor` times it, and all other runs switch to it.
    static func decide(iteration: Int, chi2: [Int: Double], kernelFWHM: [Int: Double], alternativeOf: [Int],
                       factor: Double) -> AlternativeChoice {
        var best: [Int: (chi2: Double, run: Int)] = [:]
        for (k, q) in chi2.sorted(by: { $0.key < $1.key }) where q.isFinite {
            let a = alternativeOf[k]
            if let b = best[a], b.chi2 <= q { continue }
            best[a] = (q, k)
        }
        var choice = AlternativeChoice(iteration: iteration, bestChi2: best.mapValues(\.chi2), chosen: nil)
        choice.kernelFWHM = best.mapValues { kernelFWHM[$0.run] ?? 0 }
        guard best.count > 1 else { return choice }
        func lowest(_ among: [Int: (chi2: Double, run: Int)]) -> (key: Int, value: (chi2: Double, run: Int))? {
            among.min { $0.value.chi2 < $1.value.chi2 || ($0.value.chi2 == $1.value.chi2 && $0.key < $1.key) }
        }
        let blurred = best.filter { choice.kernelFWHM[$0.key]! >= Phaser.blurFoundFWHM }
        let unblurred = Set(best.keys.filter { choice.kernelFWHM[$0]! < Phaser.nearCoherentFWHM })
        if !unblurred.isEmpty, let winner = lowest(blurred) {
            choice.chosen = winner.key; choice.chosenRun = winner.value.run; choice.byBlur = true
            choice.switched = alternativeOf.indices.filter { chi2[$0] != nil && unblurred.contains(alternativeOf[$0]) }
            return choice
        }
        guard let winner = lowest(best),
              best.allSatisfy({ $0.key == winner.key || $0.value.chi2 > factor * winner.value.chi2 }) else { return choice }
        choice.chosen = winner.key
        choice.chosenRun = winner.value.run
        choice.switched = alternativeOf.indices.filter { chi2[$0] != nil && alternativeOf[$0] != winner.key }
        return choice
    }
}

extension Recipe {
    /// Which alternative run `k` follows: 0 for `steps`, i for `alternatives[i − 1]`, with
    /// alternatives of identical steps counted as one (the first of them).
    public func alternativeNumber(ofRun k: Int) -> Int {
        let all = [steps] + alternatives
        let a = k % all.count
        return all.firstIndex { $0 == all[a] } ?? a
    }

    /// The partial-coherence setting and mode a run of this recipe has in force after
    /// `iteration` iterations: the last ones the steps begun by then gave.
    func psfInForce(after iteration: Int) -> (setting: PSFSetting?, mode: PSFMode) {
        var setting: PSFSetting? = nil, mode = PSFMode.model, start = 0
        for step in steps where start < iteration {
            if let s = step.psf { setting = s }
            if let m = step.psfMode { mode = m }
            start += step.iterations
        }
        return (setting, mode)
    }
}
