import Foundation
import Numerics

/// Many patterns phased in one job (#24): every state of an operando series or a beamtime's
/// scans, spread over the ranks of an MPI world, item i on rank i mod size (static
/// round-robin: no rank waits on a dispatcher, and the same list gives the same files however
/// many ranks ran it). Each item's outcome is posted to rank 0 as it finishes; rank 0 shows
/// them as they arrive (between its own items) and writes one summary table at the end.
public enum Batch {
    /// What became of one item.
    public struct Outcome: Sendable, Equatable {
        public var item: Int
        public var file: String
        public var ok: Bool
        /// χ² and log-likelihood of the written object, runs that finished, runs asked, runs kept.
        public var chi2 = Double.nan
        public var llk = Double.nan
        public var runsFinished = 0
        public var runs = 0
        public var kept = 0
        public var output = ""
        /// Why it failed (one sentence), or notes; empty when none.
        public var message = ""
        public var seconds = 0.0
        public var rank = 0

        public init(item: Int, file: String, ok: Bool) { self.item = item; self.file = file; self.ok = ok }

        func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.int(item); w.string(file); w.bool(ok); w.double(chi2); w.double(llk)
            w.int(runsFinished); w.int(runs); w.int(kept); w.string(output); w.string(message)
            w.double(seconds); w.int(rank)
            return w.bytes
        }

        static func decoded(_ bytes: [UInt8]) throws -> Outcome {
            var r = ByteReader(bytes)
            var o = Outcome(item: try r.int(), file: try r.string(), ok: try r.bool())
            o.chi2 = try r.double(); o.llk = try r.double()
            o.runsFinished = try r.int(); o.runs = try r.int(); o.kept = try r.int()
            o.output = try r.string(); o.message = try r.string()
            o.seconds = try r.double(); o.rank = try r.int()
            return o
        }
    }

    /// The items rank `rank` of `size` runs.
    public static func share(of count: Int, rank: Int, size: Int) -> [Int] {
        Array(stride(from: rank, to: count, by: max(1, size)))
    }

    /// Runs `body` on this rank's share of `files`, posting each outcome to rank 0. On rank 0
    /// `arrived` sees every outcome (its own and the others', as they come) and the result is
    /// all outcomes in list order; the other ranks get nil. `body` reports a failure in its
    /// outcome (it must not throw for a bad item: the others go on).
    public static func run(_ files: [String], world: Communicator, body: (Int, String) -> Outcome,
                           arrived: (Outcome) -> Void) throws -> [Outcome]? {
        var outcomes = [Int: Outcome]()
        // Rank 0 takes what has arrived; at the end it waits for the rest by polling (MPI's
        // blocking probe spins a core the other ranks need).
        func collect(wait: Bool) throws {
            while outcomes.count < files.count {
                guard let m = try world.receive(wait: false) else {
                    if !wait { return }
                    usleep(20_000); continue
                }
                let o = try Outcome.decoded(m.bytes)
                guard o.item >= 0, o.item < files.count else { throw CommunicationError.malformed("batch item \(o.item)") }
                outcomes[o.item] = o
                arrived(o)
            }
        }
        for i in share(of: files.count, rank: world.rank, size: world.size) {
            try Interruption.check()
            var o = body(i, files[i])
            o.item = i; o.rank = world.rank
            try world.post(o.encoded(), to: 0)
            if world.isRoot { try collect(wait: false) }
        }
        guard world.isRoot else { return nil }
        try collect(wait: true)
        return (0..<files.count).map { outcomes[$0]! }
    }

    /// The summary table: one line per item in list order, the same bytes whatever the
    /// number of ranks (no times, no ranks).
    public static func summaryCSV(_ outcomes: [Outcome]) -> String {
        func quoted(_ s: String) -> String {
            s.contains(",") || s.contains("\"") || s.contains("\n")
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"").replacingOccurrences(of: "\n", with: " ") + "\"" : s
        }
        func num(_ v: Double) -> String { v.isNaN ? "" : String(format: "%.6g", v) }
        var s = "file,status,chi2,llk,runs_finished,runs,kept,output,message\n"
        for o in outcomes {
            s += [quoted(o.file), o.ok ? "ok" : "failed", num(o.chi2), num(o.llk), "\(o.runsFinished)", "\(o.runs)",
                  "\(o.kept)", quoted(o.output), quoted(o.message)].joined(separator: ",") + "\n"
        }
        return s
    }

    /// The patterns of a list file: one FILE or FILE:DATASET a line, relative paths taken
    /// from the list's folder; blank lines and lines starting with # skipped.
    public static func readList(_ path: String) throws -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw BatchError.badList(path: path, reason: FileManager.default.fileExists(atPath: path)
                                     ? "it is not readable UTF-8 text" : "no such file")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let items = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            .map { $0.hasPrefix("/") || folder.isEmpty ? $0 : (folder as NSString).appendingPathComponent($0) }
        guard !items.isEmpty else { throw BatchError.badList(path: path, reason: "it names no pattern") }
        return items
    }

    /// The output name of each item: the file's name without its extension (and the dataset's
    /// last component after it, when given), refused when two items would write the same file.
    public static func outputNames(_ items: [String]) throws -> [String] {
        var seen = [String: String]()
        return try items.map { item in
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            var name = ((parts[0] as NSString).lastPathComponent as NSString).deletingPathExtension
            if parts.count == 2 {
                let d = parts[1].split(separator: "/").last.map(String.init) ?? ""
                if !d.isEmpty { name += "_" + d }
            }
            if let other = seen[name] { throw BatchError.sameOutput(first: other, second: item, name: name) }
            seen[name] = item
            return name
        }
    }
}

public enum BatchError: Error, CustomStringConvertible {
    case badList(path: String, reason: String)
    case sameOutput(first: String, second: String, name: String)
    public var description: String {
        switch self {
        case .badList(let p, let r): return "cannot use the batch list \(p): \(r)"
        case .sameOutput(let a, let b, let n):
            return "\(a) and \(b) would both write \(n).cxi; give the patterns distinct file names"
        }
    }
}
