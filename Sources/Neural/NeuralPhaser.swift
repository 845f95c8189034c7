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
        /// Symmetries of the cube under which the network is run, keeping the prediction of
        /// lowest loss (`.none`: one pass).
        public var symmetries: PredictionSymmetries = .none
        /// With `symmetries`, also run each symmetric pass on the pattern shifted by 1…`shifts`
        /// voxels, forward and back, along each axis in turn (1 + 6·shifts offsets per
        /// symmetry); 0: the pattern in place only.
        public var shifts: Int = 0
        public init() {}
    }

    /// Test-time choice over the symmetries of the cubic grid. Reflecting a centred pattern
    /// about its centre, or permuting its axes, does the same to the object, and the training
    /// distribution (randomly rotated crystals) is invariant under both, yet the network's
    /// prediction is not: so it is run on each transformed pattern, each prediction is
    /// transformed back, and the one whose diffraction pattern matches the measured one best
    /// (the physics loss) is kept, as the refinement keeps its best step and iterative phasing
    /// ranks its runs by χ². (The complex mean of the aligned predictions was tried as well:
    /// no better than the plain prediction, see models/README.md.)
    public enum PredictionSymmetries: String, CaseIterable, Sendable {
        /// The pattern as it is (one network pass).
        case none
        /// The 8 reflections about the centre along any subset of the axes.
        case reflections
        /// The 48 symmetries of the cube: the reflections times the 6 axis permutations.
        case cube

        /// Each transform as (axis permutation, axes reflected after permuting).
        public var transforms: [(permutation: [Int], reflected: [Int])] {
            let reflections: [[Int]] = (0..<8).map { m in (0..<3).filter { m >> $0 & 1 == 1 } }
            let permutations: [[Int]] = self == .cube
                ? [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] : [[0, 1, 2]]
            switch self {
            case .none: return [([0, 1, 2], [])]
            case .reflections, .cube: return permutations.flatMap { p in reflections.map { (p, $0) } }
            }
        }
    }

    /// One candidate pass: the pattern's axes permuted, then reflected about the centre, then
    /// rolled by `offset` voxels. Rolling the centred intensity by s multiplies the object by
    /// the phase ramp e^{+2πi s·r/n} (forward FFT of sign −1) and changes nothing else, and
    /// a Bragg peak a voxel off the box's centre is as likely an input as a centred one (the
    /// training crystals' long-wavelength strain puts it there), so the shifted passes are
    /// further equally likely views of the same measurement.
    public typealias PatternTransform = (permutation: [Int], reflected: [Int], offset: [Int])

    /// The passes of `symmetries` × the offsets of `shifts` (see `Options.shifts`), the
    /// untransformed pattern first.
    public static func candidateTransforms(symmetries: PredictionSymmetries, shifts: Int) -> [PatternTransform] {
        var offsets: [[Int]] = [[0, 0, 0]]
        for k in stride(from: 1, through: max(shifts, 0), by: 1) {
            for a in 0..<3 { for sign in [1, -1] { var o = [0, 0, 0]; o[a] = sign * k; offsets.append(o) } }
        }
        return symmetries.transforms.flatMap { t in offsets.map { (t.permutation, t.reflected, $0) } }
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
    /// the threshold), the loss curve (entry 0: the prediction; with `options.symmetries`,
    /// the best pass, in whose frame the refinement then runs) and its χ².
    public static func reconstruct(pattern: RealVolume, mask: RealVolume? = nil, model: PhaseNet, refineSteps: Int = 0,
                                   options: Options = Options(), progress: ProgressHandler? = nil) throws
        -> (object: ComplexVolume, support: RealVolume, lossCurve: [Double], chi2: Double) {
        try check(pattern: pattern, mask: mask, model: model, allowOtherSize: options.allowOtherSize)
        guard refineSteps >= 0 else { throw NeuralError.invalidInput("refine steps must be ≥ 0 (got \(refineSteps))") }
        guard options.shifts >= 0, options.shifts < pattern.shape[0] / 4 else {
            throw NeuralError.invalidInput("prediction shifts must lie in 0..<\(pattern.shape[0] / 4) voxels (got \(options.shifts))")
        }
        guard options.shifts == 0 || options.symmetries != .none else {
            throw NeuralError.invalidInput("prediction shifts need a set of symmetries (reflections or cube) to add to")
        }
        let box = pattern.shape
        let half = box.map { $0 / 2 }
        let opt = AdamW(parameters: model.parameters, schedule: .constant(options.learningRate), clipNorm: 1.0)
        var curve: [Double] = []
        var best = (loss: Double.infinity, chi2: Double.nan, amplitude: Tensor(shape: [1] + half), phase: Tensor(shape: [1] + half))
        var frame = candidateTransforms(symmetries: options.symmetries, shifts: options.shifts)[0]
        if options.symmetries != .none {
            // the symmetric predictions compete by loss; the winner is entry 0 of the curve and
            // stands for the prediction
            for c in try scoredCandidates(pattern: pattern, mask: mask, model: model, options: options, progress: progress)
            where c.loss < best.loss {
                best = (c.loss, c.chi2, c.amplitude, c.phase); frame = c.transform
            }
            curve.append(best.loss)
            progress?(ProgressReport(stage: "predict", done: 0, total: refineSteps, metrics: [("loss", best.loss), ("best", best.loss)]))
            if refineSteps == 0 { return finish(best, curve: curve, box: box, options: options) }
        }
        // the refinement sees the pattern in the frame of the chosen pass (as it is, without
        // symmetries); its step 0 is then that pass again, already in the curve
        let framed = transformed(pattern, frame)
        let framedMask = mask.map { transformed($0, frame) }
        let physics = try FourierPhysics(box: box, objectShape: half, loss: options.loss)
        try physics.setTarget(intensity: framed, mask: framedMask)
        let input = Tensor(FourierPhysics.normalisedAmplitude(intensity: framed, mask: framedMask))
        for step in 0...refineSteps {
            try Interruption.check()
            let out = model.forward(input)
            let l = physics.forward(amplitude: out.amplitude, phase: out.phase)
            let counts = step > 0 || options.symmetries == .none
            if counts { curve.append(l) }
            if counts && l < best.loss {
                if options.symmetries == .none {
                    best = (l, physics.chi2, out.amplitude.copy(), out.phase.copy())
                } else {
                    let b = try transformedBack(amplitude: out.amplitude, phase: out.phase, frame, box: box)
                    best = (l, physics.chi2, b.amplitude, b.phase)
                }
            }
            progress?(ProgressReport(stage: step == 0 ? "predict" : "refine", done: step, total: refineSteps,
                                     metrics: [("loss", l), ("best", best.loss)]))
            if step == refineSteps { break }
            model.zeroGrad()
            let g = physics.backward()
            model.backward(amplitude: g.amplitude, phase: g.phase)
            opt.update()
        }
        return finish(best, curve: curve, box: box, options: options)
    }

    /// The object of the kept amplitude and phase, centred in the box, and its support.
    static func finish(_ best: (loss: Double, chi2: Double, amplitude: Tensor, phase: Tensor), curve: [Double], box: [Int],
                       options: Options) -> (object: ComplexVolume, support: RealVolume, lossCurve: [Double], chi2: Double) {
        let object = FourierPhysics.object(amplitude: best.amplitude, phase: best.phase, box: box)
        let amp = object.modulus()
        let t = amp.maximum() * options.supportThreshold
        let support = amp.thresholded(above: t)
        return (object, support, curve, best.chi2)
    }

    /// A pattern (or mask) under one candidate transform: axes permuted, reflected about the
    /// centre, rolled.
    static func transformed(_ v: RealVolume, _ t: PatternTransform) -> RealVolume {
        let moved = v.permutedAxes(t.permutation).reflectedAboutCentre(axes: t.reflected)
        return t.offset.allSatisfy { $0 == 0 } ? moved : try! moved.rolled(by: t.offset)
    }

    /// A network output (amplitude and phase) made in the frame of `t`, brought back to the
    /// pattern's frame: the roll's phase ramp taken off, then the symmetry undone on a grid
    /// one voxel larger per axis than the output. That odd grid, centred in the box like the
    /// output (both start at n/2 − ⌊m/2⌋), is closed under reflection about the box's centre
    /// voxel, where the output's even grid is not.
    static func transformedBack(amplitude: Tensor, phase: Tensor, _ t: PatternTransform, box: [Int]) throws
        -> (amplitude: Tensor, phase: Tensor) {
        let inverse = (0..<3).map { a in t.permutation.firstIndex(of: a)! }
        func back(_ v: RealVolume) throws -> Tensor {
            let odd = try v.embedded(in: v.shape.map { $0 + 1 }, at: [0, 0, 0])
            return Tensor(odd.reflectedAboutCentre(axes: t.reflected).permutedAxes(inverse))
        }
        var ph = phase.volume()
        if t.offset.contains(where: { $0 != 0 }) {
            // e^{+2πi s·r/n} off, r measured from the box's centre (a global phase aside, the
            // origin does not matter)
            let m = ph.shape
            let k = (0..<3).map { a in -2 * Float.pi * Float(t.offset[a]) / Float(box[a]) }
            ph.withUnsafeMutableFloats { p in
                var i = 0
                for z in 0..<m[0] { for y in 0..<m[1] { for x in 0..<m[2] {
                    p[i] += k[0] * Float(z - m[0] / 2) + k[1] * Float(y - m[1] / 2) + k[2] * Float(x - m[2] / 2)
                    i += 1
                } } }
            }
        }
        return (try back(amplitude.volume()), try back(ph))
    }

    /// What the prediction with `options.symmetries` (and `shifts`) chooses from: every
    /// candidate pass, brought back to the pattern's frame (object `half + 1` per axis, room
    /// for the odd-edge reflection), with its physics loss (`options.loss`) and χ² against the
    /// measured pattern, in the order of `candidateTransforms`. `object(amplitude:phase:box:options:)`
    /// makes each one's object and support as the prediction would.
    public static func scoredCandidates(pattern: RealVolume, mask: RealVolume? = nil, model: PhaseNet, options: Options,
                                        progress: ProgressHandler? = nil) throws
        -> [(transform: PatternTransform, loss: Double, chi2: Double, amplitude: Tensor, phase: Tensor)] {
        try check(pattern: pattern, mask: mask, model: model, allowOtherSize: options.allowOtherSize)
        let box = pattern.shape
        let grid = try FourierPhysics(box: box, objectShape: box.map { $0 / 2 + 1 }, loss: options.loss)
        try grid.setTarget(intensity: pattern, mask: mask)
        let transforms = candidateTransforms(symmetries: options.symmetries, shifts: options.shifts)
        let candidates = try symmetricPredictions(pattern: pattern, mask: mask, model: model, symmetries: options.symmetries,
                                                  shifts: options.shifts, progress: progress)
        return zip(transforms, candidates).map { t, c in
            let l = grid.forward(amplitude: c.amplitude, phase: c.phase)
            return (t, l, grid.chi2, c.amplitude, c.phase)
        }
    }

    /// The object of a predicted amplitude and phase, centred in `box`, and its support (the
    /// amplitude above `options.supportThreshold` of its maximum), as a prediction is returned.
    public static func object(amplitude: Tensor, phase: Tensor, box: [Int], options: Options = Options())
        -> (object: ComplexVolume, support: RealVolume) {
        let r = finish((0, 0, amplitude, phase), curve: [], box: box, options: options)
        return (r.object, r.support)
    }

    /// The network's predictions for the pattern under each of `symmetries` × the offsets of
    /// `shifts` (see `candidateTransforms`), each brought back to the pattern's frame
    /// (`transformedBack`), the untransformed pattern's first.
    static func symmetricPredictions(pattern: RealVolume, mask: RealVolume?, model: PhaseNet, symmetries: PredictionSymmetries,
                                     shifts: Int = 0, progress: ProgressHandler? = nil) throws -> [(amplitude: Tensor, phase: Tensor)] {
        let transforms = candidateTransforms(symmetries: symmetries, shifts: shifts)
        return try transforms.enumerated().map { k, t in
            try Interruption.check()
            progress?(ProgressReport(stage: "predict", done: k, total: transforms.count, metrics: []))
            let out = model.forward(Tensor(FourierPhysics.normalisedAmplitude(intensity: transformed(pattern, t),
                                                                               mask: mask.map { transformed($0, t) })))
            return try transformedBack(amplitude: out.amplitude, phase: out.phase, t, box: pattern.shape)
        }
    }
}
