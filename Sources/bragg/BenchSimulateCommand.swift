import ArgumentParser
import BraggKit
import Foundation

struct BenchSimulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Time training-pair generation and a full crystal simulation.",
        discussion: "Median of --repeats after one warm-up (which pays for FFT planning)."
    )
    @Option(name: .customLong("pair-size"), help: "Training pattern size.") var pairSize: Int = 64
    @Option(name: .customLong("crystal-size"), help: "Box of the crystal simulation.") var crystalSize: Int = 128
    enum Defaults: BenchDefaults {
        static let repeats = 10, repeatsHelp = "Timed repeats.", jsonHelp = "Print one machine-readable JSON line."
    }
    @OptionGroup var bench: BenchOptions<Defaults>
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        chooseSimulationEffort()
        let repeats = bench.repeats
        guard pairSize >= 8, crystalSize >= 8 else { throw UsageError("--pair-size and --crystal-size must be at least 8") }
        _ = try TrainingPair.make(size: pairSize, seed: 0)
        var pair: [Double] = []
        for r in 0..<repeats { pair.append(try Benchmarks.seconds { _ = try TrainingPair.make(size: pairSize, seed: UInt64(r + 1)) }) }
        var o = CrystalOptions()
        o.size = crystalSize; o.phaseRMS = 0.5
        _ = try CrystalSimulation.make(o)
        var crystal: [Double] = []
        for r in 0..<max(1, repeats / 3) { o.seed = UInt64(r + 1); crystal.append(try Benchmarks.seconds { _ = try CrystalSimulation.make(o) }) }
        if bench.json {
            print(#"{"bench":"simulate","pair_size":\#(pairSize),"pair_ms":\#(String(format: "%.3f", Benchmarks.median(pair) * 1e3)),"crystal_size":\#(crystalSize),"crystal_ms":\#(String(format: "%.2f", Benchmarks.median(crystal) * 1e3)),"threads":\#(Parallel.threads)}"#)
        } else {
            print(String(format: "training pair %d³: %.2f ms median of %d; crystal %d³ (prism, correlated phase, noise): %.1f ms median of %d; %d thread(s)",
                         pairSize, Benchmarks.median(pair) * 1e3, pair.count, crystalSize, Benchmarks.median(crystal) * 1e3, crystal.count, Parallel.threads))
        }
    }
}
