import XCTest
import Foundation
import Formats
import Numerics
import Simulation
@testable import Neural

/// The neural method on a pattern of any size (issue #21): binning and cropping to the
/// model's input around the Bragg peak, and the prediction carried back to the full grid.
final class InputFittingTests: XCTestCase {
    /// min_c ‖c·a − b‖/‖b‖.
    func error(_ a: ComplexVolume, _ b: ComplexVolume) throws -> Double {
        let ip = try a.inner(b)
        return max(0, 1 - (ip.re * ip.re + ip.im * ip.im) / (a.squaredNorm() * b.squaredNorm())).squareRoot()
    }

    func centredFFT(_ v: ComplexVolume) throws -> ComplexVolume { try FFT.forward(v.ifftshifted()).fftshifted() }
    func centredIFFT(_ v: ComplexVolume) throws -> ComplexVolume { try FFT.inverse(v.ifftshifted()).fftshifted() }

    func noiseless() -> TrainingPairOptions { var o = TrainingPairOptions(); o.poissonNoise = false; return o }

    /// A 96³ pattern whose Bragg peak sits (3, −2, 4) pixels off centre is cropped (no
    /// binning: its oversampling is within the training range) to the 64³ window around the
    /// peak. The ideal prediction for that window, the inverse transform of the cropped
    /// spectrum, carried up, is the full object low-passed to the same window: the ramp
    /// e^{2πi p·r/N} puts it back where it was; without the ramp it would be far off.
    func testCropAndCarryUpAreConsistent() throws {
        let (_, small) = try TrainingPair.make(size: 96, seed: 11, options: noiseless())
        let p = [3, -2, 4], n = 96, m = small.shape[0]
        var ramped = small
        ramped.withUnsafeMutableFloats { o in
            for z in 0..<m { for y in 0..<m { for x in 0..<m {
                let ph = 2 * Double.pi * (Double(p[0] * (z - m / 2)) + Double(p[1] * (y - m / 2)) + Double(p[2] * (x - m / 2))) / Double(n)
                let i = 2 * ((z * m + y) * m + x)
                let (re, im) = (Double(o[i]), Double(o[i + 1]))
                o[i] = Float(re * cos(ph) - im * sin(ph)); o[i + 1] = Float(re * sin(ph) + im * cos(ph))
            } } }
        }
        let full = try ramped.centred(in: [n, n, n])
        let spectrum = try centredFFT(full)
        let intensity = spectrum.intensity()
        let fit = try NeuralInputFit.plan(pattern: intensity, mask: nil, inputSize: 64)
        print("fit: \(fit)")
        XCTAssertEqual(fit.bin, [1, 1, 1])
        // the brightest pixel: the ramp's centre, give or take the crystal's own phase
        for a in 0..<3 { XCTAssertEqual(fit.peak[a], 48 + p[a], accuracy: 1) }
        XCTAssertEqual(fit.cropStart, fit.peak.map { $0 - 32 })
        XCTAssertEqual(fit.peakOffset, fit.peak.map { Double($0 - 48) })
        XCTAssertEqual(fit.voxelScale, [1.5, 1.5, 1.5])
        XCTAssertTrue(fit.description.contains("binned 1×1×1 to 96×96×96, cropped to 64³ around the Bragg peak"), fit.description)
        let input = fit.apply(intensity, mask: nil)
        XCTAssertNil(input.mask)
        XCTAssertEqual(input.pattern.shape, [64, 64, 64])
        // the input is the pattern's window, pixel for pixel
        XCTAssertEqual(input.pattern[flat: (32 * 64 + 32) * 64 + 32], intensity[flat: (fit.peak[0] * n + fit.peak[1]) * n + fit.peak[2]])
        XCTAssertEqual(input.pattern.maximum(), intensity.maximum())

        let window = try spectrum.cropped(start: fit.cropStart, size: [64, 64, 64])
        let ideal = try centredIFFT(window)
        let lowpassed = try centredIFFT(window.embedded(in: [n, n, n], at: fit.cropStart))
        let carried = fit.carryUp(ideal).object
        let e = try error(carried, lowpassed)
        var unramped = carried
        unramped.withUnsafeMutableFloats { o in
            for z in 0..<n { for y in 0..<n { for x in 0..<n {
                let ph = -2 * Double.pi * (Double(p[0] * (z - n / 2)) + Double(p[1] * (y - n / 2)) + Double(p[2] * (x - n / 2))) / Double(n)
                let i = 2 * ((z * n + y) * n + x)
                let (re, im) = (Double(o[i]), Double(o[i + 1]))
                o[i] = Float(re * cos(ph) - im * sin(ph)); o[i + 1] = Float(re * sin(ph) + im * cos(ph))
            } } }
        }
        let without = try error(unramped, lowpassed)
        print(String(format: "carried up: error %.4f against the low-passed object (%.4f without the peak's ramp)", e, without))
        XCTAssertLessThan(e, 0.15)
        XCTAssertGreaterThan(without, 0.5)
    }

