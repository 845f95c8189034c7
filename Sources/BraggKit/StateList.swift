import Foundation
import Formats

// Which states a preparation makes and from which scan files: a states file ("NAME SCAN
// [SCAN …]" a line, or "NAME FOLDER SCAN_NUMBER" with a SPEC file), or the scans named on
// a command line with their scan numbers. Errors name the file and line, never a flag.

/// One state to prepare: its name (the output's), its scan files, the SPEC #S number of a
/// 34-ID-C state (its one TIFF folder in `paths`), and the scan within a multi-scan file.
public struct StateSpec: Equatable {
    public var name: String
    public var paths: [String]
    public var specScan: Int?
    public var scan: String?
    public init(name: String, paths: [String], specScan: Int? = nil, scan: String? = nil) {
        self.name = name; self.paths = paths; self.specScan = specScan; self.scan = scan
    }
}

/// A states file or a list of scans that does not say which states to prepare.
public enum StateListError: Error, CustomStringConvertible, Equatable {
    /// The states file cannot be read.
    case unreadable(file: String)
    /// Line `line` (1-based) of `file` is not a state; `withSPEC`: states name a SPEC scan
    /// ('NAME FOLDER SCAN_NUMBER'), else 'NAME SCAN [SCAN …]'.
    case badLine(file: String, line: Int, text: String, withSPEC: Bool)
    /// The states file lists no state.
    case empty(file: String)
    /// `files` scan files for `scanNumbers` scan numbers: with a SPEC file each TIFF folder
    /// needs its own number; otherwise one number per file, or one file for all.
    case unpaired(files: Int, scanNumbers: Int, withSPEC: Bool)

    public var description: String {
        switch self {
        case .unreadable(let f): return "cannot read the states file \(f)"
        case .badLine(let f, let k, let t, true):
            return "\(f) line \(k): with a SPEC file a state is 'NAME FOLDER SCAN_NUMBER' (got '\(t)')"
        case .badLine(let f, let k, let t, false): return "\(f) line \(k): a state is 'NAME SCAN [SCAN …]' (got '\(t)')"
        case .empty(let f): return "the states file \(f) lists no state"
        case .unpaired(let n, let s, true):
            return "a SPEC file pairs each TIFF folder with one scan number: \(n) folder(s) for \(s) scan number(s)"
        case .unpaired(let n, let s, false):
            return "give one scan number per file or one file for all scan numbers (got \(n) files and \(s) scan numbers)"
        }
    }
}

public enum StateList {
    /// The states of a states file's text: one a line, `#` starting a comment, blank lines
    /// skipped; relative paths are taken from `folder` (the file's). `withSPEC`: each line
    /// is 'NAME FOLDER SCAN_NUMBER' (a 34-ID-C TIFF folder and its #S number), else
    /// 'NAME SCAN [SCAN …]' (the scans summed into that state). `file` names the file in errors.
    public static func parse(_ text: String, file: String, folder: URL, withSPEC: Bool) throws -> [StateSpec] {
        var list: [StateSpec] = []
        for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.isEmpty { continue }
            func resolved(_ p: String) -> String { p.hasPrefix("/") ? p : folder.appendingPathComponent(p).path }
            let bad = StateListError.badLine(file: file, line: k + 1, text: line.trimmingCharacters(in: .whitespaces), withSPEC: withSPEC)
            if withSPEC {
                guard words.count == 3, let n = Int(words[2]) else { throw bad }
                list.append(StateSpec(name: words[0], paths: [resolved(words[1])], specScan: n))
            } else {
                guard words.count >= 2 else { throw bad }
                list.append(StateSpec(name: words[0], paths: words.dropFirst().map(resolved)))
            }
        }
        guard !list.isEmpty else { throw StateListError.empty(file: file) }
        return list
    }

    /// The states of the states file at `path` (paths relative to its folder).
    public static func read(_ path: String, withSPEC: Bool) throws -> [StateSpec] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw StateListError.unreadable(file: path) }
        return try parse(text, file: path, folder: URL(fileURLWithPath: path).deletingLastPathComponent(), withSPEC: withSPEC)
    }

    /// The states of scan files named with their scan numbers. With a SPEC file, each TIFF
    /// folder is a state with its own #S number. Several scan numbers: the scans of one
    /// multi-scan file (ID01 BLISS; NAME_N) or one per file. Otherwise every file is a scan
    /// of one state (summed) unless `series`, when each is a state. Names are `stem(_:)`s.
    public static func fromScans(_ paths: [String], scanNumbers: [String], withSPEC: Bool, series: Bool) throws -> [StateSpec] {
        if withSPEC {
            guard paths.count == scanNumbers.count else {
                throw StateListError.unpaired(files: paths.count, scanNumbers: scanNumbers.count, withSPEC: true)
            }
            return zip(paths, scanNumbers).map { StateSpec(name: stem($0), paths: [$0], specScan: Int($1)) }
        }
        if scanNumbers.count > 1 {
            if paths.count == 1 { return scanNumbers.map { StateSpec(name: "\(stem(paths[0]))_\($0)", paths: paths, scan: $0) } }
            guard paths.count == scanNumbers.count else {
                throw StateListError.unpaired(files: paths.count, scanNumbers: scanNumbers.count, withSPEC: false)
            }
            return zip(paths, scanNumbers).map { StateSpec(name: "\(stem($0))_\($1)", paths: [$0], scan: $1) }
        }
        guard let first = paths.first else { return [] }
        if !series { return [StateSpec(name: stem(first), paths: paths, scan: scanNumbers.first)] }
        return paths.map { StateSpec(name: stem($0), paths: [$0]) }
    }

    /// A state's name from its scan: a folder's name, or a file's name without its extension.
    public static func stem(_ p: String) -> String {
        let u = URL(fileURLWithPath: p.hasSuffix("/") ? String(p.dropLast()) : p)
        return u.pathExtension.isEmpty || isFolder(p) ? u.lastPathComponent : u.deletingPathExtension().lastPathComponent
    }

    /// Whether `path` is an existing folder.
    public static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The crop size (before binning) and binning a prepared pattern was made with, from its
    /// file (`ResultsFile.prepared` records them), so that later states take its shape.
    public static func shape(ofPrepared path: String) throws -> (size: [Int], binning: [Int]) {
        let p = try CXIResults.read(from: path).parameters
        guard case .ints(let crop)? = p["crop_size"], case .ints(let b)? = p["binning"], crop.count == 3, b.count == 3,
              crop.allSatisfy({ $0 >= 1 }), b.allSatisfy({ $0 >= 1 }) else {
            throw PipelineError.notPrepared(path: path)
        }
        return (crop, b)
    }
}
