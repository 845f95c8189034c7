import BraggKit
import Foundation

/// The CXI results file of an iterative reconstruction (DESIGN.md layout): object, support,
/// pattern and mask, the recipe and every option as process parameters, the metrics, and
/// the χ² history of the best run and each run's metrics as curves. Shared by `bragg phase`
/// and `bragg demo`.
func iterativeResultsFile(_ result: PhasingResult, options: PhasingOptions, intensity: RealVolume, mask: RealVolume?,
                          source: String, maskSource: String? = nil, supportDescription: String) -> CXIResults {
    var params: [String: HDF5Attribute] = [
        "algorithm": .string("iterative phase retrieval (BraggKit Phasing)"),
        "recipe": .string(options.recipe.description),
        "runs": .int(options.runs), "keep": .int(options.keep), "seed": .int(Int(truncatingIfNeeded: options.seed)),
        "kept_runs": .ints(result.kept.map { $0 + 1 }),
        "twinned_runs": .ints(result.twinned.map { $0 + 1 }),
        "rank_by": .string(options.rankBy.rawValue),
        "shrink_wrap_sigma": .doubles([options.shrinkWrap.sigmaStart, options.shrinkWrap.sigmaEnd]),
        "shrink_wrap_threshold_reference": .string(options.shrinkWrap.reference.rawValue),
        "free_fraction": .double(options.freeFraction),
        "initial_support": .string(supportDescription),
        "phase_ramp_removed_cycles_per_voxel": .doubles(result.ramp.cyclesPerVoxel),
        "intensity_policy": .string("negative/NaN/inf intensities masked"),
        "source": .string(source),
        "metrics_note": .string("llk/free_llk: mean Poisson deviance per pixel, model scaled to the data; chi2: Eq. (1) of Serban et al. 2024"),
    ]
    if let m = maskSource { params["mask_source"] = .string(m) }
    var metrics: [String: Double] = [
        "chi2": result.metrics.chi2, "llk": result.metrics.llk,
        "spread": result.spread, "support_voxels": Double(result.metrics.supportVoxels),
    ]
    var curves: [String: [Double]] = [:]
    if let best = result.runs.first(where: { $0.index == result.kept.first }) {
        if let m = best.metrics {
            metrics["best_run_chi2"] = m.chi2; metrics["best_run_llk"] = m.llk
            if !m.freeLLK.isNaN { metrics["best_run_free_llk"] = m.freeLLK }
        }
        curves["chi2"] = best.chi2History.map(\.chi2)
        curves["chi2_iteration"] = best.chi2History.map { Double($0.iteration) }
    }
    // Merging (mode decomposition of the kept runs) and the stalled-run check.
    params["rank_by"] = .string(options.effectiveRankBy.rawValue)
    params["mode_weights"] = .doubles(result.modeWeights)
    params["result_is"] = .string(result.kept.count == 1 ? "best run" : result.merged ? (result.mergeRefinement != nil ? "first mode of the kept runs, refined" : "first mode of the kept runs") : "best run (first mode fitted worse than the merge tolerance)")
    params["merge_tolerance"] = .double(options.mergeTolerance)
    params["stall_check"] = .string(String(format: "after %.2f of the recipe, factor %.1f of the median of the other runs, %d restart(s)",
                                           options.stallCheckFraction, options.stallFactor, options.stallRestarts))
    if !result.notes.isEmpty { params["notes"] = .string(result.notes.joined(separator: "\n")) }
    metrics["mode_weight"] = result.modeWeight
    if let c = result.mergedChi2 { metrics["merged_chi2"] = c }
    if let c = result.firstModeChi2 { metrics["first_mode_chi2"] = c }   // before the merge refinement
    if let r = result.mergeRefinement { params["merge_refinement"] = .string(r.description) }
    if let c = result.refinementChange { metrics["merge_refinement_change"] = c }
    if !result.alignedChi2.isEmpty { curves["kept_run_aligned_chi2"] = result.alignedChi2 }
    curves["run_iterations"] = result.runs.map { Double($0.iterations) }
    curves["run_restarts"] = result.runs.map { Double($0.restarts) }
    // χ² of each run's P_S ρ at the stall check, its last start's (NaN without a check)
    curves["run_check_chi2"] = result.runs.map { $0.checkChi2.last ?? .nan }
    var arrays: [String: NDArray] = [:]
    if let best = result.runs.first(where: { $0.index == result.kept.first }), let psf = best.psf {
        // The point-spread function (partial coherence) of the best run: its model and widths,
        // and the kernel itself, centred, cropped to where it is not negligible.
        params["psf_model"] = .string(psf.model.rawValue)
        params["psf_fwhm_px"] = .doubles(psf.fwhm)
        params["psf_sigma_px"] = .doubles(psf.sigma)
        params["psf_eta"] = .double(psf.eta)
        params["psf_background_counts"] = .double(psf.background)
        if let k = try? psf.kernel(shape: result.object.shape) {
            let half = k.shape.map { n in min((n - 1) / 2, max(3, Int((3 * (psf.fwhm.max() ?? 1)).rounded(.up)))) }
            let start = zip(k.shape, half).map { $0 / 2 - $1 }, size = half.map { 2 * $0 + 1 }
            if let c = try? k.cropped(start: start, size: size) { arrays["psf"] = NDArray(c) }
        }
        metrics["psf_fwhm_mean_px"] = psf.fwhm.reduce(0, +) / Double(max(1, psf.fwhm.count))
    }
    curves["run_chi2"] = result.runs.map { $0.metrics?.chi2 ?? .nan }
    curves["run_psf_fwhm_mean_px"] = result.runs.map { r in r.psf.map { $0.fwhm.reduce(0, +) / Double(max(1, $0.fwhm.count)) } ?? .nan }
    if result.runs.contains(where: { $0.psf != nil }) {
        // Each run's widths per axis (NaN for a run that failed or modelled no blur).
        for (a, axis) in ["z", "y", "x"].enumerated() {
            curves["run_psf_fwhm_\(axis)_px"] = result.runs.map { r in r.psf.flatMap { a < $0.fwhm.count ? $0.fwhm[a] : nil } ?? .nan }
        }
    }
    curves["run_llk"] = result.runs.map { $0.metrics?.llk ?? .nan }
    curves["run_free_llk"] = result.runs.map { $0.metrics?.freeLLK ?? .nan }
    return CXIResults(object: result.object, support: result.support, pattern: intensity, mask: mask,
                      parameters: params, metrics: metrics, curves: curves, arrays: arrays)
}

