import Foundation
import Numerics

/// Accumulation, the third stage of a preparation: the running sum of the registered scans
/// (a real part for unshifted scans and a half spectrum for shifted ones, added by the
/// Fourier shift theorem), the mask of the sum, and at the end the pattern: centred on the
/// Bragg peak, cropped and binned. The mask is the union of every scan's bad pixels at their
/// shifted positions, plus the slabs that wrapped around in the shift.
///
/// Runs on the adding thread; its loops may be shared with the reading thread through the
/// runtime's `chunkLoop`.
final class ScanSum {
    let stackShape: [Int]
    let options: PreparationOptions
    let frames: Int, rows: Int, cols: Int, pix: Int
    let runtime: StageRuntime
    let realSum: FloatStorage
    var hasRealSum = false
    var spectrumSum: FloatStorage?
    /// The half spectrum of the scan being added (the forward FFT's output).
    var spectrumBuffer: FloatStorage?
    /// Bad detector pixels in the aligned frame (union over included scans).
    var alignedBad: [UInt8]
    /// Slabs at each axis' low and high end that received wrapped-around data.
    var wrapLow = [0, 0, 0], wrapHigh = [0, 0, 0]

    init(stackShape: [Int], options: PreparationOptions, runtime: StageRuntime) {
        self.stackShape = stackShape
        self.options = options
        self.runtime = runtime
        frames = stackShape[0]; rows = stackShape[1]; cols = stackShape[2]; pix = rows * cols
        realSum = FloatStorage(count: frames * pix)
        alignedBad = [UInt8](repeating: 0, count: pix)
    }

    var loopThreads: Int { runtime.loopThreads }
    @discardableResult
    func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T { try runtime.timed(stage, body) }
    func chunkLoop(_ count: Int, _ body: @escaping (Int) -> Void) { runtime.chunkLoop(count, body) }

    /// Adds a scan, moved by `shift` (frames, rows, columns), and marks its bad pixels
    /// (`badList`, detector positions) at their shifted positions.
    func add(_ scan: FloatStorage, shift: [Double], badList: [Int]) throws {
        if shift.allSatisfy({ abs($0) < 1e-9 }) {
            let s = SendablePointer(scan.pointer), d = SendablePointer(realSum.pointer)
            Parallel.forEachChunk(frames * pix, threads: loopThreads) { r in for i in r { d.pointer[i] += s.pointer[i] } }
            hasRealSum = true
        } else {
            try addShifted(scan, by: shift)
        }
        timed("mark bad") { markAlignedBad(badList, shift: shift) }
    }

    /// The summed pattern, centred on the Bragg peak, cropped and binned. `reports`: every
    /// scan's report (the included ones were added); `knownBad`: the hot pixels found by
    /// loading, masked at every included scan's shifted position; `buffer`: a scan buffer,
    /// free now, that takes the sum back in real space.
    func summed(reports: [ScanReport], knownBad: [UInt8], buffer scan: FloatStorage) throws -> SummedStack {
        guard reports.contains(where: { $0.included }) else {
            throw PreparationError.allLeftOut("no scan could be summed: every scan was left out (\(reports.count) scan(s) read)")
        }
        let known = (0..<pix).filter { knownBad[$0] != 0 }
        for r in reports where r.included { markAlignedBad(known, shift: r.shift) }
        let n = frames * pix
        // Every scan has been added: the scan buffers take the sum (no new 4-byte-per-voxel
        // array), and the half spectra go once the sum is back in real space.
        let out: FloatStorage
        if let spec = spectrumSum {
            out = scan
            let plan = try RealFFTPlan.plan(shape: stackShape, direction: .backward)
            timed("inverse FFT") { plan.execute(real: out.pointer, spectrum: spec.pointer) }
            spectrumSum = nil
            spectrumBuffer = nil
        } else {
            out = realSum
        }
        let inv: Float = out === realSum ? 0 : 1 / Float(n)
        let o = SendablePointer(out.pointer), rs = SendablePointer(realSum.pointer)
        // In the same pass, the brightest voxel (first of equal ones) for the centring.
        let chunks = max(1, min(Parallel.threads, n / 32_768))
        var tops = [(value: Float, index: Int)](repeating: (-.infinity, 0), count: chunks)
        tops.withUnsafeMutableBufferPointer { tp in
            let t = SendablePointer(tp.baseAddress!)
            let per = (n + chunks - 1) / chunks
            Parallel.forEach(chunks) { c in
                var m = -Float.infinity, k = 0
                for i in (c * per)..<min(n, (c + 1) * per) {
                    // Fourier ringing and noise can go below zero: counts cannot.
                    let v = o.pointer[i] * inv + rs.pointer[i]
                    let w = v > 0 ? v : 0
                    o.pointer[i] = w
                    if w > m { m = w; k = i }
                }
                t.pointer[c] = (m, k)
            }
        }
        var top = tops[0]
        for t in tops.dropFirst() where t.value > top.value { top = t }
        let sumVolume = try RealVolume(shape: stackShape, storage: out)
        // Centre on the Bragg peak (located with bad pixels filled, so that a masked voxel
        // near the peak cannot pull the centre of mass) and crop to a fast size (padding,
        // masked, where needed).
        let peak = Preparation.peakPosition(sumVolume, method: options.centring, box: options.registrationBox,
                                            brightest: sumVolume.index(ofFlat: top.index))
        return SummedStack(sum: sumVolume, peak: peak, reports: reports, alignedBad: alignedBad,
                           wrapLow: wrapLow, wrapHigh: wrapHigh, binning: options.binning)
    }