    /// A small crystal in a 128³ box (oversampling ≈ 7–11, estimated 5.6–13) is binned 2×2×2 to 64³: the
    /// counts are kept, the field of view halves (one prediction voxel is one full voxel),
    /// and the binned pixel holding the centre sits half a pixel off it.
    func testBinningFollowsTheOversampling() throws {
        let (_, small) = try TrainingPair.make(size: 40, seed: 3, options: noiseless())
        let intensity = try Diffraction.diffract(small, box: [128, 128, 128], photons: 1e6, seed: nil)
        let fit = try NeuralInputFit.plan(pattern: intensity, mask: nil, inputSize: 64)
        print("fit: \(fit)")
        XCTAssertEqual(fit.bin, [2, 2, 2])
        XCTAssertEqual(fit.binnedShape, [64, 64, 64])
        XCTAssertEqual(fit.cropStart, [0, 0, 0])
        XCTAssertEqual(fit.voxelScale, [1, 1, 1])
        XCTAssertEqual(fit.peakOffset, [0.5, 0.5, 0.5])
        XCTAssertTrue(fit.description.contains("binned 2×2×2 to 64×64×64, cropped to 64³"), fit.description)
        for a in 0..<3 { XCTAssertGreaterThan(fit.oversampling[a], 5.6); XCTAssertLessThan(fit.oversampling[a], 13) }
        let input = fit.apply(intensity, mask: nil)
        XCTAssertEqual(input.pattern.sum(), intensity.sum(), accuracy: 1e-5 * intensity.sum())
        // a masked pixel's block is scaled up from its measured pixels; a fully masked block is masked
        var mask = RealVolume(shape: intensity.shape)
        mask.withUnsafeMutableFloats { mp in
            mp[(64 * 128 + 64) * 128 + 64] = 1
            for z in 0..<2 { for y in 0..<2 { for x in 0..<2 { mp[(z * 128 + y) * 128 + x] = 1 } } }
        }
        let masked = fit.apply(intensity, mask: mask)
        XCTAssertEqual(masked.mask![flat: 0], 1)
        XCTAssertEqual(masked.mask![flat: (32 * 64 + 32) * 64 + 32], 0)
        var block: Float = 0
        for z in 64..<66 { for y in 64..<66 { for x in 64..<66 where (z, y, x) != (64, 64, 64) {
            block += intensity[flat: (z * 128 + y) * 128 + x]
        } } }
        XCTAssertEqual(masked.pattern[flat: (32 * 64 + 32) * 64 + 32], block * 8 / 7, accuracy: 1e-4 * block)
    }

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

    /// The error after the twin, the translation and the global phase are removed, against
    /// the truth with its Bragg-peak ramp removed (as the results are written).
    func reconstructionError(_ r: ComplexVolume, truth: ComplexVolume) throws -> Double {
        let t = truth.removingPhaseRamp(try truth.braggPeakRamp())
        let twin = try r.conjugated().flipped().rolled(by: r.shape.map { $0 % 2 == 0 ? 1 : 0 })
        var best = 1.0
        for cand in [r, twin] {
            let (shift, _) = try Registration.shift(of: cand, onto: t)
            best = min(best, try error(cand.fourierShifted(by: shift), t))
        }
        return best
    }

    /// `bragg phase --method neural --then short` on a 96³ simulated pattern (10⁶ peak photons,
    /// Poisson noise) that the 64³ model does not take as it is: it says what it cropped, and its
    /// result is as good as the iterative default recipe's from a random start (0.051 here).
    func testNeuralThenShortOnALargerPattern() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = repo.appendingPathComponent("models/default-c8-64.safetensors").path
        guard FileManager.default.fileExists(atPath: model) else { throw XCTSkip("no default model at \(model)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("input-fitting-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // the phasing acceptance tests' crystals: 10⁶ peak photons, 0.8 rad RMS phase
        var o = TrainingPairOptions(); o.photons = 1e6...1e6; o.phaseRMS = 0.8...0.8
        let (pattern, small) = try TrainingPair.make(size: 96, seed: 21, options: o)
        let truth = try small.centred(in: [96, 96, 96])
        let input = dir.appendingPathComponent("p.npy").path
        try ArrayIO.write(pattern, to: input, overwrite: true)
        let neural = try bragg(["phase", input, "--method", "neural", "--then", "short", "--model", model,
                                "--out", dir.appendingPathComponent("n.npy").path])
        XCTAssertEqual(neural.status, 0, neural.output)
        print(neural.output.components(separatedBy: "\r").last ?? "")
        XCTAssertTrue(neural.output.contains("96×96×96 pattern"), neural.output)
        XCTAssertTrue(neural.output.contains("binned 1×1×1 to 96×96×96, cropped to 64³ around the Bragg peak"), neural.output)
        XCTAssertTrue(neural.output.contains("carried up to the full 96×96×96 grid"), neural.output)
        let en = try reconstructionError(ArrayIO.readComplex(dir.appendingPathComponent("n.npy").path), truth: truth)
        print(String(format: "96³: neural + short %.4f", en))
        // The iterative default recipe from a random start reaches 0.051 on this pattern
        // (`bragg phase p.npy`, measured when this test was written; not rerun here, it
        // costs 800 iterations) and ≤ 0.065 on the phasing acceptance crystals.
        XCTAssertLessThanOrEqual(en, 0.065)
    }
}
