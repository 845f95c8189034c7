import Foundation

/// A report of progress from long-running library work. Library modules never print:
/// they call a `ProgressHandler`, and the `bragg` program draws the bar.
public struct ProgressReport: Sendable {
    /// What is being done ("HIO", "scan 3/22", "epoch 2").
    public var stage: String
    /// Units done and in all (iterations, frames, samples). `total` 0 when unknown.
    public var done: Int
    public var total: Int
    /// Named figures to show beside the bar (e.g. ["chi2": 0.012]).
    public var metrics: [(String, Double)]
    /// A sentence for the user about a decision the work took (a run stopped early, a result
    /// replaced): the program prints it on its own line; nil for a plain progress report.
    public var note: String?

    public init(stage: String, done: Int, total: Int, metrics: [(String, Double)] = [], note: String? = nil) {
        self.stage = stage; self.done = done; self.total = total; self.metrics = metrics; self.note = note
    }
}

public typealias ProgressHandler = @Sendable (ProgressReport) -> Void

/// Thrown by long loops when the user interrupted the run (Ctrl-C). Outputs are
/// written to a temporary name and renamed, so an interruption leaves no half file.
public struct InterruptedError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "interrupted" }
}

/// A process-wide interruption flag, set by the program's SIGINT handler and polled by
/// long loops through `Interruption.check()`.
public enum Interruption {
    nonisolated(unsafe) private static var flag: Int32 = 0

    /// Marks the process as interrupted (async-signal-safe: a plain store).
    public static func request() { flag = 1 }
    public static func reset() { flag = 0 }
    public static var requested: Bool { flag != 0 }

    /// Throws `InterruptedError` when an interruption was requested.
    @inlinable public static func check() throws {
        if requested { throw InterruptedError() }
    }
}
