import Foundation

/// The processes of one job and the few exchanges of bytes the stages need between them
/// (runs spread over MPI ranks, #24). Library stages take a communicator and never see MPI:
/// the `Cluster` module wraps Open MPI behind this protocol, `SingleProcess` is the world of
/// one every ordinary run uses. Every process must make the same calls in the same order
/// (the collectives of MPI); calls are made from one thread.
public protocol Communicator: AnyObject {
    /// This process' number, 0..<size; rank 0 writes the results.
    var rank: Int { get }
    var size: Int { get }
    /// Every process' bytes, in rank order, on every process.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// Every process' bytes, in rank order, on `root`; nil on the others.
    func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]?
    /// `root`'s bytes on every process (the others' argument is ignored).
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]
    func barrier() throws
    /// A small message to `root` that does not wait for it to be received (progress and
    /// per-item status); `root` collects them with `receive`.
    func post(_ bytes: [UInt8], to root: Int) throws
    /// The next posted message from any process and who sent it; with `wait` false, nil
    /// when none has arrived yet.
    func receive(wait: Bool) throws -> (source: Int, bytes: [UInt8])?
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
}

/// The world of one process: exchanges return the caller's own bytes.
public final class SingleProcess: Communicator {
    private var posted: [[UInt8]] = []
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? { [bytes] }
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { bytes }
    public func barrier() throws {}
    public func post(_ bytes: [UInt8], to root: Int) throws { posted.append(bytes) }
    public func receive(wait: Bool) throws -> (source: Int, bytes: [UInt8])? {
        posted.isEmpty ? nil : (0, posted.removeFirst())
    }
}

/// A failed or malformed exchange between processes.
public enum CommunicationError: Error, CustomStringConvertible {
    case mpi(call: String, code: Int32)
    case malformed(String)
    public var description: String {
        switch self {
        case .mpi(let call, let code): return "\(call) failed (MPI error \(code))"
        case .malformed(let what): return "a message between ranks was malformed: \(what)"
        }
    }
}

/// Bytes for an exchange: fixed-width little-endian numbers, bit-exact floats (a result sent
/// between ranks must be the same bits as one computed in place).
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func double(_ v: Double) { u64(v.bitPattern) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func string(_ s: String) { let u = Array(s.utf8); int(u.count); bytes.append(contentsOf: u) }
    public mutating func doubles(_ v: [Double]) { int(v.count); for x in v { double(x) } }
    public mutating func ints(_ v: [Int]) { int(v.count); for x in v { int(x) } }
    /// A volume: its shape, then its Float storage as stored (little-endian machines only).
    public mutating func volume<E>(_ v: Volume<E>) {
        ints(v.shape)
        v.withUnsafeFloats { p in bytes.append(contentsOf: UnsafeRawBufferPointer(p)) }
    }
}

/// Reads what a `ByteWriter` wrote, in the same order.
public struct ByteReader {
    private let bytes: [UInt8]
    private var at = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var atEnd: Bool { at == bytes.count }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, at + n <= bytes.count else {
            throw CommunicationError.malformed("\(n) byte(s) wanted at \(at) of \(bytes.count)")
        }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    public mutating func u64() throws -> UInt64 {
        var v: UInt64 = 0
        let s = try take(8)
        withUnsafeMutableBytes(of: &v) { d in s.withUnsafeBytes { d.copyMemory(from: $0) } }
        return UInt64(littleEndian: v)
    }
    public mutating func int() throws -> Int { Int(Int64(bitPattern: try u64())) }
    public mutating func double() throws -> Double { Double(bitPattern: try u64()) }
    public mutating func bool() throws -> Bool { try take(1).first! != 0 }
    public mutating func string() throws -> String { String(decoding: try take(try count()), as: UTF8.self) }
    public mutating func doubles() throws -> [Double] { try (0..<count(8)).map { _ in try double() } }
    public mutating func ints() throws -> [Int] { try (0..<count(8)).map { _ in try int() } }
    public mutating func volume<E>(_ type: Volume<E>.Type) throws -> Volume<E> {
        let shape = try ints()
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }) else { throw CommunicationError.malformed("volume shape \(shape)") }
        let n = shape.reduce(1, *) * E.components
        let s = try take(n * MemoryLayout<Float>.stride)
        let storage = FloatStorage(count: n)
        if n > 0 { s.withUnsafeBytes { UnsafeMutableRawPointer(storage.pointer).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return try Volume<E>(shape: shape, storage: storage)
    }
    /// A count, checked against the bytes left (each item at least `itemBytes`).
    private mutating func count(_ itemBytes: Int = 1) throws -> Int {
        let n = try int()
        guard n >= 0, n <= (bytes.count - at) / max(1, itemBytes) else { throw CommunicationError.malformed("count \(n)") }
        return n
    }
}
