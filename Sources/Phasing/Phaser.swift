import Numerics
import Foundation

/// Which figure ranks the runs (lower is better for each).
public enum PhasingRankMetric: String, CaseIterable, Sendable {
    case chi2
    case llk
    case freeLLK = "free-llk"
}

/// Everything a phasing job needs besides the data.
public struct PhasingOptions: Sendable {
    public var recipe: Recipe = .standard
    /// Independent random starts, and how many of the best are aligned and averaged.
    public var runs = 1
    public var keep = 1
    public var seed: UInt64 = 1
    public var support: InitialSupport = .standard
    public var shrinkWrap = ShrinkWrapSchedule()
    /// Fraction of measured pixels withheld from the fit for the free log-likelihood
    /// (0 disables it; the issue asks for 3–5%).
    public var freeFraction = 0.04
    public var rankBy: PhasingRankMetric = .llk
    /// χ² is computed (one fused pass) every this many iterations and on the last.
    public var reportEvery = 10
    /// Threads in all (default `Parallel.threads`).
    public var threads: Int? = nil

    public init() {}

    func validate() throws {
        guard runs >= 1 else { throw PhasingError.invalidOption("--runs must be at least 1 (got \(runs))") }
        guard keep >= 1, keep <= runs else {
            throw PhasingError.invalidOption("--keep must be between 1 and --runs (\(runs)) (got \(keep))")
        }
        guard freeFraction >= 0, freeFraction <= 0.2 else {
            throw PhasingError.invalidOption("the free-pixel fraction must be in [0, 0.2] (got \(freeFraction))")
        }
        guard shrinkWrap.sigmaStart >= 0, shrinkWrap.sigmaEnd >= 0 else {
            throw PhasingError.invalidOption("shrink-wrap σ must be ≥ 0 (got \(shrinkWrap.sigmaStart) → \(shrinkWrap.sigmaEnd))")
        }
        if rankBy == .freeLLK && freeFraction == 0 {
            throw PhasingError.invalidOption("ranking by free-llk needs withheld pixels (a free fraction above 0)")
        }
    }
}

/// The outcome of one run.
public struct PhasingRunResult: Sendable {
    public var index: Int
    public var seed: UInt64
    /// Nil when the run stopped (support collapse or fill); `failure` says why.
    public var metrics: PhasingMetrics?
    public var failure: String?
    /// Centred, de-ramped object and its support (only kept for the best `keep` runs).
    public var object: ComplexVolume?
    public var support: RealVolume?
    /// Removed phase ramp (cycles per voxel, per axis) and the roll that centred it.
    public var ramp: [Double] = []
    public var roll: [Int] = []
    public var chi2History: [(iteration: Int, chi2: Double)] = []
    public var seconds: Double = 0
    /// The point-spread function the run ended with (nil: coherent).
    public var psf: PointSpreadFunction?

    func score(_ m: PhasingRankMetric) -> Double {
        guard let x = metrics else { return .infinity }
        let v: Double
        switch m { case .chi2: v = x.chi2; case .llk: v = x.llk; case .freeLLK: v = x.freeLLK }
        return v.isNaN ? .infinity : v
    }
}

/// The averaged reconstruction and what it came from.
public struct PhasingResult: Sendable {
    /// Average of the kept runs after alignment (centred, ramp removed, global phase 0).
    public var object: ComplexVolume
    public var support: RealVolume
    /// Every run, in run order (objects only on the kept ones).
    public var runs: [PhasingRunResult]
    /// Indices of the kept runs, best first.
    public var kept: [Int]
    /// RMS over kept runs of ‖ρₖ − ρ̄‖/‖ρ̄‖ after alignment (0 for one run).
    public var spread: Double
    /// Which kept runs were replaced by their twin to align.
    public var twinned: [Int]
    /// The removed phase ramp of the best run (cycles per voxel, z y x).
    public var ramp: [Double]
    /// Metrics of the averaged object against the data.
    public var metrics: PhasingMetrics
    public var recipe: Recipe
    public var options: PhasingOptions
}

