import CFFTW
import Foundation

/// A real-to-complex (forward) or complex-to-real (backward) FFTW plan, out of place.
/// A real array of `shape` (C order) corresponds to a half spectrum of shape
/// `halfShape` = shape with the last axis n → n/2 + 1 (interleaved complex), as numpy's
/// `rfftn`. Half the work and memory of the complex transform for real data (frame
/// stacks, intensities). Unnormalised in both directions; the backward transform
/// overwrites its input (FFTW's default for c2r).
public final class RealFFTPlan: @unchecked Sendable {
    public let shape: [Int]
    public let direction: FFTDirection
    public let threads: Int
    public let effort: FFTEffort
    let plan: fftwf_plan

    /// Number of real elements.
    public var count: Int { shape.reduce(1, *) }
    /// Shape of the half spectrum (complex elements).
    public var halfShape: [Int] { RealFFTPlan.halfShape(of: shape) }
    /// Number of complex elements of the half spectrum.
    public var halfCount: Int { halfShape.reduce(1, *) }

    public static func halfShape(of shape: [Int]) -> [Int] {
        var h = shape
        h[h.count - 1] = shape[shape.count - 1] / 2 + 1
        return h
    }

    /// Called by `FFTPlanner.cached` only, with the planner lock held.
    init(shape: [Int], direction: FFTDirection, threads: Int, effort: FFTEffort) throws {
        self.shape = shape; self.direction = direction; self.threads = threads; self.effort = effort
        let n = shape.reduce(1, *)
        let h = RealFFTPlan.halfShape(of: shape).reduce(1, *)
        // Planning with MEASURE overwrites its arrays: plan on scratch memory.
        let real = FloatStorage(count: n)
        let spec = FloatStorage(count: 2 * h)
        let dims = shape.map { Int32($0) }
        FFTPlanner.initThreadsOnce()
        fftwf_plan_with_nthreads(Int32(threads))
        let p = dims.withUnsafeBufferPointer { d -> fftwf_plan? in
            spec.pointer.withMemoryRebound(to: fftwf_complex.self, capacity: h) { pc in
                direction == .forward
                    ? fftwf_plan_dft_r2c(Int32(shape.count), d.baseAddress!, real.pointer, pc, effort.flags)
                    : fftwf_plan_dft_c2r(Int32(shape.count), d.baseAddress!, pc, real.pointer, effort.flags)
            }
        }
        guard let p else { throw NumericsError.invalidArgument("FFTW could not plan a real transform of shape \(shape)") }
        plan = p
        FFTPlanner.planned(effort: effort)
    }

    deinit { FFTPlanner.destroy(plan) }

    /// Forward: `real` (count Floats) → `spectrum` (2 × halfCount Floats).
    /// Backward: `spectrum` → `real` (the spectrum is overwritten).
    /// Both must be 64-byte aligned (Volume and FloatStorage memory is). Thread-safe.
    package func execute(real: UnsafeMutablePointer<Float>, spectrum: UnsafeMutablePointer<Float>) {
        let h = halfCount
        spectrum.withMemoryRebound(to: fftwf_complex.self, capacity: h) { c in
            if direction == .forward { fftwf_execute_dft_r2c(plan, real, c) }
            else { fftwf_execute_dft_c2r(plan, c, real) }
        }
    }

    /// A plan from the process's one cache (`FFTPlanner`), made on first use (threads and
    /// effort default as `FFTPlanner`'s).
    public static func plan(shape: [Int], direction: FFTDirection, threads: Int? = nil,
                            effort: FFTEffort? = nil) throws -> RealFFTPlan {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw NumericsError.invalidArgument("cannot plan a real FFT of shape \(shape)")
        }
        let t = threads ?? Parallel.threads, e = effort ?? FFTPlanner.defaultEffort
        return try FFTPlanner.cached(.real(shape: shape, forward: direction == .forward, threads: t, effort: e)) {
            try RealFFTPlan(shape: shape, direction: direction, threads: t, effort: e)
        }
    }
}
