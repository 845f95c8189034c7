import Foundation
import Numerics

/// VTK XML ImageData (.vti) with raw appended binary data, for ParaView.
/// https://docs.vtk.org/en/latest/design_documents/VTKFileFormats.html
///
/// VTK image data varies x fastest, then y, then z: exactly our C order (z, y, x), so the
/// bytes go out as they are, with WholeExtent listing x first. The original numpy shape is
/// kept in a FieldData array `numpy_shape`, so 1D/2D arrays read back with their rank.
public enum VTI {
    static func vtkType(_ d: DType) -> (name: String, components: Int, storedAs: DType) {
        switch d {
        case .bool: return ("UInt8", 1, .uint8)
        case .uint8: return ("UInt8", 1, d)
        case .int8: return ("Int8", 1, d)
        case .int16: return ("Int16", 1, d)
        case .uint16: return ("UInt16", 1, d)
        case .int32: return ("Int32", 1, d)
        case .uint32: return ("UInt32", 1, d)
        case .int64: return ("Int64", 1, d)
        case .uint64: return ("UInt64", 1, d)
        case .float32: return ("Float32", 1, d)
        case .float64: return ("Float64", 1, d)
        case .complex64: return ("Float32", 2, d)
        case .complex128: return ("Float64", 2, d)
        }
    }

    static func dtype(vtk name: String, components: Int) -> DType? {
        let real: [String: DType] = ["UInt8": .uint8, "Int8": .int8, "Int16": .int16, "UInt16": .uint16,
                                     "Int32": .int32, "UInt32": .uint32, "Int64": .int64, "UInt64": .uint64,
                                     "Float32": .float32, "Float64": .float64]
        if components == 1 { return real[name] }
        if components == 2 && name == "Float32" { return .complex64 }
        if components == 2 && name == "Float64" { return .complex128 }
        return nil
    }

    static func xmlEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// One point-data array to write: a typed array, or a volume written straight from its
    /// storage (no copy).
    public enum Field {
        case array(NDArray)
        case real(RealVolume)
        case complex(ComplexVolume)

        var shape: [Int] {
            switch self { case .array(let a): return a.shape; case .real(let v): return v.shape; case .complex(let v): return v.shape }
        }
        var dtype: DType {
            switch self { case .array(let a): return a.dtype; case .real: return .float32; case .complex: return .complex64 }
        }
        var byteCount: Int { shape.reduce(1, *) * dtype.itemSize }

        func emit(_ out: OutputFile) throws {
            switch self {
            case .array(let a):
                if a.dtype == .bool {
                    try out.write(Data(a.data.map { $0 != 0 ? UInt8(1) : 0 }))
                } else {
                    try out.write(a.data)
                }
            case .real(let v):
                try v.withUnsafeFloats { try out.write(UnsafeRawPointer($0.baseAddress!), count: $0.count * 4) }
            case .complex(let v):
                try v.withUnsafeFloats { try out.write(UnsafeRawPointer($0.baseAddress!), count: $0.count * 4) }
            }
        }
    }

    /// Writes named arrays of one shape (rank 1–3) as point data. `spacing` and `origin` are
    /// given in C order (z, y, x) like the shape, in the unit the caller chooses (e.g. nm).
    /// Complex arrays become two-component arrays (re, im); bool becomes UInt8.
    public static func write(_ arrays: [(name: String, array: NDArray)], to path: String,
                             spacing: [Double]? = nil, origin: [Double]? = nil, overwrite: Bool) throws {
        try write(fields: arrays.map { ($0.name, Field.array($0.array)) }, to: path, spacing: spacing, origin: origin,
                  overwrite: overwrite)
    }

    /// Writes real volumes (float32) under their names, straight from their storage.
    public static func write(_ volumes: [(name: String, volume: RealVolume)], to path: String,
                             spacing: [Double]? = nil, origin: [Double]? = nil, overwrite: Bool) throws {
        try write(fields: volumes.map { ($0.name, Field.real($0.volume)) }, to: path, spacing: spacing, origin: origin,
                  overwrite: overwrite)
    }

