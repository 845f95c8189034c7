import BraggKit
import Foundation

/// What `bragg bench nn-eval` prints: the header, one line per crystal (with its candidate
/// passes and split errors when asked), the medians, and the candidates' CSV table.
struct NNEvalSummary {
    let evaluation: NeuralEvaluation
    /// The --then recipe as given, the first crystal and how many.
    let then: String
    let first: Int, crystals: Int
    /// Iterations of the recipe run from a random start.
    let randomStartIterations: Int

    var options: NeuralEvaluation.Options { evaluation.options }
    func median(_ x: [Double]) -> Double { NeuralEvaluation.median(x) }

    func header() -> [String] {
        let o = options, n = evaluation.size
        let prediction = o.symmetries == .none ? "from one pass"
            : "best by loss of \(NeuralPhaser.candidateTransforms(symmetries: o.symmetries, shifts: o.shifts).count) symmetric passes"
        return ["model \(o.model) (\(evaluation.architecture)), \(n)³ crystals \(first)..<\(first + crystals), \(Parallel.threads) thread(s), prediction \(prediction), phase ramps \(o.keepRamps ? "kept" : "removed")",
                "crystal  flat phase  predict         predict+\(then)  from random (\(randomStartIterations))  refine \(o.refineSteps)"
                    + (o.refineSteps > 0 && o.then != nil ? "  refine \(o.refineSteps)+\(then)" : "")]
    }

    /// A crystal's lines: its candidate passes, its split errors, its row of errors and times.
    func lines(_ c: NeuralEvaluation.CrystalScores) -> [String] {
        var lines: [String] = []
        if !c.candidates.isEmpty, let chosen = c.candidates.firstIndex(where: \.chosen) {
            let errors = c.candidates.map(\.error)
            lines.append(String(format: "         %d candidates: chosen by loss %.3f, best %.3f, median %.3f, worst %.3f",
                                errors.count, errors[chosen], errors.min()!, median(errors), errors.max()!))
        }
        if let s = c.split {
            lines.append(String(format: "         predicted amplitude + true phase %.3f, true amplitude + predicted phase %.3f", s.amplitude, s.phase))
        }
        func cell(_ s: NeuralEvaluation.Score) -> String { s.error.isNaN ? "      –       " : String(format: "%.3f (%5.1fs)", s.error, s.seconds) }
        var cells = [cell(c.predict), cell(c.then), cell(c.randomStart), cell(c.refine)]
        if options.refineSteps > 0 && options.then != nil { cells.append(cell(c.refineThen)) }
        lines.append(String(format: "%7d  %.3f       ", c.index, c.flatPhase) + cells.joined(separator: "  "))
        return lines
    }

    /// The medians of the columns that were run (a skipped one would print as "nan").
    func medians(_ scores: [NeuralEvaluation.CrystalScores]) -> String {
        let o = options
        func med(_ k: KeyPath<NeuralEvaluation.CrystalScores, NeuralEvaluation.Score>) -> Double { median(scores.map { $0[keyPath: k].error }) }
        var parts = [String(format: "flat phase %.3f", median(scores.map(\.flatPhase))), String(format: "predict %.3f", med(\.predict))]
        if o.then != nil { parts.append(String(format: "predict+%@ %.3f", then, med(\.then))) }
        if o.randomStart != nil { parts.append(String(format: "iterative from random (%d iterations) %.3f", randomStartIterations, med(\.randomStart))) }
        if o.refineSteps > 0 { parts.append(String(format: "refine %d %.3f", o.refineSteps, med(\.refine))) }
        if o.refineSteps > 0 && o.then != nil { parts.append(String(format: "refine %d+%@ %.3f", o.refineSteps, then, med(\.refineThen))) }
        return "median of \(scores.count): " + parts.joined(separator: ", ")
    }

    /// The median over crystals of the best candidate pass (knowing the truth).
    func oracle(_ scores: [NeuralEvaluation.CrystalScores]) -> String {
        let best = scores.filter { !$0.candidates.isEmpty }.map { $0.candidates.map(\.error).min()! }
        return String(format: "median of %d: best candidate pass (knowing the truth) %.3f", best.count, median(best))
    }

    /// Every candidate pass of every crystal, one CSV row each, after a header row.
    func candidateCSV(_ scores: [NeuralEvaluation.CrystalScores]) -> [String] {
        var rows = ["crystal,pass,permutation,reflected,offset,loss_l1,loss_l2,chi2,error,chosen"]
        for c in scores {
            for (k, p) in c.candidates.enumerated() {
                let t = p.transform
                rows.append([String(c.index), String(k), t.permutation.map(String.init).joined(separator: " "),
                             t.reflected.map(String.init).joined(separator: " "), t.offset.map(String.init).joined(separator: " "),
                             String(format: "%.6g", p.lossL1), String(format: "%.6g", p.lossL2), String(format: "%.6g", p.chi2),
                             String(format: "%.5f", p.error), p.chosen ? "1" : "0"].joined(separator: ","))
            }
        }
        return rows
    }

    /// The split errors' medians and how often the hand-off beat the random start.
    func closing(_ scores: [NeuralEvaluation.CrystalScores]) -> [String] {
        var lines: [String] = []
        let split = scores.compactMap(\.split)
        if options.splitError {
            lines.append(String(format: "median of %d: predicted amplitude + true phase %.3f, true amplitude + predicted phase %.3f",
                                split.count, median(split.map(\.amplitude)), median(split.map(\.phase))))
        }
        if let recipe = options.then, options.randomStart != nil {
            let wins = scores.filter { !$0.then.error.isNaN && !$0.randomStart.error.isNaN && $0.then.error <= $0.randomStart.error }.count
            lines.append("predict+\(then) (\(recipe.totalIterations) iterations) at least as good as the iterative recipe (\(randomStartIterations)) on \(wins) of \(scores.count) crystals")
        }
        return lines
    }
}
