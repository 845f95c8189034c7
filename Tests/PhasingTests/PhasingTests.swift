import XCTest
import Numerics
@testable import Phasing

final class RecipeTests: XCTestCase {
    func testParsesStepsAndOptions() throws {
        let r = try Recipe.parse("HIO:400 beta=0.7 sw=25, raar:300 threshold=0.15 ref=RMS ; ER:100 sw=0")
        XCTAssertEqual(r.steps.count, 3)
        XCTAssertEqual(r.steps[0], RecipeStep(.hio, iterations: 400, beta: 0.7, shrinkWrapEvery: 25, threshold: 0.2))
        XCTAssertEqual(r.steps[1].algorithm, .raar)
        XCTAssertEqual(r.steps[1].threshold, 0.15)
        XCTAssertEqual(r.steps[1].reference, .rms)
        XCTAssertNil(r.steps[0].reference)
        XCTAssertEqual(r.steps[2].shrinkWrapEvery, 0)
        XCTAssertEqual(r.totalIterations, 800)
        // The description parses back to the same recipe.
        XCTAssertEqual(try Recipe.parse(r.description), r)
        XCTAssertEqual(Recipe.standard.totalIterations, 1000)
        XCTAssertEqual(try Recipe.parse(Recipe.standard.description), Recipe.standard)
        XCTAssertTrue(Recipe.standard.steps.allSatisfy { $0.reference == .rms })
        // named recipes: the default, and a quarter of it for a start near the answer
        XCTAssertEqual(try Recipe.parse(" Default"), Recipe.standard)
        let short = try Recipe.parse("short")
        XCTAssertEqual(short.steps.map(\.algorithm), [.hio, .raar, .er])
        XCTAssertEqual(short.totalIterations, 200)
        XCTAssertTrue(short.steps.allSatisfy { $0.reference == .rms && $0.shrinkWrapEvery == 20 })
    }

    func testHelpfulErrors() {
        func message(_ s: String) -> String {
            do { _ = try Recipe.parse(s); return "" } catch { return String(describing: error) }
        }
        XCTAssertTrue(message("HOI:100").contains("did you mean 'HIO'"), message("HOI:100"))
        XCTAssertTrue(message("HIO:100, RAR:10").contains("did you mean 'RAAR'"))
        XCTAssertTrue(message("HIO:100 bta=0.9").contains("did you mean 'beta'"))
        XCTAssertTrue(message("HIO:0").contains("must be positive"))
        XCTAssertTrue(message("HIO:-5").contains("must be positive"))
        XCTAssertTrue(message("HIO").contains("needs an iteration count"))
        XCTAssertTrue(message("HIO:10 beta=1.5").contains("(0, 1]"))
        XCTAssertTrue(message("HIO:10 ref=mean").contains("max or rms"))
        XCTAssertTrue(message("").contains("empty"))
        XCTAssertTrue(message("HIO:10,,ER:5").contains("step 2 is empty"))
    }
}

