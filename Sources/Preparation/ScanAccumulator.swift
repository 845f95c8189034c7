import Foundation
import Numerics

/// Streams rocking scans into one summed, registered intensity. Holds the running sum
/// (a real part for unshifted scans and a half spectrum for shifted ones), one scan and
/// one scan's spectrum: memory is about four scans' worth of Floats, whatever the number
/// of scans.
///
/// Per scan: frames are read a block at a time and corrected (negative, NaN or Inf values
/// mark their pixel bad; dark subtracted and clipped at 0; divided by the flat field;
/// scaled to the first scan's mean monitor). Bad pixels (hot, constant, detector mask) are
/// found on the frame-summed image and filled, frame by frame, with the mean of their good
/// neighbours so that the Fourier shift does not ring. The scan is registered to the first
/// one on a box around the Bragg peak (upsampled DFT, 1/upsampling voxel), shifted by
/// the Fourier shift theorem and added. The mask of the sum is the union of every scan's
/// bad pixels at their shifted positions, plus the slabs that wrapped around in the shift.
public final class ScanAccumulator {
    public let stackShape: [Int]
    public let options: PreparationOptions
    let frames: Int, rows: Int, cols: Int, pix: Int
    let scan: FloatStorage
    let realSum: FloatStorage
    var hasRealSum = false
    var spectrumSum: FloatStorage?
    var spectrum: FloatStorage?
    var reports: [ScanReport] = []
    var firstSource: String?
    var referenceBox: RealVolume?
    /// The reference box's bad voxels (1 = bad), from the first scan's bad pixels.
    var referenceBad: RealVolume?
    var referenceRepaired = false
    var boxStart: [Int] = [0, 0, 0]
    var boxSize: [Int] = [0, 0, 0]
    /// Bad detector pixels in the aligned frame (union over included scans).
    var alignedBad: [UInt8]
    /// Slabs at each axis' low and high end that received wrapped-around data.
    var wrapLow = [0, 0, 0], wrapHigh = [0, 0, 0]
    var monitorReference: Double?
    /// Hot pixels found so far (detector positions), kept bad in every scan.
    var knownBad: [UInt8]
    let inverseFlat: [Float]?
    let fixedBad: [UInt8]

    public init(stackShape: [Int], options: PreparationOptions = PreparationOptions()) throws {
        guard stackShape.count == 3, stackShape.allSatisfy({ $0 > 0 }) else {
            throw PreparationError.invalidOption("a frame stack needs 3 non-empty axes (got \(stackShape))")
        }
        self.stackShape = stackShape
        self.options = options
        frames = stackShape[0]; rows = stackShape[1]; cols = stackShape[2]; pix = rows * cols
        let frameShape = [rows, cols]
        if let d = options.dark, d.shape != frameShape && d.shape != stackShape {
            throw PreparationError.badCalibration(what: "dark frame", reason: "has shape \(d.shape) but the frames are \(frameShape) (or a stack \(stackShape))")
        }
        if let d = options.dark, d.nonFiniteCounts() != (0, 0) {
            throw PreparationError.badCalibration(what: "dark frame", reason: "holds NaN or Inf values")
        }
        var bad = [UInt8](repeating: 0, count: rows * cols)
        if let m = options.detectorMask {
            guard m.shape == frameShape else {
                throw PreparationError.badCalibration(what: "detector mask", reason: "has shape \(m.shape) but the frames are \(frameShape)")
            }
            m.withUnsafeFloats { p in for i in 0..<p.count where p[i] != 0 { bad[i] = 1 } }
        }
        if let f = options.flat {
            guard f.shape == frameShape else {
                throw PreparationError.badCalibration(what: "flat field", reason: "has shape \(f.shape) but the frames are \(frameShape)")
            }
            var inv = [Float](repeating: 0, count: rows * cols)
            f.withUnsafeFloats { p in
                for i in 0..<p.count {
                    if p[i] > 0 && p[i].isFinite { inv[i] = 1 / p[i] } else { bad[i] = 1 }
                }
            }
            inverseFlat = inv
        } else {
            inverseFlat = nil
        }
        fixedBad = bad
        guard options.binning.count == 3, options.binning.allSatisfy({ $0 >= 1 }) else {
            throw PreparationError.invalidOption("binning must give 3 factors ≥ 1 (got \(options.binning))")
        }
        if let s = options.size {
            guard s.count == 3, s.allSatisfy({ $0 >= 1 }) else {
                throw PreparationError.invalidOption("the output size must give 3 positive lengths (got \(s))")
            }
            for a in 0..<3 where s[a] % options.binning[a] != 0 {
                throw PreparationError.invalidOption("the output size \(s) is not divisible by the binning \(options.binning)")
            }
        }
        guard options.registrationBox >= 4, options.upsampling >= 1, options.framesPerRead >= 1 else {
            throw PreparationError.invalidOption("registration box must be ≥ 4, upsampling and frames per read ≥ 1")
        }
        scan = FloatStorage(count: frames * pix)
        realSum = FloatStorage(count: frames * pix)
        alignedBad = [UInt8](repeating: 0, count: pix)
        knownBad = [UInt8](repeating: 0, count: pix)
    }

