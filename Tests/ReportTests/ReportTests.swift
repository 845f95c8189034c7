import Foundation
import XCTest
import Numerics
@testable import Report

final class ColourMapTests: XCTestCase {
    func testCyclicMapStartsAndEndsOnTheSameColour() {
        let m = ColourMap.phase
        XCTAssertTrue(m.cyclic)
        XCTAssertEqual(m.colour(0), m.colour(1))
        XCTAssertEqual(m.colour(0.25), m.colour(1.25))
        // Neighbouring entries across the wrap are as close as any other neighbours.
        // Equal phase steps (1/16 of a turn, across the wrap too) look equally different.
        let steps = (0..<256).map { ColourMap.distance(m.table[$0], m.table[($0 + 16) % 256]) }
        XCTAssertLessThan(steps.max()! / steps.min()!, 1.2, "perceptual steps of the cyclic map are even")
        // Constant lightness around the circle (±0.02 in OKLab L after 8-bit rounding).
        let L = m.table.map(ColourMap.lightness)
        XCTAssertLessThan(L.max()! - L.min()!, 0.02)
    }

    func testPinnedColours() {
        XCTAssertEqual(ColourMap.grey.colour(0), RGB(0, 0, 0))
        XCTAssertEqual(ColourMap.grey.colour(1), RGB(255, 255, 255))
        XCTAssertEqual(ColourMap.grey.colour(0.5), RGB(128, 128, 128))
        XCTAssertEqual(ColourMap.grey.colour(2), RGB(255, 255, 255), "clamped")
        // The diverging map is a light neutral at zero, blue below, red above.
        let mid = ColourMap.diverging.colour(0.5), lo = ColourMap.diverging.colour(0), hi = ColourMap.diverging.colour(1)
        XCTAssertGreaterThan(ColourMap.lightness(mid), 0.95)
        XCTAssertLessThan(abs(Int(mid.r) - Int(mid.b)), 8)
        XCTAssertGreaterThan(lo.b, lo.r)
        XCTAssertGreaterThan(hi.r, hi.b)
        XCTAssertEqual(ColourMap.diverging.colour(-5, lo: -1, hi: 1), lo)
        // Lightness is symmetric about the centre (a diverging map must not favour a sign).
        XCTAssertEqual(ColourMap.lightness(ColourMap.diverging.colour(0.2)),
                       ColourMap.lightness(ColourMap.diverging.colour(0.8)), accuracy: 0.04)
        XCTAssertEqual(RGB(255, 0, 16).hex, "#ff0010")
    }
}

final class IsosurfaceTests: XCTestCase {
    func sphere(n: Int, r: Double, centre: Double) -> RealVolume {
        RealVolume(shape: [n, n, n]) { i in
            let z = Double(i / (n * n)) - centre, y = Double(i / n % n) - centre, x = Double(i % n) - centre
            // A smooth signed profile: 1 inside, 0 outside, 0.5 exactly at radius r.
            return Float(0.5 - 0.5 * tanh(((x * x + y * y + z * z).squareRoot() - r) / 1.5))
        }
    }

    func testSphereMeshIsClosedWithoutDuplicatesAndHasTheRightVolume() throws {
        let r = 12.0
        let mesh = try Isosurface.extract(sphere(n: 40, r: r, centre: 19.3), level: 0.5)
        XCTAssertGreaterThan(mesh.triangles.count, 1000)
        XCTAssertTrue(mesh.isClosed, "every edge shared by two triangles in opposite directions")
        XCTAssertEqual(Set(mesh.vertices.map { [$0.x, $0.y, $0.z] }).count, mesh.vertices.count, "no duplicated vertices")
        let exact = 4.0 / 3.0 * .pi * r * r * r
        XCTAssertEqual(mesh.enclosedVolume, exact, accuracy: 0.02 * exact)
        XCTAssertEqual(mesh.area, 4 * .pi * r * r, accuracy: 0.05 * 4 * .pi * r * r)
    }

