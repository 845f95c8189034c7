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
    /// The scan being processed (one of two buffers when reading overlaps processing).
    var scan: FloatStorage
    var spare: FloatStorage?
    let realSum: FloatStorage
    var hasRealSum = false
    var spectrumSum: FloatStorage?
    /// The half spectrum of the scan being added (the forward FFT's output).
    var spectrumBuffers: [FloatStorage] = []
    /// The adding thread's loops that the reading thread joins once it has read its scan
    /// (set while `add(_:)` pipelines).
    var shared: SharedLoops?
    /// Whether the forward FFT of a shifted scan runs as frame and column passes (tests
    /// turn it off to compare with one 3D plan).
    nonisolated(unsafe) static var splitTransform = true

    /// Makes sure `n` half-spectrum buffers exist (called before any thread uses them).
    func ensureSpectrumBuffers(_ n: Int) {
        let h = RealFFTPlan.halfShape(of: stackShape).reduce(1, *)
        while spectrumBuffers.count < n { spectrumBuffers.append(FloatStorage(count: 2 * h)) }
    }
    var reports: [ScanReport] = []
    var firstSource: String?
    var referenceBox: RealVolume?
    /// The reference box's bad columns (y · box columns + x, through every frame), from the
    /// first scan's bad pixels.
    var referenceBad: [Int] = []
    /// Transforms of registration boxes.
    var fourier: BoxFourier?
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
    /// What the correction pass subtracts and multiplies by (0 and 1 when not given).
    let darkOrZero: RealVolume
    let flatOrOne: [Float]
    let fixedBad: [UInt8]
    /// Wall time spent in each stage so far (seconds), in first-use order.
    /// Wall time spent in each stage so far (seconds), and the CPU time of the thread that
    /// ran it (without the workers of its parallel loops), in first-use order.
    public private(set) var stageSeconds: [(stage: String, seconds: Double, threadCPU: Double)] = []

    let stageLock = NSLock()
    /// While a second thread reads the next scan, the parallel loops and the FFT of each
    /// side leave it one core.
    var pipelining = false
    var loopThreads: Int { pipelining ? max(1, Parallel.threads - 1) : Parallel.threads }

    /// Runs `body`, adding its wall time to `stage` (reading and processing threads both).
    @discardableResult
    func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds, c0 = threadCPUSeconds()
        defer {
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9, dc = threadCPUSeconds() - c0
            stageLock.lock()
            if let i = stageSeconds.firstIndex(where: { $0.stage == stage }) {
                stageSeconds[i].seconds += dt; stageSeconds[i].threadCPU += dc
            } else {
                stageSeconds.append((stage, dt, dc))
            }
            stageLock.unlock()
        }
        return try body()
    }

    /// CPU time of the calling thread (not of the workers of its parallel loops).
    func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

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
        darkOrZero = options.dark ?? RealVolume(shape: [rows * cols])
        flatOrOne = inverseFlat ?? [Float](repeating: 1, count: rows * cols)
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
        try process(try load(input, index: k, into: scan, progress: progress))
    }

    /// Adds `scans` (indices `firstIndex`…) in order, reading and correcting the next scan on
    /// a second thread while the current one is masked, registered and added: memory holds
    /// the running sum, the scan being added and the one being read. `progress(k, f)`: f
    /// frames of scan k read (called from the reading thread); `report` gets each scan's
    /// report as it is added. The first error (in scan order) is thrown, after the reading
    /// thread has stopped.
    public func add(_ scans: [Scan], firstIndex: Int = 0, progress: ((Int, Int) -> Void)? = nil,
                    report: ((ScanReport) -> Void)? = nil) throws {
        guard !scans.isEmpty else { return }
        if scans.count == 1 {
            let r = try add(scans[0], index: firstIndex) { progress?(firstIndex, $0) }
            report?(r)
            return
        }
        let second = spare ?? FloatStorage(count: frames * pix)
        spare = second
        let buffers = [scan, second]
        let reader = DispatchQueue(label: "BraggKit.Preparation.reader")
        pipelining = true
        defer { pipelining = false }
        let me = Unchecked(self), items = Unchecked(scans), onProgress = Unchecked(progress)
        var current = try load(scans[0], index: firstIndex, into: buffers[0]) { progress?(firstIndex, $0) }
        // The reading thread has less to do per scan than the adding one (whose forward FFT is
        // the largest single cost): once it has read the next scan, it joins the adding
        // thread's loops (frame FFTs, column FFTs with the phase ramp) until that step ends.
        let share = SharedLoops()
        shared = share
        defer { shared = nil }
        for j in 0..<scans.count {
            let next = ResultBox()
            let group = DispatchGroup()
            share.beginStep()
            if j + 1 < scans.count {
                let buffer = Unchecked(buffers[(j + 1) % 2]), k = firstIndex + j + 1
                reader.async(group: group) {
                    next.result = Result {
                        try me.value.load(items.value[j + 1], index: k, into: buffer.value,
                                          progress: { onProgress.value?(k, $0) }, cancelled: { next.cancelled })
                    }
                    if case .success = next.result {
                        me.value.timed("reader helps") { _ = share.help() }
                    }
                }
            }
            do {
                let r = try process(current)
                share.endStep()
                report?(r)
            } catch {
                next.cancelled = true
                share.endStep()
                group.wait()
                throw error
            }
            group.wait()
            if let n = next.result { current = try n.get() }
        }
        scan = buffers[0]
    }

    /// A scan read and corrected, waiting to be masked, registered and added.
    struct LoadedScan {
        let index: Int
        let source: String
        let data: FloatStorage
        var sum: [Float], high: [Float], low: [Float], badValue: [UInt8]
        /// Bad pixels (filled in `data`), their kinds, and the total counts.
        var badList: [Int] = [], hot = 0, dead = 0, other = 0
        var total = 0.0
        /// Registration and inclusion.
        var report: ScanReport?
    }

    /// Checks, reads and corrects one scan into `data` (frames × rows × columns), a block of
    /// frames at a time, then finds its bad pixels and fills them. Runs on the reading
    /// thread while another scan is processed: it touches only `data`, its own results and
    /// the hot pixels known so far (loads run one after another, in scan order; the
    /// monitor reference and first source are set by scan 0, loaded before the reading
    /// thread starts).
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
        let native = stack.nativeSampleType
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
                    if let raw { try stack.readNativeFrames(f0..<f1, into: raw) }
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

    /// Registers a loaded scan to the first one (on the adding thread, in scan order: the
    /// reference is the aligned sum of the boxes of the scans before), refills its bad
    /// voxels near the peak, grows the reference, and says whether the scan is included.
    func registerScan(_ loaded: LoadedScan) throws -> ScanReport {
        let data = loaded.data
        let k = loaded.index, source = loaded.source
        let (badList, hot, dead, other, total) = (loaded.badList, loaded.hot, loaded.dead, loaded.other, loaded.total)

        // 3. Registration to the first scan, on a box around its Bragg peak, against the
        //    aligned sum of the boxes of the scans before.
        var shift = [0.0, 0.0, 0.0]
        var correlation = 1.0
        let scanVolume = try RealVolume(shape: stackShape, storage: data)
        if referenceBox == nil {
            let peak = scanVolume.index(ofFlat: scanVolume.argmax())
            boxSize = stackShape.map { min($0, options.registrationBox) }
            boxStart = (0..<3).map { max(0, min(stackShape[$0] - boxSize[$0], peak[$0] - boxSize[$0] / 2)) }
            referenceBox = try scanVolume.cropped(start: boxStart, size: boxSize)
            referenceBad = boxColumns(badList)
        } else if let ref = referenceBox {
            let box = try scanVolume.cropped(start: boxStart, size: boxSize)
            // This scan's bad detector pixels inside the box (columns through every frame).
            let boxBad = boxColumns(badList)
            var boxSpectrum: FloatStorage?
            if options.register {
                let f = try boxFourier()
                let r = try timed("register") { try register(box, boxBad: boxBad, onto: ref, fourier: f) }
                shift = r.shift; correlation = r.correlation
                boxSpectrum = r.boxSpectrum
                if correlation >= options.minCorrelation && !badList.isEmpty {
                    try timed("refill") {
                        try refillFromReference(boxSpectrum: r.boxSpectrum, referenceSpectrum: r.referenceSpectrum,
                                                boxBad: boxBad, shift: shift, fourier: f, in: data)
                    }
                    if !boxBad.isEmpty { boxSpectrum = nil }   // the box was refilled
                }
            } else {
                correlation = pearson(box, ref)
            }
            if correlation >= options.minCorrelation {
                // The reference grows into the aligned sum of the boxes: later scans are
                // registered against less noise, still in the first scan's frame.
                var sum = referenceBox ?? ref
                try timed("reference sum") {
                    let filled = try scanVolume.cropped(start: boxStart, size: boxSize)
                    if shift.allSatisfy({ $0 == 0 }) {
                        try sum.add(filled)
                    } else {
                        let f = try boxFourier()
                        try sum.add(f.shifted(boxSpectrum ?? f.spectrum(filled), by: shift))
                    }
                }
                referenceBox = sum
            }
        }
        var report = ScanReport(index: k, source: source, shift: shift, correlation: correlation, included: true,
                                note: nil, hotPixels: hot, deadPixels: dead, otherBadPixels: other, totalCounts: total)
        if !(correlation >= options.minCorrelation) {
            report.included = false
            report.note = String(format: "its correlation with the scans before (registered to the first) is %.3f, below the threshold %.3f", correlation, options.minCorrelation)
        }
        return report
    }

    /// Adds a loaded and registered scan to the sum: shifted by the Fourier shift theorem
    /// (one real-to-complex FFT, a phase ramp, added to the half-spectrum sum), or as it is
    /// when its shift is zero.
    func process(_ loadedScan: LoadedScan) throws -> ScanReport {
        // Registration runs here, on the adding thread, not on the reading one: with
        // compressed files reading is the slower side, and the adding side's loops are
        // shared with the reading thread when it is the faster one.
        var loaded = loadedScan
        try Interruption.check()
        loaded.report = try registerScan(loaded)
        scan = loaded.data
        let report = loaded.report!
        guard report.included else {
            reports.append(report)
            return report
        }
        let shift = report.shift
        // 4. Shift and add.
        try Interruption.check()
        if shift.allSatisfy({ abs($0) < 1e-9 }) {
            let s = SendablePointer(scan.pointer), d = SendablePointer(realSum.pointer)
            Parallel.forEachChunk(frames * pix, threads: loopThreads) { r in for i in r { d.pointer[i] += s.pointer[i] } }
            hasRealSum = true
        } else {
            try addShifted(loaded, by: shift)
        }
        timed("mark bad") { markAlignedBad(loaded.badList, shift: shift) }
        reports.append(report)
        return report
    }

    /// The summed pattern, centred on the Bragg peak, cropped and binned.
    public func finish() throws -> PreparedPattern {
        var r = try timed("finish") { try finishSum().pattern(size: options.size) }
        r.stageSeconds = stageSeconds
        return r
    }

    /// The sum of every included scan, its Bragg peak and its bad voxels, before centring
    /// and cropping (`SummedStack.pattern(size:)` does those): a series of states takes
    /// every state's sum first, then crops all of them to one size. The accumulator's
    /// buffers go to the sum: add nothing after this.
    public func finishSum() throws -> SummedStack {
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
            spectrumBuffers = []
        } else {
            out = realSum
        }
        spare = nil
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
}

