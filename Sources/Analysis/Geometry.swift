import Foundation

/// Errors of the analysis: each names the state (or the input) and what is wrong, in
/// one sentence, so the `bragg` program can print it as is.
public enum AnalysisError: Error, CustomStringConvertible, Equatable {
    case geometry(String)
    case shapeMismatch(state: String, shape: [Int], expected: [Int])
    case emptyObject(state: String)
    case nonFinite(state: String, count: Int)
    case supportMismatch(state: String, shape: [Int], expected: [Int])
    case tooFewStates(Int)
    case emptySupport(String)
    case badOption(String)
    case experimentFile(String)

    public var description: String {
        switch self {
        case .geometry(let s): return "invalid geometry: \(s)"
        case .shapeMismatch(let st, let sh, let ex):
            return "state '\(st)': reconstruction has shape \(sh) but the reference has \(ex); all states must share one shape"
        case .emptyObject(let st): return "state '\(st)': the reconstruction is all zeros"
        case .nonFinite(let st, let n): return "state '\(st)': the reconstruction holds \(n) NaN or infinite values"
        case .supportMismatch(let st, let sh, let ex):
            return "state '\(st)': support has shape \(sh) but the object has \(ex)"
        case .tooFewStates(let n): return "a series needs at least one state, got \(n)"
        case .emptySupport(let s): return "empty support: \(s)"
        case .badOption(let s): return "invalid analysis option: \(s)"
        case .experimentFile(let s): return "experiment file: \(s)"
        }
    }
}

/// A 3-vector in the laboratory frame (metres or inverse metres).
public typealias Vector3 = SIMD3<Double>

