import Foundation
import Numerics

/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length, a JSON header mapping each tensor name to {dtype, shape, data_offsets}
/// plus string metadata under "__metadata__", then the raw little-endian data. Only F32
/// tensors are written and read, which is all a model here holds; PyTorch opens these
/// files with `safetensors.torch.load_file`.
public struct SafetensorsFile {
    public var metadata: [String: String]
    public var tensors: [String: (shape: [Int], values: [Float])]

    public init(metadata: [String: String] = [:], tensors: [String: (shape: [Int], values: [Float])] = [:]) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// Serialises: tensors in name order, header padded with spaces to a multiple of 8.
    public func encoded() throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            guard t.shape.reduce(1, *) == t.values.count else {
                throw NeuralError.invalidInput("tensor \(name) has \(t.values.count) values for shape \(t.shape)")
            }
            let bytes = t.values.count * 4
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let vals = tensors[name]!.values
            vals.withUnsafeBufferPointer { b in
                // This machine is little-endian like the format; convert anyway on others.
                if UInt32(1).littleEndian == 1 {
                    out.append(UnsafeBufferPointer(start: UnsafeRawPointer(b.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                                   count: b.count * 4))
                } else {
                    for v in b { var u = v.bitPattern.littleEndian; withUnsafeBytes(of: &u) { out.append(contentsOf: $0) } }
                }
            }
        }
        return out
    }

    /// Writes atomically (temporary name, then rename).
    public func write(to path: String) throws {
        let data = try encoded()
        TemporaryFiles.removeStale(for: path)
        let tmp = TemporaryFiles.path(for: path)
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
        } catch {
            throw NeuralError.modelFile(path: path, problem: "cannot be written (\(error.localizedDescription))")
        }
        if rename(tmp, path) != 0 {
            try? FileManager.default.removeItem(atPath: tmp)
            throw NeuralError.modelFile(path: path, problem: "cannot be renamed into place (errno \(errno))")
        }
    }

    /// Reads and checks a file: header length, JSON, dtypes, offsets, sizes.
    public static func read(from path: String) throws -> SafetensorsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NeuralError.modelFile(path: path, problem: "cannot be read (missing or unreadable)")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String) throws -> SafetensorsFile {
        func bad(_ s: String) -> NeuralError { .modelFile(path: path, problem: s) }
        guard data.count >= 8 else { throw bad("is truncated (\(data.count) bytes, shorter than the 8-byte header length)") }
        let bytes = [UInt8](data)
        var hlen: UInt64 = 0
        for i in 0..<8 { hlen |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard hlen > 0, hlen <= 100_000_000 else { throw bad("is not a safetensors file (header length \(hlen))") }
        guard UInt64(bytes.count) >= 8 + hlen else {
            throw bad("is truncated: its header needs \(hlen) bytes but only \(bytes.count - 8) follow")
        }
        let headerData = Data(bytes[8..<(8 + Int(hlen))])
        guard let obj = try? JSONSerialization.jsonObject(with: headerData), let header = obj as? [String: Any] else {
            throw bad("is not a safetensors file (its header is not a JSON object)")
        }
        let dataStart = 8 + Int(hlen)
        let available = bytes.count - dataStart
        var file = SafetensorsFile()
        if let meta = header["__metadata__"] {
            guard let m = meta as? [String: String] else { throw bad("has __metadata__ that is not a map of strings") }
            file.metadata = m
        }
        for (name, entry) in header where name != "__metadata__" {
            guard let e = entry as? [String: Any], let dtype = e["dtype"] as? String,
                  let shape = (e["shape"] as? [NSNumber])?.map({ $0.intValue }),
                  let offs = (e["data_offsets"] as? [NSNumber])?.map({ $0.intValue }), offs.count == 2 else {
                throw bad("has a malformed entry for tensor \(name)")
            }
            guard dtype == "F32" else { throw bad("tensor \(name) has dtype \(dtype); only F32 is supported") }
            // Shape and offsets are untrusted: products and differences are checked, not trapped on.
            guard let count = ElementCount.of(shape), let byteCount = ElementCount.of(shape, itemSize: 4) else {
                throw bad("tensor \(name) has shape \(shape), more elements than any file can hold")
            }
            guard offs[0] >= 0, offs[1] >= offs[0], offs[1] - offs[0] == byteCount else {
                throw bad("tensor \(name) has offsets \(offs) that do not match its shape \(shape)")
            }
            guard offs[1] <= available else {
                throw bad("is truncated: tensor \(name) ends at byte \(offs[1]) of the data but only \(available) bytes are present")
            }
            var values = [Float](repeating: 0, count: count)
            for i in 0..<count {
                let b = dataStart + offs[0] + 4 * i
                let lo: UInt32 = UInt32(bytes[b]) | UInt32(bytes[b + 1]) << 8
                let u: UInt32 = lo | UInt32(bytes[b + 2]) << 16 | UInt32(bytes[b + 3]) << 24
                values[i] = Float(bitPattern: u)
            }
            file.tensors[name] = (shape, values)
        }
        return file
    }
}
