import Foundation
import Numerics

import TOMLKit

/// A value of the experiment file as its checks read it: TOML's integers and floats are
/// both numbers (SI conversions happen later), and only the kinds the file uses exist.
enum ExperimentValue: Equatable, Sendable {
    case string(String), number(Double), bool(Bool), array([ExperimentValue])

    var doubleValue: Double? { if case .number(let d) = self { return d }; return nil }
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
}

/// The experiment file as TOML 1.0, parsed by TOMLKit (toml++), flattened into what the
/// checks of `Experiment.parse` walk: the top-level keys, the tables by dotted name
/// ("geometry", "geometry.angles"), and the arrays of tables ("state") in order.
/// A syntax error names its line; dates, times and non-finite numbers are refused, since no
/// key of the file takes them.
enum ExperimentTOML {
    typealias Table = [String: ExperimentValue]

    static func parse(_ text: String) throws -> (root: Table, tables: [String: Table], arrays: [String: [Table]]) {
        // toml++ reads a C string: a NUL would silently end the file there.
        guard !text.utf8.contains(0) else { throw AnalysisError.experimentFile("holds a NUL byte (not a text file)") }
        try refuseTableHeadersTOMLppAssertsOn(text)
        try parseInChildFirst(text)
        let document: TOMLTable
        do { document = try TOMLTable(string: text) } catch let e as TOMLParseError {
            throw AnalysisError.experimentFile("line \(e.source.begin.line): \(e.description)")
        }
        var tables = [String: Table](), arrays = [String: [Table]]()
        func dotted(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }
        func value(_ v: TOMLValueConvertible, _ name: String) throws -> ExperimentValue {
            switch v.type {
            case .string: return .string(v.string ?? "")
            case .bool: return .bool(v.bool ?? false)
            case .int: return .number(Double(v.int ?? 0))
            case .double:
                guard let d = v.double, d.isFinite else { throw AnalysisError.experimentFile("'\(name)' must be a finite number") }
                return .number(d)
            case .array: return .array(try (v.array ?? TOMLArray()).map { try value($0, name) })
            case .table: throw AnalysisError.experimentFile("'\(name)' holds a table where a value belongs")
            case .date, .time, .dateTime: throw AnalysisError.experimentFile("'\(name)' is a date or time, which no key takes")
            }
        }
        // A table's own values; its sub-tables and arrays of tables are filed under their dotted names.
        func flatten(_ t: TOMLTable, _ path: String) throws -> Table {
            var own = Table()
            for key in t.keys {
                guard let v = t[key] else { continue }
                let name = dotted(path, key)
                if v.type == .table, let sub = v.table {
                    tables[name] = try flatten(sub, name)
                } else if v.type == .array, let a = v.array, !a.isEmpty, a.allSatisfy({ $0.type == .table }) {
                    arrays[name, default: []] += try a.compactMap { $0.table }.map { try flatten($0, name) }
                } else {
                    own[key] = try value(v, name)
                }
            }
            return own
        }
        let root = try flatten(document, "")
        return (root, tables, arrays)
    }

    /// Seconds the child's parse may take: an experiment file parses in microseconds.
    static let childParseSeconds: UInt32 = 10

