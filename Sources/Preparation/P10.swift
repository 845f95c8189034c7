import Foundation
import Numerics
import Formats

/// PETRA III P10: a Dectris Eiger master file and the scan's .fio file. Layout from bcdi
/// `experiment/loader.py` (LoaderP10) and cdiutils `io/p10.py` (P10Loader):
/// - folders: `{sample}_{scan:05d}/{sample}_{scan:05d}.fio` and
///   `{sample}_{scan:05d}/{e4m | e500}/{sample}_{scan:05d}_master.h5` (cdiutils _get_file_path)
/// - frames: `/entry/data/data_000001`, `data_000002`, … in order, each an external link to a
///   data file beside the master, compressed with bitshuffle + LZ4 (HDF5 filter 32008)
///   (bcdi load_data walks data_%06d until one is missing)
/// - .fio: `%p` lines `name = value` for the positioners, `%d` lines ` Col k name TYPE` naming
///   the columns of the data rows; circles om, mu, chi, phi (sample) and gam, del (detector);
///   the scanned one is a column (bcdi motor_positions, cdiutils load_angles); energy
///   `fmbenergy` in eV (both); monitor column `ipetra`, else `curpetra` (bcdi read_monitor)
/// - detector metadata of the master file, in Dectris's NXmx layout:
///   `/entry/instrument/detector/{x_pixel_size, y_pixel_size, detector_distance}` (m),
///   `beam_center_x`, `beam_center_y` (pixels), `count_time` (s),
///   `detectorSpecific/{x,y}_pixels_in_detector`. cdiutils notes that P10 keeps no calibrated
///   distance in its scan files, so the master's value is the detector's setting.
public enum P10 {
    /// P10's circles (EH1): sample mu, om, chi, phi; detector gam, del.
    public static let circles = ["mu", "om", "chi", "phi", "gam", "del"]

    /// A parsed .fio file: `%p` parameters and `%d` columns.
    public struct FIO {
        public var parameters: [String: Double] = [:]
        public var columns: [String] = []
        public var rows: [[Double]] = []
        public var commands: [String] = []

        public func column(_ name: String) -> [Double]? {
            guard let k = columns.firstIndex(of: name) else { return nil }
            return rows.compactMap { k < $0.count ? $0[k] : nil }
        }

