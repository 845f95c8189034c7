import Foundation
import Numerics

/// An analysed series set against the analysis of its true objects (a simulated series).
///
/// Phase retrieval cannot tell an object from its twin conj ρ(−r): the whole reconstructed
/// series may be the twin of the truth. The analysis aligns every state to the reference
/// (object or twin, per state), so the series is consistent with itself; whether the
/// reference itself is the truth or its twin is decided here once, from its complex overlap
/// with the true reference object, never per state and never from the Δφ being checked.
/// The twin of a series has Δφᵢ(r) → −Δφᵢ(−r): every Δφ_mean changes sign, the normalised
/// Ω (sign fixed so the largest |Ω| is positive) and the edge widths stay.
public struct TruthComparison: Sendable {
    public struct State: Sendable {
        public var label: String
        /// Δφ_mean of the reconstruction and of the truth (rad); the truth's sign is changed
        /// when the series is the twin of the truth.
        public var recoveredDeltaPhi: Double
        public var trueDeltaPhi: Double
        public var recoveredOmega: Double
        public var trueOmega: Double
        /// Edge-profile FWHM (m) of the reconstruction and of the true object, when measured.
        public var recoveredEdge: Double?
        public var trueEdge: Double?
        /// Recovered minus true Δφ_mean (rad).
        public var deltaPhiError: Double { recoveredDeltaPhi - trueDeltaPhi }
    }
    /// The reconstructed reference is the twin of the true reference (so is the whole series).
    public var seriesIsTwin: Bool
    /// Complex overlaps of the aligned reconstructed reference with the true reference, as
    /// reconstructed and as its twin (after sub-voxel registration and ramp removal).
    public var referenceOverlaps: (object: Double, twin: Double)
    public var states: [TruthComparison.State]

    /// The largest |recovered − true Δφ_mean| over the states (rad).
    public var maxDeltaPhiError: Double { states.map { abs($0.deltaPhiError) }.max() ?? 0 }
    /// State indices ordered by Ω, recovered and true.
    public var recoveredOmegaOrder: [Int] { states.indices.sorted { states[$0].recoveredOmega < states[$1].recoveredOmega } }
    public var trueOmegaOrder: [Int] { states.indices.sorted { states[$0].trueOmega < states[$1].trueOmega } }
    public var omegaOrderMatches: Bool { recoveredOmegaOrder == trueOmegaOrder }

    /// One sentence for reports: how the twin ambiguity was removed.
    public var twinNote: String {
        String(format: "The reconstructed reference overlaps the true reference %.3f as reconstructed and %.3f as its twin: ",
               referenceOverlaps.object, referenceOverlaps.twin)
            + (seriesIsTwin ? "the whole series is the twin of the truth (a global ambiguity of phase retrieval), so the true Δφ are compared with their sign changed, once for the whole series."
                            : "the series is the truth itself, not its twin; the true Δφ are compared as they are.")
    }

    /// Compares `result` (the analysis of reconstructions) with `truth` (the analysis of the
    /// true objects, same states, options and geometry).
    public init(result: SeriesResult, truth: SeriesResult) throws {
        guard result.states.count == truth.states.count else {
            throw AnalysisError.badOption("the reconstructed series has \(result.states.count) states and the truth \(truth.states.count)")
        }
        let ref = result.options.reference
        let rec = result.states[ref].aligned, tru = truth.states[ref].aligned
        guard rec.shape == tru.shape else {
            throw AnalysisError.shapeMismatch(state: result.states[ref].label, shape: rec.shape, expected: tru.shape)
        }
        let direct = try Registration.shift(of: rec, onto: tru, method: .peakSearch(from: .integer))
        let twin = try Registration.shift(of: rec.twin(), onto: tru, method: .peakSearch(from: .integer))
        referenceOverlaps = (direct.correlation, twin.correlation)
        seriesIsTwin = twin.correlation > direct.correlation
        let sign = seriesIsTwin ? -1.0 : 1.0
        states = zip(result.states, truth.states).map { r, t in
            State(label: r.label, recoveredDeltaPhi: r.meanPhaseDifference, trueDeltaPhi: sign * t.meanPhaseDifference,
                  recoveredOmega: r.omegaNormalised, trueOmega: t.omegaNormalised,
                  recoveredEdge: r.edgeResolution, trueEdge: t.edgeResolution)
        }
    }
}

extension SeriesAnalysis {
    /// Ground truth under the analysis's own conventions: the analysis of the true objects of
    /// a simulated series (support from the amplitude, core-median global phase, ramp
    /// removed, majority common support, Ω sign rule, edge fit when `labFrame`). A plain
    /// definition (no global phase step, another support) differs from what `bragg analyze`
    /// reports even on perfect reconstructions; this is the one to compare against.
    public static func groundTruth(objects: [ComplexVolume], supports: [RealVolume]?, labels: [String],
                                   geometry: BraggGeometry, options: AnalysisOptions = AnalysisOptions()) throws -> SeriesResult {
        guard objects.count == labels.count, supports.map({ $0.count == objects.count }) ?? true else {
            throw AnalysisError.badOption("ground truth: \(objects.count) objects for \(labels.count) labels")
        }
        let inputs = objects.indices.map { StateInput(label: labels[$0], object: objects[$0], support: supports?[$0]) }
        return try run(states: inputs, geometry: geometry, options: options)
    }
}
