import ArgumentParser
import Analysis
import Foundation
import Formats
import Neural
import Numerics
import Phasing
import Report
import Simulation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline on a simulated in-operando series and write the report.",
        discussion: """
            Simulates the seed study's six states of one LiCoO₂-like crystal (a hexagonal prism with \
            one corner cut off, so it is not centrosymmetric; charge 2.5, 3.0, 3.5, \
            4.0 V; discharge 3.5, 3.0 V) in the seed's geometry (13.5 keV, 2θ = 28.8°, 2.8 m, 55 µm \
            pixels, 0.005° rocking step), reconstructs every state with the iterative method (and with \
            the neural method when a model is found: --model, $BRAGG_MODEL or \
            models/default-c8-64.safetensors), analyses the series against the first state and writes \
            OUT/report.html. Layout of OUT: simulated/ (patterns and ground truth), reconstructions/ \
            (CXI results per state), table.csv, table.json, pca.json, state_*.vti, figures/, \
            provenance.json, report.html.
            """
    )

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String = "demo-out"

    @Option(help: "Edge of the cubic pattern (voxels; the neural method needs its model's size).")
    var size: Int = 64

    @Option(help: "Seed of the simulation and of the phasing runs.")
    var seed: UInt64 = 1

    @Option(help: "Peak photon count of each simulated pattern.")
    var photons: Double = 1e6

    /// The default recipe with shrink-wrap at 0.1 of the blurred maximum instead of 0.2: at 0.2
    /// the support of these thin platelets shrinks into the crystal in some states, which then
    /// come out 7–16° RMS wrong (bench/README.md, Analysis; the end-to-end test uses the same).
    static let seriesRecipe = "HIO:400 beta=0.9 sw=20 threshold=0.1, RAAR:300 beta=0.8 sw=20 threshold=0.1, ER:100 sw=20 threshold=0.1"

    @Option(help: "Iterative recipe.")
    var recipe: String = DemoCommand.seriesRecipe

    // Two starts, the best kept: with the recipe above, enough for every state of seeds 1–6
    // to come within 3° of the truth (bench/README.md, Analysis); twice as fast as 4 runs.
    @Option(help: "Random starts per state.")
    var runs: Int = 2

    @Option(help: "Best runs averaged per state.")
    var keep: Int = 1

    @Option(help: "Neural model (safetensors); default: $BRAGG_MODEL or models/default-c8-64.safetensors when present.")
    var model: String?

    @Option(name: .customLong("refine-steps"), help: "Refinement steps of the neural method per state.")
    var refineSteps: Int = 20

    @Flag(name: .customLong("no-neural"), help: "Skip the neural method even when a model is present.")
    var noNeural = false

    @Flag(help: "Replace the contents of an existing output folder.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard size >= 32 && size <= 256 else { throw ValidationError("--size must be between 32 and 256 (got \(size))") }
        guard photons > 0 else { throw ValidationError("--photons must be > 0 (got \(photons))") }
        guard runs >= 1, keep >= 1, keep <= runs else { throw ValidationError("need 1 ≤ --keep ≤ --runs (got keep \(keep), runs \(runs))") }
        guard refineSteps >= 0 else { throw ValidationError("--refine-steps must be ≥ 0") }
    }

    func run() throws {
        try OutputCheck.folder(out, overwrite: force)   // before any work (#22)
        common.apply()
        let started = Date()
        let fm = FileManager.default
        if fm.fileExists(atPath: out + "/report.html") && !force {
            throw UsageError("\(out) already holds a report; pass --force to replace it")
        }
        for sub in ["", "/simulated", "/reconstructions", "/reconstructions/neural"] {
            try fm.createDirectory(atPath: out + sub, withIntermediateDirectories: true)
        }
        let bar = ProgressBar(quiet: common.quiet)
        let parsedRecipe = try Recipe.parse(recipe)

        // 1. Simulate the series in the seed's geometry.
        bar.message("1/4 simulating the six-state operando series (\(size)³, seed \(seed))")
        var sim = OperandoOptions()
        sim.size = size; sim.seed = seed; sim.photons = photons; sim.geometry = .seedStudy; sim.truncatedCorner = true
        let series = try OperandoSeries.make(options: sim, progress: bar.handler)
        bar.finish()
        let states = series.states
        let names = states.enumerated().map { i, s in
            String(format: "state_%02d_%@", i, String(s.label.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }))
        }
        var inputs: [String] = []
        for (i, s) in states.enumerated() {
            let path = "\(out)/simulated/\(names[i]).h5"
            let truth = CXIResults(object: s.object, support: s.support, pattern: s.pattern,
                                   parameters: ["label": .string(s.label), "voltage_V": .double(s.voltage),
                                                "charging": .int(s.charging ? 1 : 0), "seed": .int(Int(truncatingIfNeeded: seed)),
                                                "note": .string("simulated: image_1 holds the ground-truth object")])
            try truth.write(to: path, overwrite: true)
            inputs.append(path)
        }
        let gtJSON = try JSONEncoder.pretty.encode(series.metrics)
        try SafeOutput.write(to: "\(out)/simulated/ground_truth.json", overwrite: true) { _ = fm.createFile(atPath: $0, contents: gtJSON) }
        // 2. Reconstruct every state.
        var phasing = PhasingOptions()
        phasing.recipe = parsedRecipe; phasing.runs = runs; phasing.keep = keep; phasing.seed = seed
        var reconstructions: [String: String] = [:], alternatives: [String: String] = [:]
        var trainingLoss: [Double] = [], validationLoss: [Double] = [], trainingRunStarts: [Int] = []
        var modelNote: String?
        var stateInputs: [StateInput] = []
        var commands = ["bragg demo --out \(out) --size \(size) --seed \(seed) --photons \(photons) --runs \(runs) --keep \(keep)"]
        for (i, s) in states.enumerated() {
            bar.message("2/4 phasing \(s.label): \(runs) run(s) of \(parsedRecipe.totalIterations) iterations")
            let data = try PhasingData(intensity: s.pattern, name: s.label)
            let result = try Phaser.phase(data, options: phasing, progress: bar.handler)
            bar.finish()
            let path = "\(out)/reconstructions/\(names[i]).cxi"
            try iterativeResultsFile(result, options: phasing, intensity: s.pattern, mask: nil, source: inputs[i],
                                     supportDescription: "auto").write(to: path, overwrite: true)
            reconstructions[s.label] = path
            commands.append("bragg phase \(inputs[i]):\(CXIResults.patternPath) --recipe \"\(recipe)\" --runs \(runs) --keep \(keep) --seed \(seed) --out \(path)")
            stateInputs.append(StateInput(label: s.label, condition: String(format: "%.1f V %@", s.voltage, s.charging ? "charge" : "discharge"),
                                          object: result.object, support: result.support, chi2: result.metrics.chi2))
        }
        if !noNeural, let modelPath = model ?? NeuralPhaseRun.defaultModelPath() {
            let (net, file) = try PhaseNet.load(from: modelPath)
            // loss_history: "epoch:train/validation,…" in the model's metadata.
            for entry in (file.metadata["loss_history"] ?? "").split(separator: ",") {
                let parts = entry.split(separator: ":").last?.split(separator: "/") ?? []
                if parts.count == 2, let t = Double(parts[0]), let v = Double(parts[1]) { trainingLoss.append(t); validationLoss.append(v) }
            }
            trainingRunStarts = (file.metadata["loss_history_run_starts"] ?? "").split(separator: ",").compactMap { Int($0) }
            // The record of how the model was trained, for the report's provenance: a history
            // of one epoch (a fine-tuning run from a model that kept none) draws no curve.
            var record = "neural model \((modelPath as NSString).lastPathComponent): \(trainingLoss.count) epoch(s) of loss history"
            if let t = trainingLoss.last, let v = validationLoss.last {
                record += String(format: " (last: training %.4g, validation %.4g)", t, v)
            }
            if trainingLoss.count < 2 { record += ", too few for a curve" }
            if let initial = file.metadata["train_init"] { record += "; fine-tuned from " + initial }
            modelNote = record
            if net.architecture.inputSize == size {
                for (i, s) in states.enumerated() {
                    bar.message("2/4 neural phasing \(s.label) with \((modelPath as NSString).lastPathComponent), \(refineSteps) refinement steps")
                    let r = try NeuralPhaser.reconstruct(pattern: s.pattern, model: net, refineSteps: refineSteps, progress: bar.handler)
                    bar.finish()
                    let path = "\(out)/reconstructions/neural/\(names[i]).cxi"
                    let framed = try PhasingPost.reportingFrame(object: r.object, support: r.support)
                    let res = CXIResults(object: framed.object, support: framed.support, pattern: s.pattern,
                                         parameters: ["algorithm": .string("neural phase retrieval (BraggKit Neural)"),
                                                      "model": .string(modelPath), "refine_steps": .int(refineSteps),
                                                      "phase_ramp_removed_cycles_per_voxel": .doubles(framed.ramp)],
                                         metrics: ["chi2": r.chi2, "loss": r.lossCurve.min() ?? .nan], curves: ["loss": r.lossCurve])
                    try res.write(to: path, overwrite: true)
                    alternatives[s.label] = path
                    commands.append("bragg phase \(inputs[i]):\(CXIResults.patternPath) --method neural --model \(modelPath) --refine-steps \(refineSteps) --out \(path)")
                }
            } else {
                bar.message("bragg: note: model \(modelPath) is for \(net.architecture.inputSize)³ patterns, not \(size)³: neural method skipped")
            }
        }

        // 3. Analyse the series (iterative reconstructions) against the first state.
        bar.message("3/4 analysing the series")
        let g = BraggGeometry.seedStudy
        let geometry = g
        let analysis = try SeriesAnalysis.run(states: stateInputs, geometry: geometry, options: AnalysisOptions(), progress: bar.handler)
        bar.finish()
        // Ground truth under the same conventions: the analysis of the simulated objects, with
        // one global twin removed for the whole series when the reference came out as the twin.
        let truth = try SeriesAnalysis.groundTruth(objects: states.map(\.object), supports: states.map(\.support),
                                                   labels: states.map(\.label), geometry: geometry)
        let comparison = try TruthComparison(result: analysis, truth: truth)
        let groundTruth = analysisGroundTruth(truth, comparison: comparison)
        _ = try writeAnalysisOutputs(analysis, to: out, force: true)
        commands.append("bragg analyze " + names.map { "\(out)/reconstructions/\($0).cxi" }.joined(separator: " ")
                        + " --labels \"" + states.map(\.label).joined(separator: ",") + "\""
                        + String(format: " --energy-kev %g --two-theta %g --distance %g --pixel-um %g --rocking-step %g",
                                 g.energy / 1000, g.twoTheta * 180 / .pi, g.distance, g.pixelSize * 1e6, g.rockingStep * 180 / .pi)
                        + " --out \(out)")

        // 4. Report.
        bar.message("4/4 writing the report")
        commands.append("bragg report \(out)")
        let provenance = Provenance(braggkitVersion: Bragg.version, commands: commands,
                                    seeds: ["simulation": seed, "phasing": seed], inputs: inputs,
                                    reconstructions: reconstructions, alternatives: alternatives, groundTruth: groundTruth,
                                    trainingLoss: trainingLoss, validationLoss: validationLoss.isEmpty ? nil : validationLoss,
                                    trainingRunStarts: trainingRunStarts.isEmpty ? nil : trainingRunStarts,
                                    notes: (modelNote.map { [$0] } ?? []) + ["simulated series: the ground-truth objects are image_1 of simulated/*.h5; the ground truth in the report is their analysis under the same conventions",
                                            comparison.twinNote,
                                            String(format: "largest |recovered − true Δφ_mean| %.2f°; states ordered by Ω %@ as in the truth; reference edge FWHM %.0f nm recovered, %.0f nm true",
                                                   comparison.maxDeltaPhiError * 180 / .pi, comparison.omegaOrderMatches ? "exactly" : "NOT",
                                                   (comparison.states[0].recoveredEdge ?? .nan) * 1e9, (comparison.states[0].trueEdge ?? .nan) * 1e9),
                                            String(format: "demo wall time %.0f s on %d thread(s)", Date().timeIntervalSince(started), Parallel.threads)])
        let provJSON = try JSONEncoder.pretty.encode(provenance)
        try SafeOutput.write(to: "\(out)/provenance.json", overwrite: true) { _ = fm.createFile(atPath: $0, contents: provJSON) }
        let report: SeriesReportBuilder.Output
        do { report = try SeriesReportBuilder.build(directory: out, provenance: provenance, progress: bar.handler) }
        catch let e as ReportError { throw UsageError(e.description) }
        bar.finish()
        common.saveWisdom()
        printReportSummary(report)
        print(String(format: "demo finished in %.0f s", Date().timeIntervalSince(started)))
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }
}
