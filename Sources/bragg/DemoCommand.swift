import ArgumentParser
import BraggKit
import Foundation

/// `bragg demo`: options, progress and the printed summary; the pipeline itself is
/// BraggKit's `Demo.run`.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole pipeline, from simulated rocking-scan frames to the report, on an in-operando series.",
        discussion: """
            Simulates the seed study's six states of one LiCoO₂-like crystal (a hexagonal prism with \
            one corner cut off, so it is not centrosymmetric; charge 2.5, 3.0, 3.5, \
            4.0 V; discharge 3.5, 3.0 V) in the seed's geometry (13.5 keV, 2θ = 28.8°, 2.8 m, 55 µm \
            pixels, 0.005° rocking step) and measures each state as the seed did: 22 rocking scans \
            whose sum has --photons at the peak, with the crystal drifting between scans (sub-pixel \
            jitter and a slow walk of a pixel or more), the beam fluctuating between scans and frames \
            (recorded by a monitor), a detector gap row and column and hot pixels (`bragg simulate \
            scans`). Every state's scans are prepared as `bragg prepare` does (monitor \
            normalisation, bad pixels, registration to the first scan, summation, centring on the \
            Bragg peak) into one common --size³ pattern, reconstructed with the iterative method \
            (and with the neural method when a model is found: --model, $BRAGG_MODEL or \
            models/default-c8-64.safetensors), analysed against the first state and reported. \
            Layout of OUT: simulated/ (ground truth; scans/state_NN/scan_NN.h5: the frames, \
            uint16 and deflated, kept so that the commands in the provenance can redo every step), \
            prepared/ (CXI patterns with each scan's shift and correlation), reconstructions/ \
            (CXI results per state), experiment.toml (the series for `bragg analyze`), table.csv, \
            table.json, pca.json, state_*.vti, figures/, provenance.json, report.html.
            """
    )

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String = "demo-out"

    @Option(help: "Edge of the cubic pattern (voxels; the neural method needs its model's size).")
    var size: Int = 64

    @Option(help: "Seed of the simulation and of the phasing runs.")
    var seed: UInt64 = 1

    @Option(help: "Peak photon count of each state's summed scans.")
    var photons: Double = 1e6

    @Option(help: "Rocking scans simulated and summed per state (the seed summed 22).")
    var scans: Int = 22

    @Option(help: "Iterative recipe.")
    var recipe: String = Demo.seriesRecipe

    // Three starts, the best kept: see Demo.Settings.runs.
    @Option(help: "Random starts per state.")
    var runs: Int = 3

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
        guard scans >= 1 && scans <= 999 else { throw ValidationError("--scans must be between 1 and 999 (got \(scans))") }
        guard runs >= 1, keep >= 1, keep <= runs else { throw ValidationError("need 1 ≤ --keep ≤ --runs (got keep \(keep), runs \(runs))") }
        guard refineSteps >= 0 else { throw ValidationError("--refine-steps must be ≥ 0") }
    }

    /// The library's settings from the options: the model named, else the default one
    /// unless --no-neural.
    var settings: Demo.Settings {
        var s = Demo.Settings(out: out, version: Bragg.version)
        s.size = size; s.seed = seed; s.photons = photons; s.scans = scans; s.recipe = recipe
        s.runs = runs; s.keep = keep; s.refineSteps = refineSteps; s.overwrite = force
        s.model = noNeural ? nil : (model ?? NeuralModel.defaultPath())
        return s
    }

    func run() throws {
        let settings = self.settings
        try Demo.check(settings)   // before any work (#22)
        if let m = model, !FileManager.default.fileExists(atPath: m) { throw DemoError.modelMissing(path: m) }
        common.apply()
        let bar = ProgressBar(quiet: common.quiet)
        let outcome = try Demo.run(settings: settings) { r in
            if r.stage == Demo.headingStage, let heading = r.note { bar.message(heading) } else { bar.update(r) }
        }
        bar.finish()
        common.saveWisdom()
        printReportSummary(outcome.report)
        print("state            scans  masked voxels  shifts (frames, rows, cols) px, min…max        correlation min")
        for (i, p) in outcome.prepared.enumerated() {
            let r = p.result
            let included = r.scans.filter(\.included)
            let ranges = (0..<3).map { a -> String in
                let v = included.map { $0.shift[a] }
                return String(format: "%+.2f…%+.2f", v.min() ?? 0, v.max() ?? 0)
            }.joined(separator: ", ")
            let l = outcome.labels[i].padding(toLength: 16, withPad: " ", startingAt: 0)
            print(String(format: "%@ %2d/%-2d  %6.0f (%4.1f%%)  %@   %.4f", l, included.count, r.scans.count,
                         p.mask.sum(), 100 * p.mask.sum() / Double(p.mask.count), ranges,
                         included.dropFirst().map(\.correlation).min() ?? 1))
        }
        print("state            recovered Δφ_mean(°)  true(°)  error(°)")
        for c in outcome.comparison.states {
            let l = c.label.padding(toLength: 16, withPad: " ", startingAt: 0)
            print(String(format: "%@ %20.2f %8.2f %9.2f", l, c.recoveredDeltaPhi * 180 / .pi, c.trueDeltaPhi * 180 / .pi, c.deltaPhiError * 180 / .pi))
        }
        print(outcome.steps.map { String(format: "%@: %.1f s (CPU %.1f s)", $0.name, $0.seconds, $0.cpuSeconds) }.joined(separator: "\n"))
        print(String(format: "demo finished in %.0f s", outcome.seconds))
    }
}
