import Foundation

/// Errors raised by the numerics layer. Library code throws; only `bragg` prints.
public enum NumericsError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .invalidArgument(let s): return s
        }
    }
}

/// A single-precision complex number with the memory layout of two Floats
/// (real, imaginary), the same as numpy's complex64 and FFTW's fftwf_complex.
public struct Complex32: Hashable, Sendable, CustomStringConvertible {
    public var re: Float
    public var im: Float
    @inlinable public init(_ re: Float, _ im: Float = 0) { self.re = re; self.im = im }
    @inlinable public init(modulus: Float, phase: Float) { re = modulus * cos(phase); im = modulus * sin(phase) }
    @inlinable public var modulus: Float { (re * re + im * im).squareRoot() }
    @inlinable public var phase: Float { atan2(im, re) }
    @inlinable public var conjugate: Complex32 { Complex32(re, -im) }
    @inlinable public static func + (a: Complex32, b: Complex32) -> Complex32 { Complex32(a.re + b.re, a.im + b.im) }
    @inlinable public static func - (a: Complex32, b: Complex32) -> Complex32 { Complex32(a.re - b.re, a.im - b.im) }
    @inlinable public static func * (a: Complex32, b: Complex32) -> Complex32 {
        Complex32(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
    }
    @inlinable public static func * (a: Complex32, s: Float) -> Complex32 { Complex32(a.re * s, a.im * s) }
    public var description: String { "(\(re)\(im < 0 ? "-" : "+")\(abs(im))i)" }
}

/// What a `Volume` can hold: a real Float or a Complex32, stored as 1 or 2 Floats.
public protocol VolumeScalar: Sendable {
    /// Number of Floats per element (1 real, 2 complex).
    static var components: Int { get }
    static var zero: Self { get }
    static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Self
    static func store(_ v: Self, _ p: UnsafeMutablePointer<Float>, _ i: Int)
}

extension Float: VolumeScalar {
    public static var components: Int { 1 }
    @inlinable public static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Float { p[i] }
    @inlinable public static func store(_ v: Float, _ p: UnsafeMutablePointer<Float>, _ i: Int) { p[i] = v }
}

extension Complex32: VolumeScalar {
    public static var components: Int { 2 }
    public static var zero: Complex32 { Complex32(0, 0) }
    @inlinable public static func load(_ p: UnsafePointer<Float>, _ i: Int) -> Complex32 {
        Complex32(p[2 &* i], p[2 &* i &+ 1])
    }
    @inlinable public static func store(_ v: Complex32, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        p[2 &* i] = v.re; p[2 &* i &+ 1] = v.im
    }
}

/// Heap storage for volume data: 64-byte aligned (AVX-512 and FFTW SIMD alignment),
/// zero-initialised. Shared between copies of a `Volume` until one of them writes.
/// `package`: it hands out its raw pointer, so only this package's modules see it
/// (users reach the data through `Volume`'s scoped `withUnsafeFloats` or `elements`).
@usableFromInline package final class FloatStorage: @unchecked Sendable {
    @usableFromInline package let count: Int
    @usableFromInline package let pointer: UnsafeMutablePointer<Float>

    package init(count: Int) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    @usableFromInline func copy() -> FloatStorage {
        let s = FloatStorage(count: count)
        s.pointer.update(from: pointer, count: count)
        return s
    }
}

/// An N-dimensional (usually 3D) array of real or complex single-precision values
/// in C order: for a 3D volume `(z, y, x)` = numpy's `(axis0, axis1, axis2)`,
/// the last index varying fastest. Value semantics with copy-on-write.
///
/// Bulk work goes through `withUnsafeFloats` / `withUnsafeMutableFloats`, which expose
/// the interleaved Float storage (complex values as (re, im) pairs).
public struct Volume<Element: VolumeScalar>: @unchecked Sendable {
    public private(set) var shape: [Int]
    @usableFromInline var storage: FloatStorage

