import ArgumentParser
import Formats
import Foundation
import Neural
import Numerics

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the neural phase-retrieval network on simulated crystals.",
        discussion: """
            Pairs come from the simulation module (hexagonal prisms with random aspect ratio \
            and rotation, Gaussian-correlated phase, Poisson noise at random flux), generated on \
            the fly from seeds: training pair i uses seed·10⁷ + i, the held-out validation pairs \
            seed·10⁷ + 5·10⁶ + i. The loss is the physics loss (L1 or L2 between predicted and \
            measured normalised Fourier amplitudes) plus, with --supervised-weight, a \
            supervised term on amplitude and phase. AdamW with a cosine learning-rate schedule. \
            A checkpoint (model + optimiser state, safetensors, written atomically) goes to --out \
            after every epoch, every --checkpoint-minutes within an epoch, and on an interrupt \
            (Ctrl-C); --resume continues from it with the next pair, so a long training can be \
            spread over many sessions. The same seed and --threads give the same model, \
            byte for byte, in every process: training plans its FFTs with FFTW 'estimate' unless \
            --fft-effort is given (measured plans are chosen by timing, so their rounding, and \
            with it the Poisson draws and every later step, can change from run to run).
            """
    )

    @Option(help: "Training pairs per epoch.")
    var samples: Int = 1000

    @Option(help: "Epochs (passes over the training pairs).")
    var epochs: Int = 10

    @Option(help: "Network width c (encoder channels c, 2c, 2c, 4c, 4c, 8c, 8c).")
    var width: Int = 8

    @Option(help: "Input pattern edge n (multiple of 8; the object is n/2).")
    var size: Int = 64

    @Option(help: "Model file to write (.safetensors), checkpointed each epoch.")
    var out: String

    @Flag(help: "Continue from the checkpoint in --out.")
    var resume = false

    @Option(name: .customLong("init"), help: ArgumentHelp(
        "Start from the weights of this model (same architecture) with a fresh optimiser and learning-rate schedule.",
        discussion: "Fine-tuning: e.g. a short run with a decaying rate after a long run at its peak rate. Use another --seed than the model's so the pairs are new.",
        valueName: "model"))
    var initModel: String?

    @Flag(help: "Overwrite an existing --out without --resume.")
    var force = false

    @Option(help: "Random seed of the pairs and the initial weights.")
    var seed: UInt64 = 1

    @Option(help: "Pairs per optimiser step.")
    var batch: Int = 4

    @Option(name: .customLong("learning-rate"), help: "Peak learning rate (cosine schedule).")
    var learningRate: Double = 2e-3

    @Option(help: "Physics loss: l1 or l2.")
    var loss: FourierLoss = .l1

    @Option(name: .customLong("supervised-weight"), help: "Weight of the supervised amplitude/phase term (0: physics loss only).")
    var supervisedWeight: Double = 0

    @Flag(name: .customLong("twin-aware"), inversion: .prefixedNo,
          help: "Supervise against the true object or its twin conj ρ(−r), whichever the prediction is nearer (the pattern cannot tell them apart).")
    var twinAware = true

    @Option(name: .customLong("checkpoint-minutes"), help: "Minutes between checkpoints within an epoch.")
    var checkpointMinutes: Double = 10

    @Option(help: "Held-out validation pairs evaluated after each epoch.")
    var validation: Int = 16

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1 (got \(samples))") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        guard width >= 1 && width <= 64 else { throw ValidationError("--width must be 1…64 (got \(width))") }
        guard size >= 8 && size % 8 == 0 && size <= 512 else { throw ValidationError("--size must be a multiple of 8 up to 512 (got \(size))") }
        guard learningRate > 0 && learningRate < 1 else { throw ValidationError("--learning-rate must lie in (0, 1)") }
        guard checkpointMinutes > 0 else { throw ValidationError("--checkpoint-minutes must be positive (got \(checkpointMinutes))") }
        guard supervisedWeight >= 0 else { throw ValidationError("--supervised-weight must be ≥ 0") }
        guard out.hasSuffix(".safetensors") else { throw ValidationError("--out must name a .safetensors file (got '\(out)')") }
    }

    func run() throws {
        common.apply()
        if !common.fftEffortGiven { FFTPlanner.defaultEffort = .estimate }
        var o = TrainingOptions()
        o.samples = samples; o.epochs = epochs; o.batch = batch
        o.learningRate = learningRate; o.loss = loss
        o.supervisedWeight = supervisedWeight; o.twinAware = twinAware; o.seed = seed; o.validationSamples = validation
        o.architecture = NetworkArchitecture(width: width, inputSize: size)
        let exists = FileManager.default.fileExists(atPath: out)
        if exists && !resume && !force {
            throw UsageError("\(out) exists: pass --resume to continue training it or --force to start again")
        }
        if resume && !exists { throw UsageError("--resume: no checkpoint at \(out)") }
        // The folder must take the checkpoints: found now, not at the end of the first epoch.
        try OutputCheck.file(out, overwrite: true)
        let trainer: Trainer
        if resume {
            trainer = try Trainer.resume(from: out, options: o)
        } else if let m = initModel {
            trainer = try Trainer.initialised(from: m, options: o)
        } else {
            trainer = try Trainer(options: o)
        }
        let bar = ProgressBar(quiet: common.quiet, unit: "pairs")
        bar.message("training \(trainer.net.architecture), \(trainer.net.parameterCount) parameters, \(samples) pairs × \(epochs) epochs, batch \(batch), \(Parallel.threads) thread(s)" + (resume ? "" : initModel.map { ", starting from the weights of \($0)" } ?? "") + (resume ? ", resuming after epoch \(trainer.epochsDone)" + (trainer.pairsDone > 0 ? " and \(trainer.pairsDone) pair(s)" : "") : ""))
        if resume && initModel != nil {
            bar.message("bragg: note: resuming: the weights come from the checkpoint in \(out), not from --init (which it records)")
        }
        if resume, let t = try SafetensorsFile.read(from: out).metadata["train_threads"].flatMap(Int.init), t != Parallel.threads {
            bar.message("bragg: note: the checkpoint was trained with \(t) thread(s) and this run uses \(Parallel.threads): the model will differ, in rounding, from an uninterrupted run with either")
        }
        let command = CommandLine.arguments.joined(separator: " ")
        var lastCheckpoint = Date()
        func save() throws {
            try trainer.checkpoint(to: out, extra: ["command": command])
            lastCheckpoint = Date()
        }
        do {
            try trainer.train(progress: bar.handler, afterStep: {
                if Date().timeIntervalSince(lastCheckpoint) >= checkpointMinutes * 60 { try save() }
                return true
            }) { epoch in
                try save()
                if let h = trainer.history.last {
                    bar.message(String(format: "epoch %d/%d: train loss %.5f, validation loss %.5f, validation χ² %.4f; checkpoint %@",
                                       epoch, epochs, h.train, h.validation, h.chi2, out))
                }
            }
        } catch let e as InterruptedError {
            bar.finish()
            // The trainer's state is that of its last whole optimiser step: save it.
            try save()
            printError("bragg: training interrupted; \(out) holds a checkpoint after epoch \(trainer.epochsDone) and \(trainer.pairsDone) pair(s) of the next (continue with --resume)")
            throw e
        }
        bar.finish()
        common.saveWisdom()
        print(String(format: "trained %@: %d epochs, final validation loss %.5f, %.0f s of training",
                     out, trainer.epochsDone, trainer.history.last?.validation ?? .nan, trainer.wallSeconds))
    }
}
