import Foundation
import XCTest
import Numerics
@testable import Analysis

/// Builds test objects in index space: a faceted, non-centrosymmetric crystal with soft
/// (erf) edges and known phase fields, and the perturbations a reconstruction suffers.
enum Synthetic {
    /// Facet normals (index space, z y x) with inner and outer distances: a hexagonal
    /// prism with one truncated corner, off-centre so the twin is distinguishable.
    static let facets: [(Vector3, Double, Double)] = {
        var f: [(Vector3, Double, Double)] = []
        for k in 0..<3 {
            let a = Double(k) * Double.pi / 3
            f.append((Vector3(0, sin(a), cos(a)), 10, 12))
        }
        f.append((Vector3(1, 0, 0), 9, 11))
        let c = Vector3(1, 1, 1) / 3.0.squareRoot()
        f.append((c, 30, 14))     // truncated corner on one side only
        return f
    }()

    /// Signed distance to the surface (negative inside), in voxels.
    static func signedDistance(_ r: Vector3, scale: Double = 1) -> Double {
        var s = -Double.infinity
        for (n, lo, hi) in facets {
            let t = dot(n, r)
            s = max(s, t - hi * scale, -t - lo * scale)
        }
        return s
    }

    /// Amplitude 0.5·erfc(s/(√2σ)) of the crystal centred at `centre` of a box `shape`.
    static func amplitude(shape: [Int], sigma: Double = 0.8, scale: Double = 1) -> [Float] {
        let c = shape.map { Double($0 / 2) }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
            let r = Vector3(Double(i) - c[0], Double(j) - c[1], Double(k) - c[2])
            out[(i * shape[1] + j) * shape[2] + k] = Float(0.5 * erfc(signedDistance(r, scale: scale) / (2.0.squareRoot() * sigma)))
        } } }
        return out
    }

    /// Near-surface strain domains: Gaussian bumps of phase at fixed centres, weights per state.
    static let domainCentres: [Vector3] = [Vector3(6, 8, -6), Vector3(-6, -7, 7), Vector3(0, 9, 8)]

    static func phase(shape: [Int], weights: [Double], width: Double = 4) -> [Float] {
        let c = shape.map { Double($0 / 2) }
        var out = [Float](repeating: 0, count: shape.reduce(1, *))
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] {
            let r = Vector3(Double(i) - c[0], Double(j) - c[1], Double(k) - c[2])
            var p = 0.0
            for (d, w) in zip(domainCentres, weights) {
                let q = r - d
                p += w * exp(-dot(q, q) / (2 * width * width))
            }
            out[(i * shape[1] + j) * shape[2] + k] = Float(p)
        } } }
        return out
    }

    static func object(amplitude: [Float], phase: [Float], shape: [Int]) -> ComplexVolume {
        ComplexVolume(shape: shape) { Complex32(modulus: amplitude[$0], phase: phase[$0]) }
    }
}

/// A deterministic generator for the tests (SplitMix64).
struct TestRNG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
}