final class ProjectionTests: XCTestCase {
    /// A 2×2 pattern worked by hand: ρ = [[1, 0.5], [0, 0]] has F = [[1.5, 0.5], [1.5, 0.5]];
    /// the measured amplitudes [[2, 1], [2, 1]] (same phases) give ρ' = [[1.5, 0.5], [0, 0]].
    /// With S = {(0,0)}: ER → [[1.5, 0], [0, 0]], HIO(0.9) → [[1.5, 0.05], [0, 0]],
    /// RAAR(0.8) → [[1.5, 0.1], [0, 0]] (outside 0.8·0.5 − 0.6·0.5).
    /// Masking pixel (1,1) keeps the model's F = 0.5 there: ρ' = [[1.375, 0.625], [0.125, −0.125]]
    /// and HIO(0.9) → [[1.375, −0.0625], [−0.1125, 0.1125]].
    func testHandComputedExample() throws {
        // Unshifted amplitudes [[2,1],[2,1]]; the data on disk are fftshifted: [[I11, I10], [I01, I00]].
        let centred = try RealVolume(shape: [2, 2], elements: [1, 4, 1, 4])
        let rho0: [Float] = [1, 0, 0.5, 0, 0, 0, 0, 0]   // (re, im) pairs in C order
        let supportCentred = try RealVolume(shape: [2, 2], elements: [0, 0, 0, 1])  // (0,0) unshifted is (1,1) centred
        func step(_ alg: PhasingAlgorithm, beta: Double, mask: RealVolume? = nil) throws -> [Float] {
            let data = try PhasingData(intensity: centred, mask: mask)
            let e = try PhasingEngine(data: data, support: supportCentred, threads: 1)
            rho0.withUnsafeBufferPointer { e.start(from: $0.baseAddress!) }
            e.iterate(alg, beta: beta)
            return Array(UnsafeBufferPointer(start: e.rho.pointer, count: 8))
        }
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-6, "\(what) element \(i): \(a) vs \(b)") }
        }
        close(try step(.er, beta: 0.9), [1.5, 0, 0, 0, 0, 0, 0, 0], "ER")
        close(try step(.hio, beta: 0.9), [1.5, 0, 0.05, 0, 0, 0, 0, 0], "HIO")
        close(try step(.raar, beta: 0.8), [1.5, 0, 0.1, 0, 0, 0, 0, 0], "RAAR")
        // Mask the unshifted pixel (1,1) = centred (0,0).
        let mask = try RealVolume(shape: [2, 2], elements: [1, 0, 0, 0])
        close(try step(.hio, beta: 0.9, mask: mask), [1.375, 0, -0.0625, 0, -0.1125, 0, 0.1125, 0], "HIO masked")
    }

    /// P_M P_M = P_M (with masked pixels left free) and P_S P_S = P_S, on random data.
    func testProjectionsAreIdempotent() throws {
        let sh = [8, 6, 10], n = 480
        var rng = PhasingRNG(seed: 3)
        let rho = ComplexVolume(shape: sh) { _ in Complex32(Float(rng.gaussian()), Float(rng.gaussian())) }
        let amp = (0..<n).map { i -> Float in i % 7 == 0 ? -.infinity : Float(rng.uniform() * 3) }
        let fwd = try FFTPlanner.plan(shape: sh, direction: .forward, threads: 1)
        let bwd = try FFTPlanner.plan(shape: sh, direction: .backward, threads: 1)
        func pm(_ v: ComplexVolume) -> ComplexVolume {
            var w = v
            w.withUnsafeMutableFloats { p in
                fwd.execute(p.baseAddress!, p.baseAddress!)
                amp.withUnsafeBufferPointer { a in
                    PhasingKernels.projectModulus(p.baseAddress!, amp: a.baseAddress!, range: 0..<n, scale: 1 / Float(n))
                }
                bwd.execute(p.baseAddress!, p.baseAddress!)
            }
            return w
        }
        let once = pm(rho), twice = pm(once)
        XCTAssertLessThan(try (twice - once).squaredNorm() / once.squaredNorm(), 1e-10)
        XCTAssertGreaterThan(try (once - rho).squaredNorm() / rho.squaredNorm(), 0.1)  // it did something
        // Its modulus equals the measured one where measured, the model's where masked.
        var f1 = once; try FFT.forward(&f1)
        var f0 = rho; try FFT.forward(&f0)
        for i in 0..<n {
            let expected = amp[i] >= 0 ? amp[i] : f0[flat: i].modulus
            XCTAssertEqual(f1[flat: i].modulus, expected, accuracy: 1e-4 * max(1, expected))
        }
        // P_S through the ER update with ρ' = ρ.
        let support = (0..<n).map { _ in UInt8(rng.uniform() < 0.3 ? 1 : 0) }
        func ps(_ v: ComplexVolume) -> ComplexVolume {
            var r = v, w = v
            r.withUnsafeMutableFloats { rp in w.withUnsafeMutableFloats { wp in support.withUnsafeBufferPointer { s in
                PhasingKernels.updateSupport(rho: rp.baseAddress!, work: wp.baseAddress!, support: s.baseAddress!,
                                             range: 0..<n, a: 0, b: 0)
            } } }
            return r
        }
        let s1 = ps(rho), s2 = ps(s1)
        XCTAssertEqual(s1, s2)
        for i in 0..<n where support[i] == 0 { XCTAssertEqual(s1[flat: i], Complex32(0, 0)) }
        for i in 0..<n where support[i] != 0 { XCTAssertEqual(s1[flat: i], rho[flat: i]) }
    }

    /// The blocked iteration (plane and column transforms, passes in cache) gives the same
    /// iterates and χ² as the one with 3D transforms, for every algorithm, with masked and
    /// withheld pixels, on one and two threads, and across a shrink-wrap.
    func testBlockedIterationMatchesThe3DOne() throws {
        let sh = [8, 6, 16], n = 8 * 6 * 16
        var rng = PhasingRNG(seed: 5)
        let intensity = RealVolume(shape: sh) { _ in Float(rng.uniform() * 100) }
        var mask = RealVolume(shape: sh)
        mask.withUnsafeMutableFloats { p in for i in 0..<n where i % 11 == 0 { p[i] = 1 } }
        let data = try PhasingData(intensity: intensity, mask: mask)
        let support = FloatStorage(count: n)
        for i in 0..<n { support.pointer[i] = rng.uniform() < 0.25 ? 1 : 0 }
        for threads in [1, 2] {
            let e3 = try PhasingEngine(data: data, supportFFTOrder: support, threads: threads, blocked: false)
            let eb = try PhasingEngine(data: data, supportFFTOrder: support, threads: threads, blocked: true)
            XCTAssertNil(e3.planeForward); XCTAssertNotNil(eb.planeForward)
            // Withheld (free) pixels are free in both, including the blocked pass's slab-order
            // copy of the amplitudes.
            var f1 = PhasingRNG(seed: 3), f2 = PhasingRNG(seed: 3)
            e3.withholdFreePixels(fraction: 0.1, rng: &f1); eb.withholdFreePixels(fraction: 0.1, rng: &f2)
            XCTAssertGreaterThan(eb.freeIndex.count, n / 20)
            var r1 = PhasingRNG(seed: 9), r2 = PhasingRNG(seed: 9)
            e3.randomStart(rng: &r1); eb.randomStart(rng: &r2)
            for (k, alg) in [PhasingAlgorithm.hio, .hio, .raar, .er, .hio].enumerated() {
                let c3 = e3.iterate(alg, beta: 0.9, computeError: k % 2 == 1)
                let cb = eb.iterate(alg, beta: 0.9, computeError: k % 2 == 1)
                if let c3, let cb { XCTAssertEqual(c3, cb, accuracy: 1e-5) } else { XCTAssertTrue(c3 == nil && cb == nil) }
                if k == 2 { e3.shrinkWrap(sigma: 1, threshold: 0.2); eb.shrinkWrap(sigma: 1, threshold: 0.2) }
            }
            var diff = 0.0, norm = 0.0
            for i in 0..<(2 * n) {
                let d = Double(e3.rho.pointer[i] - eb.rho.pointer[i]); diff += d * d
                norm += Double(e3.rho.pointer[i] * e3.rho.pointer[i])
            }
            XCTAssertLessThan(diff / norm, 1e-10, "threads \(threads)")
            XCTAssertEqual(e3.finalMetrics().chi2, eb.finalMetrics().chi2, accuracy: 1e-6)
        }
    }

    /// χ² of Eq. (1) from the fused pass equals the direct formula with the model scaled.
    func testChi2MatchesDirectFormula() throws {
        let sh = [6, 8, 4], n = 192
        var rng = PhasingRNG(seed: 11)
        let f = (0..<2 * n).map { _ in Float(rng.gaussian()) }
        let amp = (0..<n).map { i -> Float in i % 5 == 0 ? -.infinity : Float(rng.uniform() * 2) }
        var w = f
        let s = w.withUnsafeMutableBufferPointer { p in amp.withUnsafeBufferPointer { a in
            PhasingKernels.projectModulusWithSums(p.baseAddress!, amp: a.baseAddress!, range: 0..<n, scale: 1)
        } }
        let chi2 = PhasingEngine.chi2(aF: s.aF, ff: s.ff, aa: s.aa)
        var sd = 0.0, sr = 0.0
        for i in 0..<n where amp[i] >= 0 { sd += Double(amp[i] * amp[i]); sr += Double(f[2 * i] * f[2 * i] + f[2 * i + 1] * f[2 * i + 1]) }
        let k = sd / sr
        var num = 0.0
        for i in 0..<n where amp[i] >= 0 {
            let r = k * Double(f[2 * i] * f[2 * i] + f[2 * i + 1] * f[2 * i + 1])
            num += pow(Double(amp[i]) - r.squareRoot(), 2)
        }
        XCTAssertEqual(chi2, num / (k * sr), accuracy: 1e-5)
        _ = sh
    }
}

