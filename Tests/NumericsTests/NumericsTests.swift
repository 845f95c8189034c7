import Foundation
import XCTest
@testable import Numerics

/// A reproducible pseudo-random complex volume (values in [-1, 1)).
func randomComplex(_ shape: [Int], seed: UInt64) -> ComplexVolume {
    var s = seed &+ 0x9E37_79B9_7F4A_7C15
    func next() -> Float {
        s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Double(s >> 40) / Double(1 << 24)) * 2 - 1
    }
    return ComplexVolume(shape: shape) { _ in Complex32(next(), next()) }
}

/// Direct O(N²) DFT in Double with the DESIGN.md sign: F(q) = Σ ρ(r) exp(−2πi q·r / n).
func directDFT(_ v: ComplexVolume, sign: Double = -1) -> [(Double, Double)] {
    let sh = v.shape, n = v.count, r = sh.count
    let e = v.elements
    func idx(_ f: Int) -> [Int] {
        var rem = f, out = [Int](repeating: 0, count: r)
        for a in stride(from: r - 1, through: 0, by: -1) { out[a] = rem % sh[a]; rem /= sh[a] }
        return out
    }
    let indices = (0..<n).map(idx)
    var out = [(Double, Double)](repeating: (0, 0), count: n)
    for q in 0..<n {
        var re = 0.0, im = 0.0
        for p in 0..<n {
            var ph = 0.0
            for a in 0..<r { ph += Double(indices[q][a] * indices[p][a]) / Double(sh[a]) }
            ph *= sign * 2 * .pi
            let c = cos(ph), s = sin(ph)
            re += Double(e[p].re) * c - Double(e[p].im) * s
            im += Double(e[p].re) * s + Double(e[p].im) * c
        }
        out[q] = (re, im)
    }
    return out
}

final class FFTTests: XCTestCase {
    override func setUp() { FFTPlanner.defaultEffort = .estimate }

    func testForwardMatchesDirectDFTOnOddEvenAndPrimeShapes() throws {
        for shape in [[4, 6, 8], [5, 3, 7], [7, 11, 13], [2, 9, 10], [17], [6, 15]] {
            let v = randomComplex(shape, seed: UInt64(shape.reduce(0, +)))
            let f = try FFT.forward(v)
            let ref = directDFT(v)
            var err = 0.0, norm = 0.0
            for i in 0..<v.count {
                let g = f[flat: i]
                err += pow(Double(g.re) - ref[i].0, 2) + pow(Double(g.im) - ref[i].1, 2)
                norm += ref[i].0 * ref[i].0 + ref[i].1 * ref[i].1
            }
            XCTAssertLessThan((err / norm).squareRoot(), 1e-5, "shape \(shape)")
        }
    }

    func testInverseIsNormalisedAndRoundTrips() throws {
        for shape in [[8, 8, 8], [9, 10, 11], [13, 1, 4]] {
            let v = randomComplex(shape, seed: 7)
            let back = try FFT.inverse(FFT.forward(v))
            let d = try back - v
            XCTAssertLessThan((d.squaredNorm() / v.squaredNorm()).squareRoot(), 1e-6, "shape \(shape)")
            // The inverse agrees with a direct DFT of the opposite sign, divided by N.
            let inv = try FFT.inverse(v)
            let ref = directDFT(v, sign: +1)
            let n = Double(v.count)
            for i in stride(from: 0, to: v.count, by: 7) {
                XCTAssertEqual(Double(inv[flat: i].re), ref[i].0 / n, accuracy: 1e-5)
                XCTAssertEqual(Double(inv[flat: i].im), ref[i].1 / n, accuracy: 1e-5)
            }
        }
    }

    func testParseval() throws {
        let v = randomComplex([12, 10, 14], seed: 3)
        let f = try FFT.forward(v)
        // Σ|F|² = N Σ|ρ|²
        XCTAssertEqual(f.squaredNorm() / Double(v.count), v.squaredNorm(), accuracy: 1e-5 * v.squaredNorm())
    }

    func testMultiThreadedPlanAgreesWithSingleThreaded() throws {
        let v = randomComplex([32, 32, 32], seed: 11)
        var a = v, b = v
        try FFT.forward(&a, threads: 1)
        try FFT.forward(&b, threads: 2)
        let d = try a - b
        XCTAssertLessThan((d.squaredNorm() / a.squaredNorm()).squareRoot(), 1e-6)
    }

    func testPlanIsCachedAndReused() throws {
        let p1 = try FFTPlanner.plan(shape: [6, 6, 6], direction: .forward)
        let p2 = try FFTPlanner.plan(shape: [6, 6, 6], direction: .forward)
        XCTAssertTrue(p1 === p2)
        XCTAssertThrowsError(try FFTPlanner.plan(shape: [0, 4], direction: .forward))
    }

