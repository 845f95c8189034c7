import BraggKit
import Foundation

/// The lines `bragg prepare` prints: what each beamline file said, what was done to each
/// scan, the pattern written and its geometry.
enum PrepareSummary {
    /// A beamline scan's record, labelled with its state in a series.
    static func beamline(_ b: BeamlineScan, state: String?) -> String {
        (state.map { "state \($0): " } ?? "") + (b.beamline == .aps34IDC ? line34IDC(b) : b.summary)
    }

    /// The 34-ID-C reader's line (the SPEC scan: command, points, energy, distance, detector, angles).
    static func line34IDC(_ b: BeamlineScan) -> String {
        let a = b.angles.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f°", $0.key, $0.value) }.joined(separator: ", ")
        return String(format: "%@: %@, %d points, %@ step %.5f°; E = %.4g keV, distance %.4g m, %@ (%.0f µm pixels), region of interest from row %d, column %d; %@%@",
                      b.scanName, b.notes["spec_command"] ?? "", b.frames.shape[0], b.rockingMotor ?? "?", b.rockingStep ?? .nan,
                      (b.energy ?? .nan) / 1000, b.distance ?? .nan, b.notes["detector"] ?? "detector",
                      (b.pixelSize?.column ?? .nan) * 1e6, b.roiOrigin.row, b.roiOrigin.column, a,
                      b.monitor == nil ? "" : "; monitor: the Monitor column")
    }

    /// The progress line before the frames are read.
    static func start(_ opened: [OpenedState], series: Bool) -> String {
        if series {
            return "preparing \(opened.count) states (\(opened.map { "\($0.name): \($0.scans.count) scan(s)" }.joined(separator: ", ")))"
        }
        let sh = opened[0].scans[0].frames.shape
        return "preparing \(opened[0].scans.count) scan(s) of \(sh[0]) frames of \(sh[1])×\(sh[2]) pixels"
    }

    /// One line per scan: its shift, correlation, bad pixels and counts.
    static func scans(_ result: PreparedPattern, label: String) -> [String] {
        result.scans.map { r in
            let s = r.shift.map { String(format: "%+.3f", $0) }.joined(separator: ", ")
            return String(format: "%@scan %d: shift (%@) px, correlation %.4f, hot %d, constant %d, other bad %d, counts %.4g%@ (%@)",
                          label, r.index + 1, s, r.correlation, r.hotPixels, r.deadPixels, r.otherBadPixels, r.totalCounts,
                          r.included ? "" : " — LEFT OUT", r.source)
        }
    }

    /// The pattern: its shape, crop, binning, Bragg peak, masked fraction and counts.
    static func pattern(_ result: PreparedPattern, masked: Double, counts: Double, path: String, label: String) -> String {
        String(format: "%@pattern %@ (crop %@ at %@, bin %@), Bragg peak at (%@) in the sum, (%@) in the pattern; %.2f%% of voxels masked; %.4g counts → %@",
               label, result.pattern.shape.map(String.init).joined(separator: "×"),
               result.cropSize.map(String.init).joined(separator: "×"),
               result.cropStart.map(String.init).joined(separator: ","),
               result.binning.map(String.init).joined(separator: "×"),
               result.peak.map { String(format: "%.2f", $0) }.joined(separator: ", "),
               result.peakInPattern.map { String(format: "%.2f", $0) }.joined(separator: ", "),
               masked * 100, counts, path)
    }

    /// The geometry written: 2θ, |Q|, Q̂, the centre's detector pixel and the voxel; or what
    /// is missing for a beamline scan; nil for plain frames without any.
    static func geometry(_ g: CXIGeometry, _ result: PreparedPattern, state: OpenedState, label: String) -> String? {
        if let bg = try? g.braggGeometry() {
            let v = bg.voxelSizes(shape: result.pattern.shape)
            return String(format: "%@geometry: 2θ = %.3f°, out of plane %.3f°, |Q| = %.5g Å⁻¹ (d = %.4f Å), Q̂ = (%.3f, %.3f, %.3f); pattern centre at detector pixel (%@); voxel %.1f × %.1f × %.1f nm",
                          label, bg.twoTheta * 180 / .pi, bg.outOfPlane * 180 / .pi, bg.qMagnitude * 1e-10, bg.dSpacing * 1e10,
                          bg.qHat.x, bg.qHat.y, bg.qHat.z, (g.peakPixel ?? []).map { String(format: "%.1f", $0) }.joined(separator: ", "),
                          v[0] * 1e9, v[1] * 1e9, v[2] * 1e9)
        }
        guard state.beamlineScan != nil else { return nil }
        let why = g.notes["geometry"].map { " — \($0)" } ?? ""
        return "\(label)geometry: incomplete\(why) (give the missing values with --energy-kev, --distance, --pixel-um, --two-theta, --rocking-step)"
    }
}
