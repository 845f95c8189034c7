import ArgumentParser
import BraggKit
import Foundation

// The option groups of `bragg prepare`, each turning its values into the library's.

/// Parses "A,B,C" (or one value for all three axes) into three integers.
func parseTriple(_ s: String, name: String) throws -> [Int] {
    let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    if v.count == 1, let x = v[0] { return [x, x, x] }
    guard v.count == 3, v.allSatisfy({ $0 != nil }) else {
        throw UsageError("\(name) must be three integers Z,Y,X (frames, rows, columns) or one for all (got '\(s)')")
    }
    return v.map { $0! }
}

/// The files read beside the frames: the frames' and monitor's datasets and the calibrations.
struct ScanFileOptions: ParsableArguments {
    @Option(help: "HDF5 dataset of the frames in every scan file (default: the NeXus detector paths).")
    var dataset: String?

    @Option(help: "HDF5 dataset of the monitor (one value per frame) in every scan file.")
    var monitor: String?

    @Option(help: "Dark/background frame or stack: FILE or FILE:DATASET (TIFF, NPY, HDF5). At 34-ID-C: the bad-pixel map (pixels above 1 are masked, nothing is subtracted).")
    var dark: String?

    @Option(help: "Flat field (relative efficiency; frames are divided by it): FILE or FILE:DATASET. At 34-ID-C: the white field in counts (under 100 counts masked, scaled to mean 1).")
    var flat: String?

    @Option(name: .customLong("detector-mask"), help: "Detector mask (gaps, known bad pixels; nonzero = bad), 2D: FILE or FILE:DATASET.")
    var detectorMask: String?

    /// The library's request for these files (the beamline, SPEC file and scan set by the command).
    func request() -> PrepareRequest {
        var r = PrepareRequest()
        r.dataset = dataset; r.monitor = monitor; r.dark = dark; r.flat = flat; r.detectorMask = detectorMask
        return r
    }
}

/// How the scans are cleaned, registered, summed, centred, cropped and binned.
struct PreparationChoiceOptions: ParsableArguments {
    @Option(name: .customLong("hot-factor"), help: "Hot pixel: frame sum above this × (neighbours' median + 1).")
    var hotFactor: Double = 10

    @Option(name: .customLong("dead-min-counts"), help: "Constant pixels are masked where their neighbours' median frame sum reaches this.")
    var deadMinCounts: Double = 10

    @Flag(name: .customLong("no-register"), help: "Sum the scans without registering them.")
    var noRegister = false

    @Option(name: .customLong("min-correlation"), help: "Leave out scans correlating less than this with the ones before.")
    var minCorrelation: Double = 0.5

    @Option(name: .customLong("registration-box"), help: "Edge of the box around the Bragg peak used for registration.")
    var registrationBox: Int = 64

    @Option(help: "Registration precision: 1/N pixel.")
    var upsampling: Int = 20

    @Option(help: "Locate the Bragg peak by centre of mass (com) or maximum (max).")
    var centre: PeakCentring = .centreOfMass

    @Option(help: "Output size Z,Y,X before binning (default: the largest fast size around the peak).")
    var size: String?

    @Option(help: "Binning Z,Y,X (or one factor for all axes).")
    var bin: String = "1"

    @Option(help: "An earlier state's prepared CXI file: take its crop size and binning, so that every state of a series has one shape (instead of --size and --bin).")
    var like: String?

    func validate() throws {
        guard hotFactor > 1 else { throw ValidationError("--hot-factor must be > 1 (got \(hotFactor))") }
        guard (-1...1).contains(minCorrelation) else { throw ValidationError("--min-correlation must be in [-1, 1] (got \(minCorrelation))") }
        guard registrationBox >= 4 else { throw ValidationError("--registration-box must be at least 4 (got \(registrationBox))") }
        guard upsampling >= 1 && upsampling <= 1000 else { throw ValidationError("--upsampling must be in 1…1000 (got \(upsampling))") }
    }

    /// The library's options, and with --like the line saying where size and binning came from.
    func preparationOptions() throws -> (options: PreparationOptions, likeNote: String?) {
        var o = PreparationOptions()
        o.hotFactor = hotFactor; o.deadMinCounts = deadMinCounts; o.register = !noRegister
        o.minCorrelation = minCorrelation; o.registrationBox = registrationBox; o.upsampling = upsampling; o.centring = centre
        o.binning = try parseTriple(bin, name: "--bin")
        guard o.binning.allSatisfy({ $0 >= 1 }) else { throw UsageError("--bin factors must be ≥ 1 (got '\(bin)')") }
        if let s = size {
            o.size = try parseTriple(s, name: "--size")
            guard o.size!.allSatisfy({ $0 >= 1 }) else { throw UsageError("--size must be positive (got '\(s)')") }
        }
        guard let l = like else { return (o, nil) }
        // The series' shape from a state prepared before: its crop (before binning) and binning.
        guard size == nil, bin == "1" else { throw UsageError("--like \(l) gives the size and binning: drop --size and --bin") }
        (o.size, o.binning) = try StateList.shape(ofPrepared: l)
        let note = "size \(o.size!.map(String.init).joined(separator: ",")) and binning \(o.binning.map(String.init).joined(separator: ",")) from \(l)"
        return (o, note)
    }
}

/// Geometry values replacing the files': the same names and units as `bragg analyze` and the experiment file.
struct PrepareGeometryOptions: ParsableArguments {
    @Option(name: .customLong("energy-kev"), help: "Photon energy (keV), overriding the file's.")
    var energyKeV: Double?

    @Option(help: "Detector distance (m), overriding the file's.")
    var distance: Double?

    @Option(name: .customLong("pixel-um"), help: "Detector pixel size (µm), overriding the file's.")
    var pixelMicrons: Double?

    @Option(name: .customLong("two-theta"), help: "Detector angle 2θ (degrees), overriding the file's.")
    var twoTheta: Double?

    @Option(name: .customLong("rocking-step"), help: "Rocking step (degrees), overriding the file's.")
    var rockingStep: Double?

    /// The library's values in SI units, each labelled with its flag.
    func geometryOptions() -> GeometryOptions {
        var g = GeometryOptions()
        g.labels = prepareGeometryFlags
        g.energy = energyKeV.map { $0 * 1000 }
        g.distance = distance
        g.pixelSize = pixelMicrons.map { $0 * 1e-6 }
        g.twoTheta = twoTheta.map { $0 * .pi / 180 }
        g.rockingStep = rockingStep.map { $0 * .pi / 180 }
        return g
    }
}
