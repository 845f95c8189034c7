import XCTest
import Foundation
@testable import Preparation
@testable import Formats
import Numerics

/// Scan files in each beamline's layout, written by Tests/scripts/make_beamline_scans.py
/// (h5py; the P10 frames bitshuffle/LZ4-compressed through HDF5 filter 32008), once per run.
enum BeamlineFiles {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func python() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for exe in (["/usr/bin"] + path.split(separator: ":").map(String.init)).map({ $0 + "/python3" })
        where FileManager.default.isExecutableFile(atPath: exe) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["-c", "import numpy, h5py"]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            if (try? p.run()) != nil { p.waitUntilExit(); if p.terminationStatus == 0 { return exe } }
        }
        return nil
    }

    /// The folder of generated files, or the reason they could not be made.
    static let folder: Result<String, Error> = {
        guard let py = python() else { return .failure(XCTSkip("python3 with numpy and h5py not found: beamline reader tests skipped")) }
        let dir = NSTemporaryDirectory() + "braggkit-beamlines-\(ProcessInfo.processInfo.processIdentifier)"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = [repoRoot.appendingPathComponent("Tests/scripts/make_beamline_scans.py").path, dir]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return .failure(error) }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            return .failure(NSError(domain: "BeamlineFiles", code: 1, userInfo: [NSLocalizedDescriptionKey: "make_beamline_scans.py failed (the P10 files need Debian's bitshuffle HDF5 plugin): \(out)"]))
        }
        return .success(dir)
    }()

    static func path(_ name: String) throws -> String { try folder.get() + "/" + name }

    /// frames[k, r, c] of the generator: (flat index · 7 + offset) mod 1009.
    static func expected(offset: Int, count: Int) -> [Float] {
        (0..<count).map { Float(($0 * 7 + offset) % 1009) }
    }

    static func allFrames(_ s: FrameStack) throws -> [Float] {
        let n = s.shape.reduce(1, *)
        var buf = [Float](repeating: -1, count: n)
        try buf.withUnsafeMutableBufferPointer { try s.readFrames(0..<s.shape[0], into: $0.baseAddress!) }
        return buf
    }
}

final class BeamlineReaderTests: XCTestCase {
    func assertFrames(_ s: BeamlineScan, offset: Int, frames: Int = 8, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(s.frames.shape, [frames, 32, 48], file: file, line: line)
        let got = try BeamlineFiles.allFrames(s.frames)
        XCTAssertEqual(got, BeamlineFiles.expected(offset: offset, count: frames * 32 * 48), "frames differ from what was written", file: file, line: line)
    }

    func testID01BLISSScanGivesFramesAnglesEnergyDistanceAndMonitor() throws {
        let p = try BeamlineFiles.path("id01.h5")
        XCTAssertEqual(try BeamlineReaders.detect(path: p), .esrfID01)
        let s = try BeamlineReaders.open(path: p, scan: "3")
        XCTAssertEqual(s.beamline, .esrfID01)
        XCTAssertEqual(s.scanName, "sampleA_3")
        try assertFrames(s, offset: 1)
        XCTAssertEqual(s.angles, ["mu": 0, "eta": 17.0, "phi": 1.5, "nu": 2.25, "delta": 35.5])
        XCTAssertEqual(s.rockingMotor, "eta")
        XCTAssertEqual(s.rockingStep!, 0.01, accuracy: 1e-12)
        XCTAssertEqual(s.energy!, 8500, accuracy: 1e-9)      // mononrj 8.5 keV
        XCTAssertEqual(s.distance!, 0.83, accuracy: 1e-12)
        XCTAssertEqual(s.pixelSize!.row, 55e-6, accuracy: 1e-15)
        XCTAssertEqual(s.pixelSize!.column, 55e-6, accuracy: 1e-15)
        XCTAssertEqual(s.directBeam!.row, 120.25); XCTAssertEqual(s.directBeam!.column, 270.5)
        XCTAssertEqual(s.detectorShape!.rows, 516); XCTAssertEqual(s.detectorShape!.columns, 516)
        XCTAssertEqual(s.monitor!, (0..<8).map { 1000 + 3 * Double($0) })
        // The other scan of the file, by its full name.
        try assertFrames(try ID01.read(path: p, scan: "sampleA_4.1"), offset: 2)
    }

    func testID01ScanChoiceIsNamedWhenMissingOrAmbiguous() throws {
        let p = try BeamlineFiles.path("id01.h5")
        XCTAssertThrowsError(try BeamlineReaders.open(path: p)) { e in
            XCTAssertEqual("\(e)", "\(p) holds several scans (sampleA_3.1, sampleA_4.1); choose one")
        }
        XCTAssertThrowsError(try BeamlineReaders.open(path: p, scan: "9")) { e in
            XCTAssertTrue("\(e)".contains("holds no scan 9; its scans are sampleA_3.1, sampleA_4.1, sampleA_5.1"), "\(e)")
        }
    }

