import Foundation
import Numerics

/// The random distribution of training pairs (the seed study: hexagonal crystals with
/// random aspect ratios and Gaussian-correlated phase, Wu et al. IUCrJ 2021).
public struct TrainingPairOptions: Equatable, Sendable {
    /// Phase correlation length, voxels of the object grid (uniform in the range).
    public var correlationLength: ClosedRange<Double> = 2.0...6.0
    /// Phase RMS inside the crystal, radians (uniform in the range).
    public var phaseRMS: ClosedRange<Double> = 0.2...1.2
    /// Peak photon count of the pattern (log-uniform in the range).
    public var photons: ClosedRange<Double> = 1e4...1e7
    /// Largest crystal extent along a grid axis as a fraction of the object box.
    public var fill: ClosedRange<Double> = 0.55...0.9
    /// Poisson noise on the intensity (false: expected counts).
    public var poissonNoise = true
    public init() {}
}

/// One-call training pairs for the phase-retrieval network.
public enum TrainingPair {
    /// A random crystal and its diffraction pattern: the object is `size/2` voxels per
    /// axis (the network's output, centred), the intensity `size` per axis (the object
    /// padded into a box twice as large: oversampling 2 per axis), centred, scaled to a
    /// random peak photon count, with Poisson noise. The same seed gives the same bytes.
    ///
    /// The object's amplitude is 1 inside the crystal (partial on boundary voxels) and 0
    /// outside; its phase is Gaussian-correlated with zero mean inside the crystal.
    public static func make(size: Int, seed: UInt64,
                            options: TrainingPairOptions = TrainingPairOptions()) throws -> (intensity: RealVolume, object: ComplexVolume) {
        let p = try parameters(size: size, seed: seed, options: options)
        return try make(p)
    }

    /// The parameters drawn for one pair (for recording alongside it).
    public struct Parameters: Equatable, Sendable {
        public var size: Int
        public var seed: UInt64
        public var crystal: Crystal
        public var correlationLength: Double
        public var phaseRMS: Double
        public var photons: Double
        public var poissonNoise: Bool
    }

    public static func parameters(size: Int, seed: UInt64, options: TrainingPairOptions = TrainingPairOptions()) throws -> Parameters {
        guard size >= 8, size % 2 == 0 else {
            throw SimulationError.invalidParameter("the training pattern size must be even and at least 8 (got \(size))")
        }
        guard options.fill.lowerBound > 0, options.fill.upperBound <= 1,
              options.photons.lowerBound > 0, options.phaseRMS.lowerBound >= 0,
              options.correlationLength.lowerBound >= 0 else {
            throw SimulationError.invalidParameter("training options out of range: fill must lie in (0, 1], photons > 0, RMS and correlation length ≥ 0")
        }
        var rng = SimulationRNG(seed: seed)
        let n = size / 2
        let fill = rng.uniform(options.fill.lowerBound, options.fill.upperBound)
        // Leave one voxel of margin for the anti-aliased edge.
        let crystal = Crystal.randomHexagonalPrism(maxExtent: min(fill * Double(n), Double(n) - 2), rng: &rng)
        let corr = rng.uniform(options.correlationLength.lowerBound, options.correlationLength.upperBound)
        let rms = rng.uniform(options.phaseRMS.lowerBound, options.phaseRMS.upperBound)
        let lp = (log(options.photons.lowerBound), log(options.photons.upperBound))
        let photons = exp(rng.uniform(lp.0, lp.1))
        return Parameters(size: size, seed: seed, crystal: crystal, correlationLength: corr, phaseRMS: rms,
                          photons: photons, poissonNoise: options.poissonNoise)
    }

    public static func make(_ p: Parameters) throws -> (intensity: RealVolume, object: ComplexVolume) {
        let n = p.size / 2
        let shape = [n, n, n]
        let amplitude = p.crystal.amplitude(box: shape)
        let phase = try PhaseField.gaussianCorrelated(shape: shape, correlationLength: p.correlationLength,
                                                      rms: p.phaseRMS, support: amplitude,
                                                      seed: p.seed ^ 0x5048_4153_4500_0000)
        let object = try ComplexVolume(modulus: amplitude, phase: phase)
        let intensity = try Diffraction.diffract(object, box: [p.size, p.size, p.size], photons: p.photons,
                                                 seed: p.poissonNoise ? p.seed ^ 0x504F_4953_534F_4E00 : nil)
        return (intensity, object)
    }
}
