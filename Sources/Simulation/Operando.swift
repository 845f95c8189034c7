import Foundation
import Numerics

/// One state of a simulated in-operando series.
public struct OperandoState: @unchecked Sendable {
    /// "charge 2.5 V", "discharge 3.0 V", …
    public var label: String
    public var voltage: Double
    public var charging: Bool
    /// Ground-truth complex object in the pattern's box (centred).
    public var object: ComplexVolume
    /// Ground-truth support (amplitude > 0.5).
    public var support: RealVolume
    /// The simulated pattern (centred counts; Poisson noise unless disabled).
    public var pattern: RealVolume
}

/// Ground-truth metrics of a series, to check an analysis against.
public struct OperandoMetrics: Codable, Equatable, Sendable {
    public struct State: Codable, Equatable, Sendable {
        public var label: String
        public var voltage: Double
        public var charging: Bool
        /// Mean of Δφ = wrap(φ_i − φ_0) over the common support, radians and degrees.
        public var meanPhaseChangeRad: Double
        public var meanPhaseChangeDeg: Double
        /// Mean displacement along Q, u = Δφ/|Q|, Å (the seed's Table 1 prints twice this).
        public var meanDisplacementAngstrom: Double
        /// PCA order parameter Ω_i = ψ₁·Δφ_i (the seed's Eqs. (2)–(3)), radians.
        public var pcaOrderParameter: Double
        /// Voxels inside this state's support.
        public var supportVoxels: Int
    }
    public var states: [State]
    /// Voxels in the common support (amplitude > 0.5 in every state).
    public var commonSupportVoxels: Int
    /// Eigenvalues of the Gram matrix Gᵢⱼ = Δφᵢ·Δφⱼ (the non-zero eigenvalues of the
    /// covariance C = Σ Δφᵢ ⊗ Δφᵢ), largest first, rad².
    public var pcaEigenvalues: [Double]
    /// |Q| used for φ = Q·u, m⁻¹.
    public var qMagnitude: Double
    /// Q̂ in the lab frame.
    public var qHat: [Double]
    /// Voxel edge lengths along the array axes, nm.
    public var voxelSizeNm: [Double]
    public var seed: UInt64
}

/// Options of the simulated operando series.
public struct OperandoOptions: Equatable, Sendable {
    /// Box (and pattern) edge in voxels.
    public var size = 64
    public var seed: UInt64 = 1
    /// Peak photon count of each state's pattern.
    public var photons = 1e6
    /// Poisson noise on the patterns.
    public var poissonNoise = true
    /// Largest crystal extent along an array axis as a fraction of the box (≤ 0.5 keeps
    /// oversampling ≥ 2).
    public var fill = 0.45
    /// Sample on the grid conjugate to this geometry's detector frames (the pattern is
    /// then a stack of rocking frames); nil: an orthogonal lab grid.
    public var geometry: BraggGeometry? = nil
    /// Largest crystal dimension, m (the seed's crystal: ~1.6 × 1.4 × 1.3 µm). On an
    /// orthogonal grid it sets the voxel size; on a detector grid the crystal is shrunk
    /// if it would not fit `fill`.
    public var crystalSize = 1.5e-6
    /// Cut one top corner off the prism (a facet along (cos 30°, sin 30°, 1)/√2 of the
    /// crystal frame, removing ~6% of the volume), so the crystal is not centrosymmetric and
    /// its twin differs in amplitude; false: the plain prism, whose twin has the same
    /// amplitude and is told apart by the phase alone.
    public var truncatedCorner = false
    public init() {}
}

/// The seed study's six-state series (charge 2.5, 3.0, 3.5, 4.0 V; discharge 3.5, 3.0 V)
/// of one hexagonal LiCoO₂-like crystal: a stable core with a weak Gaussian-correlated
/// strain, three surface domains that form, grow, fragment at 4.0 V and partly reform on
/// discharge, a domain boundary that tilts by ~35° under cycling, and missing density
/// in the first state. The domain offsets are chosen so that the mean phase changes
/// come near the seed's Table 1 (0, 13.8, 45.5, −1.1, 22.0, 21.1°): seed 1 at 64³ gives
/// 0, 15.0, 44.4, −0.1, 25.2, 23.1° on the lab grid.
public enum OperandoSeries {
    public static let voltages: [(voltage: Double, charging: Bool)] =
        [(2.5, true), (3.0, true), (3.5, true), (4.0, true), (3.5, false), (3.0, false)]

