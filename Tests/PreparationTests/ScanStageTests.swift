import Foundation
import XCTest
import Numerics
@testable import Preparation

/// The three stages of a preparation (loading, registration, accumulation), each run alone.
final class ScanStageTests: XCTestCase {

    /// Loading finds the planted hot pixels; registration recovers each scan's known drift
    /// (the shift that brings it back onto the first scan) and leaves out a scan of noise.
    func testLoadingAndRegistrationRecoverKnownDrift() throws {
        let sim = SimulatedScans(scans: 3)
        let runtime = StageRuntime()
        let options = PreparationOptions()
        let loader = try ScanLoader(stackShape: sim.shape, options: options, runtime: runtime)
        let registration = ScanRegistration(stackShape: sim.shape, options: options, runtime: runtime)
        for k in 0..<3 {
            let loaded = try loader.load(sim.scans[k], index: k, into: FloatStorage(count: sim.expected.count))
            XCTAssertEqual(loaded.hot, k == 0 ? sim.hot.count : 0, "scan \(k)")   // found once, then known
            XCTAssertTrue(sim.hot.allSatisfy { loader.knownBad[$0.0 * sim.shape[2] + $0.1] != 0 })
            let report = try registration.register(loaded)
            XCTAssertTrue(report.included)
            for a in 0..<3 { XCTAssertEqual(report.shift[a], -sim.drifts[k][a], accuracy: 0.1, "scan \(k) axis \(a)") }
        }
        let noise = RealVolume(shape: sim.shape, repeating: 2).poissonSampled(seed: 3)
        let loaded = try loader.load(Scan(frames: try InMemoryFrameStack(noise, source: "noise")), index: 3,
                                     into: FloatStorage(count: noise.count))
        XCTAssertFalse(try registration.register(loaded).included)
    }

    /// Accumulation alone: a noise-free pattern moved by a known sub-voxel drift and added
    /// with the opposite shift comes back (Fourier shift theorem) where the mask says it is
    /// good, and the slabs that wrapped around are masked.
    func testAccumulationUndoesAKnownShift() throws {
        let sim = SimulatedScans(scans: 1)
        let shape = sim.shape
        let d = [0.6, -1.3, 2.2]
        let moved = try sim.expected.fourierShifted(by: d)
        let data = FloatStorage(count: moved.count)
        moved.withUnsafeFloats { p in for i in 0..<p.count { data.pointer[i] = p[i] } }
        var options = PreparationOptions()
        options.size = shape
        options.centring = .maximum
        let sum = ScanSum(stackShape: shape, options: options, runtime: StageRuntime())
        try sum.add(data, shift: d.map { -$0 }, badList: [])
        let report = ScanReport(index: 0, source: "moved", shift: d.map { -$0 }, correlation: 1, included: true,
                                note: nil, hotPixels: 0, deadPixels: 0, otherBadPixels: 0, totalCounts: 0)
        let p = try sum.summed(reports: [report], knownBad: [UInt8](repeating: 0, count: shape[1] * shape[2]),
                               buffer: FloatStorage(count: moved.count)).pattern(size: options.size)
        XCTAssertEqual(p.pattern.shape, shape)
        XCTAssertEqual(p.cropStart, [0, 0, 0])
        var diff = 0.0, norm = 0.0, good = 0
        p.pattern.withUnsafeFloats { a in p.mask.withUnsafeFloats { m in sim.expected.withUnsafeFloats { e in
            for i in 0..<a.count where m[i] == 0 {
                diff += Double(a[i] - e[i]) * Double(a[i] - e[i]); norm += Double(e[i]) * Double(e[i]); good += 1
            }
        } } }
        XCTAssertLessThan((diff / norm).squareRoot(), 1e-3)
        // Wrapped slabs: ⌈|shift|⌉ indices at one end of each axis.
        let wrapped = (0..<3).reduce(1) { $0 * (shape[$1] - Int(d[$1].magnitude.rounded(.up))) }
        XCTAssertEqual(good, wrapped)
    }
}
