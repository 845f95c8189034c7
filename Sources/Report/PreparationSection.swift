import Foundation
import Formats
import Numerics

/// The report's account of how each state's pattern was made from its rocking scans, read
/// from the CXI files `bragg prepare` (or `bragg demo`) wrote: how many scans were summed,
/// the shift that registered each scan onto the first, each scan's correlation with the
/// first, the bad pixels found and the masked voxels of the pattern.
public enum PreparationSection {
    /// One state's preparation.
    public struct State: Sendable {
        public var label: String
        public var file: String
        /// Per scan (in the order given to the preparation).
        public var shifts: [[Double]]
        public var correlations: [Double]
        public var included: [Bool]
        /// Hot and constant (dead, gap) pixels found per scan, when the file records them.
        public var hotPixels: [Int]?
        public var constantPixels: [Int]?
        public var maskedVoxels: Int
        public var voxels: Int
        public var shape: [Int]
        /// RMS over scans and axes of the registration shift minus the drift the scans were
        /// simulated with (relative to the first scan), pixels: only for simulated scans whose
        /// files record their drift (/entry/simulation/drift) and are still where they were.
        public var registrationErrorRMS: Double?

        public var scansSummed: Int { included.filter { $0 }.count }
        public var maskedFraction: Double { voxels > 0 ? Double(maskedVoxels) / Double(voxels) : .nan }
    }

    /// Reads what the preparation of `label` recorded in `path`.
    public static func read(label: String, path: String) throws -> State {
        let r: CXIResults
        do { r = try CXIResults.read(from: path) } catch {
            throw ReportError.invalid("state '\(label)': cannot read its prepared pattern \(path): \(error)")
        }
        guard let mask = r.mask ?? r.pattern.map({ RealVolume(shape: $0.shape) }) else {
            throw ReportError.invalid("state '\(label)': \(path) holds no pattern at \(CXIResults.patternPath)")
        }
        guard let s = r.arrays["scan_shifts"], s.shape.count == 2, s.shape[1] == 3,
              let sv = try? s.realVolume(source: path, dataset: "scan_shifts") else {
            throw ReportError.invalid("state '\(label)': \(path) records no scan shifts (\(CXIResults.processPath)/arrays/scan_shifts): is it a pattern made by `bragg prepare`?")
        }
        let n = s.shape[0]
        let flat = sv.withUnsafeFloats { p in p.map(Double.init) }
        let shifts = (0..<n).map { Array(flat[(3 * $0)..<(3 * $0 + 3)]) }
        func values(_ name: String) -> [Double]? {
            guard let a = r.arrays[name], a.count == n, let v = try? a.realVolume(source: path, dataset: name) else { return nil }
            return v.withUnsafeFloats { p in p.map(Double.init) }
        }
        let correlations = values("scan_correlations") ?? [Double](repeating: .nan, count: n)
        let included = values("scan_included").map { $0.map { $0 != 0 } } ?? [Bool](repeating: true, count: n)
        var state = State(label: label, file: path, shifts: shifts, correlations: correlations, included: included,
                          hotPixels: values("scan_hot_pixels")?.map { Int($0) }, constantPixels: values("scan_constant_pixels")?.map { Int($0) },
                          maskedVoxels: Int(mask.sum()), voxels: mask.count, shape: mask.shape)
        if case .string(let sources)? = r.parameters["scans"] {
            state.registrationErrorRMS = registrationError(sources: sources.split(separator: "\n").map(String.init), state: state)
        }
        return state
    }

    /// RMS of (shift_k − shift_0) + (drift_k − drift_0) over the included scans, when every
    /// scan file records the drift it was simulated with.
    static func registrationError(sources: [String], state: State) -> Double? {
        guard sources.count == state.shifts.count, sources.count > 1 else { return nil }
        var drifts: [[Double]] = []
        for s in sources {
            // Sources read "FILE:DATASET" with DATASET an absolute HDF5 path.
            let file = s.range(of: ":/", options: .backwards).map { String(s[..<$0.lowerBound]) } ?? s
            guard FileManager.default.fileExists(atPath: file), let f = try? HDF5File(reading: file),
                  f.isDataset("/entry/simulation/drift"), let d = try? f.readDoubles("/entry/simulation/drift"), d.count == 3 else { return nil }
            drifts.append(d)
        }
        var sum = 0.0, count = 0
        for k in 1..<sources.count where state.included[k] {
            for a in 0..<3 {
                let e = (state.shifts[k][a] - state.shifts[0][a]) + (drifts[k][a] - drifts[0][a])
                sum += e * e; count += 1
            }
        }
        return count > 0 ? (sum / Double(count)).squareRoot() : nil
    }

