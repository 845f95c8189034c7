import BraggKit
import Foundation

/// What `bragg analyze` prints after the analysis: |Q| and the common support, the seed's
/// Table 1 (one row per state), and the reference crystal's extent and PC1.
enum AnalyzeSummary {
    static func lines(_ result: SeriesResult, geometry geo: BraggGeometry, reference: Int, seconds: Double) -> [String] {
        var lines = [String(format: "|Q| = %.4g m⁻¹, Q̂ = (%.3f, %.3f, %.3f) (x, y, z); common support %d voxels; %.1f s",
                            geo.qMagnitude, geo.qHat.x, geo.qHat.y, geo.qHat.z, result.commonSupportVoxels, seconds),
                     "state                 χ²      Δφ_mean(°)  u(Å)=φ/|Q|  seed 2φ/|Q|(Å)  ε(‰)     Ω_norm   twin  filled  res(nm)"]
        for s in result.states {
            let lbl = s.label.count > 20 ? String(s.label.prefix(20)) : s.label.padding(toLength: 20, withPad: " ", startingAt: 0)
            let chi = s.chi2.map { String(format: "%7.4f", $0) } ?? "      –"
            let res = s.edgeResolution.map { String(format: "%6.1f", $0 * 1e9) } ?? "     –"
            lines.append(String(format: "%@  %@  %9.2f  %10.4f  %13.4f  %8.4f  %7.3f  %@  %6d  %@",
                                lbl, chi, s.meanPhaseDifference * 180 / .pi, s.meanRelativeDisplacement * 1e10,
                                2 * s.meanRelativeDisplacement * 1e10, s.meanRelativeStrain * 1e3, s.omegaNormalised,
                                s.twinFlipped ? " yes" : "  no", s.filledVoxels, res))
        }
        let ext = result.states[reference].extent
        lines.append(String(format: "crystal extent (reference): %.3f × %.3f × %.3f µm (x, y, z); PC1 explains %.1f%% of the variance",
                            ext.x * 1e6, ext.y * 1e6, ext.z * 1e6, 100 * (result.pca.explainedVariance.first ?? 0)))
        return lines
    }
}