final class PostProcessingTests: XCTestCase {
    func testTwinSharesFourierModulusAndIsAnInvolution() throws {
        for n in [8, 9] {
            var rng = PhasingRNG(seed: UInt64(n))
            let v = ComplexVolume(shape: [n, n - 1, n + 2]) { _ in Complex32(Float(rng.gaussian()), Float(rng.gaussian())) }
            let t = v.twin()
            XCTAssertEqual(t.twin(), v)
            var fv = v, ft = t
            try FFT.forward(&fv); try FFT.forward(&ft)
            let d = try (fv.modulus() - ft.modulus()).squaredNorm() / fv.modulus().squaredNorm()
            XCTAssertLessThan(d, 1e-10, "size \(n)")
        }
    }

    func testRampIsFoundAndRemoved() throws {
        let n = 32
        let g = [0.031, -0.047, 0.0125]
        let blob = ComplexVolume(shape: [n, n, n]) { f in
            let z = Double(f / (n * n) - 16), y = Double((f / n) % n - 16), x = Double(f % n - 16)
            let a = exp(-(z * z + y * y + x * x) / 18)
            let phi = 2 * Double.pi * (g[0] * z + g[1] * y + g[2] * x)
            return Complex32(Float(a * cos(phi)), Float(a * sin(phi)))
        }
        let ramp = blob.braggPeakRamp()
        for a in 0..<3 { XCTAssertEqual(ramp.cyclesPerVoxel[a], g[a], accuracy: 2e-3) }
        let flat = blob.removingPhaseRamp(ramp)
        let ph = flat.phase()
        XCTAssertLessThan(abs(ph[16, 16, 22] - ph[16, 16, 16]) + abs(ph[20, 12, 16] - ph[16, 16, 16]), 0.05)
    }

