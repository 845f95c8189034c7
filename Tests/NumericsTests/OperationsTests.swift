import XCTest
@testable import Numerics

/// The operations defined once in Numerics (twin, phase ramp, registration methods, χ²,
/// the plan cache), each against a direct computation.
final class OperationsTests: XCTestCase {
    func testTwinIsConjugatePointReflectionAboutTheCentreVoxel() throws {
        for n in [4, 5] {
            let v = ComplexVolume(shape: [n, 3, 2]) { Complex32(Float($0), Float(2 * $0 + 1)) }
            let t = v.twin()
            for i in 0..<n { for j in 0..<3 { for k in 0..<2 {
                // i ↦ (2⌊n/2⌋ − i) mod n on every axis, conjugated.
                let s = v[(2 * (n / 2) - i + n) % n, (2 * 1 - j + 3) % 3, (2 * 1 - k + 2) % 2]
                XCTAssertEqual(t[i, j, k], s.conjugate)
            } } }
            XCTAssertEqual(t.twin(), v)
        }
        // About another point: index sum 3 on a 4-voxel axis reflects about 1.5.
        let r = RealVolume(shape: [4, 1, 1]) { Float($0) }
        XCTAssertEqual(r.twin(indexSum: [3, 0, 0]).elements, [3, 2, 1, 0])
        XCTAssertEqual(r.twin().elements, [0, 3, 2, 1])
    }

    func testPhaseRampUnitsAndRemoval() throws {
        // Whole cycles over each edge, so the box-wide (circular) measure sees no wrap.
        let g = PhaseRamp(cyclesPerVoxel: [0.25, -1.0 / 6, 0.1])
        XCTAssertEqual(g.radiansPerVoxel[0], Double.pi / 2, accuracy: 1e-15)
        XCTAssertEqual(g.cyclesPerVoxel[1], -1.0 / 6, accuracy: 1e-15)
        let shape = [8, 6, 10]
        // A unit-modulus object carrying exactly the ramp g about the box centre.
        let v = ComplexVolume(shape: shape) { f in
            let i = f / 60, j = (f / 10) % 6, k = f % 10
            let phi = g.radiansPerVoxel[0] * Double(i - 4) + g.radiansPerVoxel[1] * Double(j - 3) + g.radiansPerVoxel[2] * Double(k - 5)
            return Complex32(Float(cos(phi)), Float(sin(phi)))
        }
        let measured = v.braggPeakRamp()
        for a in 0..<3 { XCTAssertEqual(measured.radiansPerVoxel[a], g.radiansPerVoxel[a], accuracy: 1e-5) }
        let inside = v.phaseRamp(inside: [UInt8](repeating: 1, count: v.count))
        for a in 0..<3 { XCTAssertEqual(inside.radiansPerVoxel[a], g.radiansPerVoxel[a], accuracy: 1e-5) }
        let flat = v.removingPhaseRamp(g)
        for f in [0, 137, 479] { XCTAssertEqual(Double(flat[flat: f].phase), 0, accuracy: 1e-5) }
        // Removing −g then g is the identity; removing (g − g) changes nothing.
        let back = v.removingPhaseRamp(-g).removingPhaseRamp(g)
        for f in [0, 200, 479] { XCTAssertEqual(back[flat: f].re, v[flat: f].re, accuracy: 1e-5) }
        XCTAssertEqual(v.removingPhaseRamp(g - g), v)
    }