        public static func read(_ path: String) throws -> FIO {
            guard FileManager.default.fileExists(atPath: path) else { throw FormatError.fileNotFound(path: path) }
            let text: String
            if let t = try? String(contentsOfFile: path, encoding: .utf8) { text = t }
            else if let t = try? String(contentsOfFile: path, encoding: .isoLatin1) { text = t }
            else { throw FormatError.unreadable(path: path, reason: "cannot be read as text") }
            var fio = FIO()
            var section = ""
            for raw in text.split(whereSeparator: \.isNewline) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("!") { continue }
                if line.hasPrefix("%") { section = String(line.prefix(2)); continue }
                switch section {
                case "%c": fio.commands.append(line)
                case "%p":
                    let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if parts.count == 2, let v = Double(parts[1]) { fio.parameters[parts[0]] = v }
                case "%d":
                    let w = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                    if w.first == "Col", w.count >= 3 {
                        fio.columns.append(w[2])
                    } else {
                        let v = w.map { Double($0) }
                        if !v.isEmpty, v.allSatisfy({ $0 != nil }) { fio.rows.append(v.map { $0! }) }
                    }
                default: break
                }
            }
            guard !fio.parameters.isEmpty || !fio.columns.isEmpty else {
                throw FormatError.badHeader(path: path, reason: "holds no %p parameters and no %d columns: not a P10 .fio file")
            }
            return fio
        }
    }

    /// The Eiger master file of a scan folder (in it, or one folder down: e4m/, e500/).
    static func masterFile(near dir: String) -> String? {
        let fm = FileManager.default
        func masters(_ d: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasSuffix("_master.h5") }.sorted().map { d + "/" + $0 }
        }
        if let m = masters(dir).first { return m }
        for sub in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: dir + "/" + sub, isDirectory: &isDir), isDir.boolValue, let m = masters(dir + "/" + sub).first { return m }
        }
        return nil
    }

    /// The .fio file of a master file: `{stem}.fio` in the scan folder (the master's parent) or beside it.
    static func fioFile(forMaster master: String) -> String? {
        let url = URL(fileURLWithPath: master)
        let stem = String(url.lastPathComponent.dropLast("_master.h5".count))
        let here = url.deletingLastPathComponent()
        for d in [here.deletingLastPathComponent(), here] {
            let p = d.appendingPathComponent(stem + ".fio").path
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }

    /// Reads a scan from its master file, its .fio file or its folder. `scan`: with an
    /// experiment folder, the scan folder `*_{scan:05d}` inside it.
    public static func read(path: String, scan: String? = nil) throws -> BeamlineScan {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        _ = fm.fileExists(atPath: path, isDirectory: &isDir)
        var master: String?, fio: String?
        if isDir.boolValue {
            var dir = path
            if let s = scan, let n = Int(s) {
                let want = String(format: "_%05d", n)
                if let sub = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted().first(where: { $0.hasSuffix(want) }) {
                    dir = path + "/" + sub
                }
            }
            master = masterFile(near: dir)
            guard master != nil else {
                throw BeamlineError.missing(path: dir, what: "Eiger master file (*_master.h5, here or in e4m/)", tried: (try? fm.contentsOfDirectory(atPath: dir).sorted()) ?? [])
            }
            fio = fioFile(forMaster: master!)
        } else if path.lowercased().hasSuffix(".fio") {
            fio = path
            let url = URL(fileURLWithPath: path)
            let stem = url.deletingPathExtension().lastPathComponent
            let dir = url.deletingLastPathComponent().path
            master = masterFile(near: dir).flatMap { $0.hasSuffix(stem + "_master.h5") ? $0 : nil } ?? masterFile(near: dir)
            guard master != nil else {
                throw BeamlineError.missing(path: dir, what: "Eiger master file \(stem)_master.h5 for \(path) (looked here and in its detector folders)", tried: [])
            }
        } else {
            master = path
            fio = fioFile(forMaster: path)
        }
        var s = try readMaster(master!)
        if let fp = fio {
            try apply(FIO.read(fp), fio: fp, to: &s)
        } else {
            s.notes["fio"] = "no .fio file found beside \(master!): angles and energy unknown"
        }
        return s
    }

    /// Frames and detector metadata of an Eiger master file.
    static func readMaster(_ path: String) throws -> BeamlineScan {
        let f = try HDF5File(reading: path)
        var blocks = [FrameStack]()
        var k = 1
        while true {
            let name = String(format: "/entry/data/data_%06d", k)
            guard f.exists(name) else { break }
            guard f.isDataset(name) else {
                throw FormatError.unreadable(path: path, reason: "\(name) is a link to a data file that cannot be opened (the Eiger's data files must sit beside the master file, as written)")
            }
            try f.checkFilters(of: name)
            blocks.append(try HDF5FrameStack(path: path, dataset: name))
            k += 1
        }
        guard !blocks.isEmpty else {
            throw BeamlineError.missing(path: path, what: "Eiger frames", tried: ["/entry/data/data_000001"])
        }
        let frames = blocks.count == 1 ? blocks[0] : try ConcatenatedFrameStack(blocks)
        let name = URL(fileURLWithPath: path).lastPathComponent.replacingOccurrences(of: "_master.h5", with: "")
        var s = BeamlineScan(beamline: .petraP10, frames: frames, scanName: name)
        let d = "/entry/instrument/detector"
        if let px = ScanValues.length(f, "\(d)/x_pixel_size"), let py = ScanValues.length(f, "\(d)/y_pixel_size") {
            s.pixelSize = (py, px)
        }
        s.distance = ScanValues.length(f, "\(d)/detector_distance")
        if let by = ScanValues.first(f, "\(d)/beam_center_y"), let bx = ScanValues.first(f, "\(d)/beam_center_x") {
            s.directBeam = (by, bx)
        }
        s.countTime = ScanValues.first(f, "\(d)/count_time")
        if let rows = ScanValues.first(f, "\(d)/detectorSpecific/y_pixels_in_detector"),
           let cols = ScanValues.first(f, "\(d)/detectorSpecific/x_pixels_in_detector") {
            s.detectorShape = (Int(rows), Int(cols))
        }
        // Photon energy from the wavelength the Eiger was set to (Å), until the .fio gives fmbenergy.
        if let w = ScanValues.first(f, "/entry/instrument/beam/incident_wavelength"), w > 0 {
            s.energy = 12398.419843320026 / w
        }
        return s
    }

    static func apply(_ fio: FIO, fio path: String, to s: inout BeamlineScan) throws {
        let n = s.frames.shape[0]
        var arrays = [String: [Double]]()
        for c in circles {
            if let v = fio.parameters[c] { s.angles[c] = v }
            if let col = fio.column(c), !col.isEmpty {
                s.angles[c] = col[0]
                if col.count == n { arrays[c] = col }
            }
        }
        if !fio.rows.isEmpty && fio.rows.count != n {
            throw FormatError.wrongShape(path: path, dataset: nil, reason: "has \(fio.rows.count) data rows but the Eiger master file has \(n) frames")
        }
        if let (m, step) = ScanValues.rocking(arrays, frames: n) { s.rockingMotor = m; s.rockingStep = step }
        if let e = fio.parameters["fmbenergy"] { s.energy = e }
        if let m = fio.column("ipetra") ?? fio.column("curpetra"), m.count == n { s.monitor = m }
        s.notes["fio"] = path
    }
}
