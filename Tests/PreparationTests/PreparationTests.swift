import XCTest
import Numerics
import Simulation
@testable import Preparation

/// Simulated rocking scans: a small faceted crystal with a smooth phase, its centred
/// diffraction intensity, drifted between scans by sub-pixel shifts, frames scaled by a
/// fluctuating flux (recorded as the monitor), Poisson noise, hot and dead pixels.
struct SimulatedScans {
    let shape: [Int]
    /// Expected counts per scan at unit flux, drift-free, peak at n/2.
    let expected: RealVolume
    let drifts: [[Double]]
    var scans: [Scan] = []
    var fluxes: [[Double]] = []
    let hot: [(Int, Int)]
    let dead: [(Int, Int)]

    /// Scans from elsewhere (the Simulation module's rocking scans), with their truth.
    init(shape: [Int], expected: RealVolume, drifts: [[Double]], scans: [Scan], fluxes: [[Double]]) {
        self.shape = shape; self.expected = expected; self.drifts = drifts
        self.scans = scans; self.fluxes = fluxes; hot = []; dead = []
    }

    init(shape: [Int] = [32, 48, 48], scans count: Int = 6, peakCounts: Double = 3000, seed: UInt64 = 7,
         drifts: [[Double]]? = nil, hot: [(Int, Int)] = [(10, 30), (40, 5), (26, 21)],
         dead: [(Int, Int)] = [(23, 25)]) {
        self.shape = shape
        self.hot = hot; self.dead = dead
        var rng = SimulationRNG(seed: seed)
        // Object: a sheared box (about a third of the field per axis) with a quadratic phase.
        var obj = ComplexVolume(shape: shape)
        let c = shape.map { Double($0) / 2 }
        for z in 0..<shape[0] { for y in 0..<shape[1] { for x in 0..<shape[2] {
            let dz = Double(z) - c[0], dy = Double(y) - c[1], dx = Double(x) - c[2]
            if abs(dz) < 0.16 * Double(shape[0]) && abs(dy + 0.3 * dz) < 0.16 * Double(shape[1]) && abs(dx - 0.2 * dy) < 0.14 * Double(shape[2]) {
                let ph = 0.02 * (dx * dx - dy * dz)
                obj[z, y, x] = Complex32(Float(cos(ph)), Float(sin(ph)))
            }
        } } }
        var f = try! FFT.forward(obj.ifftshifted())
        f = f.fftshifted()
        var e = f.intensity()
        e.scale(by: Float(peakCounts) / e.maximum())
        expected = e
        self.drifts = drifts ?? (0..<count).map { k in
            k == 0 ? [0, 0, 0] : [rng.uniform(-1.6, 1.6), rng.uniform(-2.5, 2.5), rng.uniform(-2.5, 2.5)]
        }
        for k in 0..<self.drifts.count {
            var shifted = try! e.fourierShifted(by: self.drifts[k])
            shifted.withUnsafeMutableFloats { p in for i in 0..<p.count where p[i] < 0 { p[i] = 0 } }
            let flux = (0..<shape[0]).map { _ in rng.uniform(0.7, 1.3) }
            let fp = shape[1] * shape[2]
            shifted.withUnsafeMutableFloats { p in
                for z in 0..<shape[0] { for i in 0..<fp { p[z * fp + i] *= Float(flux[z]) } }
            }
            var frames = shifted.poissonSampled(seed: seed &+ UInt64(k) &* 7919)
            frames.withUnsafeMutableFloats { p in
                for z in 0..<shape[0] {
                    for (y, x) in hot { p[z * fp + y * shape[2] + x] = 800 }
                    for (y, x) in dead { p[z * fp + y * shape[2] + x] = 0 }
                }
            }
            fluxes.append(flux)
            scans.append(Scan(frames: try! InMemoryFrameStack(frames, source: "scan\(k).h5"), monitor: flux))
        }
    }
}

