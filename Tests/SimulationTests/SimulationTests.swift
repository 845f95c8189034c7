import XCTest
import Numerics
@testable import Simulation

final class RandomTests: XCTestCase {
    func testSameSeedSameStream() {
        var a = SimulationRNG(seed: 42), b = SimulationRNG(seed: 42), c = SimulationRNG(seed: 43)
        let xa = (0..<100).map { _ in a.next() }, xb = (0..<100).map { _ in b.next() }
        let xc = (0..<100).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        // xoshiro256** reference: the first output for state from SplitMix64(0) is fixed.
        var z = SimulationRNG(seed: 0)
        let first = z.next()
        var z2 = SimulationRNG(seed: 0)
        XCTAssertEqual(first, z2.next())
    }

    func testUniformAndNormalMoments() {
        var r = SimulationRNG(seed: 7)
        let n = 200_000
        var s = 0.0, s2 = 0.0, u = 0.0
        for _ in 0..<n { let x = r.normal(); s += x; s2 += x * x; u += r.uniform() }
        XCTAssertEqual(s / Double(n), 0, accuracy: 0.01)
        XCTAssertEqual(s2 / Double(n), 1, accuracy: 0.01)
        XCTAssertEqual(u / Double(n), 0.5, accuracy: 0.003)
    }

    func testPoissonVarianceEqualsMean() {
        // Both branches: Knuth (small means) and PTRS (large means).
        for lambda in [0.3, 3.0, 9.5, 10.5, 40.0, 1000.0, 1e5] {
            var r = SimulationRNG(seed: UInt64(lambda * 10))
            let n = 100_000
            var s = 0.0, s2 = 0.0
            for _ in 0..<n { let k = r.poisson(lambda); s += k; s2 += k * k }
            let mean = s / Double(n), variance = s2 / Double(n) - mean * mean
            // Standard error of the mean √(λ/n); of the variance ≈ λ√(2/n).
            XCTAssertEqual(mean, lambda, accuracy: 5 * (lambda / Double(n)).squareRoot() + 1e-9, "λ = \(lambda)")
            XCTAssertEqual(variance / lambda, 1, accuracy: 0.03, "λ = \(lambda)")
        }
        // P(0) for λ = 3 is e^{-3}.
        var r = SimulationRNG(seed: 99)
        var zeros = 0
        for _ in 0..<100_000 where r.poisson(3) == 0 { zeros += 1 }
        XCTAssertEqual(Double(zeros) / 1e5, exp(-3), accuracy: 0.004)
    }

    func testPoissonVolumeIndependentOfThreads() {
        let mean = RealVolume(shape: [24, 24, 24], repeating: 5)
        let saved = Parallel.threads
        Parallel.threads = 1
        let a = mean.poissonSampled(seed: 11)
        Parallel.threads = 2
        let b = mean.poissonSampled(seed: 11)
        Parallel.threads = saved
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.mean(), 5, accuracy: 0.1)
    }
}

final class CrystalTests: XCTestCase {
    func testVolumesOfNamedShapes() {
        XCTAssertEqual(Crystal.cube(edge: 2).volume, 8, accuracy: 1e-9)
        // Regular octahedron with facet distance d: V = 4√3 d³.
        XCTAssertEqual(Crystal.octahedron(distance: 1).volume, 4 * 3.0.squareRoot(), accuracy: 1e-9)
        // Hexagonal prism: area 2√3 r² times height.
        XCTAssertEqual(Crystal.hexagonalPrism(radius: 1, height: 3).volume, 2 * 3.0.squareRoot() * 3, accuracy: 1e-9)
        // Archimedean truncated octahedron of edge a: V = 8√2 a³; {100} at distance √2 a.
        let a = 1.0
        let t = Crystal.truncatedOctahedron(distance: 3.0.squareRoot() * a / 2.0.squareRoot() * 1, truncation: 2 / 3.0.squareRoot())
        XCTAssertEqual(t.volume, 8 * 2.0.squareRoot() * a * a * a, accuracy: 1e-6)
        XCTAssertEqual(t.vertices.count, 24)
    }

    func testAntiAliasedAmplitudeSumsToVolume() {
        var rng = SimulationRNG(seed: 5)
        for shape in CrystalShape.allCases {
            let c = Crystal.named(shape, size: 20).rotated(by: .randomRotation(&rng))
            let a = c.amplitude(box: [40, 40, 40])
            XCTAssertEqual(a.sum() / c.volume, 1, accuracy: 0.01, "\(shape)")
            XCTAssertLessThanOrEqual(a.maximum(), 1)
            XCTAssertGreaterThanOrEqual(a.minimum(), 0)
        }
    }

