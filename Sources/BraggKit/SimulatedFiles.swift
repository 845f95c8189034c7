import Foundation
import Numerics
import Formats
import Simulation
import Analysis

// The files of simulated data with their ground truth (`bragg simulate crystal|operando`):
// CXI files holding the pattern and the true object, and an operando series' truth under
// the analysis' conventions.

public enum SimulatedFiles {
    /// The CXI geometry record of a simulation's geometry.
    public static func geometryRecord(_ g: BraggGeometry) -> CXIGeometry {
        CXIGeometry(energy: g.energy, twoTheta: g.twoTheta, detectorDistance: g.distance, pixelSize: g.pixelSize,
                    rockingStep: g.rockingStep, qVector: [g.q.x, g.q.y, g.q.z])
    }

    /// A simulated crystal as a CXI file: the pattern and mask (data_1), the ground-truth
    /// object and support (image_1), every option and the crystal's facets as parameters,
    /// and `command` (what made it).
    public static func crystal(_ r: SimulatedCrystal, options o: CrystalOptions, command: String) -> CXIResults {
        let e = r.crystal.extent
        var blur = (sigma: 0.0, lorentzian: 0.0, pvoigt: 0.0, eta: 0.0)
        switch o.blur {
        case .gaussian(let s): blur.sigma = s
        case .lorentzian(let h): blur.lorentzian = h
        case .pseudoVoigt(let f, let eta): blur.pvoigt = f; blur.eta = eta
        case .none: break
        }
        let params: [String: HDF5Attribute] = [
            "command": .string(command), "seed": .int(Int(truncatingIfNeeded: o.seed)),
            "shape": .string(o.shape.rawValue), "box_size": .int(o.size), "crystal_extent_voxels": .doubles([e.z, e.y, e.x]),
            "crystal_volume_voxels": .double(r.crystal.volume), "voxel_size_m": .double(o.voxelSize),
            "peak_photons": .double(o.photons), "poisson_noise": .int(o.poissonNoise ? 1 : 0), "phase_rms_rad": .double(o.phaseRMS),
            "correlation_length_voxels": .double(o.correlationLength), "strain": .double(o.strain), "tilt_deg": .double(o.tilt * 180 / .pi),
            "dislocation": .string(o.dislocation?.rawValue ?? "none"), "burgers_winding": .double(o.burgersWinding),
            "surface_domains": .int(o.surfaceDomains), "domain_phase_rad": .double(o.domainPhase),
            "missing_density": .double(o.missingDensity), "background": .double(o.background),
            "blur_sigma_px": .double(blur.sigma), "blur_lorentzian_px": .double(blur.lorentzian),
            "blur_pvoigt_fwhm_px": .double(blur.pvoigt), "blur_pvoigt_eta": .double(blur.eta),
            "module_size_px": .int(o.defects.moduleSize), "hot_pixels": .int(o.defects.hotPixels),
            "q_per_voxel": .doubles([r.qPerVoxel.x, r.qPerVoxel.y, r.qPerVoxel.z]),
            "facet_normals": .doubles(r.crystal.facets.flatMap { [$0.normal.x, $0.normal.y, $0.normal.z] }),
            "facet_distances_voxels": .doubles(r.crystal.facets.map { $0.distance }),
            "note": .string("simulated: image_1 holds the ground-truth object, data_1 the pattern"),
        ]
        return CXIResults(object: r.object, support: r.support, pattern: r.intensity, mask: r.mask, parameters: params,
                          geometry: geometryRecord(o.geometry))
    }

    /// The file name of state `index` of a simulated series: state_NN_LABEL (the label's
    /// characters other than letters, digits and '.' as '_').
    public static func stateName(index: Int, label: String) -> String {
        String(format: "state_%02d_%@", index, String(label.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }))
    }

    /// Writes an operando series into the existing `folder`: state_NN_LABEL.h5 per state
    /// (pattern, ground-truth object and support, label, voltage, seed, `frame`) and
    /// ground_truth.json (the simulation's metrics, and the same quantities as `SeriesAnalysis`
    /// computes them on the true objects).
    public static func writeOperando(_ series: (states: [OperandoState], metrics: OperandoMetrics), to folder: String, seed: UInt64, frame: String,
                                     overwrite: Bool) throws {
        let g = BraggGeometry.seedStudy
        for (i, s) in series.states.enumerated() {
            try CXIResults(object: s.object, support: s.support, pattern: s.pattern,
                           parameters: ["label": .string(s.label), "voltage_V": .double(s.voltage), "charging": .int(s.charging ? 1 : 0),
                                        "seed": .int(Int(truncatingIfNeeded: seed)), "frame": .string(frame),
                                        "voxel_size_nm": .doubles(series.metrics.voxelSizeNm),
                                        "note": .string("simulated: image_1 holds the ground-truth object, data_1 the pattern")],
                           geometry: geometryRecord(g)).write(to: "\(folder)/\(stateName(index: i, label: s.label)).h5", overwrite: overwrite)
        }
        // The simulation's own metrics, plus the same quantities under `bragg analyze`'s
        // conventions (what an analysis of perfect reconstructions reports).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var doc = (try JSONSerialization.jsonObject(with: try encoder.encode(series.metrics)) as? [String: Any]) ?? [:]
        let truth = try SeriesAnalysis.groundTruth(objects: series.states.map(\.object), supports: series.states.map(\.support),
                                                   labels: series.states.map(\.label), geometry: g)
        doc["analysis_convention"] = SeriesOutputs.groundTruth(truth)
        doc["analysis_convention_note"] = "Δφ_mean, Ω and the edge FWHM as bragg analyze computes them on the true objects (support: amplitude above half its interior level; core-median global phase; ramp removed; majority common support; erf edge fit in the lab frame); compare reconstructions against these. Phase retrieval may return the whole series as the twin of the truth: its Δφ_mean then all change sign (Ω and edge widths stay); decide that once for the series, from the reference's overlap with the true object, never per state"
        let json = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try SafeOutput.write(to: folder + "/ground_truth.json", overwrite: overwrite) {
            _ = FileManager.default.createFile(atPath: $0, contents: json)
        }
    }
}
