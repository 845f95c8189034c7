import Foundation
import Numerics

/// Errors of the analysis: each names the state (or the input) and what is wrong, in
/// one sentence, so the `bragg` program can print it as is.
public enum AnalysisError: Error, CustomStringConvertible, Equatable {
    case geometry(String)
    case shapeMismatch(state: String, shape: [Int], expected: [Int])
    case emptyObject(state: String)
    case nonFinite(state: String, count: Int)
    case supportMismatch(state: String, shape: [Int], expected: [Int])
    case tooFewStates(Int)
    case emptySupport(String)
    case badOption(String)
    case experimentFile(String)

    public var description: String {
        switch self {
        case .geometry(let s): return "invalid geometry: \(s)"
        case .shapeMismatch(let st, let sh, let ex):
            return "state '\(st)': reconstruction has shape \(sh) but the reference has \(ex); all states must share one shape"
        case .emptyObject(let st): return "state '\(st)': the reconstruction is all zeros"
        case .nonFinite(let st, let n): return "state '\(st)': the reconstruction holds \(n) NaN or infinite values"
        case .supportMismatch(let st, let sh, let ex):
            return "state '\(st)': support has shape \(sh) but the object has \(ex)"
        case .tooFewStates(let n): return "a series needs at least one state, got \(n)"
        case .emptySupport(let s): return "empty support: \(s)"
        case .badOption(let s): return "invalid analysis option: \(s)"
        case .experimentFile(let s): return "experiment file: \(s)"
        }
    }
}

extension BraggGeometry {
    /// Checks the geometry, throwing the Analysis module's error (`AnalysisError.geometry`).
    func validateForAnalysis() throws {
        if let p = problem { throw AnalysisError.geometry(p) }
    }
}
