import Foundation
import Formats
import Numerics

/// The report's account of the partial coherence each iterative reconstruction modelled: the
/// point-spread function K of the model intensity |F|² ⊗ K (+ b) that `bragg phase` fitted,
/// read from its results file — the kernel's shape and widths of the written (best) run, every
/// run's widths, and the kernel's profile through its centre along each axis.
public enum PointSpreadSection {
    /// One state's point-spread function.
    public struct State: Sendable {
        public var label: String
        /// "gauss", "lorentz" or "pvoigt".
        public var model: String
        /// The best run's full width at half maximum per axis (z, y, x), pixels.
        public var fwhm: [Double]
        public var eta: Double
        public var background: Double
        /// Every run's FWHM per axis (NaN for a run that failed or modelled none); empty
        /// when the file records only their means.
        public var runFWHM: [[Double]]
        /// The kernel as written (centred, cropped), when the file holds it.
        public var kernel: RealVolume?
        /// The choice of recipe alternative, when one was made (`bragg phase` with the default
        /// gaussian | lorentzian recipe): where, each alternative's best-run kernel FWHM and χ²
        /// there, and the alternative chosen (0-based; nil: none).
        public var choice: (iteration: Int, kernelFWHM: [Double], chi2: [Double], chosen: Int?)? = nil

        /// Every FWHM below 0.5 px: the run iterated with the coherent projection.
        public var negligible: Bool { background == 0 && fwhm.allSatisfy { $0 < 0.5 } }
    }

    /// The point-spread function recorded in an iterative reconstruction's results, or nil
    /// when it modelled none (coherent recipe, neural method).
    public static func read(label: String, results r: CXIResults) -> State? {
        guard case .string(let model)? = r.parameters["psf_model"], case .doubles(let fwhm)? = r.parameters["psf_fwhm_px"] else { return nil }
        var eta = 0.0, background = 0.0
        if case .double(let e)? = r.parameters["psf_eta"] { eta = e }
        if case .double(let b)? = r.parameters["psf_background_counts"] { background = b }
        var runs: [[Double]] = []
        if let z = r.curves["run_psf_fwhm_z_px"], let y = r.curves["run_psf_fwhm_y_px"], let x = r.curves["run_psf_fwhm_x_px"],
           z.count == y.count, y.count == x.count {
            runs = z.indices.map { [z[$0], y[$0], x[$0]] }
        }
        let kernel = try? r.arrays["psf"]?.realVolume(source: "results", dataset: "psf")
        var state = State(label: label, model: model, fwhm: fwhm, eta: eta, background: background, runFWHM: runs,
                          kernel: kernel?.shape.count == 3 ? kernel : nil)
        if let it = r.metrics["alternative_choice_iteration"], let w = r.curves["alternative_choice_kernel_fwhm"],
           let c = r.curves["alternative_choice_best_chi2"], w.count == c.count {
            let chosen = r.metrics["alternative_chosen"].flatMap { $0 >= 0 ? Int($0) : nil }
            state.choice = (Int(it), w, c, chosen)
        }
        return state
    }

    /// The kernel through its centre along `axis` (offsets in pixels), relative to its centre value.
    static func profile(_ k: RealVolume, axis: Int) -> (offsets: [Double], values: [Double]) {
        let s = k.shape, c = s.map { $0 / 2 }
        let centre = Double(k[c[0], c[1], c[2]])
        guard centre > 0 else { return ([], []) }
        var offsets: [Double] = [], values: [Double] = []
        for i in 0..<s[axis] {
            var p = c; p[axis] = i
            offsets.append(Double(i - c[axis])); values.append(Double(k[p[0], p[1], p[2]]) / centre)
        }
        return (offsets, values)
    }

