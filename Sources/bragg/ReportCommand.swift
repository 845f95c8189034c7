import ArgumentParser
import Foundation
import Report

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write DIR/report.html from a `bragg analyze` output folder: Table 1, slices, isosurfaces, PCA, χ², provenance.",
        discussion: """
            DIR must hold table.json, pca.json and the state_*.vti files that `bragg analyze --out DIR` \
            writes. Figures go to DIR/figures (PNG and SVG, drawn by BraggKit; meshes as PLY and OBJ). \
            If DIR/provenance.json exists (`bragg demo` writes one) the report also lists each state's \
            reconstruction method, runs kept, χ² per iteration, loss curves, ground truth, the exact \
            commands, seeds and input checksums. The page needs no network.
            """
    )

    @Argument(help: "Analysis folder.")
    var directory: String

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw UsageError("\(directory) is not a folder: give the --out folder of `bragg analyze`")
        }
        try checkOutputFolder(directory)   // report.html and figures/ go here (#22)
        let provenance = try loadProvenance(directory)
        let bar = ProgressBar(quiet: common.quiet, unit: "fig")
        let out: SeriesReportBuilder.Output
        do {
            out = try SeriesReportBuilder.build(directory: directory, provenance: provenance, progress: bar.handler)
        } catch let e as ReportError { throw UsageError(commandLineMessage(for: e)) }
        bar.finish()
        if let line = geometryLine(directory) { print(line) }
        printReportSummary(out)
    }
}

/// One line on the geometry the analysis used, from DIR/table.json (what `bragg analyze`
/// records: the source, the beamline, |Q| and the voxel), or nil for older folders.
func geometryLine(_ dir: String) -> String? {
    guard let d = FileManager.default.contents(atPath: dir + "/table.json"),
          let t = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
          let q = t["q_magnitude_per_m"] as? Double else { return nil }
    let rec = t["geometry_record"] as? [String: Any] ?? [:]
    var s = "geometry from \(t["geometry_source"] as? String ?? "the analysis")"
    if let b = rec["beamline"] as? String { s += " (beamline \(b))" }
    s += String(format: ": |Q| = %.5g Å⁻¹", q * 1e-10)
    if let v = t["voxel_size_nm"] as? [Double], v.count == 3 {
        s += String(format: ", reconstruction voxel %.2f × %.2f × %.2f nm", v[0], v[1], v[2])
    }
    if let e = t["crystal_extent_lab_um"] as? [String: Double], let x = e["x"], let y = e["y"], let z = e["z"] {
        s += String(format: ", crystal %.3f × %.3f × %.3f µm (x, y, z)", x, y, z)
    }
    if let o = t["geometry_overrides"] as? String { s += "; " + o }
    return s
}

/// Reads DIR/provenance.json when present.
func loadProvenance(_ dir: String) throws -> Provenance? {
    let path = dir + "/provenance.json"
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    do { return try JSONDecoder().decode(Provenance.self, from: d) } catch {
        throw UsageError("\(path) is not a BraggKit provenance file: \(error.localizedDescription)")
    }
}

/// Prints the report's path and a short Table 1.
func printReportSummary(_ out: SeriesReportBuilder.Output) {
    print("state            Δφ_mean(°)  u=Δφ/|Q|(Å)  ε(‰)      Ω_norm   χ²")
    for s in out.states {
        let l = s.label.count > 16 ? String(s.label.prefix(16)) : s.label.padding(toLength: 16, withPad: " ", startingAt: 0)
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "–" }
        print("\(l) \(f(s.deltaPhiDeg, "%10.2f"))  \(f(s.displacementA, "%11.4f"))  \(f(s.strainPermille, "%8.4f"))  \(f(s.omegaNormalised, "%7.3f"))  \(f(s.chi2, "%.4f"))")
    }
    print("report: \(out.html) (\(out.figures.count) figures)")
}
