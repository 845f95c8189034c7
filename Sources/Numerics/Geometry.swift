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
/// vertical (up), x horizontal (x = y × z). Every diffractometer (`Diffractometer`) is
/// expressed in this frame.
///
/// Two forms describe the detector:
/// - the angle form (`init(energy:twoTheta:outOfPlane:…)`): 2θ is the total scattering
///   angle; the detector is lifted above the horizontal plane by the out-of-plane angle δ,
///   and its in-plane angle γ obeys cos 2θ = cos γ cos δ: k_f = k (cos δ sin γ, sin δ,
///   cos δ cos γ); square pixels, the detector face normal to k_f, columns horizontal with
///   increasing γ (ŷ × k̂_f), rows downwards (column × k̂_f), as images are stored. With
///   δ = 0, Q̂ = (cos θ, 0, −sin θ): the seed's Q̂ = 0.969 x̂ − 0.249 ẑ at 2θ = 28.8°.
/// - the vector form (`init(energy:exitDirection:rowStep:columnStep:…)`): the exit
///   direction k̂_f towards the pixel the pattern is centred on, and the lab displacement
///   from one detector pixel to the next along rows and along columns (any orientation,
///   non-square pixels, a face not normal to k_f), as a diffractometer model gives them.
///   2θ, δ and γ are then derived from k̂_f.
///
/// Q = k_f − k_i. A scan (and a reconstruction) is a C-order stack (frame, row, column):
/// the frame index rocks the sample by `rockingStep` about `rockingAxis` (a rotation +ω of
/// the sample moves the measured point of reciprocal space, in the crystal's frame, by
/// −ω â × Q).
public struct BraggGeometry: Equatable, Sendable, CustomStringConvertible {
    /// Photon energy, eV.
    public var energy: Double
    /// Distance from the sample to the detector pixel the pattern is centred on, m (in the
    /// angle form: the sample–detector distance along k_f).
    public var distance: Double
    /// Pixel pitch along the detector's rows (the step from one row to the next), m.
    public var rowPixelSize: Double
    /// Pixel pitch along the detector's columns, m.
    public var columnPixelSize: Double
    /// Rocking step between frames, radians.
    public var rockingStep: Double
    /// Rocking axis in the lab frame (normalised by `init` and on use; default vertical,
    /// normal to the horizontal scattering plane).
    public var rockingAxis: SIMD3<Double>
    /// How the detector is described (see the type's comment).
    private var detector: Detector

    private enum Detector: Equatable, Sendable {
        case angles(twoTheta: Double, outOfPlane: Double)
        /// Unit exit direction, unit row and column directions of the detector (lab).
        case vectors(exit: SIMD3<Double>, row: SIMD3<Double>, column: SIMD3<Double>)
    }

    /// The angle form: 2θ and δ (radians), square pixels of `pixelSize` (m).
    public init(energy: Double, twoTheta: Double, outOfPlane: Double = 0, distance: Double, pixelSize: Double,
                rockingStep: Double, rockingAxis: SIMD3<Double> = SIMD3(0, 1, 0)) {
        self.energy = energy; self.detector = .angles(twoTheta: twoTheta, outOfPlane: outOfPlane)
        self.distance = distance; self.rowPixelSize = pixelSize; self.columnPixelSize = pixelSize
        self.rockingStep = rockingStep
        let l = norm(rockingAxis)
        self.rockingAxis = l > 0 && l.isFinite ? rockingAxis / l : rockingAxis
    }

