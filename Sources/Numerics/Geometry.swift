import Foundation

// The one definition of the diffraction geometry and its small linear algebra, shared by
// Simulation (sampling crystals on the detector-conjugate grid) and Analysis (the lab
// frame, |Q|, displacement and strain).

/// A 3-vector of the laboratory frame (x, y, z): metres, or inverse metres.
public typealias Vector3 = SIMD3<Double>

@inlinable public func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }
@inlinable public func cross<T: SIMDScalar & FloatingPoint>(_ a: SIMD3<T>, _ b: SIMD3<T>) -> SIMD3<T> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inlinable public func norm(_ a: SIMD3<Double>) -> Double { dot(a, a).squareRoot() }
@inlinable public func normalized(_ a: SIMD3<Double>) -> SIMD3<Double> { a / norm(a) }

/// A 3×3 matrix of Doubles acting on (x, y, z) column vectors, stored as three rows.
public struct Matrix3x3: Equatable, Sendable, CustomStringConvertible {
    public var row0: SIMD3<Double>, row1: SIMD3<Double>, row2: SIMD3<Double>

    public init(rows: [SIMD3<Double>]) {
        precondition(rows.count == 3, "a 3×3 matrix has three rows")
        row0 = rows[0]; row1 = rows[1]; row2 = rows[2]
    }
    /// The matrix whose columns are `c0, c1, c2`.
    public init(columns c: [SIMD3<Double>]) {
        precondition(c.count == 3, "a 3×3 matrix has three columns")
        row0 = SIMD3(c[0].x, c[1].x, c[2].x); row1 = SIMD3(c[0].y, c[1].y, c[2].y); row2 = SIMD3(c[0].z, c[1].z, c[2].z)
    }
    public static let identity = Matrix3x3(rows: [SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)])

    public var rows: [SIMD3<Double>] { [row0, row1, row2] }
    public var columns: [SIMD3<Double>] { [column(0), column(1), column(2)] }
    @inlinable public func row(_ i: Int) -> SIMD3<Double> { i == 0 ? row0 : (i == 1 ? row1 : row2) }
    @inlinable public func column(_ i: Int) -> SIMD3<Double> { SIMD3(row0[i], row1[i], row2[i]) }

    public var transposed: Matrix3x3 { Matrix3x3(rows: columns) }
    public var determinant: Double { dot(row0, cross(row1, row2)) }
    /// Whether the inverse exists (finite, nonzero determinant).
    public var isInvertible: Bool { let d = determinant; return d != 0 && d.isFinite }

    /// The inverse; the matrix must be invertible (see `isInvertible`).
    public var inverse: Matrix3x3 {
        let det = determinant
        precondition(det != 0 && det.isFinite, "singular matrix")
        // The columns of the inverse are the cross products of the rows, over the determinant.
        return Matrix3x3(columns: [cross(row1, row2) / det, cross(row2, row0) / det, cross(row0, row1) / det])
    }

    @inlinable public static func * (m: Matrix3x3, v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(dot(m.row0, v), dot(m.row1, v), dot(m.row2, v))
    }
    public static func * (a: Matrix3x3, b: Matrix3x3) -> Matrix3x3 { Matrix3x3(columns: b.columns.map { a * $0 }) }
    public static func * (a: Matrix3x3, s: Double) -> Matrix3x3 { Matrix3x3(rows: a.rows.map { $0 * s }) }

    /// Rotation by `angle` (radians, right hand) about `axis` (normalised here).
    public static func rotation(axis: SIMD3<Double>, angle: Double) -> Matrix3x3 {
        let a = normalized(axis), c = cos(angle), s = sin(angle), t = 1 - c
        return Matrix3x3(rows: [
            SIMD3(t * a.x * a.x + c, t * a.x * a.y - s * a.z, t * a.x * a.z + s * a.y),
            SIMD3(t * a.x * a.y + s * a.z, t * a.y * a.y + c, t * a.y * a.z - s * a.x),
            SIMD3(t * a.x * a.z - s * a.y, t * a.y * a.z + s * a.x, t * a.z * a.z + c),
        ])
    }

    public var description: String { "Matrix3x3(\(rows.map { [$0.x, $0.y, $0.z] }))" }
}