    func testSpacingScalesTheMesh() throws {
        let v = sphere(n: 24, r: 7, centre: 11.5)
        let a = try Isosurface.extract(v, level: 0.5), b = try Isosurface.extract(v, level: 0.5, spacing: [2, 3, 5])
        XCTAssertEqual(b.enclosedVolume, a.enclosedVolume * 30, accuracy: 1e-3 * b.enclosedVolume)
    }

    func testSurfaceTouchingTheBoxIsStillClosed() throws {
        let v = RealVolume(shape: [6, 7, 8], repeating: 1)   // the whole box is inside
        let m = try Isosurface.extract(v, level: 0.5)
        XCTAssertTrue(m.isClosed)
        XCTAssertEqual(m.enclosedVolume, 6 * 7 * 8, accuracy: 6 * 7 * 8 * 0.35)   // cut halfway into the padding
    }

    func testLevelEnclosingFraction() throws {
        let v = try RealVolume(shape: [5], elements: [4, 3, 2, 1, 0])
        // {v > level} holds 70% of Σv = 10 once 4 and 3 are in.
        let l = try Isosurface.level(enclosing: 0.7, of: v)
        XCTAssertTrue(l < 3 && l > 2)
        XCTAssertThrowsError(try Isosurface.level(enclosing: 0.7, of: RealVolume(shape: [3])))
    }

    func testPhaseColouringAndExports() throws {
        let n = 16
        let amp = sphere(n: n, r: 5, centre: 7.5)
        let phase = RealVolume(shape: [n, n, n]) { i in Float(i % n) * 0.2 - 1.5 }
        let obj = try ComplexVolume(modulus: amp, phase: phase)
        var mesh = try Isosurface.extract(amp, level: 0.5)
        Isosurface.colourByPhase(&mesh, object: obj, spacing: [1, 1, 1])
        XCTAssertEqual(mesh.colours?.count, mesh.vertices.count)
        // A vertex near x = 3 carries the phase −0.9 rad.
        let i = mesh.vertices.indices.min { abs(mesh.vertices[$0].x - 3) < abs(mesh.vertices[$1].x - 3) }!
        let expected = ColourMap.phase.colour((Double(mesh.vertices[i].x) * 0.2 - 1.5 + .pi) / (2 * .pi))
        XCTAssertLessThan(ColourMap.distance(mesh.colours![i], expected), 0.03)
        let ply = mesh.plyText()
        XCTAssertTrue(ply.hasPrefix("ply\nformat ascii 1.0"))
        XCTAssertTrue(ply.contains("element vertex \(mesh.vertices.count)"))
        XCTAssertEqual(ply.split(separator: "\n").count, 13 + mesh.vertices.count + mesh.triangles.count)
        let obj3 = mesh.objText()
        XCTAssertEqual(obj3.split(separator: "\n").filter { $0.hasPrefix("f ") }.count, mesh.triangles.count)
    }
}

final class FigureTests: XCTestCase {
    func testSliceRasterMasksOutsideAndMapsRange() throws {
        let values = try RealVolume(shape: [2, 2], elements: [-1, 0, 1, 5])
        let support = try RealVolume(shape: [2, 2], elements: [1, 1, 1, 0])
        let p = SlicePanel(title: "t", values: values, support: support, map: .grey, range: (-1, 1), unit: "rad",
                           pixelSize: (10, 10))
        let img = try SliceFigure.raster(p)
        XCTAssertEqual(img[0, 0], RGB(0, 0, 0))
        XCTAssertEqual(img[1, 0], RGB(128, 128, 128))
        XCTAssertEqual(img[0, 1], RGB(255, 255, 255))
        XCTAssertEqual(img[1, 1], SliceFigure.outside)
        let full = try SliceFigure.render(p)
        XCTAssertGreaterThan(full.width, 200)
        XCTAssertThrowsError(try SliceFigure.raster(SlicePanel(title: "", values: RealVolume(shape: [2, 2, 2]), map: .grey,
                                                               range: (0, 1), unit: "", pixelSize: (1, 1))))
    }

