import ArgumentParser
import Foundation
import Numerics

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time BraggKit's kernels (release builds only give meaningful figures).",
        discussion: "Compare against peers with the scripts in bench/ run in the same session; see bench/README.md.",
        subcommands: braggBenchSubcommands
    )
}

/// Median of a list of timings.
func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
}

/// Seconds taken by `body`, by the monotonic clock.
func timeIt(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
}

struct BenchFFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fft",
        abstract: "Time a forward + inverse 3D complex FFT pair (single precision, in place).",
        discussion: "Prints the median over --repeats pairs after warm-up, the threads used and GFLOP/s by the 5 N log2 N convention (both transforms counted)."
    )

    @Option(help: "Edge of the cubic volume (any positive size; 2^a 3^b 5^c 7^d is fast).")
    var size: Int = 128

    @Option(help: "Timed forward+inverse pairs.")
    var repeats: Int = 20

    @Flag(help: "Print one machine-readable JSON line instead of text.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard size >= 1 && size <= 1024 else { throw ValidationError("--size must be between 1 and 1024 (got \(size))") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
    }

    func run() throws {
        common.apply()
        let shape = [size, size, size]
        var planTime = 0.0
        var fwd: FFTPlan!, bwd: FFTPlan!
        planTime = try timeIt {
            fwd = try FFTPlanner.plan(shape: shape, direction: .forward)
            bwd = try FFTPlanner.plan(shape: shape, direction: .backward)
        }
        common.saveWisdom()
        var v = ComplexVolume(shape: shape)
        v.withUnsafeMutableFloats { p in for i in 0..<p.count { p[i] = Float(i % 17) * 0.1 } }
        let scale = 1 / Float(v.count)
        var times: [Double] = []
        try v.withUnsafeMutableFloats { p in
            let ptr = p.baseAddress!
            for r in 0..<(repeats + 2) {
                try Interruption.check()
                let t = timeIt {
                    fwd.execute(ptr, ptr)
                    bwd.execute(ptr, ptr)
                }
                if r >= 2 { times.append(t) }
                // keep values bounded; not timed
                for i in 0..<p.count { p[i] *= scale }
            }
        }
        let med = median(times)
        let gflops = 2 * fwd.nominalFlops / med * 1e-9
        if json {
            print(#"{"bench":"fft","size":\#(size),"threads":\#(fwd.threads),"effort":"\#(fwd.effort.rawValue)","median_ms":\#(String(format: "%.4f", med * 1e3)),"gflops":\#(String(format: "%.2f", gflops)),"plan_s":\#(String(format: "%.3f", planTime))}"#)
        } else {
            print(String(format: "fft %d³ forward+inverse: %.3f ms median of %d (min %.3f ms), %d thread(s), effort %@, %.1f GFLOP/s; planning %.2f s",
                         size, med * 1e3, times.count, (times.min() ?? 0) * 1e3, fwd.threads, fwd.effort.rawValue, gflops, planTime))
        }
    }
}