    /// The series in memory, with its ground-truth metrics and the grid it was sampled on.
    public static func make(options: OperandoOptions = OperandoOptions(),
                            progress: ProgressHandler? = nil) throws
        -> (states: [OperandoState], metrics: OperandoMetrics, grid: SamplingGrid, crystal: Crystal) {
        let n = options.size
        guard n >= 16 else { throw SimulationError.invalidParameter("the operando box must be at least 16 voxels (got \(n))") }
        guard options.fill > 0, options.fill <= 0.5 else {
            throw SimulationError.invalidParameter("the crystal fill must lie in (0, 0.5] of the box so the pattern is oversampled at least twice (got \(options.fill))")
        }
        guard options.photons > 0 else { throw SimulationError.invalidParameter("the peak photon count must be > 0 (got \(options.photons))") }
        guard options.crystalSize > 0 else { throw SimulationError.invalidParameter("the crystal size must be > 0 m") }
        let shape = [n, n, n]
        let qGeom = options.geometry ?? .seedStudy
        try qGeom.validateForSimulation()
        let q = qGeom.q
        let grid: SamplingGrid = options.geometry.map { $0.realSpaceGrid(shape: shape) }
            ?? .orthogonal(shape: shape, voxelSize: options.crystalSize / (options.fill * Double(n)))

        // The crystal: a hexagonal prism, aspect ratios of the seed's 1.6 × 1.4 × 1.3 µm.
        var rng = SimulationRNG(seed: options.seed)
        let rotation = Matrix3x3.randomRotation(&rng)
        var prism = Crystal.hexagonalPrism(radius: 0.5, height: 1.3 / 1.5, aspects: [1.07, 0.93, 1.0])
        if options.truncatedCorner { prism.facets.append(Facet(normal: SIMD3(cos(.pi / 6), sin(.pi / 6), 1), distance: 0.42)) }
        var crystal = prism.rotated(by: rotation)
        crystal = crystal.scaled(by: options.crystalSize / max(crystal.extent.x, crystal.extent.y, crystal.extent.z))
        // Fit inside `fill` of the box in index space (matters on a skewed detector grid).
        let inv = grid.basis.inverse
        let indexExtent = (0..<3).map { a -> Double in
            let row = inv.rows[a]
            return crystal.extent(along: row) * norm(row)
        }
        let worst = indexExtent.max()! / (options.fill * Double(n))
        if worst > 1 { crystal = crystal.scaled(by: 1 / worst) }
        let size = max(crystal.extent.x, crystal.extent.y, crystal.extent.z)
        let unit = size / 1.5e-6                            // lengths below are for a 1.5 µm crystal
        let edge = 1.0 * (grid.voxelSizes.max() ?? 1)

        let amplitude = crystal.amplitude(on: grid)
        // Stable core strain: a weak, smooth Gaussian-correlated phase.
        let core = try PhaseField.gaussianCorrelated(shape: shape, correlationLength: Double(n) / 10, rms: 0.25,
                                                     support: amplitude, seed: options.seed ^ 0xC0DE)
        // Facet directions (crystal frame → lab): side facets at 0°, 120°, 240°.
        func side(_ deg: Double) -> SIMD3<Double> { rotation * SIMD3(cos(deg * .pi / 180), sin(deg * .pi / 180), 0) }
        let upperLeft = side(120), lowerLeft = side(240), right = side(0)
        let tiltAxis = rotation * SIMD3(0, 0, 1)
        let tiltPlus = Matrix3x3.rotation(axis: tiltAxis, angle: 35 * .pi / 180)
        let tiltMinus = Matrix3x3.rotation(axis: tiltAxis, angle: -35 * .pi / 180)
        let nm = 1e-9 * unit

        // Each state's domains: (domain, fragmentation seed or nil).
        func domain(_ dir: SIMD3<Double>, depth: Double, offset: Double, radius: Double = .infinity,
                    tilt: Matrix3x3 = .identity, patch: SIMD3<Double> = .zero) -> SurfaceDomain {
            SurfaceDomain(facetDirection: dir, depth: depth * nm, phaseOffset: offset, lateralRadius: radius * nm,
                          patchOffset: patch * nm, edgeWidth: edge, boundaryTilt: tilt)
        }
        let up = rotation * SIMD3(0, 0, 1)
        let states: [[(SurfaceDomain, UInt64?)]] = [
            // charge 2.5 V: upper-left and right domains exist; no lower-left domain.
            [(domain(upperLeft, depth: 120, offset: 0.9, radius: 450), nil),
             (domain(right, depth: 160, offset: -1.0), nil)],
            // charge 3.0 V: upper-left expands along the surface, right tilts ~35°, lower-left forms.
            [(domain(upperLeft, depth: 220, offset: 1.5, radius: 650), nil),
             (domain(right, depth: 180, offset: -1.1, tilt: tiltPlus), nil),
             (domain(lowerLeft, depth: 250, offset: 1.5, radius: 450), nil)],
            // charge 3.5 V: both left domains grow towards the centre; right splits in two.
            [(domain(upperLeft, depth: 220, offset: 1.6, radius: 700), nil),
             (domain(lowerLeft, depth: 450, offset: 1.5, radius: 550), nil),
             (domain(right, depth: 180, offset: -1.2, radius: 300, patch: up * 300), nil),
             (domain(right, depth: 180, offset: 0.6, radius: 300, patch: up * -300), nil)],
            // charge 4.0 V: upper-left fragments; lower-left merges with the core; right as at 2.5 V.
            [(domain(upperLeft, depth: 200, offset: 1.2, radius: 650), 41),
             (domain(lowerLeft, depth: 450, offset: -0.25, radius: 550), nil),
             (domain(right, depth: 160, offset: -1.0), nil)],
            // discharge 3.5 V: upper-left still fragmented; lower-left strain returns; right tilts back −35°.
            [(domain(upperLeft, depth: 200, offset: 1.4, radius: 650), 42),
             (domain(lowerLeft, depth: 450, offset: 1.6, radius: 550), nil),
             (domain(right, depth: 180, offset: -1.1, tilt: tiltMinus), nil)],
            // discharge 3.0 V: upper-left reforms (with impurities); lower-left smaller; right unchanged.
            [(domain(upperLeft, depth: 200, offset: 1.3, radius: 650), 43),
             (domain(lowerLeft, depth: 400, offset: 1.6, radius: 500), nil),
             (domain(right, depth: 180, offset: -1.1, tilt: tiltMinus), nil)],
        ]
        // Missing density in the first state: near the lower-left corner and in the core.
        let missing = [MissingDensity(centre: crystal.centre + lowerLeft * (0.3 * size) - up * (0.15 * size),
                                      radii: SIMD3(repeating: 260 * nm), fraction: 0.8, edgeWidth: edge),
                       MissingDensity(centre: crystal.centre + upperLeft * (0.1 * size),
                                      radii: SIMD3(repeating: 150 * nm), fraction: 0.6, edgeWidth: edge)]

        var result: [OperandoState] = []
        var phases: [RealVolume] = []
        var amplitudes: [RealVolume] = []
        for (i, doms) in states.enumerated() {
            try Interruption.check()
            var phase = core
            for (d, frag) in doms {
                var w = d.weight(on: grid, crystal: crystal)
                if let f = frag {
                    // Fragmentation: the domain breaks into patches with their own offsets.
                    let pieces = try PhaseField.gaussianCorrelated(shape: shape, correlationLength: Double(n) / 24,
                                                                   rms: 1, support: nil, seed: options.seed ^ (f << 32))
                    let strength: Float = f == 43 ? 0.25 : 1        // 3.0 V discharge: mostly reformed
                    pieces.withUnsafeFloats { pc in
                        w.withUnsafeMutableFloats { wp in
                            for k in 0..<wp.count { wp[k] *= 1 + strength * (pc[k] > 0.3 ? -1.6 : (pc[k] < -0.6 ? 0.8 : 0)) }
                        }
                    }
                }
                w.scale(by: Float(d.phaseOffset))
                try phase.add(w)
            }
            // A trace of state-to-state variation, as between real reconstructions.
            let jitter = try PhaseField.gaussianCorrelated(shape: shape, correlationLength: 2, rms: 0.03,
                                                           support: amplitude, seed: options.seed ^ UInt64(0xA0 + i))
            try phase.add(jitter)
            var amp = amplitude
            if i == 0 { for m in missing { try amp.multiply(by: m.factor(on: grid)) } }
            let object = try ComplexVolume(modulus: amp, phase: phase)
            let pattern = try Diffraction.diffract(object, box: shape, photons: options.photons,
                                                   seed: options.poissonNoise ? options.seed &+ UInt64(1000 + i) : nil)
            let (v, c) = voltages[i]
            result.append(OperandoState(label: "\(c ? "charge" : "discharge") \(String(format: "%.1f", v)) V",
                                        voltage: v, charging: c, object: object,
                                        support: amp.thresholded(above: 0.5), pattern: pattern))
            phases.append(phase)
            amplitudes.append(amp)
            progress?(ProgressReport(stage: "operando state", done: i + 1, total: states.count))
        }
        let metrics = groundTruthMetrics(objects: result.map { $0.object }, labels: result.map { ($0.label, $0.voltage, $0.charging) },
                                         qMagnitude: norm(q), qHat: normalized(q), voxelSizes: grid.voxelSizes,
                                         seed: options.seed)
        return (result, metrics, grid, crystal)
    }