    func testP10EigerMasterWithExternalLinksAndBitshuffleLZ4AndFio() throws {
        let dir = try BeamlineFiles.path("p10/align_00012")
        let master = dir + "/e4m/align_00012_master.h5"
        // The data files really are bitshuffle/LZ4 (filter 32008), reached through external links.
        let data1 = try HDF5File(reading: dir + "/e4m/align_00012_data_000001.h5")
        XCTAssertEqual(try data1.filters(of: "/entry/data/data"), [32008])
        XCTAssertTrue(HDF5Plugins.isAvailable(32008))
        // Debian's plugin folder is on HDF5's search path without HDF5_PLUGIN_PATH.
        XCTAssertTrue(HDF5Plugins.searchPath().contains { $0.hasSuffix("/hdf5/serial/plugins") }, "\(HDF5Plugins.searchPath())")
        XCTAssertFalse(try HDF5File(reading: master).datasets().isEmpty)

        XCTAssertEqual(try BeamlineReaders.detect(path: dir), .petraP10)
        for input in [dir, master, dir + "/align_00012.fio"] {
            let s = try BeamlineReaders.open(path: input)
            XCTAssertEqual(s.beamline, .petraP10, input)
            try assertFrames(s, offset: 3)   // 5 + 3 frames from two linked data files
            XCTAssertTrue(s.frames is ConcatenatedFrameStack, input)
            // om from the data column (its %p value 20.0 is where it stood before the scan)
            XCTAssertEqual(s.angles, ["om": 19.8, "mu": 0.5, "chi": 90, "phi": -3.5, "gam": 1.25, "del": 40.5], input)
            XCTAssertEqual(s.rockingMotor, "om")
            XCTAssertEqual(s.rockingStep!, 0.05, accuracy: 1e-9)
            XCTAssertEqual(s.energy!, 8500, accuracy: 1e-9)   // fmbenergy, not the master's wavelength (8500.3 eV)
            XCTAssertEqual(s.distance!, 1.83, accuracy: 1e-12)
            XCTAssertEqual(s.pixelSize!.row, 75e-6, accuracy: 1e-15)
            XCTAssertEqual(s.countTime!, 0.5)
            XCTAssertEqual(s.directBeam!.row, 1100); XCTAssertEqual(s.directBeam!.column, 1040.5)
            XCTAssertEqual(s.detectorShape!.rows, 2167); XCTAssertEqual(s.detectorShape!.columns, 2070)
            XCTAssertEqual(s.monitor!, (0..<8).map { 100 - 0.25 * Double($0) })
        }
        // The experiment folder with --scan 12 finds the scan folder.
        XCTAssertEqual(try P10.read(path: try BeamlineFiles.path("p10"), scan: "12").frames.shape, [8, 32, 48])
    }

    func testP10MissingDataFileIsNamed() throws {
        let src = try BeamlineFiles.path("p10/align_00012")
        let dir = NSTemporaryDirectory() + "braggkit-p10-missing-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.copyItem(atPath: src, toPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.removeItem(atPath: dir + "/e4m/align_00012_data_000002.h5")
        XCTAssertThrowsError(try BeamlineReaders.open(path: dir)) { e in
            XCTAssertTrue("\(e)".contains("/entry/data/data_000002 is a link to a data file that cannot be opened"), "\(e)")
        }
    }

    func testDiamondI16ClassicEntry1() throws {
        let p = try BeamlineFiles.path("i16_classic.nxs")
        XCTAssertEqual(try BeamlineReaders.detect(path: p), .diamondI16)
        let s = try BeamlineReaders.open(path: p)
        try assertFrames(s, offset: 4)
        XCTAssertEqual(s.angles, ["mu": 0, "eta": 19.9, "chi": 90, "phi": 0, "delta": 40, "gam": 5])
        XCTAssertEqual(s.rockingMotor, "eta")
        XCTAssertEqual(s.rockingStep!, 0.025, accuracy: 1e-9)
        XCTAssertEqual(s.energy!, 9000, accuracy: 1e-9)
        XCTAssertNil(s.distance)
        XCTAssertEqual(s.pixelSize!.column, 55e-6)
        XCTAssertNotNil(s.notes["pixel_size"])     // assumed, and said so
        XCTAssertEqual(s.monitor!, (0..<8).map { 5e4 + 10 * Double($0) })
    }

