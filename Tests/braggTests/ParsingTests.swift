import ArgumentParser
import XCTest
@testable import bragg
import Analysis
import Numerics
import Phasing

/// The command line parsed in process, as swift-argument-parser's own test helpers do:
/// option values, the checks of `validate()`, and the exact sentence `bragg` prints for a
/// refused command line (the end-to-end tests that run the program stay where they need it).
final class ParsingTests: XCTestCase {
    /// The parsed subcommand, as the type expected.
    func parse<T: ParsableCommand>(_ args: [String], as type: T.Type = T.self,
                                   file: StaticString = #filePath, line: UInt = #line) throws -> T {
        let command = try Bragg.parseAsRoot(args)
        return try XCTUnwrap(command as? T, "\(Swift.type(of: command))", file: file, line: line)
    }

    /// What `bragg` prints (after "Error: ") for arguments it refuses while parsing, or "" when they parse.
    func refusal(_ args: [String]) -> String {
        do { _ = try Bragg.parseAsRoot(args); return "" } catch { return Bragg.message(for: error) }
    }

    func testPhaseDefaultsAndClosedSets() throws {
        let d = try parse(["phase", "p.npy", "--out", "o.cxi"], as: PhaseCommand.self)
        XCTAssertEqual(d.method, .iterative)
        XCTAssertEqual(d.iterative.thresholdReference, .maximum)
        XCTAssertNil(d.iterative.rankBy)
        XCTAssertEqual(d.common.effort, .measure)
        XCTAssertFalse(d.common.fftEffortGiven)
        let c = try parse(["phase", "p.npy", "--out", "o.cxi", "--threshold-reference", "rms", "--rank-by", "free-llk",
                           "--fft-effort", "patient"], as: PhaseCommand.self)
        XCTAssertEqual(c.iterative.thresholdReference, .rms)
        XCTAssertEqual(c.iterative.rankBy, .freeLLK)
        XCTAssertEqual(c.common.effort, .patient)
        XCTAssertTrue(c.common.fftEffortGiven)
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--method", "neural"], as: PhaseCommand.self).method, .neural)
        XCTAssertEqual(try parse(["analyze", "e.toml", "--out", "d", "--common-support", "intersection"], as: AnalyzeCommand.self)
            .commonSupport, .intersection)
        XCTAssertNil(try parse(["analyze", "e.toml", "--out", "d"], as: AnalyzeCommand.self).commonSupport)
        XCTAssertEqual(try parse(["prepare", "s.h5", "--out", "p.cxi"], as: PrepareCommand.self).choices.centre, .centreOfMass)
        XCTAssertEqual(try parse(["prepare", "s.h5", "--out", "p.cxi", "--centre", "max"], as: PrepareCommand.self).choices.centre, .maximum)
        let crystal = try parse(["simulate", "crystal", "--out", "c.h5", "--shape", "truncated-octahedron", "--dislocation", "edge"],
                                as: SimulateCrystal.self)
        XCTAssertEqual(crystal.shape, .truncatedOctahedron)
        XCTAssertEqual(crystal.dislocation, .edge)
    }

    /// Several SCANs into one file are the scans of one state (summed); into a folder, one
    /// state each. (An earlier merge took only the first scan into a file.)
    func testScansIntoOneFileAreOneState() throws {
        let one = try parse(["prepare", "s0.h5", "s1.h5", "s2.h5", "--out", "p.cxi"], as: PrepareCommand.self).stateList()
        XCTAssertEqual(one.count, 1)
        XCTAssertEqual(one.first?.paths, ["s0.h5", "s1.h5", "s2.h5"])
        let series = try parse(["prepare", "s0.h5", "s1.h5", "--out", "states/"], as: PrepareCommand.self).stateList()
        XCTAssertEqual(series.map(\.name), ["s0", "s1"])
        XCTAssertEqual(series.map(\.paths), [["s0.h5"], ["s1.h5"]])
    }

