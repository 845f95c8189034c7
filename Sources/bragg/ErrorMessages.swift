import BraggKit
import Foundation

/// The sentence `bragg` prints for an error. Library errors describe the problem in the
/// library's words and never name a command-line flag; where one calls for a setting the
/// user can change, the sentence says which flag.
func commandLineMessage(for error: Error) -> String {
    switch error {
    case FormatError.outputExists:
        return "\(error); pass --force to overwrite it"
    case SimulationError.undersampled(let c, let h):
        return "the crystal (\(c) voxels) is larger than half the box (\(h) voxels): the pattern would be undersampled; enlarge --size or reduce --crystal-size"
    case NeuralError.checkpointPastEpoch(let p, let d, let n):
        return "model file \(p): its checkpoint is \(d) pairs into an epoch, but --samples is \(n)"
    case DemoError.reportExists:
        return "\(error); pass --force to replace it"
    case PipelineError.scanUnreadable(let k, let s, let reason as PreparationError):
        guard case .framesNotFound = reason else { return String(describing: error) }
        // The library's sentence with the flag that names the dataset.
        return "scan \(k + 1) (\(s)): " + "\(reason)".replacingOccurrences(of: "; name the frames' dataset", with: "; name it with --dataset")
    case PipelineError.monitorNotHDF5(let k, let s):
        return "scan \(k + 1) (\(s)): --monitor names an HDF5 dataset, but this scan is not an HDF5 file"
    case StateListError.badLine(let f, let k, let t, true):
        return "\(f) line \(k): with --spec a state is 'NAME FOLDER SCAN_NUMBER' (got '\(t)')"
    case StateListError.unpaired(let n, let s, true):
        return "--spec pairs each TIFF folder with one --scan number: \(n) folder(s) for \(s) --scan"
    case StateListError.unpaired(let n, let s, false):
        return "give one --scan per file or one file for all --scan numbers (got \(n) files and \(s) --scan)"
    case PipelineError.notPrepared(let p):
        return "\(p) is not a pattern written by bragg prepare (it has no crop_size and binning under \(CXIResults.processPath))"
    case PipelineError.labelCount(let l, let n):
        return "--labels names \(l) states but \(n) reconstructions were given"
    case PipelineError.unknownReference(let r):
        return "--reference '\(r)' is neither an index nor a state label"
    case PipelineError.duplicateStateName(let n, let paths):
        return "two states are named \(n) (\(paths.joined(separator: ", "))): their files would overwrite each other; name them in a --states file"
    case NeuralReconstructionError.doesNotFit(_, _, _, false):
        return "\(error) (or pass --any-size to run the fully convolutional network on it anyway)"
    case BeamlineError.scanNeeded:
        return "\(error) with --scan"
    case BeamlineError.notThisBeamline(let p, .aps34IDC, _):
        return "\(p) does not hold a scan in the \(Beamline.aps34IDC.rawValue) layout: 34-ID-C scans are a TIFF folder with a SPEC file: give --spec FILE --scan N"
    case PreparationError.unknownBeamline(let name):
        return "--beamline must be one of \(Beamline.allCases.map { $0.rawValue }.joined(separator: ", ")) (got '\(name)')"
    case PreparationError.noCommonCrop(let a, let b):
        return "no crop of axis \(a) divisible by the binning \(b) fits around every state's Bragg peak; give --size"
    case PreparationError.noCrop(let a, let n, let c, let b):
        return "no crop of axis \(a) (length \(n)) around the Bragg peak at \(c) is divisible by the binning \(b); give --size"
    case ReportError.analysisMissing(let p):
        return "\(p) is missing: run `bragg analyze --out` on the series first"
    case ReportError.stateFileMissing(let d, let i, let l, let n):
        return "\(d) has no \(ReportError.stateFilePattern(i)) for state '\(l)' (table.json lists \(n) states): rerun `bragg analyze --out \(d)`"
    default:
        return String(describing: error)
    }
}

/// The flag of each geometry value `bragg prepare` takes, naming it in the note of what
/// the command line overrode.
let prepareGeometryFlags: [GeometryOverride.Quantity: String] = [
    .energy: "--energy-kev", .distance: "--distance", .pixelSize: "--pixel-um", .twoTheta: "--two-theta", .rockingStep: "--rocking-step",
]
