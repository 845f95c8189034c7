import COpenBLAS
import Foundation
import Numerics

/// A dense single-precision activation of one sample in CDHW order (batch 1: the network
/// trains sample by sample, which is what GroupNorm allows). Reference semantics: layers
/// reuse their output buffers from step to step, so a tensor is valid until the layer
/// that made it runs again.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    /// `package`, with `pointer`: the layers' kernels work on the raw buffer; users read
    /// and write through `values` and `volume(channel:)`.
    package let storage: FloatStorage
    public var count: Int { storage.count }
    package var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    /// Channels and voxels per channel.
    public var channels: Int { shape[0] }
    public var spatial: [Int] { Array(shape.dropFirst()) }
    public var voxelsPerChannel: Int { shape.dropFirst().reduce(1, *) }

    /// A tensor of zeros.
    public init(shape: [Int]) {
        self.shape = shape
        storage = FloatStorage(count: shape.reduce(1, *))
    }

    /// A tensor holding `values` (count must match).
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "\(values.count) values for tensor shape \(shape)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    /// A one-channel tensor from a real volume (shares no memory).
    public convenience init(_ v: RealVolume) {
        self.init(shape: [1] + v.shape)
        v.withUnsafeFloats { pointer.update(from: $0.baseAddress!, count: count) }
    }

    public var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Channel `c` as a real volume.
    public func volume(channel c: Int = 0) -> RealVolume {
        var v = RealVolume(shape: spatial)
        let n = voxelsPerChannel
        v.withUnsafeMutableFloats { $0.baseAddress!.update(from: pointer + c * n, count: n) }
        return v
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    /// Adds `other` (same shape) into this tensor.
    public func add(_ other: Tensor) {
        precondition(other.count == count, "adding tensors of shapes \(other.shape) and \(shape)")
        let a = pointer, b = other.pointer
        Parallel.forEachChunk(count, minChunk: 65_536) { r in
            for i in r { a[i] += b[i] }
        }
    }
}

/// A trainable array with its gradient (accumulated by `backward`) and a stable name
/// used in model files.
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let shape: [Int]
    /// `package`: the optimiser and layers update them in place; users go through `values`.
    package let value: FloatStorage
    package let grad: FloatStorage
    public var count: Int { value.count }

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        let n = shape.reduce(1, *)
        value = FloatStorage(count: n)
        grad = FloatStorage(count: n)
    }

    public func zeroGrad() { grad.pointer.update(repeating: 0, count: count) }

    public var values: [Float] {
        get { Array(UnsafeBufferPointer(start: value.pointer, count: count)) }
        set {
            precondition(newValue.count == count, "\(newValue.count) values for parameter \(name) of \(count)")
            newValue.withUnsafeBufferPointer { value.pointer.update(from: $0.baseAddress!, count: count) }
        }
    }
}

/// A small deterministic random generator (SplitMix64) so that initialisation and
/// training depend only on the seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A standard normal deviate (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(Double(next() >> 11) * 0x1p-53, 1e-300)
        let u2 = Double(next() >> 11) * 0x1p-53
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// Thread count used by OpenBLAS for this module's matrix products. Set explicitly:
/// OpenBLAS's own default (all cores, busy-waiting) fights our parallel loops.
public enum NeuralThreads {
    nonisolated(unsafe) private static var current: Int = -1
    private static let lock = NSLock()

    /// Makes OpenBLAS use `Parallel.threads` threads (called before each pass).
    public static func sync() {
        let t = Parallel.threads
        lock.lock(); defer { lock.unlock() }
        if t != current { openblas_set_num_threads(Int32(t)); current = t }
    }
}
