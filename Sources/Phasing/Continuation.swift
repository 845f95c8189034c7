import Foundation
import Numerics

extension Phaser {
    /// Continues phase retrieval from a given object and support (both centred in the
    /// pattern's box, as `bragg phase --method neural` produces them) with `options.recipe`:
    /// one run, no random start, no free pixels withheld, post-processed like every run
    /// (centred, phase ramp removed, global phase zeroed). This is how a network's
    /// prediction is handed to the iterative engine (`--then "ER:50"`).
    public static func refine(_ data: PhasingData, from object: ComplexVolume, support: RealVolume,
                              options: PhasingOptions = PhasingOptions(), progress: ProgressHandler? = nil) throws -> PhasingResult {
        try options.validate()
        guard object.shape == data.shape, support.shape == data.shape else {
            throw PhasingError.invalidData("the starting object \(object.shape) and support \(support.shape) must have the pattern's shape \(data.shape)")
        }
        guard support.nonzeroCount() >= options.shrinkWrap.minimumVoxels else {
            throw PhasingError.invalidData("the starting support has only \(support.nonzeroCount()) voxel(s)")
        }
        let threads = max(1, options.threads ?? Parallel.threads)
        let tracker = ProgressTracker(runs: 1, total: options.recipe.totalIterations, concurrent: false, handler: progress)
        let engine = try PhasingEngine(data: data, support: support, threads: threads)
        object.ifftshifted().withUnsafeFloats { p in engine.start(from: p.baseAddress!) }
        var run = PhasingRunResult(index: 0, seed: options.seed)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try engine.run(recipe: options.recipe, shrinkWrap: options.shrinkWrap, reportEvery: options.reportEvery, runIndex: 0) { it, alg, chi2 in
            tracker.update(run: 0, iteration: it, algorithm: alg, chi2: chi2)
        }
        let metrics = engine.finalMetrics()
        run.metrics = metrics
        run.chi2History = engine.chi2History
        let framed = try PhasingPost.reportingFrame(object: engine.object, support: engine.supportVolume)
        let ramp = framed.ramp
        run.ramp = ramp; run.roll = framed.roll
        run.object = framed.object
        run.support = framed.support
        run.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        run.iterations = options.recipe.totalIterations
        tracker.finished(run: 0)
        var opts = options
        opts.runs = 1; opts.keep = 1; opts.freeFraction = 0
        var result = PhasingResult(object: run.object!, support: run.support!, runs: [run], kept: [0], spread: 0, twinned: [],
                                   ramp: ramp, metrics: metrics, recipe: options.recipe, options: opts)
        result.psf = run.psf
        return result
    }
}
