import Foundation
import Numerics
import Formats

/// Generic NeXus scans: frames in an `NXdetector` group's `data` (NeXus base class
/// NXdetector: `data`, `distance`, `x_pixel_size`, `y_pixel_size`, `beam_center_x`,
/// `beam_center_y`), circles found by following `depends_on` chains through
/// `NXtransformations` (NeXus base class NXtransformations: each axis a dataset with
/// attributes `transformation_type` = rotation | translation, `vector`, `units`, and
/// `depends_on` naming the next axis, "." ending the chain), from `NXsample/depends_on` and
/// `NXdetector/depends_on`; energy in `NXbeam/incident_energy` (or `incident_wavelength`),
/// `NXmonochromator/energy` or `NXsource/energy`; monitor in the first `NXmonitor`'s `data`.
/// Every circle is named by its dataset's name (e.g. omega, phi, two_theta).
public enum NeXusScan {
    static func nxClass(_ f: HDF5File, _ p: String) -> String? {
        (try? f.attribute("NX_class", of: p))??.stringValue
    }

    static func groups(_ f: HDF5File, in parent: String, ofClass c: String) -> [String] {
        ((try? f.members(of: parent)) ?? []).sorted().map { parent == "/" ? "/" + $0 : parent + "/" + $0 }
            .filter { f.isGroup($0) && nxClass(f, $0) == c }
    }

    /// The first NXentry (or /entry, /entry1).
    static func entry(_ f: HDF5File) -> String? {
        groups(f, in: "/", ofClass: "NXentry").first ?? ["/entry", "/entry1"].first { f.isGroup($0) }
    }

    /// The NXdetector group holding 3D frames in `data`.
    static func detectorGroup(_ f: HDF5File) -> String? {
        guard let e = entry(f) else { return nil }
        let inst = groups(f, in: e, ofClass: "NXinstrument").first ?? "\(e)/instrument"
        guard f.isGroup(inst) else { return nil }
        return groups(f, in: inst, ofClass: "NXdetector").first { (try? f.shape(of: "\($0)/data"))?.count == 3 }
    }

    /// The circles along a depends_on chain starting at `start` (a dataset or group holding a
    /// `depends_on` dataset or attribute): rotation name → values in degrees.
    static func chain(_ f: HDF5File, from start: String) -> [(name: String, values: [Double])] {
        func parent(_ p: String) -> String { let u = URL(fileURLWithPath: p).deletingLastPathComponent().path; return u.isEmpty ? "/" : u }
        func resolve(_ target: String, from p: String) -> String {
            target.hasPrefix("/") ? target : (parent(p) as NSString).appendingPathComponent(target)
        }
        var out = [(String, [Double])]()
        var next: String?
        if f.isDataset("\(start)/depends_on") {
            next = (try? f.readString("\(start)/depends_on")).map { resolve($0, from: "\(start)/depends_on") }
        }
        var seen = Set<String>()
        while let p = next, p != ".", !p.hasSuffix("/."), !seen.contains(p), seen.count < 32 {
            seen.insert(p)
            guard f.isDataset(p) else { break }
            let type = (try? f.attribute("transformation_type", of: p))??.stringValue?.lowercased()
            if type == "rotation", let v = ScanValues.values(f, p) {
                let u = ScanValues.unit(f, p)
                out.append((URL(fileURLWithPath: p).lastPathComponent, v.map { ScanValues.degrees($0, u) }))
            }
            guard let d = (try? f.attribute("depends_on", of: p))??.stringValue, d != "." else { break }
            next = resolve(d, from: p)
        }
        return out
    }

