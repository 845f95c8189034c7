import Foundation

// SPEC data files (certif.com's SPEC, the diffractometer control program of APS 34-ID-C
// and many other beamlines): one text file holding many scans. A file header names the
// motors (#O0…, mnemonics #o0…) and counters (#J, #j); each scan starts with
// `#S number command`, then its own header (#D date, #T/#M counting time or monitor,
// #G geometry, #Q hkl, #P0… motor positions BEFORE the scan in #O order, detector lines
// such as #UIMDET and #UIMR5 at 34-ID-C), `#L` the column names (separated by two
// spaces, since names may hold one), then one line of numbers per point.
//
// The file is read once into memory and indexed by the byte offsets of its `#S` lines; a
// scan's lines are parsed only when asked for (a 4 MB file of 498 scans indexes in a few
// milliseconds and keeps one copy of its text).

/// A SPEC file that cannot be read as asked: one sentence naming the file and the problem.
public enum SPECError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case notSPEC(path: String)
    case scanMissing(path: String, scan: Int, available: String)
    case motorMissing(path: String, scan: Int, motor: String, available: [String])
    case columnMissing(path: String, scan: Int, column: String, available: [String])
    case headerMissing(path: String, scan: Int, line: String)
    case badLine(path: String, scan: Int, line: String, reason: String)
    case unsupportedCommand(path: String, scan: Int, command: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "cannot read the SPEC file \(p): \(r)"
        case .notSPEC(let p): return "\(p) is not a SPEC file: it has no '#S' scan line"
        case .scanMissing(let p, let s, let a): return "the SPEC file \(p) has no scan #S \(s) (it holds scans \(a))"
        case .motorMissing(let p, let s, let m, let a):
            return "scan #S \(s) of the SPEC file \(p) records no motor '\(m)'" + SPECError.listing(a, "motors")
        case .columnMissing(let p, let s, let c, let a):
            return "scan #S \(s) of the SPEC file \(p) has no data column '\(c)'" + SPECError.listing(a, "columns")
        case .headerMissing(let p, let s, let l):
            return "scan #S \(s) of the SPEC file \(p) has no '#\(l)' line"
        case .badLine(let p, let s, let l, let r):
            return "scan #S \(s) of the SPEC file \(p): cannot read the line '\(l.prefix(80))': \(r)"
        case .unsupportedCommand(let p, let s, let c):
            return "scan #S \(s) of the SPEC file \(p) is '\(c)', not a scan of one or more motors (ascan, dscan, lup, a2scan, d2scan, …)"
        }
    }

    static func listing(_ names: [String], _ what: String) -> String {
        names.isEmpty ? "" : " (its \(what): " + names.prefix(24).joined(separator: ", ") + (names.count > 24 ? ", …)" : ")")
    }
}

/// A motor scanned by a SPEC scan command, with its range in absolute positions.
public struct SPECScannedMotor: Equatable, Sendable {
    /// The motor's name (#O line), e.g. "Theta".
    public var name: String
    /// As the command wrote it (usually the mnemonic, e.g. "th").
    public var written: String
    /// First and last position (absolute; a relative command's range is added to the
    /// position before the scan).
    public var start: Double
    public var end: Double

    public init(name: String, written: String, start: Double, end: Double) {
        self.name = name; self.written = written; self.start = start; self.end = end
    }
}

/// One scan of a SPEC file, parsed.
public struct SPECScan: Sendable {
    public let path: String
    public let number: Int
    /// The command after the scan number, e.g. "ascan  th -0.279996 0.720004  200 0.25".
    public let command: String
    /// The command's name, e.g. "ascan".
    public let commandName: String
    /// Scanned motors (empty for time scans), their ranges, the number of intervals
    /// (points − 1) and the counting time per point (s; negative in SPEC means monitor counts).
    public let scannedMotors: [SPECScannedMotor]
    public let intervals: Int?
    public let countTime: Double?
    /// Motor positions before the scan (#P lines), by #O name, in #O order.
    public let motorNames: [String]
    public let motorPositions: [String: Double]
    /// Mnemonic (#o) → name (#O).
    public let mnemonics: [String: String]
    /// Data columns (#L) and one row of values per point.
    public let columns: [String]
    public let rows: [[Double]]
    /// Every other header line by its tag, e.g. "UIMDET" → "34idcTIM2:", "UIMR5" →
    /// "0 256 0 256 1", "D" → the date, "T" → "0.25  (Seconds)".
    public let header: [String: String]

    /// Points recorded.
    public var points: Int { rows.count }

    /// The motor's #O name for a name or a mnemonic.
    public func motorName(_ nameOrMnemonic: String) -> String? {
        if motorPositions[nameOrMnemonic] != nil { return nameOrMnemonic }
        if let n = mnemonics[nameOrMnemonic] { return n }
        let l = nameOrMnemonic.lowercased()
        return motorNames.first { $0.lowercased() == l }
    }

