import Foundation
import Numerics
import Formats

// One entry point for the beamline readers: `BeamlineReaders.open` reads a scan of a named
// beamline, or finds the beamline from what the file says (BLISS scan groups, an Eiger master
// file with its .fio, Diamond's entry1, SOLEIL's com/scan_data, a NeXus NXdetector). An
// unknown layout is refused with one message listing what the file holds.

/// A scan file that is not what a beamline reader expects.
public enum BeamlineError: Error, CustomStringConvertible {
    case unknownLayout(path: String, groups: [String], frames: [String])
    case missing(path: String, what: String, tried: [String])
    case scanNotFound(path: String, scan: String, available: [String])
    case scanNeeded(path: String, available: [String])
    case notThisBeamline(path: String, beamline: Beamline, reason: String)

    public var description: String {
        func list(_ a: [String]) -> String { a.isEmpty ? "none" : a.prefix(12).joined(separator: ", ") + (a.count > 12 ? ", … (\(a.count) in all)" : "") }
        switch self {
        case .unknownLayout(let p, let g, let f):
            return "\(p) is not a scan layout BraggKit knows (ESRF ID01 BLISS, PETRA III P10 Eiger master + .fio, Diamond I16/I13 NeXus, SOLEIL SIXS, NeXus NXdetector): its top-level groups are \(list(g)) and its 3D datasets \(list(f)); name the frames with FILE:DATASET and give the geometry as options"
        case .missing(let p, let w, let t):
            return "\(p) holds no \(w) (looked at \(list(t)))"
        case .scanNotFound(let p, let s, let a):
            return "\(p) holds no scan \(s); its scans are \(list(a))"
        case .scanNeeded(let p, let a):
            return "\(p) holds several scans (\(list(a))); choose one"
        case .notThisBeamline(let p, let b, let r):
            return "\(p) does not hold a scan in the \(b.rawValue) layout: \(r)"
        }
    }
}

/// Frames of several stacks of the same frame shape, read one after the other (the Eiger
/// master file's data_000001, data_000002, … blocks).
public final class ConcatenatedFrameStack: FrameStack, FrameBufferFilling {
    public let parts: [FrameStack]
    public let shape: [Int]
    let first: [Int]
    public var source: String {
        parts.count == 1 ? parts[0].source : "\(parts[0].source) … (\(parts.count) blocks)"
    }

    public init(_ parts: [FrameStack]) throws {
        guard let p0 = parts.first else { throw PreparationError.noScans }
        for p in parts where Array(p.shape.dropFirst()) != Array(p0.shape.dropFirst()) {
            throw FormatError.wrongShape(path: p.source, dataset: nil, reason: "has \(p.shape[1])×\(p.shape[2])-pixel frames but \(p0.source) has \(p0.shape[1])×\(p0.shape[2])")
        }
        self.parts = parts
        var f = [Int](), n = 0
        for p in parts { f.append(n); n += p.shape[0] }
        first = f
        shape = [n] + Array(p0.shape.dropFirst())
    }

    public func readFrames(_ range: Range<Int>) throws -> RealVolume { try framesVolume(range) }

    package func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        let fp = shape[1] * shape[2]
        for (k, p) in parts.enumerated() {
            let lo = max(range.lowerBound, first[k]), hi = min(range.upperBound, first[k] + p.shape[0])
            guard lo < hi else { continue }
            try p.readFrames((lo - first[k])..<(hi - first[k]), into: buffer + (lo - range.lowerBound) * fp)
        }
    }

    public func finishedReading() { parts.forEach { $0.finishedReading() } }
}

