import ArgumentParser
import Foundation
import Numerics
import Phasing

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

struct BenchPhase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phase",
        abstract: "Time one HIO iteration (FFT, fused modulus projection, inverse FFT, fused support update), without and with a point-spread function.",
        discussion: "Prints the median HIO iteration beside the median forward+inverse FFT pair of the same plans, timed alternately in the same run, and their ratio; then the median HIO iteration with partial coherence (a Gaussian point-spread function) and its ratio to the plain one, and the time of one fit of its widths. Compare with `python3 bench/phasing_hio.py --size N` (numpy + scipy.fft) in the same session."
    )

    @Option(help: "Edge of the cubic pattern.")
    var size: Int = 128

    @Option(help: "Timed iterations (and FFT pairs).")
    var repeats: Int = 20

    @Flag(help: "Print one machine-readable JSON line instead of text.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard size >= 4 && size <= 1024 else { throw ValidationError("--size must be between 4 and 1024 (got \(size))") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
    }

    func run() throws {
        common.apply()
        let n = size, shape = [n, n, n], c = n / 2
        // The same data as the numpy peer: a sphere's pattern, two masked rows, a cubic support.
        var obj = ComplexVolume(shape: shape)
        let r2 = Double(n) / 6
        obj.withUnsafeMutableFloats { p in
            for z in 0..<n { for y in 0..<n { for x in 0..<n {
                let d = Double((z - c) * (z - c) + (y - c) * (y - c) + (x - c) * (x - c))
                if d < r2 * r2 { p[2 * ((z * n + y) * n + x)] = 1 }
            } } }
        }
        try FFT.forward(&obj)
        let intensity = obj.intensity().fftshifted()
        var mask = RealVolume(shape: shape)
        mask.withUnsafeMutableFloats { p in for z in 0..<n { for y in 0..<2 { for x in 0..<n { p[(z * n + y) * n + x] = 1 } } } }
        let data = try PhasingData(intensity: intensity, mask: mask.fftshifted())
        let t = Parallel.threads
        var planTime = 0.0
        var engine: PhasingEngine!
        planTime = try timeIt {
            engine = try PhasingEngine(data: data, support: InitialSupportVolume.box(shape: shape, size: n / 2), threads: t)
        }
        common.saveWisdom()
        var rng = PhasingRNG(seed: 1)
        engine.randomStart(rng: &rng)
        let fwd = try FFTPlanner.plan(shape: shape, direction: .forward, threads: t)
        let bwd = try FFTPlanner.plan(shape: shape, direction: .backward, threads: t)
        var scratch = ComplexVolume(shape: shape, repeating: Complex32(0.5, 0.25))
        var hio: [Double] = [], pair: [Double] = []
        try scratch.withUnsafeMutableFloats { p in
            let ptr = p.baseAddress!
            for k in 0..<(repeats + 2) {
                try Interruption.check()
                let a = timeIt { engine.iterate(.hio, beta: 0.9) }
                let b = timeIt { fwd.execute(ptr, ptr); bwd.execute(ptr, ptr) }
                for i in 0..<p.count { p[i] *= 1 / Float(n * n * n) }
                if k >= 2 { hio.append(a); pair.append(b) }
            }
        }
        // The same iteration with partial coherence (a fixed Gaussian point-spread function:
        // real transforms of |F|², product with K̂, F·√(I/I_c)), and one fit of its widths.
        var psfPlan = 0.0
        psfPlan = try timeIt { try engine.applyPSF(.fixed(.gaussian(sigma: [0.5, 0.5, 0.5]))) }
        var psfIter: [Double] = []
        for k in 0..<(repeats + 2) {
            try Interruption.check()
            let a = timeIt { engine.iterate(.hio, beta: 0.9) }
            if k >= 2 { psfIter.append(a) }
        }
        try engine.applyPSF(.refined(.gaussian, every: 25))
        let fit = timeIt { engine.iterate(.hio, beta: 0.9) } - median(psfIter)
        let h = median(hio), f = median(pair), p = median(psfIter)
        if json {
            print(#"{"bench":"phase","size":\#(n),"threads":\#(t),"hio_ms":\#(String(format: "%.4f", h * 1e3)),"fft_pair_ms":\#(String(format: "%.4f", f * 1e3)),"ratio":\#(String(format: "%.3f", h / f)),"hio_psf_ms":\#(String(format: "%.4f", p * 1e3)),"psf_ratio":\#(String(format: "%.3f", p / h)),"psf_fit_ms":\#(String(format: "%.2f", fit * 1e3))}"#)
        } else {
            print(String(format: "phase %d³ HIO iteration: %.3f ms median of %d (min %.3f); FFT pair of the same plans: %.3f ms; HIO/FFT-pair %.3f; %d thread(s); setup %.2f s",
                         n, h * 1e3, hio.count, (hio.min() ?? 0) * 1e3, f * 1e3, h / f, t, planTime))
            print(String(format: "with a point-spread function (partial coherence): %.3f ms median of %d, %.2f× the plain iteration; one width fit %.1f ms; real-FFT planning %.2f s",
                         p * 1e3, psfIter.count, p / h, fit * 1e3, psfPlan))
        }
    }
}

/// A centred box support volume (for the bench).
enum InitialSupportVolume {
    static func box(shape: [Int], size: Int) -> RealVolume {
        let n = shape[2], c = n / 2
        return RealVolume(shape: shape) { f in
            let z = f / (n * n), y = (f / n) % n, x = f % n
            return abs(z - c) < size / 2 && abs(y - c) < size / 2 && abs(x - c) < size / 2 ? 1 : 0
        }
    }
}