    func testRandomPrismFitsItsBox() {
        var rng = SimulationRNG(seed: 3)
        for _ in 0..<20 {
            let c = Crystal.randomHexagonalPrism(maxExtent: 25, rng: &rng)
            let e = c.extent
            XCTAssertLessThanOrEqual(max(e.x, e.y, e.z), 25 + 1e-9)
            XCTAssertGreaterThan(max(e.x, e.y, e.z), 25 - 1e-6)
        }
    }
}

final class DiffractionTests: XCTestCase {
    func crystalObject(_ n: Int, seed: UInt64, rms: Double = 0.8) throws -> ComplexVolume {
        var rng = SimulationRNG(seed: seed)
        let c = Crystal.randomHexagonalPrism(maxExtent: Double(n) * 0.8, rng: &rng)
        let amp = c.amplitude(box: [n, n, n])
        let ph = try PhaseField.gaussianCorrelated(shape: [n, n, n], correlationLength: 3, rms: rms, support: amp, seed: seed)
        return try ComplexVolume(modulus: amp, phase: ph)
    }

    func testParsevalObjectToIntensity() throws {
        let obj = try crystalObject(16, seed: 1)
        let box = [32, 40, 36]
        let i = try Diffraction.intensity(of: obj, box: box)
        let n = Double(box.reduce(1, *))
        XCTAssertEqual(i.sum() / (n * obj.squaredNorm()), 1, accuracy: 1e-4)
        // Zero frequency at the centre: I(centre) = |Σρ|².
        let s = obj.sum()
        XCTAssertEqual(Double(i[16, 20, 18]) / Double(s.re * s.re + s.im * s.im), 1, accuracy: 1e-4)
    }

    func testRealObjectGivesCentrosymmetricPattern() throws {
        var rng = SimulationRNG(seed: 2)
        let c = Crystal.randomHexagonalPrism(maxExtent: 14, rng: &rng)
        let obj = c.amplitude(box: [16, 16, 16]).complex()
        let i = try Diffraction.intensity(of: obj, box: [32, 32, 32])
        var worst: Float = 0
        let peak = i.maximum()
        for z in 1..<32 { for y in 1..<32 { for x in 1..<32 {
            worst = max(worst, abs(i[z, y, x] - i[32 - z, 32 - y, 32 - x]))
        } } }
        XCTAssertLessThan(worst / peak, 1e-5)
        // A complex (strained) object breaks the symmetry.
        let strained = try crystalObject(16, seed: 2, rms: 1.0)
        let j = try Diffraction.intensity(of: strained, box: [32, 32, 32])
        var diff: Float = 0
        for z in 1..<32 { for y in 1..<32 { for x in 1..<32 { diff = max(diff, abs(j[z, y, x] - j[32 - z, 32 - y, 32 - x])) } } }
        XCTAssertGreaterThan(diff / j.maximum(), 1e-2)
    }

    func testPhotonScalingAndNoise() throws {
        let obj = try crystalObject(16, seed: 4)
        let clean = try Diffraction.diffract(obj, box: [32, 32, 32], photons: 1e5, seed: nil)
        XCTAssertEqual(Double(clean.maximum()), 1e5, accuracy: 1)
        let noisy = try Diffraction.diffract(obj, box: [32, 32, 32], photons: 1e5, seed: 9)
        XCTAssertEqual(noisy.sum() / clean.sum(), 1, accuracy: 0.01)
        // Every count is an integer.
        XCTAssertTrue(noisy.elements.allSatisfy { $0 == $0.rounded() })
        XCTAssertThrowsError(try Diffraction.diffract(obj, box: [32, 32, 32], photons: 0, seed: 1))
    }

    func testTrainingPairIsReproducible() throws {
        let a = try TrainingPair.make(size: 32, seed: 123)
        let b = try TrainingPair.make(size: 32, seed: 123)
        let c = try TrainingPair.make(size: 32, seed: 124)
        XCTAssertEqual(a.intensity.shape, [32, 32, 32])
        XCTAssertEqual(a.object.shape, [16, 16, 16])
        XCTAssertEqual(a.intensity, b.intensity)
        XCTAssertEqual(a.object, b.object)
        XCTAssertNotEqual(a.intensity, c.intensity)
    }
}

final class IntegerDrawTests: XCTestCase {
    func testIntegerBelowCoversItsRange() {
        var r = SimulationRNG(seed: 1)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[r.integer(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c) / 10_000, 1, accuracy: 0.05) }
    }
}