/// Reading helpers shared by the HDF5 beamline readers: values with their units converted,
/// scalars or per-point arrays, and the scanned motor.
enum ScanValues {
    static func unit(_ f: HDF5File, _ p: String) -> String {
        ((try? f.attribute("units", of: p))??.stringValue ?? "").trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// All values of a numeric dataset (nil when absent or not numeric).
    static func values(_ f: HDF5File, _ p: String) -> [Double]? {
        guard f.isDataset(p), let v = try? f.readDoubles(p), !v.isEmpty else { return nil }
        return v
    }

    static func first(_ f: HDF5File, _ p: String) -> Double? { values(f, p)?.first(where: { $0.isFinite }) }

    /// A length in metres from its units; `bare` is the unit assumed when the file gives none.
    static func metres(_ v: Double, _ u: String, bare: String = "m") -> Double {
        switch u.isEmpty ? bare : u {
        case "mm", "millimetre", "millimeter", "millimetres", "millimeters": return v * 1e-3
        case "um", "µm", "micron", "microns", "micrometre", "micrometer": return v * 1e-6
        case "cm": return v * 1e-2
        case "nm": return v * 1e-9
        default: return v
        }
    }

    static func length(_ f: HDF5File, _ p: String, bare: String = "m") -> Double? {
        first(f, p).map { metres($0, unit(f, p), bare: bare) }
    }

    /// An energy in eV; `bare` is the unit assumed when the file gives none.
    static func electronVolts(_ v: Double, _ u: String, bare: String) -> Double {
        switch u.isEmpty ? bare : u {
        case "kev": return v * 1e3
        case "j": return v / 1.602176634e-19
        case "mev": return v * 1e6
        default: return v
        }
    }

    static func energy(_ f: HDF5File, _ p: String, bare: String) -> Double? {
        first(f, p).map { electronVolts($0, unit(f, p), bare: bare) }
    }

    /// Degrees (files in radians say so in their units).
    static func degrees(_ v: Double, _ u: String) -> Double { u.hasPrefix("rad") ? v * 180 / .pi : v }

    /// The motor that moved during the scan: among the per-frame arrays (length `frames`),
    /// the one with the largest range; its step is the mean step (last − first)/(n − 1).
    static func rocking(_ arrays: [String: [Double]], frames: Int) -> (motor: String, step: Double)? {
        var best: (String, Double, Double)?
        for (name, v) in arrays where v.count == frames && frames > 1 {
            let range = (v.max() ?? 0) - (v.min() ?? 0)
            guard range > 1e-9 else { continue }
            if best == nil || range > best!.1 || (range == best!.1 && name < best!.0) {
                best = (name, range, (v.last! - v.first!) / Double(frames - 1))
            }
        }
        return best.map { ($0.0, $0.2) }
    }

    /// Names of the top-level groups and every 3D dataset of a file, for the unknown-layout message.
    static func inventory(_ f: HDF5File) -> (groups: [String], frames: [String]) {
        let top = ((try? f.members(of: "/")) ?? []).filter { f.isGroup("/" + $0) }
        let threeD = ((try? f.datasets()) ?? []).filter { $0.shape.count == 3 }.compactMap { n -> String? in
            guard let name = n.name else { return nil }
            return "\(name) (\(n.shape.map(String.init).joined(separator: "×")))"
        }
        return (top, threeD)
    }
}

public enum BeamlineReaders {
    /// Reads one scan. `beamline` nil: found from the file (`detect`). `scan` names the scan
    /// where a file holds several (BLISS: the number before ".1"; P10: the number in the
    /// folder name, when `path` is the experiment folder).
    public static func open(path: String, beamline: Beamline? = nil, scan: String? = nil) throws -> BeamlineScan {
        guard FileManager.default.fileExists(atPath: path) else { throw FormatError.fileNotFound(path: path) }
        let b: Beamline
        if let given = beamline {
            b = given
        } else if let found = try detect(path: path) {
            b = found
        } else {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            if isDir.boolValue {
                throw BeamlineError.missing(path: path, what: "scan file BraggKit can read by itself (an Eiger *_master.h5 with a .fio, or an HDF5/NeXus scan file)", tried: (try? FileManager.default.contentsOfDirectory(atPath: path).sorted()) ?? [])
            }
            let f = try HDF5File(reading: path)
            let inv = ScanValues.inventory(f)
            throw BeamlineError.unknownLayout(path: path, groups: inv.groups, frames: inv.frames)
        }
        switch b {
        case .esrfID01: return try ID01.read(path: path, scan: scan)
        case .petraP10: return try P10.read(path: path, scan: scan)
        case .diamondI16: return try DiamondNeXus.read(path: path)
        case .nexus: return try NeXusScan.read(path: path)
        case .soleilSIXS: return try SIXS.read(path: path)
        case .aps34IDC:
            throw BeamlineError.notThisBeamline(path: path, beamline: b, reason: "34-ID-C scans are a TIFF folder with a SPEC file: give the SPEC file and the scan number")
        }
    }

