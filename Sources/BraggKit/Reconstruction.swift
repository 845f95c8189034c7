import Foundation
import Numerics
import Formats
import Phasing
import Neural

/// One reconstruction of a pattern, by either method (iterative phasing, the network's
/// prediction, or the prediction handed to the iterative engine), in the frame results are
/// reported in (centred on its support, linear phase ramp and global phase removed), with
/// the CXI results file that records it.
///
/// ```swift
/// let input = try PatternInput.read("pattern.cxi", mask: nil)
/// var options = PhasingOptions(); options.recipe = try Recipe.parse("short")
/// let r = try Reconstruction.iterative(input, source: "pattern.cxi", options: options)
/// try r.write(to: "result.cxi", overwrite: false)
/// ```
public struct Reconstruction {
    /// Which method made it.
    public enum Method: String, Sendable {
        case iterative
        case neural
        /// The network's prediction refined by the iterative engine.
        case neuralThenIterative = "neural+iterative"
    }
    public var method: Method
    /// The complex object, centred in the pattern's box.
    public var object: ComplexVolume
    public var support: RealVolume
    /// χ² (Eq. 1 of Serban et al. 2024) against the full pattern.
    public var chi2: Double
    /// The results file, but for the geometry: `resultsFile()` carries that from the
    /// pattern's file.
    public var results: CXIResults
    /// The iterative engine's result (every run's metrics) when the iterative engine ran.
    public var phasing: PhasingResult?
    /// The pattern as given (FILE or FILE:DATASET), whose geometry the results carry.
    public var source: String

    /// The output names a reconstruction is written to: .h5/.cxi (the CXI results file) or
    /// .npy (the complex object alone).
    public static let fileExtensions = ["h5", "cxi", "npy"]

    /// Whether `path` names a file a reconstruction can be written to (see `fileExtensions`).
    public static func canWrite(to path: String) -> Bool {
        fileExtensions.contains((path as NSString).pathExtension.lowercased())
    }

    /// The iterative engine's result as a reconstruction of `pattern` (read from `source`):
    /// the results file of `ResultsFile.iterative`.
    public init(iterative result: PhasingResult, options: PhasingOptions, pattern: PatternInput, source: String,
                supportDescription: String) {
        self.init(method: .iterative, object: result.object, support: result.support, chi2: result.metrics.chi2,
                  results: ResultsFile.iterative(result, options: options, intensity: pattern.pattern, mask: pattern.mask,
                                                 source: source, maskSource: pattern.maskSource,
                                                 supportDescription: supportDescription),
                  phasing: result, source: source)
    }

    public init(method: Method, object: ComplexVolume, support: RealVolume, chi2: Double, results: CXIResults,
                phasing: PhasingResult? = nil, source: String) {
        self.method = method; self.object = object; self.support = support; self.chi2 = chi2
        self.results = results; self.phasing = phasing; self.source = source
    }

    /// Iterative phase retrieval of `pattern` (read from `source`) with `options` on this
    /// process' threads. `supportDescription` is recorded as the initial support (default:
    /// the options' support as Swift describes it).
    public static func iterative(_ pattern: PatternInput, source: String, options: PhasingOptions,
                                 supportDescription: String? = nil, progress: ProgressHandler? = nil) throws -> Reconstruction {
        let data = try PhasingData(intensity: pattern.pattern, mask: pattern.mask, name: "'\(source)'")
        let result = try Phaser.phase(data, options: options, progress: progress)
        return Reconstruction(iterative: result, options: options, pattern: pattern, source: source,
                              supportDescription: supportDescription ?? String(describing: options.support))
    }

    /// The CXI results file with the geometry of the pattern's file carried in (and the
    /// real-space voxel of the object); throws `PipelineError.geometry` when that record
    /// cannot describe the grid.
    public func resultsFile() throws -> CXIResults {
        var file = results
        try file.carryPatternGeometry(of: source, patternShape: results.pattern?.shape ?? object.shape)
        return file
    }

    /// Writes the reconstruction: .npy gets the complex object, .h5/.cxi the results file
    /// (`resultsFile()`). Throws `PipelineError.output` for another extension.
    public func write(to path: String, overwrite: Bool) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "npy": try ArrayIO.write(object, to: path, overwrite: overwrite)
        case "h5", "cxi": try resultsFile().write(to: path, overwrite: overwrite)
        default: throw PipelineError.output("output '\(path)' must end in .h5, .cxi (CXI results) or .npy (complex object)")
        }
    }
}

// MARK: - The neural method and its hand-off to the iterative engine

/// A trained phase-retrieval network read from its .safetensors file.
public struct NeuralModel {
    public let net: PhaseNet
    public let path: String
    /// The file's metadata (training record: samples, loss history, …).
    public let metadata: [String: String]

    public init(path: String) throws {
        let (net, file) = try PhaseNet.load(from: path)
        self.net = net; self.path = path; self.metadata = file.metadata
    }