    /// The vector form: the exit direction (lab, normalised here) towards the pixel the
    /// pattern is centred on, at `distance` (m) from the sample; `rowStep` and `columnStep`
    /// the lab displacements (m) from that pixel to the next row and to the next column;
    /// the rocking axis (lab, normalised here) and step (radians).
    public init(energy: Double, exitDirection: SIMD3<Double>, rowStep: SIMD3<Double>, columnStep: SIMD3<Double>,
                distance: Double, rockingAxis: SIMD3<Double>, rockingStep: Double) {
        func unit(_ v: SIMD3<Double>) -> SIMD3<Double> { let l = norm(v); return l > 0 && l.isFinite ? v / l : v }
        self.energy = energy; self.distance = distance
        self.detector = .vectors(exit: unit(exitDirection), row: unit(rowStep), column: unit(columnStep))
        self.rowPixelSize = norm(rowStep); self.columnPixelSize = norm(columnStep)
        self.rockingStep = rockingStep; self.rockingAxis = unit(rockingAxis)
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

    /// Whether the detector is given by explicit vectors (the vector form).
    public var hasExplicitVectors: Bool { if case .vectors = detector { return true } else { return false } }

    /// Total scattering angle 2θ, radians (derived from k̂_f in the vector form). Setting it
    /// in the vector form turns the detector (exit direction and pixel directions together)
    /// by the smallest rotation that gives the new 2θ at the same δ.
    public var twoTheta: Double {
        get {
            switch detector {
            case .angles(let t, _): return t
            case .vectors(let e, _, _): return acos(max(-1, min(1, e.z)))
            }
        }
        set {
            switch detector {
            case .angles(_, let o): detector = .angles(twoTheta: newValue, outOfPlane: o)
            case .vectors: reorient(twoTheta: newValue, outOfPlane: outOfPlane)
            }
        }
    }

    /// Out-of-plane detector angle δ (elevation of k_f above the horizontal plane), radians
    /// (derived in the vector form; setting it there turns the detector as for `twoTheta`).
    public var outOfPlane: Double {
        get {
            switch detector {
            case .angles(_, let o): return o
            case .vectors(let e, _, _): return asin(max(-1, min(1, e.y)))
            }
        }
        set {
            switch detector {
            case .angles(let t, _): detector = .angles(twoTheta: t, outOfPlane: newValue)
            case .vectors: reorient(twoTheta: twoTheta, outOfPlane: newValue)
            }
        }
    }

    /// Detector pixel size, m: the pitch of square pixels; for rectangular pixels the
    /// geometric mean of the two pitches. Setting it makes the pixels square.
    public var pixelSize: Double {
        get { rowPixelSize == columnPixelSize ? columnPixelSize : (rowPixelSize * columnPixelSize).squareRoot() }
        set { rowPixelSize = newValue; columnPixelSize = newValue }
    }

    /// Turns a vector-form detector so that k̂_f has the angles (2θ, δ), keeping the sign of
    /// its horizontal component; an impossible pair becomes the angle form, so that
    /// `problem` names it.
    private mutating func reorient(twoTheta t: Double, outOfPlane d: Double) {
        guard case .vectors(let e, let r, let c) = detector else { return }
        guard t.isFinite, d.isFinite, t > 0, t < .pi, abs(d) <= t, abs(d) < .pi / 2 else {
            detector = .angles(twoTheta: t, outOfPlane: d); return
        }
        let cg = max(-1, min(1, cos(t) / cos(d)))
        let sg = (1 - cg * cg).squareRoot() * (e.x < 0 ? -1 : 1)
        let target = SIMD3(cos(d) * sg, sin(d), cos(d) * cg)
        let axis = cross(e, target), s = norm(axis)
        guard s > 1e-15 else { detector = .vectors(exit: target, row: r, column: c); return }
        let turn = Matrix3x3.rotation(axis: axis, angle: atan2(s, dot(e, target)))
        detector = .vectors(exit: target, row: turn * r, column: turn * c)
    }

    /// Why these numbers do not describe a measurable reflection (one sentence), or nil.
    public var problem: String? {
        guard energy.isFinite, energy > 0 else { return "the energy must be positive (got \(energy) eV)" }
        switch detector {
        case .angles(let twoTheta, let outOfPlane):
            guard twoTheta.isFinite, twoTheta > 0, twoTheta < .pi else {
                return "2θ must lie in (0°, 180°) (got \(twoTheta * 180 / .pi)°)"
            }
            guard outOfPlane.isFinite, abs(outOfPlane) <= twoTheta else {
                return "the detector's out-of-plane angle \(outOfPlane * 180 / .pi)° exceeds 2θ"
            }
        case .vectors(let e, let r, let c):
            guard [e, r, c].allSatisfy({ abs(norm($0) - 1) < 1e-9 }) else {
                return "the exit direction and the detector's row and column steps must be finite and nonzero"
            }
            let t = twoTheta
            guard t > 1e-9, t < .pi - 1e-9 else { return "2θ must lie in (0°, 180°) (got \(t * 180 / .pi)°)" }
            guard norm(cross(r, c)) > 1e-6 else { return "the detector's row and column steps must not be parallel" }
            guard abs(dot(normalized(cross(r, c)), e)) > 1e-3 else {
                return "the exit direction lies in the detector's plane (the detector is seen edge-on)"
            }
        }
        guard distance.isFinite, distance > 0 else { return "the detector distance must be positive (got \(distance) m)" }
        guard rowPixelSize.isFinite, rowPixelSize > 0, columnPixelSize.isFinite, columnPixelSize > 0 else {
            return "the pixel size must be positive (got \(rowPixelSize) m × \(columnPixelSize) m)"
        }
        guard rockingStep.isFinite, rockingStep != 0 else { return "the rocking step must be nonzero" }
        guard norm(rockingAxis) > 0, norm(rockingAxis).isFinite, norm(cross(axis, qHat)) > 1e-3 else {
            return "the rocking axis must not be parallel to Q (rocking would not move through the Bragg peak)"
        }
        // Rocking must move q out of the plane the detector's rows and columns span, else the
        // frames add no third dimension and the grid has no real-space basis.
        let b = reciprocalBasis, scale = b.columns.map(norm).reduce(1, *)
        guard scale > 0, abs(b.determinant) > 1e-6 * scale else {
            return "rocking about this axis moves q within the plane of the detector's rows and columns: the frames add no third dimension"
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
    /// In-plane detector angle γ, radians: in the angle form from cos 2θ = cos γ cos δ (γ ≥ 0);
    /// in the vector form the signed azimuth of k̂_f from the beam towards +x.
    public var inPlaneAngle: Double {
        switch detector {
        case .angles(let twoTheta, let outOfPlane): return acos(max(-1, min(1, cos(twoTheta) / cos(outOfPlane))))
        case .vectors(let e, _, _): return atan2(e.x, e.z)
        }
    }
    /// Unit vector from the sample towards the pixel the pattern is centred on (lab).
    public var exitDirection: SIMD3<Double> {
        switch detector {
        case .angles(_, let outOfPlane):
            let g = inPlaneAngle
            return SIMD3(cos(outOfPlane) * sin(g), sin(outOfPlane), cos(outOfPlane) * cos(g))
        case .vectors(let e, _, _): return e
        }
    }
    /// Exit wavevector k_f at the detector centre (lab).
    public var exitWavevector: SIMD3<Double> { exitDirection * wavenumber }
    /// Scattering vector Q = k_f − k_i (lab), m⁻¹.
    public var q: SIMD3<Double> { exitWavevector - incidentWavevector }
    /// |Q| = 4π sin θ_B / λ, m⁻¹.
    public var qMagnitude: Double {
        switch detector {
        case .angles: return 4 * .pi * sin(braggAngle) / wavelength
        case .vectors: return norm(q)
        }
    }
    /// Unit vector along Q (lab).
    public var qHat: SIMD3<Double> { normalized(q) }
    /// Lattice spacing of the reflection, d = 2π/|Q|, m.
    public var dSpacing: Double { 2 * .pi / qMagnitude }
    /// Displacement along Q (m) for a phase φ (rad): u = φ/|Q| (DESIGN.md, φ = Q·u).
    public func displacement(phase: Double) -> Double { phase / qMagnitude }

    /// Unit direction of the detector's columns (lab): in the angle form horizontal, with
    /// increasing γ (ŷ × k̂_f normalised), ⊥ k_f.
    public var columnDirection: SIMD3<Double> {
        switch detector {
        case .angles: let g = inPlaneAngle; return SIMD3(cos(g), 0, -sin(g))
        case .vectors(_, _, let c): return c
        }
    }
    /// Unit direction of the detector's rows (lab): in the angle form downwards
    /// (column × k̂_f), ⊥ k_f.
    public var rowDirection: SIMD3<Double> {
        switch detector {
        case .angles(_, let outOfPlane):
            let g = inPlaneAngle
            return SIMD3(sin(outOfPlane) * sin(g), -cos(outOfPlane), sin(outOfPlane) * cos(g))
        case .vectors(_, let r, _): return r
        }
    }
    /// Lab displacement (m) from one detector pixel to the next row.
    public var rowStep: SIMD3<Double> { rowDirection * rowPixelSize }
    /// Lab displacement (m) from one detector pixel to the next column.
    public var columnStep: SIMD3<Double> { columnDirection * columnPixelSize }

    /// Reciprocal-space steps (lab, m⁻¹) of the three array axes (frame, row, column) as the
    /// columns of B: the pattern voxel m sits at q = Q + B·(m − N/2) (small-angle
    /// linearisation about Q). A detector step s moves k_f = k P/|P| (P the pixel's
    /// position, |P| = distance) by k (s − (s·k̂_f) k̂_f)/distance.
    public var reciprocalBasis: Matrix3x3 {
        let frame = cross(axis, q) * (-rockingStep)
        switch detector {
        case .angles:
            let pix = wavenumber * pixelSize / distance
            if rowPixelSize == columnPixelSize {
                return Matrix3x3(columns: [frame, rowDirection * pix, columnDirection * pix])
            }
            let f = wavenumber / distance
            return Matrix3x3(columns: [frame, rowDirection * (f * rowPixelSize), columnDirection * (f * columnPixelSize)])
        case .vectors(let e, _, _):
            let f = wavenumber / distance
            func across(_ s: SIMD3<Double>) -> SIMD3<Double> { (s - e * dot(s, e)) * f }
            return Matrix3x3(columns: [frame, across(rowStep), across(columnStep)])
        }
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
        let deg = 180 / Double.pi, qv = q
        let square = abs(rowPixelSize - columnPixelSize) <= 1e-9 * columnPixelSize
        let pixels = square ? String(format: "%.1f µm", pixelSize * 1e6)
            : String(format: "%.1f × %.1f µm (rows × columns)", rowPixelSize * 1e6, columnPixelSize * 1e6)
        return String(format: "E = %.1f keV, 2θ = %.3f°, δ = %.3f°, γ = %.3f°, D = %.3f m, ",
                      energy / 1000, twoTheta * deg, outOfPlane * deg, inPlaneAngle * deg, distance)
            + "pixel = " + pixels
            + String(format: ", rocking step = %.4f°, |Q| = %.4g m⁻¹, Q = (%.4g, %.4g, %.4g) m⁻¹",
                     rockingStep * deg, qMagnitude, qv.x, qv.y, qv.z)
    }
}

// MARK: - The geometry as named scalars (for files)

extension BraggGeometry {
    /// The keys of `scalars`, all SI (eV, m, rad), vectors in the lab frame (z along the
    /// beam, y up, x = y × z):
    /// - `energy_ev`: photon energy;
    /// - `distance_m`: sample to the pixel the pattern is centred on;
    /// - `exit_direction_x/_y/_z`: unit k̂_f towards that pixel;
    /// - `row_step_x/_y/_z`, `column_step_x/_y/_z`: lab displacement (m) to the next row / column pixel;
    /// - `rocking_axis_x/_y/_z`: unit rocking axis; `rocking_step_rad`: rotation per frame;
    /// - `two_theta_rad`, `out_of_plane_rad`, `pixel_size_m`: the angle form's numbers (derived
    ///   in the vector form; read back as the angle form only where they reproduce the vectors).
    public static let scalarKeys: [String] = ["energy_ev", "distance_m"]
        + ["exit_direction", "row_step", "column_step", "rocking_axis"].flatMap { p in ["x", "y", "z"].map { "\(p)_\($0)" } }
        + ["rocking_step_rad", "two_theta_rad", "out_of_plane_rad", "pixel_size_m"]

    /// The full geometry as named scalars (keys: `scalarKeys`).
    public var scalars: [String: Double] {
        var d: [String: Double] = ["energy_ev": energy, "distance_m": distance, "rocking_step_rad": rockingStep,
                                   "two_theta_rad": twoTheta, "out_of_plane_rad": outOfPlane, "pixel_size_m": pixelSize]
        for (p, v) in [("exit_direction", exitDirection), ("row_step", rowStep), ("column_step", columnStep),
                       ("rocking_axis", rockingAxis)] {
            d[p + "_x"] = v.x; d[p + "_y"] = v.y; d[p + "_z"] = v.z
        }
        return d
    }

    /// The geometry from named scalars (`scalarKeys`): the vector form, or the angle form
    /// where `two_theta_rad`, `out_of_plane_rad` and `pixel_size_m` are given and reproduce
    /// the stored vectors (to 1e-9 relative), so that an angle-form geometry reads back identical.
    /// Throws `NumericsError.invalidArgument` naming a missing or non-finite key.
    public init(scalars d: [String: Double]) throws {
        func need(_ k: String) throws -> Double {
            guard let v = d[k] else { throw NumericsError.invalidArgument("the geometry lacks '\(k)'") }
            guard v.isFinite else { throw NumericsError.invalidArgument("the geometry's '\(k)' is not finite (\(v))") }
            return v
        }
        func vector(_ p: String) throws -> SIMD3<Double> { SIMD3(try need(p + "_x"), try need(p + "_y"), try need(p + "_z")) }
        let energy = try need("energy_ev"), distance = try need("distance_m"), step = try need("rocking_step_rad")
        let axis = try vector("rocking_axis")
        let hasVectors = ["exit_direction", "row_step", "column_step"].allSatisfy { d[$0 + "_x"] != nil }
        if let t = d["two_theta_rad"], let o = d["out_of_plane_rad"], let p = d["pixel_size_m"] {
            let g = BraggGeometry(energy: energy, twoTheta: t, outOfPlane: o, distance: distance, pixelSize: p,
                                  rockingStep: step, rockingAxis: axis)
            var same = true
            if hasVectors {
                for (name, v) in [("exit_direction", g.exitDirection), ("row_step", g.rowStep), ("column_step", g.columnStep)] {
                    if norm(try vector(name) - v) > 1e-9 * norm(v) { same = false }
                }
            }
            if same { self = g } else {
                self.init(energy: energy, exitDirection: try vector("exit_direction"), rowStep: try vector("row_step"),
                          columnStep: try vector("column_step"), distance: distance, rockingAxis: axis, rockingStep: step)
            }
        } else {
            self.init(energy: energy, exitDirection: try vector("exit_direction"), rowStep: try vector("row_step"),
                      columnStep: try vector("column_step"), distance: distance, rockingAxis: axis, rockingStep: step)
        }
        // The stored axis is already unit: keep it as written, so that a geometry reads back identical.
        if abs(norm(axis) - 1) < 1e-12 { rockingAxis = axis }
    }
}
