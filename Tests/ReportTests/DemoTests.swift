import Foundation
import XCTest
import Formats
import Numerics
@testable import Report

/// The report's preparation section, against numbers written by hand into a prepared file.
final class PreparationSectionTests: XCTestCase {
    func testSectionReadsShiftsMaskAndRegistrationErrorFromTheFiles() throws {
        let dir = NSTemporaryDirectory() + "bragg-prep-section-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three scans simulated with drifts d_k; the preparation found shifts s_k. The error
        // is (s_k − s_0) + (d_k − d_0) for scans 1 and 2, over 3 axes each.
        let drifts: [[Double]] = [[0.2, -0.1, 0.4], [1.3, 0.5, -0.6], [-0.7, 0.2, 0.1]]
        let shifts: [[Double]] = [[0, 0, 0], [-1.0, -0.65, 0.95], [0.9, -0.3, 0.3]]
        var sources: [String] = []
        for (k, d) in drifts.enumerated() {
            let path = dir + "/scan_\(k).h5"
            try HDF5File.create(path, overwrite: true) { f in
                try f.write(doubles: d, at: "/entry/simulation/drift")
                try f.write(RealVolume(shape: [2, 4, 4]), at: "/entry/instrument/detector/data")
            }
            sources.append(path + ":/entry/instrument/detector/data")
        }
        var expected = 0.0
        for k in 1...2 { for a in 0..<3 { let e = shifts[k][a] + drifts[k][a] - drifts[0][a]; expected += e * e } }
        expected = (expected / 6).squareRoot()
        var mask = RealVolume(shape: [8, 8, 8])
        for i in 0..<40 { mask[flat: i] = 1 }
        let cxi = CXIResults(pattern: RealVolume(shape: [8, 8, 8], repeating: 2), mask: mask,
                             parameters: ["scans": .string(sources.joined(separator: "\n"))],
                             arrays: ["scan_shifts": NDArray(shifts.flatMap { $0 }, shape: [3, 3]),
                                      "scan_correlations": NDArray([1, 0.98, 0.4]),
                                      "scan_included": NDArray([1, 1, 0] as [Int]),
                                      "scan_hot_pixels": NDArray([3, 4, 3] as [Int])])
        try cxi.write(to: dir + "/prepared.cxi", overwrite: true)
        let s = try PreparationSection.read(label: "2.5 V", path: dir + "/prepared.cxi")
        XCTAssertEqual(s.scansSummed, 2)
        XCTAssertEqual(s.maskedVoxels, 40)
        XCTAssertEqual(s.maskedFraction, 40.0 / 512, accuracy: 1e-12)
        XCTAssertEqual(s.hotPixels, [3, 4, 3])
        XCTAssertNil(s.constantPixels)
        XCTAssertEqual(s.shifts[1][2], 0.95, accuracy: 1e-6)
        // Scan 2 was left out: only scan 1 counts.
        var e1 = 0.0
        for a in 0..<3 { let e = shifts[1][a] + drifts[1][a] - drifts[0][a]; e1 += e * e }
        XCTAssertEqual(try XCTUnwrap(s.registrationErrorRMS), (e1 / 3).squareRoot(), accuracy: 1e-6)
        XCTAssertNotEqual((e1 / 3).squareRoot(), expected, accuracy: 1e-3)
        var written: [String] = []
        let section = try PreparationSection.section([s]) { text, name in
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8); written.append(name); return name
        }
        XCTAssertEqual(written.count, 4)
        let row = try XCTUnwrap(section.tables.first?.rows.first)
        XCTAssertEqual(row[1], "2 of 3")
        XCTAssertEqual(row[2], "-1.00 … +0.00")
        XCTAssertEqual(row[5], "0.4000 (0.9800)")
        XCTAssertEqual(row[7], "40 (7.81%)")
        // A file that is not a prepared pattern is named in one sentence.
        try CXIResults(pattern: RealVolume(shape: [4, 4, 4])).write(to: dir + "/plain.cxi", overwrite: true)
        XCTAssertThrowsError(try PreparationSection.read(label: "x", path: dir + "/plain.cxi")) { e in
            XCTAssertTrue("\(e)".contains("records no scan shifts"), "\(e)")
        }
    }
}

/// `bragg demo` from frames, small: the scans on disk, their preparation, the report's
/// preparation section, the experiment file that `bragg analyze` reproduces the demo's
/// table from, and the provenance's commands, run one by one, giving the same table.
final class DemoCommandTests: XCTestCase {
    func bragg(_ args: [String]) throws -> (status: Int32, output: String) {
        try shell([Self.exe()] + args)
    }

