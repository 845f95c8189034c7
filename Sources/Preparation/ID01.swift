import Foundation
import Numerics
import Formats

/// ESRF ID01 after BLISS: one HDF5 file per sample holding every scan as a top-level group
/// `{sample}_{scan}.1`. Paths follow the two peer loaders that read these files:
/// cdiutils `io/id01.py` (ID01Loader) and bcdi `experiment/loader.py` (LoaderID01BLISS):
/// - frames: `{scan}.1/measurement/{mpx1x4 | mpxgaas | eiger2M}` (both loaders)
/// - circles: `{scan}.1/instrument/positioners/{mu, eta, phi, nu, delta}`, a number, or an
///   array (one value per frame) for the scanned one (both loaders; bcdi reads mu, eta,
///   phi, nu, delta; cdiutils maps eta/phi/delta/nu)
/// - energy: `{scan}.1/instrument/positioners/mononrj`, keV (cdiutils load_energy)
/// - distance, pixel sizes, direct beam: `{scan}.1/instrument/{detector}/distance`,
///   `y_pixel_size`, `x_pixel_size` (m), `beam_center_y`, `beam_center_x` (pixels)
///   (cdiutils load_det_calib_params); full detector shape `dim_j` (rows), `dim_i`
///   (columns) (cdiutils load_detector_shape)
/// - monitor: `{scan}.1/measurement/imon` (bcdi read_monitor's default)
public enum ID01 {
    public static let detectors = ["mpx1x4", "mpxgaas", "eiger2M"]
    /// ID01's circles: sample mu, eta, phi; detector nu, delta.
    public static let circles = ["mu", "eta", "phi", "nu", "delta"]

    /// The BLISS scan groups of a file (`{sample}_{n}.1` or `{n}.1` with a measurement group).
    static func scanGroups(_ f: HDF5File) -> [String] {
        ((try? f.members(of: "/")) ?? []).filter { name in
            guard name.hasSuffix(".1") else { return false }
            let stem = name.dropLast(2)
            let number = stem.split(separator: "_").last.map(String.init) ?? String(stem)
            return Int(number) != nil && f.isGroup("/\(name)/measurement") && f.isGroup("/\(name)/instrument/positioners")
        }.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
    }

    static func detector(_ f: HDF5File, _ g: String) -> String? {
        detectors.first { f.isDataset("/\(g)/measurement/\($0)") && ((try? f.shape(of: "/\(g)/measurement/\($0)"))?.count == 3) }
    }

    /// The scan group `scan` names ("12", "12.1", "sample_12" or "sample_12.1"); nil: the
    /// file's only scan with detector frames.
    static func group(_ f: HDF5File, _ scan: String?) throws -> String {
        let all = scanGroups(f)
        if let s = scan {
            let want = s.hasSuffix(".1") ? String(s.dropLast(2)) : s
            if let g = all.first(where: { String($0.dropLast(2)) == want }) { return g }
            if let g = all.first(where: { $0.dropLast(2).split(separator: "_").last.map(String.init) == want }) { return g }
            throw BeamlineError.scanNotFound(path: f.path, scan: s, available: all)
        }
        let withFrames = all.filter { detector(f, $0) != nil }
        if withFrames.count == 1 { return withFrames[0] }
        if withFrames.isEmpty {
            throw BeamlineError.missing(path: f.path, what: "scan with detector frames", tried: all.flatMap { g in detectors.map { "/\(g)/measurement/\($0)" } })
        }
        throw BeamlineError.scanNeeded(path: f.path, available: withFrames)
    }

    public static func read(path: String, scan: String? = nil) throws -> BeamlineScan {
        let f = try HDF5File(reading: path)
        let groups = scanGroups(f)
        guard !groups.isEmpty else {
            throw BeamlineError.notThisBeamline(path: path, beamline: .esrfID01, reason: "it has no BLISS scan group ({sample}_{scan}.1 with measurement/ and instrument/positioners/)")
        }
        let g = try group(f, scan)
        guard let det = detector(f, g) else {
            throw BeamlineError.missing(path: path, what: "detector frames in scan \(g)", tried: detectors.map { "/\(g)/measurement/\($0)" })
        }
        try f.checkFilters(of: "/\(g)/measurement/\(det)")
        let frames = try HDF5FrameStack(path: path, dataset: "/\(g)/measurement/\(det)")
        let n = frames.shape[0]
        var s = BeamlineScan(beamline: .esrfID01, frames: frames, scanName: String(g.dropLast(2)))

        let pos = "/\(g)/instrument/positioners"
        var arrays = [String: [Double]]()
        for c in circles {
            // The scanned motor is an array in positioners and in measurement.
            let v = ScanValues.values(f, "\(pos)/\(c)") ?? ScanValues.values(f, "/\(g)/measurement/\(c)")
            guard let v else { continue }
            s.angles[c] = v[0]
            if v.count == n { arrays[c] = v }
        }
        if let (m, step) = ScanValues.rocking(arrays, frames: n) { s.rockingMotor = m; s.rockingStep = step }
        s.energy = ScanValues.energy(f, "\(pos)/mononrj", bare: "kev")

        let d = "/\(g)/instrument/\(det)"
        s.distance = ScanValues.length(f, "\(d)/distance")
        if let py = ScanValues.length(f, "\(d)/y_pixel_size"), let px = ScanValues.length(f, "\(d)/x_pixel_size") {
            s.pixelSize = (py, px)
        }
        if let by = ScanValues.first(f, "\(d)/beam_center_y"), let bx = ScanValues.first(f, "\(d)/beam_center_x") {
            s.directBeam = (by, bx)
        }
        if let rows = ScanValues.first(f, "\(d)/dim_j"), let cols = ScanValues.first(f, "\(d)/dim_i") {
            s.detectorShape = (Int(rows), Int(cols))
        }
        if let m = ScanValues.values(f, "/\(g)/measurement/imon"), m.count == n { s.monitor = m }
        s.notes["detector"] = det
        s.notes["scan_group"] = g
        return s
    }
}