    /// A word outside a closed set is refused while parsing, naming the option and the words it takes.
    func testClosedSetsRefuseOtherWords() {
        let phase = ["phase", "p.npy", "--out", "o.cxi"]
        XCTAssertEqual(refusal(phase + ["--method", "genetic"]),
                       "The value 'genetic' is invalid for '--method <method>'. Please provide one of 'iterative' and 'neural'.")
        XCTAssertEqual(refusal(phase + ["--rank-by", "llk2"]),
                       "The value 'llk2' is invalid for '--rank-by <rank-by>'. Please provide one of 'chi2', 'llk' or 'free-llk'.")
        XCTAssertEqual(refusal(phase + ["--threshold-reference", "mean"]),
                       "The value 'mean' is invalid for '--threshold-reference <threshold-reference>'. Please provide one of 'max' and 'rms'.")
        XCTAssertEqual(refusal(phase + ["--fft-effort", "fast"]),
                       "The value 'fast' is invalid for '--fft-effort <fft-effort>'. Please provide one of 'estimate', 'measure', 'patient' or 'exhaustive'.")
        XCTAssertEqual(refusal(["prepare", "s.h5", "--out", "p.cxi", "--centre", "peak"]),
                       "The value 'peak' is invalid for '--centre <centre>'. Please provide one of 'com' and 'max'.")
        XCTAssertEqual(refusal(["train", "--out", "m.safetensors", "--loss", "l3"]),
                       "The value 'l3' is invalid for '--loss <loss>'. Please provide one of 'l1' and 'l2'.")
        XCTAssertEqual(refusal(["simulate", "crystal", "--out", "c.h5", "--shape", "sphere"]),
                       "The value 'sphere' is invalid for '--shape <shape>'. Please provide one of 'hexagonal-prism', 'cube', 'octahedron' or 'truncated-octahedron'.")
        XCTAssertEqual(refusal(["simulate", "crystal", "--out", "c.h5", "--dislocation", "mixed"]),
                       "The value 'mixed' is invalid for '--dislocation <dislocation>'. Please provide one of 'screw' and 'edge'.")
        XCTAssertEqual(refusal(["analyze", "e.toml", "--out", "d", "--common-support", "most"]),
                       "The value 'most' is invalid for '--common-support <common-support>'. Please provide one of 'majority', 'union' or 'intersection'.")
    }

    /// The checks of `validate()`, before any file is opened.
    func testPhaseValidation() {
        let phase = ["phase", "p.npy", "--out", "o.cxi"]
        XCTAssertEqual(refusal(phase + ["--runs", "0"]), "--runs must be at least 1 (got 0)")
        XCTAssertEqual(refusal(phase + ["--runs", "2", "--keep", "3"]), "--keep must be between 1 and --runs (2) (got 3)")
        XCTAssertEqual(refusal(phase + ["--rank-by", "free-llk", "--free-fraction", "0"]),
                       "--rank-by free-llk needs withheld pixels; give --free-fraction above 0")
        XCTAssertEqual(refusal(phase + ["--stall-check", "1"]), "--stall-check must be a fraction in [0, 1) (got 1.0)")
        XCTAssertEqual(refusal(phase + ["--merge-tolerance", "0.5"]), "--merge-tolerance must be at least 1 (got 0.5)")
        XCTAssertEqual(refusal(phase + ["--alternative-choice", "0.9"]), "--alternative-choice must be a ratio of chi2 of at least 1, or off (got '0.9')")
        XCTAssertEqual(refusal(phase + ["--alternative-choice", "sometimes"]), "--alternative-choice must be a ratio of chi2 of at least 1, or off (got 'sometimes')")
        XCTAssertEqual(refusal(phase + ["--alternative-choice", "off"]), "")
        XCTAssertEqual(refusal(phase + ["--tighten-support", "0"]), "--tighten-support must be smoothing sigmas in voxels above 0, comma-separated, or none (got '0')")
        XCTAssertEqual(refusal(phase + ["--tighten-support", "tight"]), "--tighten-support must be smoothing sigmas in voxels above 0, comma-separated, or none (got 'tight')")
        XCTAssertEqual(refusal(phase + ["--tighten-support", "0.3,,0.5"]), "--tighten-support must be smoothing sigmas in voxels above 0, comma-separated, or none (got '0.3,,0.5')")
        XCTAssertEqual(refusal(phase + ["--tighten-support", "none"]), "")
        XCTAssertEqual(refusal(phase + ["--tighten-support", "none", "--tighten-recipe", "ER:20"]),
                       "--tighten-recipe applies only to the final pass, which --tighten-support none turns off")
        XCTAssertEqual(refusal(phase + ["--threads", "0"]), "--threads must be at least 1 (got 0)")
        XCTAssertTrue(refusal(phase + ["--threads", "100000"]).hasPrefix("--threads must be at most "))
        XCTAssertEqual(refusal(phase), "")
        // A negative count reads to the parser as an option; braggMain answers it first.
        XCTAssertEqual(refuseNegativeCounts(phase + ["--threads", "-1"]), "--threads must be at least 1 (got -1)")
        XCTAssertNil(refuseNegativeCounts(phase + ["--threads", "2"]))
    }

