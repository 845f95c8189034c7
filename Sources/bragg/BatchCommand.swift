import ArgumentParser
import BraggKit
import Cluster
import Formats
import Foundation
import Numerics
import Phasing

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Phase many patterns (an operando series, a beamtime's scans), spread over MPI ranks under mpirun.",
        discussion: """
            LIST is a text file naming one pattern a line (FILE or FILE:DATASET, relative to \
            the list's folder; # starts a comment). Each pattern is phased as `bragg phase \
            PATTERN --out DIR/NAME.cxi PHASE-OPTIONS` would (the same bytes), NAME being the \
            file's name without its extension; its report goes to DIR/NAME.log. Phase options \
            follow `--`, e.g. `bragg batch scans.txt --out results -- --runs 20 --keep 10`.

            Alone, the patterns run one after another. Under `mpirun -n N` (or `srun`) pattern \
            i runs on rank i mod N, each rank with its share of the cores (or --threads); rank \
            0 prints a line per finished pattern and writes DIR/summary.csv (file, status, \
            chi2, llk, runs finished, runs, kept, output, message), the same table whatever N. \
            A pattern that fails (unreadable, all runs failed) is reported by name and the \
            others finish; the exit status is then 2. A rank that dies ends the job (mpirun \
            says which), never a hang.
            """
    )

    @Argument(help: "Text file: one pattern (FILE or FILE:DATASET) a line.")
    var list: String

    @Option(name: .shortAndLong, help: "Folder for the results (NAME.cxi, NAME.log, summary.csv).")
    var out: String

    @Flag(help: "Replace existing results in the folder.")
    var force = false

    @Option(help: "Worker threads per rank (default: the node's cores shared between its ranks).")
    var threads: Int?

    @Flag(name: .shortAndLong, help: "Print only the summary and errors.")
    var quiet = false

    @Argument(parsing: .postTerminator, help: "Options of `bragg phase` for every pattern (after --).")
    var phaseOptions: [String] = []

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
    }

    func run() throws {
        let items = try Batch.readList(list)
        let names = try Batch.outputNames(items)
        for o in ["--out", "-o", "--force", "--threads"] where phaseOptions.contains(where: { $0 == o || $0.hasPrefix(o + "=") }) {
            throw UsageError("\(o) is an option of bragg batch itself, not of the phase options after --")
        }
        var phaseArgs = phaseOptions
        if !phaseArgs.contains("--quiet") && !phaseArgs.contains("-q") { phaseArgs.append("--quiet") }
        if let t = threads { phaseArgs += ["--threads", "\(t)"] }
        // The phase options checked once, before any work.
        do { _ = try PhaseCommand.parse([items[0], "--out", "x.cxi"] + phaseArgs) } catch {
            throw UsageError("the phase options after -- are not valid: \(PhaseCommand.message(for: error))")
        }
        let outputs = names.map { (out as NSString).appendingPathComponent($0 + ".cxi") }
        let summaryPath = (out as NSString).appendingPathComponent("summary.csv")
        try OutputCheck.folder(out, overwrite: true)
        try OutputCheck.files(outputs + [summaryPath], overwrite: force)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

        let world = try World.start()
        if let t = threads { Parallel.threads = t }
        ClusterRun.shareCores(threadsGiven: threads != nil, world: world)
        ClusterRun.override = SingleProcess()
        let started = Date()
        if world.isRoot && !quiet {
            printError("bragg batch: \(items.count) pattern(s) over \(world.size) rank(s), \(Parallel.threads) thread(s) each → \(out)")
        }
        var done = 0
        let outcomes = try Batch.run(items, world: world, body: { i, file in
            phaseOne(file, output: outputs[i], log: (out as NSString).appendingPathComponent(names[i] + ".log"),
                     args: phaseArgs + (force ? ["--force"] : []), item: i)
        }, arrived: { o in
            done += 1
            guard !quiet else { return }
            let what = o.ok ? String(format: "chi2 %.5f, %d/%d runs", o.chi2, o.runsFinished, o.runs)
                            : "FAILED: \(o.message)"
            printError(String(format: "[%d/%d] %@: %@ (rank %d, %.1f s; %.0f s elapsed)",
                              done, items.count, o.file, what, o.rank, o.seconds, Date().timeIntervalSince(started)))
        })
        guard let outcomes else { return }
        let table = Batch.summaryCSV(outcomes)
        try Data(table.utf8).write(to: URL(fileURLWithPath: summaryPath))
        print(table, terminator: "")
        let failed = outcomes.filter { !$0.ok }
        if !failed.isEmpty {
            throw UsageError("\(failed.count) of \(items.count) pattern(s) failed: "
                             + failed.map { "\($0.file) (\($0.message))" }.joined(separator: "; ") + "; see \(summaryPath)")
        }
    }

    /// `bragg phase FILE --out OUTPUT ARGS` in this process, its report written to `log`.
    func phaseOne(_ file: String, output: String, log: String, args: [String], item: Int) -> Batch.Outcome {
        var o = Batch.Outcome(item: item, file: file, ok: false)
        o.output = (output as NSString).lastPathComponent   // within --out: the table is the same wherever it is
        let t0 = Date()
        ClusterRun.lastResult = nil
        let logFD = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let savedOut = dup(STDOUT_FILENO)
        if logFD >= 0 { fflush(nil); dup2(logFD, STDOUT_FILENO) }
        do {
            let command = try PhaseCommand.parse([file, "--out", output] + args)
            try command.run()
            if let r = ClusterRun.lastResult {
                o.ok = true
                o.chi2 = r.metrics.chi2; o.llk = r.metrics.llk
                o.runs = r.options.runs; o.kept = r.kept.count
                o.runsFinished = r.runs.filter { $0.metrics != nil }.count
                o.message = r.notes.joined(separator: " ")
            } else {
                o.message = "no result (the neural method is not summarised)"
                o.ok = FileManager.default.fileExists(atPath: output)
            }
        } catch {
            o.message = fileErrorSentence(error) ?? commandLineMessage(for: error)
            print("bragg: error: \(o.message)")
        }
        fflush(nil)
        if logFD >= 0 { dup2(savedOut, STDOUT_FILENO); close(logFD) }
        close(savedOut)
        o.seconds = Date().timeIntervalSince(t0)
        return o
    }
}
