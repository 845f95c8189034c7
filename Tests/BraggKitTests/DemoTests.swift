import XCTest
@testable import BraggKit

/// The demo pipeline as a library call, tiny: what `Demo.run` returns is what it wrote.
final class DemoPipelineTests: XCTestCase {
    final class Collected: @unchecked Sendable {
        let lock = NSLock()
        var headings: [String] = []
        func add(_ s: String) { lock.lock(); headings.append(s); lock.unlock() }
    }

    func testDemoRunReturnsWhatItWrote() throws {
        let out = NSTemporaryDirectory() + "braggkit-demo-\(getpid())/demo"
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        var settings = Demo.Settings(out: out, version: "test")
        settings.size = 32; settings.scans = 3; settings.photons = 2e5; settings.runs = 1
        settings.recipe = "HIO:40 beta=0.9 sw=20 threshold=0.1, ER:20 sw=20 threshold=0.1"
        let collected = Collected()
        let outcome = try Demo.run(settings: settings) { r in
            if r.stage == Demo.headingStage, let h = r.note { collected.add(h) }
        }

        // Every step announced, in order, and timed.
        let steps = collected.headings.compactMap { $0.first }.map(String.init)
        XCTAssertEqual(Array(Set(steps)).sorted(), ["1", "2", "3", "4", "5"])
        XCTAssertEqual(steps, steps.sorted())
        XCTAssertEqual(outcome.steps.map { $0.name.split(separator: " ").first.map(String.init) },
                       ["simulation", "preparation", "iterative", "analysis", "report"])

        // Six states, each with its scans on disk and its prepared pattern as returned.
        XCTAssertEqual(outcome.labels.count, 6)
        for (i, name) in outcome.names.enumerated() {
            XCTAssertEqual(outcome.scanFiles[i].count, 3)
            for f in outcome.scanFiles[i] { XCTAssertTrue(FileManager.default.fileExists(atPath: f), f) }
            let p = outcome.prepared[i]
            XCTAssertEqual(p.path, "\(out)/prepared/\(name).cxi")
            let file = try CXIResults.read(from: p.path)
            XCTAssertEqual(file.pattern?.floats, p.pattern.floats, name)
            XCTAssertEqual(file.mask?.floats, p.mask.floats, name)
            XCTAssertEqual(file.metrics["scans_summed"], Double(p.result.scans.filter(\.included).count))
            // The reconstruction written is the one returned, and its χ² the analysis'.
            let r = try CXIResults.read(from: "\(out)/reconstructions/\(name).cxi")
            XCTAssertEqual(r.object?.shape, outcome.reconstructions[i].object.shape)
            XCTAssertEqual(try XCTUnwrap(r.object).floats, outcome.reconstructions[i].object.floats, name)
            XCTAssertEqual(r.metrics["chi2"], outcome.reconstructions[i].chi2)
            XCTAssertEqual(outcome.analysis.states[i].chi2, outcome.reconstructions[i].chi2)
            XCTAssertEqual(r.parameters["source"], .string(p.path))
        }
        XCTAssertTrue(outcome.neural.isEmpty, "no model given: the iterative method alone")

        // The analysis files are the returned analysis', the report the returned one.
        XCTAssertEqual(try String(contentsOfFile: out + "/table.csv", encoding: .utf8), outcome.analysis.tableCSV())
        XCTAssertEqual(outcome.report.html, out + "/report.html")
        XCTAssertTrue(FileManager.default.fileExists(atPath: outcome.report.html))
        for f in outcome.report.figures { XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + f), f) }

        // provenance.json holds the returned provenance: the demo, mkdir, simulate, six
        // prepare, six phase, analyze, report; the truth per state as compared.
        let prov = try JSONDecoder().decode(Provenance.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/provenance.json")))
        XCTAssertEqual(prov.commands, outcome.provenance.commands)
        XCTAssertEqual(prov.commands.count, 3 + 6 + 6 + 2)
        XCTAssertEqual(prov.commands.filter { $0.hasPrefix("bragg prepare ") }.count, 6)
        XCTAssertEqual(prov.reconstructions.count, 6)
        for (i, label) in outcome.labels.enumerated() {
            XCTAssertEqual(prov.reconstructions[label], "\(out)/reconstructions/\(outcome.names[i]).cxi")
            XCTAssertEqual(prov.preparations?[label], outcome.prepared[i].path)
            XCTAssertEqual(prov.inputs[i], outcome.scanFiles[i][0])
        }
        XCTAssertTrue(prov.alternatives.isEmpty)
        for c in outcome.comparison.states {
            let t = try XCTUnwrap(prov.groundTruth[c.label]?["delta_phi_mean_deg"])
            XCTAssertEqual(t, c.trueDeltaPhi * 180 / .pi, accuracy: 1e-9, c.label)
        }

        // experiment.toml names the six reconstructions in order.
        let experiment = try Experiment.load(path: out + "/experiment.toml")
        XCTAssertEqual(experiment.states.map(\.label), outcome.labels)

        // A second run into the folder with a report is refused before any work.
        XCTAssertThrowsError(try Demo.run(settings: settings)) { e in
            XCTAssertEqual(e as? DemoError, .reportExists(folder: out))
        }
        settings.size = 16
        XCTAssertThrowsError(try Demo.check(settings)) { e in
            XCTAssertTrue("\(e)".contains("between 32 and 256"), "\(e)")
        }
    }
}