    public static func read(path: String) throws -> BeamlineScan {
        let f = try HDF5File(reading: path)
        guard let det = detectorGroup(f), let e = entry(f) else {
            let inv = ScanValues.inventory(f)
            throw BeamlineError.unknownLayout(path: path, groups: inv.groups, frames: inv.frames)
        }
        try f.checkFilters(of: "\(det)/data")
        let frames = try HDF5FrameStack(path: path, dataset: "\(det)/data")
        let n = frames.shape[0]
        var s = BeamlineScan(beamline: .nexus, frames: frames, scanName: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        s.distance = ScanValues.length(f, "\(det)/distance") ?? ScanValues.length(f, "\(det)/detector_distance")
        if let px = ScanValues.length(f, "\(det)/x_pixel_size") {
            s.pixelSize = (ScanValues.length(f, "\(det)/y_pixel_size") ?? px, px)
        }
        if let bx = ScanValues.first(f, "\(det)/beam_center_x"), let by = ScanValues.first(f, "\(det)/beam_center_y") {
            // In pixels, or a length on the detector (then divided by the pixel size).
            let u = ScanValues.unit(f, "\(det)/beam_center_x")
            if ["", "pixel", "pixels"].contains(u) { s.directBeam = (by, bx) }
            else if let p = s.pixelSize { s.directBeam = (ScanValues.metres(by, u) / p.row, ScanValues.metres(bx, u) / p.column) }
        }
        s.countTime = ScanValues.first(f, "\(det)/count_time")

        let inst = URL(fileURLWithPath: det).deletingLastPathComponent().path
        var energy: Double?
        for b in groups(f, in: inst, ofClass: "NXbeam") + groups(f, in: "\(e)/sample", ofClass: "NXbeam") + ["\(inst)/beam"] where energy == nil {
            energy = ScanValues.energy(f, "\(b)/incident_energy", bare: "ev")
            if energy == nil, let w = ScanValues.first(f, "\(b)/incident_wavelength"), w > 0 {
                let u = ScanValues.unit(f, "\(b)/incident_wavelength")
                let metres = (u.isEmpty || u == "angstrom" || u == "å" || u == "a") ? w * 1e-10 : ScanValues.metres(w, u)
                energy = 12398.419843320026e-10 / metres
            }
        }
        for m in groups(f, in: inst, ofClass: "NXmonochromator") + groups(f, in: inst, ofClass: "NXsource") where energy == nil {
            energy = ScanValues.energy(f, "\(m)/energy", bare: "ev")
        }
        s.energy = energy ?? NeXusGeometry.read(from: f).energy

        var arrays = [String: [Double]]()
        let sample = groups(f, in: e, ofClass: "NXsample").first ?? "\(e)/sample"
        for start in [sample, det] {
            for (name, v) in chain(f, from: start) {
                s.angles[name] = v[0]
                if v.count == n { arrays[name] = v }
            }
        }
        if let (m, step) = ScanValues.rocking(arrays, frames: n) { s.rockingMotor = m; s.rockingStep = step }
        if let mon = groups(f, in: e, ofClass: "NXmonitor").first, let m = ScanValues.values(f, "\(mon)/data"), m.count == n {
            s.monitor = m
        }
        s.notes["detector"] = det
        return s
    }
}

/// Diamond I16 and I13-1 NeXus scans, in GDA's two layouts:
/// - `entry1` (GDA's classic scan files): Excalibur/Merlin frames at
///   `entry1/instrument/{excalibur|merlin}/data` or `entry1/{excalibur|merlin}/data` (the
///   detector's NXdata); positioners before the scan at
///   `entry1/before_scan/diffractometer_sample/{mu, delta, gam, eta, chi, phi}` (I16's
///   diffractometer; a public I16 diffractometer model reads its motors from
///   'entry1/before_scan/diffractometer_sample/'); the scanned motor's values in
///   `entry1/measurement/{name}` (hdfmap's "I16 historic scan": scan arrays in
///   entry1/measurement, metadata in entry1/before_scan) or beside the frames; energy
///   `entry1/before_scan/mono/en` (keV; hdfmap's I16 test file); monitor `ic1monitor`.
/// - `entry` (I16's newer NeXus, cdiutils `io/i16.py` I16Loader): the first NXdetector
///   under `entry/instrument` with `data`; angles `entry/instrument/diffractometer_sample/*`,
///   scanned ones in `entry/measurement/*`; energy `entry/sample/beam/incident_energy`
///   (keV); distance `entry/instrument/{detector}/transformations/origin_offset`; pixel sizes
///   `{detector}/module/fast_pixel_direction` (columns) and `slow_pixel_direction` (rows).
/// Where a file records no pixel size, Excalibur and Merlin (Medipix3 sensors) have 55 µm
/// pixels; the scan's notes say that this was assumed.
public enum DiamondNeXus {
    public static let circles = ["mu", "eta", "chi", "phi", "delta", "gam"]
    static let detectors = ["excalibur", "merlin", "pil3_100k", "pil2m"]
    static let medipix3 = ["excalibur", "merlin"]

    static func recognises(_ f: HDF5File) -> Bool {
        if f.isGroup("/entry1") && (f.isGroup("/entry1/before_scan") || classicFrames(f) != nil) { return true }
        if f.isGroup("/entry/instrument/diffractometer_sample") { return true }
        if let name = try? f.readString("/entry/instrument/name"), name.lowercased().contains("i16") || name.lowercased().contains("i13") { return true }
        return false
    }

