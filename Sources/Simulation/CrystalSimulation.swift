import Foundation
import Numerics

/// Which dislocation to put through the crystal's centre.
public enum DislocationKind: String, CaseIterable, Sendable {
    /// Line along Q̂, Burgers vector along the line.
    case screw
    /// Line along the lab's vertical (⊥ Q), Burgers vector along Q̂.
    case edge
}

/// Everything `bragg simulate crystal` can vary. Lengths in voxels unless named in m.
public struct CrystalOptions: Equatable, Sendable {
    /// Box (pattern) edge, voxels.
    public var size = 64
    public var seed: UInt64 = 1
    public var shape: CrystalShape = .hexagonalPrism
    /// Largest crystal extent along a box axis, voxels (nil: 0.4 × size). At most size/2,
    /// so the pattern is oversampled at least twice per axis.
    public var crystalSize: Double? = nil
    /// Random aspect ratios (hexagonal prism only) and a random rotation.
    public var randomOrientation = true
    /// Voxel edge, m (sets φ = Q·u for strain and dislocations).
    public var voxelSize = 10e-9
    /// Peak photon count.
    public var photons = 1e6
    public var poissonNoise = true
    public var background = 0.0
    public var blur: CoherenceBlur = .none
    public var defects: DetectorDefects = .none
    /// Gaussian-correlated phase: RMS (rad) and correlation length (voxels).
    public var phaseRMS = 0.0
    public var correlationLength = 4.0
    /// Uniform strain along Q.
    public var strain = 0.0
    /// Lattice tilt about the vertical axis, radians.
    public var tilt = 0.0
    public var dislocation: DislocationKind? = nil
    /// Q·b / 2π of the dislocation (an integer for a lattice Burgers vector).
    public var burgersWinding = 1.0
    /// Number of random surface domains and their phase offset (rad, random sign).
    public var surfaceDomains = 0
    public var domainPhase = 1.0
    /// Fraction of density removed in one random spherical region (0: none).
    public var missingDensity = 0.0
    /// The reflection (its Q sets the phase of displacement fields).
    public var geometry: BraggGeometry = .seedStudy
    public init() {}

    /// Checks the options; throws one sentence naming the first bad one.
    public func validate() throws {
        func bad(_ s: String) -> SimulationError { .invalidParameter(s) }
        guard size >= 8 else { throw bad("the box size must be at least 8 voxels (got \(size))") }
        guard size <= 1024 else { throw bad("the box size must be at most 1024 voxels (got \(size))") }
        let c = crystalSize ?? 0.4 * Double(size)
        guard c > 0 else { throw bad("the crystal size must be > 0 voxels (got \(c))") }
        guard c <= Double(size) / 2 else {
            throw SimulationError.undersampled(crystalVoxels: c, halfBox: size / 2)
        }
        guard photons > 0, photons.isFinite else { throw bad("the peak photon count must be > 0 (got \(photons))") }
        guard voxelSize > 0 else { throw bad("the voxel size must be > 0 m (got \(voxelSize))") }
        guard phaseRMS >= 0, correlationLength >= 0 else { throw bad("the phase RMS and correlation length must be ≥ 0") }
        guard background >= 0 else { throw bad("the background must be ≥ 0 counts per pixel (got \(background))") }
        guard surfaceDomains >= 0 else { throw bad("the number of surface domains must be ≥ 0 (got \(surfaceDomains))") }
        guard missingDensity >= 0, missingDensity <= 1 else { throw bad("the missing density fraction must lie in [0, 1] (got \(missingDensity))") }
        try geometry.validateForSimulation()
    }
}

/// A simulated crystal with its ground truth.
public struct SimulatedCrystal: @unchecked Sendable {
    /// Centred intensity (counts).
    public var intensity: RealVolume
    /// Ground-truth object in the box (centred).
    public var object: ComplexVolume
    /// Ground-truth support (amplitude > 0.5).
    public var support: RealVolume
    /// Bad-pixel mask (1 = bad), zeros without detector defects.
    public var mask: RealVolume
    /// The crystal in voxel units, centred at the box centre (positions in voxels).
    public var crystal: Crystal
    /// Q in rad per voxel (lab axes x, y, z; array axes z, y, x).
    public var qPerVoxel: SIMD3<Double>
}

