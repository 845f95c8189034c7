import XCTest
@testable import BraggKit

/// The shared real scan (APS 34-ID-C, scan 54, ../shared/realdata/aps-34idc-scan54): the
/// SPEC file read against the numbers its README lists, the region-of-interest cut of the
/// full-detector dark and flat fields against numpy, and the whole chain prepare → phase →
/// analyze → view with no geometry typed, binned to 64³ so that it stays short.
final class RealScanTests: XCTestCase {
    static let folder: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/realdata/aps-34idc-scan54").standardizedFileURL.path
    }()
    var frames: String { RealScanTests.folder + "/Staff20-1a_S0054" }
    var spec: String { RealScanTests.folder + "/example.spec" }

    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bk-real-\(UUID().uuidString)")
    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: RealScanTests.folder + "/example.spec") else {
            throw XCTSkip("the real scan is not at \(RealScanTests.folder)")
        }
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }
    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func bragg(_ args: [String]) throws -> (status: Int32, output: String) {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        return try run(exe, args)
    }

    /// Runs a script with the first python3 on PATH (or /usr/bin) that has numpy and
    /// tifffile (Debian's python3-tifffile, in the Makefile's TEST_DEBS).
    func python(_ script: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates = (path.split(separator: ":").map(String.init) + ["/usr/bin"]).map { $0 + "/python3" }
        for exe in candidates where FileManager.default.isExecutableFile(atPath: exe) {
            guard try run(exe, ["-c", "import numpy, tifffile"]).status == 0 else { continue }
            let r = try run(exe, ["-c", script])
            XCTAssertEqual(r.status, 0, r.output)
            return r.output
        }
        throw XCTSkip("no python3 with numpy and tifffile: the numpy side of the check is skipped")
    }

    /// The wavelength and |Q| the SPEC angles give: 9 keV, 2θ = acos(cos δ cos γ).
    static let energy = 9000.0
    static let delta = 32.174, gamma = 12.6346
    static var twoTheta: Double { acos(cos(delta * .pi / 180) * cos(gamma * .pi / 180)) }
    static var qFromAngles: Double { 4 * .pi * sin(twoTheta / 2) / (BraggGeometry.hc / energy) }

    func testSPECScan54() throws {
        let s = try SPECFile(path: spec).scan(54)
        XCTAssertEqual(s.command, "ascan  th -0.279996 0.720004  200 0.25")
        XCTAssertEqual(s.scannedMotors.first?.name, "Theta")
        XCTAssertEqual(s.intervals, 200)
        XCTAssertEqual(s.points, 201)
        XCTAssertEqual(try s.position("Theta"), 0.2200042)     // the motor line: before the scan
        XCTAssertEqual(s.column("Theta")?.first, -0.2799992)    // the first point, as read back
        XCTAssertEqual(try s.position("Delta"), 32.174)
        XCTAssertEqual(try s.position("Gamma"), 12.6346)
        XCTAssertEqual(try s.position("Energy"), 9)
        XCTAssertEqual(try s.position("IDEnergy"), 9.198)
        XCTAssertEqual(try s.position("camdist"), 500)
        XCTAssertEqual(s.header["UIMR5"], "0 256 0 256 1")
        XCTAssertEqual(twoThetaDegrees, 34.316, accuracy: 5e-4)   // the README's value

        let b = try APS34IDC.read(folder: frames, specPath: spec, scan: 54)
        XCTAssertEqual(b.rockingMotor, "Theta")
        XCTAssertEqual(b.rockingStep ?? .nan, 0.005, accuracy: 1e-12)
        XCTAssertEqual(b.angles["Theta"], -0.2799992)
        XCTAssertEqual(b.energy, 9000)
        XCTAssertEqual(b.distance ?? .nan, 0.5, accuracy: 1e-15)
        XCTAssertEqual(b.pixelSize?.row, 55e-6)
        XCTAssertEqual(b.roiOrigin.row, 0); XCTAssertEqual(b.roiOrigin.column, 0)
        XCTAssertEqual(b.detectorShape?.rows, 512); XCTAssertEqual(b.detectorShape?.columns, 512)
        XCTAssertEqual(b.monitor?.count, 201)
        XCTAssertEqual(b.monitor?.first, 1070)
        // ImageTot is each frame's sum, in file order
        let tot = try s.requireColumn("ImageTot")
        for k in [0, 100, 200] {
            var buf = [Float](repeating: 0, count: 256 * 256)
            try buf.withUnsafeMutableBufferPointer { try b.frames.readFrames(k..<(k + 1), into: $0.baseAddress!) }
            XCTAssertEqual(buf.reduce(0.0) { $0 + Double($1) }, tot[k], "frame \(k)")
        }
    }
    var twoThetaDegrees: Double { RealScanTests.twoTheta * 180 / .pi }

    func testFrameCountMustMatchTheScan() throws {
        let short = path("short")
        try FileManager.default.createDirectory(atPath: short, withIntermediateDirectories: true)
        for k in 0..<200 {
            let name = String(format: "Staff20-1a_S0054_%05d.tif", k)
            try FileManager.default.createSymbolicLink(atPath: short + "/" + name, withDestinationPath: frames + "/" + name)
        }
        XCTAssertThrowsError(try APS34IDC.read(folder: short, specPath: spec, scan: 54)) { e in
            XCTAssertEqual("\(e)", "\(short) holds 200 frames but scan #S 54 of \(spec) recorded 201 points (ascan  th -0.279996 0.720004  200 0.25)")
        }
        XCTAssertThrowsError(try APS34IDC.read(folder: frames, specPath: spec, scan: 999)) { e in
            XCTAssertEqual("\(e)", "the SPEC file \(spec) has no scan #S 999 (it holds scans 1–498)")
        }
    }

    /// The full-detector dark (bad-pixel map) and flat cut to the region of interest, against
    /// numpy slices of tifffile's reading: the scan's own region (rows 0–255, columns 0–255)
    /// and a shifted one (from row 100, column 200) to tell rows from columns.
    func testDarkAndFlatCutToTheRegionOfInterest() throws {
        let dark = RealScanTests.folder + "/dark.tif", flat = RealScanTests.folder + "/whitefield.tif"
        var b = try APS34IDC.read(folder: frames, specPath: spec, scan: 54)
        for origin in [(0, 0), (100, 200)] {
            b.roiOrigin = origin
            let tag = "\(origin.0)_\(origin.1)"
            _ = try python("""
                import numpy as np, tifffile
                r, c = \(origin.0), \(origin.1)
                d = tifffile.imread('\(dark)')[r:r+256, c:c+256]
                f = tifffile.imread('\(flat)')[r:r+256, c:c+256].astype(np.float64)
                np.save('\(path("bad_\(tag).npy"))', (d > 1).astype(np.float32))
                ok = f >= 100
                np.save('\(path("eff_\(tag).npy"))', np.where(ok, f / f[ok].mean(), 0).astype(np.float32))
                """)
            let bad = APS34IDC.badPixelMask(try b.cutToROI(try CalibrationImage.read(dark), what: "dark"))
            let eff = try APS34IDC.relativeEfficiency(try b.cutToROI(try CalibrationImage.read(flat), what: "flat"))
            XCTAssertEqual(bad.floats, try ArrayIO.readReal(path("bad_\(tag).npy")).floats, "bad pixels at \(origin)")
            let want = try ArrayIO.readReal(path("eff_\(tag).npy")).floats
            XCTAssertEqual(eff.shape, [256, 256])
            XCTAssertEqual(zip(eff.floats, want).map { abs($0 - $1) }.max() ?? 1, 0, accuracy: 1e-5, "flat at \(origin)")
            XCTAssertGreaterThan(bad.floats.reduce(0, +), 0, "the map marks pixels in this region")
        }
        b.roiOrigin = (300, 0)
        XCTAssertThrowsError(try b.cutToROI(try CalibrationImage.read(dark), what: "dark")) { e in
            XCTAssertTrue("\(e)".contains("do not hold the scan's region of interest (256×256 pixels from row 300, column 0)"), "\(e)")
        }
    }

    /// prepare (no geometry option) → phase → analyze → view on the real scan, binned 2×2×2
    /// around the Bragg peak to 64³.
    /// A series keeps one shape: a second state prepared --like the first takes its crop
    /// size and binning (here from the full scan, centred by the maximum instead, so its
    /// own default crop would differ).
    func testSecondStateTakesTheShapeOfTheFirst() throws {
        let a = path("a.cxi"), b = path("b.cxi"), c = path("c.cxi")
        var r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--size", "96,120,128", "--bin", "2,2,2", "--out", a, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--centre", "max", "--like", a, "--out", b])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("size 96,120,128 and binning 2,2,2 from \(a)"), r.output)
        let pa = try CXIResults.read(from: a), pb = try CXIResults.read(from: b)
        XCTAssertEqual(pa.pattern?.shape, [48, 60, 64])
        XCTAssertEqual(pb.pattern?.shape, pa.pattern?.shape)
        XCTAssertEqual(pb.parameters["binning"], .ints([2, 2, 2]))
        // --like with --size is refused before any frame is read, and nothing is written
        r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--like", a, "--size", "64", "--out", c])
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: c))
    }

    func testChainCarriesTheGeometry() throws {
        let cxi = path("s54.cxi"), res = path("r.cxi"), an = path("a"), vw = path("v")
        var r = try bragg(["prepare", frames, "--spec", spec, "--scan", "54", "--size", "128", "--bin", "2", "--out", cxi, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        // what prepare wrote: the SPEC's angles at the pattern's centre, the binned pixels and step
        let p = try CXIResults.read(from: cxi).geometry
        XCTAssertEqual(p.beamline, "34idc")
        XCTAssertEqual(p.energy, RealScanTests.energy)
        XCTAssertEqual(p.detectorDistance ?? .nan, 0.5, accuracy: 1e-12)
        XCTAssertEqual(p.pixelSize ?? .nan, 110e-6, accuracy: 1e-15)
        XCTAssertEqual(p.rockingStep ?? .nan, 0.010 * .pi / 180, accuracy: 1e-9)
        XCTAssertEqual(p.rockingCircle, "Theta")
        XCTAssertEqual(p.angles["Delta"], RealScanTests.delta)
        XCTAssertEqual(p.angles["Gamma"], RealScanTests.gamma)
        XCTAssertEqual(p.angles["Chi"], 90); XCTAssertEqual(p.angles["Phi"], -5)
        XCTAssertEqual(p.shape, [64, 64, 64])
        // the centre frame's Theta: the first point plus the step times the frames before it
        let prep = try HDF5File(reading: cxi).attributes(of: CXIResults.processPath)
        guard case .ints(let start)? = prep["crop_start"] else { return XCTFail("no crop_start") }
        let centreFrame = Double(start[0] + 2 * 32) + 0.5
        XCTAssertEqual(p.angles["Theta"] ?? .nan, -0.2799992 + 0.005 * centreFrame, accuracy: 1e-9)
        XCTAssertEqual(p.peakPixel?[0] ?? .nan, Double(start[1] + 64) + 0.5, accuracy: 1e-9)
        XCTAssertEqual(p.roiOrigin, [0, 0])
        let q = (p.qVector ?? []).map { $0 * $0 }.reduce(0, +).squareRoot()
        XCTAssertEqual(q, RealScanTests.qFromAngles, accuracy: 0.002 * RealScanTests.qFromAngles)

        r = try bragg(["phase", cxi, "--recipe", "short", "--out", res, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        let g = try CXIResults.read(from: res).geometry
        XCTAssertEqual(g.angles, p.angles)
        XCTAssertEqual(g.energy, p.energy)
        XCTAssertEqual(g.shape, [64, 64, 64])
        // voxel sizes: the edges of the real-space basis, and the basis conjugate to the
        // reciprocal steps of the geometry the SPEC angles give: a_b · Δq_a = 2π δ_ab / n
        guard let v = g.voxelSize, let basis = g.realSpaceBasis, basis.count == 3 else { return XCTFail("no voxel size in \(res)") }
        for a in 0..<3 { XCTAssertEqual(v[a], norm(Vector3(basis[a][0], basis[a][1], basis[a][2])), accuracy: 1e-6 * v[a]) }
        let truth = BraggGeometry(energy: RealScanTests.energy, twoTheta: RealScanTests.twoTheta,
                                  outOfPlane: RealScanTests.gamma * .pi / 180, distance: 0.5, pixelSize: 110e-6,
                                  rockingStep: 0.010 * .pi / 180)
        let dq = truth.reciprocalSteps
        for a in 0..<3 { for b in 0..<3 {
            let d = dot(Vector3(basis[b][0], basis[b][1], basis[b][2]), dq[a])
            XCTAssertEqual(d, a == b ? 2 * .pi / 64 : 0, accuracy: 1e-3 * 2 * .pi / 64, "a_\(b)·Δq_\(a)")
        } }

        r = try bragg(["analyze", res, "--out", an, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("geometry from \(res)"), r.output)
        let table = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: an + "/table.json"))) as! [String: Any]
        let rec = table["geometry_record"] as! [String: Any]
        XCTAssertEqual(rec["beamline"] as? String, "34idc")
        XCTAssertEqual((rec["angles_deg"] as? [String: Double])?["Gamma"], RealScanTests.gamma)
        let qt = table["q_magnitude_per_m"] as! Double
        XCTAssertEqual(qt, RealScanTests.qFromAngles, accuracy: 0.002 * RealScanTests.qFromAngles)
        let vt = table["voxel_size_nm"] as! [Double]
        for a in 0..<3 { XCTAssertEqual(vt[a], v[a] * 1e9, accuracy: 1e-6 * vt[a]) }
        // the crystal: a gold particle a few hundred nm across (0.35 × 0.27 × 0.37 µm unbinned)
        let ext = table["crystal_extent_lab_um"] as! [String: Double]
        for k in ["x", "y", "z"] { XCTAssertTrue((0.1...0.8).contains(ext[k] ?? 0), "extent \(k) = \(ext[k] ?? .nan) µm") }

        r = try bragg(["view", res, "--out", vw, "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains(String(format: "voxel %.2f × %.2f × %.2f nm (z, y, x) from the file's geometry", v[0] * 1e9, v[1] * 1e9, v[2] * 1e9)), r.output)
        // without geometry (a bare object) the bars count voxels
        try ArrayIO.write(try CXIResults.read(from: res).object!, to: path("o.npy"), overwrite: true)
        r = try bragg(["view", path("o.npy"), "--out", vw, "--force", "--quiet"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("scale bars and mesh in voxels"), r.output)
    }
}