/// Runs phase retrieval: `runs` seeded random starts (concurrently when there are more
/// runs than threads, each on one thread; else one after another on all threads),
/// ranked by a metric; the best `keep` are aligned (twin, sub-voxel shift, global
/// phase) and averaged.
public enum Phaser {
    public static func phase(_ data: PhasingData, options: PhasingOptions = PhasingOptions(),
                             progress: ProgressHandler? = nil) throws -> PhasingResult {
        try options.validate()
        let threads = max(1, options.threads ?? Parallel.threads)
        let support0 = try options.support.fftOrder(for: data, threads: threads)
        var voxels = 0
        for i in 0..<data.count where support0.pointer[i] != 0 { voxels += 1 }
        let fraction = Double(voxels) / Double(data.count)
        if voxels < options.shrinkWrap.minimumVoxels {
            throw PhasingError.invalidData("the initial support has only \(voxels) voxel(s); lower the autocorrelation threshold or give a larger box/sphere")
        }
        if fraction > options.shrinkWrap.maximumFraction {
            throw PhasingError.invalidData(String(format: "the initial support covers %.0f%% of the box, which leaves no real-space constraint; raise the autocorrelation threshold or give a box/sphere support (is the pattern oversampled?)", fraction * 100))
        }

        let K = options.runs
        let concurrent = K >= threads && threads > 1
        let workers = concurrent ? threads : 1
        let perRun = concurrent ? 1 : threads
        let total = options.recipe.totalIterations
        let collector = RunCollector(keep: options.keep, rankBy: options.rankBy, count: K)
        let tracker = ProgressTracker(runs: K, total: total, concurrent: concurrent, handler: progress)

        let body: @Sendable (Int) -> Void = { _ in
            while let k = collector.nextRun() {
                if Interruption.requested { return }
                let result = runOne(index: k, data: data, support: support0, options: options,
                                    threads: perRun, tracker: tracker)
                collector.finish(result)
            }
        }
        if workers > 1 {
            DispatchQueue.concurrentPerform(iterations: workers, execute: body)
        } else {
            body(0)
        }
        try Interruption.check()
        if let e = collector.fatalError { throw e }
        let runs = collector.results
        let ranked = runs.filter { $0.metrics != nil }.sorted { $0.score(options.rankBy) < $1.score(options.rankBy) }
        guard !ranked.isEmpty else {
            throw PhasingError.invalidData("all \(K) run(s) failed; the first: \(runs.first?.failure ?? "unknown")")
        }
        let keptRuns = Array(ranked.prefix(options.keep))
        progress?(ProgressReport(stage: "aligning \(keptRuns.count) best run(s)", done: 0, total: keptRuns.count))
        let reference = keptRuns[0].object!
        let support = keptRuns[0].support!
        var twinned: [Int] = []
        var spread = 0.0
        let average: ComplexVolume
        let avgMetrics: PhasingMetrics
        if keptRuns.count == 1 {
            // One run: the result is that run (no copy), with its own metrics.
            average = reference
            avgMetrics = keptRuns[0].metrics!
        } else {
            do {
                var sum = reference
                var aligned: [ComplexVolume] = [reference]
                for r in keptRuns.dropFirst() {
                    let a = try PhasingPost.align(r.object!, onto: reference)
                    if a.twinned { twinned.append(r.index) }
                    try sum.add(a.object)
                    aligned.append(a.object)
                }
                sum.scale(by: 1 / Float(aligned.count))
                let norm = sum.squaredNorm()
                for a in aligned { spread += try (a - sum).squaredNorm() / max(norm, 1e-300) }
                spread = (spread / Double(aligned.count)).squareRoot()
                average = PhasingPost.zeroingGlobalPhase(sum)
            }
            // Metrics of the average against all measured data (no free pixels withheld),
            // in the data's frame: the removed ramp put back (the modulus ignores shifts).
            let check = try PhasingEngine(data: data, support: support, threads: threads)
            // The same intensity model as the runs: the best run's point-spread function.
            if let psf = keptRuns[0].psf { try check.applyPSF(.fixed(psf)) }
            PhasingPost.removingRamp(average, ramp: keptRuns[0].ramp.map { -$0 }).ifftshifted()
                .withUnsafeFloats { p in check.start(from: p.baseAddress!) }
            avgMetrics = check.finalMetrics()
        }
        progress?(ProgressReport(stage: "aligning \(keptRuns.count) best run(s)", done: keptRuns.count, total: keptRuns.count))
        var outObject = average, outSupport = support
        if data.originalShape.count == 2 {
            outObject = try average.reshaped(data.originalShape)
            outSupport = try support.reshaped(data.originalShape)
        }
        return PhasingResult(object: outObject, support: outSupport, runs: runs, kept: keptRuns.map(\.index),
                             spread: spread, twinned: twinned, ramp: keptRuns[0].ramp,
                             metrics: avgMetrics, recipe: options.recipe, options: options)
    }

