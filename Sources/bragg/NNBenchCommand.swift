import ArgumentParser
import Foundation
import Neural
import Numerics

struct BenchNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nn",
        abstract: "Time one training step (forward + physics loss + backward + AdamW) and one inference of the phase-retrieval network.",
        discussion: "Compare with `python3 bench/nn_torch.py` (the same network in PyTorch CPU) run in the same session; see bench/README.md."
    )

    enum Defaults: BenchSizeDefaults {
        static let size = 64, sizeRange = 8...256, sizeMultiple = 8, sizeHelp = "Input pattern edge (multiple of 8)."
        static let repeats = 5, repeatsHelp = "Timed repeats (after one warm-up)."
    }

    @OptionGroup var cube: BenchSizeOption<Defaults>

    @Option(help: "Network width c.")
    var width: Int = 8

    @OptionGroup var bench: BenchOptions<Defaults>

    @Flag(help: "Also print seconds per kernel (im2col, GEMMs, normalisation).")
    var profile = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard width >= 1 && width <= 64 else { throw ValidationError("--width must be 1…64 (got \(width))") }
    }

    func run() throws {
        let size = cube.size, repeats = bench.repeats
        common.apply()
        NeuralProfile.enabled = profile
        let r = try NeuralBenchmark.run(size: size, width: width, repeats: repeats)
        common.saveWisdom()
        if bench.json {
            print(#"{"bench":"nn","size":\#(size),"width":\#(width),"threads":\#(r.threads),"parameters":\#(r.parameters),"train_step_s":\#(String(format: "%.4f", r.trainingStep)),"inference_s":\#(String(format: "%.4f", r.inference))}"#)
        } else {
            print(String(format: "nn %d³ c=%d, %d parameters, %d thread(s): training step %.3f s (min %.3f), inference %.3f s (min %.3f), medians of %d",
                         size, width, r.parameters, r.threads, r.trainingStep, r.trainingSteps.min() ?? .nan,
                         r.inference, r.inferences.min() ?? .nan, repeats))
            print("  step stages: " + r.stages.map { String(format: "%@ %.3f s", $0.0, $0.1) }.joined(separator: ", "))
        }
        if profile {
            let calls = Double(2 * (repeats + 1))
            for (k, v) in NeuralProfile.report.prefix(20) { print(String(format: "  %8.4f s/pass  %@", v / calls, k)) }
        }
    }
}