    /// toml++ 3.4 ends the process on malformed input it does not expect (an `assert`, or
    /// undefined behaviour where asserts are off): `a = [}]` aborts in parse_value, as did
    /// inputs found by Fuzz/experiment after the header check below, and toml++'s own
    /// tracker lists more. No handler can turn that into a message, so the text is first
    /// parsed in a forked child; if the child dies by a signal or does not finish in
    /// `childParseSeconds`, the file is refused before this process parses it. The child
    /// only parses and exits (no output, default signal actions, stderr to /dev/null, so
    /// toml++'s assertion text and Swift's backtrace of the child stay off the terminal).
    /// Without a child (fork refused) the text is parsed here as before.
    static func parseInChildFirst(_ text: String) throws {
        let pid = fork()
        if pid == 0 {
            for s in [SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGALRM] { signal(s, SIG_DFL) }
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, 2) }
            alarm(childParseSeconds)
            _ = try? TOMLTable(string: text)
            _exit(0)
        }
        guard pid > 0 else { return }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return }
        }
        let signal = status & 0x7f   // WTERMSIG; 0 when the child exited
        if signal == SIGALRM {
            throw AnalysisError.experimentFile("the TOML parser (toml++) did not finish reading it in \(childParseSeconds) s")
        }
        if [SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP].contains(signal) {
            throw AnalysisError.experimentFile("is malformed TOML that the TOML parser (toml++) fails on; check its brackets, braces and values")
        }
        // Exited (a parse error is reported below, with its line), or killed from outside
        // (Ctrl-C reaches the child too): this process parses and meets the same fate.
    }

    /// toml++ 3.4 (inside TOMLKit 0.6.0) asserts, which ends the process, when a table
    /// header's name starts with a character no key starts with: `[` alone on a line,
    /// `[!a]`, `[[ #a]]`, `[é]` (found by Fuzz/experiment). Such lines are refused here
    /// first, with the line, as toml++ refuses the same character after a dot. A line inside
    /// a multi-line array or string that starts so would be refused too; no key of the
    /// experiment file takes one.
    static func refuseTableHeadersTOMLppAssertsOn(_ text: String) throws {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() {
            var rest = line.unicodeScalars.drop(while: { $0 == " " || $0 == "\t" })
            guard rest.first == "[" else { continue }
            rest = rest.dropFirst()
            if rest.first == "[" { rest = rest.dropFirst() }
            rest = rest.drop(while: { $0 == " " || $0 == "\t" })
            guard let c = rest.first else {
                if i == lines.count - 1 { continue }   // the end of the file: toml++ says so itself
                throw AnalysisError.experimentFile("line \(i + 1): a table header needs a name")
            }
            let startsKey = ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
                || c == "_" || c == "-" || c == "\"" || c == "'" || c == "]"
            guard startsKey else {
                throw AnalysisError.experimentFile(
                    "line \(i + 1): a table name starts with a letter, a digit, _, - or a quote, not '\(c.escaped(asASCII: true))'")
            }
        }
    }
}

/// An experiment file: the states in order, the geometry and the analysis options.
///
/// ```toml
/// [geometry]
/// energy_kev = 13.5
/// two_theta_deg = 28.8
/// out_of_plane_deg = 0.0
/// distance_m = 2.8
/// pixel_size_um = 55
/// rocking_step_deg = 0.005
/// rocking_axis = "y"            # "x", "y", "z" or [x, y, z] in the lab frame
///
/// [analysis]                    # all optional
/// reference = "2.5 V charge"    # label or index (default: the first state)
/// core_fraction = 0.5
/// common_support = "majority"   # "union", "intersection"
/// fill_threshold = 0.25
/// support_threshold = 0.2
/// support_fraction = 0.5        # 0 keeps each reconstruction's own support
/// voxel_nm = 10
/// pca_fraction = 0.99
/// remove_ramp = true
/// twin_check = true
/// sub_voxel = true
///
/// [[state]]
/// label = "2.5 V charge"
/// condition = "2.5 V"           # or voltage = 2.5
/// file = "charge_2.5V.cxi"      # CXI results of `bragg phase`, or a complex .npy
/// runs = ["run2.cxi"]           # optional further runs of this state (PRTF)
/// ```
/// Relative paths are taken from the experiment file's folder.
public struct Experiment: Sendable {
    public struct State: Sendable, Equatable {
        public var label: String
        public var condition: String
        public var file: String
        public var runs: [String]

