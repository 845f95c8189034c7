import Dispatch
import Numerics
import Phasing

// The kernels `bragg bench fft` and `bragg bench phase` time, as library calls returning
// every timing (seconds; warm-up repeats left out); the program takes medians and prints.

public enum Benchmarks {
    /// Forward + inverse 3D complex FFT pairs (single precision, in place) of an n³ volume.
    public struct FFTTimings {
        /// Seconds of each timed pair (after two warm-up pairs), and of planning both transforms.
        public var pairs: [Double]
        public var planSeconds: Double
        public var threads: Int
        public var effort: FFTEffort
        /// Floating-point operations of one transform by the 5 N log2 N convention.
        public var nominalFlops: Double
    }

    /// Times `repeats` forward+inverse pairs of an n³ transform with the planner's default
    /// effort (values rescaled between pairs, untimed, to stay bounded).
    public static func fft(size n: Int, repeats: Int) throws -> FFTTimings {
        let shape = [n, n, n]
        var fwd: FFTPlan!, bwd: FFTPlan!
        let planTime = try seconds {
            fwd = try FFTPlanner.plan(shape: shape, direction: .forward)
            bwd = try FFTPlanner.plan(shape: shape, direction: .backward)
        }
        var v = ComplexVolume(shape: shape)
        v.withUnsafeMutableFloats { p in for i in 0..<p.count { p[i] = Float(i % 17) * 0.1 } }
        let scale = 1 / Float(v.count)
        var times: [Double] = []
        try v.withUnsafeMutableFloats { p in
            let ptr = p.baseAddress!
            for r in 0..<(repeats + 2) {
                try Interruption.check()
                let t = seconds {
                    fwd.execute(ptr, ptr)
                    bwd.execute(ptr, ptr)
                }
                if r >= 2 { times.append(t) }
                for i in 0..<p.count { p[i] *= scale }
            }
        }
        return FFTTimings(pairs: times, planSeconds: planTime, threads: fwd.threads, effort: fwd.effort, nominalFlops: fwd.nominalFlops)
    }

    /// HIO iterations of an n³ pattern, with and without a point-spread function.
    public struct HIOTimings {
        /// Seconds of each plain HIO iteration and of the forward+inverse FFT pair of the same
        /// plans timed after it; of each iteration with a fixed Gaussian point-spread function.
        public var iterations: [Double]
        public var fftPairs: [Double]
        public var psfIterations: [Double]
        /// Seconds of the engine's setup (plans included), of planning the real transforms of
        /// the point-spread function, and of one fit of its widths.
        public var setupSeconds: Double
        public var psfPlanSeconds: Double
        public var psfFitSeconds: Double
        /// Seconds of each Poisson maximum-likelihood iteration (`ML`), coherent and with the
        /// same point-spread function.
        public var mlIterations: [Double]
        public var mlPSFIterations: [Double]
        public var threads: Int
    }

    /// Times HIO on the numpy peer's data (bench/phasing_hio.py): a sphere's pattern, two
    /// masked rows, a cubic support of half the box.
    public static func hio(size n: Int, repeats: Int, threads t: Int = Parallel.threads) throws -> HIOTimings {
        let shape = [n, n, n], c = n / 2
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
        let support = RealVolume(shape: shape) { f in
            let z = f / (n * n), y = (f / n) % n, x = f % n
            return abs(z - c) < n / 4 && abs(y - c) < n / 4 && abs(x - c) < n / 4 ? 1 : 0
        }
        var engine: PhasingEngine!
        let setup = try seconds { engine = try PhasingEngine(data: data, support: support, threads: t) }
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
                let a = seconds { engine.iterate(.hio, beta: 0.9) }
                let b = seconds { fwd.execute(ptr, ptr); bwd.execute(ptr, ptr) }
                for i in 0..<p.count { p[i] *= 1 / Float(n * n * n) }
                if k >= 2 { hio.append(a); pair.append(b) }
            }
        }
        // The same iteration with partial coherence (a fixed Gaussian point-spread function:
        // real transforms of |F|², product with K̂, F·√(I/I_c)), and one fit of its widths.
        let psfPlan = try seconds { try engine.applyPSF(.fixed(.gaussian(sigma: [0.5, 0.5, 0.5]))) }
        var psfIter: [Double] = []
        for k in 0..<(repeats + 2) {
            try Interruption.check()
            let a = seconds { engine.iterate(.hio, beta: 0.9) }
            if k >= 2 { psfIter.append(a) }
        }
        // Poisson maximum-likelihood iterations (conjugate gradient: two FFTs, and with the
        // kernel three blurs, per iteration) with this kernel, then coherent.
        var mlPSF: [Double] = [], ml: [Double] = []
        for k in 0..<(repeats + 2) {
            try Interruption.check()
            let a = seconds { engine.iterate(.ml, beta: 0) }
            if k >= 2 { mlPSF.append(a) }
        }
        try engine.applyPSF(.refined(.gaussian, every: 25))
        let fit = seconds { engine.iterate(.hio, beta: 0.9) } - median(psfIter)
        try engine.applyPSF(.off)
        for k in 0..<(repeats + 2) {
            try Interruption.check()
            let a = seconds { engine.iterate(.ml, beta: 0) }
            if k >= 2 { ml.append(a) }
        }
        return HIOTimings(iterations: hio, fftPairs: pair, psfIterations: psfIter, setupSeconds: setup,
                          psfPlanSeconds: psfPlan, psfFitSeconds: fit, mlIterations: ml, mlPSFIterations: mlPSF, threads: t)
    }

    /// Median of a list of timings (NaN for none).
    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }

    /// Seconds taken by `body`, by the monotonic clock.
    public static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }
}
