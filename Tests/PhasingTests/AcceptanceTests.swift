import XCTest
import Numerics
@testable import Phasing

/// The issue's acceptance: simulated 64³ hexagonal prisms (0.8 rad RMS correlated phase,
/// 10⁶ peak photons, Poisson noise) phased with the default recipe, 4 runs, 2 kept,
/// recovered to a normalised complex error ≤ 0.10 after the test removes twin, shift and
/// global phase — on several seeds, and with 3% of the pixels masked in two planes, through
/// the Bragg peak (on several seeds) and beside it.
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
            // The kept runs agree: their first mode carries nearly all their intensity. What
            // is written fits within the merge tolerance of the best run (with the default's
            // RAAR:500 the first mode is written on seeds 1–3, weights ≥ 0.9997; with RAAR:300
            // seed 1's first mode had 1.7× the best run's χ² and the best run was written).
            print(String(format: "seed %d: mode weights %@, first mode χ² %.5f, written: %@", seed,
                         r.modeWeights.map { String(format: "%.4f", $0) }.joined(separator: " "), r.mergedChi2 ?? .nan,
                         r.merged ? "first mode" : "best run"))
            XCTAssertGreaterThanOrEqual(r.modeWeight, 0.95, "seed \(seed)")
            let best = r.runs[r.kept[0]].metrics!.chi2
            XCTAssertLessThanOrEqual(r.metrics.chi2, 1.1 * best, "seed \(seed)")
            XCTAssertEqual(r.merged, r.mergedChi2! <= 1.1 * best, "seed \(seed)")
            if !r.merged { XCTAssertTrue(r.notes.last?.contains("the best run (run \(r.kept[0] + 1)) is written instead") ?? false, "\(r.notes)") }
        }
    }

    /// A detector gap of two planes across the whole pattern (2/64 ≈ 3.1% of the pixels).
    func gap(_ planes: [Int]) -> RealVolume {
        var mask = RealVolume(shape: [64, 64, 64])
        mask.withUnsafeMutableFloats { p in
            for z in 0..<64 { for y in planes { for x in 0..<64 { p[(z * 64 + y) * 64 + x] = 1 } } }
        }
        return mask
    }

    /// The gap straight through the Bragg peak (ky = −1 and 0, centred rows 31 and 32): the
    /// masked planes hold ~36–40% of the diffracted intensity, including the peak itself.
    func testGapThroughTheBraggPeakStillRecovers() throws {
        let mask = gap([31, 32])
        XCTAssertEqual(Double(mask.nonzeroCount()) / Double(mask.count), 0.03125)
        for seed: UInt64 in [4, 5, 6, 7] {
            let sim = try SimulatedCrystal(seed: seed)
            let (err, r) = try reconstruct(sim, mask: mask)
            print(String(format: "gap through the peak, seed %d: error %.4f, spread %.4f, kept %@", seed, err, r.spread,
                         r.kept.description))
            XCTAssertLessThanOrEqual(err, 0.10, "seed \(seed)")
        }
    }

    /// The same gap 4 pixels from the peak (centred rows 36 and 37).
    func testGapBesideTheBraggPeakStillRecovers() throws {
        let sim = try SimulatedCrystal(seed: 4)
        let (err, r) = try reconstruct(sim, mask: gap([36, 37]))
        print(String(format: "gap 4 px from the peak: error %.4f, spread %.4f", err, r.spread))
        XCTAssertLessThanOrEqual(err, 0.10)
    }

    /// The masked intensities are filled (to start a run) so that the autocorrelation is most
    /// compact: across a gap through the peak this recovers the peak to within 2% (a
    /// normalised Gaussian interpolation recovers ~13% of it) and the gap to ~1% (L1).
    func testGapThroughThePeakIsFilledFromTheAutocorrelation() throws {
        let sim = try SimulatedCrystal(seed: 5)
        let masked = try PhasingData(intensity: sim.intensity, mask: gap([31, 32]))
        let full = try PhasingData(intensity: sim.intensity)
        let a = masked.amplitude.pointer, fill = masked.startAmplitude.pointer, truth = full.amplitude.pointer
        var l1 = 0.0, total = 0.0, peak = (truth: 0.0, fill: 0.0)
        for i in 0..<masked.count where a[i] < 0 {
            let t = Double(truth[i] * truth[i]), f = Double(fill[i] * fill[i])
            l1 += abs(f - t); total += t
            if t > peak.truth { peak = (t, f) }
        }
        print(String(format: "gap fill: L1 error %.4f of the gap's intensity; peak %.0f filled as %.0f", l1 / total, peak.truth, peak.fill))
        XCTAssertLessThan(l1 / total, 0.05)
        XCTAssertEqual(peak.fill / peak.truth, 1, accuracy: 0.02)
    }
}
