import Foundation
import Numerics

/// Phase retrieval with a trained network: predict, then refine ("transfer learning") by
/// fine-tuning all weights on this one pattern with the physics loss, keeping the best
/// prediction by loss.
public enum NeuralPhaser {
    /// Settings of the refinement.
    public struct Options: Sendable {
        public var learningRate: Double = 1e-4
        public var loss: FourierLoss = .l1
        /// Support threshold, fraction of the largest amplitude.
        public var supportThreshold: Float = 0.2
        /// Run on a cubic pattern of another edge than the model's (multiple of 8).
        public var allowOtherSize = false
        public init() {}
    }

    /// Checks that `pattern` (and `mask`) suit `model`; throws a one-sentence error if not.
    public static func check(pattern: RealVolume, mask: RealVolume?, model: PhaseNet, allowOtherSize: Bool) throws {
        let s = pattern.shape
        guard s.count == 3, s[0] == s[1], s[1] == s[2] else {
            throw NeuralError.invalidInput("the neural method needs a cubic 3D pattern, got shape \(s)")
        }
        let n = model.architecture.inputSize
        if !allowOtherSize && s[0] != n {
            throw NeuralError.invalidInput("the model was trained on \(n)³ patterns but this pattern is \(s[0])³ (crop or bin it to \(n)³)")
        }
        guard s[0] % 8 == 0 else {
            throw NeuralError.invalidInput("the network needs a pattern edge that is a multiple of 8, got \(s[0])")
        }
        if let m = mask, m.shape != s { throw NeuralError.invalidInput("the mask has shape \(m.shape) but the pattern \(s)") }
        let bad = pattern.nonFiniteCounts()
        if bad.nan + bad.inf > 0 { throw NeuralError.invalidInput("the pattern holds \(bad.nan) NaN and \(bad.inf) infinite values") }
    }

    /// Predicts an object for `pattern` (centred intensity, mask nonzero = bad), refines the
    /// model on it for `refineSteps` Adam steps (the model's weights change), and returns
    /// the best object by loss, centred in the pattern's box, its support (amplitude above
    /// the threshold), the loss curve (entry 0: the plain prediction) and its χ².
    public static func reconstruct(pattern: RealVolume, mask: RealVolume? = nil, model: PhaseNet, refineSteps: Int = 0,
                                   options: Options = Options(), progress: ProgressHandler? = nil) throws
        -> (object: ComplexVolume, support: RealVolume, lossCurve: [Double], chi2: Double) {
        try check(pattern: pattern, mask: mask, model: model, allowOtherSize: options.allowOtherSize)
        guard refineSteps >= 0 else { throw NeuralError.invalidInput("refine steps must be ≥ 0 (got \(refineSteps))") }
        let box = pattern.shape
        let half = box.map { $0 / 2 }
        let physics = try FourierPhysics(box: box, objectShape: half, loss: options.loss)
        try physics.setTarget(intensity: pattern, mask: mask)
        let input = Tensor(FourierPhysics.normalisedAmplitude(intensity: pattern, mask: mask))
        let opt = AdamW(parameters: model.parameters, schedule: .constant(options.learningRate), clipNorm: 1.0)
        var curve: [Double] = []
        var best = (loss: Double.infinity, chi2: Double.nan, amplitude: Tensor(shape: [1] + half), phase: Tensor(shape: [1] + half))
        for step in 0...refineSteps {
            try Interruption.check()
            let out = model.forward(input)
            let l = physics.forward(amplitude: out.amplitude, phase: out.phase)
            curve.append(l)
            if l < best.loss {
                best = (l, physics.chi2, out.amplitude.copy(), out.phase.copy())
            }
            progress?(ProgressReport(stage: step == 0 ? "predict" : "refine", done: step, total: refineSteps,
                                     metrics: [("loss", l), ("best", best.loss)]))
            if step == refineSteps { break }
            model.zeroGrad()
            let g = physics.backward()
            model.backward(amplitude: g.amplitude, phase: g.phase)
            opt.update()
        }
        let object = FourierPhysics.object(amplitude: best.amplitude, phase: best.phase, box: box)
        let amp = object.modulus()
        let t = amp.maximum() * options.supportThreshold
        let support = amp.thresholded(above: t)
        return (object, support, curve, best.chi2)
    }
}
