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
        } catch let e as ReportError { throw UsageError(e.description) }
        bar.finish()
        printReportSummary(out)
    }
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
