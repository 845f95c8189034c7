import Foundation
import Numerics

/// Errors raised by the simulation module: one sentence naming what was wrong.
public enum SimulationError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(String)
    /// The crystal is larger than half the box: its pattern would be undersampled.
    case undersampled(crystalVoxels: Double, halfBox: Int)

    public var description: String {
        switch self {
        case .invalidParameter(let s): return s
        case .undersampled(let c, let h):
            return "the crystal (\(c) voxels) is larger than half the box (\(h) voxels): the pattern would be undersampled; enlarge the box or reduce the crystal"
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): used to expand one seed into the state of
/// `SimulationRNG` and to derive independent streams for blocks of voxels.
@inlinable func splitMix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// xoshiro256** (Blackman & Vigna 2018), seeded through SplitMix64. Every draw is defined
/// here bit for bit (uniforms, normals, Poisson), so the same seed gives the same bytes on
/// every machine and Swift version, independent of the thread count.
public struct SimulationRNG: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    /// A spare normal deviate from the last Box–Muller pair.
    @usableFromInline var spareNormal: Double? = nil

    public init(seed: UInt64) {
        var sm = seed
        s0 = splitMix64(&sm); s1 = splitMix64(&sm); s2 = splitMix64(&sm); s3 = splitMix64(&sm)
    }

    /// An independent stream for sub-task `index` of a computation seeded with `seed`
    /// (blocks of a volume filled in parallel, scans of a series, samples of a data set).
    public init(seed: UInt64, stream index: UInt64) {
        var sm = seed ^ (index &* 0xD1B5_4A32_D192_ED03)
        _ = splitMix64(&sm)
        self.init(seed: splitMix64(&sm) ^ index)
    }

    @inlinable public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inlinable public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [a, b).
    @inlinable public mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * uniform()
    }

    /// Uniform integer in 0..<n (n > 0), by Lemire's multiply-shift (tiny bias below 2⁻³²).
    @inlinable public mutating func integer(below n: Int) -> Int {
        precondition(n > 0)
        return Int(((next() >> 32) &* UInt64(n)) >> 32)
    }

    /// Standard normal deviate (Box–Muller; pairs are used in turn).
    @inlinable public mutating func normal() -> Double {
        if let s = spareNormal { spareNormal = nil; return s }
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * Foundation.log(u1)).squareRoot()
        let a = 2 * Double.pi * u2
        spareNormal = r * Foundation.sin(a)
        return r * Foundation.cos(a)
    }

    /// Normal deviate of mean `mean` and standard deviation `sigma`.
    @inlinable public mutating func normal(mean: Double, sigma: Double) -> Double {
        mean + sigma * normal()
    }

    /// A unit vector uniform on the sphere.
    public mutating func unitVector() -> SIMD3<Double> {
        let z = uniform(-1, 1), a = uniform(0, 2 * Double.pi)
        let r = (1 - z * z).squareRoot()
        return SIMD3(r * Foundation.cos(a), r * Foundation.sin(a), z)
    }

    /// A Poisson deviate of mean `lambda` (≥ 0): Knuth's product of uniforms below a mean
    /// of 10, Hörmann's transformed rejection with squeeze (PTRS, 1993) above. Exact in
    /// distribution for every mean.
    @inlinable public mutating func poisson(_ lambda: Double) -> Double {
        if !(lambda > 0) { return 0 }
        if lambda < 10 {
            let l = Foundation.exp(-lambda)
            var k = 0.0, p = uniform()
            while p > l { k += 1; p *= uniform() }
            return k
        }
        return poissonPTRS(lambda)
    }

    @usableFromInline mutating func poissonPTRS(_ lambda: Double) -> Double {
        let slam = lambda.squareRoot(), loglam = Foundation.log(lambda)
        let b = 0.931 + 2.53 * slam
        let a = -0.059 + 0.02483 * b
        let invalpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = uniform() - 0.5
            let v = uniform()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return k }
            if k < 0 || (us < 0.013 && v > us) { continue }
            // log(V) + log(invalpha) − log(a/us² + b) ≤ −λ + k log λ − log Γ(k+1)
            if Foundation.log(v) + Foundation.log(invalpha) - Foundation.log(a / (us * us) + b)
                <= -lambda + k * loglam - Foundation.lgamma(k + 1) {
                return k
            }
        }
    }
}

/// Fills blocks of a buffer from independent streams so that the result depends only on
/// the seed, never on how many threads ran: block b always uses stream b.
@usableFromInline let rngBlock = 8192

@inlinable func forEachSeededBlock(count: Int, seed: UInt64,
                                   _ body: (Range<Int>, inout SimulationRNG) -> Void) {
    let blocks = (count + rngBlock - 1) / rngBlock
    Parallel.forEachChunk(blocks, minChunk: 4) { range in
        for b in range {
            var rng = SimulationRNG(seed: seed, stream: UInt64(b))
            body((b * rngBlock)..<min(count, (b + 1) * rngBlock), &rng)
        }
    }
}

extension Volume where Element == Float {
    /// White Gaussian noise (mean 0, standard deviation 1), the same for a seed whatever
    /// the thread count.
    public static func whiteNoise(shape: [Int], seed: UInt64) -> RealVolume {
        var v = RealVolume(shape: shape)
        let n = v.count
        v.withUnsafeMutableFloats { p in
            let d = SendablePointer(p.baseAddress!)
            forEachSeededBlock(count: n, seed: seed) { r, rng in
                for i in r { d.pointer[i] = Float(rng.normal()) }
            }
        }
        return v
    }

    /// Poisson counts drawn with each voxel's value as the mean (negative or non-finite
    /// means count as 0). Reproducible from the seed, independent of the thread count.
    public func poissonSampled(seed: UInt64) -> RealVolume {
        var out = RealVolume(shape: shape)
        let n = count
        withUnsafeFloats { src in
            out.withUnsafeMutableFloats { p in
                let d = SendablePointer(p.baseAddress!)
                let s = src.baseAddress!
                forEachSeededBlock(count: n, seed: seed) { r, rng in
                    for i in r {
                        let m = Double(s[i])
                        d.pointer[i] = m.isFinite ? Float(rng.poisson(m)) : 0
                    }
                }
            }
        }
        return out
    }
}
