import Foundation
import Numerics
import Formats
import Simulation
import Preparation
import Phasing
import Neural
import Analysis
import Report

/// The whole pipeline on a simulated in-operando series (what `bragg demo` runs): the seed
/// study's six states simulated in its geometry and measured as rocking scans written to
/// disk, each state prepared from its frames, phased (iteratively, and with the neural
/// method when a model is given), the series analysed against the first state and against
/// its ground truth, and the report written with the provenance whose commands redo every
/// step. Reports progress through a `ProgressHandler` (a step's heading is a report of stage
/// `Demo.headingStage` whose note is the heading) and never prints.
///
/// ```swift
/// var settings = Demo.Settings(out: "demo-out", version: "0.1.0")
/// settings.size = 32; settings.scans = 4
/// let outcome = try Demo.run(settings: settings)
/// print(outcome.report.html)
/// ```
public enum Demo {
    /// The default recipe with shrink-wrap at 0.1 of the blurred maximum instead of 0.2: at 0.2
    /// the support of these thin platelets shrinks into the crystal in some states, which then
    /// come out 7–16° RMS wrong (bench/README.md, Analysis; the end-to-end test uses the same).
    public static let seriesRecipe = "HIO:400 beta=0.9 sw=20 threshold=0.1, RAAR:300 beta=0.8 sw=20 threshold=0.1, ER:100 sw=20 threshold=0.1"

    /// The stage of the progress reports that announce a step (their note is the heading,
    /// "1/5 simulating …"); other notes are sentences about a decision or a warning.
    public static let headingStage = "demo step"

    /// What to simulate and how to reconstruct it.
    public struct Settings: Sendable {
        /// The output folder (created with its parents).
        public var out: String
        /// Edge of the cubic pattern (voxels; the neural method needs its model's size).
        public var size = 64
        /// Seed of the simulation and of the phasing runs.
        public var seed: UInt64 = 1
        /// Peak photon count of each state's summed scans.
        public var photons = 1e6
        /// Rocking scans simulated and summed per state (the seed summed 22).
        public var scans = 22
        /// The iterative recipe, as `Recipe.parse` reads it (kept as text for the commands).
        public var recipe = Demo.seriesRecipe
        // Three starts, the best kept. From simulated patterns two were enough for every state of
        // seeds 1–6 to come within 3° of the truth (bench/README.md, Analysis); the patterns
        // prepared from frames have about 20% of their voxels masked (the gap band and the slabs
        // the registration shifts wrapped around), and with two starts one state of seed 1
        // stagnated (χ² 0.0018 against 0.0008, 9–12° wrong) in 2 of 4 trials; a third start
        // recovered it (llk 1.13 against 2.39 and 2.89).
        /// Random starts per state and best runs averaged per state.
        public var runs = 3
        public var keep = 1
        /// The neural model (safetensors) to reconstruct each state with as well; nil: the
        /// iterative method alone. A model for another pattern edge than `size` is skipped with a note.
        public var model: String?
        /// Refinement steps of the neural method per state.
        public var refineSteps = 20
        /// Whether an output folder that already holds a report may be filled again.
        public var overwrite = false
        /// The program's version, recorded in the provenance and the prepared files.
        public var version: String

        public init(out: String, version: String) { self.out = out; self.version = version }

        /// Checks the numbers (the ranges `bragg demo` accepts).
        public func check() throws {
            guard size >= 32 && size <= 256 else { throw DemoError.setting("the pattern edge must be between 32 and 256 voxels (got \(size))") }
            guard photons > 0 else { throw DemoError.setting("the peak photon count must be > 0 (got \(photons))") }
            guard scans >= 1 && scans <= 999 else { throw DemoError.setting("the scans per state must be between 1 and 999 (got \(scans))") }
            guard runs >= 1, keep >= 1, keep <= runs else {
                throw DemoError.setting("the runs kept must be between 1 and the runs made (got \(keep) of \(runs))")
            }
            guard refineSteps >= 0 else { throw DemoError.setting("the neural refinement steps must be ≥ 0 (got \(refineSteps))") }
        }
    }