    /// The section: a table per state and figures of the shifts and correlations per scan.
    /// `saveText(svg, name)` writes a figure and returns its path for the page.
    static func section(_ states: [State], saveText: (String, String) throws -> String) throws -> ReportSection {
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "–" }
        let simulated = states.contains { $0.registrationErrorRMS != nil }
        var headers = ["state", "scans summed", "shift range: frames (px)", "rows (px)", "columns (px)",
                       "correlation with the first scan: min (median)", "hot / constant pixels found (per scan, max)",
                       "masked voxels (fraction)", "pattern shape"]
        if simulated { headers.append("registration error vs simulated drift (px RMS)") }
        let rows = states.map { s -> [String] in
            let kept = s.shifts.indices.filter { s.included[$0] }
            let axes = (0..<3).map { a -> String in
                let v = kept.map { s.shifts[$0][a] }
                return String(format: "%+.2f … %+.2f", v.min() ?? 0, v.max() ?? 0)
            }
            let c = s.correlations.indices.filter { $0 > 0 }.map { s.correlations[$0] }.sorted()
            let corr = c.isEmpty ? "–" : String(format: "%.4f (%.4f)", c[0], c[c.count / 2])
            let bad = "\(s.hotPixels?.max().map(String.init) ?? "–") / \(s.constantPixels?.max().map(String.init) ?? "–")"
            var row = [s.label, "\(s.scansSummed) of \(s.shifts.count)", axes[0], axes[1], axes[2], corr, bad,
                       String(format: "%d (%.2f%%)", s.maskedVoxels, 100 * s.maskedFraction), s.shape.map(String.init).joined(separator: "×")]
            if simulated { row.append(f(s.registrationErrorRMS, "%.3f")) }
            return row
        }
        var paragraphs = [
            "Each state's rocking scans were prepared as `bragg prepare` does: frames normalised by the monitor to the first scan's mean, hot pixels (frame sum above 10 × their neighbours' median + 1) and constant pixels among bright neighbours masked and filled, each scan registered to the first on a box around the Bragg peak (3D cross-correlation, upsampled DFT, 1/20 pixel), shifted (Fourier) and summed; the sum was centred on the Bragg peak's centre of mass and cut to one common shape for the series, padded with masked voxels where the data end.",
            "A shift is what moved a scan onto the first (frames, detector rows, detector columns); masked voxels are the detector mask, the bad pixels found, their positions in every shifted scan and the slabs that wrapped around in the shifts or lie outside the data.",
        ]
        if simulated {
            paragraphs.append("The scans were simulated: the last column compares each shift with the drift the scan was simulated with (relative to the first scan's), which the experimenter would not know.")
        }
        var figures: [ReportFigure] = []
        for (a, axis) in ["frames (rocking angle)", "detector rows", "detector columns"].enumerated() {
            let series = states.enumerated().map { i, s in
                PlotSeries(name: s.label, x: s.shifts.indices.map { Double($0 + 1) }, y: s.shifts.map { $0[a] },
                           colour: SVGPlot.palette[i % SVGPlot.palette.count])
            }
            var plot = SVGPlot(title: "registration shift along \(axis)", xTitle: "scan", yTitle: "shift (px)", series: series, referenceY: 0)
            plot.width = 420; plot.height = 280
            figures.append(ReportFigure(caption: "Shift that registered each scan onto the first, along \(axis), per state.",
                                        path: try saveText(plot.svg(), "preparation_shift_\(["frames", "rows", "columns"][a]).svg")))
        }
        let corr = states.enumerated().map { i, s in
            PlotSeries(name: s.label, x: s.correlations.indices.dropFirst().map { Double($0 + 1) }, y: Array(s.correlations.dropFirst()),
                       colour: SVGPlot.palette[i % SVGPlot.palette.count])
        }
        var plot = SVGPlot(title: "correlation with the first scan", xTitle: "scan", yTitle: "correlation coefficient", series: corr)
        plot.width = 420; plot.height = 280
        figures.append(ReportFigure(caption: "Correlation coefficient of each registered scan with the first (on the registration box); a scan below the threshold (0.5 by default) is left out.",
                                    path: try saveText(plot.svg(), "preparation_correlation.svg")))
        return ReportSection(title: "Preparation: from rocking scans to patterns", paragraphs: paragraphs,
                             tables: [ReportTable(headers: headers, rows: rows)], figures: figures)
    }
}
