import Foundation
import Numerics
import Formats

/// SOLEIL SIXS NeXus scans, as cdiutils `io/sixs.py` (SIXSLoader) reads them:
/// - frames: the 3D dataset in `com/scan_data/` (_get_detector_key_path)
/// - circles mu, omega (sample), gamma, delta (detector): 2022 files at
///   `com/SIXS/i14-c-cx1-ex-med-v-dif-group.1/{group whose name contains the circle}/position`,
///   2019 files at `com/SIXS/{group whose name contains the circle}/position_pre`
///   (_get_motor_key_path)
/// - the rocked circle (mu) per frame: `com/scan_data/actuator_1_1` (2022) or `data_07` (2019)
/// - energy: `com/SIXS/i14-c-c02-op-mono/energy`, keV (load_energy)
/// SIXS files record no detector distance or pixel size (cdiutils returns none either).
public enum SIXS {
    public static let circles = ["mu", "omega", "gamma", "delta"]
    static let groups2022 = "/com/SIXS/i14-c-cx1-ex-med-v-dif-group.1"

    public static func read(path: String) throws -> BeamlineScan {
        let f = try HDF5File(reading: path)
        guard f.isGroup("/com/scan_data") else {
            throw BeamlineError.notThisBeamline(path: path, beamline: .soleilSIXS, reason: "it has no /com/scan_data group")
        }
        let members = ((try? f.members(of: "/com/scan_data")) ?? []).sorted()
        guard let name = members.first(where: { (try? f.shape(of: "/com/scan_data/\($0)"))?.count == 3 }) else {
            throw BeamlineError.missing(path: path, what: "3D detector frames", tried: members.map { "/com/scan_data/\($0)" })
        }
        try f.checkFilters(of: "/com/scan_data/\(name)")
        let frames = try HDF5FrameStack(path: path, dataset: "/com/scan_data/\(name)")
        let n = frames.shape[0]
        var s = BeamlineScan(beamline: .soleilSIXS, frames: frames, scanName: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        let is2022 = f.isGroup(groups2022)
        let base = is2022 ? groups2022 : "/com/SIXS"
        let motorGroups = ((try? f.members(of: base)) ?? []).sorted()
        for c in circles {
            // The group whose name ends with the circle's name (…-mu, …-omega), else contains it.
            guard let g = motorGroups.first(where: { $0.lowercased().hasSuffix(c) }) ?? motorGroups.first(where: { $0.lowercased().contains(c) }) else { continue }
            if let v = ScanValues.first(f, "\(base)/\(g)/\(is2022 ? "position" : "position_pre")") { s.angles[c] = v }
        }
        let rockPath = "/com/scan_data/" + (is2022 ? "actuator_1_1" : "data_07")
        if let v = ScanValues.values(f, rockPath), v.count == n, let (m, step) = ScanValues.rocking(["mu": v], frames: n) {
            s.angles["mu"] = v[0]
            s.rockingMotor = m; s.rockingStep = step
        }
        s.energy = ScanValues.energy(f, "/com/SIXS/i14-c-c02-op-mono/energy", bare: "kev")
        s.notes["layout"] = is2022 ? "SIXS 2022" : "SIXS 2019"
        return s
    }
}