    /// The model file shipped with BraggKit, relative to the repository.
    public static let defaultRelativePath = "models/default-c8-64.safetensors"

    /// The default model: $BRAGG_MODEL, else `defaultRelativePath` beside the executable's
    /// repository (up to five folders above it) or in the working directory; nil if none.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment,
                                   executable: String = CommandLine.arguments.first ?? "") -> String? {
        if let p = environment["BRAGG_MODEL"], !p.isEmpty { return p }
        let exe = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {
            let c = dir.appendingPathComponent(defaultRelativePath).path
            if FileManager.default.fileExists(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        return FileManager.default.fileExists(atPath: defaultRelativePath) ? defaultRelativePath : nil
    }
}

/// Why a pattern cannot go through a network: one sentence naming the pattern and model.
public enum NeuralReconstructionError: Error, CustomStringConvertible, Equatable {
    /// The pattern could not be binned and cropped to the model's input.
    case cannotFit(pattern: String, model: String, reason: NeuralError)
    /// The (fitted) pattern does not suit the network; `otherSizeAllowed` says whether a
    /// cubic pattern of another edge than the model's was allowed.
    case doesNotFit(pattern: String, model: String, reason: NeuralError, otherSizeAllowed: Bool)

    public var description: String {
        switch self {
        case .cannotFit(let p, let m, let e): return "'\(p)' cannot be fitted to model \(m): \(e)"
        case .doesNotFit(let p, let m, let e, _): return "'\(p)' does not fit model \(m): \(e)"
        }
    }
}

/// The network's prediction for a pattern, on the pattern's full grid, ready to be written
/// (`reconstruction()`) or handed to the iterative engine (`handOff(recipe:)`).
public struct NeuralPrediction {
    public let model: NeuralModel
    public let pattern: PatternInput
    public let source: String
    public let refineSteps: Int
    public let options: NeuralPhaser.Options
    /// How a pattern of another shape than the model's input was binned and cropped to it
    /// (nil: it went in as it is).
    public let fit: NeuralInputFit?
    /// The predicted object (centred, not yet in the reporting frame) and its support.
    public var object: ComplexVolume
    public var support: RealVolume
    /// The physics loss: entry 0 the prediction, then each refinement step.
    public let lossCurve: [Double]
    /// χ² against the full pattern.
    public var chi2: Double
    /// χ² against the binned, cropped pattern the network saw (when `fit` is not nil).
    public let binnedChi2: Double?
    /// Seconds the prediction (and refinement, and carrying up) took.
    public let seconds: Double

    /// The refinement step of the lowest loss (0: the prediction itself).
    public var bestStep: Int { lossCurve.firstIndex(of: lossCurve.min() ?? .nan) ?? 0 }

    /// The prediction as a reconstruction: centred, phase ramp and global phase removed,
    /// with its results file (model, refinement, loss curve).
    public func reconstruction() throws -> Reconstruction {
        let framed = try PhasingPost.reportingFrame(object: object, support: support)
        var params: [String: HDF5Attribute] = [
            "algorithm": .string("neural phase retrieval (BraggKit Neural: encoder-decoder CNN + physics-loss refinement)"),
            "model": .string(model.path),
            "model_architecture": .string(model.net.architecture.description),
            "refine_steps": .int(refineSteps),
            "prediction_symmetries": .string(options.symmetries.rawValue),
            "refine_learning_rate": .double(options.learningRate),
            "refine_loss": .string(options.loss.rawValue),
            "best_step": .int(bestStep),
            "support_threshold": .double(Double(options.supportThreshold)),
            "source": .string(source),
            "phase_ramp_removed_cycles_per_voxel": .doubles(framed.ramp.cyclesPerVoxel),
        ]
        if let m = pattern.maskSource { params["mask_source"] = .string(m) }
        if let fit {
            params["neural_input"] = .string(fit.description)
            params["neural_input_bin"] = .ints(fit.bin)
        }
        if let s = model.metadata["train_samples"] { params["model_train_samples"] = .string(s) }
        let metrics: [String: Double] = [
            "chi2": chi2, "loss": lossCurve.min() ?? .nan, "prediction_loss": lossCurve.first ?? .nan,
            "support_voxels": support.sum(), "seconds": seconds,
        ]
        let file = CXIResults(object: framed.object, support: framed.support, pattern: pattern.pattern, mask: pattern.mask,
                              parameters: params, metrics: metrics, curves: ["loss": lossCurve])
        return Reconstruction(method: .neural, object: framed.object, support: framed.support, chi2: chi2,
                              results: file, source: source)
    }

    /// Hands the prediction (object and support) to the iterative engine as its start and
    /// runs `recipe` from it (one run, no free pixels withheld) with the shrink-wrap σ schedule
    /// and threshold reference `shrinkWrap`; the results file is the iterative one with the
    /// model, the prediction's χ² and its loss curve added.
    public func handOff(recipe: Recipe, shrinkWrap: ShrinkWrapSchedule = ShrinkWrapSchedule(),
                        progress: ProgressHandler? = nil) throws -> Reconstruction {
        let data = try PhasingData(intensity: pattern.pattern, mask: pattern.mask, name: "'\(source)'")
        var opts = PhasingOptions()
        opts.recipe = recipe; opts.runs = 1; opts.keep = 1; opts.freeFraction = 0
        opts.shrinkWrap = shrinkWrap
        let res = try Phaser.refine(data, from: object, support: support, options: opts, progress: progress)
        var file = ResultsFile.iterative(res, options: opts, intensity: pattern.pattern, mask: pattern.mask, source: source,
                                         maskSource: pattern.maskSource,
                                         supportDescription: "neural prediction (amplitude > \(String(format: "%g", Double(options.supportThreshold))) of its maximum)")
        file.parameters["algorithm"] = .string("neural phase retrieval, then iterative (BraggKit Neural + Phasing)")
        file.parameters["model"] = .string(model.path)
        file.parameters["refine_steps"] = .int(refineSteps)
        file.parameters["prediction_symmetries"] = .string(options.symmetries.rawValue)
        file.metrics["neural_chi2"] = chi2
        if let fit {
            file.parameters["neural_input"] = .string(fit.description)
            file.parameters["neural_input_bin"] = .ints(fit.bin)
        }
        file.curves["loss"] = lossCurve
        return Reconstruction(method: .neuralThenIterative, object: res.object, support: res.support, chi2: res.metrics.chi2,
                              results: file, phasing: res, source: source)
    }
}

/// The neural method on a pattern of any shape.
public enum NeuralReconstruction {
    /// Predicts the object of `pattern` (read from `source`) with `model`, refined on it for
    /// `refineSteps` steps (the model's weights change). A pattern of another shape than the
    /// model's input is binned and cropped to it around the Bragg peak (`NeuralInputFit`),
    /// and the prediction carried back up to the pattern's full grid, unless
    /// `options.allowOtherSize` runs the network on a cubic pattern as it is. `message`
    /// receives one line per step worth telling (the fit, the run, the carrying up).
    public static func predict(_ pattern: PatternInput, source: String, model: NeuralModel, refineSteps: Int = 0,
                               options: NeuralPhaser.Options = NeuralPhaser.Options(),
                               message: ((String) -> Void)? = nil, progress: ProgressHandler? = nil) throws -> NeuralPrediction {
        let net = model.net
        let intensity = pattern.pattern, mask = pattern.mask
        let n = net.architecture.inputSize
        var fit: NeuralInputFit? = nil
        var input = intensity, inputMask = mask
        if !options.allowOtherSize && intensity.shape != [n, n, n] {
            do {
                let f = try NeuralInputFit.plan(pattern: intensity, mask: mask, inputSize: n)
                (input, inputMask) = f.apply(intensity, mask: mask)
                fit = f
            } catch let e as NeuralError {
                throw NeuralReconstructionError.cannotFit(pattern: source, model: model.path, reason: e)
            }
        }
        do {
            try NeuralPhaser.check(pattern: input, mask: inputMask, model: net, allowOtherSize: options.allowOtherSize)
        } catch let e as NeuralError {
            throw NeuralReconstructionError.doesNotFit(pattern: source, model: model.path, reason: e,
                                                       otherSizeAllowed: options.allowOtherSize)
        }
        if let fit { message?("neural: the \(fit)") }
        message?("neural phasing of \(input.shape.map(String.init).joined(separator: "×")) pattern with \(model.path) (\(net.architecture)), \(refineSteps) refinement step(s)")
        let t0 = Date()
        var r = try NeuralPhaser.reconstruct(pattern: input, mask: inputMask, model: net, refineSteps: refineSteps,
                                             options: options, progress: progress)
        var binnedChi2: Double? = nil
        if let fit {
            let up = fit.carryUp(r.object, supportThreshold: options.supportThreshold)
            r.object = up.object; r.support = up.support
            binnedChi2 = r.chi2
            // χ² from here on is against the full pattern, as the results file states it.
            let full = try PhasingData(intensity: intensity, mask: mask, name: "'\(source)'")
            r.chi2 = try Phaser.metricsOfObject(up.object, ramp: .zero(), data: full).chi2
            message?(String(format: "neural: the prediction (chi2 %.4f against the binned, cropped pattern) carried up to the full %@ grid: chi2 %.4f, %d support voxels",
                            binnedChi2 ?? .nan, intensity.shape.map(String.init).joined(separator: "×"), r.chi2, Int(up.support.sum())))
        }
        return NeuralPrediction(model: model, pattern: pattern, source: source, refineSteps: refineSteps, options: options,
                                fit: fit, object: r.object, support: r.support, lossCurve: r.lossCurve, chi2: r.chi2,
                                binnedChi2: binnedChi2, seconds: Date().timeIntervalSince(t0))
    }
}
