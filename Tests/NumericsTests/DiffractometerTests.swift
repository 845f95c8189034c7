import Foundation
import XCTest
@testable import Numerics

/// A python3 that imports numpy and xrayutilities (Debian's python3-xrayutilities), or nil.
private func pythonWithXrayutilities() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin"]
    for exe in dirs.map({ $0 + "/python3" }) where FileManager.default.isExecutableFile(atPath: exe) {
        if let (s, _) = try? runCommand(exe, ["-c", "import numpy, xrayutilities"]), s == 0 { return exe }
    }
    return nil
}

/// Runs a program; returns (status, stdout + stderr).
private func runCommand(_ exe: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe; p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// xrayutilities' q, per pixel, for the pixels around the peak at the reference rocking angle
/// and one step either side. Every case's circles are written in xrayutilities notation of
/// BraggKit's lab frame and r_i = (0, 0, 1), so both frames coincide. xrayutilities returns
/// q in the sample frame at the angles used (Å⁻¹); the script brings each q to the lab frame
/// of the reference angles (`transformSample2Lab`), where BraggKit expresses its steps, and
/// gives, in m⁻¹: Q at the peak pixel, the frame step (central difference of the rocking
/// angle), the row and column steps (central differences of neighbouring pixels).
private let oracleScript = """
    import json, sys
    import numpy as np
    import xrayutilities as xu
    out = []
    for c in json.loads(sys.argv[1]):
        qc = xu.experiment.QConversion(c['sample'], c['detector'], r_i=(0, 0, 1))
        r, k = c['peak']
        qc.init_area(c['rowdir'], c['coldir'], cch1=c['direct'][0], cch2=c['direct'][1], Nch1=c['nrows'],
                     Nch2=c['ncols'], distance=c['distance'], pwidth1=c['prow'], pwidth2=c['pcol'],
                     roi=[r - 1, r + 2, k - 1, k + 2])
        s, d, i, step = c['sample_angles'], c['detector_angles'], c['rock'], c['step']
        def q(shift):
            a = list(s); a[i] += shift
            qx, qy, qz = qc.area(*a, *d, en=c['energy'], deg=True)
            qs = np.stack([qx, qy, qz], -1)
            assert qs.shape == (3, 3, 3), qs.shape
            return np.array([[qc.transformSample2Lab(v, *s) for v in row] for row in qs]) * 1e10
        q0, qp, qm = q(0), q(step), q(-step)
        out.append({'q': list(q0[1, 1]), 'frame': list((qp[1, 1] - qm[1, 1]) / 2),
                    'row': list((q0[2, 1] - q0[0, 1]) / 2), 'column': list((q0[1, 2] - q0[1, 0]) / 2)})
    print('RESULT ' + json.dumps(out))
    """

final class DiffractometerTests: XCTestCase {
    /// One measurement: a diffractometer, motor readings, the scanned circle and the detector.
    struct Case {
        var label: String
        var diffractometer: Diffractometer
        var angles: [String: Double]
        var rocking: String
        var step: Double                  // degrees per frame
        var energy: Double                // eV
        var distance: Double              // m
        var pixel: (row: Double, column: Double)
        var detectorShape: (rows: Int, columns: Int)
        var peak: (row: Int, column: Int)
        var directBeam: (row: Int, column: Int)?

        func geometry() throws -> BraggGeometry {
            try diffractometer.braggGeometry(
                energy: energy, angles: angles, rockingCircle: rocking, rockingStep: step, distance: distance,
                pixelSize: pixel, peakPixel: (Double(peak.row), Double(peak.column)),
                directBeam: directBeam.map { (Double($0.row), Double($0.column)) })
        }

        /// The same measurement for xrayutilities: axis notations, geometric angles (reading −
        /// zero), pixel directions.
        var oracleInput: [String: Any] {
            func geometric(_ c: Diffractometer.Circle) -> Double {
                (c.reading(in: angles) ?? c.zero) - c.zero
            }
            let d = diffractometer, db = directBeam ?? peak
            return ["sample": d.sampleCircles.map { $0.notation! }, "detector": d.detectorCircles.map { $0.notation! },
                    "sample_angles": d.sampleCircles.map(geometric), "detector_angles": d.detectorCircles.map(geometric),
                    "rock": d.sampleCircles.firstIndex { $0.answers(to: rocking) }!, "step": step, "energy": energy,
                    "distance": distance, "prow": pixel.row, "pcol": pixel.column,
                    "rowdir": Diffractometer.notation(of: d.rowPixelDirection)!,
                    "coldir": Diffractometer.notation(of: d.columnPixelDirection)!,
                    "nrows": detectorShape.rows, "ncols": detectorShape.columns,
                    "peak": [peak.row, peak.column], "direct": [db.row, db.column]]
        }
    }

    /// Scan 54 of the real 34-ID-C data (README of shared/realdata/aps-34idc-scan54).
    static let angles34IDC: [String: Double] = ["Delta": 32.174, "Gamma": 12.6346, "Theta": 0.2200042, "Chi": 90, "Phi": -5]

    static let cases: [Case] = [
        // The measured angles, the peak on the detector arm's axis.
        Case(label: "34-ID-C scan 54", diffractometer: .aps34IDC, angles: angles34IDC, rocking: "th", step: 0.005,
             energy: 9000, distance: 0.5, pixel: (55e-6, 55e-6), detectorShape: (512, 512), peak: (130, 140), directBeam: nil),
        // The same with the peak 126 rows and 110 columns away from the direct beam.
        Case(label: "34-ID-C, peak off the arm", diffractometer: .aps34IDC, angles: angles34IDC, rocking: "Theta", step: 0.005,
             energy: 9000, distance: 0.5, pixel: (55e-6, 55e-6), detectorShape: (512, 512), peak: (130, 140),
             directBeam: (256, 250)),
        // ID01: vertical scattering (delta) with a little nu, eta rocking under a tilted mu.
        Case(label: "ID01", diffractometer: .esrfID01, angles: ["mu": 1.5, "eta": 17.3, "phi": 12, "nu": 2.1, "delta": 35.2],
             rocking: "eta", step: 0.008, energy: 8500, distance: 1.2, pixel: (55e-6, 55e-6), detectorShape: (516, 516),
             peak: (180, 330), directBeam: (258, 260)),
        // P10: om rocking under mu = 0.8°, chi 2.5° off its zero (reading 92.5°), rectangular pixels.
        Case(label: "P10", diffractometer: .petraP10, angles: ["mu": 0.8, "om": 14.7, "chi": 92.5, "phi": 30, "gam": -3.2, "del": 28.9],
             rocking: "om", step: 0.01, energy: 10_200, distance: 1.83, pixel: (75e-6, 70e-6), detectorShape: (2167, 2070),
             peak: (1100, 900), directBeam: (1040, 1020)),
        // SIXS: beta tilts sample and detector; mu rocking.
        Case(label: "SIXS", diffractometer: .soleilSIXS, angles: ["beta": 1.2, "mu": 11.4, "gamma": 21.5, "delta": 9.8],
             rocking: "mu", step: -0.006, energy: 8000, distance: 1.21, pixel: (55e-6, 55e-6), detectorShape: (516, 516),
             peak: (240, 300), directBeam: (270, 255)),
        // I16: every circle off zero (the motor names as I16's NeXus files record them), eta
        // rocking, the peak off the direct beam.
        Case(label: "I16", diffractometer: .diamondI16,
             angles: ["mu": 2.5, "eta": 18.7, "chi": 85, "phi": 12, "gam": 4.3, "delta": 36.4],
             rocking: "eta", step: 0.004, energy: 9300, distance: 1.5, pixel: (55e-6, 55e-6), detectorShape: (515, 515),
             peak: (200, 310), directBeam: (250, 260)),
        // I16 rocking phi (under chi 85°, eta and mu): the axis carried by three circles.
        Case(label: "I16 phi", diffractometer: .diamondI16,
             angles: ["mu": -1.2, "eta": 21.0, "chi": 85, "phi": 40, "nu": 6.1, "delta": 30.2],
             rocking: "phi", step: -0.01, energy: 8000, distance: 0.9, pixel: (55e-6, 55e-6), detectorShape: (515, 515),
             peak: (300, 120), directBeam: (256, 256)),
    ]

    func testQAndStepsAgreeWithXrayutilities() throws {
        guard let py = pythonWithXrayutilities() else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("python3 with numpy and xrayutilities is needed under CI (Debian python3-xrayutilities)")
                return
            }
            throw XCTSkip("python3 with xrayutilities not found: the diffractometer cross-check is skipped")
        }
        let input = try JSONSerialization.data(withJSONObject: Self.cases.map(\.oracleInput))
        let (status, out) = try runCommand(py, ["-c", oracleScript, String(decoding: input, as: UTF8.self)])
        XCTAssertEqual(status, 0, out)
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }),
              let results = try JSONSerialization.jsonObject(with: Data(line.dropFirst(7).utf8)) as? [[String: [Double]]],
              results.count == Self.cases.count else { return XCTFail("no result from xrayutilities: \(out)") }
        for (c, r) in zip(Self.cases, results) {
            let g = try c.geometry()
            let steps = g.reciprocalSteps
            let pairs: [(String, SIMD3<Double>)] = [("q", g.q), ("frame", steps[0]), ("row", steps[1]), ("column", steps[2])]
            for (name, ours) in pairs {
                let v = r[name]!, theirs = SIMD3(v[0], v[1], v[2])
                let rel = norm(ours - theirs) / norm(theirs)
                XCTAssertLessThan(rel, 1e-4, "\(c.label) \(name): BraggKit \(ours) vs xrayutilities \(theirs)")
            }
        }
    }

    /// 34-ID-C's detector circles: Gamma (inner, about −x) lifts the arm out of the horizontal
    /// plane, Delta (outer, about +y) turns it in the plane, so 2θ = acos(cos δ cos γ) and the
    /// out-of-plane angle is Gamma: the old angle form must give the same geometry.
    func test34IDCBraggAngleAndAngleFormAgree() throws {
        let c = Self.cases[0], g = try c.geometry()
        let delta = 32.174 * Double.pi / 180, gamma = 12.6346 * Double.pi / 180
        let twoTheta = acos(cos(delta) * cos(gamma))
        XCTAssertEqual(twoTheta * 180 / .pi, 34.316, accuracy: 5e-4)
        XCTAssertEqual(g.twoTheta, twoTheta, accuracy: 1e-12)
        XCTAssertEqual(g.outOfPlane, gamma, accuracy: 1e-12)
        XCTAssertEqual(g.inPlaneAngle, delta, accuracy: 1e-12)
        let lambda = BraggGeometry.hc / 9000
        XCTAssertEqual(g.qMagnitude, 4 * .pi * sin(twoTheta / 2) / lambda, accuracy: 1e-12 * g.qMagnitude)
        XCTAssertEqual(g.qMagnitude, 2.691e10, accuracy: 1e6)

        let old = BraggGeometry(energy: 9000, twoTheta: twoTheta, outOfPlane: gamma, distance: 0.5, pixelSize: 55e-6,
                                rockingStep: 0.005 * .pi / 180, rockingAxis: SIMD3(0, 1, 0))
        XCTAssertTrue(g.hasExplicitVectors); XCTAssertFalse(old.hasExplicitVectors)
        func close(_ a: SIMD3<Double>, _ b: SIMD3<Double>, _ what: String) {
            XCTAssertLessThan(norm(a - b), 1e-12 * max(norm(b), 1e-300), "\(what): \(a) vs \(b)")
        }
        close(g.exitDirection, old.exitDirection, "k̂_f")
        close(g.rowDirection, old.rowDirection, "row direction")
        close(g.columnDirection, old.columnDirection, "column direction")
        close(g.axis, old.axis, "rocking axis")
        close(g.q, old.q, "Q")
        for (a, b) in zip(g.reciprocalSteps, old.reciprocalSteps) { close(a, b, "reciprocal step") }
        for (a, b) in zip(g.realSpaceSteps(shape: [64, 96, 80]), old.realSpaceSteps(shape: [64, 96, 80])) {
            close(a, b, "real-space step")
        }
        XCTAssertNil(g.problem)
    }

    /// The presets are written as their sources give them (bcdi's CXI-frame lists, cohere's
    /// 34-ID-C axes), and the beamline names find them.
    func testPresetsAndNames() throws {
        func notations(_ c: [Diffractometer.Circle]) -> [String] { c.map { $0.notation ?? "?" } }
        XCTAssertEqual(notations(Diffractometer.aps34IDC.sampleCircles), ["y+", "z-", "y+"])
        XCTAssertEqual(notations(Diffractometer.aps34IDC.detectorCircles), ["y+", "x-"])
        XCTAssertEqual(notations(Diffractometer.esrfID01.sampleCircles), ["y-", "x-", "y-"])
        XCTAssertEqual(notations(Diffractometer.esrfID01.detectorCircles), ["y-", "x-"])
        XCTAssertEqual(notations(Diffractometer.petraP10.sampleCircles), ["y+", "x-", "z+", "y-"])
        XCTAssertEqual(notations(Diffractometer.petraP10.detectorCircles), ["y+", "x-"])
        XCTAssertEqual(notations(Diffractometer.soleilSIXS.sampleCircles), ["x-", "y+"])
        XCTAssertEqual(notations(Diffractometer.soleilSIXS.detectorCircles), ["x-", "y+", "x-"])
        XCTAssertEqual(notations(Diffractometer.diamondI16.sampleCircles), ["y+", "x-", "z+", "x-"])
        XCTAssertEqual(notations(Diffractometer.diamondI16.detectorCircles), ["y+", "x-"])
        XCTAssertEqual(Diffractometer.named("I16"), .diamondI16)
        XCTAssertNil(Diffractometer.named("i13"))   // I13-1's robot arm is not I16's six-circle
        XCTAssertEqual(Diffractometer.notation(of: Diffractometer.petraP10.columnPixelDirection), "x-")
        XCTAssertEqual(Diffractometer.named("34-ID-C"), .aps34IDC)
        XCTAssertEqual(Diffractometer.named("34idc"), .aps34IDC)
        XCTAssertEqual(Diffractometer.named("ID01"), .esrfID01)
        XCTAssertEqual(Diffractometer.named("p10"), .petraP10)
        XCTAssertEqual(Diffractometer.named("sixs"), .soleilSIXS)
        XCTAssertNil(Diffractometer.named("x99"))
        XCTAssertThrowsError(try Diffractometer.axis(notation: "w+"))
        XCTAssertEqual(try Diffractometer.axis(notation: "Z-"), SIMD3(0, 0, -1))

        // A detector circle is not a rocking circle; a bad number is named.
        var c = Self.cases[0]
        c.rocking = "Delta"
        XCTAssertThrowsError(try c.geometry()) { XCTAssertTrue("\($0)".contains("not a sample circle"), "\($0)") }
        c.rocking = "Theta"; c.angles["Gamma"] = .nan
        XCTAssertThrowsError(try c.geometry()) { XCTAssertTrue("\($0)".contains("Gamma"), "\($0)") }
    }

    /// The I16 preset against the 4S+2D equations as Diamond's diffcalc writes them
    /// (diffcalc/hkl/you/matrices.py and youAnglesToHkl): MU = Rx(mu), ETA = Rz(−eta),
    /// CHI = Ry(chi), PHI = Rz(−phi), DELTA = Rz(−delta), NU = Rx(nu) in You's frame (x up,
    /// y along the beam, z = x × y), Q_lab = (NU·DELTA − I)(0, k, 0), sample Z = MU·ETA·CHI·PHI;
    /// You's (x, y, z) is BraggKit's (y, z, x). Q (peak on the arm's axis) and the rocking
    /// axes of eta and phi (−z of You carried by the circles outside) must agree.
    func testI16AgreesWithYouEquationsOfDiffcalc() throws {
        // diffcalc's x_rotation, y_rotation, z_rotation, written out.
        func rx(_ t: Double) -> Matrix3x3 { Matrix3x3(rows: [SIMD3(1, 0, 0), SIMD3(0, cos(t), -sin(t)), SIMD3(0, sin(t), cos(t))]) }
        func ry(_ t: Double) -> Matrix3x3 { Matrix3x3(rows: [SIMD3(cos(t), 0, sin(t)), SIMD3(0, 1, 0), SIMD3(-sin(t), 0, cos(t))]) }
        func rz(_ t: Double) -> Matrix3x3 { Matrix3x3(rows: [SIMD3(cos(t), -sin(t), 0), SIMD3(sin(t), cos(t), 0), SIMD3(0, 0, 1)]) }
        func lab(_ v: SIMD3<Double>) -> SIMD3<Double> { SIMD3(v.z, v.x, v.y) }   // You → BraggKit
        let d = Double.pi / 180
        let a: [String: Double] = ["mu": 2.5, "eta": 18.7, "chi": 85, "phi": 12, "gam": 4.3, "delta": 36.4]
        let MU = rx(a["mu"]! * d), ETA = rz(-a["eta"]! * d), CHI = ry(a["chi"]! * d)
        let NU = rx(a["gam"]! * d), DELTA = rz(-a["delta"]! * d)
        let energy = 9300.0, k = 2 * Double.pi / (BraggGeometry.hc / energy)
        let y = SIMD3<Double>(0, 1, 0)
        let qYou = (NU * DELTA * y - y) * k
        for (circle, axisYou) in [("eta", MU * SIMD3<Double>(0, 0, -1)), ("phi", MU * ETA * CHI * SIMD3<Double>(0, 0, -1))] {
            let g = try Diffractometer.diamondI16.braggGeometry(
                energy: energy, angles: a, rockingCircle: circle, rockingStep: 0.004, distance: 1.5,
                pixelSize: (55e-6, 55e-6), peakPixel: (200, 310))
            XCTAssertLessThan(norm(g.q - lab(qYou)), 1e-12 * norm(g.q), "Q: \(g.q) vs You \(lab(qYou))")
            XCTAssertLessThan(norm(g.axis - lab(axisYou)), 1e-12, "\(circle) axis: \(g.axis) vs You \(lab(axisYou))")
        }
        // Positive delta sends the beam up, positive gam towards +x (I16's vertical and
        // horizontal scattering planes, as Porter's k_f = k (sin γ cos δ, sin δ, cos γ cos δ)).
        let up = try Diffractometer.diamondI16.braggGeometry(energy: energy, angles: ["delta": 30], rockingCircle: "eta",
                                                             rockingStep: 0.01, distance: 1, pixelSize: (55e-6, 55e-6), peakPixel: (0, 0))
        XCTAssertEqual(up.exitDirection.y, sin(30 * d), accuracy: 1e-12)
        XCTAssertEqual(up.exitDirection.x, 0, accuracy: 1e-12)
        let side = try Diffractometer.diamondI16.braggGeometry(energy: energy, angles: ["gam": 30], rockingCircle: "mu",
                                                               rockingStep: 0.01, distance: 1, pixelSize: (55e-6, 55e-6), peakPixel: (0, 0))
        XCTAssertEqual(side.exitDirection.x, sin(30 * d), accuracy: 1e-12)
        let both = try Diffractometer.diamondI16.braggGeometry(energy: energy, angles: ["delta": 20, "gam": 10], rockingCircle: "eta",
                                                               rockingStep: 0.01, distance: 1, pixelSize: (55e-6, 55e-6), peakPixel: (0, 0))
        let porter = SIMD3(sin(10 * d) * cos(20 * d), sin(20 * d), cos(10 * d) * cos(20 * d))
        XCTAssertLessThan(norm(both.exitDirection - porter), 1e-12, "\(both.exitDirection) vs \(porter)")
    }

    /// The rocking axis is the scanned circle's axis carried by the circles outside it.
    func testRockingAxisIsCarriedByOuterCircles() throws {
        let g = try Self.cases[3].geometry()               // P10: om (−x) under mu = 0.8° about +y
        let mu = 0.8 * Double.pi / 180
        let expected = SIMD3(-cos(mu), 0, sin(mu))
        XCTAssertLessThan(norm(g.axis - expected), 1e-14, "\(g.axis)")
        XCTAssertEqual(g.rockingStep, 0.01 * .pi / 180, accuracy: 1e-18)
    }

    func testScalarsRoundTrip() throws {
        // The angle form reads back identical (bit for bit), the vector form too.
        let seed = BraggGeometry.seedStudy
        XCTAssertEqual(try BraggGeometry(scalars: seed.scalars), seed)
        var tilted = seed
        tilted.outOfPlane = 3 * .pi / 180; tilted.rockingAxis = normalized(SIMD3(0.1, 1, 0.05))
        XCTAssertEqual(try BraggGeometry(scalars: tilted.scalars), tilted)
        let v = try Self.cases[3].geometry()
        let back = try BraggGeometry(scalars: v.scalars)
        XCTAssertTrue(back.hasExplicitVectors)
        for (a, b) in zip(back.reciprocalSteps + [back.q, back.axis], v.reciprocalSteps + [v.q, v.axis]) {
            XCTAssertLessThan(norm(a - b), 1e-14 * norm(b), "\(a) vs \(b)")
        }
        XCTAssertEqual(Set(v.scalars.keys), Set(BraggGeometry.scalarKeys))
        XCTAssertEqual(v.rowPixelSize, 75e-6, accuracy: 1e-18); XCTAssertEqual(v.columnPixelSize, 70e-6, accuracy: 1e-18)

        var missing = v.scalars
        missing["row_step_y"] = nil
        XCTAssertThrowsError(try BraggGeometry(scalars: missing)) { XCTAssertTrue("\($0)".contains("row_step_y"), "\($0)") }
        // Edited vectors beside the angle-form numbers read back as the vector form.
        var edited = seed.scalars
        edited["exit_direction_x"]! += 1e-3
        XCTAssertTrue(try BraggGeometry(scalars: edited).hasExplicitVectors)
    }

    /// Setting 2θ or δ on the vector form turns the detector rigidly to the new angles.
    func testSettingAnglesTurnsTheVectorForm() throws {
        var g = try Self.cases[2].geometry()
        let before = g, delta = g.outOfPlane
        g.twoTheta += 0.01
        XCTAssertEqual(g.twoTheta, before.twoTheta + 0.01, accuracy: 1e-12)
        XCTAssertEqual(g.outOfPlane, delta, accuracy: 1e-12)
        XCTAssertTrue(g.hasExplicitVectors)
        // A rotation keeps the angles between k̂_f and the pixel directions.
        XCTAssertEqual(dot(g.rowDirection, g.columnDirection), dot(before.rowDirection, before.columnDirection), accuracy: 1e-12)
        XCTAssertEqual(dot(g.rowDirection, g.exitDirection), dot(before.rowDirection, before.exitDirection), accuracy: 1e-12)
        g.outOfPlane = 0.02
        XCTAssertEqual(g.outOfPlane, 0.02, accuracy: 1e-12)
        XCTAssertEqual(g.twoTheta, before.twoTheta + 0.01, accuracy: 1e-12)
        // An impossible pair is reported, not hidden.
        g.outOfPlane = 2
        XCTAssertNotNil(g.problem)
    }

    /// The description names Q and the angles.
    func testDescription() throws {
        let d = try Self.cases[0].geometry().description
        XCTAssertTrue(d.contains("2θ = 34.316°"), d)
        XCTAssertTrue(d.contains("δ = 12.635°"), d)
        XCTAssertTrue(d.contains("Q = ("), d)
    }
}
