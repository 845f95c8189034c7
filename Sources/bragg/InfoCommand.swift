import ArgumentParser
import Foundation
import Formats
import Numerics

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "List the arrays in a file and summarise one of them.",
        discussion: """
            FILE is .npy, .npz, HDF5 (.h5, .hdf5, .cxi, .nxs) or .vti. Every array is listed with \
            its path (HDF5 dataset, NPZ member or VTI array), shape and dtype. For one array \
            (the one named as FILE:DATASET, or the file's only array) it prints min, max and \
            mean (of the modulus for complex data), and the counts of NaN, infinite and zero \
            values. Large NPY and HDF5 arrays are streamed in slabs, never loaded whole.

            Examples:
              bragg info scan.h5
              bragg info scan.h5:/entry/data/data
              bragg info result.cxi:/entry_1/image_1/data
            """
    )

    @Argument(help: "FILE or FILE:DATASET.")
    var spec: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let s = ArraySpec(spec)
        let format = try s.format()
        let arrays = try ArrayIO.list(s.path)
        var chosen: String? = nil
        if let d = s.dataset {
            chosen = spec
            // Check the name early so a typo lists what exists.
            if format != .hdf5 && !arrays.contains(where: { $0.name == d }) {
                _ = try ArrayIO.read(s)   // throws the format's own "no such dataset" message
            }
        } else if arrays.count == 1 {
            chosen = arrays[0].name.map { "\(s.path):\($0)" } ?? s.path
        }
        var stats: ArrayStatistics? = nil
        if let c = chosen { stats = try ArrayIO.statistics(c) }
        if json {
            printJSON(format: format, path: s.path, arrays: arrays, chosen: chosen.map { ArraySpec($0) }, stats: stats)
            return
        }
        print("\(s.path): \(formatName(format)), \(arrays.count) array\(arrays.count == 1 ? "" : "s")")
        let width = min(60, arrays.map { ($0.name ?? "(array)").count }.max() ?? 0)
        for a in arrays {
            let name = (a.name ?? "(array)").padding(toLength: max(width, (a.name ?? "(array)").count), withPad: " ", startingAt: 0)
            print("  \(name)  \(shapeText(a.shape).padding(toLength: 18, withPad: " ", startingAt: 0))  \(a.dtype)")
        }
        guard let st = stats, let c = chosen else {
            if arrays.count > 1 { print("Name one array as \(s.path):DATASET for its statistics.") }
            return
        }
        let what = st.dtype.isComplex ? " (modulus)" : ""
        print("\(c)\(what):")
        print("  min \(num(st.minimum))  max \(num(st.maximum))  mean \(num(st.mean))")
        print("  values \(st.count)  NaN \(st.nanCount)  Inf \(st.infCount)  zeros \(st.zeroCount)")
        if st.nanCount > 0 || st.infCount > 0 {
            print("  warning: \(st.nanCount) NaN and \(st.infCount) infinite values; min/max/mean exclude them")
        }
    }

    func formatName(_ f: FileFormat) -> String {
        switch f {
        case .npy: return "NPY"
        case .npz: return "NPZ archive"
        case .hdf5: return "HDF5"
        case .vti: return "VTK image data"
        }
    }

    func num(_ x: Double) -> String {
        if x.isNaN || x.isInfinite { return "\(x)" }
        if x == x.rounded() && abs(x) < 1e15 { return String(Int64(x)) }
        return String(format: "%.6g", x)
    }

    func printJSON(format: FileFormat, path: String, arrays: [ArrayInfo], chosen: ArraySpec?, stats: ArrayStatistics?) {
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func jnum(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        let list = arrays.map { a in
            "{\"name\": \(a.name.map(q) ?? "null"), \"shape\": [\(a.shape.map(String.init).joined(separator: ", "))], \"dtype\": \(q(a.dtype))}"
        }.joined(separator: ", ")
        var out = "{\"file\": \(q(path)), \"format\": \(q(format.rawValue)), \"arrays\": [\(list)]"
        if let st = stats, let c = chosen {
            out += ", \"statistics\": {\"array\": \(q(c.description)), \"of\": \(q(st.dtype.isComplex ? "modulus" : "value")), \"min\": \(jnum(st.minimum)), \"max\": \(jnum(st.maximum)), \"mean\": \(jnum(st.mean)), \"count\": \(st.count), \"nan\": \(st.nanCount), \"inf\": \(st.infCount), \"zeros\": \(st.zeroCount)}"
        }
        print(out + "}")
    }
}

/// numpy's way of printing a shape: (64, 64, 64), (5,), ().
func shapeText(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}
