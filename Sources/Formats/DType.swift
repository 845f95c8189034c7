import Foundation

/// Element types of arrays on disk, named as numpy names them.
public enum DType: String, CaseIterable, Sendable {
    case bool, uint8, int8, int16, uint16, int32, uint32, int64, uint64
    case float32, float64, complex64, complex128

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64, .complex64: return 8
        case .complex128: return 16
        }
    }

    public var isComplex: Bool { self == .complex64 || self == .complex128 }
    public var isFloatingPoint: Bool { self == .float32 || self == .float64 || isComplex }
    public var isSignedInteger: Bool { self == .int8 || self == .int16 || self == .int32 || self == .int64 }
    /// Bytes of one scalar component (the real part for complex types).
    public var componentSize: Int { isComplex ? itemSize / 2 : itemSize }

    /// numpy's little-endian type string ('<f4', '|u1', …).
    public var npyDescr: String {
        switch self {
        case .bool: return "|b1"
        case .uint8: return "|u1"
        case .int8: return "|i1"
        case .int16: return "<i2"
        case .uint16: return "<u2"
        case .int32: return "<i4"
        case .uint32: return "<u4"
        case .int64: return "<i8"
        case .uint64: return "<u8"
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .complex64: return "<c8"
        case .complex128: return "<c16"
        }
    }

    /// Parses a numpy type string. Returns nil for types outside this enum (float16,
    /// strings, structured types…). `bigEndian` is true for '>' types of more than one byte.
    public static func fromNPY(_ descr: String) -> (dtype: DType, bigEndian: Bool)? {
        var s = Substring(descr)
        var big = false
        if let c = s.first, "<>|=".contains(c) { big = (c == ">"); s = s.dropFirst() }
        let kind = s.first
        guard let k = kind, let size = Int(s.dropFirst()) else { return nil }
        let t: DType?
        switch (k, size) {
        case ("b", 1), ("?", 1): t = .bool
        case ("u", 1): t = .uint8
        case ("i", 1): t = .int8
        case ("i", 2): t = .int16
        case ("u", 2): t = .uint16
        case ("i", 4): t = .int32
        case ("u", 4): t = .uint32
        case ("i", 8): t = .int64
        case ("u", 8): t = .uint64
        case ("f", 4): t = .float32
        case ("f", 8): t = .float64
        case ("c", 8): t = .complex64
        case ("c", 16): t = .complex128
        default: t = nil
        }
        guard let dt = t else { return nil }
        return (dt, big && dt.itemSize > 1)
    }
}

/// Element conversion kernels from raw little- or big-endian bytes. Every reader funnels
/// through these, so each dtype is decoded in one place.
enum ElementCodec {
    @inline(__always)
    static func int<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ off: Int, _: T.Type, _ swap: Bool) -> T {
        let v = p.loadUnaligned(fromByteOffset: off, as: T.self)
        return swap ? v.byteSwapped : v
    }

    /// Decodes `count` elements of `dtype` at `src` into Floats at `dst`: one Float per element
    /// for real output, (re, im) pairs when `complexOut` (real inputs get a zero imaginary part).
    /// Complex input with real output is a caller error (checked before).
    static func decode(_ src: UnsafeRawPointer, dtype: DType, count n: Int, swap: Bool,
                       into dst: UnsafeMutablePointer<Float>, complexOut: Bool) {
        let c = complexOut ? 2 : 1
        @inline(__always) func put(_ i: Int, _ v: Float) {
            dst[i &* c] = v
            if complexOut { dst[i &* c &+ 1] = 0 }
        }
        switch dtype {
        case .bool:
            for i in 0..<n { put(i, src.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0) }
        case .uint8:
            for i in 0..<n { put(i, Float(src.load(fromByteOffset: i, as: UInt8.self))) }
        case .int8:
            for i in 0..<n { put(i, Float(src.load(fromByteOffset: i, as: Int8.self))) }
        case .int16:
            for i in 0..<n { put(i, Float(int(src, 2 &* i, Int16.self, swap))) }
        case .uint16:
            for i in 0..<n { put(i, Float(int(src, 2 &* i, UInt16.self, swap))) }
        case .int32:
            for i in 0..<n { put(i, Float(int(src, 4 &* i, Int32.self, swap))) }
        case .uint32:
            for i in 0..<n { put(i, Float(int(src, 4 &* i, UInt32.self, swap))) }
        case .int64:
            for i in 0..<n { put(i, Float(int(src, 8 &* i, Int64.self, swap))) }
        case .uint64:
            for i in 0..<n { put(i, Float(int(src, 8 &* i, UInt64.self, swap))) }
        case .float32:
            if !swap && !complexOut {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 &* n)
            } else {
                for i in 0..<n { put(i, Float(bitPattern: int(src, 4 &* i, UInt32.self, swap))) }
            }
        case .float64:
            for i in 0..<n { put(i, Float(Double(bitPattern: int(src, 8 &* i, UInt64.self, swap)))) }
        case .complex64:
            if !swap {
                UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 8 &* n)
            } else {
                for k in 0..<(2 &* n) { dst[k] = Float(bitPattern: int(src, 4 &* k, UInt32.self, true)) }
            }
        case .complex128:
            for k in 0..<(2 &* n) { dst[k] = Float(Double(bitPattern: int(src, 8 &* k, UInt64.self, swap))) }
        }
    }

    /// Reverses the byte order of every scalar component in place (big → little endian).
    static func swapInPlace(_ p: UnsafeMutableRawPointer, dtype: DType, count n: Int) {
        let size = dtype.componentSize
        guard size > 1 else { return }
        let m = n * (dtype.isComplex ? 2 : 1)
        switch size {
        case 2: let q = p.assumingMemoryBound(to: UInt16.self); for i in 0..<m { q[i] = q[i].byteSwapped }
        case 4: let q = p.assumingMemoryBound(to: UInt32.self); for i in 0..<m { q[i] = q[i].byteSwapped }
        default: let q = p.assumingMemoryBound(to: UInt64.self); for i in 0..<m { q[i] = q[i].byteSwapped }
        }
    }
}