    func testScaleBarLengthsAreRound() {
        XCTAssertEqual(SliceFigure.niceLength(1600), 200)
        XCTAssertEqual(SliceFigure.niceLength(2100), 500)
        XCTAssertEqual(SliceFigure.niceLength(90), 20)
    }

    func testTextDrawsKnownGlyphs() {
        var img = RGBImage(width: 40, height: 10)
        img.text("1", x: 0, y: 0)
        // '1' has its stem in column 2 on every row but the last (which is the foot).
        for row in 0..<6 { XCTAssertEqual(img[2, row], .black, "row \(row)") }
        XCTAssertEqual(img[0, 0], .white)
        XCTAssertNotNil(BitmapFont.glyphs["φ"]); XCTAssertNotNil(BitmapFont.glyphs["‰"])
    }

    func testRendererDrawsOpaqueAndTranslucentLayers() throws {
        let n = 20
        let ball = RealVolume(shape: [n, n, n]) { i in
            let z = Double(i / (n * n)) - 9.5, y = Double(i / n % n) - 9.5, x = Double(i % n) - 9.5
            return (x * x + y * y + z * z) < 49 ? 1 : 0
        }
        let mesh = try Isosurface.extract(ball, level: 0.5)
        let img = MeshRenderer.render([MeshLayer(mesh: mesh, colour: RGB(200, 50, 50))], view: View(azimuth: 30, elevation: 20), size: 120, axes: false)
        XCTAssertNotEqual(img[60, 60], .white, "the sphere covers the centre")
        XCTAssertEqual(img[2, 2], .white, "the corner is background")
        let ghost = MeshRenderer.render([MeshLayer(mesh: mesh, colour: RGB(200, 50, 50), opacity: 0.3)], view: View(azimuth: 30, elevation: 20), size: 120, axes: false)
        let c = ghost[60, 60]
        XCTAssertGreaterThan(Int(c.g), Int(img[60, 60].g), "translucent is lighter over white")
    }

    func testSVGPlotHasSeriesAndTicks() {
        let s = SVGPlot(title: "PCA order parameter", xTitle: "state", yTitle: "Ω (rad)",
                        series: [PlotSeries(name: "Ω", x: [0, 1, 2], y: [0, 0.5, -0.2])],
                        categories: ["2.5 V", "3.0 V", "3.5 V"], referenceY: 0).svg()
        XCTAssertTrue(s.hasPrefix("<svg"))
        XCTAssertEqual(s.components(separatedBy: "<circle").count - 1, 3)
        XCTAssertTrue(s.contains("3.0 V"))
        XCTAssertEqual(SVGPlot.ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(SVGPlot.ticks(-3, 7).first, -2)
    }
}

final class HTMLReportTests: XCTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks, and data that crosses the padding boundary.
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256.Hasher()
        for _ in 0..<1000 { h.update(Data(repeating: 0x61, count: 1000)) }
        XCTAssertEqual(h.finalize(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")   // 10⁶ × 'a'
    }

    /// A file read in several 4 MiB pieces, with a tail that is not a whole block, against
    /// Python's hashlib.sha256 (the provenance checksums are of such files).
    func testSHA256OfAFileMatchesHashlib() throws {
        let python = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw XCTSkip("no \(python)") }
        let path = NSTemporaryDirectory() + "braggkit-sha256-\(getpid()).bin"
        defer { unlink(path) }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<(9 << 20) + 17).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 56)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        XCTAssertEqual(expected.count, 64, expected)
        XCTAssertEqual(try SHA256.hex(file: path), expected)
    }

    func testPageListsTablesFiguresAndEscapes() {
        let r = SeriesReport(title: "Series <test>", summary: ["six states"],
                             sections: [ReportSection(title: "Table 1", paragraphs: ["u = φ/|Q|"],
                                                      tables: [ReportTable(headers: ["state", "Δφ (°)"], rows: [["2.5 V", "0.0"], ["3.0 V", "13.8"]])],
                                                      figures: [ReportFigure(caption: "slices", path: "fig/a&b.png")])],
                             provenance: [("BraggKit", "0.1.0")], commands: ["bragg demo"], checksums: [(file: "x.h5", sha256: "00")])
        let html = HTMLReport.render(r)
        XCTAssertTrue(html.contains("<title>Series &lt;test&gt;</title>"))
        XCTAssertTrue(html.contains("<td>13.8</td>"))
        XCTAssertEqual(HTMLReport.referencedImages(in: html), ["fig/a&b.png"])
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "opens with no network")
    }
}