@inlinable func dot(_ a: Vector3, _ b: Vector3) -> Double { (a * b).sum() }
@inlinable func cross(_ a: Vector3, _ b: Vector3) -> Vector3 {
    Vector3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inlinable func norm(_ a: Vector3) -> Double { dot(a, a).squareRoot() }

/// A 3×3 matrix stored by columns.
public struct Matrix3: Sendable, Equatable {
    public var columns: (Vector3, Vector3, Vector3)
    public init(columns c0: Vector3, _ c1: Vector3, _ c2: Vector3) { columns = (c0, c1, c2) }
    public static func == (a: Matrix3, b: Matrix3) -> Bool {
        a.columns.0 == b.columns.0 && a.columns.1 == b.columns.1 && a.columns.2 == b.columns.2
    }
    public func column(_ i: Int) -> Vector3 { i == 0 ? columns.0 : (i == 1 ? columns.1 : columns.2) }
    public func row(_ i: Int) -> Vector3 { Vector3(columns.0[i], columns.1[i], columns.2[i]) }
    public static func * (m: Matrix3, v: Vector3) -> Vector3 { m.columns.0 * v.x + m.columns.1 * v.y + m.columns.2 * v.z }
    public var transposed: Matrix3 { Matrix3(columns: row(0), row(1), row(2)) }
    public var determinant: Double { dot(columns.0, cross(columns.1, columns.2)) }
    /// The inverse (nil when singular).
    public var inverse: Matrix3? {
        let d = determinant
        guard abs(d) > 0, d.isFinite else { return nil }
        // Rows of the inverse are the cross products of the columns, over the determinant.
        let r0 = cross(columns.1, columns.2) / d, r1 = cross(columns.2, columns.0) / d, r2 = cross(columns.0, columns.1) / d
        return Matrix3(columns: r0, r1, r2).transposed
    }
}

/// The diffraction geometry of one Bragg reflection, in the laboratory frame of the seed
/// study: z along the incident beam, y vertically up, x horizontal (x = y × z). The
/// detector sits at the total scattering angle 2θ; `outOfPlane` lifts it above the
/// horizontal plane by δ (so the in-plane angle γ obeys cos 2θ = cos γ cos δ). With δ = 0,
/// Q̂ = (cos θ, 0, −sin θ): the seed's Q̂ = 0.969 x̂ − 0.249 ẑ at 2θ = 28.8°.
///
/// The three axes of a reconstruction (C order) are (rocking frame, detector row,
/// detector column). Detector columns run horizontally (ŷ × k̂_f), rows downwards.
/// Rocking the crystal by +dω about `rockingAxis` (right-handed) moves the measured Q
/// through the crystal's reciprocal space by −dω·(â × Q).
public struct LabGeometry: Sendable, Equatable {
    /// Photon energy (eV).
    public var energy: Double
    /// Total scattering angle 2θ (radians).
    public var twoTheta: Double
    /// Detector elevation δ above the horizontal plane (radians).
    public var outOfPlane: Double
    /// Sample–detector distance (m).
    public var distance: Double
    /// Detector pixel size (m), square pixels.
    public var pixelSize: Double
    /// Rocking step between frames (radians).
    public var rockingStep: Double
    /// Rocking axis in the lab frame (normalised on use).
    public var rockingAxis: Vector3

    public init(energy: Double, twoTheta: Double, outOfPlane: Double = 0, distance: Double,
                pixelSize: Double, rockingStep: Double, rockingAxis: Vector3 = Vector3(0, 1, 0)) {
        self.energy = energy; self.twoTheta = twoTheta; self.outOfPlane = outOfPlane
        self.distance = distance; self.pixelSize = pixelSize; self.rockingStep = rockingStep
        self.rockingAxis = rockingAxis
    }

    /// The seed study's beamline numbers (I13-1: 13.5 keV, 2θ = 28.8°, 2.8 m, 55 µm pixels,
    /// 0.005° rocking steps about the vertical).
    public static let seed = LabGeometry(energy: 13_500, twoTheta: 28.8 * .pi / 180, distance: 2.8,
                                         pixelSize: 55e-6, rockingStep: 0.005 * .pi / 180)

    /// h·c in eV·m (CODATA 2018).
    public static let hc = 1.239_841_984e-6

    /// Checks that the numbers describe a measurable reflection.
    public func validate() throws {
        guard energy.isFinite, energy > 0 else { throw AnalysisError.geometry("energy must be positive, got \(energy) eV") }
        guard twoTheta.isFinite, twoTheta > 0, twoTheta < .pi else {
            throw AnalysisError.geometry("2θ must lie in (0°, 180°), got \(twoTheta * 180 / .pi)°")
        }
        guard outOfPlane.isFinite, abs(outOfPlane) <= twoTheta else {
            throw AnalysisError.geometry("the detector's out-of-plane angle \(outOfPlane * 180 / .pi)° exceeds 2θ")
        }
        guard distance.isFinite, distance > 0 else { throw AnalysisError.geometry("detector distance must be positive, got \(distance) m") }
        guard pixelSize.isFinite, pixelSize > 0 else { throw AnalysisError.geometry("pixel size must be positive, got \(pixelSize) m") }
        guard rockingStep.isFinite, rockingStep != 0 else { throw AnalysisError.geometry("the rocking step must be nonzero") }
        guard norm(rockingAxis) > 0, norm(cross(rockingAxis, qHat)) > 1e-6 else {
            throw AnalysisError.geometry("the rocking axis must not be parallel to Q")
        }
    }

    /// Wavelength λ = hc/E (m).
    public var wavelength: Double { LabGeometry.hc / energy }
    /// Wavenumber k = 2π/λ (m⁻¹).
    public var wavenumber: Double { 2 * .pi / wavelength }
    /// In-plane detector angle γ (cos 2θ = cos γ cos δ).
    public var inPlaneAngle: Double { acos(max(-1, min(1, cos(twoTheta) / cos(outOfPlane)))) }
    /// Unit vector of the diffracted beam.
    public var outgoing: Vector3 {
        let g = inPlaneAngle, d = outOfPlane
        return Vector3(cos(d) * sin(g), sin(d), cos(d) * cos(g))
    }
    /// Scattering vector Q = k_f − k_i (m⁻¹).
    public var q: Vector3 { wavenumber * (outgoing - Vector3(0, 0, 1)) }
    /// |Q| = 4π sin θ / λ (m⁻¹).
    public var qMagnitude: Double { 4 * .pi * sin(twoTheta / 2) / wavelength }
    /// Unit vector of Q in the lab frame.
    public var qHat: Vector3 { let v = q; return v / norm(v) }

    /// Reciprocal-space steps (m⁻¹) of the three array axes (rocking, row, column), as the
    /// columns of a matrix B: the pattern voxel m sits at q = Q + B·(m − N/2).
    public var reciprocalSteps: Matrix3 {
        let kf = outgoing
        let col = cross(Vector3(0, 1, 0), kf) / norm(cross(Vector3(0, 1, 0), kf))
        let row = cross(col, kf)                       // points downwards for δ = 0
        let dq = wavenumber * pixelSize / distance
        let axis = rockingAxis / norm(rockingAxis)
        let rock = -rockingStep * cross(axis, q)
        return Matrix3(columns: rock, dq * row, dq * col)
    }

    /// Real-space basis (m): columns a_i with a_i·b_j = 2π δ_ij / N_j, so that the object
    /// voxel n sits at r = A·(n − N/2) for a pattern of shape N (the FFT convention
    /// F(q) = Σ ρ(r) exp(−i q·r)).
    public func realSpaceBasis(shape: [Int]) throws -> Matrix3 {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw AnalysisError.geometry("the real-space basis needs a 3D shape, got \(shape)")
        }
        guard let binv = reciprocalSteps.inverse else { throw AnalysisError.geometry("the detector and rocking directions are degenerate") }
        let bt = binv.transposed   // B^{-T}: its columns are the rows of B^{-1}
        return Matrix3(columns: bt.column(0) * (2 * .pi / Double(shape[0])),
                       bt.column(1) * (2 * .pi / Double(shape[1])),
                       bt.column(2) * (2 * .pi / Double(shape[2])))
    }

    /// Displacement along Q (m) for a phase φ (rad): u = φ/|Q| (DESIGN.md, φ = Q·u).
    public func displacement(phase: Double) -> Double { phase / qMagnitude }

    /// The seed's Table 1 prints twice φ/|Q| as its "mean relative displacement": e.g.
    /// 13.8° gives 0.0709 Å here and 0.142 Å in the seed.
    public static let seedDisplacementFactor = 2.0
}