    /// Reads, corrects, masks, registers and adds one scan. `progress` gets the number of
    /// this scan's frames read so far. A scan that does not correlate with the first is
    /// left out (the report says so); bad input throws `PreparationError`.
    @discardableResult
    public func add(_ input: Scan, index k: Int, progress: ((Int) -> Void)? = nil) throws -> ScanReport {
        let stack = input.frames
        let source = stack.source
        if stack.shape.count == 3 && (stack.shape[0] == 0 || stack.shape[1] == 0 || stack.shape[2] == 0) {
            throw PreparationError.emptyScan(scan: k, source: source)
        }
        guard stack.shape == stackShape else {
            if stack.shape.count != 3 { throw PreparationError.notAFrameStack(source: source, shape: stack.shape) }
            throw PreparationError.shapeMismatch(scan: k, source: source, shape: stack.shape, expected: stackShape,
                                                 firstSource: firstSource ?? "the first scan")
        }
        if firstSource == nil { firstSource = source }
        let monitorScale = try monitorScales(input.monitor, scan: k, source: source)

        // 1. Read and correct, a block of frames at a time; collect per-pixel statistics.
        var sum = [Float](repeating: 0, count: pix)
        var high = [Float](repeating: -.infinity, count: pix)
        var low = [Float](repeating: .infinity, count: pix)
        var badValue = [UInt8](repeating: 0, count: pix)
        let block = stack.preferredFramesPerRead.map { min(max($0, 1), 256) } ?? options.framesPerRead
        var f0 = 0
        progress?(0)
        while f0 < frames {
            try Interruption.check()
            let f1 = min(frames, f0 + block)
            do {
                try stack.readFrames(f0..<f1, into: scan.pointer + f0 * pix)
            } catch let e as PreparationError {
                throw e
            } catch let e as InterruptedError {
                throw e
            } catch {
                throw PreparationError.readFailed(scan: k, source: source, reason: String(describing: error))
            }
            correct(frames: f0..<f1, monitorScale: monitorScale, sum: &sum, high: &high, low: &low, badValue: &badValue)
            f0 = f1
            progress?(f0)
        }
        stack.finishedReading()

        // 2. Bad pixels on the frame-summed image.
        let (bad, hot, dead, other) = findBadPixels(sum: sum, high: high, low: low, badValue: badValue)
        // Hot pixels belong to the detector: once found, they stay bad in later scans (and, at
        // the end, at every scan's shifted position), even where the Bragg peak drifts over
        // them and hides them from the neighbour test. (Constant pixels are found in every
        // scan by their constancy; a dark fringe can look constant too, and must not spread.)
        for i in 0..<pix where bad[i] == 2 { knownBad[i] = 1 }
        let badList = (0..<pix).filter { bad[$0] != 0 }
        fillBadPixels(badList, bad: bad)
        let total = Parallel.sum(frames * pix) { r in
            var s = 0.0
            for i in r { s += Double(self.scan.pointer[i]) }
            return s
        }

        // 3. Registration to the first scan, on a box around its Bragg peak, against the
        //    aligned sum of the boxes of the scans before.
        var shift = [0.0, 0.0, 0.0]
        var correlation = 1.0
        let scanVolume = try RealVolume(shape: stackShape, storage: scan)
        if referenceBox == nil {
            let peak = scanVolume.index(ofFlat: scanVolume.argmax())
            boxSize = stackShape.map { min($0, options.registrationBox) }
            boxStart = (0..<3).map { max(0, min(stackShape[$0] - boxSize[$0], peak[$0] - boxSize[$0] / 2)) }
            referenceBox = try scanVolume.cropped(start: boxStart, size: boxSize)
            referenceBad = boxMask(badList)
        } else if let ref = referenceBox {
            let box = try scanVolume.cropped(start: boxStart, size: boxSize)
            if options.register {
                let r = try register(box, badList: badList, onto: ref)
                shift = r.shift; correlation = r.correlation
                if correlation >= options.minCorrelation && !badList.isEmpty {
                    try refillFromReference(box: box, badList: badList, shift: shift)
                }
            } else {
                correlation = pearson(box, ref)
            }
            if correlation >= options.minCorrelation {
                // The reference grows into the aligned sum of the boxes: later scans are
                // registered against less noise, still in the first scan's frame.
                let filled = try scanVolume.cropped(start: boxStart, size: boxSize)
                var sum = referenceBox ?? ref
                try sum.add(shift.allSatisfy({ $0 == 0 }) ? filled : filled.fourierShifted(by: shift))
                referenceBox = sum
            }
        }
        var report = ScanReport(index: k, source: source, shift: shift, correlation: correlation, included: true,
                                note: nil, hotPixels: hot, deadPixels: dead, otherBadPixels: other, totalCounts: total)
        if !(correlation >= options.minCorrelation) {
            report.included = false
            report.note = String(format: "its correlation with the scans before (registered to the first) is %.3f, below the threshold %.3f", correlation, options.minCorrelation)
            reports.append(report)
            return report
        }

        // 4. Shift and add.
        try Interruption.check()
        if shift.allSatisfy({ abs($0) < 1e-9 }) {
            let s = SendablePointer(scan.pointer), d = SendablePointer(realSum.pointer)
            Parallel.forEachChunk(frames * pix) { r in for i in r { d.pointer[i] += s.pointer[i] } }
            hasRealSum = true
        } else {
            try addShifted(by: shift)
        }
        markAlignedBad(badList, shift: shift)
        reports.append(report)
        return report
    }

