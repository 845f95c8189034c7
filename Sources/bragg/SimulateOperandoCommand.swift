import ArgumentParser
import BraggKit
import Foundation

/// `bragg simulate operando`: the seed's six-state series with its ground truth.
struct SimulateOperando: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operando",
        abstract: "Simulate the seed's six-state operando series (charge 2.5–4.0 V, discharge 3.5, 3.0 V).",
        discussion: "Writes into --out (a folder) state_NN_<label>.h5 (CXI: pattern, ground-truth object, support, parameters) and ground_truth.json (mean phase change against the first state and PCA order parameters on the common support)."
    )

    @Option(help: "Box (pattern) edge in voxels.") var size: Int = 64
    @Option(help: "Random seed (64-bit).") var seed: UInt64 = 1
    @Option(help: "Peak photon count of each pattern (> 0).") var photons: Double = 1e6
    @Option(help: "Largest crystal extent as a fraction of the box (≤ 0.5).") var fill: Double = 0.45
    @Flag(name: .customLong("detector-frame"), help: "Sample on the seed geometry's detector/rocking grid (patterns are rocking-frame stacks).") var detectorFrame = false
    @Flag(name: .customLong("no-noise"), help: "Expected counts, no Poisson noise.") var noNoise = false
    @Flag(name: .customLong("truncated-corner"), help: "Cut one corner off the prism (~6% of its volume): a crystal that is not centrosymmetric, whose twin differs in amplitude.") var truncatedCorner = false
    @OptionGroup var output: OutputFolderOptions
    var out: String { output.out }
    var force: Bool { output.force }
    @OptionGroup var common: CommonOptions

    func run() throws {
        try OutputCheck.folder(out, overwrite: force)   // before any work
        common.apply()
        chooseSimulationEffort()
        guard size > 0 else { throw UsageError("--size must be a positive number of voxels (got \(size))") }
        guard photons > 0 else { throw UsageError("--photons must be > 0 (got \(photons))") }
        var o = OperandoOptions()
        o.size = size; o.seed = seed; o.photons = photons; o.fill = fill; o.poissonNoise = !noNoise
        o.geometry = detectorFrame ? .seedStudy : nil
        o.truncatedCorner = truncatedCorner
        let fm = FileManager.default
        if fm.fileExists(atPath: out + "/ground_truth.json") && !force {
            throw UsageError("\(out) already holds a simulated series; pass --force to replace it")
        }
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let bar = ProgressBar(quiet: common.quiet, unit: "state")
        let series = try simulationUsage { try OperandoSeries.make(options: o, progress: bar.handler) }
        bar.finish()
        try SimulatedFiles.writeOperando((series.states, series.metrics), to: out, seed: seed,
                                         frame: detectorFrame ? "detector" : "lab", overwrite: force)
        if !common.quiet {
            for s in series.metrics.states {
                print(String(format: "%-16@ Δφ_mean %7.2f°  u_mean %7.4f Å  PCA Ω %8.2f rad", s.label, s.meanPhaseChangeDeg,
                             s.meanDisplacementAngstrom, s.pcaOrderParameter))
            }
        }
        common.saveWisdom()
    }
}
