import XCTest
import BraggKit

/// The pipeline layer called as a Swift program calls it (no command line): a reconstruction
/// by either method, its CXI results file written and read back, the neural prediction handed
/// to the iterative engine, and the precedence of the geometry sources.
final class ReconstructionTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("braggkit-reconstruction-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A noise-free pattern of a random crystal written as `bragg prepare` writes one: the
    /// pattern and the seed study's geometry in a CXI file.
    func patternFile(size: Int, seed: UInt64) throws -> (path: String, truth: ComplexVolume) {
        var o = TrainingPairOptions(); o.photons = 1e6...1e6; o.phaseRMS = 0.5...0.5; o.poissonNoise = false
        let (pattern, small) = try TrainingPair.make(size: size, seed: seed, options: o)
        let path = dir.appendingPathComponent("pattern_\(size).cxi").path
        try CXIResults(pattern: pattern, geometry: CXIGeometry(BraggGeometry.seedStudy)).write(to: path, overwrite: true)
        return (path, try small.centred(in: [size, size, size]))
    }

    /// Iterative phasing through `Reconstruction.iterative`, written as CXI and as .npy: the
    /// file holds the object bit for bit, and its own contents (object, the phase ramp it
    /// records as removed, pattern) reproduce the χ² it records, computed afresh; the
    /// geometry of the pattern's file comes with the real-space voxel of the object.
    func testIterativeReconstructionRoundTrip() throws {
        let (path, _) = try patternFile(size: 32, seed: 5)
        let input = try PatternInput.read(path, mask: nil)
        XCTAssertNotNil(input.geometry)
        var options = PhasingOptions()
        options.recipe = try Recipe.parse("HIO:60, ER:40"); options.seed = 3
        let r = try Reconstruction.iterative(input, source: path, options: options, supportDescription: "auto")
        XCTAssertEqual(r.method, .iterative)
        XCTAssertLessThan(r.chi2, 0.1, "a noise-free 32³ pattern phases to a small χ²")
        let out = dir.appendingPathComponent("r.cxi").path
        try r.write(to: out, overwrite: false)
        XCTAssertThrowsError(try r.write(to: out, overwrite: false))   // nothing replaced unasked
        let back = try CXIResults.read(from: out)
        let object = try XCTUnwrap(back.object)
        XCTAssertEqual(object.shape, r.object.shape)
        XCTAssertEqual((try object - r.object).modulus().maximum(), 0)
        XCTAssertEqual(back.metrics["chi2"], r.chi2)
        XCTAssertEqual(back.parameters["recipe"], .string(options.recipe.description))
        XCTAssertEqual(back.parameters["source"], .string(path))
        guard case .doubles(let cycles)? = back.parameters["phase_ramp_removed_cycles_per_voxel"] else {
            return XCTFail("no removed phase ramp recorded")
        }
        let data = try PhasingData(intensity: try XCTUnwrap(back.pattern), mask: back.mask)
        let chi2 = try Phaser.metricsOfObject(object, ramp: PhaseRamp(cyclesPerVoxel: cycles), data: data).chi2
        XCTAssertEqual(chi2, r.chi2, accuracy: 1e-3 * r.chi2)
        let expected = try ResultsGeometry.carry(CXIGeometry(BraggGeometry.seedStudy), patternShape: [32, 32, 32],
                                                 objectShape: [32, 32, 32])
        let voxel = try XCTUnwrap(back.geometry.voxelSize), want = try XCTUnwrap(expected.voxelSize)
        for a in 0..<3 { XCTAssertEqual(voxel[a], want[a], accuracy: 1e-9 * want[a]) }
        let npy = dir.appendingPathComponent("r.npy").path
        try r.write(to: npy, overwrite: false)
        XCTAssertEqual((try ArrayIO.readComplex(npy) - r.object).modulus().maximum(), 0)
        XCTAssertThrowsError(try r.write(to: dir.appendingPathComponent("r.tif").path, overwrite: true)) { e in
            XCTAssertFalse("\(e)".contains("--"), "a library error names no command-line flag: \(e)")
        }
    }

    /// The neural method on a pattern larger than the shipped 64³ model takes: cropped around
    /// the Bragg peak, predicted, carried up to the full grid (χ² there as computed directly
    /// from the carried object), then handed to the iterative engine, which lowers χ²; the
    /// results file records the model, the prediction's χ² and its loss curve.
    func testNeuralHandOffOnALargerPattern() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let modelPath = repo.appendingPathComponent(NeuralModel.defaultRelativePath).path
        guard FileManager.default.fileExists(atPath: modelPath) else { throw XCTSkip("no default model at \(modelPath)") }
        let (path, _) = try patternFile(size: 72, seed: 21)
        let input = try PatternInput.read(path, mask: nil)
        let model = try NeuralModel(path: modelPath)
        var messages: [String] = []
        let p = try NeuralReconstruction.predict(input, source: path, model: model, message: { messages.append($0) })
        XCTAssertNotNil(p.fit)
        XCTAssertTrue(messages.contains { $0.contains("cropped to 64³ around the Bragg peak") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("carried up to the full 72×72×72 grid") }, "\(messages)")
        XCTAssertEqual(p.object.shape, [72, 72, 72])
        XCTAssertEqual(p.lossCurve.count, 1)
        let full = try PhasingData(intensity: input.pattern, mask: nil)
        XCTAssertEqual(p.chi2, try Phaser.metricsOfObject(p.object, ramp: .zero(), data: full).chi2, accuracy: 1e-9)
        XCTAssertNotEqual(p.chi2, p.binnedChi2)

        let prediction = try p.reconstruction()
        XCTAssertEqual(prediction.method, .neural)
        XCTAssertEqual(prediction.results.parameters["model"], .string(modelPath))

        let refined = try p.handOff(recipe: try Recipe.parse("ER:30"))
        XCTAssertEqual(refined.method, .neuralThenIterative)
        XCTAssertLessThan(refined.chi2, p.chi2, "error reduction from the prediction lowers χ²")
        let out = dir.appendingPathComponent("n.cxi").path
        try refined.write(to: out, overwrite: false)
        let back = try CXIResults.read(from: out)
        XCTAssertEqual(back.metrics["neural_chi2"], p.chi2)
        XCTAssertEqual(back.metrics["chi2"], refined.chi2)
        XCTAssertEqual(back.curves["loss"], p.lossCurve)
        XCTAssertEqual(back.parameters["model"], .string(modelPath))
        XCTAssertEqual(back.parameters["recipe"], .string(try Recipe.parse("ER:30").description))
        XCTAssertNotNil(back.geometry.voxelSize)

        // A pattern the network cannot take: the error names the pattern and the model, no flag.
        var other = NeuralPhaser.Options(); other.allowOtherSize = true
        let odd = PatternInput(pattern: RealVolume(shape: [36, 36, 36], repeating: 1), mask: nil, maskSource: nil, geometry: nil)
        XCTAssertThrowsError(try NeuralReconstruction.predict(odd, source: "odd.npy", model: model, options: other)) { e in
            guard case NeuralReconstructionError.doesNotFit(let pattern, _, _, let allowed)? = e as? NeuralReconstructionError else {
                return XCTFail("\(e)")
            }
            XCTAssertEqual(pattern, "odd.npy"); XCTAssertTrue(allowed)
            XCTAssertFalse("\(e)".contains("--"), "\(e)")
        }
    }

    /// Geometry sources by precedence: command-line values over the experiment file over the
    /// reference's results file; none complete is `PipelineError.noGeometry`, which names no flag.
    func testGeometryPrecedence() throws {
        let seed = BraggGeometry.seedStudy
        var other = seed; other.energy = 2 * seed.energy
        let stored = CXIGeometry(other)
        let fromExperiment = try GeometryMerge.resolve(experiment: seed, experimentSource: "e.toml", stored: stored,
                                                       storedSource: "s.cxi", overrides: [])
        XCTAssertEqual(fromExperiment.source, "e.toml")
        XCTAssertEqual(fromExperiment.geometry.energy, seed.energy, accuracy: 1e-9)
        XCTAssertNil(fromExperiment.overrideNote)
        XCTAssertEqual(fromExperiment.summary, "geometry from e.toml")

        let fromFile = try GeometryMerge.resolve(experiment: nil, stored: stored, storedSource: "s.cxi", overrides: [])
        XCTAssertEqual(fromFile.source, "s.cxi")
        XCTAssertEqual(fromFile.geometry.energy, other.energy, accuracy: 1e-9)

        let overridden = try GeometryMerge.resolve(experiment: seed, experimentSource: "e.toml", stored: stored, storedSource: "s.cxi",
                                                   overrides: [GeometryOverride(option: "energy", quantity: .energy, value: 9000)])
        XCTAssertEqual(overridden.geometry.energy, 9000)
        XCTAssertEqual(overridden.source, "e.toml")
        XCTAssertEqual(overridden.summary, overridden.overrideNote)
        XCTAssertTrue(overridden.summary.hasPrefix("geometry from e.toml, overridden on the command line: energy 9 keV replaces"),
                      overridden.summary)
        XCTAssertEqual(overridden.geometry.qMagnitude / seed.qMagnitude, 9000 / seed.energy, accuracy: 1e-9)

        XCTAssertThrowsError(try GeometryMerge.resolve(experiment: nil, stored: nil, storedSource: "", overrides: [])) { e in
            XCTAssertEqual(e as? PipelineError, .noGeometry)
            XCTAssertFalse("\(e)".contains("--"), "\(e)")
        }
        let partial = [GeometryOverride(option: "energy", quantity: .energy, value: 9000)]
        XCTAssertThrowsError(try GeometryMerge.resolve(experiment: nil, stored: nil, storedSource: "", overrides: partial)) { e in
            XCTAssertEqual(e as? PipelineError, .noGeometry)
        }
        let all = [GeometryOverride(option: "e", quantity: .energy, value: seed.energy),
                   GeometryOverride(option: "t", quantity: .twoTheta, value: seed.twoTheta),
                   GeometryOverride(option: "d", quantity: .distance, value: seed.distance),
                   GeometryOverride(option: "p", quantity: .pixelSize, value: seed.pixelSize),
                   GeometryOverride(option: "r", quantity: .rockingStep, value: seed.rockingStep)]
        let cli = try GeometryMerge.resolve(experiment: nil, stored: nil, storedSource: "", overrides: all)
        XCTAssertEqual(cli.source, "the command line")
        XCTAssertEqual(cli.geometry.qMagnitude, seed.qMagnitude, accuracy: 1e-9 * seed.qMagnitude)

        // Rocking about x in the seed study's horizontal scattering plane moves q along y, a
        // direction the detector's rows already span: no 3D grid. Refused with a sentence
        // (it used to stop `bragg analyze --rocking-axis x` on a singular matrix, exit 132).
        let degenerate = [GeometryOverride(option: "axis", quantity: .rockingAxis, value: 0, axis: [1, 0, 0])]
        XCTAssertThrowsError(try GeometryMerge.resolve(experiment: seed, stored: nil, storedSource: "", overrides: degenerate)) { e in
            guard case PipelineError.geometry(let m)? = e as? PipelineError else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("the frames add no third dimension"), m)
        }
    }
}