    func testSubvoxelMethodsRecoverAKnownShift() throws {
        let n = 24
        let blob = RealVolume(shape: [n, n, n]) { f in
            let z = Double(f / (n * n) - 12), y = Double((f / n) % n - 12), x = Double(f % n - 12)
            return Float(exp(-(z * z + 2 * y * y + x * x) / 8))
        }
        let truth = [1.3, -0.6, 2.25]
        let moved = try blob.fourierShifted(by: truth.map { -$0 })   // moved.fourierShifted(by: truth) ≈ blob
        let integer = try Registration.shift(of: moved, onto: blob, method: .integer)
        XCTAssertEqual(integer.shift, truth.map { $0.rounded() })
        for (method, tolerance) in [(SubvoxelMethod.parabolic, 0.15), (.peakSearch(from: .integer), 0.02),
                                    (.peakSearch(from: .parabolic), 0.02), (.upsampledDFT(factor: 20), 0.05),
                                    (.twoStepUpsampledDFT(factor: 20), 0.05)] {
            let r = try Registration.shift(of: moved, onto: blob, method: method)
            for a in 0..<3 { XCTAssertEqual(r.shift[a], truth[a], accuracy: tolerance, "\(method) axis \(a)") }
            XCTAssertGreaterThan(r.correlation, 0.95, "\(method)")
        }
        XCTAssertThrowsError(try Registration.shift(of: moved.complex(), onto: blob.complex(), method: .upsampledDFT(factor: 4)))
        XCTAssertThrowsError(try Registration.shift(of: moved.complex(), onto: blob.complex(), method: .twoStepUpsampledDFT(factor: 4)))
        // The two-step search is the preparation's box registration itself, and lands on a
        // point of the single search's 1/20-voxel grid: the same shift for this one-peak blob.
        let single = try Registration.shift(of: moved, onto: blob, method: .upsampledDFT(factor: 20))
        let twoStep = try Registration.shift(of: moved, onto: blob, method: .twoStepUpsampledDFT(factor: 20))
        let box = try BoxRegistration.upsampledShift(of: moved, onto: blob, upsampling: 20)
        XCTAssertEqual(twoStep.shift, box.shift)
        XCTAssertEqual(twoStep.correlation, box.correlation)
        for a in 0..<3 { XCTAssertEqual(twoStep.shift[a], single.shift[a], accuracy: 0.01, "axis \(a)") }
    }

    func testChiSquareMatchesTheDirectSumOfEq1() {
        var rng = SystemRandomNumberGenerator()
        let d = (0..<500).map { _ in Double.random(in: 0...50, using: &rng) }
        let r = (0..<500).map { _ in Double.random(in: 0.1...7, using: &rng) }
        let k = d.reduce(0, +) / r.reduce(0, +)
        var num = 0.0
        for i in 0..<d.count { let e = d[i].squareRoot() - (k * r[i]).squareRoot(); num += e * e }
        let direct = num / (k * r.reduce(0, +))
        let cross = zip(d, r).map { $0.squareRoot() * $1.squareRoot() }.reduce(0, +)
        XCTAssertEqual(ChiSquare.eq1(dataModelAmplitudes: cross, model: r.reduce(0, +), data: d.reduce(0, +)), direct, accuracy: 1e-12)
        XCTAssertEqual(ChiSquare.eq1(dataModelAmplitudes: 10, model: 4, data: 25), 0)   // R ∝ D: perfect fit
        XCTAssertTrue(ChiSquare.eq1(dataModelAmplitudes: 0, model: 0, data: 1).isNaN)
    }

    func testOnePlanCacheHoldsEveryKind() throws {
        FFTPlanner.clearCache()
        let a = try FFTPlanner.plan(shape: [6, 4], direction: .forward, effort: .estimate)
        let b = try RealFFTPlan.plan(shape: [6, 4], direction: .forward, effort: .estimate)
        let c = try FFTPlanner.batchPlan(shape: [4], howmany: 6, stride: 1, distance: 4, direction: .forward, effort: .estimate)
        XCTAssertTrue(a === (try FFTPlanner.plan(shape: [6, 4], direction: .forward, effort: .estimate)))
        XCTAssertTrue(b === (try RealFFTPlan.plan(shape: [6, 4], direction: .forward, effort: .estimate)))
        XCTAssertTrue(c === (try FFTPlanner.batchPlan(shape: [4], howmany: 6, stride: 1, distance: 4, direction: .forward, effort: .estimate)))
        XCTAssertEqual(FFTPlanner.cache.count, 3)
        FFTPlanner.clearCache()
        XCTAssertEqual(FFTPlanner.cache.count, 0)
    }
}
