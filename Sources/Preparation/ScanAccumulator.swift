import Foundation
import Numerics

/// Streams rocking scans into one summed, registered intensity: the thread pipeline that
/// owns the three stages of a preparation, each in its own type —
/// loading (`ScanLoader`: read, correct, find and fill bad pixels), registration
/// (`ScanRegistration`: shift onto the first scan, leave out what does not correlate) and
/// accumulation (`ScanSum`: Fourier-shift and add, mask, and at the end centre, crop, bin).
/// Memory holds the running sum, one scan and one scan's spectrum (two scans while a
/// second thread reads the next): about four to five scans' worth of Floats, whatever the
/// number of scans.
///
/// Threads: in `add(_ scans:)` the reading thread runs only the loader (loads one after
/// another, in scan order, each into the scan buffer the adding thread is not using); the
/// adding thread runs registration and accumulation. The stages share only the
/// `StageRuntime` (a locked timing record, and loops the reading thread may join).
public final class ScanAccumulator {
    public let stackShape: [Int]
    public let options: PreparationOptions
    let loader: ScanLoader
    let registration: ScanRegistration
    let sum: ScanSum
    let runtime = StageRuntime()
    /// The scan being processed (one of two buffers when reading overlaps processing).
    var scan: FloatStorage
    var spare: FloatStorage?
    var reports: [ScanReport] = []

    /// Wall time spent in each stage so far (seconds), and the CPU time of the thread that
    /// ran it (without the workers of its parallel loops), in first-use order.
    public var stageSeconds: [(stage: String, seconds: Double, threadCPU: Double)] { runtime.record }

    public init(stackShape: [Int], options: PreparationOptions = PreparationOptions()) throws {
        guard stackShape.count == 3, stackShape.allSatisfy({ $0 > 0 }) else {
            throw PreparationError.invalidOption("a frame stack needs 3 non-empty axes (got \(stackShape))")
        }
        self.stackShape = stackShape
        self.options = options
        loader = try ScanLoader(stackShape: stackShape, options: options, runtime: runtime)
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
        registration = ScanRegistration(stackShape: stackShape, options: options, runtime: runtime)
        scan = FloatStorage(count: stackShape.reduce(1, *))
        sum = ScanSum(stackShape: stackShape, options: options, runtime: runtime)
    }

    /// Reads, corrects, masks, registers and adds one scan. `progress` gets the number of
    /// this scan's frames read so far. A scan that does not correlate with the first is
    /// left out (the report says so); bad input throws `PreparationError`.
    @discardableResult
    public func add(_ input: Scan, index k: Int, progress: ((Int) -> Void)? = nil) throws -> ScanReport {
        try process(try loader.load(input, index: k, into: scan, progress: progress))
    }