    /// What the preparation of one state gave.
    public struct PreparedState {
        /// Its CXI file (prepared/state_NN_LABEL.cxi).
        public var path: String
        public var pattern: RealVolume
        public var mask: RealVolume
        public var result: PreparedPattern
    }

    /// One step's wall time and the CPU time of the whole process (all threads) during it:
    /// on a shared machine the CPU time tells what the step costs.
    public struct Step: Sendable {
        public var name: String
        public var seconds: Double
        public var cpuSeconds: Double
    }

    /// What the demo made: every file it wrote is under `settings.out`.
    public struct Outcome {
        /// The states' labels, in series order, and their file names (without extension).
        public var labels: [String]
        public var names: [String]
        /// Each state's scan files (simulated/scans/state_NN/scan_NN.h5).
        public var scanFiles: [[String]]
        public var prepared: [PreparedState]
        /// Each state's iterative reconstruction (reconstructions/NAME.cxi) and, when the
        /// neural method ran, its neural one (reconstructions/neural/NAME.cxi).
        public var reconstructions: [Reconstruction]
        public var neural: [Reconstruction]
        public var analysis: SeriesResult
        /// The recovered series against the analysis of the true objects.
        public var comparison: TruthComparison
        /// What provenance.json records (commands that redo every step, notes, timings).
        public var provenance: Provenance
        public var report: SeriesReportBuilder.Output
        public var steps: [Step]
        /// Seconds from the start to the end of the report.
        public var seconds: Double
    }

