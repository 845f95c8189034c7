import XCTest
import Foundation
@testable import Formats
import Numerics

/// Reconstructions in PyNX's, cohere's and bcdi's layouts, written by
/// Tests/scripts/make_peer_results.py (numpy, h5py), open and give back the object.
final class PeerResultsTests: XCTestCase {
    static let folder: Result<String, Error> = {
        guard let py = python(with: ["h5py"]) else { return .failure(XCTSkip("python3 with numpy and h5py not found: peer result tests skipped")) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = NSTemporaryDirectory() + "braggkit-peers-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            let (status, out) = try runProcess(py, [root.appendingPathComponent("Tests/scripts/make_peer_results.py").path, dir])
            guard status == 0 else { return .failure(NSError(domain: "peers", code: 1, userInfo: [NSLocalizedDescriptionKey: out])) }
        } catch { return .failure(error) }
        return .success(dir)
    }()

    func path(_ name: String) throws -> String { try Self.folder.get() + "/" + name }

    /// The generator's object: (1 + i mod 7) · exp(0.01 i·j) over (6, 8, 10), times `scale`.
    func assertObject(_ o: ComplexVolume, scale: Float = 1, accuracy: Float = 1e-6, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(o.shape, [6, 8, 10], file: file, line: line)
        guard o.shape == [6, 8, 10] else { return }
        var worst: Float = 0
        for i in 0..<o.count {
            let a = Float(1 + i % 7) * scale, t = 0.01 * Double(i)
            let e = Complex32(a * Float(cos(t)), a * Float(sin(t)))
            worst = max(worst, abs(o[flat: i].re - e.re), abs(o[flat: i].im - e.im))
        }
        XCTAssertLessThan(worst, accuracy * 8, "largest difference \(worst)", file: file, line: line)
    }

    func expectedSupport() -> [Float] { (0..<480).map { $0 % 3 != 0 ? 1 : 0 } }

    func testPyNXResultWithSingleModeStack() throws {
        let r = try XCTUnwrap(try PeerResults.read(try path("pynx-result.cxi")))
        XCTAssertEqual(r.program, "PyNX")
        assertObject(r.object)
        XCTAssertEqual(r.support?.shape, [6, 8, 10])
        XCTAssertEqual(r.support?.floats, expectedSupport())
        XCTAssertTrue(r.note.contains("a stack of 1 mode(s); the first mode is used"), r.note)
        XCTAssertEqual(r.voxelSizeNm!.count, 3)
        for v in r.voxelSizeNm! { XCTAssertEqual(v, 5, accuracy: 1e-9) }
        XCTAssertEqual(r.geometry.energy!, 9000, accuracy: 1e-6)
        XCTAssertEqual(r.geometry.detectorDistance, 1.2)
        XCTAssertEqual(r.geometry.pixelSize, 55e-6)
        XCTAssertEqual(r.parameters["nb_raar"], "600")
        XCTAssertEqual(r.parameters["algorithm"], "ER**100,RAAR**600")
        XCTAssertEqual(r.parameters["llk_poisson"], "12.5")
        // The generic CXI reader takes /entry_1/data_1/data (a link to the object here) for a
        // pattern and refuses the file: what view and analyze did before this reader.
        XCTAssertThrowsError(try CXIResults.read(from: try path("pynx-result.cxi"))) { e in
            XCTAssertTrue("\(e)".contains("/entry_1/data_1/data is complex"), "\(e)")
        }
    }

    func testPyNXModesFileTakesTheFirstMode() throws {
        let r = try XCTUnwrap(try PeerResults.read(try path("pynx-modes.h5")))
        assertObject(r.object)              // mode 0, not 0.5× (mode 1) or 0.25× (mode 2)
        XCTAssertNil(r.support)
        XCTAssertTrue(r.note.contains("a stack of 3 mode(s); the first mode is used, weight 90.0%"), r.note)
        XCTAssertTrue(r.note.contains("no support in the file"), r.note)
    }

    func testCohereImageWithSupportBeside() throws {
        let r = try XCTUnwrap(try PeerResults.read(try path("cohere/results_phasing/image.npy")))
        XCTAssertEqual(r.program, "cohere")
        assertObject(r.object)              // complex128 on disk
        XCTAssertEqual(r.support?.floats, expectedSupport())
    }

