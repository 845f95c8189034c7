import ArgumentParser
import Foundation
import BraggKit

/// `bragg bench nn-eval`: issue 5's acceptance figures for a trained model, on freshly
/// simulated crystals whose seeds no training run uses.
struct BenchNNEval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn-eval",
        abstract: "Evaluate a trained model on freshly simulated crystals against the iterative default recipe.",
        discussion: """
            Crystal i is Simulation.TrainingPair.make(size: n, seed: 0xE7A1_0000_0000 + i) — the \
            training distribution, with seeds no training or validation pair uses. For each, the \
            normalised complex error min ‖γρ′ − ρ*‖/‖ρ*‖ (twin, sub-voxel shift, global phase and \
            scale removed, and each object's linear phase ramp, which only says where the Bragg \
            peak sits in the box) of the outputs as bragg phase writes them: the prediction \
            alone (with --symmetries, the best by loss of the predictions for the pattern's \
            reflections and axis permutations; --split-error also scores its amplitude and its \
            phase separately); the prediction handed to the iterative engine \
            for --then (default ER:50); the iterative default recipe from a random start \
            (--iterative; --iterative-recipe R for another recipe); the prediction after --refine-steps K of fine-tuning (K > 0; \
            with --symmetries, from the chosen pass, as bragg phase runs it), and that refined \
            prediction handed to the --then recipe. The \
            'flat phase' column is the error of the true amplitude with zero phase: what a \
            prediction that gets the shape right and learns no phase would score. Prints one line \
            per crystal and the medians.
            """
    )

    @Option(help: "Model file (default: models/default-c8-64.safetensors or $BRAGG_MODEL).")
    var model: String?

    @Option(help: "Number of crystals.")
    var crystals: Int = 20

    @Option(help: "Index of the first crystal.")
    var first: Int = 0

    @Option(name: .customLong("refine-steps"), help: "Refinement steps (0: skip refinement).")
    var refineSteps: Int = 0

    @Option(help: "Run the network on the pattern under these symmetries of the cube and keep the prediction of lowest loss: none, reflections (8 passes) or cube (48).")
    var symmetries: NeuralPhaser.PredictionSymmetries = .none

    @Option(help: "With --symmetries, also run each pass on the pattern shifted by 1…N voxels forward and back along each axis (1 + 6N offsets per symmetry).")
    var shifts: Int = 0

    @Option(help: ArgumentHelp("With --symmetries, write every candidate pass of every crystal to this CSV file: its transform, its physics losses (L1, L2) and χ² on the pattern, and its error: how well choosing by loss does against the best pass.", valueName: "FILE.csv"))
    var candidates: String?

    @Flag(name: .customLong("split-error"), help: "Also score the predicted amplitude with the true phase, and the true amplitude with the predicted phase: which half of the prediction is off.")
    var splitError = false

    @Option(name: .customLong("refine-learning-rate"), help: "Learning rate of the refinement.")
    var refineLearningRate: Double = 1e-4

    @Option(help: "Iterative recipe started from the prediction (\"none\" to skip).")
    var then: String = "ER:50"

    @Flag(inversion: .prefixedNo, help: "Also run the iterative recipe from a random start.")
    var iterative = true

    @Option(name: .customLong("iterative-recipe"), help: "The recipe run from a random start (default: bragg phase's default recipe).")
    var iterativeRecipe: String?

    @Flag(name: .customLong("keep-ramps"), help: "Compare without removing each object's linear phase ramp (twin, shift and global phase only).")
    var keepRamps = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard crystals >= 1 else { throw ValidationError("--crystals must be at least 1 (got \(crystals))") }
        guard first >= 0 else { throw ValidationError("--first must be ≥ 0 (got \(first))") }
        guard refineSteps >= 0 else { throw ValidationError("--refine-steps must be ≥ 0 (got \(refineSteps))") }
        if then != "none" {
            do { _ = try Recipe.parse(then) } catch { throw ValidationError("--then: \(error)") }
        }
        if let path = candidates {
            if symmetries == .none {
                throw ValidationError("--candidates needs --symmetries reflections or cube: with one pass there is nothing to choose from")
            }
            // checked now, not after the whole run
            var isDir: ObjCBool = false
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) || !isDir.boolValue {
                throw ValidationError("--candidates \(path): folder \(dir) does not exist")
            }
        }
        if let r = iterativeRecipe {
            do { _ = try Recipe.parse(r) } catch { throw ValidationError("--iterative-recipe: \(error)") }
        }
    }

    func run() throws {
        if let c = candidates { try OutputCheck.file(c, overwrite: true) }   // before any work (#22)
        common.apply()
        guard let modelPath = model ?? NeuralModel.defaultPath() else {
            throw UsageError("no model given and models/default-c8-64.safetensors not found: pass --model FILE.safetensors")
        }
        var o = NeuralEvaluation.Options(model: modelPath)
        o.symmetries = symmetries; o.shifts = shifts; o.scoreCandidates = candidates != nil; o.splitError = splitError
        o.then = then == "none" ? nil : try Recipe.parse(then)
        let randomStart = try iterativeRecipe.map(Recipe.parse) ?? PhasingOptions().recipe
        o.randomStart = iterative ? randomStart : nil
        o.refineSteps = refineSteps; o.refineLearningRate = refineLearningRate; o.keepRamps = keepRamps
        let evaluation = try NeuralEvaluation(options: o)
        let summary = NNEvalSummary(evaluation: evaluation, then: then, first: first, crystals: crystals,
                                    randomStartIterations: randomStart.totalIterations)
        summary.header().forEach { print($0) }
        var scores: [NeuralEvaluation.CrystalScores] = []
        for i in first..<(first + crystals) {
            try Interruption.check()
            scores.append(try evaluation.crystal(i))
            summary.lines(scores.last!).forEach { print($0) }
            fflush(stdout)
        }
        print(summary.medians(scores))
        if let path = candidates {
            // written at the end (SafeOutput), so an interrupted run leaves any earlier file as it was
            print(summary.oracle(scores))
            let rows = summary.candidateCSV(scores)
            try SafeOutput.write(to: path, overwrite: true) {
                try (rows.joined(separator: "\n") + "\n").write(toFile: $0, atomically: false, encoding: .utf8)
            }
            print("wrote \(rows.count - 1) candidate passes to \(path)")
        }
        summary.closing(scores).forEach { print($0) }
    }
}

extension NeuralPhaser.PredictionSymmetries: ExpressibleByArgument {}
