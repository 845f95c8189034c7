import XCTest
import Formats
import Numerics
import Simulation
@testable import Neural

/// `bragg phase --method neural` as a user runs it: the results file, and bad models.
final class NeuralCommandTests: XCTestCase {
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("neural-command-tests-\(getpid())")

    override func setUp() {
        try? FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    func bragg(_ args: [String]) throws -> (status: Int32, output: String) {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("bragg is not built next to the tests") }
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

    /// The neural result is written in the iterative method's frame: the linear phase ramp
    /// the network's raw output has is removed and recorded, the global phase is zeroed,
    /// and the loss curve of the refinement is in the file.
    func testNeuralResultsFileIsInTheReportingFrame() throws {
        let arch = NetworkArchitecture(width: 2, inputSize: 16, channelsPerGroup: 2)
        let net = try PhaseNet(architecture: arch, seed: 5)
        let model = path("tiny.safetensors")
        try net.save(to: model)
        // a crystal whose Bragg peak sits off the box centre (a ramp of 0.06 cycles/voxel in x)
        let (_, object) = try GradientCheckTests.testPattern(box: 16, radius: 3)
        let ramped = ComplexVolume(shape: object.shape) { i in
            object[flat: i] * Complex32(modulus: 1, phase: Float(2 * Double.pi * 0.06 * Double(i % 16)))
        }
        let pattern = try FFT.forward(ramped.ifftshifted()).fftshifted().intensity()
        let input = path("pattern.npy")
        try ArrayIO.write(pattern, to: input, overwrite: false)
        let out = path("neural.cxi")
        let (status, text) = try bragg(["phase", input, "--method", "neural", "--model", model, "--refine-steps", "3",
                                        "--threads", "1", "--out", out, "-q"])
        XCTAssertEqual(status, 0, text)
        let res = try CXIResults.read(from: out)
        let written = try XCTUnwrap(res.object)
        XCTAssertEqual(written.shape, [16, 16, 16])
        XCTAssertEqual(res.curves["loss"]?.count, 4)
        // what the network gave, by the library, in this process (same model, same pattern)
        let (again, _) = try PhaseNet.load(from: model)
        let raw = try NeuralPhaser.reconstruct(pattern: pattern, model: again, refineSteps: 3)
        let rawRamp = raw.object.braggPeakRamp().cyclesPerVoxel
        guard case .doubles(let recorded)? = res.parameters["phase_ramp_removed_cycles_per_voxel"] else {
            return XCTFail("no recorded ramp in \(res.parameters.keys.sorted())")
        }
        XCTAssertEqual(recorded.count, 3)
        for a in 0..<3 { XCTAssertEqual(recorded[a], rawRamp[a], accuracy: 1e-3) }
        XCTAssertGreaterThan(rawRamp.map(abs).max()!, 0.01, "the raw output should carry a ramp for this test to mean anything")
        // what is left is the centroid's own bias on a periodic grid, largest for a broad
        // spectrum like this untrained network's (13–18 % of the ramp here)
        for (g, g0) in zip(written.braggPeakRamp().cyclesPerVoxel, rawRamp) {
            XCTAssertLessThan(abs(g), 0.25 * abs(g0) + 1e-3, "ramp left \(g) of \(g0)")
        }
        // global phase: Σρ real and positive
        var re = 0.0, im = 0.0
        written.withUnsafeFloats { p in for i in 0..<(p.count / 2) { re += Double(p[2 * i]); im += Double(p[2 * i + 1]) } }
        XCTAssertGreaterThan(re, 0)
        XCTAssertEqual(im / re, 0, accuracy: 1e-3)
    }

    /// `--symmetries cube` reaches the library: the file holds the chosen prediction's loss
    /// (the lowest of the 48 passes, so no higher than the plain prediction's) and says so.
    func testSymmetriesOptionChoosesTheBestPass() throws {
        let net = try PhaseNet(architecture: NetworkArchitecture(width: 2, inputSize: 16, channelsPerGroup: 2), seed: 5)
        let model = path("tiny-sym.safetensors")
        try net.save(to: model)
        let (pattern, _) = try TrainingPair.make(size: 16, seed: 9)
        let input = path("pattern-sym.npy")
        try ArrayIO.write(pattern, to: input, overwrite: false)
        var losses: [String: Double] = [:]
        for s in ["none", "cube"] {
            let out = path("neural-\(s).cxi")
            let (status, text) = try bragg(["phase", input, "--method", "neural", "--model", model, "--symmetries", s,
                                            "--threads", "1", "--out", out, "-q"])
            XCTAssertEqual(status, 0, text)
            let res = try CXIResults.read(from: out)
            XCTAssertEqual(res.parameters["prediction_symmetries"], .string(s))
            losses[s] = try XCTUnwrap(res.curves["loss"]?.first)
        }
        XCTAssertLessThan(losses["cube"]!, losses["none"]!)
        let (status, text) = try bragg(["phase", input, "--method", "neural", "--model", model, "--symmetries", "octahedral",
                                        "--out", path("never.cxi"), "-q"])
        XCTAssertEqual(status, 2, text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("never.cxi")))
    }

    /// A truncated model, a model of another architecture and a 2D pattern (a 3D pattern of
    /// another size is binned and cropped to the model's input, `InputFittingTests`): one
    /// line naming the file and the problem, exit 2, no output.
    func testBadModelsExitTwo() throws {
        let net = try PhaseNet(architecture: NetworkArchitecture(width: 2, inputSize: 16, channelsPerGroup: 2), seed: 1)
        let model = path("m.safetensors")
        try net.save(to: model)
        let data = try Data(contentsOf: URL(fileURLWithPath: model))
        let truncated = path("cut.safetensors")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        var other = SafetensorsFile(metadata: ["format": "braggkit-phasenet", "architecture": "unet-v9"])
        other.tensors["x"] = ([1], [0])
        let foreign = path("unet.safetensors")
        try other.write(to: foreign)
        let p16 = path("p16.npy"), p2d = path("p2d.npy")
        try ArrayIO.write(RealVolume(shape: [16, 16, 16], repeating: 1), to: p16, overwrite: false)
        try ArrayIO.write(RealVolume(shape: [24, 24], repeating: 1), to: p2d, overwrite: false)
        let out = path("never.cxi")
        for (pattern, m, words) in [(p16, truncated, ["cut.safetensors", "truncated"]),
                                    (p16, foreign, ["unet.safetensors", "unet-v9"]),
                                    (p2d, model, ["p2d.npy", "3D pattern", "[24, 24]"])] {
            let (status, text) = try bragg(["phase", pattern, "--method", "neural", "--model", m, "--out", out, "-q"])
            XCTAssertEqual(status, 2, text)
            XCTAssertTrue(text.hasPrefix("bragg: error: "), text)
            XCTAssertEqual(text.split(separator: "\n").count, 1, text)
            for w in words { XCTAssertTrue(text.contains(w), "'\(w)' missing in: \(text)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