public enum CrystalSimulation {
    /// Simulates one crystal by the options: shape, fields, diffraction, detector.
    public static func make(_ o: CrystalOptions) throws -> SimulatedCrystal {
        try o.validate()
        let n = o.size, shape = [n, n, n]
        var rng = SimulationRNG(seed: o.seed)
        let target = o.crystalSize ?? 0.4 * Double(n)
        var crystal: Crystal
        if o.randomOrientation {
            if o.shape == .hexagonalPrism {
                crystal = Crystal.randomHexagonalPrism(maxExtent: target, rng: &rng)
            } else {
                crystal = Crystal.named(o.shape, size: 1).rotated(by: .randomRotation(&rng))
                    .scaledToFit(maxExtent: SIMD3(repeating: target))
            }
        } else {
            crystal = Crystal.named(o.shape, size: 1).scaledToFit(maxExtent: SIMD3(repeating: target))
        }
        let grid = SamplingGrid.orthogonal(shape: shape)            // positions in voxels
        var amplitude = crystal.amplitude(on: grid)
        let q = o.geometry.q * o.voxelSize                          // rad per voxel
        var phase = RealVolume(shape: shape)
        if o.phaseRMS > 0 {
            phase = try PhaseField.gaussianCorrelated(shape: shape, correlationLength: o.correlationLength, rms: o.phaseRMS,
                                                      support: amplitude, seed: o.seed ^ 0x5048_4153_4500_0000)
        }
        if o.strain != 0 { try phase.add(PhaseField.uniformStrain(on: grid, q: q, strain: o.strain)) }
        if o.tilt != 0 { try phase.add(PhaseField.tilt(on: grid, q: q, axis: SIMD3(0, 1, 0), angle: o.tilt)) }
        if let kind = o.dislocation {
            // |b| = winding · 2π/|Q| along Q̂: Q·b = 2π·winding.
            let b = normalized(q) * (o.burgersWinding * 2 * .pi / norm(q))
            switch kind {
            case .screw:
                try phase.add(PhaseField.dislocation(on: grid, q: q, point: .zero, direction: normalized(q), burgers: b))
            case .edge:
                try phase.add(PhaseField.dislocation(on: grid, q: q, point: .zero, direction: SIMD3(0, 1, 0), burgers: b))
            }
        }
        for _ in 0..<o.surfaceDomains {
            let f = crystal.facets[rng.integer(below: crystal.facets.count)]
            let sign = rng.uniform() < 0.5 ? -1.0 : 1.0
            let ext = max(crystal.extent.x, crystal.extent.y, crystal.extent.z)
            let d = SurfaceDomain(facetDirection: f.normal, depth: rng.uniform(0.08, 0.25) * ext,
                                  phaseOffset: sign * o.domainPhase, lateralRadius: rng.uniform(0.2, 0.5) * ext)
            var w = d.weight(on: grid, crystal: crystal)
            w.scale(by: Float(d.phaseOffset))
            try phase.add(w)
        }
        if o.missingDensity > 0 {
            let ext = max(crystal.extent.x, crystal.extent.y, crystal.extent.z)
            let centre = crystal.centre + rng.unitVector() * (rng.uniform(0, 0.3) * ext)
            let m = MissingDensity(centre: centre, radii: SIMD3(repeating: 0.15 * ext), fraction: o.missingDensity)
            try amplitude.multiply(by: m.factor(on: grid))
        }
        let object = try ComplexVolume(modulus: amplitude, phase: phase)
        var intensity = try Diffraction.diffract(object, box: shape, photons: o.photons,
                                                 seed: o.poissonNoise ? o.seed ^ 0x504F_4953_534F_4E00 : nil,
                                                 background: o.background, blur: o.blur)
        var mask = RealVolume(shape: shape)
        if o.defects != .none {
            let (m, hot) = Diffraction.detectorMask(shape: shape, defects: o.defects, seed: o.seed)
            Diffraction.applyDefects(&intensity, mask: m, hot: hot, hotValue: o.defects.hotValue)
            mask = m
        }
        return SimulatedCrystal(intensity: intensity, object: object, support: amplitude.thresholded(above: 0.5),
                                mask: mask, crystal: crystal, qPerVoxel: q)
    }

    /// The oversampling ratio measured from a centred pattern, per axis: the box size n
    /// over the crystal's extent L. The autocorrelation (inverse transform of the
    /// intensity) of an object spanning L voxels, edge voxels partly filled, spans 2L + 1
    /// voxels; its modulus projected on each axis is counted where it exceeds `threshold`
    /// × its maximum, so L = (count − 1)/2. Meant for noise-free or high-count patterns
    /// (noise raises the autocorrelation's floor).
    public static func measuredOversampling(of intensity: RealVolume, threshold: Double = 1e-6) throws -> [Double] {
        var c = intensity.ifftshifted().complex()
        try SimFFT.inverse(&c)
        let a = c.modulus()
        let sh = a.shape
        var prof = sh.map { [Double](repeating: 0, count: $0) }
        a.withUnsafeFloats { p in
            for i0 in 0..<sh[0] { for i1 in 0..<sh[1] {
                var row = 0.0
                let base = (i0 * sh[1] + i1) * sh[2]
                for i2 in 0..<sh[2] { let v = Double(p[base + i2]); row += v; prof[2][i2] += v }
                prof[0][i0] += row; prof[1][i1] += row
            } }
        }
        return (0..<3).map { k in
            let m = prof[k].max() ?? 0
            let count = prof[k].filter { $0 > threshold * m }.count
            return Double(sh[k]) / max(Double(count - 1) / 2, 0.5)
        }
    }
}