    /// Writes any mix of arrays and volumes of one shape (see `write(_:to:spacing:origin:overwrite:)`).
    public static func write(fields: [(name: String, field: Field)], to path: String,
                             spacing: [Double]? = nil, origin: [Double]? = nil, overwrite: Bool) throws {
        guard let first = fields.first else { throw FormatError.writeFailed(path: path, reason: "no arrays to write") }
        let shape = first.field.shape
        guard (1...3).contains(shape.count) else {
            throw FormatError.unsupported(path: path, reason: "VTK image data holds 1D to 3D arrays; \(first.name) has shape \(shape)")
        }
        for (n, a) in fields where a.shape != shape {
            throw FormatError.wrongShape(path: path, dataset: n, reason: "has shape \(a.shape) but \(first.name) has \(shape); one VTI file holds arrays of one shape")
        }
        var names = Set<String>()
        for (n, _) in fields where !names.insert(n).inserted || n.isEmpty {
            throw FormatError.writeFailed(path: path, reason: "array name '\(n)' is empty or repeated")
        }
        let r = shape.count
        let sp = spacing ?? [Double](repeating: 1, count: r)
        let org = origin ?? [Double](repeating: 0, count: r)
        guard sp.count == r, org.count == r else {
            throw FormatError.writeFailed(path: path, reason: "spacing and origin need \(r) values (one per axis, z y x order)")
        }
        // x, y, z sizes, spacing and origin (VTK order), padded to 3 axes.
        let dims = Array(shape.reversed()) + [Int](repeating: 1, count: 3 - r)
        let spX = Array(sp.reversed()) + [Double](repeating: 1, count: 3 - r)
        let orX = Array(org.reversed()) + [Double](repeating: 0, count: 3 - r)
        let extent = dims.map { "0 \(max($0 - 1, 0))" }.joined(separator: " ")
        var xml = """
            <?xml version="1.0"?>
            <VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">
              <ImageData WholeExtent="\(extent)" Origin="\(orX.map { "\($0)" }.joined(separator: " "))" Spacing="\(spX.map { "\($0)" }.joined(separator: " "))">
                <FieldData>
                  <DataArray type="Int64" Name="numpy_shape" NumberOfTuples="\(r)" format="ascii">\(shape.map(String.init).joined(separator: " "))</DataArray>
                </FieldData>
                <Piece Extent="\(extent)">
                  <PointData Scalars="\(xmlEscape(first.name))">

            """
        var offset = 0
        for (n, a) in fields {
            let t = vtkType(a.dtype)
            xml += "        <DataArray type=\"\(t.name)\" Name=\"\(xmlEscape(n))\" NumberOfComponents=\"\(t.components)\"\(t.components == 2 ? " ComponentName0=\"re\" ComponentName1=\"im\"" : "") format=\"appended\" offset=\"\(offset)\"/>\n"
            offset += 8 + a.byteCount
        }
        xml += """
                  </PointData>
                  <CellData>
                  </CellData>
                </Piece>
              </ImageData>
              <AppendedData encoding="raw">
               _
            """
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            let out = try OutputFile(tmp, shownAs: path)
            try out.write(xml)
            for (_, a) in fields {
                try out.write(le: UInt64(a.byteCount))
                try a.emit(out)
            }
            try out.write("\n  </AppendedData>\n</VTKFile>\n")
            try out.close()
        }
    }

    struct Parsed {
        var shape: [Int]
        var arrays: [(name: String, dtype: DType, offset: Int)]
        var dataStart: Int       // byte offset of the first byte after '_'
        var headerIs64: Bool
    }

    static func attribute(_ tag: Substring, _ name: String) -> String? {
        guard let r = tag.range(of: " \(name)=\"") else { return nil }
        let rest = tag[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    static func parse(_ f: InputFile) throws -> Parsed {
        // The XML part is small; read until the appended-data marker.
        let head = try f.readPrefix(min(f.size, 1 << 20))
        guard let marker = head.range(of: Data("<AppendedData".utf8)) else {
            if String(decoding: head.prefix(400), as: UTF8.self).contains("<VTKFile") {
                throw FormatError.unsupported(path: f.path, reason: "only VTI files with raw appended data are read (this one stores its data inline)")
            }
            throw FormatError.badHeader(path: f.path, reason: "not a VTK ImageData file")
        }
        let xml = String(decoding: head[..<marker.lowerBound], as: UTF8.self)
        let appendedTag = String(decoding: head[marker.lowerBound...].prefix(200), as: UTF8.self)
        guard xml.contains("type=\"ImageData\"") else { throw FormatError.badHeader(path: f.path, reason: "not a VTK ImageData file") }
        if xml.contains("compressor=") {
            throw FormatError.unsupported(path: f.path, reason: "compressed VTI data is not read (save it uncompressed with raw encoding)")
        }
        guard appendedTag.contains("encoding=\"raw\"") else {
            throw FormatError.unsupported(path: f.path, reason: "only raw-encoded appended VTI data is read (this one is base64)")
        }
        guard let underscore = head[marker.lowerBound...].firstIndex(of: UInt8(ascii: "_")) else {
            throw FormatError.truncated(path: f.path, reason: "the appended data marker '_' is missing")
        }
        let headerIs64 = xml.contains("header_type=\"UInt64\"")
        guard let imageTag = xml.range(of: "<ImageData").map({ xml[$0.lowerBound...].prefix(while: { $0 != ">" }) }),
              let extentText = attribute(imageTag, "WholeExtent") else {
            throw FormatError.badHeader(path: f.path, reason: "no WholeExtent")
        }
        let e = extentText.split(separator: " ").compactMap { Int($0) }
        guard e.count == 6 else { throw FormatError.badHeader(path: f.path, reason: "WholeExtent '\(extentText)' is not six integers") }
        // The extent is untrusted: each length and their product must fit in an Int.
        let dims = stride(from: 0, to: 6, by: 2).map { k -> Int? in
            let (d, o1) = e[k + 1].subtractingReportingOverflow(e[k])
            let (n, o2) = d.addingReportingOverflow(1)
            return o1 || o2 || n < 0 ? nil : n
        }.compactMap { $0 }
        guard dims.count == 3, let points = ElementCount.of(dims), ElementCount.of([points, 16]) != nil else {
            throw FormatError.badHeader(path: f.path, reason: "WholeExtent '\(extentText)' declares more points than any file can hold")
        }
        var shape = Array(dims.reversed())
        if let r = xml.range(of: "Name=\"numpy_shape\"") {
            let after = xml[r.upperBound...]
            if let gt = after.firstIndex(of: ">"), let lt = after[gt...].firstIndex(of: "<") {
                let s = after[after.index(after: gt)..<lt].split(separator: " ").compactMap { Int($0) }
                if !s.isEmpty && ElementCount.of(s) == points { shape = s }
            }
        }
        var arrays = [(String, DType, Int)]()
        // the closing tag searched after the opening one (found by fuzzing: one before it trapped)
        if let pd = xml.range(of: "<PointData"), let pdEnd = xml[pd.upperBound...].range(of: "</PointData>") {
            var rest = xml[pd.upperBound..<pdEnd.lowerBound]
            while let t = rest.range(of: "<DataArray") {
                let tag = rest[t.lowerBound...].prefix(while: { $0 != ">" })
                let type = attribute(tag, "type") ?? ""
                let name = attribute(tag, "Name") ?? "array\(arrays.count)"
                let comps = Int(attribute(tag, "NumberOfComponents") ?? "1") ?? 1
                guard attribute(tag, "format") == "appended", let off = Int(attribute(tag, "offset") ?? ""),
                      (0...f.size).contains(off) else {
                    throw FormatError.unsupported(path: f.path, reason: "array \(name) is not stored as appended data")
                }
                guard let d = dtype(vtk: type, components: comps) else {
                    throw FormatError.unknownDType(path: "\(f.path):\(name)", dtype: "\(type) × \(comps) components")
                }
                let unescaped = name.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
                    .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
                arrays.append((unescaped, d, off))
                rest = rest[tag.endIndex...]
            }
        }
        return Parsed(shape: shape, arrays: arrays.map { (name: $0.0, dtype: $0.1, offset: $0.2) },
                      dataStart: head.distance(from: head.startIndex, to: underscore) + 1, headerIs64: headerIs64)
    }

    /// Names, shapes and dtypes of the point-data arrays.
    public static func list(_ path: String) throws -> [ArrayInfo] {
        let p = try parse(InputFile(path))
        return p.arrays.map { ArrayInfo(name: $0.name, shape: p.shape, dtype: $0.dtype.rawValue) }
    }

    /// Reads one array (the only one when `array` is nil).
    public static func read(_ path: String, array: String?) throws -> NDArray {
        let f = try InputFile(path)
        let p = try parse(f)
        let entry: (name: String, dtype: DType, offset: Int)
        if let n = array {
            guard let e = p.arrays.first(where: { $0.name == n }) else {
                throw FormatError.datasetNotFound(path: path, dataset: n, available: p.arrays.map { $0.name })
            }
            entry = e
        } else {
            guard p.arrays.count == 1 else { throw FormatError.datasetNeeded(path: path, available: p.arrays.map { $0.name }) }
            entry = p.arrays[0]
        }
        let at = p.dataStart + entry.offset
        let sizeBytes = p.headerIs64 ? 8 : 4
        let h = [UInt8](try f.read(count: sizeBytes, at: at, what: "array \(entry.name) size"))
        var n = 0
        for k in 0..<sizeBytes { n |= Int(h[k]) << (8 * k) }
        let expected = ElementCount.of(p.shape, itemSize: entry.dtype.itemSize) ?? -1   // checked in parse
        guard n == expected else {
            throw FormatError.badHeader(path: path, reason: "array \(entry.name) has \(n) bytes where its shape \(p.shape) needs \(expected)")
        }
        let data = try f.read(count: n, at: at + sizeBytes, what: "array \(entry.name)")
        return try NDArray(dtype: entry.dtype, shape: p.shape, data: data)
    }
}
