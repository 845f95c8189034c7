import Foundation
import Formats
import Numerics

/// What a report folder records besides the analysis: how it was made.
/// Written by `bragg demo` as provenance.json; optional for `bragg report`.
public struct Provenance: Codable, Sendable {
    public var braggkitVersion: String
    public var commands: [String]
    public var seeds: [String: UInt64]
    /// Input files (patterns, frames) whose checksums the report lists.
    public var inputs: [String]
    /// Per state label: its reconstruction results file (for the method, runs, χ² curve).
    public var reconstructions: [String: String]
    /// Per state label: a second reconstruction (e.g. the neural one) to compare.
    public var alternatives: [String: String]
    /// Per state label: ground-truth values when the series was simulated (Δφ_mean in degrees, Ω normalised).
    public var groundTruth: [String: [String: Double]]
    /// Training loss curve of the neural model used, when there was one.
    public var trainingLoss: [Double]
    /// Validation loss per epoch of that model, when known.
    public var validationLoss: [Double]?
    /// The epoch at which each of the model's training runs began (fine-tuning runs
    /// continue the epochs of the model they started from), when known.
    public var trainingRunStarts: [Int]?
    public var notes: [String]
    /// Per state label: the pattern `bragg prepare` made from its rocking scans (a CXI file
    /// with each scan's shift and correlation), when the series started from frames.
    public var preparations: [String: String]?

    public init(braggkitVersion: String, commands: [String] = [], seeds: [String: UInt64] = [:], inputs: [String] = [],
                reconstructions: [String: String] = [:], alternatives: [String: String] = [:],
                groundTruth: [String: [String: Double]] = [:], trainingLoss: [Double] = [], validationLoss: [Double]? = nil,
                trainingRunStarts: [Int]? = nil, notes: [String] = [], preparations: [String: String]? = nil) {
        self.braggkitVersion = braggkitVersion; self.commands = commands; self.seeds = seeds; self.inputs = inputs
        self.reconstructions = reconstructions; self.alternatives = alternatives; self.groundTruth = groundTruth
        self.trainingLoss = trainingLoss; self.validationLoss = validationLoss; self.trainingRunStarts = trainingRunStarts
        self.notes = notes; self.preparations = preparations
    }
}

/// Builds `report.html` and its figures from a `bragg analyze` output folder.
public enum SeriesReportBuilder {
    /// One state's row of table.json, as the report uses it.
    public struct StateRow: Sendable {
        public var label: String, condition: String
        public var chi2: Double?, deltaPhiDeg: Double?, displacementA: Double?, seedDisplacementA: Double?
        public var strainPermille: Double?, omega: Double?, omegaNormalised: Double?
        public var filled: Int?, edgeResolutionNm: Double?, prtfResolutionNm: Double?, twin: Bool?
    }

    /// The result: the page, every figure written, and the table rows (to print).
    public struct Output: Sendable {
        public var html: String
        public var figures: [String]
        public var states: [StateRow]
    }

    static func number(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }

    static func readJSON(_ path: String) throws -> [String: Any] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw ReportError.analysisMissing(path: path)
        }
        guard let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw ReportError.invalid("\(path) is not a JSON object")
        }
        return o
    }

    static func fmt(_ v: Double?, _ f: String) -> String { v.map { String(format: f, $0) } ?? "–" }

    /// Reads the analysis in `dir`, draws every figure into `dir/figures`, writes
    /// `dir/report.html` (temporary name, then rename) and returns what it wrote.
    public static func build(directory dir: String, provenance: Provenance? = nil, progress: ProgressHandler? = nil) throws -> Output {
        let table = try readJSON(dir + "/table.json")
        let pca = try readJSON(dir + "/pca.json")
        guard let rows = table["states"] as? [[String: Any]], !rows.isEmpty else {
            throw ReportError.invalid("\(dir)/table.json lists no states")
        }
        let states = rows.map { r in
            StateRow(label: r["label"] as? String ?? "?", condition: r["condition"] as? String ?? "",
                     chi2: number(r["chi2"]), deltaPhiDeg: number(r["delta_phi_mean_deg"]),
                     displacementA: number(r["mean_relative_displacement_A"]),
                     seedDisplacementA: number(r["mean_relative_displacement_seed_convention_A"]),
                     strainPermille: number(r["mean_relative_strain_permille"]), omega: number(r["omega_rad"]),
                     omegaNormalised: number(r["omega_normalised"]), filled: (r["filled_voxels"] as? NSNumber)?.intValue,
                     edgeResolutionNm: number(r["edge_resolution_nm"]), prtfResolutionNm: number(r["prtf_resolution_nm"]),
                     twin: r["twin_flipped"] as? Bool)
        }
        let labels = states.map(\.label)
        let geometry = table["geometry"] as? [String: Any] ?? [:]
        let labGrid = table["lab_grid"] as? [String: Any]
        let voxelNm = number(labGrid?["voxel_nm"]) ?? 1
        // Every state listed in table.json needs its .vti (when the analysis wrote any):
        // a missing one would otherwise drop that state from every figure without a word.
        let stateFiles = (try FileManager.default.contentsOfDirectory(atPath: dir)).filter { $0.hasPrefix("state_") && $0.hasSuffix(".vti") }
        if labGrid != nil || !stateFiles.isEmpty {
            for (i, s) in states.enumerated() where !stateFiles.contains(where: { $0.hasPrefix(String(format: "state_%02d_", i)) }) {
                throw ReportError.stateFileMissing(folder: dir, state: i, label: s.label, states: states.count)
            }
        }
        let figDir = dir + "/figures"
        try FileManager.default.createDirectory(atPath: figDir, withIntermediateDirectories: true)
        var written: [String] = []
        func save(_ img: RGBImage, _ name: String) throws -> String {
            try img.writePNG(to: figDir + "/" + name)
            written.append("figures/" + name); return "figures/" + name
        }
        func saveText(_ text: String, _ name: String) throws -> String {
            try SafeOutput.write(to: figDir + "/" + name, overwrite: true) { try text.write(toFile: $0, atomically: false, encoding: .utf8) }
            written.append("figures/" + name); return "figures/" + name
        }

        // The lab-frame fields of every state, from its .vti.
        let vtis = (try FileManager.default.contentsOfDirectory(atPath: dir)).filter { $0.hasPrefix("state_") && $0.hasSuffix(".vti") }.sorted()
        struct Fields { var amplitude, phase, dphi, strain, support, region, projection: RealVolume }
        var fields: [Fields] = []
        for (i, v) in vtis.enumerated() {
            progress?(ProgressReport(stage: "reading states", done: i, total: vtis.count))
            func arr(_ name: String) throws -> RealVolume { try VTI.read(dir + "/" + v, array: name).realVolume(source: v, dataset: name) }
            fields.append(Fields(amplitude: try arr("amplitude"), phase: try arr("phase"), dphi: try arr("delta_phase"),
                                 strain: try arr("strain"), support: try arr("support"), region: try arr("pca_region"),
                                 projection: try arr("inverse_pca")))
        }
        var sections: [ReportSection] = []

        // Table 1.
        let t1 = ReportTable(
            headers: ["state", "condition", "χ²", "Δφ_mean (°)", "u = Δφ/|Q| (Å)", "seed's 2Δφ/|Q| (Å)", "ε (‰)", "Ω (rad)", "Ω normalised"],
            rows: states.map { s in [s.label, s.condition, fmt(s.chi2, "%.4f"), fmt(s.deltaPhiDeg, "%.2f"), fmt(s.displacementA, "%.4f"),
                                     fmt(s.seedDisplacementA, "%.4f"), fmt(s.strainPermille, "%.4f"), fmt(s.omega, "%.3f"),
                                     fmt(s.omegaNormalised, "%.3f")] })
        var t1Notes = [
            "Relative to \(table["reference"] as? String ?? labels[0]). Displacement convention: u = φ/|Q| (φ = Q·u); the seed's Table 1 prints 2φ/|Q|, given in its own column.",
            "Δφ_mean: mean over the common support of the per-voxel phase difference wrapped to (−π, π]. ε: mean relative strain along Q. Ω: PCA order parameter (Eqs. 2–3), sign so the largest |Ω| is positive.",
        ]
        if let q = number(geometry["q_magnitude_per_m"]) {
            t1Notes.append(String(format: "|Q| = %.4g m⁻¹; energy %.4g keV; 2θ = %.2f°; lab voxel %.1f nm.", q,
                                  (number(geometry["energy_eV"]) ?? 0) / 1000, number(geometry["two_theta_deg"]) ?? 0, voxelNm))
        }
        var tables = [t1]
        if let gt = provenance?.groundTruth, !gt.isEmpty {
            tables.append(ReportTable(headers: ["state", "true Δφ_mean (°)", "recovered Δφ_mean (°)", "true Ω normalised", "recovered Ω normalised"],
                                      rows: states.map { s in [s.label, fmt(gt[s.label]?["delta_phi_mean_deg"], "%.2f"), fmt(s.deltaPhiDeg, "%.2f"),
                                                               fmt(gt[s.label]?["omega_normalised"], "%.3f"), fmt(s.omegaNormalised, "%.3f")] }))
            t1Notes.append("The series was simulated: the second table compares with its ground truth.")
        }
        sections.append(ReportSection(title: "Table 1: phase change, displacement and strain against the reference", paragraphs: t1Notes, tables: tables))

        // Fig. 3a: slices of every state through the reference's centre (perpendicular to z, the beam).
        var figs3: [ReportFigure] = []
        if !fields.isEmpty {
            let ref = fields[0]
            let kz = min(max(Int(ref.support.centreOfMass()[0].rounded()), 0), ref.support.shape[0] - 1)
            let aMax = fields.map { Double($0.amplitude.maximum()) }.max() ?? 1
            let sMax = max(1e-6, fields.map { f -> Double in
                let a = f.strain.withUnsafeFloats { p in p.map { abs(Double($0)) }.filter(\.isFinite) }.sorted()
                return a.isEmpty ? 0 : a[Int(0.99 * Double(a.count - 1))]
            }.max() ?? 1e-3)
            var rowsImg: [[RGBImage]] = []
            for (i, f) in fields.enumerated() {
                progress?(ProgressReport(stage: "drawing slices", done: i, total: fields.count))
                let s = try f.support.slice(axis: 0, index: kz)
                let px = (voxelNm, voxelNm)
                rowsImg.append([
                    try SliceFigure.render(SlicePanel(title: "amplitude", values: f.amplitude.slice(axis: 0, index: kz), map: .grey,
                                                      range: (0, aMax), unit: "a.u.", pixelSize: px), targetSize: 180),
                    try SliceFigure.render(SlicePanel(title: "phase", values: f.phase.slice(axis: 0, index: kz), support: s, map: .phase,
                                                      range: (-.pi, .pi), unit: "rad", pixelSize: px), targetSize: 180),
                    try SliceFigure.render(SlicePanel(title: "Δφ", values: f.dphi.slice(axis: 0, index: kz), support: s, map: .diverging,
                                                      range: (-.pi, .pi), unit: "rad", pixelSize: px), targetSize: 180),
                    try SliceFigure.render(SlicePanel(title: "strain", values: (try f.strain.slice(axis: 0, index: kz)).scaled(1000), support: s,
                                                      map: .diverging, range: (-sMax * 1000, sMax * 1000), unit: "‰", pixelSize: px), targetSize: 180),
                ])
            }
            figs3.append(ReportFigure(caption: "Central slices (z = \(kz), perpendicular to the beam) of every state in the lab frame: amplitude, phase (cyclic map, inside the common support), phase change Δφ against the reference and strain along Q (diverging maps). As the seed's Fig. 3a.",
                                      path: try save(SliceFigure.montage(rowsImg, rowLabels: labels), "slices_all_states.png")))
        }
        // Fig. 3b: Ω against state.
        let omegas = states.map { $0.omegaNormalised ?? .nan }
        var omegaSeries = [PlotSeries(name: "recovered", x: omegas.indices.map(Double.init), y: omegas)]
        if let gt = provenance?.groundTruth, !gt.isEmpty {
            omegaSeries.append(PlotSeries(name: "ground truth", x: omegas.indices.map(Double.init),
                                          y: labels.map { gt[$0]?["omega_normalised"] ?? .nan }, colour: SVGPlot.palette[1]))
        }
        let explained = (pca["explained_variance"] as? [NSNumber])?.first?.doubleValue
        figs3.append(ReportFigure(caption: "PCA order parameter Ω (normalised) per state" + (explained.map { String(format: "; the principal component explains %.1f%% of the variance.", $0 * 100) } ?? ".") + " As the seed's Fig. 3b.",
                                  path: try saveText(SVGPlot(title: "PCA order parameter", xTitle: "state", yTitle: "Ω / max|Ω|",
                                                             series: omegaSeries, categories: labels, referenceY: 0).svg(), "pca_order_parameter.svg")))
        sections.append(ReportSection(title: "Phase, phase change and strain", figures: figs3))
        // Per state: the three orthogonal central planes of every field.
        var figsPlanes: [ReportFigure] = []
        if !fields.isEmpty {
            let centre = fields[0].support.centreOfMass().map { Int($0.rounded()) }
            let aMax = fields.map { Double($0.amplitude.maximum()) }.max() ?? 1
            for (i, f) in fields.enumerated() {
                progress?(ProgressReport(stage: "drawing planes", done: i, total: fields.count))
                var rowsImg: [[RGBImage]] = [[], [], [], []]
                for (axis, name) in [(0, "z"), (1, "y"), (2, "x")] {
                    let k = min(max(centre[axis], 0), f.support.shape[axis] - 1)
                    let sup = try f.support.slice(axis: axis, index: k)
                    let px = (voxelNm, voxelNm)
                    let strain = try f.strain.slice(axis: axis, index: k)
                    let sMax = max(1e-6, Double(max(abs(strain.maximum()), abs(strain.minimum()))))
                    rowsImg[0].append(try SliceFigure.render(SlicePanel(title: "amplitude \(name)=\(k)", values: f.amplitude.slice(axis: axis, index: k),
                                                                        map: .grey, range: (0, aMax), unit: "a.u.", pixelSize: px), targetSize: 160))
                    rowsImg[1].append(try SliceFigure.render(SlicePanel(title: "phase \(name)=\(k)", values: f.phase.slice(axis: axis, index: k),
                                                                        support: sup, map: .phase, range: (-.pi, .pi), unit: "rad", pixelSize: px), targetSize: 160))
                    rowsImg[2].append(try SliceFigure.render(SlicePanel(title: "Δφ \(name)=\(k)", values: f.dphi.slice(axis: axis, index: k),
                                                                        support: sup, map: .diverging, range: (-.pi, .pi), unit: "rad", pixelSize: px), targetSize: 160))
                    rowsImg[3].append(try SliceFigure.render(SlicePanel(title: "strain \(name)=\(k)", values: strain.scaled(1000), support: sup,
                                                                        map: .diverging, range: (-sMax * 1000, sMax * 1000), unit: "‰", pixelSize: px), targetSize: 160))
                }
                figsPlanes.append(ReportFigure(caption: "\(labels[i]): amplitude, phase, Δφ and strain along Q through the crystal's centre, perpendicular to z, y and x (lab frame).",
                                               path: try save(SliceFigure.montage(rowsImg), String(format: "planes_state_%02d.png", i)), width: 560))
            }
        }
        sections.append(ReportSection(title: "Per-state slices in three orthogonal planes", figures: figsPlanes))

        // Fig. 2 and Fig. 4: isosurfaces.
        var figs2: [ReportFigure] = []
        if !fields.isEmpty {
            let spacing = [voxelNm, voxelNm, voxelNm]
            var rowsImg: [[RGBImage]] = []
            for (i, f) in fields.enumerated() {
                progress?(ProgressReport(stage: "drawing isosurfaces", done: i, total: fields.count))
                let obj = try ComplexVolume(modulus: f.amplitude, phase: f.phase)
                let mesh = try ObjectFigures.isosurface(object: obj, fraction: 0.9, voxelSize: spacing)
                rowsImg.append([MeshRenderer.render([MeshLayer(mesh: mesh)], view: View(azimuth: 35, elevation: 25), size: 240),
                                MeshRenderer.render([MeshLayer(mesh: mesh)], view: View(azimuth: 215, elevation: -20), size: 240)])
                if i == 0 {
                    try SafeOutput.write(to: figDir + "/crystal_reference.ply", overwrite: true) { try mesh.plyText().write(toFile: $0, atomically: false, encoding: .utf8) }
                    try SafeOutput.write(to: figDir + "/crystal_reference.obj", overwrite: true) { try mesh.objText().write(toFile: $0, atomically: false, encoding: .utf8) }
                    written += ["figures/crystal_reference.ply", "figures/crystal_reference.obj"]
                }
            }
            figs2.append(ReportFigure(caption: "Every state's crystal at the amplitude level enclosing 90% of the amplitude, coloured by phase (cyclic map, −π to π), seen from two directions. As the seed's Fig. 2. The reference mesh is in figures/crystal_reference.ply and .obj.",
                                      path: try save(SliceFigure.montage(rowsImg, rowLabels: labels), "isosurfaces_all_states.png")))
            // Inverse PCA: the region driving ψ₁ opaque inside the translucent reference crystal.
            let ref = fields[0]
            let crystal = try Isosurface.extract(ref.support, level: 0.5, spacing: spacing)
            // The state that moves most along ψ₁ shows its map Ωᵢψ₁ best; draw the compact
            // region holding half of its weight (ψ₁², so sign does not matter), whose shape
            // says where the change happens. The 99% region is in the .vti (pca_region).
            let k = states.indices.max { abs(states[$0].omegaNormalised ?? 0) < abs(states[$1].omegaNormalised ?? 0) } ?? 0
            if k < fields.count {
                var w = fields[k].projection
                try w.multiply(by: fields[k].projection)
                try w.multiply(by: ref.support)
                if w.maximum() > 0 {
                    let smooth = try w.gaussianFiltered(sigma: 0.8, method: .separable)
                    let level = try Isosurface.level(enclosing: 0.5, of: smooth)
                    let region = try Isosurface.extract(smooth, level: level, spacing: spacing)
                    let views = [View(azimuth: 35, elevation: 25), View(azimuth: 125, elevation: 10), View(azimuth: 215, elevation: -20)]
                    let img = SliceFigure.montage([views.map { MeshRenderer.render([MeshLayer(mesh: region, colour: RGB(200, 40, 40)),
                                                                                    MeshLayer(mesh: crystal, colour: RGB(120, 150, 210), opacity: 0.25)],
                                                                                   view: $0, size: 260) }])
                    let frac = number(pca["region_fraction"]) ?? 0.99
                    figs2.append(ReportFigure(caption: String(format: "Inverse PCA (Eq. 4): where the phase change along the principal component happens — the region holding half of (Ωᵢψ₁)² for %@, the state furthest along ψ₁ (opaque red), inside the translucent crystal (common support), from three directions. As the seed's Fig. 4. The region holding %.0f%% of ψ₁'s weight is the pca_region array of each .vti.", labels[k], frac * 100),
                                              path: try save(img, "inverse_pca.png")))
                }
            }
        }
        sections.append(ReportSection(title: "Morphology and the regions that drive the phase change", figures: figs2))

        // Fidelity: χ² per state, per iteration; loss curves; per-state details.
        var figsF: [ReportFigure] = []
        let chis = states.map { $0.chi2 ?? .nan }
        if chis.contains(where: \.isFinite) {
            figsF.append(ReportFigure(caption: "χ² of each state's reconstruction (Eq. 1 of the seed: Σ(√D − √R)² / ΣR).",
                                      path: try saveText(SVGPlot(title: "χ² per state", xTitle: "state", yTitle: "χ²",
                                                                 series: [PlotSeries(name: "χ²", x: chis.indices.map(Double.init), y: chis)],
                                                                 categories: labels).svg(), "chi2_per_state.svg")))
        }
        var details: [[String]] = []
        var iterSeries: [PlotSeries] = [], refineSeries: [PlotSeries] = []
        var psfStates: [PointSpreadSection.State] = []
        for (i, s) in states.enumerated() {
            var method = "–", runs = "–"
            if let path = provenance?.reconstructions[s.label], let r = try? CXIResults.read(from: path) {
                if let p = PointSpreadSection.read(label: s.label, results: r) { psfStates.append(p) }
                if case .string(let a)? = r.parameters["algorithm"] {
                    method = a.hasPrefix("neural") ? "neural" : (a.hasPrefix("iterative") ? "iterative" : a)
                }
                if case .string(let rec)? = r.parameters["recipe"] { method += ": " + rec }
                if case .string(let m)? = r.parameters["model"] { method += ": " + (m as NSString).lastPathComponent }
                if case .int(let k)? = r.parameters["refine_steps"] { method += ", \(k) refinement steps" }
                if case .ints(let kept)? = r.parameters["kept_runs"], case .int(let n)? = r.parameters["runs"] {
                    runs = "\(kept.count) of \(n)"
                }
                if let c = r.curves["chi2"], let it = r.curves["chi2_iteration"], !c.isEmpty {
                    iterSeries.append(PlotSeries(name: s.label, x: it, y: c, colour: SVGPlot.palette[i % 6], markers: false))
                }
                if let l = r.curves["loss"], l.count > 1 {
                    refineSeries.append(PlotSeries(name: s.label, x: l.indices.map(Double.init), y: l, colour: SVGPlot.palette[i % 6], markers: false))
                }
            }
            var alt = "–"
            if let path = provenance?.alternatives[s.label], let r = try? CXIResults.read(from: path) {
                if let c = r.metrics["chi2"] { alt = String(format: "%.4f", c) }
                if let l = r.curves["loss"], l.count > 1 {
                    refineSeries.append(PlotSeries(name: s.label, x: l.indices.map(Double.init), y: l, colour: SVGPlot.palette[i % 6], markers: false))
                }
            }
            details.append([s.label, method, runs, fmt(s.chi2, "%.4f"), alt, fmt(s.edgeResolutionNm, "%.1f"), fmt(s.prtfResolutionNm, "%.1f"),
                            s.filled.map(String.init) ?? "–", s.twin.map { $0 ? "yes" : "no" } ?? "–"])
        }
        if !iterSeries.isEmpty {
            figsF.append(ReportFigure(caption: "χ² per iteration of the kept run of each state's iterative reconstruction.",
                                      path: try saveText(SVGPlot(title: "χ² per iteration", xTitle: "iteration", yTitle: "χ²",
                                                                 series: iterSeries, logY: true).svg(), "chi2_per_iteration.svg")))
        }
        // A curve needs two epochs; the provenance notes say how the model was trained.
        if let loss = provenance?.trainingLoss, loss.count >= 2 {
            var series = [PlotSeries(name: "training", x: loss.indices.map { Double($0 + 1) }, y: loss)]
            if let v = provenance?.validationLoss, !v.isEmpty {
                series.append(PlotSeries(name: "validation", x: v.indices.map { Double($0 + 1) }, y: v, colour: SVGPlot.palette[1]))
            }
            let starts = provenance?.trainingRunStarts ?? []
            let runs = starts.count > 1 ? " Its \(starts.count) training runs (each after the first fine-tuning the model the one before left) began at epochs \(starts.map(String.init).joined(separator: ", "))." : ""
            figsF.append(ReportFigure(caption: "Training and validation loss of the neural model per epoch (Fourier-amplitude loss). As the seed's Fig. 5b.\(runs)",
                                      path: try saveText(SVGPlot(title: "training loss", xTitle: "epoch", yTitle: "loss",
                                                                 series: series, logY: true).svg(), "training_loss.svg")))
        }
        if !refineSeries.isEmpty {
            figsF.append(ReportFigure(caption: "Refinement loss of the neural prediction on each measured pattern.",
                                      path: try saveText(SVGPlot(title: "refinement loss", xTitle: "step", yTitle: "loss",
                                                                 series: refineSeries, logY: true).svg(), "refinement_loss.svg")))
        }
        let detailTable = ReportTable(headers: ["state", "method", "runs kept", "χ²", "χ² (alternative method)", "edge resolution (nm)",
                                                "PRTF resolution (nm)", "filled voxels", "twin flipped"], rows: details)
        // How each state's pattern was prepared from its rocking scans, when the series began with frames.
        if let prep = provenance?.preparations, !prep.isEmpty {
            progress?(ProgressReport(stage: "preparation", done: 0, total: 1))
            let prepared = try labels.compactMap { l in try prep[l].map { try PreparationSection.read(label: l, path: $0) } }
            if !prepared.isEmpty { sections.append(try PreparationSection.section(prepared, saveText: saveText)) }
        }
        sections.append(ReportSection(title: "Reconstructions: fidelity and per-state details", tables: [detailTable], figures: figsF))
        if !psfStates.isEmpty { sections.append(try PointSpreadSection.section(psfStates, saveText: saveText)) }

        // Provenance.
        var prov: [(String, String)] = [("BraggKit", provenance?.braggkitVersion ?? "unknown"),
                                        ("report written", ISO8601DateFormatter().string(from: Date())),
                                        ("analysis folder", dir)]
        for (k, v) in (provenance?.seeds ?? [:]).sorted(by: { $0.key < $1.key }) { prov.append(("seed: \(k)", String(v))) }
        for n in provenance?.notes ?? [] { prov.append(("note", n)) }
        var files = (provenance?.inputs ?? []) + ["table.json", "pca.json"].map { dir + "/" + $0 }
        files += (provenance?.preparations ?? [:]).sorted(by: { $0.key < $1.key }).map(\.value)
        files += (provenance?.reconstructions ?? [:]).sorted(by: { $0.key < $1.key }).map(\.value)
        let checksums = try files.filter { FileManager.default.fileExists(atPath: $0) }.map { (file: $0, sha256: try SHA256.hex(file: $0)) }
        let summary = [
            "\(states.count) states of one crystal, aligned to one morphology and compared with \(table["reference"] as? String ?? labels[0]).",
            "Conventions: arrays in C order (z, y, x) of the lab frame (z along the beam, y up); φ = Q·u; u = φ/|Q|; strain along Q.",
        ]
        let page = HTMLReport.render(SeriesReport(title: "BraggKit report: operando series", summary: summary, sections: sections,
                                                  provenance: prov, commands: provenance?.commands ?? [], checksums: checksums))
        try SafeOutput.write(to: dir + "/report.html", overwrite: true) { try page.write(toFile: $0, atomically: false, encoding: .utf8) }
        progress?(ProgressReport(stage: "report", done: 1, total: 1))
        return Output(html: dir + "/report.html", figures: written, states: states)
    }
}

extension Volume where Element == Float {
    /// A copy multiplied by `s`.
    func scaled(_ s: Float) -> RealVolume { var v = self; v.scale(by: s); return v }
}
