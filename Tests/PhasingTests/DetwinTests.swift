import XCTest
import Foundation
import Numerics
@testable import Phasing

/// Detwinning (`detwin=z|y|x`): a step on half the support, the whole support back after it.
final class DetwinTests: XCTestCase {
    func floats(_ v: RealVolume) -> [Float] { v.withUnsafeFloats { Array($0) } }

    func testDetwinSyntax() throws {
        let r = try Recipe.parse("HIO:20 detwin=z, HIO:30 beta=0.8 detwin=X sw=0, RAAR:10 detwin=y, ER:5")
        XCTAssertEqual(r.steps.map(\.detwinAxis), [0, 2, 1, nil])
        XCTAssertEqual(r.steps[0].shrinkWrapEvery, 0, "a detwin step holds its half support")
        XCTAssertEqual(r.steps[2].shrinkWrapEvery, 0)
        XCTAssertEqual(r.steps[3].shrinkWrapEvery, 20)
        XCTAssertEqual(try Recipe.parse(r.description), r)
        func message(_ s: String) -> String {
            do { _ = try Recipe.parse(s); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("HIO:20 detwin=w").contains("detwin=z, detwin=y or detwin=x"), message("HIO:20 detwin=w"))
        XCTAssertTrue(message("HIO:20 detwin=z sw=10").contains("holds its half support"), message("HIO:20 detwin=z sw=10"))
        XCTAssertTrue(message("ER:10, ML:10 detwin=z").contains("not to the ML"), message("ER:10, ML:10 detwin=z"))
        XCTAssertTrue(message("HIO:20 detwin=z threshold=0.3").contains("not used"))
    }

    /// The half kept is the one at or beyond the support's centre along the axis, computed
    /// directly in the centred frame; a support that wraps round the box edge is halved about
    /// its own centre; the whole support comes back exactly.
    func testHalvingKeepsTheSideBeyondTheSupportsCentre() throws {
        let shape = [32, 24, 16]
        let data = try PhasingData(intensity: RealVolume(shape: shape) { _ in 1 })
        // (centred-frame ranges per axis; the midpoint of each, modulo n)
        let boxes: [([[Int]], [Int])] = [
            ([Array(3...13), Array(10...20), Array(5...9)], [8, 15, 7]),
            ([[30, 31, 0, 1, 2], Array(4...8), [14, 15, 0, 1, 2]], [0, 6, 0]),   // wraps in z and x
        ]
        for (ranges, mid) in boxes {
            let sets = ranges.map(Set.init)
            func inside(_ z: Int, _ y: Int, _ x: Int) -> Bool { sets[0].contains(z) && sets[1].contains(y) && sets[2].contains(x) }
            let support = RealVolume(shape: shape) { f in
                inside(f / (24 * 16), (f / 16) % 24, f % 16) ? 1 : 0
            }
            let engine = try PhasingEngine(data: data, support: support, threads: 2)
            let before = engine.supportVolume
            for axis in 0..<3 {
                let whole = engine.halveSupport(axis: axis)
                let half = engine.supportVolume
                var expected = 0, got = 0, wrong = 0
                half.withUnsafeFloats { h in
                    for f in 0..<h.count {
                        let c = [f / (24 * 16), (f / 16) % 24, f % 16]
                        let n = shape[axis]
                        let keep = inside(c[0], c[1], c[2]) && (c[axis] - mid[axis] + n) % n < n / 2
                        expected += keep ? 1 : 0; got += h[f] > 0 ? 1 : 0
                        if (h[f] > 0) != keep { wrong += 1 }
                    }
                }
                XCTAssertEqual(wrong, 0, "axis \(axis): \(got) voxels kept, \(expected) expected")
                XCTAssertGreaterThan(expected, 0)
                XCTAssertLessThan(expected, support.nonzeroCount())
                engine.restoreSupport(whole)
                XCTAssertEqual(floats(engine.supportVolume), floats(before), "axis \(axis): the whole support is back")
            }
        }
    }

    /// A recipe step with `detwin` runs on the half support and leaves the whole one behind.
    func testDetwinStepLeavesTheWholeSupport() throws {
        let shape = [24, 24, 24]
        let support = RealVolume(shape: shape) { f in
            let z = f / 576 - 12, y = (f / 24) % 24 - 12, x = f % 24 - 12
            return z * z + y * y + x * x <= 25 ? 1 : 0
        }
        var rng = PhasingRNG(seed: 3)
        let intensity = RealVolume(shape: shape) { _ in Float(1 + 100 * rng.uniform()) }
        let engine = try PhasingEngine(data: try PhasingData(intensity: intensity), support: support, threads: 2)
        var start = PhasingRNG(seed: 5)
        engine.randomStart(rng: &start)
        let before = engine.supportVolume
        var outside = 0.0
        try engine.run(recipe: try Recipe.parse("ER:3 detwin=y"), shrinkWrap: ShrinkWrapSchedule())
        // After ER on the half support, P_S ρ is zero on the other half.
        let o = engine.object
        o.withUnsafeFloats { p in
            before.withUnsafeFloats { s in
                for f in 0..<s.count where s[f] > 0 && (f / 24) % 24 < 12 {
                    outside = max(outside, Double(p[2 * f] * p[2 * f] + p[2 * f + 1] * p[2 * f + 1]))
                }
            }
        }
        XCTAssertEqual(outside, 0, "ER kept nothing on the cut half")
        XCTAssertEqual(floats(engine.supportVolume), floats(before))
    }
}