final class PreparationTests: XCTestCase {
    /// χ² per pixel of a prepared pattern against the drift-free expectation, over good
    /// voxels expecting at least `minCounts`. The variance is the Poisson variance of each
    /// frame (monitor-normalised), carried through the sub-pixel Fourier shift the
    /// preparation applied: a shift is a circular convolution with weights w, so the
    /// variance is convolved with w² (it moves noise from bright voxels into dim ones).
    static func chiSquare(_ sim: SimulatedScans, _ prepared: PreparedPattern, minCounts: Double = 10) throws -> (chi2: Double, voxels: Int) {
        let shape = sim.shape, fp = shape[1] * shape[2]
        let mref = sim.fluxes[0].reduce(0, +) / Double(sim.fluxes[0].count)
        var variance = RealVolume(shape: shape)
        for (k, report) in prepared.scans.enumerated() where report.included {
            // Variance of the corrected scan, in the scan's own (drifted) frame.
            var v = try sim.expected.fourierShifted(by: sim.drifts[k])
            v.withUnsafeMutableFloats { p in
                for i in 0..<p.count { p[i] = max(0, p[i]) * Float(mref * mref / sim.fluxes[k][i / fp]) }
            }
            for a in 0..<3 {
                var delta = RealVolume(shape: [shape[a]]); delta[0] = 1
                let w = try delta.fourierShifted(by: [report.shift[a]]).elements.map { $0 * $0 }
                v = convolvedCircular(v, axis: a, kernel: w)
            }
            try variance.add(v)
        }
        let size = prepared.pattern.shape, start = prepared.cropStart
        let e = try sim.expected.cropped(start: start, size: size)
        let vv = try variance.cropped(start: start, size: size)
        var chi2 = 0.0, n = 0
        let included = Double(prepared.scans.filter { $0.included }.count)
        prepared.pattern.withUnsafeFloats { p in prepared.mask.withUnsafeFloats { m in
            e.withUnsafeFloats { ev in vv.withUnsafeFloats { va in
                for i in 0..<p.count where m[i] == 0 {
                    let expected = Double(ev[i]) * mref * included
                    guard expected >= minCounts else { continue }
                    let d = Double(p[i]) - expected
                    chi2 += d * d / Double(va[i]); n += 1
                }
            } }
        } }
        return (chi2 / Double(max(n, 1)), n)
    }

    /// out[i] = Σ_d kernel[d] v[i + d] along one axis, circular (kernel index d mod n).
    static func convolvedCircular(_ v: RealVolume, axis: Int, kernel: [Float]) -> RealVolume {
        let sh = v.shape, st = v.strides, n = sh[axis]
        var out = RealVolume(shape: sh)
        v.withUnsafeFloats { src in out.withUnsafeMutableFloats { dst in
            for i in 0..<src.count {
                let c = (i / st[axis]) % n
                let base = i - c * st[axis]
                var s: Float = 0
                for d in 0..<n where kernel[d] > 1e-7 {
                    // a shift by s puts input j into output j + s: out[i] gathers in[i − d]
                    s += kernel[d] * src[base + ((c - d + n) % n) * st[axis]]
                }
                dst[i] = s
            }
        } }
        return out
    }

    func testUpsampledRegistrationRecoversSubpixelShift() throws {
        let sim = SimulatedScans(scans: 1)
        let ref = sim.expected
        for s in [[0.3, -1.27, 2.45], [-0.8, 0.05, -3.6]] {
            let moved = try ref.fourierShifted(by: s.map { -$0 })
            let r = try Registration.shift(of: moved, onto: ref, method: .upsampledDFT(factor: 50))
            for a in 0..<3 { XCTAssertEqual(r.shift[a], s[a], accuracy: 0.02, "axis \(a) of \(s)") }
            XCTAssertGreaterThan(r.correlation, 0.99)
            // The coarse parabolic estimate is the baseline this improves on.
            let coarse = try Registration.shift(of: moved, onto: ref)
            let errFine = zip(r.shift, s).map { abs($0 - $1) }.max()!
            let errCoarse = zip(coarse.shift, s).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(errFine, errCoarse + 1e-9)
        }
    }