    func testDiamondI16EntryLayoutConvertsUnits() throws {
        let p = try BeamlineFiles.path("i16.nxs")
        XCTAssertEqual(try BeamlineReaders.detect(path: p), .diamondI16)
        let s = try BeamlineReaders.open(path: p)
        try assertFrames(s, offset: 5)
        XCTAssertEqual(s.angles["eta"]!, 29.9, accuracy: 1e-12)
        XCTAssertEqual(s.angles["chi"], 88); XCTAssertEqual(s.angles["delta"], 60)
        XCTAssertEqual(s.rockingMotor, "eta")
        XCTAssertEqual(s.rockingStep!, 0.02, accuracy: 1e-9)
        XCTAssertEqual(s.energy!, 8050, accuracy: 1e-9)
        XCTAssertEqual(s.distance!, 1.2, accuracy: 1e-12)                // 1200 mm
        XCTAssertEqual(s.pixelSize!.row, 55e-6, accuracy: 1e-15)         // 0.055 mm
        XCTAssertNil(s.notes["pixel_size"])
        XCTAssertEqual(s.monitor!.count, 8)
    }

    func testGenericNeXusFollowsDependsOnChains() throws {
        let p = try BeamlineFiles.path("generic.nxs")
        XCTAssertEqual(try BeamlineReaders.detect(path: p), .nexus)
        let s = try BeamlineReaders.open(path: p)
        try assertFrames(s, offset: 6)
        XCTAssertEqual(s.angles["omega"]!, 16.5, accuracy: 1e-12)
        XCTAssertEqual(s.angles["phi"]!, 0.1 * 180 / .pi, accuracy: 1e-12)   // stored in rad
        XCTAssertEqual(s.angles["two_theta"]!, 33, accuracy: 1e-12)
        XCTAssertEqual(s.rockingMotor, "omega")
        XCTAssertEqual(s.rockingStep!, 0.004, accuracy: 1e-9)
        XCTAssertEqual(s.energy!, 12398.419843320026, accuracy: 1e-6)       // 1 Å
        XCTAssertEqual(s.distance!, 0.95, accuracy: 1e-12)                  // 950 mm
        XCTAssertEqual(s.pixelSize!.row, 172e-6, accuracy: 1e-15)
        XCTAssertEqual(s.pixelSize!.column, 75e-6, accuracy: 1e-15)
        XCTAssertEqual(s.directBeam!.row, 20); XCTAssertEqual(s.directBeam!.column, 10.5)
        XCTAssertEqual(s.monitor!, (0..<8).map { 300 + Double($0) })
    }

    func testSIXS() throws {
        let p = try BeamlineFiles.path("sixs.nxs")
        XCTAssertEqual(try BeamlineReaders.detect(path: p), .soleilSIXS)
        let s = try BeamlineReaders.open(path: p)
        try assertFrames(s, offset: 7)
        XCTAssertEqual(s.angles, ["mu": 12, "omega": 3, "gamma": 0.5, "delta": 25])
        XCTAssertEqual(s.rockingMotor, "mu")
        XCTAssertEqual(s.rockingStep!, 0.005, accuracy: 1e-9)
        XCTAssertEqual(s.energy!, 8500, accuracy: 1e-9)
    }

    func testUnknownLayoutListsGroupsAndFrames() throws {
        let p = try BeamlineFiles.path("unknown.h5")
        XCTAssertNil(try BeamlineReaders.detect(path: p))
        XCTAssertThrowsError(try BeamlineReaders.open(path: p)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix("\(p) is not a scan layout BraggKit knows"), m)
            XCTAssertTrue(m.contains("its top-level groups are other, stuff and its 3D datasets /stuff/frames (4×32×48)"), m)
        }
        // bragg prepare keeps reading such a file (and a generic NeXus file) as a plain stack.
        XCTAssertNil(try BeamlineReaders.scans([p], beamline: nil, scan: nil))
        XCTAssertNil(try BeamlineReaders.scans([try BeamlineFiles.path("generic.nxs")], beamline: nil, scan: nil))
        XCTAssertEqual(try BeamlineReaders.scans([try BeamlineFiles.path("sixs.nxs")], beamline: nil, scan: nil)?.first?.beamline, .soleilSIXS)
        XCTAssertThrowsError(try BeamlineReaders.scans([p], beamline: "id99", scan: nil)) { e in
            XCTAssertTrue("\(e)".contains("unknown beamline 'id99': BraggKit knows 34idc, id01, p10, i16, nexus, sixs"), "\(e)")
        }
    }

    func testBasicGeometryIsInCXIUnits() throws {
        let s = try BeamlineReaders.open(path: try BeamlineFiles.path("id01.h5"), scan: "3")
        let g = s.basicGeometry
        XCTAssertEqual(g.energy!, 8500, accuracy: 1e-9)
        XCTAssertEqual(g.rockingStep!, 0.01 * .pi / 180, accuracy: 1e-15)
        XCTAssertEqual(g.pixelSize!, 55e-6, accuracy: 1e-15)
        XCTAssertEqual(g.detectorDistance!, 0.83, accuracy: 1e-12)
    }
}
