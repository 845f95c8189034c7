import Foundation
import XCTest
@testable import Analysis
@testable import Numerics

/// The experiment file's [geometry] given as a diffractometer and its motor readings.
final class DiffractometerExperimentTests: XCTestCase {
    static let file = """
        [geometry]
        diffractometer = "34-ID-C"
        energy_kev = 9
        distance_m = 0.5
        pixel_size_um = 55
        rocking_circle = "th"
        rocking_step_deg = 0.005
        peak_pixel = [130, 140]
        direct_beam_pixel = [256, 250]

        [geometry.angles]
        Delta = 32.174
        Gamma = 12.6346
        Theta = 0.2200042
        Chi = 90
        Phi = -5

        [[state]]
        label = "a"
        file = "a.cxi"
        """

    func testDiffractometerGeometryFromTheExperimentFile() throws {
        let e = try Experiment.parse(Self.file)
        let expected = try Diffractometer.aps34IDC.braggGeometry(
            energy: 9000, angles: ["Delta": 32.174, "Gamma": 12.6346, "Theta": 0.2200042, "Chi": 90, "Phi": -5],
            rockingCircle: "Theta", rockingStep: 0.005, distance: 0.5, pixelSize: (55e-6, 55e-6),
            peakPixel: (130, 140), directBeam: (256, 250))
        let g = try XCTUnwrap(e.geometry)
        XCTAssertTrue(g.hasExplicitVectors)
        // (55 × 1e-6 m and 55e-6 m may differ in the last bit.)
        for (a, b) in zip(g.reciprocalSteps + [g.q, g.axis], expected.reciprocalSteps + [expected.q, expected.axis]) {
            XCTAssertLessThan(norm(a - b), 1e-12 * norm(b), "\(a) vs \(b)")
        }
        // The peak 126 rows and 110 columns away from the direct beam: 2θ is not the arm's 34.316°.
        XCTAssertGreaterThan(abs(g.twoTheta * 180 / .pi - 34.316), 0.2)
    }

    func testBadDiffractometerEntriesAreNamed() {
        func message(_ text: String) -> String {
            do { _ = try Experiment.parse(text); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(Self.file.replacingOccurrences(of: "Gamma = ", with: "Gama = ")).contains("'Gama' is not a circle"))
        XCTAssertTrue(message(Self.file.replacingOccurrences(of: "\"34-ID-C\"", with: "\"X99\"")).contains("unknown diffractometer"))
        XCTAssertTrue(message(Self.file.replacingOccurrences(of: "rocking_circle = \"th\"", with: "rocking_circle = \"Delta\""))
            .contains("not a sample circle"))
        XCTAssertTrue(message(Self.file.replacingOccurrences(of: "diffractometer = \"34-ID-C\"", with: "two_theta_deg = 30"))
            .contains("[geometry.angles] needs 'diffractometer'"))
    }
}
