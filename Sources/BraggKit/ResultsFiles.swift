import Foundation
import Numerics
import Formats
import Preparation
import Phasing
import Analysis

/// The CXI files the pipeline writes (DESIGN.md's results layout), assembled from what a
/// stage returns: an iterative reconstruction, a prepared pattern. `bragg phase`, `bragg demo`,
/// `bragg batch` and `bragg prepare` write these; a Swift program gets the same files.
public enum ResultsFile {
    /// The CXI results file of an iterative reconstruction: object, support, pattern and
    /// mask, the recipe and every option as process parameters, the metrics, and the χ²
    /// history of the best run and each run's metrics as curves. `source` names the pattern
    /// (recorded), `supportDescription` the initial support as the user gave it.
    public static func iterative(_ result: PhasingResult, options: PhasingOptions, intensity: RealVolume, mask: RealVolume?,
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
        params["result_is"] = .string((result.kept.count == 1 ? "best run" : result.merged ? (result.mergeRefinement != nil ? "first mode of the kept runs, refined" : "first mode of the kept runs") : "best run (first mode fitted worse than the merge tolerance)")
                                      + (result.tightening?.tightened == true ? ", support tightened" : result.tightening?.kept == true ? ", refitted in its own support" : ""))
        params["merge_tolerance"] = .double(options.mergeTolerance)
        params["stall_check"] = .string(String(format: "after %.2f of each run's recipe alternative, factor %.1f of the best chi2 of the other runs of its alternative or %.1f of another alternative's, %d restart(s) (with the best run's alternative when stalled against another alternative)",
                                               options.stallCheckFraction, options.stallFactor, options.effectiveStallFactorAcrossAlternatives, options.stallRestarts))
        if let f = options.alternativeChoiceFactor, result.alternativeChoice != nil {
            params["alternative_choice"] = .string(String(format: "recipe alternatives compared where they part (all runs paused there): an alternative whose kernel models almost no blur (mean FWHM under %.2g px) while another's found one (at least %.2g px), or whose best chi2 is more than %.3g times another's, gives its runs to the better one, which they continue from their own iterate",
                                                          Phaser.nearCoherentFWHM, Phaser.blurFoundFWHM, f))
        }
        if let c = result.alternativeChoice {
            // Each alternative's best run there (alternative order: 0 = the recipe's first).
            metrics["alternative_choice_iteration"] = Double(c.iteration)
            let alternatives = Array(0...options.recipe.alternatives.count)
            curves["alternative_choice_best_chi2"] = alternatives.map { c.bestChi2[$0] ?? .nan }
            curves["alternative_choice_kernel_fwhm"] = alternatives.map { c.kernelFWHM[$0] ?? .nan }
            metrics["alternative_chosen"] = c.chosen.map(Double.init) ?? -1
            curves["run_choice_chi2"] = result.runs.map { $0.choiceChi2 ?? .nan }
            curves["run_switched_from_alternative"] = result.runs.map { $0.switchedFrom.map(Double.init) ?? -1 }
        }
        // The recipe alternative each run ended with (0 = the recipe's first).
        curves["run_alternative"] = result.runs.map { Double(options.recipe.alternativeNumber(ofRun: $0.alternative)) }
        if !result.notes.isEmpty { params["notes"] = .string(result.notes.joined(separator: "\n")) }
        metrics["mode_weight"] = result.modeWeight
        if let c = result.mergedChi2 { metrics["merged_chi2"] = c }
        if let c = result.firstModeChi2 { metrics["first_mode_chi2"] = c }   // before the merge refinement
        if let r = result.mergeRefinement { params["merge_refinement"] = .string(r.description) }
        if let t = result.tightening {
            // The final pass: every pass tried, and whether the withheld pixels kept one.
            let kernels = t.otherKernelRun.map { "the best run's point-spread function, then run \($0 + 1)'s (the best run's models almost no blur)" }
                ?? "the best run's point-spread function"
            let which = (t.best.sigma.map { String(format: "kept: sigma %g", $0) } ?? "kept: own support")
                + (t.best.kernel == 0 ? "" : " with run \(t.otherKernelRun! + 1)'s kernel") + " (lowest free llk)"
            params["support_tightening"] = .string(String(format: "%@ (support fixed, %@) from the written object in its own support and in supports tightened by one shrink-wrap with sigma %@ voxels; %@",
                                                          options.supportTighteningRecipe.description, kernels,
                                                          options.supportTightening.map { String(format: "%g", $0) }.joined(separator: ", "),
                                                          t.kept ? which : "not kept"))
            metrics["tightening_free_llk_before"] = t.before.freeLLK; metrics["tightening_free_llk_after"] = t.best.metrics.freeLLK
            metrics["tightening_free_llk_same_support"] = t.candidates[0].metrics.freeLLK
            metrics["tightening_support_voxels_before"] = Double(t.before.supportVoxels)
            metrics["tightening_support_voxels_after"] = Double(t.best.metrics.supportVoxels)
            curves["tightening_candidate_sigma"] = t.candidates.map { $0.sigma ?? 0 }
            curves["tightening_candidate_free_llk"] = t.candidates.map(\.metrics.freeLLK)
            curves["tightening_candidate_chi2"] = t.candidates.map(\.metrics.chi2)
            curves["tightening_candidate_support_voxels"] = t.candidates.map { Double($0.metrics.supportVoxels) }
            // 0: the best run's kernel; 1: the other run's (support_tightening names it).
            curves["tightening_candidate_kernel"] = t.candidates.map { Double($0.kernel) }
        }
        if let c = result.refinementChange { metrics["merge_refinement_change"] = c }
        if !result.alignedChi2.isEmpty { curves["kept_run_aligned_chi2"] = result.alignedChi2 }
        curves["run_iterations"] = result.runs.map { Double($0.iterations) }
        curves["run_restarts"] = result.runs.map { Double($0.restarts) }
        // χ² of each run's P_S ρ at the stall check, its last start's (NaN without a check)
        curves["run_check_chi2"] = result.runs.map { $0.checkChi2.last ?? .nan }
        curves["run_check_free_llk"] = result.runs.map { $0.checkFreeLLK.last ?? .nan }
        var arrays: [String: NDArray] = [:]
        if let psf = result.psf {
            // The point-spread function (partial coherence) of the written object (the best
            // run's, unless the final pass wrote a pass with another run's): its model and
            // widths, and the kernel itself, centred, cropped to where it is not negligible.
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
            metrics["psf_fwhm_mean_px"] = psf.meanFWHM
        }
        curves["run_chi2"] = result.runs.map { $0.metrics?.chi2 ?? .nan }
        curves["run_psf_fwhm_mean_px"] = result.runs.map { r in r.psf?.meanFWHM ?? .nan }
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

    /// The CXI file of a prepared pattern (what `bragg prepare` and `bragg demo` write):
    /// pattern, mask, geometry, and each scan's shift, correlation and bad pixels under
    /// /entry_1/image_1/process_1. `programName` is the CXI file's writing program; the
    /// process parameter `program` names the step ("bragg prepare") whoever wrote it.
    public static func prepared(_ result: PreparedPattern, options: PreparationOptions, geometry: CXIGeometry,
                                programName: String) -> CXIResults {
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
                          arrays: arrays, geometry: geometry, programName: programName)
    }
}

extension CXIResults {
    /// Carries the geometry of the phased pattern's file `spec` (if it is a CXI/HDF5 file
    /// named without a dataset and records one) into these results, with the real-space
    /// voxel of the object written; `patternShape` is the pattern's shape as phased.
    /// Throws `PipelineError.geometry` naming the file when its record cannot describe the grid.
    public mutating func carryPatternGeometry(of spec: String, patternShape: [Int]) throws {
        let s = ArraySpec(spec)
        guard s.dataset == nil, (try? s.format()) == .hdf5 else { return }
        do {
            try carryGeometry(try CXIResults.readGeometry(from: s.path), patternShape: patternShape)
        } catch let e as PipelineError { throw PipelineError.geometry("\(s.path): \(e)") }
    }
}