    func testBcdiObjAndAmpPhase() throws {
        let a = try XCTUnwrap(try PeerResults.read(try path("S12_avg_obj_prtf.npz")))
        XCTAssertEqual(a.program, "bcdi")
        assertObject(a.object)
        let b = try XCTUnwrap(try PeerResults.read(try path("S12_amp-disp-strain.npz")))
        assertObject(b.object, accuracy: 2e-6)   // amp · exp(i·phase), rebuilt in Float
        XCTAssertEqual(b.voxelSizeNm, [4, 5, 6])
        XCTAssertThrowsError(try PeerResults.read(try path("S12_support.npz"))) { e in
            XCTAssertTrue("\(e)".contains("is real (float64): a bcdi support or intensity, not a complex object"), "\(e)")
        }
    }

    func testOwnResultsAndPlainArraysAreNotPeerResults() throws {
        let dir = try Self.folder.get()
        let own = dir + "/own.cxi"
        let obj = ComplexVolume(shape: [2, 2, 2], repeating: Complex32(1, 0))
        try CXIResults(object: obj, support: RealVolume(shape: [2, 2, 2], repeating: 1)).write(to: own, overwrite: true)
        XCTAssertNil(try PeerResults.read(own))
        try ArrayIO.write(obj, to: dir + "/object.npy", overwrite: true)
        XCTAssertNil(try PeerResults.read(dir + "/object.npy"))
    }
}

/// The `bragg` commands on peers' results and beamline scans (the hooks in view, analyze,
/// convert and prepare).
final class PeerAndBeamlineCommandTests: XCTestCase {
    func peers() throws -> String { try PeerResultsTests.folder.get() }

    func testViewAnalyzeConvertOpenPeerResults() throws {
        let bragg = try braggExecutable()
        let p = try peers()
        let out = p + "/cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var (status, text) = try runProcess(bragg, ["view", p + "/pynx-result.cxi", "--out", out + "/view"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("the first mode is used"), text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/view/slices.png"))
        (status, text) = try runProcess(bragg, ["analyze", p + "/pynx-result.cxi", p + "/cohere/results_phasing/image.npy",
                                                p + "/S12_avg_obj_prtf.npz", "--labels", "pynx,cohere,bcdi", "--out", out + "/analysis",
                                                "--energy-kev", "9", "--two-theta", "30", "--distance", "1.2", "--pixel-um", "55",
                                                "--rocking-step", "0.01"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/analysis/table.json"), text)
        (status, text) = try runProcess(bragg, ["convert", p + "/pynx-modes.h5", out + "/mode0.npy"])
        XCTAssertEqual(status, 0, text)
        let first = try ArrayIO.readComplex(out + "/mode0.npy")
        let direct = try PeerResults.read(p + "/pynx-modes.h5")!.object
        XCTAssertEqual(first.shape, [6, 8, 10])
        XCTAssertEqual(first.floats, direct.floats)
    }

    func testPrepareReadsAP10ScanWithItsGeometry() throws {
        let bragg = try braggExecutable()
        guard let py = python(with: ["h5py"]) else { throw XCTSkip("python3 with numpy and h5py not found") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = NSTemporaryDirectory() + "braggkit-prepare-beamlines-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (s0, o0) = try runProcess(py, [root.appendingPathComponent("Tests/scripts/make_beamline_scans.py").path, dir])
        XCTAssertEqual(s0, 0, o0)
        guard s0 == 0 else { return }
        let (status, text) = try runProcess(bragg, ["prepare", dir + "/p10/align_00012", "--out", dir + "/p10.cxi",
                                                    "--registration-box", "8", "-q"])
        XCTAssertEqual(status, 0, text)
        let g = try CXIResults.read(from: dir + "/p10.cxi").geometry
        XCTAssertEqual(g.energy!, 8500, accuracy: 1e-6)
        XCTAssertEqual(g.detectorDistance!, 1.83, accuracy: 1e-12)
        XCTAssertEqual(g.pixelSize!, 75e-6, accuracy: 1e-15)
        XCTAssertEqual(g.rockingStep!, 0.05 * .pi / 180, accuracy: 1e-12)
        // An unknown layout named as NeXus: one sentence listing what the file holds, status 2.
        let (s2, t2) = try runProcess(bragg, ["prepare", dir + "/unknown.h5", "--beamline", "nexus", "--out", dir + "/u.cxi"])
        XCTAssertEqual(s2, 2, t2)
        XCTAssertEqual(t2.split(separator: "\n").count, 1, t2)
        XCTAssertTrue(t2.contains("/stuff/frames (4×32×48)"), t2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/u.cxi"))
    }
}
