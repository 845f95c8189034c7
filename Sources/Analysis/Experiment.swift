import Foundation
import Numerics

/// A value of the TOML subset the experiment file uses.
public enum TOMLValue: Equatable, Sendable {
    case string(String), number(Double), bool(Bool), array([TOMLValue])

    var doubleValue: Double? { if case .number(let d) = self { return d }; return nil }
    var stringValue: String? { if case .string(let s) = self { return s }; return nil }
}

/// A small reader for the TOML subset of experiment files: `# comments`, `[table]`,
/// `[[array of tables]]`, `key = value` with bare or quoted keys, basic ("…", with \" \\ \n
/// \t escapes) and literal ('…') strings, integers and floats (underscores and exponents),
/// booleans, and arrays of these (which may span lines). Dotted keys, inline tables, dates
/// and multi-line strings are not supported and are reported as errors with their line.
public enum MiniTOML {
    public typealias Table = [String: TOMLValue]

    /// Parses into the root table, named tables, and arrays of tables (in order).
    public static func parse(_ text: String) throws -> (root: Table, tables: [String: Table], arrays: [String: [Table]]) {
        var root = Table(), tables = [String: Table](), arrays = [String: [Table]]()
        enum Target { case root, table(String), array(String) }
        var target = Target.root
        var lines = text.components(separatedBy: "\n")
        var ln = 0
        func fail(_ msg: String) -> AnalysisError { .experimentFile("line \(ln): \(msg)") }
        while ln < lines.count {
            var line = stripComment(lines[ln]).trimmingCharacters(in: .whitespaces)
            ln += 1
            if line.isEmpty { continue }
            if line.hasPrefix("[[") {
                guard line.hasSuffix("]]") else { throw fail("unterminated [[table]] header") }
                let name = String(line.dropFirst(2).dropLast(2)).trimmingCharacters(in: .whitespaces)
                arrays[name, default: []].append(Table()); target = .array(name); continue
            }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw fail("unterminated [table] header") }
                let name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard tables[name] == nil else { throw fail("table [\(name)] appears twice") }
                tables[name] = Table(); target = .table(name); continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw fail("expected key = value") }
            var key = String(line[..<eq]).trimmingCharacters(in: .whitespaces)
            if key.count >= 2, (key.hasPrefix("\"") && key.hasSuffix("\"")) || (key.hasPrefix("'") && key.hasSuffix("'")) {
                key = String(key.dropFirst().dropLast())
            } else if key.isEmpty || key.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) {
                throw fail("unsupported key '\(key)' (bare keys of letters, digits, _ and - only)")
            }
            var rest = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            // Arrays may span lines: read on until the brackets balance.
            while bracketDepth(rest) > 0 && ln < lines.count {
                rest += " " + stripComment(lines[ln]).trimmingCharacters(in: .whitespaces); ln += 1
            }
            var scanner = Scanner(chars: Array(rest), pos: 0)
            let value: TOMLValue
            do { value = try scanner.value() } catch let e as TOMLSyntax { throw fail(e.message) }
            scanner.skipSpace()
            guard scanner.pos == scanner.chars.count else { throw fail("unexpected text after the value of '\(key)'") }
            switch target {
            case .root: guard root[key] == nil else { throw fail("key '\(key)' given twice") }; root[key] = value
            case .table(let t): guard tables[t]![key] == nil else { throw fail("key '\(key)' given twice") }; tables[t]![key] = value
            case .array(let a): guard arrays[a]![arrays[a]!.count - 1][key] == nil else { throw fail("key '\(key)' given twice") }
                arrays[a]![arrays[a]!.count - 1][key] = value
            }
            line = ""
        }
        lines.removeAll()
        return (root, tables, arrays)
    }

    static func stripComment(_ s: String) -> String {
        var inStr: Character? = nil
        var out = ""
        var escape = false
        for c in s {
            if let q = inStr {
                if escape { escape = false } else if c == "\\" && q == "\"" { escape = true } else if c == q { inStr = nil }
            } else if c == "\"" || c == "'" { inStr = c } else if c == "#" { break }
            out.append(c)
        }
        return out
    }

    static func bracketDepth(_ s: String) -> Int {
        var d = 0; var inStr: Character? = nil
        for c in s {
            if let q = inStr { if c == q { inStr = nil } }
            else if c == "\"" || c == "'" { inStr = c } else if c == "[" { d += 1 } else if c == "]" { d -= 1 }
        }
        return d
    }

    struct Scanner {
        var chars: [Character]
        var pos: Int
        mutating func skipSpace() { while pos < chars.count, chars[pos] == " " || chars[pos] == "\t" { pos += 1 } }
        mutating func value() throws -> TOMLValue {
            skipSpace()
            guard pos < chars.count else { throw TOMLSyntax("missing value") }
            let c = chars[pos]
            if c == "\"" {
                pos += 1; var s = ""
                while pos < chars.count && chars[pos] != "\"" {
                    if chars[pos] == "\\" {
                        pos += 1
                        guard pos < chars.count else { throw TOMLSyntax("unterminated string") }
                        switch chars[pos] {
                        case "n": s.append("\n"); case "t": s.append("\t"); case "\\": s.append("\\"); case "\"": s.append("\"")
                        default: throw TOMLSyntax("unsupported escape \\\(chars[pos])")
                        }
                    } else { s.append(chars[pos]) }
                    pos += 1
                }
                guard pos < chars.count else { throw TOMLSyntax("unterminated string") }
                pos += 1; return .string(s)
            }
            if c == "'" {
                pos += 1; var s = ""
                while pos < chars.count && chars[pos] != "'" { s.append(chars[pos]); pos += 1 }
                guard pos < chars.count else { throw TOMLSyntax("unterminated string") }
                pos += 1; return .string(s)
            }
            if c == "[" {
                pos += 1; var items: [TOMLValue] = []
                while true {
                    skipSpace()
                    guard pos < chars.count else { throw TOMLSyntax("unterminated array") }
                    if chars[pos] == "]" { pos += 1; break }
                    items.append(try value())
                    skipSpace()
                    guard pos < chars.count else { throw TOMLSyntax("unterminated array") }
                    if chars[pos] == "," { pos += 1 } else if chars[pos] != "]" { throw TOMLSyntax("expected , or ] in an array") }
                }
                return .array(items)
            }
            var tok = ""
            while pos < chars.count, !" \t,]".contains(chars[pos]) { tok.append(chars[pos]); pos += 1 }
            if tok == "true" { return .bool(true) }
            if tok == "false" { return .bool(false) }
            let cleaned = tok.replacingOccurrences(of: "_", with: "")
            if let d = Double(cleaned), !cleaned.isEmpty, !cleaned.lowercased().contains("n") { return .number(d) }
            throw TOMLSyntax("cannot read the value '\(tok)'")
        }
    }
}

/// A syntax error inside one value (the caller adds the line number).
struct TOMLSyntax: Error { let message: String; init(_ m: String) { message = m } }

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
        let (root, tables, arrays) = try MiniTOML.parse(text)
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
                                    "voxel_nm", "pca_fraction", "remove_ramp", "twin_check", "sub_voxel", "lab_frame"].contains(k) {
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
    static func parseGeometry(_ g: MiniTOML.Table, angles: MiniTOML.Table? = nil) throws -> BraggGeometry {
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

    static func parseDiffractometerGeometry(_ g: MiniTOML.Table, angles: MiniTOML.Table) throws -> BraggGeometry {
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