    /// "1 (chosen): FWHM 1.20 px, χ² 0.0118 · 2: FWHM 0.23 px, χ² 0.0206 (iteration 600)", or "–".
    static func choiceText(_ s: State) -> String {
        guard let c = s.choice else { return "–" }
        let parts = c.kernelFWHM.indices.map { a in
            "\(a + 1)\(c.chosen == a ? " (chosen)" : ""): " + (c.chi2[a].isFinite ? String(format: "FWHM %.2f px, χ² %.4g", c.kernelFWHM[a], c.chi2[a]) : "no run there")
        }
        return parts.joined(separator: " · ") + " (iteration \(c.iteration)" + (c.chosen == nil ? ", none chosen)" : ")")
    }

    static func modelName(_ m: String) -> String {
        switch m { case "gauss": return "Gaussian"; case "lorentz": return "Lorentzian"; case "pvoigt": return "pseudo-Voigt"; default: return m }
    }

    /// The section: a table of each state's kernel and its runs' widths, and a profile figure
    /// per state that holds its kernel. `saveText(svg, name)` writes a figure, returns its path.
    static func section(_ states: [State], saveText: (String, String) throws -> String) throws -> ReportSection {
        func w(_ v: [Double]) -> String { v.map { $0.isFinite ? String(format: "%.2f", $0) : "–" }.joined(separator: ", ") }
        let rows = states.map { s -> [String] in
            var shape = modelName(s.model)
            if s.model == "pvoigt" { shape += String(format: " (η %.2f)", s.eta) }
            let sigma = s.model == "gauss" ? w(s.fwhm.map { $0 / (2 * (2 * log(2.0)).squareRoot()) }) : "–"
            let runs = s.runFWHM.isEmpty ? "–" : s.runFWHM.enumerated().map { "\($0.offset + 1): \(w($0.element))" }.joined(separator: "; ")
            return [s.label, shape, w(s.fwhm), sigma, s.background > 0 ? String(format: "%.3g", s.background) : "0",
                    s.negligible ? "no (every FWHM < 0.5 px: coherent projection)" : "yes", runs, choiceText(s)]
        }
        let table = ReportTable(headers: ["state", "kernel", "FWHM z, y, x (px)", "Gaussian σ z, y, x (px)", "background (counts)",
                                          "blur modelled", "FWHM z, y, x of each run (px)", "recipe alternatives compared"], rows: rows)
        let paragraphs = [
            "Partial coherence (and detector blur) seen in the detector's pixels: the reconstruction's model intensity is |F|² convolved with a point-spread function K (separable per axis: z the rocking angle, y the detector rows, x the columns), whose widths were fitted to the measured pattern during the run (psf=auto in the recipe). The widths are those of the written result's best run; a kernel with every FWHM below 0.5 px leaves the run on the coherent projection.",
            "With the default recipe, runs alternate between a Gaussian and a Lorentzian kernel; where the two recipes part (iteration 600) each one's best run is compared, and the alternative whose kernel models the blur (the other's modelling almost none, or its χ² lower by the --alternative-choice factor) takes over the other's runs. The last column gives each alternative's kernel FWHM (mean over the axes) and χ² there.",
        ]
        var figures: [ReportFigure] = []
        for (i, s) in states.enumerated() {
            guard let k = s.kernel, !s.negligible else { continue }
            let series = ["z (rocking)", "y (rows)", "x (columns)"].enumerated().compactMap { a, name -> PlotSeries? in
                let p = profile(k, axis: a)
                return p.values.isEmpty ? nil : PlotSeries(name: name, x: p.offsets, y: p.values, colour: SVGPlot.palette[a])
            }
            guard !series.isEmpty else { continue }
            var plot = SVGPlot(title: "point-spread function, \(s.label)", xTitle: "offset (px)", yTitle: "K / K(0)", series: series, referenceY: 0)
            plot.width = 420; plot.height = 280
            figures.append(ReportFigure(caption: "\(s.label): the fitted \(modelName(s.model)) kernel through its centre along each axis, relative to its centre value (FWHM \(w(s.fwhm)) px).",
                                        path: try saveText(plot.svg(), String(format: "psf_state_%02d.svg", i))))
        }
        return ReportSection(title: "Partial coherence: the point-spread function found in phasing", paragraphs: paragraphs,
                             tables: [table], figures: figures)
    }
}
