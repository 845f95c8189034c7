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
            specs = try flagged { try SeriesInputs.states(files: inputs, labels: labels.map(SeriesInputs.labels)) }
        }
        if let r = reference { options.reference = try flagged { try SeriesInputs.reference(r, in: specs) } }
        if let v = coreFraction { options.coreFraction = v }
        if let v = commonSupport { options.commonSupport = v }
        if let v = fillThreshold { options.fillThreshold = v }
        if let v = voxelNm { options.labVoxelSize = v * 1e-9 }
        if let v = pcaFraction { options.pcaRegionFraction = v }
        if keepRamp { options.removeRamp = false }
        if let v = supportFraction { options.supportFraction = v == 0 ? nil : v }
        try options.validate(states: specs.count)
        try flagged { try SeriesInputs.checkFiles(specs) }   // a clear message naming the state, before any is read

        // 2. Read the reconstructions.
        let bar = ProgressBar(quiet: common.quiet, unit: "state")
        let read = try SeriesInputs.read(specs, reference: options.reference, progress: bar.handler) { print($0) }
        var states = read.states

        // 3. Geometry: command line over experiment file over the reference's results file.
        let overrides = try geometryOverrides.overrides()
        let resolved: ResolvedGeometry
        do {
            resolved = try GeometryMerge.resolve(experiment: geometry, experimentSource: "the experiment file \(inputs[0])",
                                                 stored: read.storedGeometry, storedSource: specs[options.reference].file,
                                                 overrides: overrides)
        } catch PipelineError.noGeometry {
            throw UsageError("no geometry: the results files record none and no [geometry] was given; give [geometry] in the experiment file or --energy-kev, --two-theta, --distance, --pixel-um and --rocking-step")
        } catch let e as PipelineError { throw UsageError(e.description) }
        print(resolved.summary)
        // One shape for the series.
        for m in try flagged({ try SeriesShapes.conform(&states, reference: options.reference) }) { bar.message(m) }

        // 4. Analyse.
        let t0 = Date()
        let result = try SeriesAnalysis.run(states: states, geometry: resolved.geometry, options: options, progress: bar.handler)
        bar.finish()
        let elapsed = Date().timeIntervalSince(t0)

        // 5. Write (the folder is made only now: a failed analysis leaves nothing behind).
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let vtis = try SeriesOutputs.write(result, to: out, overwrite: force,
                                           tableExtras: SeriesOutputs.geometryExtras(resolved, result: result, reference: options.reference))
        // 6. Summary: the seed's Table 1.
        AnalyzeSummary.lines(result, geometry: resolved.geometry, reference: options.reference, seconds: elapsed).forEach { print($0) }
        print("wrote \(out)/table.csv, table.json, pca.json" + (vtis.isEmpty ? "" : " and \(vtis.count) .vti files"))
        common.saveWisdom()
    }

    /// `body`, with the library's errors as sentences naming the flag to change.
    func flagged<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as PipelineError { throw UsageError(commandLineMessage(for: e)) }
    }
}
