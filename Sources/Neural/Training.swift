import Foundation
import Numerics
import Simulation

/// Everything that defines a training run (recorded in the model's metadata).
public struct TrainingOptions: Sendable, Equatable {
    /// Training pairs per epoch (the same seeded pairs every epoch, in a shuffled order).
    public var samples: Int = 1000
    /// Held-out validation pairs (seeds disjoint from training).
    public var validationSamples: Int = 16
    public var epochs: Int = 10
    /// Pairs whose gradients are averaged per optimiser step.
    public var batch: Int = 4
    public var learningRate: Double = 2e-3
    public var minLearningRate: Double = 1e-5
    public var weightDecay: Double = 1e-4
    public var loss: FourierLoss = .l1
    /// Weight of the optional supervised term (0: physics loss alone).
    public var supervisedWeight: Double = 0
    /// Supervise against the truth or its twin, whichever is nearer the prediction.
    public var twinAware = true
    public var seed: UInt64 = 1
    public var architecture = NetworkArchitecture()
    public init() {}

    /// Seed of training pair i; validation pairs use a disjoint range; evaluation seeds
    /// (`evaluationSeed`) lie beyond both.
    public func trainingSeed(_ i: Int) -> UInt64 { seed &* 10_000_000 &+ UInt64(i) }
    public func validationSeed(_ i: Int) -> UInt64 { seed &* 10_000_000 &+ 5_000_000 &+ UInt64(i) }
    public static func evaluationSeed(_ i: Int) -> UInt64 { 0xE7A1_0000_0000 &+ UInt64(i) }

    public func validate() throws {
        try architecture.validate()
        guard samples >= 1, epochs >= 1, batch >= 1, validationSamples >= 0 else {
            throw NeuralError.invalidInput("samples, epochs and batch must be at least 1 (got \(samples), \(epochs), \(batch))")
        }
        guard learningRate > 0, learningRate < 1, minLearningRate >= 0 else {
            throw NeuralError.invalidInput("learning rate must lie in (0, 1) (got \(learningRate))")
        }
        guard supervisedWeight >= 0 else { throw NeuralError.invalidInput("supervised weight must be ≥ 0") }
    }

    var metadata: [String: String] {
        [
            "train_samples": String(samples), "train_validation_samples": String(validationSamples),
            "train_epochs": String(epochs), "train_batch": String(batch),
            "train_learning_rate": String(learningRate), "train_min_learning_rate": String(minLearningRate),
            "train_weight_decay": String(weightDecay), "train_loss": loss.rawValue,
            "train_supervised_weight": String(supervisedWeight), "train_supervised_twin_aware": String(twinAware),
            "train_seed": String(seed),
            "train_schedule": "cosine, warm-up 1% of steps", "train_data": "Simulation.TrainingPair.make(size:seed:)",
        ]
    }
}

/// One training example prepared for the network.
public struct TrainingExample {
    public var input: Tensor
    public var intensity: RealVolume
    public var amplitude: Tensor
    public var phase: Tensor
    /// The twin of the true object, conj ρ(−r) about the crystal's centre: the same
    /// diffraction pattern, so an equally right answer (`twinAware` supervision).
    public var twinAmplitude: Tensor
    public var twinPhase: Tensor
}

/// The twin conj ρ(−r) of an object given as amplitude and phase (`Volume.twin`): the point
/// reflection i → n + c − i per axis (indices modulo the edge n), with c = −1 or 0, whichever
/// maps the amplitude best onto itself (the crystal's centre lies on a voxel or between two,
/// depending on its size), and the phase negated.
func twin(amplitude a: RealVolume, phase p: RealVolume) -> (amplitude: RealVolume, phase: RealVolume) {
    var best = (overlap: -Double.infinity, indexSum: a.shape)
    for offset in [-1, 0] {
        let indexSum = a.shape.map { $0 + offset }
        let reflected = a.twin(indexSum: indexSum)
        let o = a.withUnsafeFloats { v in
            reflected.withUnsafeFloats { r in
                var o = 0.0
                for i in 0..<v.count { o += Double(v[i] * r[i]) }
                return o
            }
        }
        if o > best.overlap { best = (o, indexSum) }
    }
    let tp = p.twin(indexSum: best.indexSum)
    return (a.twin(indexSum: best.indexSum), tp.withUnsafeFloats { v in RealVolume(shape: tp.shape) { -v[$0] } })
}