    static func exe() throws -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
        return exe
    }

    /// Runs a command line through /bin/sh (globs expand as in a user's shell).
    func shell(_ words: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", words.count == 1 ? words[0] : words.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testDemoStartsFromFramesAndItsCommandsRedoIt() throws {
        let exe = try Self.exe()
        let root = NSTemporaryDirectory() + "bragg-demo-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let out = root + "/demo"
        let recipe = "HIO:60 beta=0.9 sw=20 threshold=0.1, ER:20 sw=20 threshold=0.1"
        let run = try bragg(["demo", "--out", out, "--size", "32", "--scans", "4", "--photons", "2e5", "--runs", "1", "--recipe", recipe,
                             "--no-neural", "--threads", "2", "-q"])
        XCTAssertEqual(run.status, 0, run.output)
        XCTAssertTrue(run.output.contains("demo finished in"), run.output)

        // The frames: 4 scans per state, uint16 counts (5e4 at the peak of each), the monitor
        // and the gap mask.
        let scan = try HDF5File(reading: out + "/simulated/scans/state_02/scan_03.h5")
        let frames = try scan.readArray("/entry/instrument/detector/data")
        XCTAssertEqual(frames.dtype, .uint16)
        XCTAssertEqual(frames.shape, [32, 32, 32])
        XCTAssertEqual(try scan.readDoubles("/entry/monitor/data").count, 32)
        let gaps = try scan.readReal("/entry/instrument/detector/pixel_mask")
        XCTAssertEqual(gaps.sum(), Double(2 * 32 + 2 * 32 - 4), "a 2-pixel gap row and column")

        // The prepared patterns: one common shape, each scan's shift equal to minus its
        // simulated drift relative to the first scan's (the truth the scan files keep).
        for k in 0..<6 {
            let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: out + "/prepared").sorted()[k])
            let p = try CXIResults.read(from: out + "/prepared/" + name)
            XCTAssertEqual(p.pattern?.shape, [32, 32, 32], name)
            let shifts = try XCTUnwrap(p.arrays["scan_shifts"]).realVolume()
            let d0 = try HDF5File(reading: String(format: "%@/simulated/scans/state_%02d/scan_00.h5", out, k)).readDoubles("/entry/simulation/drift")
            for j in 1..<4 {
                let d = try HDF5File(reading: String(format: "%@/simulated/scans/state_%02d/scan_%02d.h5", out, k, j)).readDoubles("/entry/simulation/drift")
                for a in 0..<3 {
                    XCTAssertEqual(Double(shifts[j, a] - shifts[0, a]), -(d[a] - d0[a]), accuracy: 0.1, "\(name) scan \(j) axis \(a)")
                }
            }
            XCTAssertEqual(p.metrics["scans_summed"], 4)
        }

        // The report shows the preparation.
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Preparation: from rocking scans to patterns"))
        XCTAssertTrue(html.contains("registration error vs simulated drift"))
        for img in HTMLReport.referencedImages(in: html) {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + img), "missing \(img)")
        }

        // The experiment file reproduces the demo's analysis.
        let again = try bragg(["analyze", out + "/experiment.toml", "--out", root + "/analysis", "-q"])
        XCTAssertEqual(again.status, 0, again.output)
        let table = try String(contentsOfFile: out + "/table.csv", encoding: .utf8)
        XCTAssertEqual(try String(contentsOfFile: root + "/analysis/table.csv", encoding: .utf8), table)

        // The provenance's commands, after the demo itself, redo it step by step into a new
        // folder: the same table.
        let provenance = try JSONDecoder().decode(Provenance.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/provenance.json")))
        XCTAssertTrue(provenance.commands[0].hasPrefix("bragg demo"))
        let redo = root + "/redo"
        try FileManager.default.createDirectory(atPath: redo, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: out + "/experiment.toml", toPath: redo + "/experiment.toml")
        for c in provenance.commands.dropFirst() {
            let line = c.hasPrefix("bragg ") ? exe + c.dropFirst(5).replacingOccurrences(of: out, with: redo) + " -q"
                                             : c.replacingOccurrences(of: out, with: redo)
            let r = try shell([line])
            XCTAssertEqual(r.status, 0, "\(line)\n\(r.output)")
        }
        XCTAssertEqual(try String(contentsOfFile: redo + "/table.csv", encoding: .utf8), table)
    }
}