    func testOutOfPlacePlan() throws {
        let v = randomComplex([6, 10, 5], seed: 5)
        let p = try FFTPlanner.plan(shape: v.shape, direction: .forward, inPlace: false)
        var out = ComplexVolume(shape: v.shape)
        var src = v
        src.withUnsafeMutableFloats { s in out.withUnsafeMutableFloats { o in p.execute(s.baseAddress!, o.baseAddress!) } }
        let ref = try FFT.forward(v)
        let d = try out - ref
        XCTAssertLessThan(d.squaredNorm(), 1e-10 * ref.squaredNorm())
    }

    func testFastSizes() {
        XCTAssertEqual(FFT.nextFastSize(127), 128)
        XCTAssertEqual(FFT.nextFastSize(121), 125)
        XCTAssertEqual(FFT.nextFastSize(11), 12)
        XCTAssertEqual(FFT.nextFastSize(97), 98)       // 2·7²
        XCTAssertEqual(FFT.nextFastSize(97, primes: [2, 3, 5]), 100)
        XCTAssertEqual(FFT.previousFastSize(257, primes: [2, 3, 5]), 256)
        XCTAssertEqual(FFT.nearestFastSize(131), 128)
        XCTAssertTrue(FFT.isFastSize(2 * 3 * 5 * 7 * 64))
        XCTAssertFalse(FFT.isFastSize(11 * 2))
    }

    func testWisdomRoundTrip() throws {
        let path = NSTemporaryDirectory() + "bragg-wisdom-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try FFTPlanner.plan(shape: [10, 12], direction: .forward, effort: .measure)
        XCTAssertTrue(FFTPlanner.exportWisdom(to: path))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains("fftw"), "wisdom file holds FFTW wisdom")
        XCTAssertTrue(FFTPlanner.importWisdom(from: path))
        XCTAssertFalse(FFTPlanner.importWisdom(from: path + ".absent"))
    }
}

final class VolumeTests: XCTestCase {
    override func setUp() { FFTPlanner.defaultEffort = .estimate }

    func ramp(_ shape: [Int]) -> RealVolume { RealVolume(shape: shape) { Float($0) } }

    func testCOrderIndexing() throws {
        var v = ramp([2, 3, 4])
        XCTAssertEqual(v[1, 2, 3], 23)
        XCTAssertEqual(v[0, 1, 0], 4)
        XCTAssertEqual(v.strides, [12, 4, 1])
        v[1, 0, 0] = -1
        XCTAssertEqual(v[flat: 12], -1)
        XCTAssertThrowsError(try RealVolume(shape: [2, 2], elements: [1, 2, 3]))
    }

    func testCopyOnWrite() {
        let a = ramp([4, 4])
        var b = a
        b[0, 0] = 99
        XCTAssertEqual(a[0, 0], 0)
        XCTAssertEqual(b[0, 0], 99)
    }

    /// numpy.fft.fftshift moves index 0 to n//2; ifftshift undoes it (odd sizes differ).
    func testFFTShiftMatchesNumpyOnOddAndEven() throws {
        for n in [1, 2, 5, 6, 7] {
            let v = ramp([n])
            let s = v.fftshifted()
            let expected = (0..<n).map { Float((($0 - n / 2) % n + n) % n) }   // np.fft.fftshift(np.arange(n))
            XCTAssertEqual(s.elements, expected, "n=\(n)")
            XCTAssertEqual(s.ifftshifted().elements, v.elements, "n=\(n)")
        }
        // 3D: the zero-frequency element lands at (n/2, m/2, k/2).
        var v = RealVolume(shape: [5, 4, 7]); v[0, 0, 0] = 1
        XCTAssertEqual(v.fftshifted()[2, 2, 3], 1)
        // np.fft.fftshift(np.arange(7)) == [4 5 6 0 1 2 3]
        XCTAssertEqual(ramp([7]).fftshifted().elements, [4, 5, 6, 0, 1, 2, 3])
        XCTAssertEqual(ramp([7]).ifftshifted().elements, [3, 4, 5, 6, 0, 1, 2])
    }

    func testRollFlipCropPad() throws {
        let v = ramp([3, 4])
        XCTAssertEqual(try v.rolled(by: [1, -1]).elements, [9, 10, 11, 8, 1, 2, 3, 0, 5, 6, 7, 4])
        XCTAssertEqual(v.flipped(axes: [1]).elements, [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8])
        XCTAssertEqual(v.flipped().elements, v.elements.reversed())
        XCTAssertEqual(try v.cropped(start: [1, 1], size: [2, 2]).elements, [5, 6, 9, 10])
        let p = try v.padded(before: [1, 0], after: [0, 2])
        XCTAssertEqual(p.shape, [4, 6])
        XCTAssertEqual(p[1, 0], 0); XCTAssertEqual(p[2, 1], 5); XCTAssertEqual(p[0, 3], 0)
        // centred pad then central crop is the identity, on odd and even sizes
        for inner in [[3, 4, 5], [4, 4, 4]] {
            let c = ramp(inner)
            XCTAssertEqual(try c.centred(in: [8, 9, 10]).centralCrop(to: inner), c)
        }
        XCTAssertThrowsError(try v.cropped(start: [2, 0], size: [2, 2]))
        let s = try ramp([3, 4, 5]).centralSlice(axis: 0)
        XCTAssertEqual(s.shape, [4, 5]); XCTAssertEqual(s[0, 0], 20)
        XCTAssertEqual(try ramp([2, 3]).summed(axis: 0).elements, [3, 5, 7])
    }

