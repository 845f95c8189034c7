import CFFTW
import Foundation

/// A batch of equal complex-to-complex transforms (FFTW's "many" interface), in place:
/// `howmany` transforms of `shape`, elements `stride` complex values apart within one
/// transform, consecutive transforms `distance` apart. Executed at any base pointer whose
/// address is 64-byte aligned modulo the planning alignment (callers offset by multiples of
/// 8 complex values). Lets a caller split a 3D transform into plane and column passes and do
/// its own elementwise work while a plane or a slab is still in cache (the Phasing engine).
/// Unnormalised, as FFTW. Single-threaded: run several on disjoint data concurrently.
package final class FFTBatchPlan: @unchecked Sendable {
    public let shape: [Int]
    public let howmany: Int
    public let stride: Int
    public let distance: Int
    public let direction: FFTDirection
    let plan: fftwf_plan
    /// Complex elements from the first to one past the last touched.
    public let span: Int

    /// Called by `FFTPlanner.cached` only, with the planner lock held.
    init(shape: [Int], howmany: Int, stride: Int, distance: Int, direction: FFTDirection, effort: FFTEffort) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), howmany > 0, stride > 0, distance >= 0 else {
            throw NumericsError.invalidArgument("cannot plan a batch of \(howmany) FFTs of shape \(shape), stride \(stride), distance \(distance)")
        }
        self.shape = shape; self.howmany = howmany; self.stride = stride; self.distance = distance
        self.direction = direction
        let inner = shape.reduce(1, *)
        span = (inner - 1) * stride + (howmany - 1) * distance + 1
        // Planning with MEASURE overwrites its array: plan on scratch memory.
        let scratch = FloatStorage(count: 2 * span)
        var dims = shape.map { Int32($0) }
        // Row-major embedding: a transform of rank r with unit element step `stride`.
        var embed = dims
        FFTPlanner.initThreadsOnce()
        fftwf_plan_with_nthreads(1)
        let p = scratch.pointer.withMemoryRebound(to: fftwf_complex.self, capacity: span) { a in
            fftwf_plan_many_dft(Int32(shape.count), &dims, Int32(howmany), a, &embed, Int32(stride), Int32(distance),
                                a, &embed, Int32(stride), Int32(distance), direction.sign, effort.flags)
        }
        guard let p else {
            throw NumericsError.invalidArgument("FFTW could not plan a batch of \(howmany) FFTs of shape \(shape)")
        }
        plan = p
        FFTPlanner.planned(effort: effort)
    }

    deinit { FFTPlanner.destroy(plan) }

    /// Transforms the batch starting at `base` in place.
    @inlinable
    package func execute(_ base: UnsafeMutablePointer<Float>) { executeUnchecked(base) }

    @usableFromInline
    func executeUnchecked(_ base: UnsafeMutablePointer<Float>) {
        base.withMemoryRebound(to: fftwf_complex.self, capacity: span) { c in fftwf_execute_dft(plan, c, c) }
    }
}

extension FFTPlanner {
    /// A batch plan from the cache, made on first use (see `FFTBatchPlan`).
    package static func batchPlan(shape: [Int], howmany: Int, stride: Int, distance: Int, direction: FFTDirection,
                                 effort: FFTEffort? = nil) throws -> FFTBatchPlan {
        let e = effort ?? defaultEffort
        return try cached(.batch(shape: shape, howmany: howmany, stride: stride, distance: distance,
                                 forward: direction == .forward, effort: e)) {
            try FFTBatchPlan(shape: shape, howmany: howmany, stride: stride, distance: distance,
                             direction: direction, effort: e)
        }
    }
}