/// Supervised loss on amplitude and phase against the truth: mean (A − A*)² plus the mean
/// of A*²·wrap(φ − φ*)² (phase counts only where the crystal is). Adds its gradient, times
/// `weight`, into dA and dφ; returns the loss.
func supervisedTerm(amplitude a: Tensor, phase p: Tensor, truthAmplitude ta: Tensor, truthPhase tp: Tensor,
                    weight: Double, dA: Tensor, dPhi: Tensor) -> Double {
    let n = a.count
    let w = Float(weight) / Float(n)
    var s = 0.0
    for i in 0..<n {
        let ea = a.pointer[i] - ta.pointer[i]
        var ep = p.pointer[i] - tp.pointer[i]
        ep = ep - 2 * Float.pi * (ep / (2 * Float.pi)).rounded()
        let t2 = ta.pointer[i] * ta.pointer[i]
        s += Double(ea * ea + t2 * ep * ep)
        dA.pointer[i] += 2 * w * ea
        dPhi.pointer[i] += 2 * w * t2 * ep
    }
    return s / Double(n)
}

/// The supervised loss alone (no gradient): mean (A − A*)² + A*²·wrap(φ − φ*)².
func supervisedDistance(amplitude a: Tensor, phase p: Tensor, truthAmplitude ta: Tensor, truthPhase tp: Tensor) -> Double {
    var s = 0.0
    for i in 0..<a.count {
        let ea = a.pointer[i] - ta.pointer[i]
        var ep = p.pointer[i] - tp.pointer[i]
        ep = ep - 2 * Float.pi * (ep / (2 * Float.pi)).rounded()
        s += Double(ea * ea + ta.pointer[i] * ta.pointer[i] * ep * ep)
    }
    return s / Double(a.count)
}

/// Trains a `PhaseNet` on simulated pairs, sample by sample, averaging gradients over
/// mini-batches. Deterministic for a given seed and thread count.
public final class Trainer {
    public let options: TrainingOptions
    public let net: PhaseNet
    public let optimizer: AdamW
    let physics: FourierPhysics
    /// Epochs completed (restored on resume).
    public private(set) var epochsDone = 0
    /// Pairs of the current epoch already trained on (whole optimiser steps only).
    public private(set) var pairsDone = 0
    /// Sum of the physics loss over those pairs (for the epoch's mean).
    var epochLossSum = 0.0
    public private(set) var history: [(epoch: Int, train: Double, validation: Double, chi2: Double)] = []
    /// Loss history this run continues ("epoch:train/validation,…"): of the run it resumed,
    /// or of the model it started from (`--init`), epochs numbered along that lineage.
    var previousHistory = ""
    /// Epochs of the models before this run (`--init`), so this run's epochs follow theirs
    /// in the history instead of restarting at 1.
    var lineageEpochs = 0
    /// The lineage epoch at which each run began (1 for a run from scratch; a fine-tuning
    /// run adds the epoch after its model's last).
    public private(set) var runStarts = [1]
    /// The model this run started from (`initialised(from:options:)`), for the metadata.
    var initRecord: String?
    /// Wall seconds of training in this process (not saved: checkpoints hold no clock time).
    public var wallSeconds = 0.0

    public init(options: TrainingOptions, net: PhaseNet? = nil) throws {
        try options.validate()
        self.options = options
        self.net = try net ?? PhaseNet(architecture: options.architecture, seed: options.seed)
        let steps = options.epochs * ((options.samples + options.batch - 1) / options.batch)
        optimizer = AdamW(parameters: self.net.parameters,
                          schedule: .cosine(peak: options.learningRate, floor: options.minLearningRate,
                                            warmup: max(1, steps / 100), total: steps),
                          weightDecay: Float(options.weightDecay), clipNorm: 1.0)
        let n = options.architecture.inputSize
        physics = try FourierPhysics(box: [n, n, n], objectShape: [n / 2, n / 2, n / 2], loss: options.loss)
    }