/// The sum of one state's scans (see `ScanAccumulator.finishSum`), waiting to be centred
/// and cropped.
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
        let (frames, rows, cols) = (stackShape[0], stackShape[1], stackShape[2])
        let centre = self.centre, sumVolume = sum, peak = self.peak
        var size = [0, 0, 0]
        for a in 0..<3 {
            if let s = options.size { size[a] = s[a]; continue }
            guard let n = Preparation.fittingSize(length: stackShape[a], peak: centre[a], bin: options.binning[a]) else {
                throw PreparationError.invalidOption("no crop of axis \(a) (length \(stackShape[a])) around the Bragg peak at \(centre[a]) is divisible by the binning \(options.binning[a]); give --size")
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

extension ScanAccumulator {

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

    /// Runs `body(i)` for i in 0..<count: shared with the reading thread while pipelining
    /// on two cores, spread over the loop threads otherwise.
    func chunkLoop(_ count: Int, _ body: @escaping (Int) -> Void) {
        if let s = shared, loopThreads == 1 { s.run(count, body) } else { Parallel.forEach(count, threads: loopThreads, body) }
    }

    /// Adds a scan, translated by `shift` (Fourier shift theorem), to the half-spectrum sum:
    /// sum += FFT(scan) · exp(−2πi q·s).
    ///
    /// The 3D real-to-complex FFT is done as its two passes, each a loop of independent
    /// chunks that the reading thread can join: 2D r2c FFTs of the frames into the
    /// half-spectrum buffer, then 1D FFTs along the frame axis in blocks of columns, each
    /// block phase-ramped and added to the sum while it is still in cache. (A frame shape
    /// whose planes would break FFTW's alignment falls back to one 3D plan.)
    func addShifted(_ loaded: LoadedScan, by shift: [Double]) throws {
        ensureSpectrumBuffers(1)
        let spec = spectrumBuffers[0]
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
        let hp = SendablePointer(inFrame.pointer), data = SendablePointer(loaded.data.pointer)
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
        guard ScanAccumulator.splitTransform && pix % 16 == 0 && plane % 8 == 0 else {
            let forward = try RealFFTPlan.plan(shape: stackShape, direction: .forward, threads: loopThreads)
            timed("forward FFT") { forward.execute(real: loaded.data.pointer, spectrum: spec.pointer) }
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

    /// The scan's bad pixels inside the registration box, as box columns (y · box columns
    /// + x; a column runs through every frame of the box).
    func boxColumns(_ list: [Int]) -> [Int] {
        var out: [Int] = []
        for i in list {
            let y = i / cols - boxStart[1], x = i % cols - boxStart[2]
            if y >= 0 && y < boxSize[1] && x >= 0 && x < boxSize[2] { out.append(y * boxSize[2] + x) }
        }
        return out
    }

    func boxFourier() throws -> BoxFourier {
        if let f = fourier { return f }
        let f = try BoxFourier(shape: boxSize)
        fourier = f
        return f
    }

    /// Sets the voxels of `columns` of box `v` to max(0, scale × the same voxels of `src`).
    func fill(_ v: inout RealVolume, columns: [Int], from src: RealVolume, scale: Float) {
        let fp = boxSize[1] * boxSize[2]
        v.withUnsafeMutableFloats { p in src.withUnsafeFloats { q in
            for c in columns { for z in 0..<boxSize[0] { p[z * fp + c] = max(0, q[z * fp + c] * scale) } }
        } }
    }

    /// Registration of a scan's box onto the reference box. Bad pixels sit at the same
    /// detector positions in every scan, so their neighbour-mean fill is a fixed pattern
    /// that pulls the shift towards zero: after a first estimate, the bad voxels of each
    /// box are replaced by the other box moved by the current shift (scaled to its
    /// counts), and the shift is estimated again at full precision. Also returns the half
    /// spectra of the two boxes as given (for the refill and the reference sum).
    func register(_ box: RealVolume, boxBad: [Int], onto ref: RealVolume, fourier f: BoxFourier) throws
        -> (shift: [Double], correlation: Double, boxSpectrum: FloatStorage, referenceSpectrum: FloatStorage) {
        let a = f.spectrum(ref), b = f.spectrum(box)
        let refBad = referenceRepaired ? [] : referenceBad
        if boxBad.isEmpty && refBad.isEmpty {
            let r = try f.upsampledShift(of: b, onto: a, upsampling: options.upsampling)
            return (r.shift, r.correlation, b, a)
        }
        // A first estimate to ~0.1 pixel (the integer peak and a parabola) is enough to fill
        // the bad voxels; then the full precision on the filled boxes.
        let first = try f.upsampledShift(of: b, onto: a, upsampling: options.upsampling, coarse: true)
        // Box sums: the zero frequencies.
        let scale = Double(b.pointer[0]) / max(Double(a.pointer[0]), 1e-30)
        var fb = b, fa = a
        if !boxBad.isEmpty {
            // moving(x) ≈ ref(x + s): the reference moved by −s stands in for the scan.
            var filled = box
            fill(&filled, columns: boxBad, from: f.shifted(a, by: first.shift.map { -$0 }), scale: Float(scale))
            fb = f.spectrum(filled)
        }
        if !refBad.isEmpty {
            var filled = ref
            fill(&filled, columns: refBad, from: f.shifted(b, by: first.shift), scale: Float(1 / scale))
            fa = f.spectrum(filled)
        }
        let r = try f.upsampledShift(of: fb, onto: fa, upsampling: options.upsampling)
        return (r.shift, r.correlation, b, a)
    }

    /// Near the Bragg peak a neighbour-mean fill is far off, and the Fourier shift would
    /// ring that error into good voxels. Inside the registration box, a shifted scan's bad
    /// voxels are therefore refilled with the reference moved onto the scan (scaled to the
    /// scan's counts). The reference's own bad voxels are first repaired, once, from the
    /// first scan registered with a shift of at least 1.5 pixels on the detector (so that
    /// its values there come from good pixels). Takes the half spectra of the scan's box
    /// and of the reference as they were registered.
    func refillFromReference(boxSpectrum b: FloatStorage, referenceSpectrum a: FloatStorage, boxBad: [Int],
                             shift: [Double], fourier f: BoxFourier, in data: FloatStorage) throws {
        guard var ref = referenceBox else { return }
        let scale = Double(b.pointer[0]) / max(Double(a.pointer[0]), 1e-30)
        var a = a
        if !referenceRepaired && max(abs(shift[1]), abs(shift[2])) >= 1.5 && !referenceBad.isEmpty {
            fill(&ref, columns: referenceBad, from: f.shifted(b, by: shift), scale: Float(1 / scale))
            referenceBox = ref
            referenceRepaired = true
            a = f.spectrum(ref)
        }
        guard !boxBad.isEmpty else { return }
        let refInScan = f.shifted(a, by: shift.map { -$0 })
        let fp = boxSize[1] * boxSize[2], bx = boxSize[2]
        refInScan.withUnsafeFloats { q in
            for c in boxBad {
                let y = c / bx, x = c % bx
                for z in 0..<boxSize[0] {
                    let v = max(0, q[z * fp + c] * Float(scale))
                    data.pointer[((z + boxStart[0]) * rows + y + boxStart[1]) * cols + x + boxStart[2]] = v
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

/// A value handed to the reading thread (the pipeline guarantees exclusive use).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// The outcome of loading the next scan on the reading thread.
final class ResultBox: @unchecked Sendable {
    var result: Result<ScanAccumulator.LoadedScan, Error>?
    private let lock = NSLock()
    private var _cancelled = false
    /// Set when processing failed: the reading thread stops at its next block.
    var cancelled: Bool {
        get { lock.lock(); defer { lock.unlock() }; return _cancelled }
        set { lock.lock(); _cancelled = newValue; lock.unlock() }
    }
}