    /// Adds a scan, translated by `shift` (Fourier shift theorem), to the half-spectrum sum:
    /// sum += FFT(scan) · exp(−2πi q·s).
    ///
    /// The 3D real-to-complex FFT is done as its two passes, each a loop of independent
    /// chunks that the reading thread can join: 2D r2c FFTs of the frames into the
    /// half-spectrum buffer, then 1D FFTs along the frame axis in blocks of columns, each
    /// block phase-ramped and added to the sum while it is still in cache. (A frame shape
    /// whose planes would break FFTW's alignment falls back to one 3D plan.)
    func addShifted(_ scan: FloatStorage, by shift: [Double]) throws {
        if spectrumBuffer == nil { spectrumBuffer = FloatStorage(count: 2 * RealFFTPlan.halfShape(of: stackShape).reduce(1, *)) }
        let spec = spectrumBuffer!
        let half = RealFFTPlan.halfShape(of: stackShape)
        if spectrumSum == nil { spectrumSum = FloatStorage(count: 2 * half.reduce(1, *)) }
        let acc = spectrumSum!
        // exp(−2πi f s) per axis; the Nyquist bin of an even axis keeps its real part only.
        func factors(_ a: Int, _ len: Int) -> [Float] {
            let n = stackShape[a]
            var out = [Float](repeating: 0, count: 2 * len)
            for k in 0..<len {
                let q = 2 * Double.pi * FFT.frequency(k, n)
                if n % 2 == 0 && k == n / 2 {
                    out[2 * k] = Float(cos(q * shift[a])); out[2 * k + 1] = 0
                } else {
                    out[2 * k] = Float(cos(-q * shift[a])); out[2 * k + 1] = Float(sin(-q * shift[a]))
                }
            }
            return out
        }
        let g0 = factors(0, half[0]), g1 = factors(1, half[1]), g2 = factors(2, half[2])
        let hc = half[2], plane = rows * hc      // complex values per frame of the half spectrum
        // The in-frame factor of every column (row k1, column k2): g1[k1] · g2[k2].
        let inFrame = FloatStorage(count: 2 * plane)
        for k1 in 0..<rows {
            let br = g1[2 * k1], bi = g1[2 * k1 + 1]
            for k2 in 0..<hc {
                let cr = g2[2 * k2], ci = g2[2 * k2 + 1], c = 2 * (k1 * hc + k2)
                inFrame.pointer[c] = br * cr - bi * ci
                inFrame.pointer[c + 1] = br * ci + bi * cr
            }
        }
        let sp = SendablePointer(spec.pointer), ap = SendablePointer(acc.pointer)
        let hp = SendablePointer(inFrame.pointer), data = SendablePointer(scan.pointer)
        let frameCount = frames, pixels = pix
        // Ramp and add for `m` columns from column c0, frames 0..<frames.
        let rampAndAdd: @Sendable (Int, Int) -> Void = { c0, m in
            g0.withUnsafeBufferPointer { g in
                for k0 in 0..<frameCount {
                    let ar = g[2 * k0], ai = g[2 * k0 + 1]
                    let base = 2 * (k0 * plane + c0)
                    let s = sp.pointer + base, d = ap.pointer + base, h = hp.pointer + 2 * c0
                    for c in 0..<m {
                        let hr = h[2 * c], hi = h[2 * c + 1]
                        let fr = ar * hr - ai * hi, fi = ar * hi + ai * hr
                        let xr = s[2 * c], xi = s[2 * c + 1]
                        d[2 * c] += xr * fr - xi * fi
                        d[2 * c + 1] += xr * fi + xi * fr
                    }
                }
            }
        }
        // FFTW executes a plan on other arrays only at the alignment it was planned for:
        // frames and half-spectrum planes must start on 64-byte boundaries.
        guard options.scanTransform == .framesAndColumns && pix % 16 == 0 && plane % 8 == 0 else {
            let forward = try RealFFTPlan.plan(shape: stackShape, direction: .forward, threads: loopThreads)
            timed("forward FFT") { forward.execute(real: scan.pointer, spectrum: spec.pointer) }
            let block = 256
            timed("phase ramp + add") {
                chunkLoop((plane + block - 1) / block) { j in rampAndAdd(j * block, min(block, plane - j * block)) }
            }
            return
        }
        let framePlan = try RealFFTPlan.plan(shape: [rows, cols], direction: .forward, threads: 1)
        let block = 256                                  // columns per chunk (a multiple of 8)
        let columnPlan = try FFTPlanner.batchPlan(shape: [frames], howmany: min(block, plane), stride: plane, distance: 1,
                                                  direction: .forward)
        let tail = plane % block
        let tailPlan = plane > block && tail > 0
            ? try FFTPlanner.batchPlan(shape: [frames], howmany: tail, stride: plane, distance: 1, direction: .forward)
            : columnPlan
        let framesPerChunk = 4
        timed("FFT of frames") {
            chunkLoop((frameCount + framesPerChunk - 1) / framesPerChunk) { j in
                for f in (j * framesPerChunk)..<min(frameCount, (j + 1) * framesPerChunk) {
                    framePlan.execute(real: data.pointer + f * pixels, spectrum: sp.pointer + 2 * f * plane)
                }
            }
        }
        timed("FFT of columns + ramp") {
            chunkLoop((plane + block - 1) / block) { j in
                let c0 = j * block, m = min(block, plane - c0)
                (m == columnPlan.howmany ? columnPlan : tailPlan).execute(sp.pointer + 2 * c0)
                rampAndAdd(c0, m)
            }
        }
    }