    /// Reflection about the centre voxel and axis permutation, by index (numpy: the
    /// reflection is np.roll(np.flip(v, a), 1 - n % 2, a); the permutation np.transpose), and
    /// both carried by the centred DFT from an object to its transform, on even and odd sizes.
    func testCentreReflectionAndAxisPermutationCommuteWithTheCentredFFT() throws {
        XCTAssertEqual(ramp([4, 1, 1]).reflectedAboutCentre().elements, [0, 3, 2, 1])
        XCTAssertEqual(ramp([5, 1, 1]).reflectedAboutCentre().elements, [4, 3, 2, 1, 0])
        XCTAssertEqual(ramp([1, 2, 4]).reflectedAboutCentre(axes: [2]).elements, [0, 3, 2, 1, 4, 7, 6, 5])
        let r = ramp([2, 3, 4])
        let t = r.permutedAxes([2, 0, 1])
        XCTAssertEqual(t.shape, [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { XCTAssertEqual(t[k, i, j], r[i, j, k]) } } }
        XCTAssertEqual(t.permutedAxes([1, 2, 0]), r)
        var seed: UInt64 = 7
        func uniform() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) - 0.5
        }
        func transform(_ v: ComplexVolume) throws -> ComplexVolume { try FFT.forward(v.ifftshifted()).fftshifted() }
        func relativeDifference(_ a: ComplexVolume, _ b: ComplexVolume) throws -> Double {
            (try a - b).squaredNorm().squareRoot() / b.squaredNorm().squareRoot()
        }
        for shape in [[6, 6, 6], [5, 7, 4]] {
            let o = ComplexVolume(shape: shape) { _ in Complex32(uniform(), uniform()) }
            let f = try transform(o)
            for axes in [[0], [1, 2], [0, 1, 2]] {
                XCTAssertLessThan(try relativeDifference(try transform(o.reflectedAboutCentre(axes: axes)), f.reflectedAboutCentre(axes: axes)), 1e-5, "\(shape) \(axes)")
            }
            for p in [[0, 2, 1], [2, 0, 1], [1, 2, 0]] {
                XCTAssertLessThan(try relativeDifference(try transform(o.permutedAxes(p)), f.permutedAxes(p)), 1e-5, "\(shape) \(p)")
            }
            // the twin conj ρ(−r) has the conjugate transform, so the same intensity
            XCTAssertLessThan(try relativeDifference(try transform(o.reflectedAboutCentre().conjugated()), f.conjugated()), 1e-5)
        }
    }

    func testComplexComponents() throws {
        let a = RealVolume(shape: [3]) { Float($0 + 1) }
        let f = RealVolume(shape: [3]) { Float($0) * 0.5 }
        let c = try ComplexVolume(modulus: a, phase: f)
        for i in 0..<3 {
            XCTAssertEqual(c.modulus()[flat: i], a[flat: i], accuracy: 1e-6)
            XCTAssertEqual(c.phase()[flat: i], f[flat: i], accuracy: 1e-6)
            XCTAssertEqual(c.intensity()[flat: i], a[flat: i] * a[flat: i], accuracy: 1e-5)
        }
        XCTAssertEqual(c.conjugated().phase()[flat: 2], -1, accuracy: 1e-6)
        var r = c; r.rotatePhase(by: 0.25)
        XCTAssertEqual(r.phase()[flat: 1], 0.75, accuracy: 1e-6)
        XCTAssertThrowsError(try ComplexVolume(modulus: a, phase: RealVolume(shape: [4])))
    }

    func testReductionsInDouble() {
        // 2^24 + 1 is not a Float: a Float accumulator would lose the ones.
        let v = RealVolume(shape: [1 << 20], repeating: 16)
        XCTAssertEqual(v.sum(), 16.0 * Double(1 << 20))
        XCTAssertEqual(v.mean(), 16)
        var w = RealVolume(shape: [4, 5, 6]); w[1, 2, 3] = 2; w[3, 2, 3] = 2
        XCTAssertEqual(w.centreOfMass(), [2, 2, 3])
        XCTAssertEqual(w.maximum(), 2); XCTAssertEqual(w.minimum(), 0)
        XCTAssertEqual(w.index(ofFlat: w.argmax()), [1, 2, 3])
        w[0, 0, 0] = .nan
        XCTAssertEqual(w.nonFiniteCounts().nan, 1)
    }

    func testParallelSumIsDeterministic() {
        let v = RealVolume(shape: [1_000_003]) { Float(($0 % 97)) * 0.001 }
        let s1 = v.sum()
        Parallel.threads = 1
        let s2 = v.sum()
        Parallel.threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        XCTAssertEqual(s1, s2, accuracy: 1e-6 * s1)
    }
}

