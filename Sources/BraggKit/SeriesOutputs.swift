import Foundation
import Numerics
import Formats
import Analysis

/// What an operando series' analysis writes into its folder (what `bragg analyze` and
/// `bragg demo` promise): table.csv, table.json, pca.json and one lab-frame .vti per state.
public enum SeriesOutputs {
    /// The file names written besides the per-state .vti files.
    public static let tableFiles = ["table.csv", "table.json", "pca.json"]

    /// Checks, before any work, that the outputs may be written into `folder`: the folder
    /// (or the nearest existing parent) is writable, and unless `overwrite` none of the files
    /// written exists already.
    public static func check(folder: String, overwrite: Bool) throws {
        try OutputCheck.folder(folder, overwrite: overwrite)
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { tableFiles.contains($0) || ($0.hasPrefix("state_") && $0.hasSuffix(".vti")) }
        try OutputCheck.files(existing.sorted().map { (folder as NSString).appendingPathComponent($0) }, overwrite: overwrite)
    }

    /// The name of state `index`'s .vti file (its label with characters unsafe in a file
    /// name replaced by "_").
    public static func vtiName(index: Int, label: String) -> String {
        let safe = String(label.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
        return String(format: "state_%02d_%@.vti", index, safe)
    }

    /// Writes table.csv, table.json, pca.json and one lab-frame .vti per state (amplitude,
    /// phase, Δφ, displacement, strain, support, inverse PCA; nm) into `folder`, which must
    /// exist. `tableExtras` are added to table.json's top level (the geometry record, its
    /// source, …). Returns the .vti names.
    @discardableResult
    public static func write(_ result: SeriesResult, to folder: String, overwrite: Bool,
                             tableExtras: [String: Any] = [:]) throws -> [String] {
        func writeText(_ name: String, _ data: Data) throws {
            let path = (folder as NSString).appendingPathComponent(name)
            try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
                guard FileManager.default.createFile(atPath: tmp, contents: data) else {
                    throw PipelineError.output("cannot write '\(path)'")
                }
            }
        }
        try writeText("table.csv", Data(result.tableCSV().utf8))
        var json = try result.tableJSON()
        if !tableExtras.isEmpty, var doc = try JSONSerialization.jsonObject(with: json) as? [String: Any] {
            for (k, v) in tableExtras { doc[k] = v }
            json = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        }
        try writeText("table.json", json)
        try writeText("pca.json", try result.pcaJSON())
        var vtis: [String] = []
        if let grid = result.labGrid {
            let spacing = [Double](repeating: grid.voxelSize * 1e9, count: 3)
            let origin = [grid.origin.z * 1e9, grid.origin.y * 1e9, grid.origin.x * 1e9]
            for (i, s) in result.states.enumerated() {
                guard let lab = s.lab else { continue }
                let name = vtiName(index: i, label: s.label)
                try VTI.write(lab.named.map { (name: $0.0, volume: $0.1) }, to: (folder as NSString).appendingPathComponent(name),
                              spacing: spacing, origin: origin, overwrite: overwrite)
                vtis.append(name)
            }
        }
        return vtis
    }

    /// table.json's description of the geometry the series was analysed in: where it came
    /// from, its record, |Q|, the voxel edges (nm) and the reference crystal's lab-frame
    /// extent (µm), and the override note when values were overridden.
    public static func geometryExtras(_ geometry: ResolvedGeometry, result: SeriesResult, reference: Int) -> [String: Any] {
        let ref = result.states[reference]
        var table: [String: Any] = ["geometry_source": geometry.source, "geometry_record": geometry.record?.summary ?? [:],
                                    "q_magnitude_per_m": geometry.geometry.qMagnitude,
                                    "voxel_size_nm": (0..<3).map { norm(result.basis.column($0)) * 1e9 },
                                    "crystal_extent_lab_um": ["x": ref.extent.x * 1e6, "y": ref.extent.y * 1e6, "z": ref.extent.z * 1e6]]
        if let n = geometry.overrideNote { table["geometry_overrides"] = n }
        return table
    }

    /// Ground truth of a simulated series under the analysis' conventions (the analysis of
    /// the true objects, `SeriesAnalysis.groundTruth`), by state label: Δφ_mean (°),
    /// normalised Ω, mean relative displacement (Å) and edge-profile FWHM (nm). With
    /// `comparison`, the Δφ and displacement are those the reconstructions are compared with:
    /// sign changed when the whole reconstructed series is the twin of the truth.
    public static func groundTruth(_ truth: SeriesResult, comparison: TruthComparison? = nil) -> [String: [String: Double]] {
        let sign = comparison?.seriesIsTwin == true ? -1.0 : 1.0
        var out: [String: [String: Double]] = [:]
        for t in truth.states {
            var row = ["delta_phi_mean_deg": sign * t.meanPhaseDifference * 180 / .pi, "omega_normalised": t.omegaNormalised,
                       "mean_relative_displacement_A": sign * t.meanRelativeDisplacement * 1e10]
            if let e = t.edgeResolution { row["edge_resolution_nm"] = e * 1e9 }
            out[t.label] = row
        }
        return out
    }
}
