import Foundation
import Numerics

/// A scan read and corrected, waiting to be registered and added.
struct LoadedScan {
    let index: Int
    let source: String
    let data: FloatStorage
    var sum: [Float], high: [Float], low: [Float], badValue: [UInt8]
    /// Bad pixels (filled in `data`), their kinds, and the total counts.
    var badList: [Int] = [], hot = 0, dead = 0, other = 0
    var total = 0.0
}

/// Loading, the first stage of a preparation: reads a scan a block of frames at a time and
/// corrects it (negative, NaN or Inf values mark their pixel bad; dark subtracted and
/// clipped at 0; divided by the flat field; scaled to the first scan's mean monitor), then
/// finds its bad pixels (hot, constant, detector mask) on the frame-summed image and fills
/// them, frame by frame, with the mean of their good neighbours so that the Fourier shift
/// does not ring.
///
/// Its state (the calibration, the hot pixels found so far, the monitor reference and the
/// first scan's name) belongs to loading alone: the pipeline runs loads one after another,
/// in scan order, on whichever thread reads, and no other stage writes that state.
final class ScanLoader {
    let stackShape: [Int]
    let options: PreparationOptions
    let frames: Int, rows: Int, cols: Int, pix: Int
    let runtime: StageRuntime
    let inverseFlat: [Float]?
    /// What the correction pass subtracts and multiplies by (0 and 1 when not given).
    let darkOrZero: RealVolume
    let flatOrOne: [Float]
    /// Bad detector pixels from the calibration: the detector mask and a bad flat field.
    let fixedBad: [UInt8]
    /// Hot pixels found so far (detector positions), kept bad in every later scan.
    private(set) var knownBad: [UInt8]
    private(set) var firstSource: String?
    var monitorReference: Double?

    /// Checks the calibration (dark, detector mask, flat field) against the frame shape.
    init(stackShape: [Int], options: PreparationOptions, runtime: StageRuntime) throws {
        self.stackShape = stackShape
        self.options = options
        self.runtime = runtime
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
        darkOrZero = options.dark ?? RealVolume(shape: [rows * cols])
        flatOrOne = inverseFlat ?? [Float](repeating: 1, count: rows * cols)
        knownBad = [UInt8](repeating: 0, count: pix)
    }

    var loopThreads: Int { runtime.loopThreads }
    @discardableResult
    func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T { try runtime.timed(stage, body) }