        public init(label: String, condition: String = "", file: String, runs: [String] = []) {
            self.label = label; self.condition = condition; self.file = file; self.runs = runs
        }
    }
    public var states: [State]
    public var geometry: BraggGeometry?
    public var options: AnalysisOptions
    /// The reference as written (a label), resolved against the states.
    public var referenceLabel: String?

    public static func load(path: String) throws -> Experiment {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw AnalysisError.experimentFile("cannot read '\(path)'")
        }
        let base = (path as NSString).deletingLastPathComponent
        do { return try parse(text, baseDirectory: base) }
        catch AnalysisError.experimentFile(let m) { throw AnalysisError.experimentFile("'\(path)': \(m)") }
    }

    public static func parse(_ text: String, baseDirectory: String = "") throws -> Experiment {
        let (root, tables, arrays) = try ExperimentTOML.parse(text)
        for k in root.keys { throw AnalysisError.experimentFile("key '\(k)' must sit inside [geometry], [analysis] or [[state]]") }
        for t in tables.keys where t != "geometry" && t != "analysis" && t != "geometry.angles" {
            throw AnalysisError.experimentFile("unknown table [\(t)] (expected [geometry], [geometry.angles], [analysis], [[state]])")
        }
        for a in arrays.keys where a != "state" { throw AnalysisError.experimentFile("unknown table [[\(a)]] (expected [[state]])") }
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") || baseDirectory.isEmpty ? p : (baseDirectory as NSString).appendingPathComponent(p)
        }
        var states: [State] = []
        for (i, t) in (arrays["state"] ?? []).enumerated() {
            for k in t.keys where !["label", "condition", "voltage", "file", "runs"].contains(k) {
                throw AnalysisError.experimentFile("state \(i + 1): unknown key '\(k)'")
            }
            let label = t["label"]?.stringValue ?? "state \(i + 1)"
            guard let file = t["file"]?.stringValue else { throw AnalysisError.experimentFile("state '\(label)': no file = \"…\" given") }
            var cond = t["condition"]?.stringValue ?? ""
            if let v = t["voltage"]?.doubleValue { cond = "\(v) V" }
            var runs: [String] = []
            if let r = t["runs"] {
                guard case .array(let items) = r else { throw AnalysisError.experimentFile("state '\(label)': runs must be an array of file names") }
                runs = try items.map { v in guard let s = v.stringValue else { throw AnalysisError.experimentFile("state '\(label)': runs must hold strings") }; return resolve(s) }
            }
            states.append(State(label: label, condition: cond, file: resolve(file), runs: runs))
        }
        guard !states.isEmpty else { throw AnalysisError.experimentFile("no [[state]] entries") }
        var geometry: BraggGeometry? = nil
        if let g = tables["geometry"] { geometry = try parseGeometry(g, angles: tables["geometry.angles"]) }
        else if tables["geometry.angles"] != nil { throw AnalysisError.experimentFile("[geometry.angles] needs a [geometry] table") }
        var options = AnalysisOptions()
        var refLabel: String? = nil
        if let a = tables["analysis"] {
            func num(_ k: String) throws -> Double? {
                guard let v = a[k] else { return nil }
                guard let d = v.doubleValue else { throw AnalysisError.experimentFile("[analysis] \(k) must be a number") }
                return d
            }
            func flag(_ k: String) throws -> Bool? {
                guard let v = a[k] else { return nil }
                guard case .bool(let b) = v else { throw AnalysisError.experimentFile("[analysis] \(k) must be true or false") }
                return b
            }
            for k in a.keys where !["reference", "core_fraction", "common_support", "fill_threshold", "support_threshold",
                                    "support_fraction", "voxel_nm", "pca_fraction", "remove_ramp", "twin_check", "sub_voxel",
                                    "lab_frame"].contains(k) {
                throw AnalysisError.experimentFile("[analysis]: unknown key '\(k)'")
            }
            if let r = a["reference"] {
                if let d = r.doubleValue { options.reference = Int(d) }
                else if let s = r.stringValue { refLabel = s
                    guard let i = states.firstIndex(where: { $0.label == s }) else {
                        throw AnalysisError.experimentFile("[analysis] reference '\(s)' is not the label of a state")
                    }
                    options.reference = i
                }
            }
            if let v = try num("core_fraction") { options.coreFraction = v }
            if let v = try num("fill_threshold") { options.fillThreshold = v }
            if let v = try num("support_threshold") { options.supportThreshold = v }
            if let v = try num("support_fraction") { options.supportFraction = v == 0 ? nil : v }
            if let v = try num("voxel_nm") { options.labVoxelSize = v * 1e-9 }
            if let v = try num("pca_fraction") { options.pcaRegionFraction = v }
            if let v = try flag("remove_ramp") { options.removeRamp = v }
            if let v = try flag("twin_check") { options.twinCheck = v }
            if let v = try flag("sub_voxel") { options.subVoxel = v }
            if let v = try flag("lab_frame") { options.labFrame = v }
            if let v = a["common_support"] {
                guard let s = v.stringValue, let rule = CommonSupportRule(rawValue: s) else {
                    throw AnalysisError.experimentFile("[analysis] common_support must be \"majority\", \"union\" or \"intersection\"")
                }
                options.commonSupport = rule
            }
        }
        try options.validate(states: states.count)
        return Experiment(states: states, geometry: geometry, options: options, referenceLabel: refLabel)
    }

    /// The [geometry] table: either the angle form (two_theta_deg, out_of_plane_deg, rocking_axis)
    /// or a diffractometer (`diffractometer` = "34idc", "id01", "p10", "sixs" or "i16", the motor
    /// readings in degrees in [geometry.angles], `rocking_circle`, and optionally `peak_pixel`
    /// and `direct_beam_pixel` as [row, column] of the full detector).
    static func parseGeometry(_ g: ExperimentTOML.Table, angles: ExperimentTOML.Table? = nil) throws -> BraggGeometry {
        let common = ["energy_kev", "energy_ev", "distance_m", "pixel_size_um", "pixel_size_m", "rocking_step_deg"]
        let angleForm = ["two_theta_deg", "out_of_plane_deg", "rocking_axis"]
        let diffractometerForm = ["diffractometer", "rocking_circle", "peak_pixel", "direct_beam_pixel"]
        if g["diffractometer"] != nil {
            for k in g.keys where !(common + diffractometerForm).contains(k) {
                throw AnalysisError.experimentFile("[geometry]: unknown key '\(k)' (with a diffractometer, the angles go in [geometry.angles])")
            }
            return try parseDiffractometerGeometry(g, angles: angles ?? [:])
        }
        if angles != nil { throw AnalysisError.experimentFile("[geometry.angles] needs 'diffractometer' in [geometry]") }
        let known = common + angleForm
        for k in g.keys where !known.contains(k) { throw AnalysisError.experimentFile("[geometry]: unknown key '\(k)'") }
        func num(_ k: String) throws -> Double? {
            guard let v = g[k] else { return nil }
            guard let d = v.doubleValue else { throw AnalysisError.experimentFile("[geometry] \(k) must be a number") }
            return d
        }
        func need(_ v: Double?, _ name: String) throws -> Double {
            guard let v else { throw AnalysisError.experimentFile("[geometry] needs \(name)") }
            return v
        }
        let energy = try need(try num("energy_kev").map { $0 * 1000 } ?? num("energy_ev"), "energy_kev")
        let tth = try need(try num("two_theta_deg"), "two_theta_deg") * .pi / 180
        let oop = (try num("out_of_plane_deg") ?? 0) * .pi / 180
        let dist = try need(try num("distance_m"), "distance_m")
        let pix = try need(try num("pixel_size_um").map { $0 * 1e-6 } ?? num("pixel_size_m"), "pixel_size_um")
        let step = try need(try num("rocking_step_deg"), "rocking_step_deg") * .pi / 180
        var axis = Vector3(0, 1, 0)
        if let a = g["rocking_axis"] {
            switch a {
            case .string("x"): axis = Vector3(1, 0, 0)
            case .string("y"): axis = Vector3(0, 1, 0)
            case .string("z"): axis = Vector3(0, 0, 1)
            case .array(let v) where v.count == 3 && v.allSatisfy({ $0.doubleValue != nil }):
                axis = Vector3(v[0].doubleValue!, v[1].doubleValue!, v[2].doubleValue!)
            default: throw AnalysisError.experimentFile("[geometry] rocking_axis must be \"x\", \"y\", \"z\" or [x, y, z]")
            }
        }
        return BraggGeometry(energy: energy, twoTheta: tth, outOfPlane: oop, distance: dist, pixelSize: pix,
                           rockingStep: step, rockingAxis: axis)
    }

    static func parseDiffractometerGeometry(_ g: ExperimentTOML.Table, angles: ExperimentTOML.Table) throws -> BraggGeometry {
        func fail(_ m: String) -> AnalysisError { .experimentFile("[geometry] " + m) }
        func num(_ k: String) throws -> Double? {
            guard let v = g[k] else { return nil }
            guard let d = v.doubleValue else { throw fail("\(k) must be a number") }
            return d
        }
        func pixel(_ k: String) throws -> (row: Double, column: Double)? {
            guard let v = g[k] else { return nil }
            guard case .array(let a) = v, a.count == 2, let r = a[0].doubleValue, let c = a[1].doubleValue else {
                throw fail("\(k) must be [row, column]")
            }
            return (r, c)
        }
        guard let name = g["diffractometer"]?.stringValue else { throw fail("diffractometer must be a string") }
        guard let d = Diffractometer.named(name) else {
            throw fail("unknown diffractometer '\(name)' (known: \(Diffractometer.presets.keys.sorted().joined(separator: ", ")))")
        }
        guard let energy = try num("energy_kev").map({ $0 * 1000 }) ?? num("energy_ev") else { throw fail("needs energy_kev") }
        guard let dist = try num("distance_m") else { throw fail("needs distance_m") }
        guard let pix = try num("pixel_size_um").map({ $0 * 1e-6 }) ?? num("pixel_size_m") else { throw fail("needs pixel_size_um") }
        guard let step = try num("rocking_step_deg") else { throw fail("needs rocking_step_deg") }
        guard let circle = g["rocking_circle"]?.stringValue else { throw fail("needs rocking_circle (the scanned sample circle)") }
        var readings: [String: Double] = [:]
        for (k, v) in angles {
            guard let a = v.doubleValue else { throw AnalysisError.experimentFile("[geometry.angles] \(k) must be a number (degrees)") }
            guard (d.sampleCircles + d.detectorCircles).contains(where: { $0.answers(to: k) }) else {
                throw AnalysisError.experimentFile("[geometry.angles] '\(k)' is not a circle of \(d.name) "
                    + "(\((d.sampleCircles + d.detectorCircles).map(\.name).joined(separator: ", ")))")
            }
            readings[k] = a
        }
        let peak = try pixel("peak_pixel") ?? (0, 0)
        let direct = try pixel("direct_beam_pixel")
        do {
            return try d.braggGeometry(energy: energy, angles: readings, rockingCircle: circle, rockingStep: step,
                                       distance: dist, pixelSize: (pix, pix), peakPixel: peak, directBeam: direct)
        } catch let e as NumericsError { throw fail("\(e)") }
    }

    /// Checks that every state's reconstruction file (and runs) exists.
    public func checkFiles() throws {
        for s in states {
            for f in [s.file] + s.runs where !FileManager.default.fileExists(atPath: f) {
                throw AnalysisError.experimentFile("state '\(s.label)': file '\(f)' does not exist")
            }
        }
    }
}