    /// Ground-truth metrics of a series of objects against the first: mean phase change
    /// over the common support and the PCA order parameters, computed with the Gram
    /// matrix Gᵢⱼ = Δφᵢ·Δφⱼ (never the voxel-by-voxel covariance).
    public static func groundTruthMetrics(objects: [ComplexVolume], labels: [(String, Double, Bool)],
                                          qMagnitude: Double, qHat: SIMD3<Double>, voxelSizes: [Double],
                                          seed: UInt64) -> OperandoMetrics {
        let count = objects[0].count
        // Common support: amplitude > 0.5 in every state.
        var common = [Bool](repeating: true, count: count)
        var supportCounts: [Int] = []
        for o in objects {
            var c = 0
            o.withUnsafeFloats { p in
                for k in 0..<count {
                    let a2 = p[2 * k] * p[2 * k] + p[2 * k + 1] * p[2 * k + 1]
                    if a2 > 0.25 { c += 1 } else { common[k] = false }
                }
            }
            supportCounts.append(c)
        }
        let idx = (0..<count).filter { common[$0] }
        // Δφ_i = arg(ρ_i ρ_0*) on the common support.
        let deltas: [[Double]] = objects.map { o in
            o.withUnsafeFloats { p in objects[0].withUnsafeFloats { p0 in
                idx.map { k in
                    let re = Double(p[2 * k]) * Double(p0[2 * k]) + Double(p[2 * k + 1]) * Double(p0[2 * k + 1])
                    let im = Double(p[2 * k + 1]) * Double(p0[2 * k]) - Double(p[2 * k]) * Double(p0[2 * k + 1])
                    return atan2(im, re)
                }
            } }
        }
        let (omega, eig) = pcaOrderParameters(deltas)
        let states = objects.indices.map { i -> OperandoMetrics.State in
            let mean = idx.isEmpty ? 0 : deltas[i].reduce(0, +) / Double(idx.count)
            return OperandoMetrics.State(label: labels[i].0, voltage: labels[i].1, charging: labels[i].2,
                                         meanPhaseChangeRad: mean, meanPhaseChangeDeg: mean * 180 / .pi,
                                         meanDisplacementAngstrom: mean / qMagnitude * 1e10,
                                         pcaOrderParameter: omega[i], supportVoxels: supportCounts[i])
        }
        return OperandoMetrics(states: states, commonSupportVoxels: idx.count, pcaEigenvalues: eig,
                               qMagnitude: qMagnitude, qHat: [qHat.x, qHat.y, qHat.z],
                               voxelSizeNm: voxelSizes.map { $0 * 1e9 }, seed: seed)
    }