/// The report's point-spread-function section, against a results file written by hand with
/// the names `bragg phase` writes (psf_model, psf_fwhm_px, the kernel, each run's widths).
final class PointSpreadSectionTests: XCTestCase {
    func testSectionReadsTheKernelAndEveryRunsWidths() throws {
        let dir = NSTemporaryDirectory() + "bragg-psf-section-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A sampled Gaussian kernel, σ = (1.0, 1.5, 0.8) px, centred in 9³, unit sum.
        let sigma = [1.0, 1.5, 0.8], n = 9
        var k = RealVolume(shape: [n, n, n]), sum = 0.0
        for z in 0..<n { for y in 0..<n { for x in 0..<n {
            let d = [z - 4, y - 4, x - 4].enumerated().map { Double($0.element * $0.element) / (2 * sigma[$0.offset] * sigma[$0.offset]) }
            let v = exp(-d.reduce(0, +)); k[z, y, x] = Float(v); sum += v
        } } }
        k.scale(by: Float(1 / sum))
        let fwhmPerSigma = 2 * (2 * log(2.0)).squareRoot()
        let fwhm = sigma.map { $0 * fwhmPerSigma }
        let path = dir + "/r.cxi", coherentPath = dir + "/c.cxi"
        // With the choice of recipe alternative as scan 54 at 64³ recorded it.
        try CXIResults(parameters: ["psf_model": .string("gauss"), "psf_fwhm_px": .doubles(fwhm), "psf_eta": .double(0),
                                    "psf_background_counts": .double(0)],
                       metrics: ["alternative_choice_iteration": 600, "alternative_chosen": 0],
                       curves: ["run_psf_fwhm_z_px": [fwhm[0], .nan], "run_psf_fwhm_y_px": [fwhm[1], .nan], "run_psf_fwhm_x_px": [fwhm[2], .nan],
                                "alternative_choice_kernel_fwhm": [1.2, 0.23], "alternative_choice_best_chi2": [0.01179, 0.0206]],
                       arrays: ["psf": NDArray(k)]).write(to: path, overwrite: true)
        try CXIResults(parameters: ["psf_model": .string("gauss"), "psf_fwhm_px": .doubles([0.1, 0.2, 0.3])]).write(to: coherentPath, overwrite: true)
        let s = try XCTUnwrap(PointSpreadSection.read(label: "A", results: CXIResults.read(from: path)))
        let c = try XCTUnwrap(PointSpreadSection.read(label: "B", results: CXIResults.read(from: coherentPath)))
        XCTAssertNil(PointSpreadSection.read(label: "C", results: CXIResults()), "no psf recorded: no entry")
        XCTAssertEqual(s.runFWHM.count, 2)
        XCTAssertEqual(s.runFWHM[0][1], fwhm[1], accuracy: 1e-12)
        XCTAssertFalse(s.negligible); XCTAssertTrue(c.negligible)
        // The profile through the centre is the Gaussian relative to its centre.
        for a in 0..<3 {
            let p = PointSpreadSection.profile(try XCTUnwrap(s.kernel), axis: a)
            XCTAssertEqual(p.offsets.first, -4)
            for (o, v) in zip(p.offsets, p.values) { XCTAssertEqual(v, exp(-o * o / (2 * sigma[a] * sigma[a])), accuracy: 1e-6) }
        }
        var files: [String: String] = [:]
        let section = try PointSpreadSection.section([s, c]) { text, name in files[name] = text; return "figures/" + name }
        let rows = section.tables[0].rows
        XCTAssertEqual(rows[0][0], "A"); XCTAssertEqual(rows[0][1], "Gaussian")
        XCTAssertEqual(rows[0][3], "1.00, 1.50, 0.80", "σ back from the FWHM")
        XCTAssertEqual(rows[0][6], String(format: "1: %.2f, %.2f, %.2f; 2: –, –, –", fwhm[0], fwhm[1], fwhm[2]))
        XCTAssertTrue(rows[1][5].hasPrefix("no"), "a negligible kernel is said to leave the coherent projection")
        XCTAssertEqual(rows[0][7], "1 (chosen): FWHM 1.20 px, χ² 0.01179 · 2: FWHM 0.23 px, χ² 0.0206 (iteration 600)")
        XCTAssertEqual(rows[1][7], "–", "no choice recorded")
        // One profile figure: for the blurred state only, three axes.
        XCTAssertEqual(section.figures.map(\.path), ["figures/psf_state_00.svg"])
        XCTAssertEqual(files["psf_state_00.svg"]?.components(separatedBy: "<path d=").count, 4)
    }
}