    /// A sharp-edged crystal has a broad spectrum: its tails wrap past ±1/2 and the
    /// arithmetic centroid of |F|² read 0.12 as 0.113 and −0.3 as −0.279 here, and a
    /// ramp-free box as −0.0012…−0.0017 (the Nyquist bin). The circular centre of mass is exact.
    func testRampOfSharpCrystalIsExact() throws {
        let n = 32
        func box(_ g: [Double]) -> ComplexVolume {
            ComplexVolume(shape: [n, n, n]) { f in
                let z = Double(f / (n * n) - 16), y = Double((f / n) % n - 16), x = Double(f % n - 16)
                guard abs(z) < 6 && abs(y) < 5 && abs(x) < 7 else { return Complex32(0, 0) }
                let phi = 2 * Double.pi * (g[0] * z + g[1] * y + g[2] * x)
                return Complex32(Float(cos(phi)), Float(sin(phi)))
            }
        }
        for g in [[0.12, -0.3, 0.05], [0, 0, 0], [0.45, -0.5 + 1.0 / 64, 0.2]] {
            let v = box(g)
            let fitted = v.braggPeakRamp(), ramp = fitted.cyclesPerVoxel
            for a in 0..<3 { XCTAssertEqual(ramp[a], g[a], accuracy: 1e-6, "axis \(a) of ramp \(g)") }
            // The real-space sum is the circular first moment of |F|² (Wiener–Khinchin).
            var f = v
            try FFT.forward(&f)
            let i = f.intensity()
            for a in 0..<3 {
                var re = 0.0, im = 0.0
                for k in 0..<i.count {
                    let ka = (k / i.strides[a]) % n
                    re += Double(i[flat: k]) * cos(2 * Double.pi * Double(ka) / Double(n))
                    im += Double(i[flat: k]) * sin(2 * Double.pi * Double(ka) / Double(n))
                }
                XCTAssertEqual(atan2(im, re) / (2 * Double.pi), ramp[a], accuracy: 1e-6, "axis \(a), moment of |F|²")
            }
            // Removing it leaves a flat phase over the crystal.
            let ph = v.removingPhaseRamp(fitted).phase()
            XCTAssertLessThan(abs(ph[20, 19, 21] - ph[12, 13, 11]), 1e-4, "ramp \(g)")
        }
    }

    func testCentringUsesCircularCentre() throws {
        // A support wrapped around the box edge is centred correctly.
        var s = RealVolume(shape: [16, 16, 16])
        for z in [14, 15, 0, 1] { for y in 3..<7 { for x in 9..<12 { s[z, y, x] = 1 } } }
        let c = try PhasingPost.centred(object: s.complex(), support: s)
        let com = c.support.centreOfMass()
        XCTAssertEqual(com[0], 8, accuracy: 0.51); XCTAssertEqual(com[1], 8, accuracy: 0.51); XCTAssertEqual(com[2], 8, accuracy: 0.51)
    }
}

final class DataTests: XCTestCase {
    func testBadInputs() throws {
        let z = RealVolume(shape: [8, 8, 8])
        XCTAssertThrowsError(try PhasingData(intensity: z, name: "z.npy")) { e in
            XCTAssertTrue(String(describing: e).contains("all zero"), String(describing: e))
        }
        var v = RealVolume(shape: [8, 8, 8], repeating: 2)
        XCTAssertThrowsError(try PhasingData(intensity: v, mask: RealVolume(shape: [8, 8, 4]))) { e in
            XCTAssertTrue(String(describing: e).contains("mask has shape [8, 8, 4]"), String(describing: e))
        }
        v[1, 2, 3] = -5; v[0, 0, 0] = .nan; v[4, 4, 4] = -1
        var m = RealVolume(shape: [8, 8, 8]); m[2, 2, 2] = 1
        let d = try PhasingData(intensity: v, mask: m)
        XCTAssertEqual(d.negativeCount, 2); XCTAssertEqual(d.nonFiniteCount, 1); XCTAssertEqual(d.maskedCount, 4)
        XCTAssertEqual(d.warnings.count, 2)
        let a = d.centredAmplitude
        XCTAssertEqual(a[1, 2, 3], -.infinity); XCTAssertEqual(a[2, 2, 2], -.infinity); XCTAssertEqual(a[5, 5, 5], Float(2).squareRoot(), accuracy: 1e-6)
    }
}