    /// PCA order parameters Ω_i = ψ₁·Δφ_i of the seed's Eqs. (2)–(3). With G = D Dᵀ (the
    /// states' Gram matrix) and its top eigenpair (λ₁, c), ψ₁ = Dᵀc/√λ₁, so Ω = √λ₁ c.
    /// The sign is chosen so that Σ Ω ≥ 0. Returns Ω and G's eigenvalues, largest first.
    public static func pcaOrderParameters(_ deltas: [[Double]]) -> (omega: [Double], eigenvalues: [Double]) {
        let m = deltas.count
        var g = [[Double]](repeating: [Double](repeating: 0, count: m), count: m)
        for i in 0..<m { for j in i..<m {
            var s = 0.0
            for k in 0..<deltas[i].count { s += deltas[i][k] * deltas[j][k] }
            g[i][j] = s; g[j][i] = s
        } }
        let (values, vectors) = symmetricEigen(g)
        guard let top = values.indices.max(by: { values[$0] < values[$1] }), values[top] > 0 else {
            return ([Double](repeating: 0, count: m), values.sorted(by: >))
        }
        var omega = vectors.map { $0[top] * values[top].squareRoot() }
        if omega.reduce(0, +) < 0 { omega = omega.map { -$0 } }
        return (omega, values.sorted(by: >))
    }

    /// Eigen-decomposition of a small symmetric matrix (Numerics.symmetricEigen).
    static func symmetricEigen(_ a0: [[Double]]) -> ([Double], [[Double]]) { Numerics.symmetricEigen(a0) }
}
