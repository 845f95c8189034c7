import Foundation

/// Data-parallel loops over index ranges, used by every hot loop in BraggKit.
public enum Parallel {
    nonisolated(unsafe) private static var _threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    private static let lock = NSLock()

    /// Number of worker threads used by parallel loops and, by default, by the FFT.
    /// Defaults to the number of active cores.
    public static var threads: Int {
        get { lock.lock(); defer { lock.unlock() }; return _threads }
        set { lock.lock(); _threads = max(1, newValue); lock.unlock() }
    }

    /// Splits `0..<count` into at most `threads` contiguous chunks of at least `minChunk`
    /// indices and runs `body` on each chunk, concurrently when there is more than one.
    @inlinable
    public static func forEachChunk(_ count: Int, minChunk: Int = 32_768, threads: Int? = nil,
                                    _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let t = min(threads ?? Parallel.threads, max(1, count / max(1, minChunk)))
        if t <= 1 { body(0..<count); return }
        let chunk = (count + t - 1) / t
        withoutActuallyEscaping(body) { b in
            DispatchQueue.concurrentPerform(iterations: t) { k in
                let lo = k * chunk
                let hi = min(count, lo + chunk)
                if lo < hi { b(lo..<hi) }
            }
        }
    }

    /// Runs `body(i)` for i in 0..<count, spread over the worker threads.
    @inlinable
    public static func forEach(_ count: Int, threads: Int? = nil, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let t = min(threads ?? Parallel.threads, count)
        if t <= 1 { for i in 0..<count { body(i) }; return }
        withoutActuallyEscaping(body) { b in
            DispatchQueue.concurrentPerform(iterations: count) { i in b(i) }
        }
    }

    /// Sums a Double-valued function of chunks, reduced in a fixed order so the result
    /// does not depend on scheduling.
    @inlinable
    public static func sum(_ count: Int, minChunk: Int = 32_768, _ body: (Range<Int>) -> Double) -> Double {
        guard count > 0 else { return 0 }
        let t = min(Parallel.threads, max(1, count / max(1, minChunk)))
        if t <= 1 { return body(0..<count) }
        let chunk = (count + t - 1) / t
        var partial = [Double](repeating: 0, count: t)
        partial.withUnsafeMutableBufferPointer { pp in
            let out = SendablePointer(pp.baseAddress!)
            withoutActuallyEscaping(body) { b in
                DispatchQueue.concurrentPerform(iterations: t) { k in
                    let lo = k * chunk, hi = min(count, lo + chunk)
                    out.pointer[k] = lo < hi ? b(lo..<hi) : 0
                }
            }
        }
        return partial.reduce(0, +)
    }
}

/// A raw pointer that may cross into concurrent closures. The caller guarantees
/// that concurrent users touch disjoint elements. `package`: a helper of this package's
/// parallel loops, not part of the library's API.
@usableFromInline package struct SendablePointer<T>: @unchecked Sendable {
    @usableFromInline package let pointer: UnsafeMutablePointer<T>
    @inlinable package init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}