    /// An option of the other method is refused rather than silently ignored (checked
    /// before any work), naming every such option given.
    func testOptionsOfTheOtherMethod() throws {
        func message(_ args: [String]) throws -> String {
            let c = try parse(["phase", "p.npy", "--out", "o.cxi"] + args, as: PhaseCommand.self)
            do { try c.checkMethodOptions(); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(try message(["--symmetries", "cube", "--refine-steps", "5"]),
                       "--refine-steps, --symmetries apply only to --method neural")
        XCTAssertEqual(try message(["--method", "neural", "--runs", "4"]), "--runs applies only to --method iterative")
        XCTAssertEqual(try message(["--method", "neural", "--threshold-reference", "rms", "--rank-by", "chi2"]),
                       "--threshold-reference, --rank-by apply only to --method iterative")
        XCTAssertEqual(try message(["--method", "neural", "--then", "short", "--symmetries", "reflections"]), "")
        // The hand-off takes the shrink-wrap schedule of its recipe; without --then it is refused.
        XCTAssertEqual(try message(["--method", "neural", "--then", "short", "--sigma", "1.5,0.5", "--threshold-reference", "rms"]), "")
        XCTAssertEqual(try message(["--method", "neural", "--sigma", "1.5,0.5"]),
                       "--sigma applies only to --method iterative (or to --method neural with --then)")
        XCTAssertEqual(try message(["--method", "neural", "--then", "short", "--sigma", "1.5,0.5", "--runs", "2"]),
                       "--runs applies only to --method iterative")
        XCTAssertEqual(try message(["--runs", "4", "--keep", "2", "--threshold-reference", "rms"]), "")
    }

    /// The option groups turn their values into the library's: the iterative method's into
    /// `PhasingOptions`, the geometry overrides into SI units labelled with their flags, the
    /// output folder shared by analyze and simulate operando/scans.
    func testOptionGroupsGiveTheLibrarysValues() throws {
        let c = try parse(["phase", "p.npy", "--out", "o.cxi", "--mask", "m.npy", "--recipe", "short", "--runs", "3", "--keep", "2",
                           "--sigma", "3, 0.5", "--rank-by", "llk", "--threshold-reference", "rms", "--support", "sphere:4"],
                          as: PhaseCommand.self)
        XCTAssertEqual(c.input.pattern, "p.npy"); XCTAssertEqual(c.input.mask, "m.npy")
        XCTAssertEqual(c.output.out, "o.cxi"); XCTAssertFalse(c.output.force)
        let o = try c.iterative.phasingOptions()
        XCTAssertEqual(o.recipe.description, try Recipe.parse("short").description)
        XCTAssertEqual(o.runs, 3); XCTAssertEqual(o.keep, 2)
        XCTAssertEqual(o.shrinkWrap.sigmaStart, 3); XCTAssertEqual(o.shrinkWrap.sigmaEnd, 0.5)
        XCTAssertEqual(o.shrinkWrap.reference, .rms); XCTAssertEqual(o.rankBy, .llk)
        XCTAssertEqual(o.supportTightening, [0.3, 0.5])      // the library's default
        XCTAssertEqual(o.alternativeChoiceFactor, PhasingOptions().alternativeChoiceFactor)
        XCTAssertNil(try parse(["phase", "p.npy", "--out", "o.cxi", "--alternative-choice", "OFF"], as: PhaseCommand.self).iterative.phasingOptions().alternativeChoiceFactor)
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--alternative-choice", "1.5"], as: PhaseCommand.self).iterative.phasingOptions().alternativeChoiceFactor, 1.5)
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--tighten-support", "none"], as: PhaseCommand.self).iterative.phasingOptions().supportTightening, [])
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--tighten-support", "0.7"], as: PhaseCommand.self).iterative.phasingOptions().supportTightening, [0.7])
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--tighten-support", "0.4, 0.6"], as: PhaseCommand.self).iterative.phasingOptions().supportTightening, [0.4, 0.6])
        XCTAssertEqual(o.supportTighteningRecipe.description, PhasingOptions.defaultTighteningRecipe.description)
        XCTAssertEqual(try parse(["phase", "p.npy", "--out", "o.cxi", "--tighten-recipe", "ER:80"], as: PhaseCommand.self).iterative.phasingOptions().supportTighteningRecipe.description,
                       try Recipe.parse("ER:80").description)
        XCTAssertThrowsError(try parse(["phase", "p.npy", "--out", "o.cxi", "--tighten-recipe", "HIO:50, EER:50"], as: PhaseCommand.self).iterative.phasingOptions()) { e in
            XCTAssertTrue("\(e)".hasPrefix("--tighten-recipe 'HIO:50, EER:50': "), "\(e)")
        }
        guard case .sphere(let r) = try c.iterative.initialSupport() else { return XCTFail("not a sphere") }
        XCTAssertEqual(r, 4)
        XCTAssertEqual(try c.iterative.optionsGiven(),
                       ["--recipe", "--runs", "--keep", "--support", "--sigma", "--threshold-reference", "--rank-by"])
        XCTAssertEqual(try c.neural.optionsGiven(), [])
        let bad = try parse(["phase", "p.npy", "--out", "o.cxi", "--sigma", "2"], as: PhaseCommand.self)
        XCTAssertThrowsError(try bad.iterative.phasingOptions()) { e in
            XCTAssertEqual("\(e)", "--sigma must be START,END in voxels, both ≥ 0 (got '2')")
        }

        let a = try parse(["analyze", "e.toml", "-o", "d", "--force", "--energy-kev", "9", "--two-theta", "30",
                           "--pixel-um", "55", "--rocking-axis", "y"], as: AnalyzeCommand.self)
        XCTAssertEqual(a.output.out, "d"); XCTAssertTrue(a.output.force)
        let overrides = try a.geometryOverrides.overrides()
        XCTAssertEqual(overrides.map(\.option), ["--energy-kev", "--two-theta", "--pixel-um", "--rocking-axis"])
        XCTAssertEqual(overrides[0].value, 9000)
        XCTAssertEqual(overrides[1].value, 30 * .pi / 180, accuracy: 1e-15)
        XCTAssertEqual(overrides[2].value, 55e-6, accuracy: 1e-18)
        XCTAssertEqual(overrides[3].axis, [0, 1, 0])
        let axis = try parse(["analyze", "e.toml", "-o", "d", "--rocking-axis", "w"], as: AnalyzeCommand.self)
        XCTAssertThrowsError(try axis.geometryOverrides.overrides()) { e in
            XCTAssertEqual("\(e)", "--rocking-axis must be x, y or z (got 'w')")
        }
        let series = try parse(["simulate", "operando", "-o", "s", "--force"], as: SimulateOperando.self)
        XCTAssertEqual(series.out, "s"); XCTAssertTrue(series.force)
    }
}