/// Checks, before any work, that `bragg analyze` may write its outputs into `out`: the
/// folder (or the nearest existing parent) is writable, and without `force` none of the
/// files it writes exists already.
func checkAnalysisOutput(_ out: String, force: Bool) throws {
    try OutputCheck.folder(out, overwrite: force)
    let existing = ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? [])
        .filter { ["table.csv", "table.json", "pca.json"].contains($0) || ($0.hasPrefix("state_") && $0.hasSuffix(".vti")) }
    try OutputCheck.files(existing.sorted().map { (out as NSString).appendingPathComponent($0) }, overwrite: force)
}

/// Writes what `bragg analyze` promises into `out`: table.csv, table.json, pca.json and one
/// lab-frame .vti per state. Returns the .vti names. Shared by `bragg analyze` and `bragg demo`.
/// `tableExtras` are added to table.json's top level (the geometry record, its source, …).
func writeAnalysisOutputs(_ result: SeriesResult, to out: String, force: Bool, tableExtras: [String: Any] = [:]) throws -> [String] {
    func writeText(_ name: String, _ data: Data) throws {
        let path = (out as NSString).appendingPathComponent(name)
        try SafeOutput.write(to: path, overwrite: force) { tmp in
            guard FileManager.default.createFile(atPath: tmp, contents: data) else {
                throw UsageError("cannot write '\(path)'")
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
            let safe = String(s.label.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
            let name = String(format: "state_%02d_%@.vti", i, safe)
            try VTI.write(lab.named.map { (name: $0.0, volume: $0.1) }, to: (out as NSString).appendingPathComponent(name),
                          spacing: spacing, origin: origin, overwrite: force)
            vtis.append(name)
        }
    }
    return vtis
}

/// Reads the pattern (and mask) to phase (BraggKit's `PatternInput.read`): a CXI/HDF5 file
/// named without a dataset gives its pattern at /entry_1/data_1/data (what `bragg prepare`
/// and `bragg simulate` write), and, when no --mask is given, its mask at
/// /entry_1/data_1/mask if it has one.
func readPatternInput(_ spec: String, mask: String?) throws -> (pattern: RealVolume, mask: RealVolume?, maskSource: String?) {
    let p = try PatternInput.read(spec, mask: mask)
    return (p.pattern, p.mask, p.maskSource)
}

/// Carries the geometry of the phased pattern's file (if it records one) into `results`,
/// with the real-space voxel of the object written; the pattern's shape as phased.
func carryPatternGeometry(_ results: inout CXIResults, pattern spec: String, patternShape: [Int]) throws {
    let s = ArraySpec(spec)
    guard s.dataset == nil, (try? s.format()) == .hdf5 else { return }
    do {
        try results.carryGeometry(try CXIResults.readGeometry(from: s.path), patternShape: patternShape)
    } catch let e as PipelineError { throw UsageError("\(s.path): \(e)") }
}

/// Ground truth of a simulated series under `bragg analyze`'s conventions (the analysis of the
/// true objects, `SeriesAnalysis.groundTruth`), by state label: Δφ_mean (°), normalised Ω, mean
/// relative displacement (Å) and edge-profile FWHM (nm). With `comparison`, the Δφ and
/// displacement are those the reconstructions are compared with: sign changed when the whole
/// reconstructed series is the twin of the truth.
func analysisGroundTruth(_ truth: SeriesResult, comparison: TruthComparison? = nil) -> [String: [String: Double]] {
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

/// The CXI file `bragg prepare` (and `bragg demo`) writes for a prepared pattern: pattern, mask, geometry, and
/// each scan's shift, correlation and bad pixels under /entry_1/image_1/process_1.
func preparedPatternFile(_ result: PreparedPattern, options: PreparationOptions, geometry: CXIGeometry) -> CXIResults {
    let included = result.scans.filter { $0.included }
    let params: [String: HDF5Attribute] = [
        "program": .string("bragg prepare"),
        "scans": .string(result.scans.map { $0.source }.joined(separator: "\n")),
        "scans_included": .ints(included.map { $0.index + 1 }),
        "stack_shape": .ints(result.stackShape),
        "crop_start": .ints(result.cropStart),
        "crop_size": .ints(result.cropSize),
        "binning": .ints(result.binning),
        "bragg_peak_in_sum": .doubles(result.peak),
        "centring": .string(options.centring.rawValue),
        "registered": .string(options.register ? "yes" : "no"),
        "hot_factor": .double(options.hotFactor),
        "dead_min_counts": .double(options.deadMinCounts),
        "min_correlation": .double(options.minCorrelation),
        "upsampling": .int(options.upsampling),
    ]
    var arrays: [String: NDArray] = [:]
    arrays["scan_shifts"] = NDArray(result.scans.flatMap { $0.shift }, shape: [result.scans.count, 3])
    arrays["scan_correlations"] = NDArray(result.scans.map { $0.correlation })
    arrays["scan_included"] = NDArray(result.scans.map { $0.included ? 1 : 0 } as [Int])
    arrays["scan_hot_pixels"] = NDArray(result.scans.map { $0.hotPixels })
    arrays["scan_constant_pixels"] = NDArray(result.scans.map { $0.deadPixels })
    let masked = result.mask.sum() / Double(result.mask.count)
    let metrics: [String: Double] = ["masked_fraction": masked, "total_counts": result.pattern.sum(),
                                     "scans_summed": Double(included.count)]
    return CXIResults(pattern: result.pattern, mask: result.mask, parameters: params, metrics: metrics,
                      arrays: arrays, geometry: geometry, programName: "BraggKit \(Bragg.version) prepare")
}