    /// CPU time of this process so far, all threads (user + system), seconds.
    public static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
    }

    /// A number as short as it can be written and read back the same (1e+06, not 1000000.0).
    public static func compact(_ v: Double) -> String {
        let short = String(format: "%g", v)
        return Double(short) == v ? short : "\(v)"
    }

    /// The name of state `index`'s files: state_NN_LABEL with characters unsafe in a file
    /// name replaced by "_".
    public static func stateName(index: Int, label: String) -> String {
        String(format: "state_%02d_%@", index, String(label.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }))
    }

    /// Checks, before any work, that the demo may write into `settings.out`: the settings'
    /// numbers, the folder (writable; one that holds a report only with `overwrite`) and the
    /// model file.
    public static func check(_ settings: Settings) throws {
        try settings.check()
        try OutputCheck.folder(settings.out, overwrite: settings.overwrite)
        if FileManager.default.fileExists(atPath: settings.out + "/report.html") && !settings.overwrite {
            throw DemoError.reportExists(folder: settings.out)
        }
        if let m = settings.model, !FileManager.default.fileExists(atPath: m) { throw DemoError.modelMissing(path: m) }
    }

    /// Runs the demo (see `Demo`). Throws before any work when `check` does, or when the
    /// recipe or the model cannot be read.
    public static func run(settings s: Settings, progress: ProgressHandler? = nil) throws -> Outcome {
        try check(s)
        let out = s.out, size = s.size, seed = s.seed, scans = s.scans, runs = s.runs, keep = s.keep
        let started = Date()
        func heading(_ text: String) { progress?(ProgressReport(stage: headingStage, done: 0, total: 0, note: text)) }
        func note(_ text: String) { progress?(ProgressReport(stage: "demo", done: 0, total: 0, note: text)) }
        var steps: [Step] = []
        var stepStart = Date(), cpuStart = processCPUSeconds()
        func endStep(_ name: String) {
            let cpu = processCPUSeconds()
            steps.append(Step(name: name, seconds: Date().timeIntervalSince(stepStart), cpuSeconds: cpu - cpuStart))
            stepStart = Date(); cpuStart = cpu
        }
        let fm = FileManager.default
        let parsedRecipe = try Recipe.parse(s.recipe)
        let model = try s.model.map { try NeuralModel(path: $0) }
        for sub in ["", "/simulated", "/simulated/scans", "/prepared", "/reconstructions", "/reconstructions/neural"] {
            try fm.createDirectory(atPath: out + sub, withIntermediateDirectories: true)
        }
        let g = BraggGeometry.seedStudy

        // 1. Simulate the series in the seed's geometry: the true objects, then each state's
        // rocking scans as a beamline writes them.
        heading("1/5 simulating the six-state operando series (\(size)³, seed \(seed)) and \(scans) rocking scans per state")
        var sim = OperandoOptions()
        sim.size = size; sim.seed = seed; sim.photons = s.photons; sim.geometry = g; sim.truncatedCorner = true
        sim.poissonNoise = false
        let series = try OperandoSeries.make(options: sim, progress: progress)
        let states = series.states
        let names = states.enumerated().map { stateName(index: $0.offset, label: $0.element.label) }
        for (i, st) in states.enumerated() {
            let truth = CXIResults(object: st.object, support: st.support, pattern: st.pattern,
                                   parameters: ["label": .string(st.label), "voltage_V": .double(st.voltage),
                                                "charging": .int(st.charging ? 1 : 0), "seed": .int(Int(truncatingIfNeeded: seed)),
                                                "note": .string("simulated: image_1 holds the ground-truth object, data_1 its noise-free pattern at the summed scans' peak photon count; the measured frames are in scans/")])
            try truth.write(to: "\(out)/simulated/\(names[i]).h5", overwrite: true)
        }
        try writeData(try prettyJSON(series.metrics), to: "\(out)/simulated/ground_truth.json")
        var acquisition = RockingScanOptions.seedStudy(size: size, photons: s.photons, seed: seed)
        acquisition.scans = scans
        let gaps = ScanFiles.gapMask(rows: size, cols: size, defects: acquisition.defects)
        var scanFiles: [[String]] = []
        for (i, st) in states.enumerated() {
            heading("1/5 simulating \(scans) rocking scans of \(st.label)")
            acquisition.stream = UInt64(i)
            let folder = String(format: "%@/simulated/scans/state_%02d", out, i)
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let made = try RockingScans.make(object: st.object, geometry: g, options: acquisition)
            var files: [String] = []
            for (j, scan) in made.enumerated() {
                let path = String(format: "%@/scan_%02d.h5", folder, j)
                try ScanFiles.write(scan, to: path, geometry: g, gaps: gaps, label: st.label, seed: seed, overwrite: true)
                files.append(path)
            }
            scanFiles.append(files)
        }
        endStep("simulation (objects, \(states.count * scans) scans written)")

        // 2. Prepare every state from its frames, as `bragg prepare` does, to one common shape.
        var prepared: [PreparedState] = []
        for (i, st) in states.enumerated() {
            heading("2/5 preparing \(st.label): \(scans) scans → \(size)³")
            prepared.append(try prepareState(scanFiles[i], to: "\(out)/prepared/\(names[i]).cxi", size: size,
                                             version: s.version, progress: progress))
        }
        endStep("preparation (\(states.count) states)")

        // 3. Reconstruct every state.
        var phasing = PhasingOptions()
        phasing.recipe = parsedRecipe; phasing.runs = runs; phasing.keep = keep; phasing.seed = seed
        let conditions = states.map { String(format: "%.1f V %@", $0.voltage, $0.charging ? "charge" : "discharge") }
        var commands = ["bragg demo --out \(out) --size \(size) --seed \(seed) --photons \(compact(s.photons)) --scans \(scans) --runs \(runs) --keep \(keep)",
                        "mkdir -p \(out)/prepared \(out)/reconstructions/neural",
                        "bragg simulate scans --state all --truncated-corner --size \(size) --seed \(seed) --photons \(compact(s.photons)) --scans \(scans) --out \(out)/simulated/scans"]
        for i in states.indices {
            commands.append(String(format: "bragg prepare %@/simulated/scans/state_%02d/scan_*.h5 --monitor %@ --detector-mask %@:%@ --size %d --out %@",
                                   out, i, ScanFiles.monitorPath, scanFiles[i][0], ScanFiles.pixelMaskPath, size, prepared[i].path))
        }
        var reconstructions: [Reconstruction] = [], stateInputs: [StateInput] = []
        for (i, st) in states.enumerated() {
            heading("3/5 phasing \(st.label): \(runs) run(s) of \(parsedRecipe.totalIterations) iterations")
            let p = prepared[i]
            let data = try PhasingData(intensity: p.pattern, mask: p.mask, name: st.label)
            let result = try Phaser.phase(data, options: phasing, progress: progress)
            let path = "\(out)/reconstructions/\(names[i]).cxi"
            let pattern = PatternInput(pattern: p.pattern, mask: p.mask, maskSource: p.path + ":" + CXIResults.maskPath)
            let r = Reconstruction(iterative: result, options: phasing, pattern: pattern, source: p.path, supportDescription: "auto")
            // The pattern's geometry is not carried in: the analysis takes the series' geometry
            // from experiment.toml.
            try r.results.write(to: path, overwrite: true)
            reconstructions.append(r)
            commands.append("bragg phase \(p.path) --recipe \"\(s.recipe)\" --runs \(runs) --keep \(keep) --seed \(seed) --out \(path)")
            stateInputs.append(StateInput(label: st.label, condition: conditions[i],
                                          object: result.object, support: result.support, chi2: result.metrics.chi2))
        }
        endStep("iterative phasing (\(states.count) × \(runs) run(s) of \(parsedRecipe.totalIterations) iterations)")
        var neural: [Reconstruction] = []
        var training = (loss: [Double](), validation: [Double](), runStarts: [Int]())
        var modelNote: String?
        if let model {
            training = trainingRecord(model)
            let file = (model.path as NSString).lastPathComponent
            // The record of how the model was trained, for the report's provenance: a history
            // of one epoch (a fine-tuning run from a model that kept none) draws no curve.
            var record = "neural model \(file): \(training.loss.count) epoch(s) of loss history"
            if let t = training.loss.last, let v = training.validation.last {
                record += String(format: " (last: training %.4g, validation %.4g)", t, v)
            }
            if training.loss.count < 2 { record += ", too few for a curve" }
            if let initial = model.metadata["train_init"] { record += "; fine-tuned from " + initial }
            modelNote = record
            if model.net.architecture.inputSize == size {
                for (i, st) in states.enumerated() {
                    heading("3/5 neural phasing \(st.label) with \(file), \(s.refineSteps) refinement steps")
                    let p = prepared[i]
                    let path = "\(out)/reconstructions/neural/\(names[i]).cxi"
                    let prediction = try NeuralReconstruction.predict(PatternInput(pattern: p.pattern, mask: p.mask), source: p.path,
                                                                      model: model, refineSteps: s.refineSteps, progress: progress)
                    let r = try prediction.reconstruction()
                    try r.results.write(to: path, overwrite: true)
                    neural.append(r)
                    commands.append("bragg phase \(p.path) --method neural --model \(model.path) --refine-steps \(s.refineSteps) --out \(path)")
                }
                endStep("neural phasing (\(states.count) states, \(s.refineSteps) refinement steps)")
            } else {
                note("note: model \(model.path) is for \(model.net.architecture.inputSize)³ patterns, not \(size)³: neural method skipped")
            }
        }

        // 4. Analyse the series (iterative reconstructions) against the first state.
        heading("4/5 analysing the series")
        let analysisOptions = AnalysisOptions()
        let analysis = try SeriesAnalysis.run(states: stateInputs, geometry: g, options: analysisOptions, progress: progress)
        // Ground truth under the same conventions: the analysis of the simulated objects, with
        // one global twin removed for the whole series when the reference came out as the twin.
        let truth = try SeriesAnalysis.groundTruth(objects: states.map(\.object), supports: states.map(\.support),
                                                   labels: states.map(\.label), geometry: g)
        let comparison = try TruthComparison(result: analysis, truth: truth)
        try SeriesOutputs.write(analysis, to: out, overwrite: true)
        let experiment = experimentFile(labels: states.map(\.label), conditions: conditions,
                                        files: names.map { "reconstructions/\($0).cxi" }, geometry: g, options: analysisOptions)
        try writeData(Data(experiment.utf8), to: "\(out)/experiment.toml")
        commands.append("bragg analyze \(out)/experiment.toml --out \(out)")
        endStep("analysis and ground truth")

        // 5. Report.
        heading("5/5 writing the report")
        commands.append("bragg report \(out)")
        var notes = modelNote.map { [$0] } ?? []
        notes.append("simulated series: the ground-truth objects are image_1 of simulated/*.h5; the ground truth in the report is their analysis under the same conventions")
        notes.append(String(format: "each state measured as %d rocking scans (simulated/scans/state_NN/scan_NN.h5) of %.3g photons at the peak each, summed to %.3g; prepared to %d³ (prepared/*.cxi)",
                            scans, s.photons / Double(scans), s.photons, size))
        notes.append(comparison.twinNote)
        notes.append(String(format: "largest |recovered − true Δφ_mean| %.2f°; states ordered by Ω %@ as in the truth; reference edge FWHM %.0f nm recovered, %.0f nm true",
                            comparison.maxDeltaPhiError * 180 / .pi, comparison.omegaOrderMatches ? "exactly" : "NOT",
                            (comparison.states[0].recoveredEdge ?? .nan) * 1e9, (comparison.states[0].trueEdge ?? .nan) * 1e9))
        notes.append(String(format: "demo wall time before the report %.0f s on %d thread(s): ", Date().timeIntervalSince(started), Parallel.threads)
                     + steps.map { String(format: "%@ %.1f s (CPU %.1f s)", $0.name, $0.seconds, $0.cpuSeconds) }.joined(separator: "; "))
        let labels = states.map(\.label)
        let provenance = Provenance(braggkitVersion: s.version, commands: commands,
                                    seeds: ["simulation": seed, "phasing": seed], inputs: scanFiles.map { $0[0] },
                                    reconstructions: Dictionary(uniqueKeysWithValues: zip(labels, names.map { "\(out)/reconstructions/\($0).cxi" })),
                                    alternatives: neural.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: zip(labels, names.map { "\(out)/reconstructions/neural/\($0).cxi" })),
                                    groundTruth: SeriesOutputs.groundTruth(truth, comparison: comparison),
                                    trainingLoss: training.loss, validationLoss: training.validation.isEmpty ? nil : training.validation,
                                    trainingRunStarts: training.runStarts.isEmpty ? nil : training.runStarts,
                                    notes: notes, preparations: Dictionary(uniqueKeysWithValues: zip(labels, prepared.map(\.path))))
        try writeData(try prettyJSON(provenance), to: "\(out)/provenance.json")
        let report = try SeriesReportBuilder.build(directory: out, provenance: provenance, progress: progress)
        endStep("report")
        return Outcome(labels: labels, names: names, scanFiles: scanFiles, prepared: prepared, reconstructions: reconstructions,
                       neural: neural, analysis: analysis, comparison: comparison, provenance: provenance, report: report,
                       steps: steps, seconds: Date().timeIntervalSince(started))
    }

    /// The model's training record from its metadata: loss_history "epoch:train/validation,…"
    /// and loss_history_run_starts "epoch,…".
    static func trainingRecord(_ model: NeuralModel) -> (loss: [Double], validation: [Double], runStarts: [Int]) {
        var loss: [Double] = [], validation: [Double] = []
        for entry in (model.metadata["loss_history"] ?? "").split(separator: ",") {
            let parts = entry.split(separator: ":").last?.split(separator: "/") ?? []
            if parts.count == 2, let t = Double(parts[0]), let v = Double(parts[1]) { loss.append(t); validation.append(v) }
        }
        let starts = (model.metadata["loss_history_run_starts"] ?? "").split(separator: ",").compactMap { Int($0) }
        return (loss, validation, starts)
    }

    /// Prepares one state's scan files as `bragg prepare FILES --monitor /entry/monitor/data
    /// --detector-mask FIRST:/entry/instrument/detector/pixel_mask --size N` does, and writes
    /// the same CXI file.
    static func prepareState(_ files: [String], to path: String, size: Int, version: String,
                             progress: ProgressHandler?) throws -> PreparedState {
        var options = PreparationOptions()
        options.size = [size, size, size]
        let maskSpec = files[0] + ":" + ScanFiles.pixelMaskPath
        do { options.detectorMask = try CalibrationImage.read(maskSpec) }
        catch { throw PipelineError.input("detector mask \(maskSpec): \(error)") }
        var stacks: [HDF5FrameStack] = []
        var inputs: [Scan] = []
        for f in files {
            let st = try HDF5FrameStack(path: f)
            stacks.append(st)
            inputs.append(Scan(frames: st, monitor: try st.perFrame(ScanFiles.monitorPath)))
        }
        let result = try Preparation.prepare(scans: inputs, options: options, progress: progress, messages: { m in
            progress?(ProgressReport(stage: "demo", done: 0, total: 0, note: "warning: " + m))
        })
        let g = NeXusGeometry.read(from: stacks[0].file)
        try ResultsFile.prepared(result, options: options, geometry: g, programName: "BraggKit \(version) prepare")
            .write(to: path, overwrite: true, compression: nil)
        return PreparedState(path: path, pattern: result.pattern, mask: result.mask, result: result)
    }

    static func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(value)
    }

    static func writeData(_ data: Data, to path: String) throws {
        try SafeOutput.write(to: path, overwrite: true) { tmp in
            guard FileManager.default.createFile(atPath: tmp, contents: data) else {
                throw PipelineError.output("cannot write '\(path)'")
            }
        }
    }

    /// The series as an experiment file for `bragg analyze` (Analysis.Experiment's format):
    /// the geometry, every analysis option at the value the demo used, and one [[state]] per
    /// reconstruction, with paths relative to the file's folder.
    public static func experimentFile(labels: [String], conditions: [String], files: [String], geometry g: BraggGeometry,
                                      options o: AnalysisOptions) -> String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let axis: String
        switch (g.rockingAxis.x, g.rockingAxis.y, g.rockingAxis.z) {
        case (1, 0, 0): axis = "\"x\""
        case (0, 1, 0): axis = "\"y\""
        case (0, 0, 1): axis = "\"z\""
        default: axis = "[\(g.rockingAxis.x), \(g.rockingAxis.y), \(g.rockingAxis.z)]"
        }
        // Short decimals where they give back the same doubles (the analysis then repeats
        // the demo's to the last bit), full precision otherwise.
        func num(_ v: Double, _ back: (Double) -> Double = { $0 }, _ x: Double) -> String {
            let short = String(format: "%.12g", v)
            if let d = Double(short), back(d) == x { return short }
            return "\(v)"
        }
        let degrees: (Double) -> Double = { $0 * .pi / 180 }
        var t = """
            # The demo's series for `bragg analyze experiment.toml --out FOLDER` (written by `bragg demo`).
            # Relative paths are taken from this file's folder. Units: keV, degrees, metres, micrometres.

            [geometry]
            energy_kev = \(num(g.energy / 1000, { $0 * 1000 }, g.energy))
            two_theta_deg = \(num(g.twoTheta * 180 / .pi, degrees, g.twoTheta))
            out_of_plane_deg = \(num(g.outOfPlane * 180 / .pi, degrees, g.outOfPlane))
            distance_m = \(num(g.distance, { $0 }, g.distance))
            pixel_size_um = \(num(g.pixelSize * 1e6, { $0 * 1e-6 }, g.pixelSize))
            rocking_step_deg = \(num(g.rockingStep * 180 / .pi, degrees, g.rockingStep))
            rocking_axis = \(axis)             # "x", "y", "z" or [x, y, z] in the lab frame

            [analysis]                      # every key is optional; these are the defaults
            reference = \(q(labels[o.reference]))   # a state's label or its 0-based index
            core_fraction = \(o.coreFraction)
            common_support = \(q(o.commonSupport.rawValue))    # "majority", "union" or "intersection"
            fill_threshold = \(o.fillThreshold)
            support_threshold = \(o.supportThreshold)
            pca_fraction = \(o.pcaRegionFraction)
            remove_ramp = \(o.removeRamp)
            twin_check = \(o.twinCheck)
            sub_voxel = \(o.subVoxel)
            lab_frame = \(o.labFrame)

            """
        for i in labels.indices {
            t += """

                [[state]]
                label = \(q(labels[i]))
                condition = \(q(conditions[i]))
                file = \(q(files[i]))

                """
        }
        return t
    }
}

/// Why the demo could not run: one sentence, naming no command-line flag.
public enum DemoError: Error, CustomStringConvertible, Equatable {
    /// A setting out of its range.
    case setting(String)
    /// The output folder holds a report and overwriting was not allowed.
    case reportExists(folder: String)
    case modelMissing(path: String)

    public var description: String {
        switch self {
        case .setting(let s): return s
        case .reportExists(let f): return "\(f) already holds a report"
        case .modelMissing(let p): return "model '\(p)' does not exist"
        }
    }
}