    /// Resumes from a checkpoint written by `checkpoint(to:)`.
    public static func resume(from path: String, options: TrainingOptions) throws -> Trainer {
        let (net, file) = try PhaseNet.load(from: path, expected: options.architecture)
        let t = try Trainer(options: options, net: net)
        try PhaseNet.restore(t.optimizer, from: file, path: path)
        t.epochsDone = file.metadata["epochs_done"].flatMap(Int.init) ?? 0
        t.pairsDone = file.metadata["epoch_pairs_done"].flatMap(Int.init) ?? 0
        t.epochLossSum = file.metadata["epoch_loss_sum"].flatMap(Double.init) ?? 0
        guard t.pairsDone < options.samples else {
            throw NeuralError.checkpointPastEpoch(path: path, pairsDone: t.pairsDone, samples: options.samples)
        }
        t.previousHistory = file.metadata["loss_history"] ?? ""
        t.lineageEpochs = file.metadata["loss_history_lineage_epochs"].flatMap(Int.init) ?? 0
        t.runStarts = Trainer.runStarts(file.metadata) ?? [t.lineageEpochs + 1]
        t.initRecord = file.metadata["train_init"]
        return t
    }

    /// Starts from the weights of a trained model with a fresh optimiser and schedule
    /// (fine-tuning); the model's own training record goes into this run's metadata.
    public static func initialised(from path: String, options: TrainingOptions) throws -> Trainer {
        let (net, file) = try PhaseNet.load(from: path, expected: options.architecture)
        let t = try Trainer(options: options, net: net)
        let m = file.metadata
        var record = "\((path as NSString).lastPathComponent): seed \(m["train_seed"] ?? "?"), \(m["train_samples"] ?? "?") pairs × \(m["train_epochs"] ?? "?") epochs, \(m["epochs_done"] ?? "0") done + \(m["epoch_pairs_done"] ?? "0") pairs"
        if let w = m["train_wall_seconds"] { record += ", \(w) s" }
        if let earlier = m["train_init"] { record += "; it started from " + earlier }
        t.initRecord = record
        // The model's loss history goes first; this run's epochs follow it.
        t.previousHistory = m["loss_history"] ?? ""
        t.lineageEpochs = t.previousHistory.split(separator: ",").count
        t.runStarts = (t.lineageEpochs > 0 ? Trainer.runStarts(m) ?? [1] : []) + [t.lineageEpochs + 1]
        return t
    }

    /// A simulated pair as network tensors.
    public static func example(size: Int, seed: UInt64, poissonNoise: Bool = true) throws -> TrainingExample {
        var options = TrainingPairOptions()
        options.poissonNoise = poissonNoise
        let pair = try TrainingPair.make(size: size, seed: seed, options: options)
        let input = Tensor(FourierPhysics.normalisedAmplitude(intensity: pair.intensity, mask: nil))
        let amplitude = pair.object.modulus(), phase = pair.object.phase()
        let t = twin(amplitude: amplitude, phase: phase)
        return TrainingExample(input: input, intensity: pair.intensity, amplitude: Tensor(amplitude), phase: Tensor(phase),
                               twinAmplitude: Tensor(t.amplitude), twinPhase: Tensor(t.phase))
    }

    /// One forward/backward pass on an example, gradients accumulated; returns the physics
    /// loss and χ².
    func accumulate(_ ex: TrainingExample) throws -> (loss: Double, chi2: Double) {
        try physics.setTarget(intensity: ex.intensity)
        let out = net.forward(ex.input)
        let l = physics.forward(amplitude: out.amplitude, phase: out.phase)
        let chi2 = physics.chi2
        let g = physics.backward()
        if options.supervisedWeight > 0 {
            // Supervise against the truth or its twin, whichever the prediction is nearer:
            // the pattern cannot tell them apart, and against the truth alone the best a
            // network can do is their average, a phase with its even part missing.
            var ta = ex.amplitude, tp = ex.phase
            if options.twinAware {
                let toTruth = supervisedDistance(amplitude: out.amplitude, phase: out.phase, truthAmplitude: ex.amplitude, truthPhase: ex.phase)
                let toTwin = supervisedDistance(amplitude: out.amplitude, phase: out.phase, truthAmplitude: ex.twinAmplitude, truthPhase: ex.twinPhase)
                if toTwin < toTruth { ta = ex.twinAmplitude; tp = ex.twinPhase }
            }
            _ = supervisedTerm(amplitude: out.amplitude, phase: out.phase, truthAmplitude: ta,
                               truthPhase: tp, weight: options.supervisedWeight, dA: g.amplitude, dPhi: g.phase)
        }
        net.backward(amplitude: g.amplitude, phase: g.phase)
        return (l, chi2)
    }