import Formats

final class SeriesReportBuilderTests: XCTestCase {
    /// A two-state analysis folder as `bragg analyze` writes it (table.json, pca.json, .vti).
    func makeFolder() throws -> String {
        let dir = NSTemporaryDirectory() + "bragg-report-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let n = 16
        let inside = RealVolume(shape: [n, n, n]) { i in
            let z = i / (n * n) - 8, y = i / n % n - 8, x = i % n - 8
            return abs(z) < 5 && abs(y) < 4 && abs(x) < 6 ? 1 : 0
        }
        for (k, label) in ["2.5 V", "3.0 V"].enumerated() {
            let phase = RealVolume(shape: [n, n, n]) { i in Float(k) * 0.3 * Float(i % n - 8) / 8 }
            var region = RealVolume(shape: [n, n, n]); region[8, 8, 12] = 1
            let proj = RealVolume(shape: [n, n, n]) { i in Float(k) * Float(i % n) / 16 }
            try VTI.write([("amplitude", inside), ("phase", phase), ("delta_phase", phase), ("displacement", phase),
                           ("strain", phase), ("support", inside), ("inverse_pca", proj), ("pca_region", region)],
                          to: dir + String(format: "/state_%02d_%@.vti", k, label.replacingOccurrences(of: " ", with: "_")),
                          spacing: [20, 20, 20], origin: [0, 0, 0], overwrite: true)
        }
        let table: [String: Any] = [
            "reference": "2.5 V", "lab_grid": ["voxel_nm": 20.0],
            "geometry": ["q_magnitude_per_m": 3.398e10, "energy_eV": 13500.0, "two_theta_deg": 28.8],
            "states": [
                ["label": "2.5 V", "condition": "charge", "chi2": 0.0123, "delta_phi_mean_deg": 0.0, "mean_relative_displacement_A": 0.0,
                 "mean_relative_displacement_seed_convention_A": 0.0, "mean_relative_strain_permille": 0.0, "omega_rad": 0.0,
                 "omega_normalised": 0.0, "filled_voxels": 3, "twin_flipped": false],
                ["label": "3.0 V", "condition": "charge", "chi2": 0.0234, "delta_phi_mean_deg": 13.8, "mean_relative_displacement_A": 0.0709,
                 "mean_relative_displacement_seed_convention_A": 0.1418, "mean_relative_strain_permille": 0.0421, "omega_rad": 2.5,
                 "omega_normalised": 1.0, "filled_voxels": 0, "twin_flipped": true],
            ],
        ]
        let pca: [String: Any] = ["explained_variance": [1.0], "omega_normalised": [0.0, 1.0], "region_fraction": 0.99]
        try JSONSerialization.data(withJSONObject: table).write(to: URL(fileURLWithPath: dir + "/table.json"))
        try JSONSerialization.data(withJSONObject: pca).write(to: URL(fileURLWithPath: dir + "/pca.json"))
        return dir
    }

