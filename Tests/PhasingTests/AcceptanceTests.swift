import XCTest
import Numerics
@testable import Phasing

/// The issue's acceptance: simulated 64³ hexagonal prisms (0.8 rad RMS correlated phase,
/// 10⁶ peak photons, Poisson noise) phased with the default recipe, 4 runs, 2 kept,
/// recovered to a normalised complex error ≤ 0.10 after the test removes twin, shift and
/// global phase — on several seeds, and with 3% of the pixels masked in a plane.
final class AcceptanceTests: XCTestCase {
    func reconstruct(_ sim: SimulatedCrystal, mask: RealVolume? = nil) throws -> (Double, PhasingResult) {
        let data = try PhasingData(intensity: sim.intensity, mask: mask)
        var o = PhasingOptions()
        o.runs = 4; o.keep = 2; o.seed = sim.seed
        let r = try Phaser.phase(data, options: o)
        return (try sim.error(of: r.object), r)
    }

    func testDefaultRecipeRecoversSimulatedCrystals() throws {
        for seed: UInt64 in [1, 2, 3] {
            let sim = try SimulatedCrystal(seed: seed)
            let (err, r) = try reconstruct(sim)
            let chi = r.runs.compactMap { $0.metrics?.chi2 }.map { String(format: "%.4f", $0) }
            print(String(format: "seed %d: error %.4f, spread %.4f, χ² %@, kept %@", seed, err, r.spread,
                         chi.joined(separator: " "), r.kept.description))
            XCTAssertLessThanOrEqual(err, 0.10, "seed \(seed)")
            XCTAssertLessThan(r.metrics.chi2, 0.05)
        }
    }

    func testMaskedPlaneStillRecovers() throws {
        let sim = try SimulatedCrystal(seed: 4)
        // A detector gap: two planes across the whole pattern (2/64 ≈ 3.1% of the pixels),
        // 4 pixels from the Bragg peak. (A gap straight through the peak, ky = 0 and −1,
        // leaves the slowest modes along y free and is not recovered to 0.10: see bench/README.)
        var mask = RealVolume(shape: [64, 64, 64])
        mask.withUnsafeMutableFloats { p in
            for z in 0..<64 { for y in 36...37 { for x in 0..<64 { p[(z * 64 + y) * 64 + x] = 1 } } }
        }
        XCTAssertEqual(Double(mask.nonzeroCount()) / Double(mask.count), 0.03125)
        let (err, r) = try reconstruct(sim, mask: mask)
        print(String(format: "masked plane: error %.4f, spread %.4f", err, r.spread))
        XCTAssertLessThanOrEqual(err, 0.10)
    }
}
