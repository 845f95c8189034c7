import Foundation
import Numerics

/// Draws progress on standard error: a bar with rate and ETA on a terminal, plain
/// lines (at most one every few seconds, plus the last) when the output is a file or pipe.
final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let quiet: Bool
    private let unit: String
    private var start = Date()
    private var lastDraw = Date.distantPast
    private var lastStage = ""
    private var stageStart = Date()
    /// `done` of the stage's first report: work resumed part-way (a checkpoint) does not
    /// count towards the rate.
    private var stageFirstDone = 0
    private var drewLine = false

    init(quiet: Bool = false, unit: String = "it") {
        self.quiet = quiet
        self.unit = unit
    }

    /// The handler to hand to library calls.
    var handler: ProgressHandler { { [self] report in self.update(report) } }

    func update(_ r: ProgressReport) {
        guard !quiet else { return }
        if let note = r.note { message("bragg: " + note); return }
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        if r.stage != lastStage { lastStage = r.stage; stageStart = now; stageFirstDone = max(0, r.done - 1) }
        let finished = r.total > 0 && r.done >= r.total
        let interval = isTerminal ? 0.1 : 5.0
        guard finished || now.timeIntervalSince(lastDraw) >= interval || r.done == 0 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(stageStart)
        let rate = elapsed > 0 ? Double(r.done - stageFirstDone) / elapsed : 0
        var parts: [String] = [r.stage]
        if r.total > 0 {
            let frac = min(1, Double(r.done) / Double(r.total))
            if isTerminal {
                let width = 24, filled = Int(frac * Double(width))
                parts.append("[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "]")
            }
            parts.append(String(format: "%3.0f%% %d/%d", frac * 100, r.done, r.total))
        } else {
            parts.append("\(r.done)")
        }
        for (k, v) in r.metrics { parts.append("\(k)=\(ProgressBar.format(v))") }
        if rate > 0 { parts.append(String(format: rate >= 10 ? "%.0f %@/s" : "%.2f %@/s", rate, unit)) }
        if r.total > 0 && rate > 0 && !finished {
            parts.append("ETA " + ProgressBar.clock(Double(r.total - r.done) / rate))
        } else if finished {
            parts.append("in " + ProgressBar.clock(elapsed))
        }
        let line = parts.joined(separator: " ")
        if isTerminal {
            let pad = String(repeating: " ", count: max(0, 100 - line.count))
            FileHandle.standardError.write(("\r" + line + pad + (finished ? "\n" : "")).data(using: .utf8)!)
            drewLine = !finished
        } else {
            FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
        }
    }

    /// Ends a bar left open (e.g. when a loop stopped early).
    func finish() {
        lock.lock(); defer { lock.unlock() }
        if drewLine && isTerminal { FileHandle.standardError.write("\n".data(using: .utf8)!) }
        drewLine = false
    }

    /// Prints a message line (between bars).
    func message(_ s: String) {
        guard !quiet else { return }
        finish()
        FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
    }

    static func format(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        return a >= 1e4 || a < 1e-3 ? String(format: "%.3e", v) : String(format: "%.4g", v)
    }

    static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
                         : String(format: "%d:%02d", t / 60, t % 60)
    }
}