    func testReportTableAgreesWithTableJSONAndEveryImageExists() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try SeriesReportBuilder.build(directory: dir)
        let html = try String(contentsOfFile: out.html, encoding: .utf8)
        // Table 1 carries table.json's numbers, with the seed's factor-2 column beside ours.
        XCTAssertTrue(html.contains("<td>3.0 V</td><td>charge</td><td>0.0234</td><td>13.80</td><td>0.0709</td><td>0.1418</td><td>0.0421</td><td>2.500</td><td>1.000</td>"))
        XCTAssertTrue(html.contains("2φ/|Q|"))
        let images = HTMLReport.referencedImages(in: html)
        XCTAssertGreaterThanOrEqual(images.count, 4)
        for img in images {
            let path = dir + "/" + img
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "missing \(img)")
            let head = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)
            if img.hasSuffix(".png") { XCTAssertEqual(Array(head), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], img) }
            if img.hasSuffix(".svg") { XCTAssertEqual(String(decoding: head.prefix(4), as: UTF8.self), "<svg", img) }
        }
        XCTAssertEqual(out.states.map(\.label), ["2.5 V", "3.0 V"])
    }

    /// The training-loss figure draws the model's history along its lineage of runs; a
    /// history of one epoch (a single dot) draws none.
    func testTrainingLossFigureNeedsTwoEpochs() throws {
        let dir = try makeFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let curve = Provenance(braggkitVersion: "test", trainingLoss: [3e-3, 2.5e-3, 2.2e-3], validationLoss: [2.9e-3, 2.4e-3, 2.1e-3],
                               trainingRunStarts: [1, 3])
        var html = try String(contentsOfFile: try SeriesReportBuilder.build(directory: dir, provenance: curve).html, encoding: .utf8)
        XCTAssertTrue(HTMLReport.referencedImages(in: html).contains { $0.hasSuffix("training_loss.svg") })
        XCTAssertTrue(html.contains("began at epochs 1, 3"))
        let svg = try String(contentsOfFile: dir + "/figures/training_loss.svg", encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 6, "three epochs, training and validation")
        try FileManager.default.removeItem(atPath: dir + "/figures/training_loss.svg")
        let dot = Provenance(braggkitVersion: "test", trainingLoss: [2.2e-3], validationLoss: [2.1e-3])
        html = try String(contentsOfFile: try SeriesReportBuilder.build(directory: dir, provenance: dot).html, encoding: .utf8)
        XCTAssertFalse(html.contains("training_loss.svg"))
    }

    func testMissingAnalysisIsAClearError() {
        XCTAssertThrowsError(try SeriesReportBuilder.build(directory: "/nonexistent/folder")) { e in
            XCTAssertTrue("\(e)".contains("table.json is missing"), "\(e)")
        }
    }
}

final class ViewCommandTests: XCTestCase {
    func run(_ args: [String]) throws -> (status: Int32, stderr: String) {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let err = Pipe()
        p.standardError = err; p.standardOutput = Pipe()
        try p.run(); p.waitUntilExit()
        return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func testViewRefusesMissingSupportAndNaN() throws {
        let dir = NSTemporaryDirectory() + "bragg-view-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var obj = ComplexVolume(shape: [8, 8, 8], repeating: Complex32(1, 0))
        try CXIResults(object: obj).write(to: dir + "/nosupport.cxi", overwrite: true)
        let a = try run(["view", dir + "/nosupport.cxi", "--out", dir + "/v"])
        XCTAssertEqual(a.status, 2)
        XCTAssertTrue(a.stderr.contains("no support"), a.stderr)
        obj[2, 2, 2] = Complex32(.nan, 0)
        try ArrayIO.write(obj, to: dir + "/nan.npy", overwrite: true)
        let b = try run(["view", dir + "/nan.npy", "--out", dir + "/v"])
        XCTAssertEqual(b.status, 2)
        XCTAssertTrue(b.stderr.contains("NaN"), b.stderr)
        XCTAssertEqual(b.stderr.split(separator: "\n").count, 1, "one sentence")
    }
}
