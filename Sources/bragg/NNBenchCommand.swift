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

    @Option(help: "Input pattern edge (multiple of 8).")
    var size: Int = 64

    @Option(help: "Network width c.")
    var width: Int = 8

    @Option(help: "Timed repeats (after one warm-up).")
    var repeats: Int = 5

    @Flag(help: "Also print seconds per kernel (im2col, GEMMs, normalisation).")
    var profile = false

    @Flag(help: "Print one machine-readable JSON line instead of text.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard size >= 8 && size % 8 == 0 && size <= 256 else { throw ValidationError("--size must be a multiple of 8 up to 256 (got \(size))") }
        guard width >= 1 && width <= 64 else { throw ValidationError("--width must be 1…64 (got \(width))") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
    }

    func run() throws {
        common.apply()
        NeuralProfile.enabled = profile
        let r = try NeuralBenchmark.run(size: size, width: width, repeats: repeats)
        common.saveWisdom()
        if json {
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
