import Foundation
import Numerics

/// The seed's Table 1, the PCA and the conventions, as CSV and JSON text.
extension SeriesResult {

    /// The conventions every output states.
    public static let conventions: [String: String] = [
        "phase": "phi = Q.u (Robinson & Harder 2009); delta_phi_i = phi_i - phi_ref per voxel over the common support, wrapped to (-pi, pi]",
        "global_phase": "each state's phase is shifted so the core (common-support voxels deeper than core_fraction of the largest depth) has zero median",
        "displacement": "u = phi / |Q| (DESIGN.md). The seed's Table 1 prints 2*phi/|Q| (its 13.8 deg -> 0.142 A, ours 0.0709 A): see the _seed_convention column",
        "strain": "epsilon = du_Q/dx_Q from the complex field (arg of rho*(x-e) rho(x+e) per axis, projected on Q-hat); mean_relative_strain = mean of (eps_i - eps_ref) over common-support voxels with central differences in both. The seed's Table 1 strains equal 2 x its displacement / 50 nm; they are not per-voxel strains",
        "omega": "Omega_i = psi_1 . delta_phi_i (Eq. 3), psi_1 from the Gram matrix G_ij = delta_phi_i . delta_phi_j (Eq. 2), sign so the largest |Omega| is positive; omega_normalised = Omega_i / max|Omega|",
        "inverse_pca": "Eq. (4) read as the map of what drives psi_1: per state Omega_i psi_1 (rad) and the region holding pca_fraction of sum(psi_1^2)",
        "resolution": "edge: FWHM 2.355 sigma of the Gaussian blur fitted (erf) across the facets of the lab-frame amplitude; prtf: half period pi/q where the PRTF of several runs falls below 1/e",
        "twin": "each state is taken as given or as its twin conj(rho(-r)), whichever has the larger complex overlap |sum rho_ref* rho| / (|rho_ref| |rho|) with the reference after sub-voxel registration and phase-ramp removal (columns overlap_object, overlap_twin). The reference itself may be the twin of the true object; the whole series is then the twin of the truth and every delta_phi changes sign",
        "frame": "lab frame: z along the beam, y up, x = y cross z; arrays in C order (z, y, x)",
    ]

    /// CSV column headers with units.
    public static let tableColumns = [
        "state", "label", "condition", "chi2", "twin_flipped", "overlap_object", "overlap_twin", "shift_axis0_vox", "shift_axis1_vox", "shift_axis2_vox",
        "amplitude_correlation", "filled_voxels", "delta_phi_mean_deg", "mean_relative_displacement_A",
        "mean_relative_displacement_seed_convention_A", "mean_relative_strain_permille", "omega_rad", "omega_normalised",
        "edge_resolution_nm", "prtf_resolution_nm", "extent_x_um", "extent_y_um", "extent_z_um",
    ]

    /// One row of numbers per state (nil where not measured), matching `tableColumns`.
    public func tableRows() -> [[Any?]] {
        states.enumerated().map { i, s -> [Any?] in
            let seedU = BraggGeometry.seedDisplacementFactor * s.meanRelativeDisplacement
            return [i, s.label, s.condition, s.chi2, s.twinFlipped, s.twinOverlaps.object, s.twinOverlaps.twin, s.shift[0], s.shift[1], s.shift[2], s.correlation,
                    s.filledVoxels, s.meanPhaseDifference * 180 / .pi, s.meanRelativeDisplacement * 1e10, seedU * 1e10,
                    s.meanRelativeStrain * 1e3, s.omega, s.omegaNormalised, s.edgeResolution.map { $0 * 1e9 },
                    s.prtfResolution.map { $0 * 1e9 }, s.extent.x * 1e6, s.extent.y * 1e6, s.extent.z * 1e6]
        }
    }

    static func csvField(_ v: Any?) -> String {
        switch v {
        case nil: return ""
        case let d as Double: return d.isFinite ? String(format: "%.6g", d) : ""
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let s as String:
            return s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        default: return "\(v!)"
        }
    }