    /// A motor's position before the scan (#P), by name or mnemonic.
    public func position(_ motor: String) throws -> Double {
        guard let n = motorName(motor), let v = motorPositions[n] else {
            throw SPECError.motorMissing(path: path, scan: number, motor: motor, available: motorNames)
        }
        return v
    }

    /// A data column by its #L name, or nil.
    public func column(_ name: String) -> [Double]? {
        guard let i = columns.firstIndex(of: name) else { return nil }
        return rows.map { $0[i] }
    }

    /// A data column, or an error naming the scan and its columns.
    public func requireColumn(_ name: String) throws -> [Double] {
        guard let c = column(name) else {
            throw SPECError.columnMissing(path: path, scan: number, column: name, available: columns)
        }
        return c
    }

    /// The header line `#tag`, or an error naming the scan.
    public func requireHeader(_ tag: String) throws -> String {
        guard let v = header[tag] else { throw SPECError.headerMissing(path: path, scan: number, line: tag) }
        return v
    }
}

/// A SPEC file indexed by scan number.
public final class SPECFile: @unchecked Sendable {
    public let path: String
    let text: [UInt8]
    /// Byte range of each scan (from its #S line to the next #S or file header), and the
    /// file header (#O/#o lists) in force, in file order.
    let index: [(number: Int, range: Range<Int>, header: Int)]
    /// Motor names (#O) and mnemonics (#o) of each file header.
    let headers: [(names: [String], mnemonics: [String])]