    /// A dataset's `vector` attribute as a unit vector (nil when absent or zero).
    static func pixelVector(_ f: HDF5File, _ p: String) -> SIMD3<Double>? {
        guard f.isDataset(p), let a = try? f.attribute("vector", of: p) else { return nil }
        let v: [Double]
        switch a {
        case .doubles(let d): v = d
        case .ints(let i): v = i.map(Double.init)
        default: return nil
        }
        guard v.count == 3, v.allSatisfy(\.isFinite) else { return nil }
        let s = SIMD3(v[0], v[1], v[2]), n = (s * s).sum().squareRoot()
        return n > 0 ? s / n : nil
    }

    static func classicFrames(_ f: HDF5File) -> String? {
        for d in detectors {
            for p in ["/entry1/instrument/\(d)/data", "/entry1/\(d)/data"] where (try? f.shape(of: p))?.count == 3 { return p }
        }
        return nil
    }

    public static func read(path: String) throws -> BeamlineScan {
        let f = try HDF5File(reading: path)
        let framesPath: String
        let anglesGroup: String, measurement: String, energyPath: String
        if f.isGroup("/entry1") {
            guard let p = classicFrames(f) else {
                throw BeamlineError.missing(path: path, what: "Excalibur/Merlin frames", tried: detectors.flatMap { ["/entry1/instrument/\($0)/data", "/entry1/\($0)/data"] })
            }
            framesPath = p
            anglesGroup = "/entry1/before_scan/diffractometer_sample"
            measurement = "/entry1/measurement"
            energyPath = "/entry1/before_scan/mono/en"
        } else {
            guard let det = NeXusScan.detectorGroup(f) else {
                let inv = ScanValues.inventory(f)
                throw BeamlineError.unknownLayout(path: path, groups: inv.groups, frames: inv.frames)
            }
            framesPath = "\(det)/data"
            anglesGroup = "/entry/instrument/diffractometer_sample"
            measurement = "/entry/measurement"
            energyPath = "/entry/sample/beam/incident_energy"
        }
        try f.checkFilters(of: framesPath)
        let frames = try HDF5FrameStack(path: path, dataset: framesPath)
        let n = frames.shape[0]
        let det = URL(fileURLWithPath: framesPath).deletingLastPathComponent().path
        let detName = URL(fileURLWithPath: det).lastPathComponent
        var s = BeamlineScan(beamline: .diamondI16, frames: frames, scanName: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        var arrays = [String: [Double]]()
        for c in circles {
            if let v = ScanValues.values(f, "\(anglesGroup)/\(c)") {
                s.angles[c] = v[0]
                if v.count == n { arrays[c] = v }
            }
            // The scanned motor: its values per point in measurement, or beside the frames.
            if let v = ScanValues.values(f, "\(measurement)/\(c)") ?? ScanValues.values(f, "\(det)/\(c)"), v.count == n {
                s.angles[c] = v[0]
                arrays[c] = v
            }
        }
        if let (m, step) = ScanValues.rocking(arrays, frames: n) { s.rockingMotor = m; s.rockingStep = step }
        s.energy = ScanValues.energy(f, energyPath, bare: "kev")
        s.distance = ScanValues.length(f, "\(det)/distance") ?? ScanValues.length(f, "\(det)/transformations/origin_offset")
        if let px = ScanValues.length(f, "\(det)/x_pixel_size") ?? ScanValues.length(f, "\(det)/module/fast_pixel_direction") {
            s.pixelSize = (ScanValues.length(f, "\(det)/y_pixel_size") ?? ScanValues.length(f, "\(det)/module/slow_pixel_direction") ?? px, px)
        } else if medipix3.contains(detName) {
            s.pixelSize = (55e-6, 55e-6)
            s.notes["pixel_size"] = "55 µm assumed (\(detName) is a Medipix3 detector; the file records no pixel size)"
        }
        // The module's pixel axes (NeXus: the `vector` attribute of fast_pixel_direction and
        // slow_pixel_direction, in the NeXus frame at zero detector angles, which is
        // BraggKit's lab frame: x horizontal, y up, z along the beam).
        if let fast = pixelVector(f, "\(det)/module/fast_pixel_direction"),
           let slow = pixelVector(f, "\(det)/module/slow_pixel_direction") {
            s.pixelDirections = (slow, fast)
        }
        if let ci = ScanValues.first(f, "/entry/instrument/\(detName)_centre_i"), let cj = ScanValues.first(f, "/entry/instrument/\(detName)_centre_j") {
            s.directBeam = (ci, cj)
        }
        if let m = ScanValues.values(f, "\(measurement)/ic1monitor") ?? ScanValues.values(f, "\(det)/ic1monitor"), m.count == n { s.monitor = m }
        s.notes["detector"] = detName
        return s
    }
}
