import ArgumentParser
import Foundation
import Formats
import Numerics

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert arrays between NPY, NPZ, HDF5 and VTI, keeping shape, dtype and values.",
        discussion: """
            IN and OUT are FILE or FILE:DATASET; the format follows the extension (.npy, .npz, \
            .h5/.hdf5/.cxi/.nxs, .vti). Values are copied bit for bit in C order, with their \
            dtype, wherever the target can hold it (VTI stores bool as UInt8 and complex as two \
            components). When IN holds several arrays and names none, all of them are \
            converted into an NPZ, HDF5 or VTI output (VTI needs them to share one shape).
            The output is written under a temporary name and renamed when complete; an \
            existing output is replaced only with --force.

            Examples:
              bragg convert pattern.npy pattern.h5:/entry_1/data_1/data
              bragg convert result.cxi:/entry_1/image_1/data object.npy
              bragg convert object.npy object.vti:density --voxel-size 10
            """
    )

    @Argument(help: "Input FILE or FILE:DATASET.")
    var input: String

    @Argument(help: "Output FILE or FILE:DATASET (default dataset: /data in HDF5, /entry_1/image_1/data in .cxi, the input's name in NPZ and VTI).")
    var output: String

    @Flag(name: .long, help: "Overwrite OUT if it exists.")
    var force = false

    @Option(name: .long, help: "gzip level 0–9 for HDF5 output (0: no compression).")
    var gzip: Int = 4

    @Flag(name: .long, help: "Deflate the members of an NPZ output (like numpy.savez_compressed).")
    var deflate = false

    @Option(name: .customLong("voxel-size"),
            help: "VTI voxel size: one value, or one per axis in z,y,x order (any unit; default 1).")
    var voxelSize: String?

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    func validate() throws {
        if !(0...9).contains(gzip) { throw ValidationError("--gzip must be between 0 and 9 (got \(gzip))") }
        if let v = voxelSize, parseVoxel(v) == nil {
            throw ValidationError("--voxel-size must be one positive number or three (z,y,x), got '\(v)'")
        }
    }

    func parseVoxel(_ s: String) -> [Double]? {
        let v = s.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.count == 1 || v.count == 3, v.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return v.compactMap { $0 }
    }

    func run() throws {
        let src = ArraySpec(input)
        let dst = ArraySpec(output)
        guard let outFormat = FileFormat.from(path: dst.path) else { throw FormatError.unknownFormat(path: dst.path) }
        if URL(fileURLWithPath: src.path).standardizedFileURL == URL(fileURLWithPath: dst.path).standardizedFileURL {
            throw UsageError("input and output are the same file \(src.path); write to another file")
        }
        try OutputCheck.file(dst.path, overwrite: force)
        // Which arrays: the named one, the only one, or all of them.
        var arrays: [(name: String, array: NDArray)]
        if src.dataset == nil, let p = try PeerResults.read(src.path) {
            // A PyNX, cohere or bcdi result: its 3D object (first mode), and its support.
            if !quiet { print(p.note) }
            arrays = [("object", NDArray(p.object))]
            if let s = p.support, outFormat != .npy { arrays.append(("support", NDArray(s))) }
        } else if src.dataset != nil {
            arrays = [(baseName(src.dataset!), try ArrayIO.read(src))]
        } else {
            let listed = try ArrayIO.list(src.path)
            if listed.count == 1 {
                arrays = [(baseName(listed[0].name ?? stem(src.path)), try ArrayIO.read(src))]
            } else {
                guard outFormat != .npy, dst.dataset == nil else {
                    throw FormatError.datasetNeeded(path: src.path, available: listed.compactMap { $0.name })
                }
                let numeric = listed.filter { $0.name != nil && isConvertible($0.dtype) }
                arrays = []
                for a in numeric {
                    try Interruption.check()
                    arrays.append((a.name!, try ArrayIO.read(ArraySpec(path: src.path, dataset: a.name!))))
                }
                if arrays.isEmpty { throw FormatError.badHeader(path: src.path, reason: "the file holds no numeric arrays") }
            }
        }
        try Interruption.check()
        let single = arrays.count == 1
        // The name each array gets in the output (nil: an .npy, which holds one unnamed array).
        let named: [(name: String?, array: NDArray)]
        switch outFormat {
        case .npy: named = [(nil, arrays[0].array)]
        case .npz: named = single ? [(dst.dataset ?? npzName(arrays[0].name), arrays[0].array)]
                                  : arrays.map { (npzName($0.name), $0.array) }
        case .hdf5: named = single ? [(dst.dataset ?? ArrayIO.defaultDataset(dst.path), arrays[0].array)]
                                   : arrays.map { ($0.name.hasPrefix("/") ? $0.name : "/" + $0.name, $0.array) }
        case .vti: named = single ? [(dst.dataset ?? vtiName(arrays[0].name), arrays[0].array)]
                                  : arrays.map { (vtiName($0.name), $0.array) }
        }
        switch outFormat {
        case .npy:
            if let d = dst.dataset { throw UsageError("an .npy file holds one array without a name; drop ':\(d)' from \(output)") }
            try NPY.write(arrays[0].array, to: dst.path, overwrite: force)
        case .npz:
            try NPZ.write(named.map { ($0.name!, $0.array) }, to: dst.path, compressed: deflate, overwrite: force)
        case .hdf5:
            try HDF5File.create(dst.path, overwrite: force) { f in
                for (path, a) in named {
                    try Interruption.check()
                    try f.write(a, at: path!, compression: gzip == 0 ? nil : gzip)
                }
            }
        case .vti:
            var spacing: [Double]? = nil
            if let v = voxelSize.flatMap(parseVoxel) {
                let r = arrays[0].array.shape.count
                spacing = v.count == 1 ? [Double](repeating: v[0], count: r) : v
                if spacing!.count != r {
                    throw UsageError("--voxel-size gives \(v.count) values but the array has \(r) axes")
                }
            }
            try VTI.write(named.map { ($0.name!, $0.array) }, to: dst.path, spacing: spacing, overwrite: force)
        }
        if !quiet {
            for (name, a) in named {
                let target = name.map { "\(dst.path):\($0)" } ?? dst.path
                print("\(target)  \(shapeText(a.shape))  \(a.dtype)\(outFormat == .vti && a.dtype == .bool ? " (stored as uint8)" : "")")
            }
        }
    }

    /// Numeric arrays (HDF5 float16 is read as float32).
    func isConvertible(_ dtype: String) -> Bool { DType(rawValue: dtype) != nil || dtype == "float16" }
    func stem(_ path: String) -> String { URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }
    func baseName(_ d: String) -> String { d.split(separator: "/").last.map(String.init) ?? d }
    func npzName(_ d: String) -> String { d.hasPrefix("/") ? String(d.dropFirst()) : d }
    func vtiName(_ d: String) -> String { npzName(d).replacingOccurrences(of: "/", with: "_") }
}
