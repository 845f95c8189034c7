import Foundation
import Numerics

/// An array as it lies in a file: element type, shape, and the elements as raw
/// little-endian bytes in C order. `bragg convert` moves these between formats so
/// dtype, shape and values survive exactly; `realVolume()` / `complexVolume()` turn
/// them into the single-precision volumes the pipeline computes with.
public struct NDArray: Equatable, @unchecked Sendable {
    public var dtype: DType
    /// C-order shape; empty for a 0-d (scalar) array.
    public var shape: [Int]
    /// count × dtype.itemSize bytes, little-endian, C order.
    public var data: Data

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.itemSize }

    public init(dtype: DType, shape: [Int], data: Data) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw FormatError.wrongShape(path: "(memory)", dataset: nil, reason: "has a negative extent in shape \(shape)")
        }
        guard data.count == shape.reduce(1, *) * dtype.itemSize else {
            throw FormatError.wrongShape(path: "(memory)", dataset: nil,
                                         reason: "has \(data.count) bytes but shape \(shape) of \(dtype) needs \(shape.reduce(1, *) * dtype.itemSize)")
        }
        self.dtype = dtype; self.shape = shape; self.data = data
    }

    /// A zero-filled array.
    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype; self.shape = shape
        data = Data(count: shape.reduce(1, *) * dtype.itemSize)
    }

    /// float32 copy of a real volume.
    public init(_ v: RealVolume) {
        dtype = .float32; shape = v.shape
        data = v.withUnsafeFloats { Data(buffer: $0) }
    }

    /// complex64 copy of a complex volume.
    public init(_ v: ComplexVolume) {
        dtype = .complex64; shape = v.shape
        data = v.withUnsafeFloats { Data(buffer: $0) }
    }

    /// An array from Swift values (float64 for Double, int64 for Int, float32 for Float…).
    public init(_ values: [Double], shape: [Int]? = nil) {
        dtype = .float64; self.shape = shape ?? [values.count]
        data = values.withUnsafeBufferPointer { Data(buffer: $0) }
    }
    public init(_ values: [Float], shape: [Int]? = nil) {
        dtype = .float32; self.shape = shape ?? [values.count]
        data = values.withUnsafeBufferPointer { Data(buffer: $0) }
    }
    public init(_ values: [Int], shape: [Int]? = nil) {
        dtype = .int64; self.shape = shape ?? [values.count]
        data = values.map { Int64($0) }.withUnsafeBufferPointer { Data(buffer: $0) }
    }
    public init(_ values: [UInt8], dtype: DType = .uint8, shape: [Int]? = nil) {
        self.dtype = dtype; self.shape = shape ?? [values.count]
        data = Data(values)
    }

    /// The shape a Volume gets: a 0-d array becomes shape [1].
    var volumeShape: [Int] { shape.isEmpty ? [1] : shape }

    /// The values as a single-precision real volume. Integer and float64 values are
    /// rounded to Float; complex arrays are refused (ask for `complexVolume()`).
    public func realVolume(source: String = "(memory)", dataset: String? = nil) throws -> RealVolume {
        if dtype.isComplex {
            throw FormatError.wrongShape(path: source, dataset: dataset,
                                         reason: "is complex (\(dtype)); a real array was expected (take its modulus or phase first)")
        }
        let storage = FloatStorage(count: count)
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            ElementCodec.decode(base, dtype: dtype, count: count, swap: false, into: storage.pointer, complexOut: false)
        }
        return try RealVolume(shape: volumeShape, storage: storage)
    }

    /// The values as a complex64 volume. Real arrays get a zero imaginary part, except when
    /// `trailingPairs` is true and the last axis has length 2: then that axis holds (re, im).
    public func complexVolume(trailingPairs: Bool = false, source: String = "(memory)",
                              dataset: String? = nil) throws -> ComplexVolume {
        if trailingPairs && !dtype.isComplex && shape.count >= 2 && shape.last == 2 {
            let n = count / 2
            let storage = FloatStorage(count: 2 * n)
            data.withUnsafeBytes { raw in
                ElementCodec.decode(raw.baseAddress!, dtype: dtype, count: 2 * n, swap: false,
                                    into: storage.pointer, complexOut: false)
            }
            return try ComplexVolume(shape: Array(shape.dropLast()), storage: storage)
        }
        let storage = FloatStorage(count: 2 * count)
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            ElementCodec.decode(base, dtype: dtype, count: count, swap: false, into: storage.pointer, complexOut: true)
        }
        return try ComplexVolume(shape: volumeShape, storage: storage)
    }

    /// Values as Doubles (real part for complex types); for small arrays (attributes, curves).
    public func doubles() -> [Double] {
        var out = [Double](repeating: 0, count: count)
        data.withUnsafeBytes { raw in
            guard let p = raw.baseAddress else { return }
            let s = dtype.itemSize
            for i in 0..<count { out[i] = NDArray.double(p, i * s, dtype) }
        }
        return out
    }

    @inline(__always)
    static func double(_ p: UnsafeRawPointer, _ off: Int, _ dtype: DType) -> Double {
        switch dtype {
        case .bool: return p.load(fromByteOffset: off, as: UInt8.self) != 0 ? 1 : 0
        case .uint8: return Double(p.load(fromByteOffset: off, as: UInt8.self))
        case .int8: return Double(p.load(fromByteOffset: off, as: Int8.self))
        case .int16: return Double(p.loadUnaligned(fromByteOffset: off, as: Int16.self))
        case .uint16: return Double(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
        case .int32: return Double(p.loadUnaligned(fromByteOffset: off, as: Int32.self))
        case .uint32: return Double(p.loadUnaligned(fromByteOffset: off, as: UInt32.self))
        case .int64: return Double(p.loadUnaligned(fromByteOffset: off, as: Int64.self))
        case .uint64: return Double(p.loadUnaligned(fromByteOffset: off, as: UInt64.self))
        case .float32, .complex64: return Double(p.loadUnaligned(fromByteOffset: off, as: Float.self))
        case .float64, .complex128: return p.loadUnaligned(fromByteOffset: off, as: Double.self)
        }
    }

    /// Statistics of the values (modulus for complex arrays).
    public func statistics() -> ArrayStatistics {
        var s = ArrayStatistics(dtype: dtype)
        data.withUnsafeBytes { raw in
            if let p = raw.baseAddress { s.accumulate(p, count: count) }
        }
        return s
    }

    /// Rearranges Fortran-order data (first index fastest) of shape `shape` into C order.
    static func fortranToC(_ src: Data, shape: [Int], itemSize: Int) -> Data {
        let n = shape.reduce(1, *)
        guard shape.count > 1, n > 0 else { return src }
        var out = Data(count: src.count)
        let r = shape.count
        var fstride = [Int](repeating: 1, count: r)
        for k in 1..<r { fstride[k] = fstride[k - 1] * shape[k - 1] }
        src.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { d in
                let sp = s.baseAddress!, dp = d.baseAddress!
                // Inner loop along the last (C-fastest) axis, whose Fortran stride is largest.
                let inner = shape[r - 1], innerStride = fstride[r - 1] * itemSize
                var idx = [Int](repeating: 0, count: r - 1)
                var outOff = 0
                let rows = n / inner
                for _ in 0..<rows {
                    var off = 0
                    for k in 0..<(r - 1) { off += idx[k] * fstride[k] }
                    off *= itemSize
                    switch itemSize {
                    case 4:
                        for j in 0..<inner {
                            dp.storeBytes(of: sp.loadUnaligned(fromByteOffset: off + j * innerStride, as: UInt32.self),
                                          toByteOffset: outOff + 4 * j, as: UInt32.self)
                        }
                    case 8:
                        for j in 0..<inner {
                            dp.storeBytes(of: sp.loadUnaligned(fromByteOffset: off + j * innerStride, as: UInt64.self),
                                          toByteOffset: outOff + 8 * j, as: UInt64.self)
                        }
                    default:
                        for j in 0..<inner {
                            (dp + outOff + itemSize * j).copyMemory(from: sp + off + j * innerStride, byteCount: itemSize)
                        }
                    }
                    outOff += inner * itemSize
                    // Odometer over the leading axes, last of them fastest.
                    var k = r - 2
                    while k >= 0 {
                        idx[k] += 1
                        if idx[k] < shape[k] { break }
                        idx[k] = 0; k -= 1
                    }
                }
            }
        }
        return out
    }
}