    /// Checks, reads and corrects one scan into `data` (frames × rows × columns), a block of
    /// frames at a time, then finds its bad pixels and fills them. `cancelled` is asked
    /// before each block (the pipeline sets it when adding an earlier scan failed).
    func load(_ input: Scan, index k: Int, into data: FloatStorage, progress: ((Int) -> Void)? = nil,
              cancelled: (() -> Bool)? = nil) throws -> LoadedScan {
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

        var stats = LoadedScan(index: k, source: source, data: data,
                               sum: [Float](repeating: 0, count: pix),
                               high: [Float](repeating: -.infinity, count: pix),
                               low: [Float](repeating: .infinity, count: pix),
                               badValue: [UInt8](repeating: 0, count: pix))
        // Samples read unconverted go to a block buffer and are converted in the correction
        // pass; otherwise the reader converts to Float in place. Unchunked samples are read
        // about 1 MiB at a time, so that the correction pass finds them still in the cache.
        let filling = stack as? any FrameBufferFilling
        let native = filling?.nativeSampleType
        let cached = native.map { max(1, (1 << 20) / (pix * $0.byteCount)) } ?? options.framesPerRead
        let block = stack.preferredFramesPerRead.map { min(max($0, 1), 256) } ?? min(options.framesPerRead, cached)
        let raw = native.map { UnsafeMutableRawPointer.allocate(byteCount: block * pix * $0.byteCount, alignment: 64) }
        defer { raw?.deallocate() }
        var f0 = 0
        progress?(0)
        while f0 < frames {
            try Interruption.check()
            if cancelled?() == true { throw CancellationError() }
            let f1 = min(frames, f0 + block)
            let dst = data.pointer + f0 * pix
            do {
                try timed("read") {
                    if let raw, let filling { try filling.readNativeFrames(f0..<f1, into: raw) }
                    else { try stack.readFrames(f0..<f1, into: dst) }
                }
            } catch let e as PreparationError {
                throw e
            } catch let e as InterruptedError {
                throw e
            } catch {
                throw PreparationError.readFailed(scan: k, source: source, reason: String(describing: error))
            }
            timed("correct") {
                switch native {
                case .uint8?: correct(UnsafePointer(raw!.assumingMemoryBound(to: UInt8.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .int8?: correct(UnsafePointer(raw!.assumingMemoryBound(to: Int8.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .uint16?: correct(UnsafePointer(raw!.assumingMemoryBound(to: UInt16.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .int16?: correct(UnsafePointer(raw!.assumingMemoryBound(to: Int16.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .uint32?: correct(UnsafePointer(raw!.assumingMemoryBound(to: UInt32.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .int32?: correct(UnsafePointer(raw!.assumingMemoryBound(to: Int32.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case .float32?: correct(UnsafePointer(raw!.assumingMemoryBound(to: Float.self)), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                case nil: correct(UnsafePointer(dst), into: dst, frames: f0..<f1, monitorScale: monitorScale, stats: &stats)
                }
            }
            f0 = f1
            progress?(f0)
        }
        stack.finishedReading()

        // 2. Bad pixels on the frame-summed image (here, on the reading thread, in scan
        //    order: the hot pixels found so far are known to the next scan).
        let (bad, hot, dead, other) = timed("find bad pixels") {
            findBadPixels(sum: stats.sum, high: stats.high, low: stats.low, badValue: stats.badValue)
        }
        // Hot pixels belong to the detector: once found, they stay bad in later scans (and, at
        // the end, at every scan's shifted position), even where the Bragg peak drifts over
        // them and hides them from the neighbour test. (Constant pixels are found in every
        // scan by their constancy; a dark fringe can look constant too, and must not spread.)
        for i in 0..<pix where bad[i] == 2 { knownBad[i] = 1 }
        let badList = (0..<pix).filter { bad[$0] != 0 }
        timed("fill bad pixels") { fillBadPixels(badList, bad: bad, in: data) }
        // Total counts: the good pixels' frame sums, plus the filled values of the bad ones.
        var total = 0.0
        for i in 0..<pix where bad[i] == 0 { total += Double(stats.sum[i]) }
        for i in badList { for f in 0..<frames { total += Double(data.pointer[f * pix + i]) } }
        stats.badList = badList
        (stats.hot, stats.dead, stats.other, stats.total) = (hot, dead, other, total)
        return stats
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

    /// Corrections of one block of frames, from the samples `src` (the block's first frame;
    /// `src` may be `dst` itself for Floats) into `dst` as Floats, and the per-pixel sum, max
    /// and min: one pass that converts, corrects and gathers. Branch-free over contiguous
    /// pixels (dark 0 and flat 1 stand in when absent) so that it vectorises; parallel over
    /// pixel chunks, frames of the block inside.
    func correct<T: FrameSample>(_ src: UnsafePointer<T>, into dst: UnsafeMutablePointer<Float>, frames range: Range<Int>,
                                 monitorScale: [Float]?, stats: inout LoadedScan) {
        let pix = self.pix
        let input = SendablePointer(UnsafeMutablePointer(mutating: src)), output = SendablePointer(dst)
        let darkIsStack = options.dark?.rank == 3
        let dark = darkOrZero, flat = flatOrOne
        let scales = monitorScale ?? [Float](repeating: 1, count: frames)
        let plain = T.alwaysValid && options.dark == nil && inverseFlat == nil
        stats.sum.withUnsafeMutableBufferPointer { sp in
        stats.high.withUnsafeMutableBufferPointer { hp in
        stats.low.withUnsafeMutableBufferPointer { lp in
        stats.badValue.withUnsafeMutableBufferPointer { bp in
        flat.withUnsafeBufferPointer { fp in
        dark.withUnsafeFloats { dp in
            let s = SendablePointer(sp.baseAddress!), h = SendablePointer(hp.baseAddress!)
            let l = SendablePointer(lp.baseAddress!), b = SendablePointer(bp.baseAddress!)
            let fl = SendablePointer(UnsafeMutablePointer(mutating: fp.baseAddress!))
            let dk0 = SendablePointer(UnsafeMutablePointer(mutating: dp.baseAddress!))
            Parallel.forEachChunk(pix, minChunk: 8192, threads: loopThreads) { r in
              // Tiles of 512 pixels: their statistics stay in the L1 cache across the frames.
              for t0 in stride(from: r.lowerBound, to: r.upperBound, by: 512) {
                let lo = t0, n = min(512, r.upperBound - t0)
                let sum = s.pointer + lo, hi = h.pointer + lo, low = l.pointer + lo, bad = b.pointer + lo
                let flat = fl.pointer + lo
                for f in range {
                    let sample = input.pointer + (f - range.lowerBound) * pix + lo
                    let row = output.pointer + (f - range.lowerBound) * pix + lo
                    let dk = dk0.pointer + (darkIsStack ? f * pix : 0) + lo
                    let scale = scales[f]
                    if plain {
                        // Unsigned samples, no dark, no flat field: nothing can be bad here.
                        for i in 0..<n {
                            let v = sample[i].floatValue
                            hi[i] = max(hi[i], v)
                            low[i] = min(low[i], v)
                            let w = v * scale
                            row[i] = w
                            sum[i] += w
                        }
                        continue
                    }
                    for i in 0..<n {
                        var v = sample[i].floatValue
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
                // The median is at least the smallest neighbour: a pixel not above hotFactor ×
                // (that + 1) is not hot, and one that varies is not constant, whatever the
                // median (most pixels end here, without sorting).
                if frames <= 1 || high[i] != low[i] {
                    var mn = Float.infinity
                    for yy in max(0, y - 1)...min(rows - 1, y + 1) {
                        for xx in max(0, x - 1)...min(cols - 1, x + 1) where yy != y || xx != x {
                            mn = min(mn, sum[yy * cols + xx])
                        }
                    }
                    if mn.isFinite && Double(sum[i]) <= options.hotFactor * (Double(mn) + 1) { continue }
                }
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
    func fillBadPixels(_ list: [Int], bad: [UInt8], in storage: FloatStorage) {
        guard !list.isEmpty else { return }
        let data = SendablePointer(storage.pointer)
        let (rows, cols, pix) = (self.rows, self.cols, self.pix)
        bad.withUnsafeBufferPointer { bp in
            let b = bp.baseAddress!
            list.withUnsafeBufferPointer { lp in
                Parallel.forEach(frames, threads: loopThreads) { f in
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
}

/// Detector samples the correction pass converts to Float as it reads them.
protocol FrameSample {
    var floatValue: Float { get }
    /// No value of the type is bad (negative, NaN or Inf): unsigned integers.
    static var alwaysValid: Bool { get }
}
extension UInt8: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { true } }
extension Int8: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { false } }
extension UInt16: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { true } }
extension Int16: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { false } }
extension UInt32: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { true } }
extension Int32: FrameSample { @inline(__always) var floatValue: Float { Float(self) }; static var alwaysValid: Bool { false } }
extension Float: FrameSample { @inline(__always) var floatValue: Float { self }; static var alwaysValid: Bool { false } }