    /// One run from its seed to its centred, de-ramped object.
    static func runOne(index k: Int, data: PhasingData, support: FloatStorage, options: PhasingOptions,
                       threads: Int, tracker: ProgressTracker) -> PhasingRunResult {
        let seed = PhasingRNG.runSeed(options.seed, run: k)
        var result = PhasingRunResult(index: k, seed: seed)
        let t0 = DispatchTime.now().uptimeNanoseconds
        do {
            // The engine's arrays are released before post-processing (peak memory).
            let (object, supportVolume, m, history, psf) = try { () throws -> (ComplexVolume, RealVolume, PhasingMetrics, [(iteration: Int, chi2: Double)], PointSpreadFunction?) in
                let engine = try PhasingEngine(data: data, supportFFTOrder: support, threads: threads)
                var rng = PhasingRNG(seed: seed)
                engine.withholdFreePixels(fraction: options.freeFraction, rng: &rng)
                engine.randomStart(rng: &rng)
                try engine.run(recipe: options.recipe, shrinkWrap: options.shrinkWrap, reportEvery: options.reportEvery,
                               runIndex: k) { it, alg, chi2 in
                    tracker.update(run: k, iteration: it, algorithm: alg, chi2: chi2)
                }
                let m = engine.finalMetrics()
                return (engine.object, engine.supportVolume, m, engine.chi2History, engine.pointSpreadFunction)
            }()
            result.metrics = m
            result.psf = psf
            result.chi2History = history
            let framed = try PhasingPost.reportingFrame(object: object, support: supportVolume)
            result.ramp = framed.ramp
            result.roll = framed.roll
            result.object = framed.object
            result.support = framed.support
        } catch let e as PhasingError {
            result.failure = e.description
        } catch {
            result.failure = String(describing: error)
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        tracker.finished(run: k, result: result)
        return result
    }
}

/// Hands out run indices and keeps the results, holding objects only for the best `keep`.
final class RunCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private let count: Int
    private let keep: Int
    private let rankBy: PhasingRankMetric
    private var done: [PhasingRunResult] = []
    var fatalError: Error?

    init(keep: Int, rankBy: PhasingRankMetric, count: Int) { self.keep = keep; self.rankBy = rankBy; self.count = count }

    func nextRun() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    func finish(_ r: PhasingRunResult) {
        lock.lock(); defer { lock.unlock() }
        done.append(r)
        // Drop the objects of runs that can no longer be among the best `keep`.
        let ranked = done.filter { $0.object != nil }.sorted { $0.score(rankBy) < $1.score(rankBy) }
        let keepIdx = Set(ranked.prefix(keep).map(\.index))
        for j in done.indices where !keepIdx.contains(done[j].index) {
            done[j].object = nil; done[j].support = nil
        }
    }

    var results: [PhasingRunResult] {
        lock.lock(); defer { lock.unlock() }
        return done.sorted { $0.index < $1.index }
    }
}

/// Turns per-run iteration reports into progress reports for the handler.
final class ProgressTracker: @unchecked Sendable {
    private let lock = NSLock()
    private let runs: Int, total: Int, concurrent: Bool
    private let handler: ProgressHandler?
    private var doneByRun: [Int]

    init(runs: Int, total: Int, concurrent: Bool, handler: ProgressHandler?) {
        self.runs = runs; self.total = total; self.concurrent = concurrent; self.handler = handler
        doneByRun = [Int](repeating: 0, count: runs)
    }

    func update(run k: Int, iteration: Int, algorithm: PhasingAlgorithm, chi2: Double) {
        guard let handler else { return }
        lock.lock()
        doneByRun[k] = iteration
        let sum = doneByRun.reduce(0, +)
        lock.unlock()
        if concurrent {
            handler(ProgressReport(stage: "phasing \(runs) runs", done: sum, total: runs * total,
                                   metrics: [("run", Double(k + 1)), ("chi2", chi2)]))
        } else {
            handler(ProgressReport(stage: "run \(k + 1)/\(runs) \(algorithm.rawValue)", done: iteration, total: total,
                                   metrics: [("chi2", chi2)]))
        }
    }

    func finished(run k: Int, result: PhasingRunResult) {
        lock.lock(); doneByRun[k] = total; lock.unlock()
    }
}
