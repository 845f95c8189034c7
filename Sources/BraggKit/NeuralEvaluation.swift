import Dispatch
import Numerics
import Simulation
import Phasing
import Neural

/// A trained model scored on freshly simulated crystals against the iterative engine
/// (`bragg bench nn-eval`): crystal i is `TrainingPair.make(size: n, seed:
/// TrainingOptions.evaluationSeed(i))`, the training distribution with seeds no training or
/// validation pair uses. Each output is scored as `bragg phase` writes it, by
/// `ReconstructionError.normalised` (twin, sub-voxel shift, global phase and scale removed,
/// and each object's linear phase ramp unless `keepRamps`).
public struct NeuralEvaluation {
    public struct Options {
        /// The model file; a fresh copy is loaded for every prediction and refinement.
        public var model: String
        /// The prediction's symmetric passes and shifts (`NeuralPhaser.Options`).
        public var symmetries: NeuralPhaser.PredictionSymmetries = .none
        public var shifts = 0
        /// Score every candidate pass (with `symmetries`), the prediction being the lowest-loss one.
        public var scoreCandidates = false
        /// Also score the predicted amplitude with the true phase and the reverse.
        public var splitError = false
        /// The recipe the prediction (and the refined prediction) is handed to; nil: none.
        public var then: Recipe?
        /// The recipe run from a random start; nil: none.
        public var randomStart: Recipe?
        /// Fine-tuning steps on each pattern (0: none) and their learning rate.
        public var refineSteps = 0
        public var refineLearningRate = 1e-4
        /// Compare without removing the objects' linear phase ramps.
        public var keepRamps = false
        public init(model: String) { self.model = model }
    }

    /// An error and the seconds it took (NaN, 0 when not run).
    public struct Score {
        public var error = Double.nan
        public var seconds = 0.0
    }

    /// One candidate pass of the prediction: its transform, physics losses (L1 as chosen
    /// by, L2) and χ² on the pattern, its error, and whether the loss chose it.
    public struct Candidate {
        public var transform: NeuralPhaser.PatternTransform
        public var lossL1: Double, lossL2: Double, chi2: Double
        public var error: Double
        public var chosen: Bool
    }

    /// One crystal's scores.
    public struct CrystalScores {
        public var index: Int
        /// The true amplitude with zero phase: a prediction that learns no phase.
        public var flatPhase: Double
        public var predict = Score(), then = Score(), randomStart = Score(), refine = Score(), refineThen = Score()
        /// With `scoreCandidates`, every pass in `candidateTransforms` order.
        public var candidates: [Candidate] = []
        /// With `splitError`: predicted amplitude + true phase, true amplitude + predicted phase.
        public var split: (amplitude: Double, phase: Double)?
    }

    public let options: Options
    /// The model's input edge: the crystals' pattern size.
    public let size: Int
    public let architecture: NetworkArchitecture

    /// Reads the model (its architecture gives the crystals' size).
    public init(options: Options) throws {
        self.options = options
        let (net, _) = try PhaseNet.load(from: options.model)
        architecture = net.architecture
        size = net.architecture.inputSize
    }

    func error(_ estimate: ComplexVolume, truth: ComplexVolume) throws -> Double {
        try ReconstructionError.normalised(estimate, truth: truth, removingRamps: !options.keepRamps)
    }