    func testTwoStepBoxRegistrationMatchesSingleGridUpsampledDFT() throws {
        let sim = SimulatedScans(scans: 1)
        let ref = sim.expected
        for (k, s) in [[0.3, -1.27, 2.45], [-0.8, 0.05, -3.6], [0.49, -0.51, 0.02]].enumerated() {
            let moved = try ref.fourierShifted(by: s.map { -$0 }).poissonSampled(seed: UInt64(11 + k))
            // No upsampling: the integer peak of the correlation.
            let whole = try Registration.shift(of: moved, onto: ref, method: .twoStepUpsampledDFT(factor: 1))
            for ax in 0..<3 { XCTAssertEqual(whole.shift[ax], s[ax].rounded(), "axis \(ax) of \(s)") }
            for u in [4, 5, 20, 50] {
                let a = try Registration.shift(of: moved, onto: ref, method: .twoStepUpsampledDFT(factor: u))
                let b = try Registration.shift(of: moved, onto: ref, method: .upsampledDFT(factor: u))
                // Where u is a multiple of 4 the second grid is part of the single 1/u grid.
                let tolerance = u % 4 == 0 ? 1e-3 : 1 / Double(u)
                for ax in 0..<3 {
                    XCTAssertEqual(a.shift[ax], b.shift[ax], accuracy: tolerance, "u \(u) axis \(ax) of \(s)")
                    if u >= 20 { XCTAssertEqual(a.shift[ax], s[ax], accuracy: 0.05, "u \(u) axis \(ax) of \(s)") }
                }
                XCTAssertEqual(a.correlation, b.correlation, accuracy: u % 4 == 0 ? 1e-4 : 5e-3)
            }
        }
        // A single frame: nothing to search along axis 0.
        let flat = try ref.cropped(start: [ref.shape[0] / 2, 0, 0], size: [1, ref.shape[1], ref.shape[2]])
        let r = try BoxRegistration.upsampledShift(of: try flat.fourierShifted(by: [0, -0.4, 1.3]), onto: flat, upsampling: 20)
        XCTAssertEqual(r.shift[0], 0)
        XCTAssertEqual(r.shift[1], 0.4, accuracy: 0.03)
        XCTAssertEqual(r.shift[2], -1.3, accuracy: 0.03)
    }

    func testPreparedPatternMatchesDriftFreeSumWithinPoissonNoise() throws {
        let sim = SimulatedScans(scans: 12)
        let prepared = try Preparation.prepare(scans: sim.scans)
        // Shifts recovered (the scan is moved by −drift onto the first).
        for (k, r) in prepared.scans.enumerated() {
            XCTAssertTrue(r.included)
            for a in 0..<3 { XCTAssertEqual(r.shift[a], -sim.drifts[k][a], accuracy: 0.08, "scan \(k) axis \(a)") }
            XCTAssertGreaterThan(r.correlation, 0.9)
        }
        // χ² against the drift-free expectation, with the Poisson variance carried through
        // the shifts (see chiSquare).
        let size = prepared.pattern.shape
        let start = prepared.cropStart
        XCTAssertTrue((0..<3).allSatisfy { start[$0] >= 0 && start[$0] + size[$0] <= sim.shape[$0] })
        let (chi2, n) = try PreparationTests.chiSquare(sim, prepared)
        XCTAssertGreaterThan(n, 1000)
        XCTAssertEqual(chi2, 1, accuracy: 0.12, "χ² per pixel over \(n) pixels")
        let e = try sim.expected.cropped(start: start, size: size)
        // Hot and dead pixels masked, at the first scan's (aligned) positions, in every frame.
        for (y, x) in sim.hot + sim.dead {
            let yy = y - start[1], xx = x - start[2]
            guard yy >= 0 && yy < size[1] && xx >= 0 && xx < size[2] else { continue }
            for z in 0..<size[0] { XCTAssertEqual(prepared.mask[z, yy, xx], 1, "pixel \(y),\(x) frame \(z)") }
        }
        // Masked: the bad pixels at each scan's shifted position and the slabs that wrapped
        // round in the shifts (up to ⌈drift⌉ at each end of each axis).
        var wrap = [0, 0, 0]
        for d in sim.drifts { for a in 0..<3 { wrap[a] = max(wrap[a], Int(abs(d[a]).rounded(.up))) } }
        let kept = (0..<3).reduce(1.0) { $0 * Double(size[$1] - 2 * wrap[$1]) / Double(size[$1]) }
        // Each scan masks its ≤ 8 bad pixels at up to 4 neighbouring aligned positions.
        let perScan = Double(8 * 4 * sim.scans.count) / Double(size[1] * size[2])
        XCTAssertLessThan(prepared.mask.sum() / Double(prepared.mask.count), 1 - kept + perScan)
        // The true Bragg peak (centre of mass of the drift-free intensity) lies within half a
        // pixel of the centre of the output, and where the preparation says it is.
        let truePeak = Preparation.peakPosition(e, method: .centreOfMass, box: 64)
        for a in 0..<3 {
            XCTAssertEqual(truePeak[a], Double(size[a] / 2), accuracy: 0.5, "axis \(a)")
            XCTAssertEqual(truePeak[a], prepared.peakInPattern[a], accuracy: 0.1, "axis \(a)")
        }
        // Sizes are fast for the FFT.
        for s in size { XCTAssertTrue(FFT.isFastSize(s, primes: [2, 3, 5])) }
    }

