import XCTest
import Foundation
@testable import BraggKit

/// Diamond I16 from its NeXus file to a prepared pattern with its full geometry and no typed
/// 2θ: the reader's angles go through the I16 diffractometer (You's 4S+2D, as diffcalc), and
/// Q and the voxel steps the record holds equal xrayutilities' for the same circles, pixel
/// axes (the file's NeXus vectors), direct beam and pattern centre.
final class DiamondI16Tests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bk-i16-\(UUID().uuidString)")
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
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

    /// A python3 with numpy and h5py (and xrayutilities when `xu`), or a skip (a failure under CI).
    func python(xu: Bool) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let need = xu ? "import numpy, h5py, xrayutilities" : "import numpy, h5py"
        for exe in (["/usr/bin"] + path.split(separator: ":").map(String.init)).map({ $0 + "/python3" })
        where FileManager.default.isExecutableFile(atPath: exe) {
            if (try? run(exe, ["-c", need]))?.status == 0 { return exe }
        }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("python3 with \(need) is needed under CI") }
        throw XCTSkip("no python3 with numpy, h5py\(xu ? " and xrayutilities" : ""): the I16 test is skipped")
    }

    /// Writes the I16-layout files (Tests/scripts/make_beamline_scans.py) and returns their folder.
    func files(_ makers: [String]) throws -> String {
        let dir = tmp.path
        let r = try run(try python(xu: false), [Self.root.appendingPathComponent("Tests/scripts/make_beamline_scans.py").path, dir] + makers)
        XCTAssertEqual(r.status, 0, r.output)
        return dir
    }

    func prepared(_ file: String, geometry: GeometryOptions = GeometryOptions()) throws -> (OpenedState, PreparedPattern, CXIGeometry, String?) {
        let state = try StatePreparation.open(name: "s", paths: [file], specScan: nil, request: PrepareRequest())
        let result = try Preparation.prepare(scans: state.scans, options: state.options)
        let (g, note) = try StatePreparation.geometry(of: state, prepared: result, options: geometry)
        return (state, result, g, note)
    }

    func testI16ScanToGeometryAgreesWithXrayutilities() throws {
        let py = try python(xu: true)
        let file = try files(["i16_bragg"]) + "/i16_bragg.nxs"
        let (state, result, record, note) = try prepared(file)
        XCTAssertNil(note)
        let b = try XCTUnwrap(state.beamlineScan)
        XCTAssertEqual(b.beamline, .diamondI16)                       // found from the file
        XCTAssertEqual(b.pixelDirections?.column, SIMD3(-1, 0, 0))    // the file's fast_pixel_direction
        XCTAssertEqual(b.pixelDirections?.row, SIMD3(0, -1, 0))
        XCTAssertEqual(record.beamline, "i16")
        XCTAssertEqual(record.rockingCircle, "eta")
        // the pattern is centred on the blob the script wrote (frame 6, row 15, column 29)
        XCTAssertEqual(result.peak[0], 6, accuracy: 0.05); XCTAssertEqual(result.peak[1], 15, accuracy: 0.05)
        XCTAssertEqual(result.peak[2], 29, accuracy: 0.05)
        let g = try XCTUnwrap(try record.braggGeometry())
        XCTAssertTrue(g.hasExplicitVectors, "the diffractometer's vector form, not 2θ")
        let angles = record.angles, peak = try XCTUnwrap(record.peakPixel)
        XCTAssertEqual(angles["eta"] ?? .nan, 17.17 + 0.005 * (Double(result.cropStart[0] + result.cropSize[0] / 2)), accuracy: 1e-9)
        // xrayutilities: I16's circles in its notation of this lab frame (sample mu 'y+', eta
        // 'x-', chi 'z+', phi 'x-'; detector gam 'y+', delta 'x-'), the file's pixel axes
        // (rows 'y-', columns 'x-'), r_i = (0, 0, 1); q at the centre pixel and its three
        // neighbours in frame, row and column, brought to the lab frame of the centre.
        let script = """
            import json, numpy as np, xrayutilities as xu
            a = json.loads('\(String(decoding: try JSONSerialization.data(withJSONObject: angles), as: UTF8.self))')
            r, c = \(peak[0]), \(peak[1])
            qc = xu.experiment.QConversion(['y+', 'x-', 'z+', 'x-'], ['y+', 'x-'], r_i=(0, 0, 1))
            qc.init_area('y-', 'x-', cch1=10.0 - (r - 1), cch2=20.0 - (c - 1), Nch1=3, Nch2=3, distance=1.5,
                         pwidth1=55e-6, pwidth2=55e-6)
            s = [a['mu'], a['eta'], a['chi'], a['phi']]
            def q(de):
                t = list(s); t[1] += de
                qx, qy, qz = qc.area(*t, a['gam'], a['delta'], en=9300, deg=True)
                v = np.stack([qx, qy, qz], -1)
                return np.array([[qc.transformSample2Lab(x, *s) for x in row] for row in v]) * 1e10
            q0, qp, qm = q(0), q(0.005), q(-0.005)
            print('RESULT ' + json.dumps({'q': list(q0[1, 1]), 'frame': list((qp[1, 1] - qm[1, 1]) / 2),
                  'row': list((q0[2, 1] - q0[0, 1]) / 2), 'column': list((q0[1, 2] - q0[1, 0]) / 2)}))
            """
        let out = try run(py, ["-c", script])
        XCTAssertEqual(out.status, 0, out.output)
        guard let line = out.output.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }),
              let want = try JSONSerialization.jsonObject(with: Data(line.dropFirst(7).utf8)) as? [String: [Double]] else {
            return XCTFail("no result from xrayutilities: \(out.output)")
        }
        let steps = g.reciprocalSteps
        for (name, ours) in [("q", g.q), ("frame", steps[0]), ("row", steps[1]), ("column", steps[2])] {
            let v = want[name]!, theirs = SIMD3(v[0], v[1], v[2])
            XCTAssertLessThan(norm(ours - theirs) / norm(theirs), 1e-4, "\(name): BraggKit \(ours) vs xrayutilities \(theirs)")
        }
    }

    /// The command: an I16 file in, its geometry out, no 2θ typed.
    func testPrepareCommandWritesTheI16Geometry() throws {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        let file = try files(["i16_bragg"]) + "/i16_bragg.nxs", out = tmp.path + "/p.cxi"
        let r = try run(exe, ["prepare", file, "--out", out])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("geometry: 2θ = "), r.output)
        let (_, _, record, _) = try prepared(file)
        let written = try CXIResults.read(from: out).geometry
        XCTAssertEqual(written.beamline, "i16")
        XCTAssertEqual(written.qVector, record.qVector)
        XCTAssertEqual(written.angles, record.angles)
    }

    /// GDA's classic entry1 file records no detector distance: --distance completes the
    /// diffractometer's geometry (no 2θ typed), and says what it replaced.
    func testClassicFileTakesTheDistanceFromTheCommandLine() throws {
        let file = try files(["i16"]) + "/i16_classic.nxs"
        let (_, _, bare, _) = try prepared(file)
        XCTAssertNil(try bare.braggGeometry(), "no distance: incomplete")
        var o = GeometryOptions()
        o.distance = 1.1
        let (_, _, record, note) = try prepared(file, geometry: o)
        XCTAssertEqual(note, "geometry from i16_classic, overridden on the command line: distance 1.1 m replaces none")
        o.labels = [.distance: "--distance"]   // a program's own name for the setting (bragg's flag)
        XCTAssertEqual(try prepared(file, geometry: o).3,
                       "geometry from i16_classic, overridden on the command line: --distance 1.1 m replaces none")
        let g = try XCTUnwrap(try record.braggGeometry())
        XCTAssertFalse(record.model.isEmpty, "the diffractometer's geometry, not 2θ")
        // eta (mu = 0) turns about −x, the horizontal axis across the beam
        XCTAssertLessThan(norm(g.axis - SIMD3(-1, 0, 0)), 1e-12, "\(g.axis)")
        // delta 40°, gam 5° on the arm's axis (no direct beam recorded: the centre pixel is
        // taken on it): 2θ = acos(cos δ cos γ), 9 keV.
        let tth = acos(cos(40 * Double.pi / 180) * cos(5 * Double.pi / 180))
        XCTAssertEqual(g.qMagnitude, 4 * .pi * sin(tth / 2) / (BraggGeometry.hc / 9000), accuracy: 1e-9 * g.qMagnitude)
        XCTAssertEqual(record.detectorDistance ?? .nan, 1.1, accuracy: 1e-15)
    }

    /// A file of the reader's layout without the detector circles (I13-1's robot arm is not
    /// I16's six-circle) gets no invented geometry: it stays incomplete and says why.
    func testUnrecordedDetectorCircleLeavesTheGeometryIncomplete() throws {
        let file = try files(["i16_bragg"]) + "/i16_bragg.nxs"
        let (opened, result, _, _) = try prepared(file)
        var state = opened
        XCTAssertNotNil(try StatePreparation.geometry(of: state, prepared: result, options: GeometryOptions()).record.braggGeometry())
        state.beamlineScans![0].angles["delta"] = nil
        let (record, _) = try StatePreparation.geometry(of: state, prepared: result, options: GeometryOptions())
        XCTAssertNil(try record.braggGeometry())
        XCTAssertEqual(record.notes["geometry"], "Diamond I16: detector circle(s) delta not recorded")
    }
}