    /// Simulates crystal `i` and scores every output asked for.
    public func crystal(_ i: Int) throws -> CrystalScores {
        let n = size, o = options
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        let seed = TrainingOptions.evaluationSeed(i)
        let pair = try TrainingPair.make(size: n, seed: seed)
        let truth = try pair.object.centred(in: [n, n, n])
        var c = CrystalScores(index: i, flatPhase: try error(ComplexVolume(modulus: truth.modulus(), phase: RealVolume(shape: truth.shape)), truth: truth))
        // the prediction alone (a fresh copy of the model for every crystal)
        var t0 = now()
        let (net, _) = try PhaseNet.load(from: o.model)
        var po = NeuralPhaser.Options(); po.symmetries = o.symmetries; po.shifts = o.shifts
        // scoring candidates, the prediction is the lowest-loss candidate (as reconstruct
        // chooses it, testPredictionChosenOverSymmetries), so the passes run once
        let scored = o.scoreCandidates ? try NeuralPhaser.scoredCandidates(pattern: pair.intensity, model: net, options: po) : []
        let chosen = scored.indices.min { scored[$0].loss < scored[$1].loss }
        let p = try chosen.map { NeuralPhaser.object(amplitude: scored[$0].amplitude, phase: scored[$0].phase, box: [n, n, n], options: po) }
            ?? { let r = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net, refineSteps: 0, options: po)
                 return (r.object, r.support) }()
        c.predict.seconds = now() - t0
        let est = try PhasingPost.reportingFrame(object: p.object, support: p.support).object
        c.predict.error = try error(est, truth: truth)
        if let chosen {
            let l2 = try FourierPhysics(box: [n, n, n], objectShape: [n / 2 + 1, n / 2 + 1, n / 2 + 1], loss: .l2)
            try l2.setTarget(intensity: pair.intensity)
            for (k, s) in scored.enumerated() {
                let obj = NeuralPhaser.object(amplitude: s.amplitude, phase: s.phase, box: [n, n, n], options: po)
                let e = try error(try PhasingPost.reportingFrame(object: obj.object, support: obj.support).object, truth: truth)
                c.candidates.append(Candidate(transform: s.transform, lossL1: s.loss, lossL2: l2.forward(amplitude: s.amplitude, phase: s.phase),
                                              chi2: s.chi2, error: e, chosen: k == chosen))
            }
        }
        if o.splitError {
            // the prediction brought onto the truth (twin, integer shift), then its modulus
            // and its phase each paired with the truth's other half
            let twin = est.reflectedAboutCentre().conjugated()
            let direct = try Registration.shift(of: est, onto: truth), mirrored = try Registration.shift(of: twin, onto: truth)
            let (obj, sh) = mirrored.correlation > direct.correlation ? (twin, mirrored.shift) : (est, direct.shift)
            let e = try obj.rolled(by: sh.map { Int($0.rounded()) })
            c.split = (try error(ComplexVolume(modulus: e.modulus(), phase: truth.phase()), truth: truth),
                       try error(ComplexVolume(modulus: truth.modulus(), phase: e.phase()), truth: truth))
        }
        let data = try PhasingData(intensity: pair.intensity)
        // an object and support handed to the iterative engine, scored
        func handedOn(_ object: ComplexVolume, support: RealVolume, recipe: Recipe) throws -> Double {
            var po = PhasingOptions(); po.recipe = recipe; po.runs = 1; po.keep = 1; po.freeFraction = 0
            return try error(try Phaser.refine(data, from: object, support: support, options: po).object, truth: truth)
        }
        if let recipe = o.then {
            t0 = now()
            c.then.error = try handedOn(p.object, support: p.support, recipe: recipe)
            c.then.seconds = now() - t0 + c.predict.seconds
        }
        if let recipe = o.randomStart {
            t0 = now()
            var po = PhasingOptions(); po.seed = seed; po.recipe = recipe
            c.randomStart.error = try error(try Phaser.phase(data, options: po).object, truth: truth)
            c.randomStart.seconds = now() - t0
        }
        if o.refineSteps > 0 {
            // refinement of a fresh copy of the model on this pattern
            t0 = now()
            let (net2, _) = try PhaseNet.load(from: o.model)
            var ro = NeuralPhaser.Options(); ro.learningRate = o.refineLearningRate; ro.symmetries = o.symmetries; ro.shifts = o.shifts
            let r = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net2, refineSteps: o.refineSteps, options: ro)
            c.refine.error = try error(try PhasingPost.reportingFrame(object: r.object, support: r.support).object, truth: truth)
            c.refine.seconds = now() - t0
            // the refined prediction handed to the iterative engine, as --refine-steps K --then R does
            if let recipe = o.then {
                t0 = now()
                c.refineThen.error = try handedOn(r.object, support: r.support, recipe: recipe)
                c.refineThen.seconds = now() - t0 + c.refine.seconds
            }
        }
        return c
    }

    /// The median of the values that are not NaN (NaN when none is).
    public static func median(_ x: [Double]) -> Double {
        let s = x.filter { !$0.isNaN }.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }
}