    /// The forward FFT of each shifted scan in frame and column passes (shared with the
    /// reading thread) gives the sum that one 3D plan gives.
    func testSplitScanTransformMatchesWholeScanPlan() throws {
        let sim = SimulatedScans(scans: 4)
        let split = try Preparation.prepare(scans: sim.scans)
        var options = PreparationOptions()
        options.scanTransform = .wholeScan
        let whole = try Preparation.prepare(scans: sim.scans, options: options)
        XCTAssertEqual(split.pattern.shape, whole.pattern.shape)
        XCTAssertEqual(split.mask, whole.mask)
        XCTAssertTrue(split.scans.dropFirst().allSatisfy { r in r.shift.contains { abs($0) > 0.05 } }, "scans are shifted")
        var diff = 0.0, norm = 0.0
        split.pattern.withUnsafeFloats { a in whole.pattern.withUnsafeFloats { b in
            for i in 0..<a.count { diff += Double(a[i] - b[i]) * Double(a[i] - b[i]); norm += Double(b[i]) * Double(b[i]) }
        } }
        XCTAssertGreaterThan(norm, 0)
        XCTAssertLessThan((diff / norm).squareRoot(), 1e-5)
    }

    /// The Simulation module's rocking scans (drift by a phase ramp on the object, beam
    /// fluctuating between scans and recorded as the monitor, Poisson noise, hot pixels and
    /// module gaps) prepare to the drift-free sum within Poisson noise.
    func testSimulationModuleRockingScans() throws {
        let shape = [32, 48, 48]
        let amp = Crystal.named(.hexagonalPrism, size: 15).amplitude(box: shape)
        let obj = try ComplexVolume(modulus: amp, phase: RealVolume(shape: shape) { i in
            Float(0.5 * sin(Double(i % 48) / 5))
        })
        var o = RockingScanOptions()
        o.scans = 8; o.drift = 0.8; o.fluctuation = 0.1; o.photons = 1e5; o.seed = 5
        o.defects = DetectorDefects(moduleSize: 20, gapWidth: 1, hotPixels: 3, hotValue: 1e6)
        let rs = try RockingScans.make(object: obj, geometry: .seedStudy, options: o)
        let reference = try Diffraction.intensity(of: obj, box: shape)
        var expected = reference
        expected.scale(by: Float(o.photons / Double(o.scans)) / reference.maximum())
        var scans: [Scan] = [], fluxes: [[Double]] = []
        for (k, r) in rs.enumerated() {
            let flux = [Double](repeating: r.intensityFactor, count: shape[0])
            scans.append(Scan(frames: try InMemoryFrameStack(r.frames, source: "sim\(k)"), monitor: flux))
            fluxes.append(flux)
        }
        let sim = SimulatedScans(shape: shape, expected: expected, drifts: rs.map { $0.drift }, scans: scans, fluxes: fluxes)
        let p = try Preparation.prepare(scans: scans)
        for (k, r) in p.scans.enumerated() {
            for a in 0..<3 {
                XCTAssertEqual(r.shift[a] - p.scans[0].shift[a], -(rs[k].drift[a] - rs[0].drift[a]), accuracy: 0.05, "scan \(k) axis \(a)")
            }
        }
        // The first scan drifted too: compare against the drift-free sum moved by its drift.
        let moved = SimulatedScans(shape: shape, expected: try expected.fourierShifted(by: rs[0].drift),
                                   drifts: rs.map { d in zip(d.drift, rs[0].drift).map { $0 - $1 } }, scans: scans, fluxes: fluxes)
        _ = sim
        let (chi2, n) = try PreparationTests.chiSquare(moved, p)
        XCTAssertGreaterThan(n, 300)
        XCTAssertEqual(chi2, 1, accuracy: 0.15, "χ² per pixel over \(n) pixels")
        // Hot pixels are masked at the first scan's position, in every frame.
        let (_, hot) = Diffraction.detectorMask(shape: shape, defects: o.defects, seed: o.seed)
        for (y, x) in hot {
            let yy = y - p.cropStart[1], xx = x - p.cropStart[2]
            guard yy >= 0 && yy < p.pattern.shape[1] && xx >= 0 && xx < p.pattern.shape[2] else { continue }
            XCTAssertEqual(p.mask[p.pattern.shape[0] / 2, yy, xx], 1)
        }
    }

