import XCTest
import Numerics
@testable import Simulation

/// The seed-like acquisition of `RockingScans`: a monitor that records the beam frame by
/// frame, a slow walk of the crystal, and streams that share one detector.
final class RockingScanAcquisitionTests: XCTestCase {
    func testMonitorRecordsTheBeamAndStreamsShareTheDetector() throws {
        let shape = [24, 24, 24]
        let amp = RealVolume(shape: shape) { i in
            let z = i / 576 - 12, y = i / 24 % 24 - 12, x = i % 24 - 12
            return abs(z) < 4 && abs(y) < 5 && abs(x) < 3 ? 1 : 0
        }
        let obj = amp.complex()
        var o = RockingScanOptions.seedStudy(size: 24, photons: 4e6, seed: 3)
        o.scans = 6; o.drift = 0; o.walk = 0; o.frameFluctuation = 0.2
        let scans = try RockingScans.make(object: obj, geometry: .seedStudy, options: o)
        // Without drift every scan has the same expected frames, times the beam of each frame:
        // the counts of a frame over its expected counts follow the monitor within Poisson noise.
        let expected = try Diffraction.intensity(of: obj, box: shape)
        let peak = Double(expected.maximum())
        let good = scans[0].mask.map { 1 - $0 }
        var checked = 0
        for s in scans {
            XCTAssertEqual(s.monitor.count, 24)
            for f in 0..<24 {
                var measured = 0.0, mean = 0.0
                for k in (f * 576)..<((f + 1) * 576) where good[flat: k] != 0 {
                    measured += Double(s.frames[flat: k]); mean += Double(expected[flat: k]) * o.photons / Double(o.scans) / peak
                }
                guard mean > 400 else { continue }
                let beam = s.monitor[f] / o.monitorCounts
                XCTAssertEqual(measured / mean, beam, accuracy: 4 * beam / mean.squareRoot(), "frame \(f)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
        // The frame-to-frame fluctuation is there (20% RMS around the scan's factor).
        let ratios = scans[0].monitor.map { $0 / o.monitorCounts / scans[0].intensityFactor }
        let rms = (ratios.map { ($0 - 1) * ($0 - 1) }.reduce(0, +) / Double(ratios.count)).squareRoot()
        XCTAssertEqual(rms, 0.2, accuracy: 0.08)

        // A slow walk: later scans stray further from the first than the jitter alone would.
        var w = RockingScanOptions.seedStudy(size: 24, photons: 1e5, seed: 3)
        w.scans = 22; w.drift = 0; w.walk = 0.3
        let walked = try RockingScans.make(object: obj, geometry: .seedStudy, options: w)
        let steps = (1..<22).flatMap { k in (0..<3).map { walked[k].drift[$0] - walked[k - 1].drift[$0] } }
        let stepRMS = (steps.map { $0 * $0 }.reduce(0, +) / Double(steps.count)).squareRoot()
        XCTAssertEqual(stepRMS, 0.3, accuracy: 0.1)
        // Another stream: other drifts and noise, the same detector (gaps and hot pixels).
        w.stream = 4
        let other = try RockingScans.make(object: obj, geometry: .seedStudy, options: w)
        XCTAssertNotEqual(other[5].drift, walked[5].drift)
        XCTAssertEqual(other[0].mask, walked[0].mask)
        XCTAssertGreaterThan(walked[0].mask.sum(), 0)
    }
}