    /// The summed pattern, centred on the Bragg peak, cropped and binned.
    public func finish() throws -> PreparedPattern {
        guard reports.contains(where: { $0.included }) else {
            throw PreparationError.allLeftOut("no scan could be summed: every scan was left out (\(reports.count) scan(s) read)")
        }
        let known = (0..<pix).filter { knownBad[$0] != 0 }
        for r in reports where r.included { markAlignedBad(known, shift: r.shift) }
        let n = frames * pix
        let out = FloatStorage(count: n)
        if let spec = spectrumSum {
            let plan = try RealFFTPlan.plan(shape: stackShape, direction: .backward)
            plan.execute(real: out.pointer, spectrum: spec.pointer)
            spectrumSum = nil
            spectrum = nil
        }
        let inv = Float(1) / Float(n)
        let o = SendablePointer(out.pointer), rs = SendablePointer(realSum.pointer)
        Parallel.forEachChunk(n) { r in
            for i in r {
                // Fourier ringing and noise can go below zero: counts cannot.
                let v = o.pointer[i] * inv + rs.pointer[i]
                o.pointer[i] = v > 0 ? v : 0
            }
        }
        var sumVolume = try RealVolume(shape: stackShape, storage: out)
        var mask = RealVolume(shape: stackShape)
        mask.withUnsafeMutableFloats { m in
            for z in 0..<frames {
                let zw = z < wrapLow[0] || z >= frames - wrapHigh[0]
                for y in 0..<rows {
                    let yw = zw || y < wrapLow[1] || y >= rows - wrapHigh[1]
                    for x in 0..<cols {
                        let i = y * cols + x
                        if yw || x < wrapLow[2] || x >= cols - wrapHigh[2] || alignedBad[i] != 0 {
                            m[(z * rows + y) * cols + x] = 1
                        }
                    }
                }
            }
        }
        // Centre on the Bragg peak (located with bad pixels filled, so that a masked voxel
        // near the peak cannot pull the centre of mass) and crop to a fast size (padding,
        // masked, where needed).
        let peak = Preparation.peakPosition(sumVolume, mask: nil, method: options.centring, box: options.registrationBox)
        sumVolume.withUnsafeMutableFloats { p in mask.withUnsafeFloats { m in
            for i in 0..<p.count where m[i] != 0 { p[i] = 0 }
        } }
        let centre = peak.map { Int($0.rounded()) }
        var size = [0, 0, 0]
        for a in 0..<3 {
            if let s = options.size { size[a] = s[a]; continue }
            guard let n = Preparation.fittingSize(length: stackShape[a], peak: centre[a], bin: options.binning[a]) else {
                throw PreparationError.invalidOption("no crop of axis \(a) (length \(stackShape[a])) around the Bragg peak at \(centre[a]) is divisible by the binning \(options.binning[a]); give --size")
            }
            size[a] = n
        }
        let start = (0..<3).map { centre[$0] - size[$0] / 2 }
        var pattern = RealVolume(shape: size)
        var outMask = RealVolume(shape: size, repeating: 1)
        let lo = (0..<3).map { max(0, start[$0]) }
        let hi = (0..<3).map { min(stackShape[$0], start[$0] + size[$0]) }
        if (0..<3).allSatisfy({ lo[$0] < hi[$0] }) {
            let part = (0..<3).map { hi[$0] - lo[$0] }
            let p = try sumVolume.cropped(start: lo, size: part)
            let m = try mask.cropped(start: lo, size: part)
            let at = (0..<3).map { lo[$0] - start[$0] }
            pattern = try p.embedded(in: size, at: at)
            let ones = RealVolume(shape: part, repeating: 1)
            var inside = try ones.embedded(in: size, at: at)
            // outside the data → bad; inside → the data's mask
            let mm = try m.embedded(in: size, at: at)
            inside.withUnsafeMutableFloats { q in mm.withUnsafeFloats { w in
                for i in 0..<q.count { q[i] = (q[i] == 0 || w[i] != 0) ? 1 : 0 }
            } }
            outMask = inside
        }
        let (binnedPattern, binnedMask) = try Preparation.binned(pattern, mask: outMask, by: options.binning)
        let peakOut = (0..<3).map { (peak[$0] - Double(start[$0]) - Double(options.binning[$0] - 1) / 2) / Double(options.binning[$0]) }
        return PreparedPattern(pattern: binnedPattern, mask: binnedMask, scans: reports, peak: peak,
                               cropStart: start, cropSize: size, binning: options.binning, stackShape: stackShape,
                               maskedPixels: alignedBad.reduce(0) { $0 + Int($1) }, peakInPattern: peakOut)
    }

