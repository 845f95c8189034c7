import Analysis
import ArgumentParser
import Neural
import Numerics
import Phasing
import Preparation
import Simulation

// Options that take one of a closed set of words are parsed into the library's own enums:
// the argument parser refuses anything else before the command runs, with the allowed
// words in its message, and lists them in --help.

/// `bragg phase --method`.
enum PhaseMethod: String, CaseIterable, ExpressibleByArgument {
    case iterative, neural
}

extension FFTEffort: ExpressibleByArgument {}
extension PhasingRankMetric: ExpressibleByArgument {}
extension CommonSupportRule: ExpressibleByArgument {}
extension PeakCentring: ExpressibleByArgument {}
extension FourierLoss: ExpressibleByArgument {}
extension CrystalShape: ExpressibleByArgument {}
extension DislocationKind: ExpressibleByArgument {}
extension ShrinkWrapReference: ExpressibleByArgument {
    public static var allValueStrings: [String] { [ShrinkWrapReference.maximum, .rms].map(\.rawValue) }
    public static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
}
