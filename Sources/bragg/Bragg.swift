import ArgumentParser
import Formats
import Foundation
import Numerics

/// The `bragg` program: every subcommand registers here.
struct Bragg: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "bragg",
        abstract: "Bragg coherent X-ray diffraction imaging: from detector frames to 3D strain, on a CPU.",
        discussion: """
            Data flow: prepare (frames → pattern) → phase (pattern → complex object) → \
            analyze (series → displacement, strain, PCA) → report. `bragg demo` runs it all \
            on a simulated in-operando series.

            Arrays are addressed as FILE or FILE:DATASET (an HDF5 path or an NPZ member), e.g. \
            `scan.h5:/entry/data/data`. Exit status: 0 success, 2 bad input or options, 130 interrupted.
            """,
        version: version,
        subcommands: braggSubcommands
    )
}

/// Options every computing subcommand accepts.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Worker threads for loops and FFTs (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("fft-effort"),
            help: "FFTW planning effort: estimate, measure, patient or exhaustive. Plans found with patient or exhaustive are saved as wisdom (~/.cache/braggkit, or $BRAGG_FFTW_WISDOM) and reused by later runs. (default: measure)")
    var fftEffort: FFTEffort?

    /// The planning effort asked for, `measure` when none was given.
    var effort: FFTEffort { fftEffort ?? .measure }
    /// Whether --fft-effort was given (commands that need repeatable bytes plan with
    /// `estimate` otherwise).
    var fftEffortGiven: Bool { fftEffort != nil }

    @Flag(name: .shortAndLong, help: "Print only results and errors, no progress.")
    var quiet = false

    /// More threads than this only cost memory and start-up time (each worker has its own
    /// FFT buffers): 100 000 threads took 11 s and 423 MB before doing anything.
    static var maxThreads: Int { 4 * ProcessInfo.processInfo.activeProcessorCount }

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1 (got \(t))") }
        if let t = threads, t > CommonOptions.maxThreads {
            throw ValidationError("--threads must be at most \(CommonOptions.maxThreads), 4 × the \(ProcessInfo.processInfo.activeProcessorCount) cores of this machine (got \(t))")
        }
    }

    /// Applies the options to the process: threads, FFT effort, saved wisdom.
    func apply() {
        if let t = threads { Parallel.threads = t }
        FFTPlanner.defaultEffort = effort
        FFTPlanner.importWisdom()
    }

    /// Saves wisdom if this run planned with more than `estimate` effort.
    func saveWisdom() {
        let e = effort
        if e == .patient || e == .exhaustive || FFTPlanner.hasNewWisdom { FFTPlanner.exportWisdom() }
    }
}

/// A failure caused by the user's input or options: printed as one sentence, exit 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Installs the Ctrl-C handler: the first interrupt asks loops to stop cleanly, a second
/// one ends the process at once.
func installInterruptHandler() {
    signal(SIGINT) { _ in
        if Interruption.requested { _exit(130) }
        Interruption.request()
    }
}

/// A negative number after an option that takes a count (`--threads -1`) reads to the
/// argument parser as another option, and it answers "Missing value"; say what is wrong.
func refuseNegativeCounts(_ args: [String]) -> String? {
    for (i, a) in args.enumerated().dropLast() where a == "--threads" {
        let v = args[i + 1]
        if v.hasPrefix("-"), Int(v) != nil { return "--threads must be at least 1 (got \(v))" }
    }
    return nil
}

/// A Foundation file error (NSCocoaErrorDomain, e.g. Code=513 for a folder without write
/// permission) as one sentence naming the file; nil for any other error.
func fileErrorSentence(_ error: Error) -> String? {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain, (256..<1024).contains(ns.code) else { return nil }
    let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path ?? "a file"
    let writing = ns.code >= 512
    let reason: String
    switch ns.code {
    case 257, 513: reason = "permission denied"
    case 4, 260: reason = "no such file or folder"
    case 516: reason = "it exists already"
    case 640: reason = "the disk is full"
    case 642: reason = "the file system is read-only"
    default:
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            reason = String(cString: strerror(Int32(u.code)))
        } else {
            reason = "error \(ns.code)"
        }
    }
    return "cannot \(writing ? "write" : "read") \(path): \(reason)"
}

/// Runs the program: parses, runs, and maps every error to one message and an exit status.
func braggMain() -> Never {
    installInterruptHandler()
    if let m = refuseNegativeCounts(Array(CommandLine.arguments.dropFirst())) {
        printError("bragg: error: " + m)
        exit(2)
    }
    do {
        var command = try Bragg.parseAsRoot()
        try command.run()
        exit(0)
    } catch let e as InterruptedError {
        printError("bragg: \(e) — outputs already written are complete; nothing half-written was left")
        exit(130)
    } catch {
        let code = Bragg.exitCode(for: error)
        if code == .success { Bragg.exit(withError: error) }  // --help, --version
        // Argument-parser errors carry their own message (with usage); ours describe themselves.
        let message: String
        if let sentence = fileErrorSentence(error) {
            message = "bragg: error: " + sentence
        } else if !(String(reflecting: type(of: error)).contains("ArgumentParser")) {
            message = "bragg: error: " + commandLineMessage(for: error)
        } else {
            message = Bragg.fullMessage(for: error)
        }
        printError(message)
        exit(2)
    }
}

/// Checks, before any work, that a folder the command writes into (replacing its own
/// outputs) can be written (see OutputCheck).
func checkOutputFolder(_ path: String) throws { try OutputCheck.folder(path, overwrite: true) }