    /// A volume of zeros.
    public init(shape: [Int]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 >= 0 }, "invalid shape \(shape)")
        self.shape = shape
        storage = FloatStorage(count: shape.reduce(1, *) * Element.components)
    }

    /// A volume from its elements in C order.
    public init(shape: [Int], elements: [Element]) throws {
        let n = shape.reduce(1, *)
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else {
            throw NumericsError.invalidArgument("invalid shape \(shape)")
        }
        guard elements.count == n else {
            throw NumericsError.shapeMismatch("\(elements.count) elements for shape \(shape)")
        }
        self.init(shape: shape)
        let p = storage.pointer
        for i in 0..<n { Element.store(elements[i], p, i) }
    }

    /// A volume filled with one value.
    public init(shape: [Int], repeating value: Element) {
        self.init(shape: shape)
        let p = storage.pointer
        for i in 0..<count { Element.store(value, p, i) }
    }

    /// A volume whose elements are computed from their C-order index.
    public init(shape: [Int], generator: (Int) -> Element) {
        self.init(shape: shape)
        let p = storage.pointer
        for i in 0..<count { Element.store(generator(i), p, i) }
    }

    /// Wraps storage that already holds `shape`'s elements (used by readers that fill
    /// a buffer in place, so that a large file is never held twice).
    package init(shape: [Int], storage: FloatStorage) throws {
        guard storage.count == shape.reduce(1, *) * Element.components else {
            throw NumericsError.shapeMismatch("storage of \(storage.count) floats for shape \(shape)")
        }
        self.shape = shape
        self.storage = storage
    }

    /// Number of elements.
    @inlinable public var count: Int { storage.count / Element.components }
    /// Number of Floats in storage (2 × count for complex data).
    @inlinable public var floatCount: Int { storage.count }
    public var rank: Int { shape.count }
    /// C-order strides in elements.
    public var strides: [Int] { Volume.strides(of: shape) }

    public static func strides(of shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for a in stride(from: shape.count - 1, through: 0, by: -1) { s[a] = acc; acc *= shape[a] }
        return s
    }

    @inlinable mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Read-only access to the interleaved Float storage.
    @inlinable public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// Mutable access to the interleaved Float storage (copies first if shared).
    @inlinable public mutating func withUnsafeMutableFloats<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// The elements as an array, in C order.
    public var elements: [Element] {
        let p = storage.pointer
        return (0..<count).map { Element.load(p, $0) }
    }

    /// The raw Float storage as an array (complex data interleaved).
    public var floats: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: storage.count)) }

    /// Element at a flat C-order index.
    public subscript(flat i: Int) -> Element {
        get { precondition(i >= 0 && i < count, "index out of range"); return Element.load(storage.pointer, i) }
        set { precondition(i >= 0 && i < count, "index out of range"); makeUnique(); Element.store(newValue, storage.pointer, i) }
    }

    /// Element at a multi-index (one per axis).
    public subscript(_ index: Int...) -> Element {
        get { self[flat: flatIndex(index)] }
        set { self[flat: flatIndex(index)] = newValue }
    }

    public func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "expected \(shape.count) indices, got \(index.count)")
        var f = 0
        for a in 0..<shape.count {
            precondition(index[a] >= 0 && index[a] < shape[a], "index \(index) out of range for shape \(shape)")
            f = f * shape[a] + index[a]
        }
        return f
    }

    /// The same data with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Volume {
        guard newShape.reduce(1, *) == count, !newShape.isEmpty else {
            throw NumericsError.shapeMismatch("cannot reshape \(shape) to \(newShape)")
        }
        var v = self
        v.shape = newShape
        return v
    }

    /// Applies `f` to every element (serial; for bulk maths use the pointer API).
    public func map<T: VolumeScalar>(_ f: (Element) -> T) -> Volume<T> {
        var out = Volume<T>(shape: shape)
        let p = storage.pointer
        out.withUnsafeMutableFloats { o in
            for i in 0..<count { T.store(f(Element.load(p, i)), o.baseAddress!, i) }
        }
        return out
    }
}

public typealias RealVolume = Volume<Float>
public typealias ComplexVolume = Volume<Complex32>

extension Volume: Equatable where Element: Equatable {
    public static func == (a: Volume, b: Volume) -> Bool {
        guard a.shape == b.shape else { return false }
        return a.withUnsafeFloats { pa in b.withUnsafeFloats { pb in
            for i in 0..<pa.count where pa[i] != pb[i] { return false }
            return true
        } }
    }
}

extension Volume: CustomStringConvertible {
    public var description: String {
        "Volume<\(Element.self)>(shape: \(shape))"
    }
}
