import Foundation

/// A diffractometer: the sample circles and the detector circles (each a named rotation
/// axis), the incident beam, and the detector's pixel directions, all in BraggKit's lab
/// frame (z along the beam, y up, x = y × z). From a set of motor angles it gives the
/// `BraggGeometry` (vector form) of the reflection measured by a rocking scan.
///
/// Conventions (those of xrayutilities' `QConversion`, the oracle of the tests): a circle
/// "y+" turns right-handed (counter-clockwise seen from +y) about +y by a positive angle,
/// "y-" about −y. Circles are listed outermost first; the sample (or detector) rotation is
/// R = R₁(ω₁) R₂(ω₂) … Rₙ(ωₙ), so an inner circle's axis is carried by the circles outside it.
/// At zero detector angles the direct beam hits the detector at `directBeam`, at `distance`
/// from the sample along the beam, and the detector's rows and columns run along
/// `rowPixelDirection` and `columnPixelDirection`.
///
/// Converting a peer's notation to this frame: bcdi and cdiutils already write circles in
/// the CXI frame (z downstream, y up, x outboard = y × z), which is this frame. The
/// xrayutilities frame of their examples (x downstream, y outboard, z up) maps to this one
/// by the cyclic relabelling x_xu → z, y_xu → x, z_xu → y (a proper rotation, so rotation
/// senses are kept): 'x±' (xu) → 'z±', 'y±' (xu) → 'x±', 'z±' (xu) → 'y±'.
public struct Diffractometer: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    /// Sample circles, outermost first.
    public var sampleCircles: [Circle]
    /// Detector circles, outermost first (a circle carrying both, like SIXS's beta, appears
    /// in both lists under one name and takes one angle).
    public var detectorCircles: [Circle]
    /// Incident beam direction (lab, unit). The presets' is +z; another is turned onto +z by
    /// `braggGeometry` (the smallest rotation), as `BraggGeometry` has the beam along +z.
    public var beamDirection: SIMD3<Double>
    /// Lab direction (unit) of increasing detector row index at zero detector angles.
    public var rowPixelDirection: SIMD3<Double>
    /// Lab direction (unit) of increasing detector column index at zero detector angles.
    public var columnPixelDirection: SIMD3<Double>

    /// One rotation axis of the diffractometer.
    public struct Circle: Equatable, Sendable, CustomStringConvertible {
        /// The motor's name (matched case-insensitively, as are `aliases`).
        public var name: String
        /// The rotation axis (lab, unit, sign included: a positive angle turns right-handed
        /// about it).
        public var axis: SIMD3<Double>
        /// Other names of the motor (SPEC mnemonics such as "th" for Theta).
        public var aliases: [String]
        /// The motor reading (degrees) at which the circle is at its geometric zero: the
        /// rotation applied is reading − zero (a missing reading means the geometric zero).
        public var zero: Double

        public init(name: String, axis: SIMD3<Double>, aliases: [String] = [], zero: Double = 0) {
            self.name = name; self.axis = normalized(axis); self.aliases = aliases; self.zero = zero
        }
        /// A circle in xrayutilities notation ('x+', 'y-', …) of this lab frame; traps on a
        /// bad notation (for the presets; `Diffractometer.axis(notation:)` throws instead).
        init(_ name: String, _ notation: String, aliases: [String] = [], zero: Double = 0) {
            guard let a = try? Diffractometer.axis(notation: notation) else { preconditionFailure("bad axis notation \(notation)") }
            self.init(name: name, axis: a, aliases: aliases, zero: zero)
        }
        /// Whether `motor` names this circle (its name or an alias, ignoring case).
        public func answers(to motor: String) -> Bool {
            ([name] + aliases).contains { $0.caseInsensitiveCompare(motor) == .orderedSame }
        }
        /// This circle's reading in `angles` (by its name first, then by its aliases), or nil.
        public func reading(in angles: [String: Double]) -> Double? {
            for n in [name] + aliases {
                if let v = angles[n] { return v }
                if let kv = angles.first(where: { $0.key.caseInsensitiveCompare(n) == .orderedSame }) { return kv.value }
            }
            return nil
        }
        /// The xrayutilities notation of the axis when it lies along a lab axis, or nil.
        public var notation: String? { Diffractometer.notation(of: axis) }
        public var description: String { "\(name) \(notation ?? "(\(axis.x), \(axis.y), \(axis.z))")" }
    }

    public init(name: String, sampleCircles: [Circle], detectorCircles: [Circle],
                beamDirection: SIMD3<Double> = SIMD3(0, 0, 1),
                rowPixelDirection: SIMD3<Double> = SIMD3(0, -1, 0), columnPixelDirection: SIMD3<Double> = SIMD3(1, 0, 0)) {
        self.name = name; self.sampleCircles = sampleCircles; self.detectorCircles = detectorCircles
        self.beamDirection = normalized(beamDirection)
        self.rowPixelDirection = normalized(rowPixelDirection); self.columnPixelDirection = normalized(columnPixelDirection)
    }

    /// The lab axis of an xrayutilities-style notation: 'x+', 'x-', 'y+', 'y-', 'z+', 'z-'.
    public static func axis(notation: String) throws -> SIMD3<Double> {
        let s = notation.lowercased()
        guard s.count == 2, let sign: Double = s.hasSuffix("+") ? 1 : (s.hasSuffix("-") ? -1 : nil) else {
            throw NumericsError.invalidArgument("'\(notation)' is not an axis ('x+', 'x-', 'y+', 'y-', 'z+' or 'z-')")
        }
        switch s.first! {
        case "x": return SIMD3(sign, 0, 0)
        case "y": return SIMD3(0, sign, 0)
        case "z": return SIMD3(0, 0, sign)
        default: throw NumericsError.invalidArgument("'\(notation)' is not an axis ('x+', 'x-', 'y+', 'y-', 'z+' or 'z-')")
        }
    }

    /// The notation of a lab axis ('x+', …), or nil when `v` is not along one.
    public static func notation(of v: SIMD3<Double>) -> String? {
        for (i, l) in ["x", "y", "z"].enumerated() {
            var e = SIMD3<Double>.zero; e[i] = 1
            if norm(v - e) < 1e-12 { return l + "+" }
            if norm(v + e) < 1e-12 { return l + "-" }
        }
        return nil
    }

    public var description: String {
        "\(name): sample \(sampleCircles.map(\.description).joined(separator: ", ")); detector "
            + "\(detectorCircles.map(\.description).joined(separator: ", ")); pixels rows "
            + "\(Diffractometer.notation(of: rowPixelDirection) ?? "\(rowPixelDirection)"), columns "
            + "\(Diffractometer.notation(of: columnPixelDirection) ?? "\(columnPixelDirection)")"
    }

    // MARK: Presets

    /// APS 34-ID-C. Sample Theta y+, Chi z−, Phi y+; detector Delta y+, Gamma x−; rows y−,
    /// columns x+. Sources: cohere's 34-ID-C diffractometer (cohere_ui beamlines/aps_34idc,
    /// `Diffractometer_34idc`: sampleaxes ('y+', 'z-', 'y+') for th, chi, phi, detectoraxes
    /// ('y+', 'x-') for delta, gamma, incident axis (0, 0, 1): already this frame) and bcdi
    /// (bcdi/experiment/diffractometer.py `create_geometry("34ID")`, CXI frame: the same
    /// circles; beamline.py `Beamline34ID.detector_hor` "x+", `detector_ver` "y-"). The motor
    /// readings are used as they are, as cohere gives SPEC's to xrayutilities (bcdi instead
    /// subtracts a default offset of 90° from Chi: it changes the orientation of the Phi axis,
    /// not Q nor a Theta rocking scan).
    public static let aps34IDC = Diffractometer(
        name: "APS 34-ID-C",
        sampleCircles: [Circle("Theta", "y+", aliases: ["th"]), Circle("Chi", "z-", aliases: ["chi"]),
                        Circle("Phi", "y+", aliases: ["phi"])],
        detectorCircles: [Circle("Delta", "y+", aliases: ["del"]), Circle("Gamma", "x-", aliases: ["gam"])],
        rowPixelDirection: SIMD3(0, -1, 0), columnPixelDirection: SIMD3(1, 0, 0))

    /// ESRF ID01. Sample mu y−, eta x−, phi y−; detector nu y−, delta x−; rows y−, columns x+.
    /// Sources: bcdi `create_geometry("ID01")` (CXI frame: sample ["y-", "x-", "y-"], detector
    /// ["y-", "x-"]; `BeamlineID01.detector_hor` "x+", `detector_ver` "y-") and cdiutils
    /// (geometry.py `Geometry.from_setup("ID01")`: eta "x-", phi "y-", nu "y-", delta "x-",
    /// pixel axes "y-", "x+"). The xrayutilities example for the older ID01 goniometer
    /// (QConversion(['z+', 'y-'], ['z+', 'y-'], [1, 0, 0])) has the opposite sense for mu and
    /// nu; bcdi and cdiutils, written for the present ID01 diffractometer, agree.
    public static let esrfID01 = Diffractometer(
        name: "ESRF ID01",
        sampleCircles: [Circle("mu", "y-"), Circle("eta", "x-"), Circle("phi", "y-")],
        detectorCircles: [Circle("nu", "y-"), Circle("delta", "x-", aliases: ["del"])],
        rowPixelDirection: SIMD3(0, -1, 0), columnPixelDirection: SIMD3(1, 0, 0))

    /// PETRA III P10 (6-circle). Sample mu y+, om x−, chi z+ (geometric zero at the reading
    /// 90°), phi y−; detector gam y+, del x−; rows y−, columns x−. Sources: bcdi
    /// `create_geometry("P10")` (CXI frame: sample ["y+", "x-", "z+", "y-"] with default offsets
    /// (0, 0, 90, 0) subtracted from the readings, detector ["y+", "x-"];
    /// `BeamlineP10.detector_hor` "x-", `detector_ver` "y-") and cdiutils (P10: om "x-", phi
    /// "y-", gam "y+", del "x-", pixel axes "y-", "x-").
    public static let petraP10 = Diffractometer(
        name: "PETRA III P10",
        sampleCircles: [Circle("mu", "y+"), Circle("om", "x-", aliases: ["omega"]), Circle("chi", "z+", zero: 90),
                        Circle("phi", "y-")],
        detectorCircles: [Circle("gam", "y+", aliases: ["gamma"]), Circle("del", "x-", aliases: ["delta"])],
        rowPixelDirection: SIMD3(0, -1, 0), columnPixelDirection: SIMD3(-1, 0, 0))

    /// SOLEIL SIXS (the 2018–2019 configuration). Sample beta x−, mu y+; detector beta x−,
    /// gamma y+, delta x− (beta tilts sample and detector together); rows y−, columns x+.
    /// Source: bcdi `create_geometry("SIXS_2019")` (CXI frame: sample ["x-", "y+"] for beta,
    /// mu; detector ["x-", "y+", "x-"] for beta, gamma, delta; `BeamlineSIXS.detector_hor` "x+",
    /// `detector_ver` "y-"); cdiutils agrees on the circles' axes (its "SIXS") and gives the
    /// detector of 2022 turned by 90° (rows x−, columns y−): set the pixel directions for it.
    public static let soleilSIXS = Diffractometer(
        name: "SOLEIL SIXS",
        sampleCircles: [Circle("beta", "x-"), Circle("mu", "y+")],
        detectorCircles: [Circle("beta", "x-"), Circle("gamma", "y+"), Circle("delta", "x-")],
        rowPixelDirection: SIMD3(0, -1, 0), columnPixelDirection: SIMD3(1, 0, 0))

    /// Diamond I16: the 4S+2D six-circle of H. You, J. Appl. Cryst. 32, 614 (1999), as
    /// Diamond's diffcalc implements it. Sample mu y+, eta x−, chi z+, phi x−; detector gam
    /// (You's nu) y+, delta x−; rows y−, columns x+ (assumed, see below).
    ///
    /// Sources, axis by axis:
    /// - The rotations: diffcalc `diffcalc/hkl/you/matrices.py` (DiamondLightSource/diffcalc):
    ///   MU = x_rotation(mu), ETA = z_rotation(−eta), CHI = y_rotation(chi), PHI =
    ///   z_rotation(−phi), DELTA = z_rotation(−delta), NU = x_rotation(nu), each
    ///   x/y/z_rotation right-handed (active); sample Z = MU·ETA·CHI·PHI (mu outermost) and
    ///   Q_lab = (NU·DELTA − I)·(0, k, 0) (diffcalc `youAnglesToHkl`, You's eq. 12): the
    ///   incident beam is You's +y and nu is the outer detector circle.
    /// - You's frame in the lab: x vertical (mu and nu turn about the vertical, the
    ///   horizontal-scattering pair), y along the beam, z = x × y horizontal. Source: Dan
    ///   Porter (I16 beamline scientist), DanPorter/i16_diffractometer
    ///   `I16_Diffractometer_rotations.py`: "delta … in vertical direction (about diff-z)",
    ///   "gamma … in horizontal direction (about diff-x)", its vertical-geometry example
    ///   (chi 90, eta = delta/2) and horizontal one (mu = gamma/2); and the same repository's
    ///   `I16_Diffractometer_equations.py`, which in the Diamond/NeXus lab frame (x horizontal
    ///   away from the ring, y up, z along the beam: BraggKit's frame) writes k_f = k (sin γ cos δ,
    ///   sin δ, cos γ cos δ): positive delta sends the beam up, positive gamma towards +x.
    ///   So You (x, y, z) → BraggKit (y, z, x), a cyclic relabelling (senses kept): x_rotation →
    ///   'y+', y_rotation → 'z+', z_rotation(−·) → 'x−'. I16's motor `gam` is You's nu
    ///   (Porter's gamma about diff-x; diffcalc `startup/i16.py` groups I16's motors
    ///   (mu, delta, gam, eta, chi, phi) onto You's SixCircle (mu, delta, nu, eta, chi, phi)).
    /// - The pixel directions at zero angles are not in these sources: rows are taken
    ///   downwards (y−) and columns towards +x, the CXI convention the other presets share.
    ///   A file that records its module's `fast_pixel_direction`/`slow_pixel_direction`
    ///   vectors (NeXus frame = this frame) overrides them (`BeamlineScan.pixelDirections`).
    /// Diamond I13-1 is not this diffractometer (its detector sits on a robot arm and the
    /// sample on a hexapod): no public source of its axes was found, so it has no preset.
    public static let diamondI16 = Diffractometer(
        name: "Diamond I16",
        sampleCircles: [Circle("mu", "y+"), Circle("eta", "x-"), Circle("chi", "z+"), Circle("phi", "x-")],
        detectorCircles: [Circle("gam", "y+", aliases: ["nu", "gamma"]), Circle("delta", "x-", aliases: ["del"])],
        rowPixelDirection: SIMD3(0, -1, 0), columnPixelDirection: SIMD3(1, 0, 0))

    /// The presets by short name.
    public static let presets: [String: Diffractometer] = [
        "34idc": .aps34IDC, "id01": .esrfID01, "p10": .petraP10, "sixs": .soleilSIXS, "i16": .diamondI16,
    ]

    /// A preset by beamline name: "34idc", "id01", "p10", "sixs", "i16" (case, spaces, '-' and '_'
    /// ignored, so "34-ID-C" and "ID01" work), or nil.
    public static func named(_ beamline: String) -> Diffractometer? {
        let key = beamline.lowercased().filter { $0.isLetter || $0.isNumber }
        return presets[key]
    }

    // MARK: Geometry

    /// The circle of `circles` that `motor` names, and its index.
    private static func find(_ motor: String, in circles: [Circle]) -> Int? { circles.firstIndex { $0.answers(to: motor) } }

    /// The rotation (radians applied) of each circle from motor readings in degrees.
    private func rotations(_ circles: [Circle], _ angles: [String: Double]) throws -> [Matrix3x3] {
        try circles.map { c in
            let reading = c.reading(in: angles) ?? c.zero
            guard reading.isFinite else {
                throw NumericsError.invalidArgument("\(name): the angle of \(c.name) is not finite (\(reading))")
            }
            return Matrix3x3.rotation(axis: c.axis, angle: (reading - c.zero) * .pi / 180)
        }
    }

    /// The geometry of a rocking scan.
    /// - angles: motor readings in degrees by circle name or alias (missing circles sit at
    ///   their geometric zero, a reading of 0 unless the circle says otherwise);
    /// - rockingCircle: the scanned sample circle; rockingStep: degrees per frame (signed);
    /// - distance: sample to detector along the arm (to the direct-beam pixel at zero
    ///   angles), m; pixelSize: (row, column) pitch, m;
    /// - peakPixel: the full-detector pixel (row, column) the pattern's centre comes from;
    /// - directBeam: the pixel (row, column) the direct beam hits at zero detector angles
    ///   (nil: the peak pixel, i.e. the peak on the detector arm's axis).
    /// The exit direction is the detector rotation applied to the direction from the sample
    /// to the peak pixel at zero angles; the rocking axis is the scanned circle's axis
    /// turned by the circles outside it.
    public func braggGeometry(energy: Double, angles: [String: Double], rockingCircle: String, rockingStep: Double,
                              distance: Double, pixelSize: (row: Double, column: Double),
                              peakPixel: (row: Double, column: Double),
                              directBeam: (row: Double, column: Double)? = nil) throws -> BraggGeometry {
        func bad(_ s: String) -> NumericsError { .invalidArgument("\(name): \(s)") }
        guard energy.isFinite, energy > 0 else { throw bad("the energy must be positive (got \(energy) eV)") }
        guard distance.isFinite, distance > 0 else { throw bad("the detector distance must be positive (got \(distance) m)") }
        guard pixelSize.row.isFinite, pixelSize.row > 0, pixelSize.column.isFinite, pixelSize.column > 0 else {
            throw bad("the pixel size must be positive (got \(pixelSize.row) m × \(pixelSize.column) m)")
        }
        guard rockingStep.isFinite, rockingStep != 0 else { throw bad("the rocking step must be nonzero (got \(rockingStep)°)") }
        let db = directBeam ?? peakPixel
        guard [peakPixel.row, peakPixel.column, db.row, db.column].allSatisfy(\.isFinite) else {
            throw bad("the peak and direct-beam pixels must be finite")
        }
        guard let rock = Diffractometer.find(rockingCircle, in: sampleCircles) else {
            throw bad("'\(rockingCircle)' is not a sample circle (\(sampleCircles.map(\.name).joined(separator: ", ")))")
        }
        let sample = try rotations(sampleCircles, angles), det = try rotations(detectorCircles, angles)
        let detector = det.reduce(Matrix3x3.identity, *)
        // The peak pixel seen from the sample at zero detector angles, then carried by the arm.
        let rowStep0 = rowPixelDirection * pixelSize.row, columnStep0 = columnPixelDirection * pixelSize.column
        let p0 = beamDirection * distance + rowStep0 * (peakPixel.row - db.row) + columnStep0 * (peakPixel.column - db.column)
        let p = detector * p0
        let axis = sample[..<rock].reduce(Matrix3x3.identity, *) * sampleCircles[rock].axis
        // Turn the beam onto +z (identity for the presets).
        var toLab = Matrix3x3.identity
        let b = beamDirection, z = SIMD3<Double>(0, 0, 1), c = cross(b, z)
        if norm(c) > 1e-15 { toLab = .rotation(axis: c, angle: atan2(norm(c), dot(b, z))) }
        else if dot(b, z) < 0 { toLab = .rotation(axis: SIMD3(0, 1, 0), angle: .pi) }
        var g = BraggGeometry(energy: energy, exitDirection: toLab * normalized(p), rowStep: toLab * (detector * rowStep0),
                              columnStep: toLab * (detector * columnStep0), distance: norm(p),
                              rockingAxis: toLab * axis, rockingStep: rockingStep * .pi / 180)
        // The pitches as given (the norms of the turned steps may differ in the last bit).
        g.rowPixelSize = pixelSize.row; g.columnPixelSize = pixelSize.column
        try g.validate()
        return g
    }
}