    /// Marks the scan's bad pixels at their shifted positions (both neighbouring pixels
    /// of a fractional position), and the slabs that wrapped around.
    func markAlignedBad(_ list: [Int], shift: [Double]) {
        for i in list {
            let y = Double(i / cols) + shift[1], x = Double(i % cols) + shift[2]
            for yy in Set([Int(y.rounded(.down)), Int(y.rounded(.up))]) {
                for xx in Set([Int(x.rounded(.down)), Int(x.rounded(.up))]) {
                    let yw = ((yy % rows) + rows) % rows, xw = ((xx % cols) + cols) % cols
                    alignedBad[yw * cols + xw] = 1
                }
            }
        }
        for a in 0..<3 {
            let s = shift[a]
            if s > 1e-6 { wrapLow[a] = max(wrapLow[a], Int(s.rounded(.up))) }
            if s < -1e-6 { wrapHigh[a] = max(wrapHigh[a], Int((-s).rounded(.up))) }
        }
    }
}

/// The sum of one state's scans (`ScanAccumulator.finishSum`), waiting to be centred and
/// cropped: a series of states takes every state's sum first, then crops all of them to
/// one size.
public struct SummedStack {
    /// The registered sum (frames, rows, columns), counts ≥ 0.
    public let sum: RealVolume
    /// The Bragg peak in the sum (frames, rows, columns), by the accumulator's centring.
    public let peak: [Double]
    public let reports: [ScanReport]
    /// Bad detector pixels in the aligned frame; slabs holding wrapped-around data.
    let alignedBad: [UInt8]
    let wrapLow: [Int], wrapHigh: [Int]
    public let binning: [Int]
    public var stackShape: [Int] { sum.shape }
    /// The voxel nearest the Bragg peak: the crop's centre.
    public var centre: [Int] { peak.map { Int($0.rounded()) } }

