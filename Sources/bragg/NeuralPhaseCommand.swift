import ArgumentParser
import Foundation
import Formats
import Neural
import Numerics
import Phasing

/// `bragg phase PATTERN --method neural`: the network's prediction, optionally refined on
/// the pattern ("transfer learning"), written as the same results file as the iterative
/// method with the loss curve in it. Called from PhaseCommand.
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

    /// The default model: $BRAGG_MODEL, else models/default-c8-64.safetensors beside the
    /// executable's repository or in the working directory.
    static func defaultModelPath() -> String? {
        if let p = ProcessInfo.processInfo.environment["BRAGG_MODEL"], !p.isEmpty { return p }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {
            let c = dir.appendingPathComponent("models/default-c8-64.safetensors").path
            if FileManager.default.fileExists(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        let local = "models/default-c8-64.safetensors"
        return FileManager.default.fileExists(atPath: local) ? local : nil
    }

    func run() throws {
        let ext = (out as NSString).pathExtension.lowercased()
        guard ["h5", "cxi", "npy"].contains(ext) else {
            throw UsageError("output '\(out)' must end in .h5, .cxi (CXI results) or .npy (complex object)")
        }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("output '\(out)' exists; use --force to replace it")
        }
        guard refineSteps >= 0 else { throw UsageError("--refine-steps must be ≥ 0 (got \(refineSteps))") }
        guard learningRate > 0 && learningRate < 1 else { throw UsageError("--refine-learning-rate must lie in (0, 1)") }
        guard let modelPath = model ?? NeuralPhaseRun.defaultModelPath() else {
            throw UsageError("no model given and models/default-c8-64.safetensors not found: pass --model FILE.safetensors (or set BRAGG_MODEL)")
        }
        let (net, file) = try PhaseNet.load(from: modelPath)
        let (intensity, maskVolume, maskSource) = try readPatternInput(pattern, mask: mask)
        var options = NeuralPhaser.Options()
        options.learningRate = learningRate
        options.allowOtherSize = anySize
        options.symmetries = symmetries
        // A pattern of another shape than the model's input is binned and cropped to it
        // around the Bragg peak (NeuralInputFit), and the prediction carried back up to the
        // pattern's full grid; --any-size instead runs the network on a cubic pattern as it is.
        let n = net.architecture.inputSize
        var fit: NeuralInputFit? = nil
        var input = intensity, inputMask = maskVolume
        if !anySize && intensity.shape != [n, n, n] {
            do {
                let f = try NeuralInputFit.plan(pattern: intensity, mask: maskVolume, inputSize: n)
                (input, inputMask) = f.apply(intensity, mask: maskVolume)
                fit = f
            } catch let e as NeuralError {
                throw UsageError("'\(pattern)' cannot be fitted to model \(modelPath): \(e)")
            }
        }
        do {
            try NeuralPhaser.check(pattern: input, mask: inputMask, model: net, allowOtherSize: anySize)
        } catch let e as NeuralError {
            throw UsageError("'\(pattern)' does not fit model \(modelPath): \(e)" + (anySize ? "" : " (or pass --any-size to run the fully convolutional network on it anyway)"))
        }
        let bar = ProgressBar(quiet: quiet, unit: "steps")
        if let fit { bar.message("neural: the \(fit)") }
        bar.message("neural phasing of \(input.shape.map(String.init).joined(separator: "×")) pattern with \(modelPath) (\(net.architecture)), \(refineSteps) refinement step(s)")
        let t0 = Date()
        var r = try NeuralPhaser.reconstruct(pattern: input, mask: inputMask, model: net, refineSteps: refineSteps,
                                             options: options, progress: bar.handler)
        if let fit {
            let up = fit.carryUp(r.object, supportThreshold: options.supportThreshold)
            r.object = up.object; r.support = up.support
            let binnedChi2 = r.chi2
            // χ² from here on is against the full pattern, as the results file states it.
            let full = try PhasingData(intensity: intensity, mask: maskVolume, name: "'\(pattern)'")
            r.chi2 = try Phaser.metricsOfObject(up.object, ramp: .zero(), data: full).chi2
            bar.message(String(format: "neural: the prediction (chi2 %.4f against the binned, cropped pattern) carried up to the full %@ grid: chi2 %.4f, %d support voxels",
                               binnedChi2, intensity.shape.map(String.init).joined(separator: "×"), r.chi2, Int(up.support.sum())))
        }
        bar.finish()
        let seconds = Date().timeIntervalSince(t0)
        let bestStep = r.lossCurve.firstIndex(of: r.lossCurve.min() ?? .nan) ?? 0
        print(String(format: "result: prediction loss %.5f, best loss %.5f at step %d of %d, chi2 %.5f, support %d voxels, %.1f s → %@",
                     r.lossCurve.first ?? .nan, r.lossCurve.min() ?? .nan, bestStep, refineSteps, r.chi2,
                     Int(r.support.sum()), seconds, out))
        if let recipe = then {
            // Hand the prediction to the iterative engine as its starting object and support.
            let data = try PhasingData(intensity: intensity, mask: maskVolume, name: "'\(pattern)'")
            var opts = PhasingOptions()
            opts.recipe = recipe; opts.runs = 1; opts.keep = 1; opts.freeFraction = 0
            let ibar = ProgressBar(quiet: quiet)
            let res = try Phaser.refine(data, from: r.object, support: r.support, options: opts, progress: ibar.handler)
            ibar.finish()
            print(String(format: "then %@: chi2 %.5f → %.5f, llk %.4f", recipe.description, r.chi2, res.metrics.chi2, res.metrics.llk))
            if ext == "npy" {
                try ArrayIO.write(res.object, to: out, overwrite: force)
            } else {
                var file = iterativeResultsFile(res, options: opts, intensity: intensity, mask: maskVolume, source: pattern,
                                                maskSource: maskSource, supportDescription: "neural prediction (amplitude > 0.2 of its maximum)")
                file.parameters["algorithm"] = .string("neural phase retrieval, then iterative (BraggKit Neural + Phasing)")
                file.parameters["model"] = .string(modelPath)
                file.parameters["refine_steps"] = .int(refineSteps)
                file.parameters["prediction_symmetries"] = .string(symmetries.rawValue)
                file.metrics["neural_chi2"] = r.chi2
                if let fit {
                    file.parameters["neural_input"] = .string(fit.description)
                    file.parameters["neural_input_bin"] = .ints(fit.bin)
                }
                file.curves["loss"] = r.lossCurve
                try carryPatternGeometry(&file, pattern: pattern, patternShape: intensity.shape)
                try file.write(to: out, overwrite: force)
            }
            return
        }
        // the same frame as the iterative method's results: centred, ramp and global phase removed
        let framed = try PhasingPost.reportingFrame(object: r.object, support: r.support)
        if ext == "npy" {
            try ArrayIO.write(framed.object, to: out, overwrite: force)
        } else {
            var params: [String: HDF5Attribute] = [
                "algorithm": .string("neural phase retrieval (BraggKit Neural: encoder-decoder CNN + physics-loss refinement)"),
                "model": .string(modelPath),
                "model_architecture": .string(net.architecture.description),
                "refine_steps": .int(refineSteps),
                "prediction_symmetries": .string(symmetries.rawValue),
                "refine_learning_rate": .double(learningRate),
                "refine_loss": .string(options.loss.rawValue),
                "best_step": .int(bestStep),
                "support_threshold": .double(Double(options.supportThreshold)),
                "source": .string(pattern),
                "phase_ramp_removed_cycles_per_voxel": .doubles(framed.ramp.cyclesPerVoxel),
            ]
            if let m = maskSource { params["mask_source"] = .string(m) }
            if let fit {
                params["neural_input"] = .string(fit.description)
                params["neural_input_bin"] = .ints(fit.bin)
            }
            if let s = file.metadata["train_samples"] { params["model_train_samples"] = .string(s) }
            let metrics: [String: Double] = [
                "chi2": r.chi2, "loss": r.lossCurve.min() ?? .nan, "prediction_loss": r.lossCurve.first ?? .nan,
                "support_voxels": r.support.sum(), "seconds": seconds,
            ]
            var res = CXIResults(object: framed.object, support: framed.support, pattern: intensity, mask: maskVolume,
                                 parameters: params, metrics: metrics, curves: ["loss": r.lossCurve])
            try carryPatternGeometry(&res, pattern: pattern, patternShape: intensity.shape)
            try res.write(to: out, overwrite: force)
        }
    }
}