    /// Adds `scans` (indices `firstIndex`…) in order, reading and correcting the next scan on
    /// a second thread while the current one is registered and added. `progress(k, f)`: f
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
        let second = spare ?? FloatStorage(count: scan.count)
        spare = second
        let buffers = [scan, second]
        let reader = DispatchQueue(label: "BraggKit.Preparation.reader")
        runtime.pipelining = true
        defer { runtime.pipelining = false }
        let load = Unchecked(loader), runtime = self.runtime
        let items = Unchecked(scans), onProgress = Unchecked(progress)
        var current = try loader.load(scans[0], index: firstIndex, into: buffers[0]) { progress?(firstIndex, $0) }
        // The reading thread has less to do per scan than the adding one (whose forward FFT is
        // the largest single cost): once it has read the next scan, it joins the adding
        // thread's loops (frame FFTs, column FFTs with the phase ramp) until that step ends.
        let share = SharedLoops()
        runtime.shared = share
        defer { runtime.shared = nil }
        for j in 0..<scans.count {
            let next = ResultBox()
            let group = DispatchGroup()
            share.beginStep()
            if j + 1 < scans.count {
                let buffer = Unchecked(buffers[(j + 1) % 2]), k = firstIndex + j + 1
                reader.async(group: group) {
                    next.result = Result {
                        try load.value.load(items.value[j + 1], index: k, into: buffer.value,
                                            progress: { onProgress.value?(k, $0) }, cancelled: { next.cancelled })
                    }
                    if case .success = next.result {
                        runtime.timed("reader helps") { _ = share.help() }
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

    /// Registers a loaded scan and adds it to the sum, or leaves it out. Registration runs
    /// here, on the adding thread, not on the reading one: with compressed files reading is
    /// the slower side, and the adding side's loops are shared with the reading thread when
    /// it is the faster one.
    func process(_ loaded: LoadedScan) throws -> ScanReport {
        try Interruption.check()
        let report = try registration.register(loaded)
        scan = loaded.data
        guard report.included else {
            reports.append(report)
            return report
        }
        try Interruption.check()
        try sum.add(loaded.data, shift: report.shift, badList: loaded.badList)
        reports.append(report)
        return report
    }

    /// The summed pattern, centred on the Bragg peak, cropped and binned.
    public func finish() throws -> PreparedPattern {
        var r = try runtime.timed("finish") { try finishSum().pattern(size: options.size) }
        r.stageSeconds = runtime.record
        return r
    }

    /// The sum of every included scan, its Bragg peak and its bad voxels, before centring
    /// and cropping (`SummedStack.pattern(size:)` does those). The accumulator's buffers go
    /// to the sum: add nothing after this.
    public func finishSum() throws -> SummedStack {
        spare = nil
        return try sum.summed(reports: reports, knownBad: loader.knownBad, buffer: scan)
    }
}

/// What the stages of one preparation share: the record of their wall and CPU times, and
/// how many cores their loops may take. While a second thread reads the next scan
/// (`pipelining`) each side's loops leave it one core, and the adding side's loops are
/// posted to `shared`, where the reading thread joins them once its scan is read. The
/// pipeline sets `pipelining` and `shared` before the reading thread starts and clears
/// them after it has stopped; the timing record is locked.
final class StageRuntime: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: [(stage: String, seconds: Double, threadCPU: Double)] = []
    var pipelining = false
    var shared: SharedLoops?

    var loopThreads: Int { pipelining ? max(1, Parallel.threads - 1) : Parallel.threads }

    var record: [(stage: String, seconds: Double, threadCPU: Double)] {
        lock.lock(); defer { lock.unlock() }
        return seconds
    }

    /// Runs `body`, adding its wall time to `stage` (reading and processing threads both).
    @discardableResult
    func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds, c0 = threadCPUSeconds()
        defer {
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9, dc = threadCPUSeconds() - c0
            lock.lock()
            if let i = seconds.firstIndex(where: { $0.stage == stage }) {
                seconds[i].seconds += dt; seconds[i].threadCPU += dc
            } else {
                seconds.append((stage, dt, dc))
            }
            lock.unlock()
        }
        return try body()
    }

    /// CPU time of the calling thread (not of the workers of its parallel loops).
    func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Runs `body(i)` for i in 0..<count: shared with the reading thread while pipelining
    /// on two cores, spread over the loop threads otherwise.
    func chunkLoop(_ count: Int, _ body: @escaping (Int) -> Void) {
        if let s = shared, loopThreads == 1 { s.run(count, body) } else { Parallel.forEach(count, threads: loopThreads, body) }
    }
}

/// A value handed to the reading thread (the pipeline guarantees exclusive use).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// The outcome of loading the next scan on the reading thread.
final class ResultBox: @unchecked Sendable {
    var result: Result<LoadedScan, Error>?
    private let lock = NSLock()
    private var _cancelled = false
    /// Set when processing failed: the reading thread stops at its next block.
    var cancelled: Bool {
        get { lock.lock(); defer { lock.unlock() }; return _cancelled }
        set { lock.lock(); _cancelled = newValue; lock.unlock() }
    }
}