    /// table.csv: a header with units, then one line per state.
    public func tableCSV() -> String {
        var out = "# displacement u = phi/|Q|; the seed's Table 1 prints 2*phi/|Q| (column mean_relative_displacement_seed_convention_A)\n"
        out += SeriesResult.tableColumns.joined(separator: ",") + "\n"
        for row in tableRows() { out += row.map(SeriesResult.csvField).joined(separator: ",") + "\n" }
        return out
    }

    static func jsonValue(_ v: Any?) -> Any {
        switch v {
        case nil: return NSNull()
        case let d as Double: return d.isFinite ? d : NSNull()
        default: return v!
        }
    }

    /// table.json: the table, the geometry, the grid and the conventions.
    public func tableJSON() throws -> Data {
        let rows = tableRows().map { r in
            Dictionary(uniqueKeysWithValues: zip(SeriesResult.tableColumns, r.map(SeriesResult.jsonValue)))
        }
        let g = geometry
        var doc: [String: Any] = [
            "states": rows,
            "reference": states[options.reference].label,
            "conventions": SeriesResult.conventions,
            "geometry": [
                "energy_eV": g.energy, "two_theta_deg": g.twoTheta * 180 / .pi, "out_of_plane_deg": g.outOfPlane * 180 / .pi,
                "distance_m": g.distance, "pixel_size_m": g.pixelSize, "rocking_step_deg": g.rockingStep * 180 / .pi,
                "rocking_axis": [g.rockingAxis.x, g.rockingAxis.y, g.rockingAxis.z],
                "wavelength_A": g.wavelength * 1e10, "q_magnitude_per_m": g.qMagnitude,
                "q_hat_xyz": [g.qHat.x, g.qHat.y, g.qHat.z],
                "voxel_basis_nm": (0..<3).map { a in [basis.column(a).x * 1e9, basis.column(a).y * 1e9, basis.column(a).z * 1e9] },
            ] as [String: Any],
            "reconstruction_shape": shape,
            "common_support_rule": options.commonSupport.rawValue,
            "common_support_voxels": commonSupportVoxels,
            "core_fraction": options.coreFraction,
            "core_voxels": coreVoxels,
            "phase_ramp_removed": options.removeRamp,
        ]
        if g.hasExplicitVectors, var geo = doc["geometry"] as? [String: Any] {
            // A diffractometer's detector: the full vectors (lab frame, m), as `BraggGeometry.scalars` names them.
            let v = g.scalars
            for p in ["exit_direction", "row_step", "column_step"] { geo[p + "_xyz"] = ["x", "y", "z"].map { v[p + "_" + $0]! } }
            geo["q_xyz_per_m"] = [g.q.x, g.q.y, g.q.z]
            doc["geometry"] = geo
        }
        if let lg = labGrid {
            doc["lab_grid"] = ["shape_zyx": lg.shape, "voxel_nm": lg.voxelSize * 1e9,
                               "origin_xyz_nm": [lg.origin.x * 1e9, lg.origin.y * 1e9, lg.origin.z * 1e9]] as [String: Any]
        }
        return try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
    }

    /// pca.json: eigenvalues, explained variance, Ω per state, the inverse-PCA region.
    public func pcaJSON() throws -> Data {
        let doc: [String: Any] = [
            "labels": states.map { $0.label },
            "reference": states[options.reference].label,
            "eigenvalues_rad2": pca.eigenvalues,
            "explained_variance": pca.explainedVariance,
            "omega_rad": pca.omega,
            "omega_normalised": pca.omegaNormalised,
            "voxels": pca.component.count,
            "region_fraction": pca.regionFraction,
            "region_voxels": pca.region.reduce(0) { $0 + Int($1) },
            "conventions": ["omega": SeriesResult.conventions["omega"]!, "inverse_pca": SeriesResult.conventions["inverse_pca"]!],
        ]
        return try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
    }
}