final class FilterTests: XCTestCase {
    override func setUp() { FFTPlanner.defaultEffort = .estimate }

    func testGaussianPreservesSumAndMatchesVariance() throws {
        var v = RealVolume(shape: [33, 33, 33]); v[16, 16, 16] = 1
        for method in [GaussianMethod.separable, .fourier] {
            let g = try v.gaussianFiltered(sigma: 2.0, method: method)
            XCTAssertEqual(g.sum(), 1, accuracy: 1e-4, "\(method)")
            // second moment along x equals σ²
            var m2 = 0.0
            for x in 0..<33 { m2 += Double(g[16, 16, x]) * Double((x - 16) * (x - 16)) }
            let line = (0..<33).reduce(0.0) { $0 + Double(g[16, 16, $1]) }
            XCTAssertEqual(m2 / line, 4.0, accuracy: 0.05, "\(method)")
        }
        let a = try v.gaussianFiltered(sigma: 1.5, method: .separable)
        let b = try v.gaussianFiltered(sigma: 1.5, method: .fourier)
        let d = try a - b
        XCTAssertLessThan(d.squaredNorm().squareRoot() / a.squaredNorm().squareRoot(), 1e-3)
    }

    func testIntegerFourierShiftEqualsRoll() throws {
        let v = randomComplex([8, 9, 10], seed: 21)
        let s = try v.fourierShifted(by: [2, -3, 4])
        let r = try v.rolled(by: [2, -3, 4])
        let d = try s - r
        XCTAssertLessThan(d.squaredNorm() / r.squaredNorm(), 1e-10)
    }

    func testSubVoxelShiftOfGaussianMovesItsCentre() throws {
        let g = RealVolume(shape: [32, 32, 32]) { i in
            let z = Double(i / 1024) - 15, y = Double(i / 32 % 32) - 16, x = Double(i % 32) - 14
            return Float(exp(-(x * x + y * y + z * z) / 8))
        }
        let s = try g.fourierShifted(by: [0.3, -0.7, 1.25])
        let c0 = g.centreOfMass(), c1 = s.centreOfMass()
        XCTAssertEqual(c1[0] - c0[0], 0.3, accuracy: 1e-3)
        XCTAssertEqual(c1[1] - c0[1], -0.7, accuracy: 1e-3)
        XCTAssertEqual(c1[2] - c0[2], 1.25, accuracy: 1e-3)
    }

    func testConvolutionAndCorrelationAgainstDirectSums() throws {
        let a = randomComplex([5, 6], seed: 1), b = randomComplex([5, 6], seed: 2)
        let conv = try a.convolved(with: b), corr = try a.correlated(with: b)
        for (z, y) in [(0, 0), (2, 3), (4, 5)] {
            var cv = Complex32(0, 0), cr = Complex32(0, 0)
            for p in 0..<5 { for q in 0..<6 {
                cv = cv + a[p, q] * b[((z - p) % 5 + 5) % 5, ((y - q) % 6 + 6) % 6]
                cr = cr + a[p, q].conjugate * b[(p + z) % 5, (q + y) % 6]
            } }
            XCTAssertEqual(conv[z, y].re, cv.re, accuracy: 1e-4); XCTAssertEqual(conv[z, y].im, cv.im, accuracy: 1e-4)
            XCTAssertEqual(corr[z, y].re, cr.re, accuracy: 1e-4); XCTAssertEqual(corr[z, y].im, cr.im, accuracy: 1e-4)
        }
    }

    func testRegistrationFindsSubVoxelShift() throws {
        let g = RealVolume(shape: [32, 32, 32]) { i in
            let z = Double(i / 1024) - 16, y = Double(i / 32 % 32) - 16, x = Double(i % 32) - 16
            return Float(exp(-(x * x / 12 + y * y / 6 + z * z / 9)))
        }.complex()
        let truth = [2.3, -1.6, 0.4]
        let moved = try g.fourierShifted(by: truth)
        let (s, corr) = try Registration.shift(of: g, onto: moved)
        for a in 0..<3 { XCTAssertEqual(s[a], truth[a], accuracy: 0.1, "axis \(a)") }
        XCTAssertGreaterThan(corr, 0.95)
    }
}
