import ArgumentParser
import BraggKit
import Foundation

/// `bragg phase PATTERN --method neural`: the network's prediction (BraggKit's
/// `NeuralReconstruction`), optionally refined on the pattern ("transfer learning") and
/// handed to the iterative engine (`--then`), written as the same results file as the
/// iterative method. Called from PhaseCommand; this part checks, prints and maps errors.
struct NeuralPhaseRun {
    var pattern: String
    var mask: String?
    var model: String?
    var refineSteps: Int
    var learningRate: Double
    var anySize: Bool
    var out: String
    var force: Bool
    var quiet: Bool
    /// Iterative recipe run from the prediction (`--then`), if any.
    var then: Recipe? = nil
    /// Symmetries of the cube the prediction is chosen over (`--symmetries`).
    var symmetries: NeuralPhaser.PredictionSymmetries = .none
    /// The shrink-wrap schedule of the `--then` recipe (`--sigma`, `--threshold-reference`).
    var shrinkWrap = ShrinkWrapSchedule()

    func run() throws {
        guard Reconstruction.canWrite(to: out) else {
            throw UsageError("output '\(out)' must end in .h5, .cxi (CXI results) or .npy (complex object)")
        }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("output '\(out)' exists; use --force to replace it")
        }
        guard refineSteps >= 0 else { throw UsageError("--refine-steps must be ≥ 0 (got \(refineSteps))") }
        guard learningRate > 0 && learningRate < 1 else { throw UsageError("--refine-learning-rate must lie in (0, 1)") }
        guard let modelPath = model ?? NeuralModel.defaultPath() else {
            throw UsageError("no model given and \(NeuralModel.defaultRelativePath) not found: pass --model FILE.safetensors (or set BRAGG_MODEL)")
        }
        let net = try NeuralModel(path: modelPath)
        let input = try PatternInput.read(pattern, mask: mask)
        var options = NeuralPhaser.Options()
        options.learningRate = learningRate
        options.allowOtherSize = anySize
        options.symmetries = symmetries
        let bar = ProgressBar(quiet: quiet, unit: "steps")
        let prediction: NeuralPrediction
        do {
            prediction = try NeuralReconstruction.predict(input, source: pattern, model: net, refineSteps: refineSteps,
                                                          options: options, message: bar.message, progress: bar.handler)
        } catch let e as NeuralReconstructionError { throw UsageError(commandLineMessage(for: e)) }
        bar.finish()
        let r = prediction
        print(String(format: "result: prediction loss %.5f, best loss %.5f at step %d of %d, chi2 %.5f, support %d voxels, %.1f s → %@",
                     r.lossCurve.first ?? .nan, r.lossCurve.min() ?? .nan, r.bestStep, refineSteps, r.chi2,
                     Int(r.support.sum()), r.seconds, out))
        let result: Reconstruction
        if let recipe = then {
            let ibar = ProgressBar(quiet: quiet)
            result = try prediction.handOff(recipe: recipe, shrinkWrap: shrinkWrap, progress: ibar.handler)
            ibar.finish()
            print(String(format: "then %@: chi2 %.5f → %.5f, llk %.4f", recipe.description, r.chi2, result.chi2,
                         result.phasing?.metrics.llk ?? .nan))
        } else {
            result = try prediction.reconstruction()
        }
        try result.write(to: out, overwrite: force)
    }
}
