import Foundation
import Numerics
import Formats
import Analysis

// The states of a series to analyse when they are not in an experiment file: the
// reconstructions in order with their labels, the reference named by label or index, every
// file checked before any is read, and the reconstructions read with the geometry the
// reference's file records.

public enum SeriesInputs {
    /// One state per reconstruction (FILE or FILE:DATASET), labelled by `labels` in order or,
    /// without, by the file's name.
    public static func states(files: [String], labels: [String]?) throws -> [Experiment.State] {
        let names = labels ?? files.map { (($0.split(separator: ":").first.map(String.init) ?? $0) as NSString).lastPathComponent }
        guard names.count == files.count else { throw PipelineError.labelCount(labels: names.count, reconstructions: files.count) }
        return zip(names, files).map { Experiment.State(label: $0, condition: "", file: $1, runs: []) }
    }

    /// Comma-separated labels, each trimmed; empty ones kept (so that their count is checked).
    public static func labels(_ list: String) -> [String] {
        list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The index of the reference state: `name` as a 0-based index or a state's label.
    public static func reference(_ name: String, in states: [Experiment.State]) throws -> Int {
        if let i = Int(name) { return i }
        guard let i = states.firstIndex(where: { $0.label == name }) else { throw PipelineError.unknownReference(name) }
        return i
    }

    /// Checks that every state's files (its result and its runs) exist, naming the state.
    public static func checkFiles(_ states: [Experiment.State]) throws {
        for s in states {
            for f in [s.file] + s.runs {
                let path = String(f.split(separator: ":", maxSplits: 1).first ?? Substring(f))
                guard FileManager.default.fileExists(atPath: path) else {
                    throw PipelineError.input("state '\(s.label)': file '\(path)' does not exist")
                }
            }
        }
    }

    /// Reads every state's reconstruction (and its runs' objects, with the pattern when it
    /// has runs) through `ReconstructionFile`, passing each note on what was read of another
    /// program's file to `notes`; with the geometry the reference state's file records.
    public static func read(_ states: [Experiment.State], reference: Int, progress: ProgressHandler? = nil,
                            notes: (String) -> Void = { _ in }) throws -> (states: [StateInput], storedGeometry: CXIGeometry?) {
        func read(_ file: String, label: String) throws -> ReconstructionFile {
            let r = try ReconstructionFile.read(file, state: label)
            if let n = r.note { notes(n) }
            return r
        }
        var inputs: [StateInput] = []
        var stored: CXIGeometry?
        for (i, s) in states.enumerated() {
            progress?(ProgressReport(stage: "read", done: i, total: states.count))
            let r = try read(s.file, label: s.label)
            if i == reference { stored = r.geometry }
            let runs = try s.runs.map { try read($0, label: s.label).object }
            inputs.append(StateInput(label: s.label, condition: s.condition, object: r.object, support: r.support, chi2: r.chi2,
                                     runs: runs, pattern: runs.isEmpty ? nil : r.pattern))
        }
        return (inputs, stored)
    }
}