    /// Mean physics loss and χ² over the validation pairs (no gradients).
    public func validate() throws -> (loss: Double, chi2: Double) {
        guard options.validationSamples > 0 else { return (.nan, .nan) }
        var l = 0.0, c = 0.0
        for i in 0..<options.validationSamples {
            let ex = try Trainer.example(size: options.architecture.inputSize, seed: options.validationSeed(i))
            try physics.setTarget(intensity: ex.intensity)
            let out = net.forward(ex.input)
            l += physics.forward(amplitude: out.amplitude, phase: out.phase)
            c += physics.chi2
        }
        let n = Double(options.validationSamples)
        return (l / n, c / n)
    }

    /// Runs the remaining epochs (or up to `untilEpoch`), calling `afterEpoch` after each
    /// and `afterStep` after every optimiser step (return false to stop there; the state
    /// is then a consistent mid-epoch checkpoint). A run resumed from a mid-epoch
    /// checkpoint continues with the next pair of the same shuffled order.
    public func train(untilEpoch: Int? = nil, progress: ProgressHandler? = nil,
                      afterStep: (() throws -> Bool)? = nil,
                      afterEpoch: ((Int) throws -> Void)? = nil) throws {
        let o = options
        var clock = Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
        defer { wallSeconds += Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 - clock }
        while epochsDone < min(o.epochs, untilEpoch ?? o.epochs) {
            let epoch = epochsDone
            var order = Array(0..<o.samples)
            var rng = SeededGenerator(seed: o.seed &+ UInt64(epoch) &* 7919)
            order.shuffle(using: &rng)
            var sum = epochLossSum, count = pairsDone, inBatch = 0
            net.zeroGrad()
            for k in pairsDone..<order.count {
                try Interruption.check()
                let ex = try Trainer.example(size: o.architecture.inputSize, seed: o.trainingSeed(order[k]))
                let (l, _) = try accumulate(ex)
                sum += l; count += 1; inBatch += 1
                if inBatch == o.batch || k == order.count - 1 {
                    optimizer.update(batch: inBatch)
                    net.zeroGrad()
                    inBatch = 0
                    // The state a checkpoint records: only whole optimiser steps.
                    pairsDone = k + 1; epochLossSum = sum
                    if k < order.count - 1, let go = afterStep, try !go() { return }
                }
                progress?(ProgressReport(stage: "epoch \(epoch + 1)/\(o.epochs)", done: k + 1, total: o.samples,
                                         metrics: [("loss", sum / Double(count)),
                                                   ("lr", optimizer.schedule.rate(at: optimizer.step))]))
            }
            let (vl, vc) = try validate()
            history.append((epoch + 1, sum / Double(max(1, count)), vl, vc))
            epochsDone += 1
            pairsDone = 0; epochLossSum = 0
            let now = Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
            wallSeconds += now - clock
            clock = now
            try afterEpoch?(epochsDone)
        }
    }

    /// The run starts recorded in a model's metadata ("1,4,6"), if any.
    static func runStarts(_ metadata: [String: String]) -> [Int]? {
        guard let v = metadata["loss_history_run_starts"] else { return nil }
        let starts = v.split(separator: ",").compactMap { Int($0) }
        return starts.isEmpty ? nil : starts
    }

    /// Saves the model with optimiser state and training metadata (a resumable checkpoint).
    public func checkpoint(to path: String, extra: [String: String] = [:]) throws {
        var meta = options.metadata.merging(extra) { $1 }
        meta["epochs_done"] = String(epochsDone)
        meta["epoch_pairs_done"] = String(pairsDone)
        meta["epoch_loss_sum"] = String(epochLossSum)
        if let h = history.last {
            meta["last_train_loss"] = String(format: "%.6g", h.train)
            meta["last_validation_loss"] = String(format: "%.6g", h.validation)
            meta["last_validation_chi2"] = String(format: "%.6g", h.chi2)
        }
        let h = history.map { String(format: "%d:%.5g/%.5g", $0.epoch + lineageEpochs, $0.train, $0.validation) }
        meta["loss_history"] = ([previousHistory].filter { !$0.isEmpty } + h).joined(separator: ",")
        meta["loss_history_lineage_epochs"] = String(lineageEpochs)
        meta["loss_history_run_starts"] = runStarts.map(String.init).joined(separator: ",")
        // No wall-clock time here: the same seed and threads must give the same file, byte
        // for byte (the command prints the training time instead).
        meta["train_threads"] = String(Parallel.threads)
        if let r = initRecord { meta["train_init"] = r }
        try net.save(to: path, metadata: meta, optimizer: optimizer)
    }
}
