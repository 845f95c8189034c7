import XCTest
@testable import BraggKit

/// The states of `bragg analyze` given as reconstructions, the reference by label or index,
/// the files checked; and the small library pieces the bench and simulate commands call.
final class SeriesInputsTests: XCTestCase {
    func testStatesLabelsAndReference() throws {
        let named = try SeriesInputs.states(files: ["r/a.cxi", "r/b.npy:/x"], labels: nil)
        XCTAssertEqual(named.map(\.label), ["a.cxi", "b.npy"])
        XCTAssertEqual(named.map(\.file), ["r/a.cxi", "r/b.npy:/x"])
        XCTAssertEqual(SeriesInputs.labels(" 2.5 V, 3.0 V ,"), ["2.5 V", "3.0 V", ""])
        let labelled = try SeriesInputs.states(files: ["a.cxi", "b.cxi"], labels: ["pristine", "charged"])
        XCTAssertEqual(labelled.map(\.label), ["pristine", "charged"])
        XCTAssertThrowsError(try SeriesInputs.states(files: ["a.cxi", "b.cxi"], labels: ["one"])) { e in
            XCTAssertEqual(e as? PipelineError, .labelCount(labels: 1, reconstructions: 2))
        }
        XCTAssertEqual(try SeriesInputs.reference("charged", in: labelled), 1)
        XCTAssertEqual(try SeriesInputs.reference("0", in: labelled), 0)
        XCTAssertThrowsError(try SeriesInputs.reference("discharged", in: labelled)) { e in
            XCTAssertEqual(e as? PipelineError, .unknownReference("discharged"))
        }
        XCTAssertThrowsError(try SeriesInputs.checkFiles(labelled)) { e in
            XCTAssertEqual("\(e)", "state 'pristine': file 'a.cxi' does not exist")
        }
        for e: PipelineError in [.labelCount(labels: 1, reconstructions: 2), .unknownReference("x"), .notPrepared(path: "p.cxi")] {
            XCTAssertFalse("\(e)".contains("--"), "the library names a flag: \(e)")
        }
    }

    /// Medians against a direct computation; NeuralEvaluation's leaves out the NaNs of columns not run.
    func testMedians() {
        XCTAssertEqual(Benchmarks.median([3, 1, 2]), 2)
        XCTAssertEqual(Benchmarks.median([4, 1, 3, 2]), 2.5)
        XCTAssertTrue(Benchmarks.median([]).isNaN)
        XCTAssertEqual(NeuralEvaluation.median([.nan, 5, 1, .nan, 3]), 3)
        XCTAssertTrue(NeuralEvaluation.median([.nan]).isNaN)
    }

    /// A simulated crystal's file records the options it was made with.
    func testSimulatedCrystalParameters() throws {
        var o = CrystalOptions()
        o.size = 32; o.seed = 7; o.photons = 1e5; o.tilt = 0
        o.blur = .pseudoVoigt(fwhm: 1.5, eta: 0.3)
        o.defects = DetectorDefects(moduleSize: 16, gapWidth: 2, hotPixels: 3)
        let r = try CrystalSimulation.make(o)
        let p = SimulatedFiles.crystal(r, options: o, command: "bragg simulate crystal").parameters
        XCTAssertEqual(p["box_size"], .int(32)); XCTAssertEqual(p["seed"], .int(7)); XCTAssertEqual(p["peak_photons"], .double(1e5))
        XCTAssertEqual(p["blur_pvoigt_fwhm_px"], .double(1.5)); XCTAssertEqual(p["blur_pvoigt_eta"], .double(0.3))
        XCTAssertEqual(p["blur_sigma_px"], .double(0)); XCTAssertEqual(p["module_size_px"], .int(16)); XCTAssertEqual(p["hot_pixels"], .int(3))
        XCTAssertEqual(p["tilt_deg"], .double(0)); XCTAssertEqual(p["command"], .string("bragg simulate crystal"))
        XCTAssertEqual(SimulatedFiles.stateName(index: 3, label: "3.0 V (dis)"), "state_03_3.0_V__dis_")
    }
}