    // MARK: - Steps

    func monitorScales(_ monitor: [Double]?, scan k: Int, source: String) throws -> [Float]? {
        guard let m = monitor else { return nil }
        guard m.count == frames else {
            throw PreparationError.badMonitor(scan: k, source: source, reason: "has \(m.count) values for \(frames) frames")
        }
        if let i = m.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
            throw PreparationError.badMonitor(scan: k, source: source, reason: "value \(m[i]) at frame \(i) is not a positive number")
        }
        if monitorReference == nil { monitorReference = m.reduce(0, +) / Double(m.count) }
        let ref = monitorReference!
        return m.map { Float(ref / $0) }
    }

    /// Corrections of one block of frames in place, and the per-pixel sum, max and min.
    /// Branch-free over contiguous pixels (dark 0 and flat 1 stand in when absent) so that
    /// it vectorises; parallel over pixel chunks, frames of the block inside.
    func correct(frames range: Range<Int>, monitorScale: [Float]?, sum: inout [Float], high: inout [Float],
                 low: inout [Float], badValue: inout [UInt8]) {
        let pix = self.pix
        let data = SendablePointer(scan.pointer)
        let darkIsStack = options.dark?.rank == 3
        let dark = options.dark ?? RealVolume(shape: [pix])
        let flat = inverseFlat ?? [Float](repeating: 1, count: pix)
        let scales = monitorScale ?? [Float](repeating: 1, count: frames)
        sum.withUnsafeMutableBufferPointer { sp in
        high.withUnsafeMutableBufferPointer { hp in
        low.withUnsafeMutableBufferPointer { lp in
        badValue.withUnsafeMutableBufferPointer { bp in
        flat.withUnsafeBufferPointer { fp in
        dark.withUnsafeFloats { dp in
            let s = SendablePointer(sp.baseAddress!), h = SendablePointer(hp.baseAddress!)
            let l = SendablePointer(lp.baseAddress!), b = SendablePointer(bp.baseAddress!)
            let fl = SendablePointer(UnsafeMutablePointer(mutating: fp.baseAddress!))
            let dk0 = SendablePointer(UnsafeMutablePointer(mutating: dp.baseAddress!))
            Parallel.forEachChunk(pix, minChunk: 8192) { r in
                let lo = r.lowerBound, n = r.count
                let sum = s.pointer + lo, hi = h.pointer + lo, low = l.pointer + lo, bad = b.pointer + lo
                let flat = fl.pointer + lo
                for f in range {
                    let row = data.pointer + f * pix + lo
                    let dk = dk0.pointer + (darkIsStack ? f * pix : 0) + lo
                    let scale = scales[f]
                    for i in 0..<n {
                        var v = row[i]
                        // Negative (detector flags), NaN and Inf mark the pixel bad.
                        let ok = v >= 0 && v < Float.infinity
                        bad[i] |= ok ? 0 : 1
                        v = ok ? v : 0
                        v = max(v - dk[i], 0) * flat[i]
                        // Constancy is judged before the monitor scaling: a stuck pixel
                        // does not follow the flux.
                        hi[i] = max(hi[i], v)
                        low[i] = min(low[i], v)
                        v *= scale
                        row[i] = v
                        sum[i] += v
                    }
                }
            }
        } } } } } }
    }

    /// Hot pixels (far above their neighbours' median in the frame sum), constant pixels
    /// (dead, stuck, gaps) where the neighbours say a live pixel would vary, and the
    /// fixed bad pixels (detector mask, bad flat, bad values).
    func findBadPixels(sum: [Float], high: [Float], low: [Float], badValue: [UInt8])
        -> (bad: [UInt8], hot: Int, dead: Int, other: Int) {
        var bad = [UInt8](repeating: 0, count: pix)
        var hot = 0, dead = 0, other = 0
        var neighbours = [Double](repeating: 0, count: 8)
        for y in 0..<rows {
            for x in 0..<cols {
                let i = y * cols + x
                if fixedBad[i] != 0 || badValue[i] != 0 || knownBad[i] != 0 { bad[i] = 1; other += 1; continue }
                var c = 0
                for dy in -1...1 {
                    let yy = y + dy
                    if yy < 0 || yy >= rows { continue }
                    for dx in -1...1 where dx != 0 || dy != 0 {
                        let xx = x + dx
                        if xx < 0 || xx >= cols { continue }
                        neighbours[c] = Double(sum[yy * cols + xx]); c += 1
                    }
                }
                let med = median(&neighbours, c)
                if Double(sum[i]) > options.hotFactor * (med + 1) { bad[i] = 2; hot += 1; continue }
                if frames > 1 && high[i] == low[i] && med >= options.deadMinCounts { bad[i] = 3; dead += 1 }
            }
        }
        return (bad, hot, dead, other)
    }

    func median(_ a: inout [Double], _ n: Int) -> Double {
        if n == 0 { return 0 }
        // insertion sort of at most 8 values
        for i in 1..<n {
            let v = a[i]; var j = i - 1
            while j >= 0 && a[j] > v { a[j + 1] = a[j]; j -= 1 }
            a[j + 1] = v
        }
        return n % 2 == 1 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2])
    }

    /// Replaces bad pixels, in every frame, by the mean of their good 8-neighbours.
    func fillBadPixels(_ list: [Int], bad: [UInt8]) {
        guard !list.isEmpty else { return }
        let data = SendablePointer(scan.pointer)
        let (rows, cols, pix) = (self.rows, self.cols, self.pix)
        bad.withUnsafeBufferPointer { bp in
            let b = bp.baseAddress!
            list.withUnsafeBufferPointer { lp in
                Parallel.forEach(frames) { f in
                    let frame = data.pointer + f * pix
                    for i in lp {
                        let y = i / cols, x = i % cols
                        var s: Float = 0, c: Float = 0
                        for yy in max(0, y - 1)...min(rows - 1, y + 1) {
                            for xx in max(0, x - 1)...min(cols - 1, x + 1) where b[yy * cols + xx] == 0 {
                                s += frame[yy * cols + xx]; c += 1
                            }
                        }
                        frame[i] = c > 0 ? s / c : 0
                    }
                }
            }
        }
    }

    /// Adds the current scan, translated by `shift` (Fourier shift theorem), to the
    /// half-spectrum sum.
    func addShifted(by shift: [Double]) throws {
        let forward = try RealFFTPlan.plan(shape: stackShape, direction: .forward)
        let h = forward.halfCount
        if spectrum == nil { spectrum = FloatStorage(count: 2 * h) }
        if spectrumSum == nil { spectrumSum = FloatStorage(count: 2 * h) }
        let spec = spectrum!, acc = spectrumSum!
        forward.execute(real: scan.pointer, spectrum: spec.pointer)
        let half = forward.halfShape
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
        let n1 = half[1], n2 = half[2]
        let sp = SendablePointer(spec.pointer), ap = SendablePointer(acc.pointer)
        g2.withUnsafeBufferPointer { g2p in
            let g2b = g2p.baseAddress!
            Parallel.forEachChunk(half[0] * n1, minChunk: max(1, 16384 / n2)) { rowsRange in
                for row in rowsRange {
                    let k0 = row / n1, k1 = row % n1
                    let ar = g0[2 * k0], ai = g0[2 * k0 + 1], br = g1[2 * k1], bi = g1[2 * k1 + 1]
                    let rr = ar * br - ai * bi, ri = ar * bi + ai * br
                    let base = 2 * row * n2
                    let s = sp.pointer + base, d = ap.pointer + base
                    for k in 0..<n2 {
                        let fr = rr * g2b[2 * k] - ri * g2b[2 * k + 1]
                        let fi = rr * g2b[2 * k + 1] + ri * g2b[2 * k]
                        let xr = s[2 * k], xi = s[2 * k + 1]
                        d[2 * k] += xr * fr - xi * fi
                        d[2 * k + 1] += xr * fi + xi * fr
                    }
                }
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

    /// The scan's bad pixels as a 3D mask of the registration box (1 = bad).
    func boxMask(_ list: [Int]) -> RealVolume {
        var m = RealVolume(shape: boxSize)
        let fp = boxSize[1] * boxSize[2]
        m.withUnsafeMutableFloats { p in
            for i in list {
                let y = i / cols - boxStart[1], x = i % cols - boxStart[2]
                guard y >= 0 && y < boxSize[1] && x >= 0 && x < boxSize[2] else { continue }
                for z in 0..<boxSize[0] { p[z * fp + y * boxSize[2] + x] = 1 }
            }
        }
        return m
    }

    /// Registration of a scan's box onto the reference box. Bad pixels sit at the same
    /// detector positions in every scan, so their neighbour-mean fill is a fixed pattern
    /// that pulls the shift towards zero: after a first estimate, the bad voxels of each
    /// box are replaced by the other box moved by the current shift (scaled to its
    /// counts), and the shift is estimated again at full precision.
    func register(_ box: RealVolume, badList: [Int], onto ref: RealVolume) throws -> (shift: [Double], correlation: Double) {
        let none = RealVolume(shape: boxSize)
        let refBad = referenceRepaired ? none : (referenceBad ?? none)
        let bad = boxMask(badList)
        if bad.sum() == 0 && refBad.sum() == 0 {
            return try Registration.upsampledShift(of: box, onto: ref, upsampling: options.upsampling)
        }
        // A first estimate to ~0.1 pixel is enough to fill the bad voxels; then the full
        // precision on the filled boxes.
        var r = try Registration.upsampledShift(of: box, onto: ref, upsampling: min(options.upsampling, 5))
        let scale = box.sum() / max(ref.sum(), 1e-30)
        for _ in 0..<1 {
            // moving(x) ≈ ref(x + s): the reference moved by −s stands in for the scan.
            let refInScan = try ref.fourierShifted(by: r.shift.map { -$0 })
            let scanInRef = try box.fourierShifted(by: r.shift)
            var b = box, a = ref
            b.withUnsafeMutableFloats { p in bad.withUnsafeFloats { m in refInScan.withUnsafeFloats { q in
                for i in 0..<p.count where m[i] != 0 { p[i] = max(0, q[i] * Float(scale)) }
            } } }
            a.withUnsafeMutableFloats { p in refBad.withUnsafeFloats { m in scanInRef.withUnsafeFloats { q in
                for i in 0..<p.count where m[i] != 0 { p[i] = max(0, q[i] / Float(scale)) }
            } } }
            r = try Registration.upsampledShift(of: b, onto: a, upsampling: options.upsampling)
        }
        return r
    }

    /// Near the Bragg peak a neighbour-mean fill is far off, and the Fourier shift would
    /// ring that error into good voxels. Inside the registration box, a shifted scan's bad
    /// voxels are therefore refilled with the reference moved onto the scan (scaled to the
    /// scan's counts). The reference's own bad voxels are first repaired, once, from the
    /// first scan registered with a shift of at least 1.5 pixels on the detector (so that
    /// its values there come from good pixels).
    func refillFromReference(box: RealVolume, badList: [Int], shift: [Double]) throws {
        guard var ref = referenceBox else { return }
        let refBad = referenceBad ?? RealVolume(shape: boxSize)
        let scale = box.sum() / max(ref.sum(), 1e-30)
        if !referenceRepaired && max(abs(shift[1]), abs(shift[2])) >= 1.5 && refBad.sum() > 0 {
            let scanInRef = try box.fourierShifted(by: shift)
            ref.withUnsafeMutableFloats { p in refBad.withUnsafeFloats { m in scanInRef.withUnsafeFloats { q in
                for i in 0..<p.count where m[i] != 0 { p[i] = max(0, q[i] / Float(scale)) }
            } } }
            referenceBox = ref
            referenceRepaired = true
        }
        let refInScan = try ref.fourierShifted(by: shift.map { -$0 })
        let fp = boxSize[1] * boxSize[2]
        refInScan.withUnsafeFloats { q in
            for i in badList {
                let y = i / cols - boxStart[1], x = i % cols - boxStart[2]
                guard y >= 0 && y < boxSize[1] && x >= 0 && x < boxSize[2] else { continue }
                for z in 0..<boxSize[0] {
                    let v = max(0, q[z * fp + y * boxSize[2] + x] * Float(scale))
                    scan.pointer[((z + boxStart[0]) * rows + y + boxStart[1]) * cols + x + boxStart[2]] = v
                }
            }
        }
    }

    func pearson(_ a: RealVolume, _ b: RealVolume) -> Double {
        let ma = a.mean(), mb = b.mean()
        var sab = 0.0, saa = 0.0, sbb = 0.0
        a.withUnsafeFloats { p in b.withUnsafeFloats { q in
            for i in 0..<p.count {
                let x = Double(p[i]) - ma, y = Double(q[i]) - mb
                sab += x * y; saa += x * x; sbb += y * y
            }
        } }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }
}
