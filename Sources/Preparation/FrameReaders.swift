import Foundation
import Numerics
import Formats

// Frame-stack readers: HDF5/NeXus (a 3D dataset, read a block of frames at a time),
// multi-page TIFF and TIFF series (through libtiff), NPY (read whole, when first needed,
// and released after). Opening reads only metadata, so all the scans of a state can be
// opened (and their shapes checked) before any frame is read.

extension FrameStack {
    /// Frames the reader prefers to read at once (e.g. a whole HDF5 chunk); nil: any.
    public var preferredFramesPerRead: Int? { nil }
    /// Called when every frame has been read: readers holding data may release it.
    public func finishedReading() {}

    /// Throws unless `range` lies within the stack's frames.
    package func checkFrameRange(_ range: Range<Int>) throws {
        guard range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw FormatError.wrongShape(path: source, dataset: nil, reason: "has \(shape[0]) frames; frames \(range) were asked for")
        }
    }

    /// Reads frames `range` as Floats in C order into `buffer` (range.count × rows ×
    /// columns values): in place for this package's readers, else copied from
    /// `readFrames(_:)` (whose shape is checked). `package`: a raw pointer.
    package func readFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        if let filling = self as? any FrameBufferFilling {
            try filling.fillFrames(range, into: buffer)
            return
        }
        let v = try readFrames(range)
        let expected = [range.count] + shape.dropFirst()
        guard v.shape == expected else {
            throw FormatError.wrongShape(path: source, dataset: nil, reason: "delivered frames \(range) as shape \(v.shape), not \(expected)")
        }
        v.withUnsafeFloats { buffer.update(from: $0.baseAddress!, count: $0.count) }
    }
}

extension FrameBufferFilling {
    /// Frames as Floats only, unless the reader says otherwise.
    package var nativeSampleType: FrameSampleType? { nil }
    package func readNativeFrames(_ range: Range<Int>, into buffer: UnsafeMutableRawPointer) throws {
        throw PreparationError.invalidOption("\(source) cannot deliver its frames unconverted")
    }

    /// `readFrames(_:)` of the package's readers: a volume filled in place.
    package func framesVolume(_ range: Range<Int>) throws -> RealVolume {
        try checkFrameRange(range)
        var v = RealVolume(shape: [range.count] + shape.dropFirst())
        try v.withUnsafeMutableFloats { try fillFrames(range, into: $0.baseAddress!) }
        return v
    }
}

/// A 3D dataset in an HDF5/NeXus file, read a block of frames at a time.
public final class HDF5FrameStack: FrameStack, FrameBufferFilling {
    /// NeXus and CXI paths where detectors put their frames, tried in order when no
    /// dataset is named (then the first 3D dataset under /entry/instrument).
    public static let defaultDatasets = ["/entry/instrument/detector/data", "/entry/data/data",
                                         "/entry_1/data_1/data", "/entry_1/instrument_1/detector_1/data"]
    public let file: HDF5File
    public let dataset: String
    public let shape: [Int]
    let chunkShape: [Int]?
    /// The dataset's sample type, when frames can be read without conversion.
    package let nativeSampleType: FrameSampleType?
    /// Open while frames are read (its chunk cache holds up to 64 MiB), closed after.
    var reader: HDF5SlabReader?
    public var source: String { "\(file.path):\(dataset)" }

    public init(path: String, dataset: String? = nil) throws {
        file = try HDF5File(reading: path)
        let d = try dataset ?? HDF5FrameStack.findFrames(in: file)
        let r = try HDF5SlabReader(file: file, dataset: d)
        self.dataset = r.dataset
        shape = r.shape
        chunkShape = r.chunkShape
        switch r.dtype {
        case .uint8: nativeSampleType = .uint8
        case .int8: nativeSampleType = .int8
        case .uint16: nativeSampleType = .uint16
        case .int16: nativeSampleType = .int16
        case .uint32: nativeSampleType = .uint32
        case .int32: nativeSampleType = .int32
        case .float32: nativeSampleType = .float32
        default: nativeSampleType = nil   // 64-bit samples: converted to Float by HDF5
        }
        guard shape.count == 3 else { throw PreparationError.notAFrameStack(source: "\(path):\(self.dataset)", shape: shape) }
    }

    /// The detector dataset of a NeXus file: a default path, else the first 3D dataset
    /// under /entry/instrument (or anywhere, when there is exactly one 3D dataset).
    static func findFrames(in f: HDF5File) throws -> String {
        for p in defaultDatasets where f.isDataset(p) { return p }
        let all = try f.datasets()
        let threeD = all.filter { $0.shape.count == 3 }.compactMap { $0.name }
        if let p = threeD.first(where: { $0.hasPrefix("/entry/instrument/") }) { return p }
        if threeD.count == 1 { return threeD[0] }
        throw PreparationError.framesNotFound(path: f.path, tried: defaultDatasets + ["/entry/instrument/*/data"],
                                              available: threeD.isEmpty ? all.compactMap { $0.name } : threeD)
    }

    public func readFrames(_ range: Range<Int>) throws -> RealVolume { try framesVolume(range) }