    func testBadPixelDetectionFindsHotAndDeadOnly() throws {
        let sim = SimulatedScans(scans: 1)
        let acc = try ScanAccumulator(stackShape: sim.shape)
        let r = try acc.add(sim.scans[0], index: 0)
        XCTAssertEqual(r.hotPixels, sim.hot.count)
        // The dead pixel, and perhaps a few pixels on the exact zero lines of this ideal
        // faceted crystal's pattern (indistinguishable from dead ones in one scan).
        XCTAssertGreaterThanOrEqual(r.deadPixels, sim.dead.count)
        XCTAssertLessThanOrEqual(r.deadPixels, sim.dead.count + 4)
        XCTAssertEqual(r.otherBadPixels, 0)
        let p = try acc.finish()
        for (y, x) in sim.hot + sim.dead {
            XCTAssertEqual(p.mask[0, y - p.cropStart[1], x - p.cropStart[2]], 1)
        }
        // Negative values (a Pilatus marks gaps with −1) and NaN mark their pixel bad.
        var frames = sim.expected
        frames[3, 5, 6] = -1
        frames[7, 9, 9] = .nan
        let acc2 = try ScanAccumulator(stackShape: sim.shape)
        let r2 = try acc2.add(Scan(frames: try InMemoryFrameStack(frames, source: "x")), index: 0)
        XCTAssertEqual(r2.otherBadPixels, 2)
    }

    func testUncorrelatedScanIsLeftOut() throws {
        var sim = SimulatedScans(scans: 3)
        // Scan 3: another reflection (noise only, no Bragg peak).
        let noise = RealVolume(shape: sim.shape, repeating: 2).poissonSampled(seed: 99)
        sim.scans[2] = Scan(frames: try InMemoryFrameStack(noise, source: "empty.h5"))
        var messages: [String] = []
        let p = try Preparation.prepare(scans: sim.scans, messages: { messages.append($0) })
        XCTAssertFalse(p.scans[2].included)
        XCTAssertTrue(p.scans[0].included && p.scans[1].included)
        XCTAssertEqual(messages.count, 1)
        XCTAssertTrue(messages[0].contains("scan 3") && messages[0].contains("empty.h5"), messages[0])
    }

    func testShapeMismatchAndEmptyScanNameTheScanAndFile() throws {
        let a = try InMemoryFrameStack(RealVolume(shape: [4, 8, 8], repeating: 1), source: "a.h5")
        let b = try InMemoryFrameStack(RealVolume(shape: [4, 8, 9], repeating: 1), source: "b.h5")
        let e = try InMemoryFrameStack(RealVolume(shape: [0, 8, 8]), source: "e.h5")
        XCTAssertThrowsError(try Preparation.prepare(scans: [Scan(frames: a), Scan(frames: b)])) { err in
            let s = String(describing: err)
            XCTAssertTrue(s.contains("scan 2") && s.contains("b.h5") && s.contains("a.h5") && s.contains("[4, 8, 9]"), s)
        }
        XCTAssertThrowsError(try Preparation.prepare(scans: [Scan(frames: a), Scan(frames: e)])) { err in
            let s = String(describing: err)
            XCTAssertTrue(s.contains("scan 2") && s.contains("e.h5") && s.contains("no frames"), s)
        }
        XCTAssertThrowsError(try Preparation.prepare(scans: [Scan(frames: a, monitor: [1, 2])])) { err in
            XCTAssertTrue(String(describing: err).contains("monitor has 2 values for 4 frames"), String(describing: err))
        }
    }

