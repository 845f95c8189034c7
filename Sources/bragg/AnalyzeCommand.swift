import ArgumentParser
import BraggKit
import Foundation

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyse an operando series: align the states, lab frame, displacement, strain, the seed's Table 1 and PCA.",
        discussion: """
            INPUTS is either one experiment file (.toml: [geometry], [analysis] and one [[state]] \
            per state with label, condition or voltage, file and optional runs; see \
            docs/experiment-file.md) or the reconstructions in order (CXI results of \
            `bragg phase`, or complex .npy / FILE:DATASET), with --labels; one results file is a \
            series of one state. Geometry: the experiment file's [geometry], else the one the \
            reference state's results file carries (what `bragg prepare` read from the beamline); \
            command-line values override either, and the override is printed. States of different \
            shapes are brought to the reference's shape (their Fourier transforms cropped or \
            padded, so they share its voxel), with a message.

            Each state's support is where its amplitude exceeds half its interior level \
            (--support-fraction). Every state is brought onto the reference (the first unless \
            --reference): phase ramp removed, object or twin by the larger complex overlap with \
            the reference after sub-voxel registration (table columns overlap_object, \
            overlap_twin), sub-voxel registration of the amplitudes, zero median phase in the \
            core, common support, missing density filled. The reference itself may be the twin \
            of the true object: the whole series then has every Δφ with its sign changed. Then Δφ against \
            the reference, u = φ/|Q|, strain along Q from the complex field, resolution, and the \
            PCA of the Δφ (Eqs. 2–4 of Serban et al. 2024).

            Displacement convention: u = φ/|Q|. The seed's Table 1 prints 2φ/|Q|; table.csv \
            gives both columns. Outputs in --out: table.csv, table.json (with the geometry, \
            its source, |Q| and the crystal's lab-frame extents), pca.json and one .vti \
            per state (lab frame: amplitude, phase, delta_phase, displacement, strain, support, \
            inverse_pca, pca_region), for ParaView.
            """
    )

    @Argument(help: "An experiment file (.toml), or the reconstructions in order.")
    var inputs: [String] = []

    @Option(help: "Comma-separated state labels (with reconstructions on the command line).")
    var labels: String?

    @OptionGroup(title: "Geometry (overrides the files')") var geometryOverrides: GeometryOverrideOptions

    @Option(help: "Reference state: a label or a 0-based index.")
    var reference: String?
    @Option(name: .customLong("core-fraction"), help: "Core = voxels deeper than this fraction of the largest depth (default 0.5).")
    var coreFraction: Double?
    @Option(name: .customLong("common-support"), help: "majority (default), union or intersection.")
    var commonSupport: CommonSupportRule?
    @Option(name: .customLong("fill-threshold"), help: "Missing density below this fraction of the state's and the others' amplitude (default 0.25).")
    var fillThreshold: Double?
    @Option(name: .customLong("voxel-nm"), help: "Lab-frame voxel size (nm; default the shortest reconstruction voxel edge).")
    var voxelNm: Double?
    @Option(name: .customLong("pca-fraction"), help: "Inverse PCA: region holding this fraction of the component's weight (default 0.99).")
    var pcaFraction: Double?
    @Option(name: .customLong("support-fraction"), help: "Each state's support: amplitude above this fraction of its interior level (default 0.5, the facets); 0 keeps the reconstruction's own support.")
    var supportFraction: Double?
    @Flag(name: .customLong("keep-ramp"), help: "Keep each state's linear phase ramp (a uniform strain stays in).")
    var keepRamp = false

    @OptionGroup var output: OutputFolderOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        let out = output.out, force = output.force
        try SeriesOutputs.check(folder: out, overwrite: force)   // before any work (#22)
        common.apply()
        guard !inputs.isEmpty else { throw UsageError("give an experiment file (.toml) or the reconstructions to analyse") }
        // 1. The states, geometry and options.
        var specs: [Experiment.State]
        var geometry: BraggGeometry? = nil
        var options = AnalysisOptions()
        if inputs.count == 1 && inputs[0].lowercased().hasSuffix(".toml") {
            let e = try Experiment.load(path: inputs[0])
            specs = e.states; geometry = e.geometry; options = e.options
            if labels != nil { throw UsageError("--labels is for reconstructions given on the command line; the experiment file labels its states") }
        } else {
            let names = labels.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
                ?? inputs.map { (($0.split(separator: ":").first.map(String.init) ?? $0) as NSString).lastPathComponent }
            guard names.count == inputs.count else {
                throw UsageError("--labels names \(names.count) states but \(inputs.count) reconstructions were given")
            }
            specs = zip(names, inputs).map { Experiment.State(label: $0, condition: "", file: $1, runs: []) }
        }
        if let r = reference {
            if let i = Int(r) { options.reference = i }
            else if let i = specs.firstIndex(where: { $0.label == r }) { options.reference = i }
            else { throw UsageError("--reference '\(r)' is neither an index nor a state label") }
        }
        if let v = coreFraction { options.coreFraction = v }
        if let v = commonSupport { options.commonSupport = v }
        if let v = fillThreshold { options.fillThreshold = v }
        if let v = voxelNm { options.labVoxelSize = v * 1e-9 }
        if let v = pcaFraction { options.pcaRegionFraction = v }
        if keepRamp { options.removeRamp = false }
        if let v = supportFraction { options.supportFraction = v == 0 ? nil : v }
        try options.validate(states: specs.count)

        // Files: existence first (a clear message naming the state), then the output folder.
        for s in specs {
            for f in [s.file] + s.runs {
                let path = String(f.split(separator: ":", maxSplits: 1).first ?? Substring(f))
                guard FileManager.default.fileExists(atPath: path) else {
                    throw UsageError("state '\(s.label)': file '\(path)' does not exist")
                }
            }
        }

        // 2. Read the reconstructions.
        let bar = ProgressBar(quiet: common.quiet, unit: "state")
        var states: [StateInput] = []
        var storedGeometry: CXIGeometry? = nil
        for (i, s) in specs.enumerated() {
            bar.update(ProgressReport(stage: "read", done: i, total: specs.count))
            let r = try read(s.file, label: s.label)
            if i == options.reference { storedGeometry = r.geometry }
            var runs: [ComplexVolume] = []
            for f in s.runs { runs.append(try read(f, label: s.label).object) }
            states.append(StateInput(label: s.label, condition: s.condition, object: r.object, support: r.support, chi2: r.chi2,
                                     runs: runs, pattern: runs.isEmpty ? nil : r.pattern))
        }

        // 3. Geometry: command line over experiment file over the reference's results file.
        let overrides = try geometryOverrides.overrides()
        let resolved: ResolvedGeometry
        do {
            resolved = try GeometryMerge.resolve(experiment: geometry, experimentSource: "the experiment file \(inputs[0])",
                                                 stored: storedGeometry, storedSource: specs[options.reference].file,
                                                 overrides: overrides)
        } catch PipelineError.noGeometry {
            throw UsageError("no geometry: the results files record none and no [geometry] was given; give [geometry] in the experiment file or --energy-kev, --two-theta, --distance, --pixel-um and --rocking-step")
        } catch let e as PipelineError { throw UsageError(e.description) }
        let geo = resolved.geometry
        print(resolved.summary)

        // One shape for the series.
        do {
            for m in try SeriesShapes.conform(&states, reference: options.reference) { bar.message(m) }
        } catch let e as PipelineError { throw UsageError(e.description) }

        // 4. Analyse.
        let t0 = Date()
        let result = try SeriesAnalysis.run(states: states, geometry: geo, options: options, progress: bar.handler)
        bar.finish()
        let elapsed = Date().timeIntervalSince(t0)

        // 5. Write (the folder is made only now: a failed analysis leaves nothing behind).
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let vtis = try SeriesOutputs.write(result, to: out, overwrite: force,
                                           tableExtras: SeriesOutputs.geometryExtras(resolved, result: result, reference: options.reference))

        // 6. Summary: the seed's Table 1.
        print(String(format: "|Q| = %.4g m⁻¹, Q̂ = (%.3f, %.3f, %.3f) (x, y, z); common support %d voxels; %.1f s",
                     geo.qMagnitude, geo.qHat.x, geo.qHat.y, geo.qHat.z, result.commonSupportVoxels, elapsed))
        print("state                 χ²      Δφ_mean(°)  u(Å)=φ/|Q|  seed 2φ/|Q|(Å)  ε(‰)     Ω_norm   twin  filled  res(nm)")
        for s in result.states {
            let lbl = s.label.count > 20 ? String(s.label.prefix(20)) : s.label.padding(toLength: 20, withPad: " ", startingAt: 0)
            let chi = s.chi2.map { String(format: "%7.4f", $0) } ?? "      –"
            let res = s.edgeResolution.map { String(format: "%6.1f", $0 * 1e9) } ?? "     –"
            print(String(format: "%@  %@  %9.2f  %10.4f  %13.4f  %8.4f  %7.3f  %@  %6d  %@",
                         lbl, chi, s.meanPhaseDifference * 180 / .pi, s.meanRelativeDisplacement * 1e10,
                         2 * s.meanRelativeDisplacement * 1e10, s.meanRelativeStrain * 1e3, s.omegaNormalised,
                         s.twinFlipped ? " yes" : "  no", s.filledVoxels, res))
        }
        let ext = result.states[options.reference].extent
        print(String(format: "crystal extent (reference): %.3f × %.3f × %.3f µm (x, y, z); PC1 explains %.1f%% of the variance",
                     ext.x * 1e6, ext.y * 1e6, ext.z * 1e6, 100 * (result.pca.explainedVariance.first ?? 0)))
        print("wrote \(out)/table.csv, table.json, pca.json" + (vtis.isEmpty ? "" : " and \(vtis.count) .vti files"))
        common.saveWisdom()
    }

    /// Reads one reconstruction (BraggKit's `ReconstructionFile`), printing what was read
    /// of another program's results.
    func read(_ file: String, label: String) throws -> ReconstructionFile {
        let r = try ReconstructionFile.read(file, state: label)
        if let n = r.note { print(n) }
        return r
    }
}
