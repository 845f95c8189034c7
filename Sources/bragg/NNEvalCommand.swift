import ArgumentParser
import Foundation
import BraggKit
import Formats
import Neural
import Numerics
import Phasing
import Simulation

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
        let thenRecipe = then == "none" ? nil : try Recipe.parse(then)
        let randomStartRecipe = try iterativeRecipe.map(Recipe.parse) ?? PhasingOptions().recipe
        let (net0, _) = try PhaseNet.load(from: modelPath)
        let n = net0.architecture.inputSize
        // every output in the frame bragg phase writes it in; the metric removes both ramps
        // unless --keep-ramps
        let removingRamps = !keepRamps
        func error(_ estimate: ComplexVolume, truth: ComplexVolume) throws -> Double {
            try ReconstructionError.normalised(estimate, truth: truth, removingRamps: removingRamps)
        }
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        func median(_ x: [Double]) -> Double {
            let s = x.filter { !$0.isNaN }.sorted()
            guard !s.isEmpty else { return .nan }
            return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
        }
        func cell(_ e: Double, _ t: Double) -> String { e.isNaN ? "      –       " : String(format: "%.3f (%5.1fs)", e, t) }
        print("model \(modelPath) (\(net0.architecture)), \(n)³ crystals \(first)..<\(first + crystals), \(Parallel.threads) thread(s), prediction \(symmetries == .none ? "from one pass" : "best by loss of \(NeuralPhaser.candidateTransforms(symmetries: symmetries, shifts: shifts).count) symmetric passes"), phase ramps \(keepRamps ? "kept" : "removed")")
        print("crystal  flat phase  predict         predict+\(then)  from random (\(randomStartRecipe.totalIterations))  refine \(refineSteps)"
              + (refineSteps > 0 && thenRecipe != nil ? "  refine \(refineSteps)+\(then)" : ""))
        // --candidates: written at the end (SafeOutput), so an interrupted run leaves any
        // earlier file as it was
        var candidateLines = ["crystal,pass,permutation,reflected,offset,loss_l1,loss_l2,chi2,error,chosen"]
        var oracle: [Double] = []
        var rows: [[Double]] = []
        var split: [(amplitude: Double, phase: Double)] = []
        for i in first..<(first + crystals) {
            try Interruption.check()
            let seed = TrainingOptions.evaluationSeed(i)
            let pair = try TrainingPair.make(size: n, seed: seed)
            let truth = try pair.object.centred(in: [n, n, n])
            let flat = try error(ComplexVolume(modulus: truth.modulus(), phase: RealVolume(shape: truth.shape)), truth: truth)
            // the prediction alone (a fresh copy of the model for every crystal)
            var t0 = now()
            let (net, _) = try PhaseNet.load(from: modelPath)
            var po = NeuralPhaser.Options(); po.symmetries = symmetries; po.shifts = shifts
            // with --candidates, the prediction is the lowest-loss candidate (as reconstruct
            // chooses it, testPredictionChosenOverSymmetries), so the passes run once
            let scored = candidates == nil ? [] : try NeuralPhaser.scoredCandidates(pattern: pair.intensity, model: net, options: po)
            let chosen = scored.indices.min { scored[$0].loss < scored[$1].loss }
            let p = try chosen.map { NeuralPhaser.object(amplitude: scored[$0].amplitude, phase: scored[$0].phase, box: [n, n, n], options: po) }
                ?? { let r = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net, refineSteps: 0, options: po)
                     return (r.object, r.support) }()
            let tPredict = now() - t0
            let est = try PhasingPost.reportingFrame(object: p.object, support: p.support).object
            let ePredict = try error(est, truth: truth)
            if let chosen {
                let l2 = try FourierPhysics(box: [n, n, n], objectShape: [n / 2 + 1, n / 2 + 1, n / 2 + 1], loss: .l2)
                try l2.setTarget(intensity: pair.intensity)
                var errors: [Double] = []
                for (k, c) in scored.enumerated() {
                    let o = NeuralPhaser.object(amplitude: c.amplitude, phase: c.phase, box: [n, n, n], options: po)
                    let e = try error(try PhasingPost.reportingFrame(object: o.object, support: o.support).object, truth: truth)
                    errors.append(e)
                    let t = c.transform
                    let fields = [String(i), String(k), t.permutation.map(String.init).joined(separator: " "),
                                  t.reflected.map(String.init).joined(separator: " "), t.offset.map(String.init).joined(separator: " "),
                                  String(format: "%.6g", c.loss), String(format: "%.6g", l2.forward(amplitude: c.amplitude, phase: c.phase)),
                                  String(format: "%.6g", c.chi2), String(format: "%.5f", e), k == chosen ? "1" : "0"]
                    candidateLines.append(fields.joined(separator: ","))
                }
                oracle.append(errors.min()!)
                print(String(format: "         %d candidates: chosen by loss %.3f, best %.3f, median %.3f, worst %.3f",
                             errors.count, errors[chosen], errors.min()!, median(errors), errors.max()!))
            }
            if splitError {
                // the prediction brought onto the truth (twin, integer shift), then its modulus
                // and its phase each paired with the truth's other half
                let twin = est.reflectedAboutCentre().conjugated()
                let direct = try Registration.shift(of: est, onto: truth), mirrored = try Registration.shift(of: twin, onto: truth)
                let (o, sh) = mirrored.correlation > direct.correlation ? (twin, mirrored.shift) : (est, direct.shift)
                let e = try o.rolled(by: sh.map { Int($0.rounded()) })
                let ampTruePhase = try error(ComplexVolume(modulus: e.modulus(), phase: truth.phase()), truth: truth)
                let trueAmpPhase = try error(ComplexVolume(modulus: truth.modulus(), phase: e.phase()), truth: truth)
                split.append((ampTruePhase, trueAmpPhase))
                print(String(format: "         predicted amplitude + true phase %.3f, true amplitude + predicted phase %.3f", ampTruePhase, trueAmpPhase))
            }
            let data = try PhasingData(intensity: pair.intensity)
            // an object and support handed to the iterative engine for --then, scored
            func handedOn(_ object: ComplexVolume, support: RealVolume, recipe: Recipe) throws -> Double {
                var o = PhasingOptions(); o.recipe = recipe; o.runs = 1; o.keep = 1; o.freeFraction = 0
                return try error(try Phaser.refine(data, from: object, support: support, options: o).object, truth: truth)
            }
            // the prediction handed to the iterative engine
            var eThen = Double.nan, tThen = 0.0
            if let recipe = thenRecipe {
                t0 = now()
                eThen = try handedOn(p.object, support: p.support, recipe: recipe)
                tThen = now() - t0 + tPredict
            }
            // the iterative default recipe from a random start
            var eIter = Double.nan, tIter = 0.0
            if iterative {
                t0 = now()
                var o = PhasingOptions(); o.seed = seed; o.recipe = randomStartRecipe
                let r = try Phaser.phase(data, options: o)
                eIter = try error(r.object, truth: truth)
                tIter = now() - t0
            }
            // refinement of a fresh copy of the model on this pattern
            var eRefine = Double.nan, tRefine = 0.0, eRefineThen = Double.nan, tRefineThen = 0.0
            if refineSteps > 0 {
                t0 = now()
                let (net2, _) = try PhaseNet.load(from: modelPath)
                var o = NeuralPhaser.Options(); o.learningRate = refineLearningRate; o.symmetries = symmetries; o.shifts = shifts
                let r = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net2, refineSteps: refineSteps, options: o)
                eRefine = try error(try PhasingPost.reportingFrame(object: r.object, support: r.support).object, truth: truth)
                tRefine = now() - t0
                // the refined prediction handed to the iterative engine, as --refine-steps K --then R does
                if let recipe = thenRecipe {
                    t0 = now()
                    eRefineThen = try handedOn(r.object, support: r.support, recipe: recipe)
                    tRefineThen = now() - t0 + tRefine
                }
            }
            rows.append([flat, ePredict, eThen, eIter, eRefine, eRefineThen])
            var cells = [cell(ePredict, tPredict), cell(eThen, tThen), cell(eIter, tIter), cell(eRefine, tRefine)]
            if refineSteps > 0 && thenRecipe != nil { cells.append(cell(eRefineThen, tRefineThen)) }
            print(String(format: "%7d  %.3f       ", i, flat) + cells.joined(separator: "  "))
            fflush(stdout)
        }
        let med = (0..<6).map { c in median(rows.map { $0[c] }) }
        let iterations = randomStartRecipe.totalIterations
        // only the columns that were run: a skipped one would print as "nan"
        var parts = [String(format: "flat phase %.3f", med[0]), String(format: "predict %.3f", med[1])]
        if thenRecipe != nil { parts.append(String(format: "predict+%@ %.3f", then, med[2])) }
        if iterative { parts.append(String(format: "iterative from random (%d iterations) %.3f", iterations, med[3])) }
        if refineSteps > 0 { parts.append(String(format: "refine %d %.3f", refineSteps, med[4])) }
        if refineSteps > 0 && thenRecipe != nil { parts.append(String(format: "refine %d+%@ %.3f", refineSteps, then, med[5])) }
        print("median of \(rows.count): " + parts.joined(separator: ", "))
        if let path = candidates {
            print(String(format: "median of %d: best candidate pass (knowing the truth) %.3f", oracle.count, median(oracle)))
            try SafeOutput.write(to: path, overwrite: true) {
                try (candidateLines.joined(separator: "\n") + "\n").write(toFile: $0, atomically: false, encoding: .utf8)
            }
            print("wrote \(candidateLines.count - 1) candidate passes to \(path)")
        }
        if splitError {
            print(String(format: "median of %d: predicted amplitude + true phase %.3f, true amplitude + predicted phase %.3f",
                         split.count, median(split.map(\.amplitude)), median(split.map(\.phase))))
        }
        let wins = rows.filter { !$0[2].isNaN && !$0[3].isNaN && $0[2] <= $0[3] }.count
        if thenRecipe != nil && iterative {
            print("predict+\(then) (\(thenRecipe!.totalIterations) iterations) at least as good as the iterative recipe (\(iterations)) on \(wins) of \(rows.count) crystals")
        }
    }
}

extension NeuralPhaser.PredictionSymmetries: ExpressibleByArgument {}