    /// The sum centred on the Bragg peak, cropped to `size` (nil: the largest fast size
    /// around the peak, `Preparation.fittingSize`; padded with masked voxels where a
    /// given size leaves the data) and binned.
    public func pattern(size given: [Int]?) throws -> PreparedPattern {
        let stackShape = self.stackShape, options = (binning: binning, size: given)
        let centre = self.centre, sumVolume = sum, peak = self.peak
        var size = [0, 0, 0]
        for a in 0..<3 {
            if let s = options.size { size[a] = s[a]; continue }
            guard let n = Preparation.fittingSize(length: stackShape[a], peak: centre[a], bin: options.binning[a]) else {
                throw PreparationError.noCrop(axis: a, length: stackShape[a], peak: centre[a], binning: options.binning[a])
            }
            size[a] = n
        }
        guard size.count == 3, (0..<3).allSatisfy({ size[$0] >= 1 && size[$0] % binning[$0] == 0 }) else {
            throw PreparationError.invalidOption("the output size \(size) is not divisible by the binning \(binning)")
        }
        let start = (0..<3).map { centre[$0] - size[$0] / 2 }
        var pattern = RealVolume(shape: size)
        var outMask = RealVolume(shape: size, repeating: 1)
        let lo = (0..<3).map { max(0, start[$0]) }
        let hi = (0..<3).map { min(stackShape[$0], start[$0] + size[$0]) }
        if (0..<3).allSatisfy({ lo[$0] < hi[$0] }) {
            // One pass over the crop: a voxel is bad (0 in the pattern, 1 in the mask) when its
            // detector pixel is bad in the aligned frame or it lies in a wrapped-around slab;
            // voxels outside the data stay bad.
            let (frames, rows, cols) = (stackShape[0], stackShape[1], stackShape[2])
            let (wl, wh) = (wrapLow, wrapHigh)
            pattern.withUnsafeMutableFloats { pp in outMask.withUnsafeMutableFloats { mp in
            sumVolume.withUnsafeFloats { sp in alignedBad.withUnsafeBufferPointer { ab in
                let pp = SendablePointer(pp.baseAddress!), mp = SendablePointer(mp.baseAddress!)
                let sp = SendablePointer(UnsafeMutablePointer(mutating: sp.baseAddress!))
                let ab = SendablePointer(UnsafeMutablePointer(mutating: ab.baseAddress!))
                Parallel.forEach(hi[0] - lo[0]) { dz in
                    let z = lo[0] + dz
                    let zw = z < wl[0] || z >= frames - wh[0]
                    for y in lo[1]..<hi[1] {
                        let yw = zw || y < wl[1] || y >= rows - wh[1]
                        let src = sp.pointer + (z * rows + y) * cols
                        let off = ((z - start[0]) * size[1] + (y - start[1])) * size[2] - start[2]
                        let dp = pp.pointer + off, dm = mp.pointer + off
                        let b = ab.pointer + y * cols
                        for x in lo[2]..<hi[2] {
                            let bad = yw || x < wl[2] || x >= cols - wh[2] || b[x] != 0
                            dp[x] = bad ? 0 : src[x]
                            dm[x] = bad ? 1 : 0
                        }
                    }
                }
            } } } }
        }
        let (binnedPattern, binnedMask) = try Preparation.binned(pattern, mask: outMask, by: options.binning)
        let peakOut = (0..<3).map { (peak[$0] - Double(start[$0]) - Double(options.binning[$0] - 1) / 2) / Double(options.binning[$0]) }
        return PreparedPattern(pattern: binnedPattern, mask: binnedMask, scans: reports, peak: peak,
                               cropStart: start, cropSize: size, binning: options.binning, stackShape: stackShape,
                               maskedPixels: alignedBad.reduce(0) { $0 + Int($1) }, peakInPattern: peakOut)
    }
}
