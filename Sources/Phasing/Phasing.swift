// Module Phasing: iterative phase retrieval (ER, HIO, RAAR with shrink-wrap), recipes,
// many seeded runs checked for stalls, ranked by a metric, aligned and merged by mode
// decomposition. See ../shared/DESIGN.md.
//
// Layout of the work: during a run every array stays in FFT (unshifted) order. The
// measured amplitudes and mask are ifftshifted once when the data are prepared; the
// object is fftshifted once when a run ends.
import Numerics
import Foundation

/// Errors of the phasing module: each one sentence naming the state and the problem.
public enum PhasingError: Error, CustomStringConvertible, Equatable {
    /// A recipe string that does not parse; the message says where and what would be valid.
    case invalidRecipe(String)
    /// Input data that cannot be phased (all zero, wrong shape, nothing measured).
    case invalidData(String)
    /// An option out of range (runs, keep, thresholds).
    case invalidOption(String)
    /// Shrink-wrap left (almost) nothing in the support.
    case supportCollapsed(run: Int, iteration: Int, voxels: Int)
    /// The support grew to cover most of the box: no real-space constraint is left.
    case supportFilled(run: Int, iteration: Int, fraction: Double)

    public var description: String {
        switch self {
        case .invalidRecipe(let s): return "invalid recipe: \(s)"
        case .invalidData(let s): return s
        case .invalidOption(let s): return s
        case .supportCollapsed(let r, let it, let n):
            return "run \(r + 1): the support collapsed to \(n) voxel(s) at iteration \(it); lower the shrink-wrap threshold (threshold=…) or give a larger initial support"
        case .supportFilled(let r, let it, let f):
            return String(format: "run %d: the support filled %.0f%% of the box at iteration %d, so it no longer constrains the object; raise the shrink-wrap or autocorrelation threshold, or give a box/sphere support", r + 1, f * 100, it)
        }
    }
}

/// A small seeded random generator (SplitMix64, Steele et al. 2014): the same seed gives
/// the same random starts and free-pixel sets on every machine.
public struct PhasingRNG: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// The seed of run `k` derived from a user seed: independent streams per run.
    public static func runSeed(_ seed: UInt64, run k: Int) -> UInt64 {
        var g = PhasingRNG(seed: seed ^ (0xD1B5_4A32_D192_ED03 &* UInt64(k + 1)))
        return g.next()
    }
}
