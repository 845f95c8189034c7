import XCTest
import Foundation
import Numerics
import Formats
@testable import Preparation

final class FrameReaderTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "prep-readers-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func frames(_ shape: [Int], offset: Float = 0) -> RealVolume {
        RealVolume(shape: shape) { Float(($0 * 37) % 1000) + offset }
    }

    func testTIFFRoundTripOfEverySampleType() throws {
        let v = frames([3, 5, 7])
        for t in [TIFFWriter.SampleType.uint16, .uint32, .int32, .float32] {
            let p = dir + "/stack-\(t).tif"
            try TIFFWriter.write(v, to: p, as: t, overwrite: false)
            let r = try TIFFReader(p)
            XCTAssertEqual(r.shape, [3, 5, 7])
            let back = try r.readAll()
            XCTAssertEqual(back, v, "\(t)")
            let stack = try FrameStacks.open(p)
            var buf = [Float](repeating: -1, count: 2 * 35)
            try buf.withUnsafeMutableBufferPointer { try stack.readFrames(1..<3, into: $0.baseAddress!) }
            XCTAssertEqual(buf, Array(v.floats[35...]))
            // The safe public reads deliver the same values as volumes.
            let block = try stack.readFrames(1..<3)
            XCTAssertEqual(block.shape, [2, 5, 7])
            XCTAssertEqual(block.floats, Array(v.floats[35...]))
            let page = try r.readPage(2)
            XCTAssertEqual(page.shape, [5, 7])
            XCTAssertEqual(page.floats, Array(v.floats[70...]))
            XCTAssertThrowsError(try stack.readFrames(2..<4)) { e in
                XCTAssertTrue(String(describing: e).contains(p), String(describing: e))
            }
        }
        // Signed values survive in int32 and float32.
        let neg = try RealVolume(shape: [1, 2, 2], elements: [-5, 3, -1, 0])
        try TIFFWriter.write(neg, to: dir + "/neg.tif", as: .int32, overwrite: false)
        let negBack = try TIFFReader(dir + "/neg.tif").readAll()
        XCTAssertEqual(negBack.elements, [-5, 3, -1, 0])
    }

    func testTIFFSeriesInNaturalOrder() throws {
        let v = frames([11, 4, 6])
        for k in 0..<11 {
            try TIFFWriter.write(try v.slice(axis: 0, index: k), to: dir + "/frame_\(k).tiff", as: .uint32, overwrite: false)
        }
        let stack = try FrameStacks.open(dir)
        XCTAssertEqual(stack.shape, [11, 4, 6])
        var buf = [Float](repeating: 0, count: v.count)
        try buf.withUnsafeMutableBufferPointer { try stack.readFrames(0..<11, into: $0.baseAddress!) }
        XCTAssertEqual(buf, v.floats)   // frame_10 after frame_9, not after frame_1
    }

    func testTruncatedTIFFNamesFileAndScanAndLeavesNoOutput() throws {
        let v = frames([4, 32, 32])
        let good = dir + "/good.tif", bad = dir + "/bad.tif"
        try TIFFWriter.write(v, to: good, as: .uint32, overwrite: false)
        try TIFFWriter.write(v, to: bad, as: .uint32, overwrite: false)
        let data = try Data(contentsOf: URL(fileURLWithPath: bad))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: bad))
        // Either opening (directory chain cut) or reading (strip cut) fails, naming the file.
        do {
            let scans = [Scan(frames: try FrameStacks.open(good)), Scan(frames: try FrameStacks.open(bad))]
            XCTAssertThrowsError(try Preparation.prepare(scans: scans)) { e in
                let s = String(describing: e)
                XCTAssertTrue(s.contains("scan 2") && s.contains("bad.tif"), s)
            }
        } catch {
            XCTAssertTrue(String(describing: error).contains("bad.tif"), String(describing: error))
        }
        // Not a TIFF at all.
        try Data("not a tiff".utf8).write(to: URL(fileURLWithPath: dir + "/junk.tif"))
        XCTAssertThrowsError(try TIFFReader(dir + "/junk.tif")) { e in
            XCTAssertTrue(String(describing: e).contains("junk.tif"), String(describing: e))
        }
    }

    func writeNeXus(_ path: String, _ v: RealVolume, monitor: [Double]? = nil, at dataset: String = "/entry/instrument/detector/data") throws {
        let counts = v.floats.map { UInt16($0) }
        let a = try NDArray(dtype: .uint16, shape: v.shape, data: counts.withUnsafeBufferPointer { Data(buffer: $0) })
        try HDF5File.create(path, overwrite: false) { f in
            try f.write(a, at: dataset, compression: 4)
            if let m = monitor { try f.write(doubles: m, at: "/entry/instrument/monitor/data") }
            try f.write(scalar: 8.5, at: "/entry/instrument/source/energy")
            try f.setAttribute("units", .string("keV"), on: "/entry/instrument/source/energy")
            try f.write(scalar: 1500, at: "/entry/instrument/detector/distance")
            try f.setAttribute("units", .string("mm"), on: "/entry/instrument/detector/distance")
            try f.write(doubles: [10, 10.01, 10.02, 10.03, 10.04], at: "/entry/sample/rocking_angle")
        }
    }

    func testHDF5FramesSlabsDefaultsMonitorAndGeometry() throws {
        let v = frames([5, 6, 8])
        let p = dir + "/scan.h5"
        try writeNeXus(p, v, monitor: [1, 2, 3, 4, 5])
        let stack = try FrameStacks.open(p)
        XCTAssertEqual(stack.shape, [5, 6, 8])
        XCTAssertTrue(stack.source.contains("/entry/instrument/detector/data"))
        var buf = [Float](repeating: 0, count: 2 * 48)
        try buf.withUnsafeMutableBufferPointer { try stack.readFrames(2..<4, into: $0.baseAddress!) }
        XCTAssertEqual(buf, Array(v.floats[96..<192]))
        let block = try stack.readFrames(2..<4)
        XCTAssertEqual(block.shape, [2, 6, 8])
        XCTAssertEqual(block.floats, Array(v.floats[96..<192]))
        let slab = try HDF5SlabReader(file: try HDF5File(reading: p), dataset: "/entry/instrument/detector/data").read(2..<4)
        XCTAssertEqual(slab, block)
        XCTAssertThrowsError(try stack.readFrames(4..<6)) { e in
            XCTAssertTrue(String(describing: e).contains("scan.h5"), String(describing: e))
        }
        let h = try XCTUnwrap(stack as? HDF5FrameStack)
        XCTAssertEqual(try h.perFrame("/entry/instrument/monitor/data"), [1, 2, 3, 4, 5])
        let g = NeXusGeometry.read(from: h.file)
        XCTAssertEqual(g.energy!, 8500, accuracy: 1e-9)
        XCTAssertEqual(g.detectorDistance!, 1.5, accuracy: 1e-12)
        XCTAssertEqual(g.rockingStep!, 0.01 * .pi / 180, accuracy: 1e-9)
        // Another NeXus layout: the first 3D dataset under /entry/instrument.
        let p2 = dir + "/scan2.h5"
        try writeNeXus(p2, v, at: "/entry/instrument/eiger/data")
        XCTAssertEqual((try FrameStacks.open(p2) as? HDF5FrameStack)?.dataset, "/entry/instrument/eiger/data")
    }

    func testMissingDatasetAndWrongShapesNameFileAndScan() throws {
        let p = dir + "/scan.h5"
        try writeNeXus(p, frames([3, 4, 4]))
        XCTAssertThrowsError(try FrameStacks.open(p + ":/entry/data/nothing")) { e in
            let s = String(describing: e)
            XCTAssertTrue(s.contains("scan.h5") && s.contains("/entry/data/nothing"), s)
        }
        XCTAssertThrowsError(try FrameStacks.open(p, dataset: "/entry/instrument/detector/missing")) { e in
            XCTAssertTrue(String(describing: e).contains("/entry/instrument/detector/missing"))
        }
        let q = dir + "/other.h5"
        try writeNeXus(q, frames([3, 4, 5]))
        let stacks = [try FrameStacks.open(p), try FrameStacks.open(q)]
        XCTAssertThrowsError(try Preparation.validate(stacks)) { e in
            let s = String(describing: e)
            XCTAssertTrue(s.contains("scan 2") && s.contains("other.h5") && s.contains("[3, 4, 5]") && s.contains("scan.h5"), s)
        }
        // An empty scan (0 frames).
        let empty = dir + "/empty.h5"
        try HDF5File.create(empty, overwrite: false) { f in
            try f.write(NDArray(dtype: .uint16, shape: [0, 4, 4]), at: "/entry/instrument/detector/data", compression: nil)
        }
        XCTAssertThrowsError(try Preparation.validate([try FrameStacks.open(p), try FrameStacks.open(empty)])) { e in
            let s = String(describing: e)
            XCTAssertTrue(s.contains("scan 2") && s.contains("empty.h5") && s.contains("no frames"), s)
        }
    }

    func testPreparingFromFilesEqualsPreparingInMemory() throws {
        let sim = SimulatedScans(shape: [16, 32, 32], scans: 3, peakCounts: 2000, hot: [(10, 20)], dead: [(17, 15)])
        var fromFiles: [Scan] = []
        for (k, s) in sim.scans.enumerated() {
            let v = (s.frames as! InMemoryFrameStack).frames
            let p = dir + "/s\(k).h5"
            try writeNeXus(p, v, monitor: s.monitor)
            let st = try FrameStacks.open(p) as! HDF5FrameStack
            fromFiles.append(Scan(frames: st, monitor: try st.perFrame("/entry/instrument/monitor/data")))
        }
        let a = try Preparation.prepare(scans: sim.scans)
        let b = try Preparation.prepare(scans: fromFiles)
        XCTAssertEqual(a.pattern, b.pattern)
        XCTAssertEqual(a.mask, b.mask)
        // Writing through CXIResults gives the layout `bragg phase` reads.
        let out = dir + "/prepared.cxi"
        try CXIResults(pattern: b.pattern, mask: b.mask).write(to: out, overwrite: false)
        let back = try CXIResults.read(from: out)
        XCTAssertEqual(back.pattern, b.pattern)
        XCTAssertEqual(back.mask, b.mask)
    }

    /// A frame stack of the library's users: only the public protocol (a Volume per read).
    struct UserFrameStack: FrameStack {
        let frames: RealVolume
        var source: String { "user stack" }
        var shape: [Int] { frames.shape }
        var lie = false
        func readFrames(_ range: Range<Int>) throws -> RealVolume {
            try frames.cropped(start: [range.lowerBound, 0, 0], size: [range.count - (lie && range.count > 1 ? 1 : 0)] + shape.dropFirst())
        }
    }

    func testUsersFrameStackPreparesAsTheBuiltInReaders() throws {
        let sim = SimulatedScans(shape: [16, 32, 32], scans: 2, peakCounts: 2000, hot: [(10, 20)], dead: [(17, 15)])
        let user = sim.scans.map { Scan(frames: UserFrameStack(frames: ($0.frames as! InMemoryFrameStack).frames), monitor: $0.monitor) }
        let a = try Preparation.prepare(scans: sim.scans)
        let b = try Preparation.prepare(scans: user)
        XCTAssertEqual(a.pattern, b.pattern)
        XCTAssertEqual(a.mask, b.mask)
        // A stack that delivers the wrong number of frames is named, not copied past.
        var liar = UserFrameStack(frames: (sim.scans[0].frames as! InMemoryFrameStack).frames)
        liar.lie = true
        XCTAssertThrowsError(try Preparation.prepare(scans: [Scan(frames: liar)])) { e in
            XCTAssertTrue(String(describing: e).contains("user stack"), String(describing: e))
        }
    }
}
