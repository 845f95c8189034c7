import XCTest
@testable import bragg
import BraggKit

/// Library errors name no command-line flag; `bragg` says which flag to change. Each typed
/// error below is what the library throws (its description flag-free), and the sentence
/// `bragg` prints for it is the one it printed when the library still named the flag.
final class ErrorMessageTests: XCTestCase {
    func testTypedErrorsGetTheirFlag() {
        let cases: [(Error, String)] = [
            (FormatError.outputExists(path: "o.cxi"), "output o.cxi exists already; pass --force to overwrite it"),
            (SimulationError.undersampled(crystalVoxels: 40, halfBox: 32),
             "the crystal (40.0 voxels) is larger than half the box (32 voxels): the pattern would be undersampled; enlarge --size or reduce --crystal-size"),
            (NeuralError.checkpointPastEpoch(path: "m.safetensors", pairsDone: 64, samples: 32),
             "model file m.safetensors: its checkpoint is 64 pairs into an epoch, but --samples is 32"),
            (PipelineError.monitorNotHDF5(scan: 1, source: "s.tif"),
             "scan 2 (s.tif): --monitor names an HDF5 dataset, but this scan is not an HDF5 file"),
            (PipelineError.duplicateStateName(name: "a", paths: ["x/a.h5", "y/a.h5"]),
             "two states are named a (x/a.h5, y/a.h5): their files would overwrite each other; name them in a --states file"),
            (NeuralReconstructionError.doesNotFit(pattern: "p.npy", model: "m", reason: .invalidInput("too small"), otherSizeAllowed: false),
             "'p.npy' does not fit model m: too small (or pass --any-size to run the fully convolutional network on it anyway)"),
            (NeuralReconstructionError.doesNotFit(pattern: "p.npy", model: "m", reason: .invalidInput("too small"), otherSizeAllowed: true),
             "'p.npy' does not fit model m: too small"),
            (DemoError.reportExists(folder: "d"), "d already holds a report; pass --force to replace it"),
            (PipelineError.noGeometry, "no geometry: the results files record none and no [geometry] was given"),
            (ReportError.analysisMissing(path: "d/table.json"), "d/table.json is missing: run `bragg analyze --out` on the series first"),
            (ReportError.stateFileMissing(folder: "d", state: 2, label: "b", states: 3),
             "d has no state_02_*.vti for state 'b' (table.json lists 3 states): rerun `bragg analyze --out d`"),
            (BeamlineError.scanNeeded(path: "s.h5", available: ["a_3.1", "a_4.1"]), "s.h5 holds several scans (a_3.1, a_4.1); choose one with --scan"),
            (BeamlineError.notThisBeamline(path: "d", beamline: .aps34IDC, reason: "34-ID-C scans are a TIFF folder with a SPEC file: give the SPEC file and the scan number"),
             "d does not hold a scan in the 34idc layout: 34-ID-C scans are a TIFF folder with a SPEC file: give --spec FILE --scan N"),
            (PreparationError.unknownBeamline("id99"), "--beamline must be one of 34idc, id01, p10, i16, nexus, sixs (got 'id99')"),
            (PreparationError.noCommonCrop(axis: 1, binning: 3),
             "no crop of axis 1 divisible by the binning 3 fits around every state's Bragg peak; give --size"),
            (PreparationError.noCrop(axis: 0, length: 31, peak: 2, binning: 2),
             "no crop of axis 0 (length 31) around the Bragg peak at 2 is divisible by the binning 2; give --size"),
            (PipelineError.scanUnreadable(scan: 0, source: "s.h5", reason: PreparationError.framesNotFound(
                path: "s.h5", tried: ["/entry/data/data", "/entry/instrument/*/data"], available: ["/entry/x"])),
             "scan 1 (s.h5): file s.h5 has no dataset of detector frames (tried /entry/data/data, /entry/instrument/*/data); name it with --dataset; existing: /entry/x"),
            (StateListError.badLine(file: "st.txt", line: 3, text: "s54 folder", withSPEC: true),
             "st.txt line 3: with --spec a state is 'NAME FOLDER SCAN_NUMBER' (got 's54 folder')"),
            (StateListError.badLine(file: "st.txt", line: 1, text: "lonely", withSPEC: false),
             "st.txt line 1: a state is 'NAME SCAN [SCAN …]' (got 'lonely')"),
            (StateListError.unpaired(files: 2, scanNumbers: 1, withSPEC: true),
             "--spec pairs each TIFF folder with one --scan number: 2 folder(s) for 1 --scan"),
            (StateListError.unpaired(files: 2, scanNumbers: 3, withSPEC: false),
             "give one --scan per file or one file for all --scan numbers (got 2 files and 3 --scan)"),
            (StateListError.empty(file: "st.txt"), "the states file st.txt lists no state"),
            (PipelineError.notPrepared(path: "p.cxi"),
             "p.cxi is not a pattern written by bragg prepare (it has no crop_size and binning under /entry_1/image_1/process_1)"),
            (PipelineError.labelCount(labels: 1, reconstructions: 2), "--labels names 1 states but 2 reconstructions were given"),
            (PipelineError.unknownReference("x"), "--reference 'x' is neither an index nor a state label"),
        ]
        for (error, sentence) in cases {
            XCTAssertFalse("\(error)".contains("--"), "the library names a flag: \(error)")
            XCTAssertEqual(commandLineMessage(for: error), sentence)
        }
    }

    /// `bragg simulate crystal` with a crystal too large for its box: the sentence names the flags.
    func testSimulateNamesTheFlags() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("bragg-errors-\(getpid())-c.h5").path
        let command = try XCTUnwrap(try Bragg.parseAsRoot(["simulate", "crystal", "--size", "32", "--crystal-size", "20",
                                                           "--out", out, "-q"]) as? SimulateCrystal)
        XCTAssertThrowsError(try command.run()) { e in
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            XCTAssertEqual("\(e)", "the crystal (20.0 voxels) is larger than half the box (16 voxels): the pattern would be undersampled; enlarge --size or reduce --crystal-size")
        }
    }
}