/// Min, max, mean, NaN count and zero count of an array, accumulated in Double over
/// as many chunks as the reader delivers (so large files can be streamed).
public struct ArrayStatistics: Sendable, Equatable {
    public let dtype: DType
    public private(set) var count = 0
    public private(set) var minimum = Double.infinity
    public private(set) var maximum = -Double.infinity
    public private(set) var sum = 0.0
    public private(set) var nanCount = 0
    public private(set) var infCount = 0
    public private(set) var zeroCount = 0

    public init(dtype: DType) { self.dtype = dtype }

    /// Mean of the finite values (modulus for complex arrays).
    public var mean: Double {
        let finite = count - nanCount - infCount
        return finite > 0 ? sum / Double(finite) : .nan
    }

    /// Adds `n` little-endian elements of `dtype` starting at `p`. `package`: the readers
    /// of this package stream their chunks through it.
    package mutating func accumulate(_ p: UnsafeRawPointer, count n: Int) {
        var lo = minimum, hi = maximum, s = 0.0, nan = 0, inf = 0, zero = 0
        switch dtype {
        case .float32:
            let f = p.assumingMemoryBound(to: Float.self)
            var cs = 0.0
            for i in 0..<n {
                let v = f[i]
                if v.isNaN { nan &+= 1; continue }
                if v.isInfinite { inf &+= 1 } else { cs += Double(v) }
                if v == 0 { zero &+= 1 }
                let d = Double(v)
                if d < lo { lo = d }
                if d > hi { hi = d }
                // Flush partial sums every 4096 values so Double keeps full precision cheaply.
                if i & 4095 == 4095 { s += cs; cs = 0 }
            }
            s += cs
        case .complex64, .complex128:
            let dbl = dtype == .complex128
            for i in 0..<n {
                let re: Double, im: Double
                if dbl {
                    re = p.loadUnaligned(fromByteOffset: 16 * i, as: Double.self)
                    im = p.loadUnaligned(fromByteOffset: 16 * i + 8, as: Double.self)
                } else {
                    re = Double(p.loadUnaligned(fromByteOffset: 8 * i, as: Float.self))
                    im = Double(p.loadUnaligned(fromByteOffset: 8 * i + 4, as: Float.self))
                }
                if re.isNaN || im.isNaN { nan &+= 1; continue }
                if re == 0 && im == 0 { zero &+= 1 }
                let m = (re * re + im * im).squareRoot()
                if m.isInfinite { inf &+= 1 } else { s += m }
                if m < lo { lo = m }
                if m > hi { hi = m }
            }
        default:
            let size = dtype.itemSize
            for i in 0..<n {
                let v = NDArray.double(p, i &* size, dtype)
                if v.isNaN { nan &+= 1; continue }
                if v.isInfinite { inf &+= 1 } else { s += v }
                if v == 0 { zero &+= 1 }
                if v < lo { lo = v }
                if v > hi { hi = v }
            }
        }
        minimum = lo; maximum = hi; sum += s
        nanCount += nan; infCount += inf; zeroCount += zero; count += n
    }
}