/// The diffraction geometry of one Bragg reflection measured by a rocking scan, and the
/// real-space grid conjugate to it.
///
/// Lab frame (right-handed, SI units, the seed study's): z along the incident beam, y
/// vertical (up), x horizontal (x = y × z). 2θ is the total scattering angle; the detector
/// is lifted above the horizontal plane by the out-of-plane angle δ, and its in-plane angle
/// γ obeys cos 2θ = cos γ cos δ: k_f = k (cos δ sin γ, sin δ, cos δ cos γ), Q = k_f − k_i.
/// With δ = 0, Q̂ = (cos θ, 0, −sin θ): the seed's Q̂ = 0.969 x̂ − 0.249 ẑ at 2θ = 28.8°.
///
/// A scan (and a reconstruction) is a C-order stack (frame, row, column): the frame index
/// rocks the sample by `rockingStep` about `rockingAxis` (a rotation +ω of the sample moves
/// the measured point of reciprocal space by −ω â × Q); columns run horizontally with
/// increasing γ (ŷ × k̂_f), rows downwards (column × k̂_f), as images are stored.
public struct BraggGeometry: Equatable, Sendable, CustomStringConvertible {
    /// Photon energy, eV.
    public var energy: Double
    /// Total scattering angle 2θ, radians.
    public var twoTheta: Double
    /// Out-of-plane detector angle δ (elevation), radians.
    public var outOfPlane: Double
    /// Sample–detector distance, m.
    public var distance: Double
    /// Detector pixel size, m (square pixels).
    public var pixelSize: Double
    /// Rocking step between frames, radians.
    public var rockingStep: Double
    /// Rocking axis in the lab frame (normalised by `init` and on use; default vertical,
    /// normal to the horizontal scattering plane).
    public var rockingAxis: SIMD3<Double>

    public init(energy: Double, twoTheta: Double, outOfPlane: Double = 0, distance: Double, pixelSize: Double,
                rockingStep: Double, rockingAxis: SIMD3<Double> = SIMD3(0, 1, 0)) {
        self.energy = energy; self.twoTheta = twoTheta; self.outOfPlane = outOfPlane; self.distance = distance
        self.pixelSize = pixelSize; self.rockingStep = rockingStep
        let l = norm(rockingAxis)
        self.rockingAxis = l > 0 && l.isFinite ? rockingAxis / l : rockingAxis
    }

    /// The seed study's geometry (I13-1, Diamond): 13.5 keV, 2θ = 28.8°, detector at 2.8 m,
    /// 55 µm pixels, rocking steps of 0.005° about the vertical. |Q| = 3.40·10¹⁰ m⁻¹ (the LCO
    /// (1 0 −5) reflection).
    public static let seedStudy = BraggGeometry(energy: 13_500, twoTheta: 28.8 * .pi / 180, outOfPlane: 0,
                                                distance: 2.8, pixelSize: 55e-6, rockingStep: 0.005 * .pi / 180)

    /// hc in eV·m (CODATA 2018).
    public static let hc = 1.239_841_984e-6

    /// The seed's Table 1 prints twice φ/|Q| as its "mean relative displacement": 13.8° gives
    /// u = φ/|Q| = 0.0709 Å here and 0.142 Å in the seed.
    public static let seedDisplacementFactor = 2.0

    /// Why these numbers do not describe a measurable reflection (one sentence), or nil.
    public var problem: String? {
        guard energy.isFinite, energy > 0 else { return "the energy must be positive (got \(energy) eV)" }
        guard twoTheta.isFinite, twoTheta > 0, twoTheta < .pi else {
            return "2θ must lie in (0°, 180°) (got \(twoTheta * 180 / .pi)°)"
        }
        guard outOfPlane.isFinite, abs(outOfPlane) <= twoTheta else {
            return "the detector's out-of-plane angle \(outOfPlane * 180 / .pi)° exceeds 2θ"
        }
        guard distance.isFinite, distance > 0 else { return "the detector distance must be positive (got \(distance) m)" }
        guard pixelSize.isFinite, pixelSize > 0 else { return "the pixel size must be positive (got \(pixelSize) m)" }
        guard rockingStep.isFinite, rockingStep != 0 else { return "the rocking step must be nonzero" }
        guard norm(rockingAxis) > 0, norm(rockingAxis).isFinite, norm(cross(axis, qHat)) > 1e-3 else {
            return "the rocking axis must not be parallel to Q (rocking would not move through the Bragg peak)"
        }
        return nil
    }

    /// Throws `NumericsError.invalidArgument` naming the first unphysical quantity.
    public func validate() throws {
        if let p = problem { throw NumericsError.invalidArgument("invalid geometry: " + p) }
    }