    /// The beamline a file or folder comes from, by its layout; nil when it is none of them.
    public static func detect(path: String) throws -> Beamline? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw FormatError.fileNotFound(path: path) }
        let lower = path.lowercased()
        if isDir.boolValue { return P10.masterFile(near: path) != nil ? .petraP10 : nil }
        if lower.hasSuffix(".fio") || lower.hasSuffix("_master.h5") { return .petraP10 }
        guard FileFormat.from(path: path) == .hdf5 else { return nil }
        let f = try HDF5File(reading: path)
        let top = (try? f.members(of: "/")) ?? []
        if !ID01.scanGroups(f).isEmpty { return .esrfID01 }
        if f.isGroup("/com/scan_data") { return .soleilSIXS }
        if DiamondNeXus.recognises(f) { return .diamondI16 }
        if f.isGroup("/entry/data"), top.contains("entry"), f.isDataset("/entry/data/data_000001") { return .petraP10 }
        if NeXusScan.detectorGroup(f) != nil { return .nexus }
        return nil
    }

    /// For `bragg prepare`: the scans named on the command line as beamline scans, or nil
    /// when they are plain frame files (TIFF, .npy, an HDF5 file of no known layout without
    /// --beamline), which the caller then opens as before.
    public static func scans(_ paths: [String], beamline: String?, scan: String?) throws -> [BeamlineScan]? {
        var b: Beamline?
        if let name = beamline {
            guard let v = Beamline(rawValue: name.lowercased()) else {
                throw PreparationError.unknownBeamline(name)
            }
            if v == .aps34IDC { return nil }
            b = v
        } else {
            // Auto-detection only where every scan's layout is known; plain stacks stay plain.
            // (a generic NeXus file keeps being read as a plain stack plus NeXusGeometry).
            for p in paths {
                guard let d = try? detect(path: p), d != .nexus else { return nil }
            }
        }
        return try paths.map { try open(path: $0, beamline: b, scan: scan) }
    }
}

extension BeamlineScan {
    /// The numbers of the geometry a CXI file stores that need no diffractometer model:
    /// energy (eV), distance (m), pixel size (m, square pixels: the columns'), rocking step (rad).
    public var basicGeometry: CXIGeometry {
        var g = CXIGeometry()
        g.energy = energy
        g.detectorDistance = distance
        g.pixelSize = pixelSize?.column
        g.rockingStep = rockingStep.map { abs($0) * .pi / 180 }
        return g
    }

    /// One line for `bragg prepare`: what the reader found.
    public var summary: String {
        var parts = ["\(beamline.rawValue) scan \(scanName): \(frames.shape.map(String.init).joined(separator: "×")) frames"]
        if let e = energy { parts.append(String(format: "%.1f eV", e)) }
        if let d = distance { parts.append(String(format: "distance %.4g m", d)) }
        if let p = pixelSize { parts.append(String(format: "pixel %.3g×%.3g µm", p.row * 1e6, p.column * 1e6)) }
        if let m = rockingMotor, let s = rockingStep { parts.append(String(format: "rocking %@ by %.5g°", m, s)) }
        let a = angles.keys.sorted().map { String(format: "%@ %.4f", $0, angles[$0]!) }
        if !a.isEmpty { parts.append("angles " + a.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }
}