    package func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        if reader == nil { reader = try HDF5SlabReader(file: file, dataset: dataset) }
        try reader!.read(range, into: buffer)
    }

    /// Frames in the dataset's own type: HDF5 then reads a contiguous dataset straight
    /// into `buffer` (no conversion buffer), and the preparation converts as it corrects.
    package func readNativeFrames(_ range: Range<Int>, into buffer: UnsafeMutableRawPointer) throws {
        if reader == nil { reader = try HDF5SlabReader(file: file, dataset: dataset) }
        try reader!.readNative(range, into: buffer)
    }

    public func finishedReading() { reader = nil }

    public var preferredFramesPerRead: Int? {
        guard let c = chunkShape?.first, c > 0 else { return nil }
        return c >= 8 ? c : c * ((16 + c - 1) / c)
    }

    /// A 1D dataset of this file (monitor, angles), which must have one value per frame.
    public func perFrame(_ dpath: String) throws -> [Double] {
        let v = try file.readDoubles(dpath)
        guard v.count == shape[0] else {
            throw FormatError.wrongShape(path: file.path, dataset: dpath, reason: "has \(v.count) values for \(shape[0]) frames")
        }
        return v
    }
}

/// Frames from TIFF files: one multi-page file, or a series of files (each one or more
/// pages) read in the order given. Files are opened while their pages are read.
public final class TIFFFrameStack: FrameStack, FrameBufferFilling {
    public let paths: [String]
    public let shape: [Int]
    /// First frame of each file.
    let firstFrame: [Int]
    var open: (index: Int, reader: TIFFReader)?

    public var source: String {
        paths.count == 1 ? paths[0] : "\(paths[0]) … \((paths.last! as NSString).lastPathComponent) (\(paths.count) files)"
    }

    public init(paths: [String]) throws {
        guard !paths.isEmpty else { throw PreparationError.invalidOption("a TIFF series needs at least one file") }
        self.paths = paths
        var first = [Int](), total = 0
        var frame: [Int]?
        for p in paths {
            let r = try TIFFReader(p)
            if let f = frame, f != [r.rows, r.columns] {
                throw FormatError.wrongShape(path: p, dataset: nil, reason: "has \(r.rows)×\(r.columns)-pixel frames but \(paths[0]) has \(f[0])×\(f[1])")
            }
            frame = [r.rows, r.columns]
            first.append(total)
            total += r.pageCount
        }
        firstFrame = first
        shape = [total] + frame!
    }

    /// The TIFF files of a folder (.tif/.tiff), in natural order (frame_2 before frame_10).
    public static func series(inFolder dir: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { let l = $0.lowercased(); return (l.hasSuffix(".tif") || l.hasSuffix(".tiff")) && !$0.hasPrefix(".") }
            .sorted { $0.compare($1, options: [.numeric]) == .orderedAscending }
        guard !names.isEmpty else { throw PreparationError.invalidOption("folder \(dir) holds no .tif/.tiff frames") }
        return names.map { (dir as NSString).appendingPathComponent($0) }
    }

    public func readFrames(_ range: Range<Int>) throws -> RealVolume { try framesVolume(range) }

    package func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        let fp = shape[1] * shape[2]
        for f in range {
            // file holding frame f: the last whose first frame is ≤ f
            var lo = 0, hi = firstFrame.count - 1
            while lo < hi { let mid = (lo + hi + 1) / 2; if firstFrame[mid] <= f { lo = mid } else { hi = mid - 1 } }
            if open?.index != lo { open = (lo, try TIFFReader(paths[lo])) }
            let r = open!.reader
            guard r.rows == shape[1] && r.columns == shape[2] else {
                throw FormatError.wrongShape(path: paths[lo], dataset: nil, reason: "changed size while being read")
            }
            try r.readPage(f - firstFrame[lo], into: buffer + (f - range.lowerBound) * fp)
        }
    }

    public func finishedReading() { open = nil }
}

/// A .npy frame stack: the header is read on opening, the data when first needed (it is
/// then held until every frame has been read).
public final class NPYFrameStack: FrameStack, FrameBufferFilling {
    public let source: String
    public let shape: [Int]
    var data: RealVolume?

    public init(path: String) throws {
        source = path
        guard let info = try ArrayIO.list(path).first else {
            throw FormatError.badHeader(path: path, reason: "no array")
        }
        shape = info.shape
        guard shape.count == 3 else { throw PreparationError.notAFrameStack(source: path, shape: shape) }
    }

    public func readFrames(_ range: Range<Int>) throws -> RealVolume { try framesVolume(range) }

    package func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        if data == nil {
            let v = try ArrayIO.readReal(source)
            guard v.shape == shape else {
                throw FormatError.wrongShape(path: source, dataset: nil, reason: "changed shape while being read")
            }
            data = v
        }
        let fp = shape[1] * shape[2]
        data!.withUnsafeFloats { p in buffer.update(from: p.baseAddress! + range.lowerBound * fp, count: range.count * fp) }
    }

    public func finishedReading() { data = nil }
}

public enum FrameStacks {
    /// Opens one scan by what `spec` names: FILE.h5/.nxs/.cxi/.hdf5[:DATASET] (NeXus frames),
    /// FILE.tif/.tiff (multi-page), a folder (a TIFF series), or FILE.npy.
    public static func open(_ spec: String, dataset: String? = nil) throws -> FrameStack {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDir), isDir.boolValue {
            return try TIFFFrameStack(paths: TIFFFrameStack.series(inFolder: spec))
        }
        let lower = spec.lowercased()
        if lower.hasSuffix(".tif") || lower.hasSuffix(".tiff") { return try TIFFFrameStack(paths: [spec]) }
        if lower.hasSuffix(".npy") { return try NPYFrameStack(path: spec) }
        let s = ArraySpec(spec)
        switch try s.format() {
        case .hdf5: return try HDF5FrameStack(path: s.path, dataset: s.dataset ?? dataset)
        case .npy: return try NPYFrameStack(path: s.path)
        default:
            throw PreparationError.invalidOption("cannot read frames from \(spec): expected an HDF5/NeXus file (.h5, .nxs, .cxi), a TIFF file or folder of TIFFs, or a .npy file")
        }
    }
}
