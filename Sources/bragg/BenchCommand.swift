import ArgumentParser
import BraggKit
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time BraggKit's kernels (release builds only give meaningful figures).",
        discussion: "Compare against peers with the scripts in bench/ run in the same session; see bench/README.md.",
        subcommands: braggBenchSubcommands
    )
}

struct BenchFFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fft",
        abstract: "Time a forward + inverse 3D complex FFT pair (single precision, in place).",
        discussion: "Prints the median over --repeats pairs after warm-up, the threads used and GFLOP/s by the 5 N log2 N convention (both transforms counted)."
    )

    enum Defaults: BenchSizeDefaults {
        static let size = 128, sizeRange = 1...1024
        static let sizeHelp = "Edge of the cubic volume (any positive size; 2^a 3^b 5^c 7^d is fast)."
        static let repeats = 20, repeatsHelp = "Timed forward+inverse pairs."
    }

    @OptionGroup var cube: BenchSizeOption<Defaults>
    @OptionGroup var bench: BenchOptions<Defaults>
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let size = cube.size
        let r = try Benchmarks.fft(size: size, repeats: bench.repeats)
        common.saveWisdom()
        let med = Benchmarks.median(r.pairs)
        let gflops = 2 * r.nominalFlops / med * 1e-9
        if bench.json {
            print(#"{"bench":"fft","size":\#(size),"threads":\#(r.threads),"effort":"\#(r.effort.rawValue)","median_ms":\#(String(format: "%.4f", med * 1e3)),"gflops":\#(String(format: "%.2f", gflops)),"plan_s":\#(String(format: "%.3f", r.planSeconds))}"#)
        } else {
            print(String(format: "fft %d³ forward+inverse: %.3f ms median of %d (min %.3f ms), %d thread(s), effort %@, %.1f GFLOP/s; planning %.2f s",
                         size, med * 1e3, r.pairs.count, (r.pairs.min() ?? 0) * 1e3, r.threads, r.effort.rawValue, gflops, r.planSeconds))
        }
    }
}

struct BenchPhase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phase",
        abstract: "Time one HIO iteration (FFT, fused modulus projection, inverse FFT, fused support update), without and with a point-spread function.",
        discussion: "Prints the median HIO iteration beside the median forward+inverse FFT pair of the same plans, timed alternately in the same run, and their ratio; then the median HIO iteration with partial coherence (a Gaussian point-spread function) and its ratio to the plain one, and the time of one fit of its widths. Compare with `python3 bench/phasing_hio.py --size N` (numpy + scipy.fft) in the same session."
    )

    enum Defaults: BenchSizeDefaults {
        static let size = 128, sizeRange = 4...1024, sizeHelp = "Edge of the cubic pattern."
        static let repeats = 20, repeatsHelp = "Timed iterations (and FFT pairs)."
    }

    @OptionGroup var cube: BenchSizeOption<Defaults>
    @OptionGroup var bench: BenchOptions<Defaults>
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let n = cube.size
        let r = try Benchmarks.hio(size: n, repeats: bench.repeats)
        common.saveWisdom()
        let h = Benchmarks.median(r.iterations), f = Benchmarks.median(r.fftPairs), p = Benchmarks.median(r.psfIterations)
        let fit = r.psfFitSeconds, ml = Benchmarks.median(r.mlIterations), mlp = Benchmarks.median(r.mlPSFIterations)
        if bench.json {
            print(#"{"bench":"phase","size":\#(n),"threads":\#(r.threads),"hio_ms":\#(String(format: "%.4f", h * 1e3)),"fft_pair_ms":\#(String(format: "%.4f", f * 1e3)),"ratio":\#(String(format: "%.3f", h / f)),"hio_psf_ms":\#(String(format: "%.4f", p * 1e3)),"psf_ratio":\#(String(format: "%.3f", p / h)),"psf_fit_ms":\#(String(format: "%.2f", fit * 1e3)),"ml_ms":\#(String(format: "%.4f", ml * 1e3)),"ml_ratio":\#(String(format: "%.3f", ml / h)),"ml_psf_ms":\#(String(format: "%.4f", mlp * 1e3))}"#)
        } else {
            print(String(format: "phase %d³ HIO iteration: %.3f ms median of %d (min %.3f); FFT pair of the same plans: %.3f ms; HIO/FFT-pair %.3f; %d thread(s); setup %.2f s",
                         n, h * 1e3, r.iterations.count, (r.iterations.min() ?? 0) * 1e3, f * 1e3, h / f, r.threads, r.setupSeconds))
            print(String(format: "with a point-spread function (partial coherence): %.3f ms median of %d, %.2f× the plain iteration; one width fit %.1f ms; real-FFT planning %.2f s",
                         p * 1e3, r.psfIterations.count, p / h, fit * 1e3, r.psfPlanSeconds))
            print(String(format: "Poisson maximum-likelihood (ML) iteration: %.3f ms median of %d, %.2f× the plain iteration; with the point-spread function %.3f ms, %.2f×",
                         ml * 1e3, r.mlIterations.count, ml / h, mlp * 1e3, mlp / h))
        }
    }
}