    /// Wavelength λ = hc/E, m.
    public var wavelength: Double { BraggGeometry.hc / energy }
    /// Wavenumber k = 2π/λ, m⁻¹.
    public var wavenumber: Double { 2 * .pi / wavelength }
    /// Bragg angle θ_B: half the total scattering angle.
    public var braggAngle: Double { twoTheta / 2 }
    /// The rocking axis, normalised.
    public var axis: SIMD3<Double> { normalized(rockingAxis) }
    /// Incident wavevector k_i (lab).
    public var incidentWavevector: SIMD3<Double> { SIMD3(0, 0, wavenumber) }
    /// In-plane detector angle γ (cos 2θ = cos γ cos δ), radians.
    public var inPlaneAngle: Double { acos(max(-1, min(1, cos(twoTheta) / cos(outOfPlane)))) }
    /// Unit vector towards the detector centre (lab).
    public var exitDirection: SIMD3<Double> {
        let g = inPlaneAngle
        return SIMD3(cos(outOfPlane) * sin(g), sin(outOfPlane), cos(outOfPlane) * cos(g))
    }
    /// Exit wavevector k_f at the detector centre (lab).
    public var exitWavevector: SIMD3<Double> { exitDirection * wavenumber }
    /// Scattering vector Q = k_f − k_i (lab), m⁻¹.
    public var q: SIMD3<Double> { exitWavevector - incidentWavevector }
    /// |Q| = 4π sin θ_B / λ, m⁻¹.
    public var qMagnitude: Double { 4 * .pi * sin(braggAngle) / wavelength }
    /// Unit vector along Q (lab).
    public var qHat: SIMD3<Double> { normalized(q) }
    /// Lattice spacing of the reflection, d = 2π/|Q|, m.
    public var dSpacing: Double { 2 * .pi / qMagnitude }
    /// Displacement along Q (m) for a phase φ (rad): u = φ/|Q| (DESIGN.md, φ = Q·u).
    public func displacement(phase: Double) -> Double { phase / qMagnitude }

    /// Detector column direction (horizontal, increasing γ: ŷ × k̂_f normalised), ⊥ k_f.
    public var columnDirection: SIMD3<Double> { let g = inPlaneAngle; return SIMD3(cos(g), 0, -sin(g)) }
    /// Detector row direction (downwards: column × k̂_f), ⊥ k_f.
    public var rowDirection: SIMD3<Double> {
        let g = inPlaneAngle
        return SIMD3(sin(outOfPlane) * sin(g), -cos(outOfPlane), sin(outOfPlane) * cos(g))
    }

    /// Reciprocal-space steps (lab, m⁻¹) of the three array axes (frame, row, column) as the
    /// columns of B: the pattern voxel m sits at q = Q + B·(m − N/2) (small-angle
    /// linearisation about Q).
    public var reciprocalBasis: Matrix3x3 {
        let pix = wavenumber * pixelSize / distance
        return Matrix3x3(columns: [cross(axis, q) * (-rockingStep), rowDirection * pix, columnDirection * pix])
    }
    /// The columns of `reciprocalBasis`: the q moved by one frame, one row and one column.
    public var reciprocalSteps: [SIMD3<Double>] { reciprocalBasis.columns }

    /// q (lab, relative to the Bragg peak) at a fractional index of a centred scan of
    /// `shape` (index n/2 is the peak).
    public func qOffset(index: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        let d = index - SIMD3(Double(shape[0] / 2), Double(shape[1] / 2), Double(shape[2] / 2))
        return reciprocalBasis * d
    }

    /// Real-space basis (lab, m) of the grid conjugate to a scan of `shape`: columns a_b with
    /// Δq_a · a_b = 2π δ_ab / n_a, so that the object voxel n sits at r = A·(n − N/2) and its
    /// discrete Fourier transform (F(q) = Σ ρ(r) exp(−i q·r)) lands exactly on detector
    /// pixels and frames: A = 2π (Bᵀ)⁻¹ diag(1/n). Needs a valid geometry and a 3D shape.
    public func realSpaceBasis(shape: [Int]) -> Matrix3x3 {
        precondition(shape.count == 3 && shape.allSatisfy { $0 > 0 }, "the real-space basis needs a 3D shape, got \(shape)")
        let a = reciprocalBasis.transposed.inverse
        return Matrix3x3(columns: (0..<3).map { a.column($0) * (2 * .pi / Double(shape[$0])) })
    }
    /// The columns of `realSpaceBasis(shape:)`: the real-space step of each array axis.
    public func realSpaceSteps(shape: [Int]) -> [SIMD3<Double>] { realSpaceBasis(shape: shape).columns }

    /// Edge lengths (m) of a voxel of the conjugate grid along each array axis.
    public func voxelSizes(shape: [Int]) -> [Double] { realSpaceSteps(shape: shape).map(norm) }

    public var description: String {
        String(format: "E = %.1f keV, 2θ = %.3f°, δ = %.3f°, D = %.3f m, pixel = %.1f µm, rocking step = %.4f°, |Q| = %.4g m⁻¹",
               energy / 1000, twoTheta * 180 / .pi, outOfPlane * 180 / .pi, distance, pixelSize * 1e6,
               rockingStep * 180 / .pi, qMagnitude)
    }
}