    func testDarkFlatAndMonitorCorrections() throws {
        // Constant frames: raw = flat·(signal·flux) + dark, with a peak so registration has content.
        let shape = [4, 6, 6]
        var signal = RealVolume(shape: shape, repeating: 50)
        signal[2, 3, 3] = 400
        var flat = RealVolume(shape: [6, 6], repeating: 1)
        flat[1, 1] = 0.5; flat[4, 2] = 2
        let dark = RealVolume(shape: [6, 6], repeating: 3)
        let flux = [1.0, 2.0, 0.5, 1.5]
        var raw = signal
        for z in 0..<4 { for y in 0..<6 { for x in 0..<6 {
            raw[z, y, x] = Float(Double(signal[z, y, x]) * flux[z]) * flat[y, x] + 3
        } } }
        var opt = PreparationOptions()
        opt.dark = dark; opt.flat = flat; opt.size = [4, 6, 6]
        opt.hotFactor = 1e9; opt.deadMinCounts = 1e9
        let p = try Preparation.prepare(scans: [Scan(frames: try InMemoryFrameStack(raw, source: "r.npy"), monitor: flux)],
                                        options: opt)
        let mref = flux.reduce(0, +) / 4
        // Output is centred on the peak at (2, 3, 3), which is the input's own centre.
        XCTAssertEqual(p.cropStart, [0, 0, 0])
        for z in 0..<4 { for y in 0..<6 { for x in 0..<6 {
            XCTAssertEqual(Double(p.pattern[z, y, x]), Double(signal[z, y, x]) * mref, accuracy: 1e-3 * Double(signal[z, y, x]) * mref)
        } } }
        XCTAssertEqual(p.mask.sum(), 0)
    }

    func testCropSizesBinningAndPadding() throws {
        XCTAssertEqual(Preparation.fittingSize(length: 160, peak: 80, bin: 1), 160)
        XCTAssertEqual(Preparation.fittingSize(length: 256, peak: 100, bin: 1), 200)  // 2·100, 200 = 2³·5²
        XCTAssertEqual(Preparation.fittingSize(length: 256, peak: 100, bin: 3), 192)  // 192/3 = 64
        XCTAssertEqual(Preparation.fittingSize(length: 256, peak: 77, bin: 1), 150)   // 154 = 2·7·11 is not 2,3,5
        // Binning sums and propagates the mask.
        let v = RealVolume(shape: [2, 4, 4]) { Float($0) }
        var m = RealVolume(shape: [2, 4, 4]); m[1, 3, 3] = 1
        let (b, bm) = try Preparation.binned(v, mask: m, by: [2, 2, 2])
        XCTAssertEqual(b.shape, [1, 2, 2])
        XCTAssertEqual(b[0, 0, 0], 0 + 1 + 4 + 5 + 16 + 17 + 20 + 21)
        XCTAssertEqual(bm.elements, [0, 0, 0, 1])
        XCTAssertEqual(v.sum(), b.sum(), accuracy: 1e-3)
        // A requested size larger than the data is padded with masked voxels.
        let sim = SimulatedScans(scans: 1)
        var opt = PreparationOptions(); opt.size = [40, 48, 64]; opt.binning = [2, 1, 2]
        let p = try Preparation.prepare(scans: sim.scans, options: opt)
        XCTAssertEqual(p.pattern.shape, [20, 48, 32])
        XCTAssertEqual(p.mask[0, 24, 16], 1)   // frames −4… of the crop lie outside the scan
        XCTAssertEqual(p.mask[10, 24, 0], 1)   // columns outside the detector
        XCTAssertEqual(p.mask[10, 24, 16], 0)
    }
}