    public init(path: String) throws {
        self.path = path
        guard let d = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw SPECError.unreadable(path: path, reason: "no such file")
            }
            throw SPECError.unreadable(path: path, reason: isDir.boolValue ? "it is a folder" : "permission denied or I/O error")
        }
        text = [UInt8](d)
        var idx: [(Int, Range<Int>, Int)] = []
        var hdrs: [(names: [String], mnemonics: [String])] = []
        var openScan: (number: Int, start: Int)? = nil
        let n = text.count
        var lineStart = 0
        while lineStart < n {
            var lineEnd = lineStart
            while lineEnd < n && text[lineEnd] != 0x0A { lineEnd += 1 }
            if text[lineStart] == 0x23, lineEnd - lineStart >= 2 {   // '#'
                let tag = text[lineStart + 1]
                let third = lineStart + 2 < lineEnd ? text[lineStart + 2] : 0
                if tag == 0x53 && (third == 0x20 || third == 0x09) {   // "#S "
                    if let o = openScan { idx.append((o.number, o.start..<lineStart, max(0, hdrs.count - 1))) }
                    let line = String(decoding: text[lineStart..<lineEnd], as: UTF8.self)
                    let fields = line.dropFirst(2).split(whereSeparator: { $0 == " " || $0 == "\t" })
                    openScan = fields.first.flatMap { Int($0) }.map { ($0, lineStart) }
                } else if tag == 0x46 || tag == 0x45 {                   // "#F", "#E": a new file header
                    if let o = openScan { idx.append((o.number, o.start..<lineStart, max(0, hdrs.count - 1))); openScan = nil }
                } else if (tag == 0x4F || tag == 0x6F), third >= 0x30 && third <= 0x39 {   // "#O<n>", "#o<n>"
                    if let o = openScan { idx.append((o.number, o.start..<lineStart, max(0, hdrs.count - 1))); openScan = nil }
                    let line = String(decoding: text[lineStart..<lineEnd], as: UTF8.self)
                    let body = line.drop(while: { $0 != " " && $0 != "\t" })
                    let isFirst = third == 0x30 && (lineStart + 3 >= lineEnd || text[lineStart + 3] == 0x20)
                    if tag == 0x4F {
                        if isFirst || hdrs.isEmpty { hdrs.append(([], [])) }
                        hdrs[hdrs.count - 1].names += SPECFile.names(body)
                    } else {
                        if hdrs.isEmpty { hdrs.append(([], [])) }
                        hdrs[hdrs.count - 1].mnemonics += body.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                    }
                }
            }
            lineStart = lineEnd + 1
        }
        if let o = openScan { idx.append((o.number, o.start..<n, max(0, hdrs.count - 1))) }
        guard !idx.isEmpty else { throw SPECError.notSPEC(path: path) }
        if hdrs.isEmpty { hdrs.append(([], [])) }
        index = idx.map { (number: $0.0, range: $0.1, header: $0.2) }
        headers = hdrs
    }

    /// Names separated by two or more spaces (SPEC's convention: a name may hold one space).
    static func names<S: StringProtocol>(_ s: S) -> [String] {
        s.replacingOccurrences(of: "\t", with: "  ").components(separatedBy: "  ")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The scan numbers, in file order.
    public var scanNumbers: [Int] { index.map(\.number) }

    /// The scan numbers as a short text ("1–498"), for messages.
    var scanRangeText: String {
        let s = scanNumbers
        guard let lo = s.min(), let hi = s.max() else { return "none" }
        return lo == hi ? "\(lo)" : "\(lo)–\(hi)"
    }

    /// Scan `number` (the last one of that number, when a file restarted its numbering).
    public func scan(_ number: Int) throws -> SPECScan {
        guard let entry = index.last(where: { $0.number == number }) else {
            throw SPECError.scanMissing(path: path, scan: number, available: scanRangeText)
        }
        let hdr = headers[entry.header]
        let body = String(decoding: text[entry.range], as: UTF8.self)
        var command = "", columns: [String] = [], rows: [[Double]] = [], header: [String: String] = [:]
        var positions: [Double] = []
        for raw in body.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.hasPrefix("#") {
                let tag = String(line.dropFirst().prefix(while: { $0 != " " && $0 != "\t" }))
                let value = String(line.dropFirst(1 + tag.count)).trimmingCharacters(in: .whitespaces)
                if tag == "S" {
                    command = String(value.drop(while: { $0 != " " && $0 != "\t" })).trimmingCharacters(in: .whitespaces)
                } else if tag == "L" {
                    columns = SPECFile.names(value)
                } else if tag.count >= 2, tag.hasPrefix("P"), Int(tag.dropFirst()) != nil {
                    for f in value.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                        guard let v = Double(f) else {
                            throw SPECError.badLine(path: path, scan: number, line: String(line), reason: "'\(f)' is not a number")
                        }
                        positions.append(v)
                    }
                } else {
                    header[tag] = value
                }
            } else if line.hasPrefix("@") {
                continue   // MCA spectra: not read
            } else {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if fields.isEmpty { continue }
                var row: [Double] = []
                row.reserveCapacity(fields.count)
                for f in fields {
                    guard let v = Double(f) else {
                        throw SPECError.badLine(path: path, scan: number, line: String(line), reason: "'\(f)' is not a number")
                    }
                    row.append(v)
                }
                guard row.count == columns.count else {
                    throw SPECError.badLine(path: path, scan: number, line: String(line),
                                            reason: "\(row.count) values for the \(columns.count) columns of its #L line")
                }
                rows.append(row)
            }
        }
        var motorPositions: [String: Double] = [:]
        for (k, name) in hdr.names.enumerated() where k < positions.count { motorPositions[name] = positions[k] }
        var mnemonics: [String: String] = [:]
        for (k, m) in hdr.mnemonics.enumerated() where k < hdr.names.count { mnemonics[m] = hdr.names[k] }

        // The command: "NAME m1 s1 e1 [m2 s2 e2 …] intervals time" for [ad]Nscan, dscan,
        // lup; relative commands (d…, lup) give ranges about the position before the scan.
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let name = words.first ?? ""
        var motors: [SPECScannedMotor] = []
        var intervals: Int? = nil
        var countTime: Double? = words.count >= 2 ? Double(words.last!) : nil
        let relative = name.hasPrefix("d") || name == "lup"
        var motorCount = 0
        if name == "ascan" || name == "dscan" || name == "lup" { motorCount = 1 }
        else if name.count == 6, name.hasSuffix("scan"), name.first == "a" || name.first == "d",
                let k = Int(String(name[name.index(after: name.startIndex)])) { motorCount = k }
        if motorCount > 0 {
            guard words.count == 1 + 3 * motorCount + 2 else {
                throw SPECError.badLine(path: path, scan: number, line: "#S \(number) \(command)",
                                        reason: "\(name) takes \(3 * motorCount + 2) arguments, not \(words.count - 1)")
            }
            for m in 0..<motorCount {
                let w = words[1 + 3 * m]
                guard let s = Double(words[2 + 3 * m]), let e = Double(words[3 + 3 * m]) else {
                    throw SPECError.badLine(path: path, scan: number, line: "#S \(number) \(command)", reason: "the range of \(w) is not numeric")
                }
                let n = motorPositions[w] != nil ? w : (mnemonics[w] ?? w)
                var offset = 0.0
                if relative {
                    guard let p = motorPositions[n] else {
                        throw SPECError.motorMissing(path: path, scan: number, motor: w, available: hdr.names)
                    }
                    offset = p
                }
                motors.append(SPECScannedMotor(name: n, written: w, start: s + offset, end: e + offset))
            }
            intervals = Int(words[1 + 3 * motorCount])
            countTime = Double(words[2 + 3 * motorCount])
        } else if name == "timescan" || name == "loopscan" || name == "ct" {
            countTime = words.count >= 2 ? Double(words[1]) : nil
        }
        if let t = header["T"], let v = Double(t.split(separator: " ").first ?? "") { countTime = v }
        return SPECScan(path: path, number: number, command: command, commandName: name, scannedMotors: motors,
                        intervals: intervals, countTime: countTime, motorNames: hdr.names, motorPositions: motorPositions,
                        mnemonics: mnemonics, columns: columns, rows: rows, header: header)
    }
}
