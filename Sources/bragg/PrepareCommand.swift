import ArgumentParser
import BraggKit
import Foundation

/// Parses "A,B,C" (or one value for all three axes) into three integers.
func parseTriple(_ s: String, name: String) throws -> [Int] {
    let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    if v.count == 1, let x = v[0] { return [x, x, x] }
    guard v.count == 3, v.allSatisfy({ $0 != nil }) else {
        throw UsageError("\(name) must be three integers Z,Y,X (frames, rows, columns) or one for all (got '\(s)')")
    }
    return v.map { $0! }
}

/// Reads a 2D or 3D calibration array (dark, flat, mask) named FILE or FILE:DATASET
/// (TIFF, NPY, NPZ or HDF5).
func readCalibration(_ spec: String, what: String) throws -> RealVolume {
    do { return try CalibrationImage.read(spec) } catch let e as FormatError { throw UsageError("\(what): \(e)") }
}

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Sum rocking scans of one state into a centred, masked pattern ready for `bragg phase`.",
        discussion: """
            Each SCAN is a frame stack (frames = rocking angles, rows, columns): an HDF5/NeXus \
            file (FILE or FILE:DATASET; by default /entry/instrument/detector/data, /entry/data/data, \
            /entry_1/data_1/data or the first 3D dataset under /entry/instrument), a multi-page \
            TIFF, a folder of single-frame TIFFs (a series, in natural name order), or a .npy file.

            Per scan: negative/NaN values mark their pixel bad; the dark is subtracted (clipped at \
            0) and the flat field divided out; frames are scaled to the first scan's mean monitor \
            (--monitor); hot pixels (frame sum > --hot-factor × (neighbours' median + 1)) and \
            constant pixels among bright neighbours (dead, stuck, gaps) are masked and filled. \
            Scans are registered to the first (3D cross-correlation of intensities on a box around \
            the Bragg peak, upsampled DFT, 1/--upsampling pixel), shifted (Fourier) and summed; \
            a scan that correlates less than --min-correlation is left out with a message. Only \
            the running sum and one scan are held in memory.

            The sum is centred on the Bragg peak (--centre com or max), cropped to the largest size \
            of the form 2^a 3^b 5^c around it (or --size, padded with masked voxels), optionally \
            binned, and written as a CXI file: /entry_1/data_1/data (pattern), /entry_1/data_1/mask \
            (nonzero = bad), geometry under /entry_1/instrument_1 (from the first scan's NeXus \
            metadata, or the options), and each scan's shift and correlation under \
            /entry_1/image_1/process_1.

            Beamlines (--beamline, or detected): with --spec FILE --scan N the scan is APS 34-ID-C's \
            (--beamline 34idc): SCAN is the folder of the scan's TIFF frames, and the SPEC file gives \
            everything else: the rocked circle and its step (the #S command), every circle angle \
            (#O/#P: Delta, Theta, Chi, Phi, Gamma), the energy (the Energy motor, keV), the distance \
            (camdist, mm), the detector and its pixel size (#UIMDET), the region of interest of the \
            frames on the detector (#UIMR5) and the monitor (the Monitor column). The folder must hold \
            one frame per point of the scan. Full-detector --dark and --flat files are cut to the region \
            of interest. At 34-ID-C --dark is the detector's bad-pixel map, not a background: pixels \
            where it exceeds 1 are masked (nothing is subtracted); --flat is the white field: pixels \
            under 100 counts in it are masked and the frames are divided by it scaled to mean 1. The \
            geometry (Q from the circles at the pattern's centre, the detector pixel of the centre) \
            goes into the CXI file; --energy-kev, --distance, --pixel-um, --two-theta and \
            --rocking-step override it, and say so.
            """
    )

    @Argument(help: "The scans of one state (files or TIFF folders).")
    var scans: [String]

    @Option(help: "Beamline layout of the scans: 34idc, id01, p10, i16, nexus, sixs (default: found from the files; 34idc with --spec).")
    var beamline: String?

    @Option(help: "The beamline's SPEC file (34-ID-C), giving the geometry of scan --scan.")
    var spec: String?

    @Option(help: "Scan: the #S number in the SPEC file (34-ID-C), the scan in a multi-scan file (ID01 BLISS: the number before .1) or in a P10 experiment folder.")
    var scan: String?

    @Option(name: .shortAndLong, help: "Output CXI file (.cxi or .h5).")
    var out: String

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

    // Geometry options: the same names and units as `bragg analyze` and the experiment file.
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

    /// gzip level of the output by default: none. Deflating a 160×256×250 float pattern
    /// takes about as long as preparing it (level 1 ≈ 1.3 s, level 4 ≈ 2 s for 23 MB instead
    /// of 51 MB; see bench/README.md), so it is left to --compression.
    static let defaultCompression = 0

    @Option(help: "gzip level of the output datasets (0: uncompressed, the default; 1 fast … 9 small).")
    var compression: Int = PrepareCommand.defaultCompression

    @Flag(help: "Replace an existing output file.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard !scans.isEmpty else { throw ValidationError("give at least one scan") }
        guard hotFactor > 1 else { throw ValidationError("--hot-factor must be > 1 (got \(hotFactor))") }
        guard (-1...1).contains(minCorrelation) else { throw ValidationError("--min-correlation must be in [-1, 1] (got \(minCorrelation))") }
        guard registrationBox >= 4 else { throw ValidationError("--registration-box must be at least 4 (got \(registrationBox))") }
        guard (0...9).contains(compression) else { throw ValidationError("--compression must be 0…9 (got \(compression))") }
        guard upsampling >= 1 && upsampling <= 1000 else { throw ValidationError("--upsampling must be in 1…1000 (got \(upsampling))") }
        if let b = beamline, Beamline(rawValue: b.lowercased()) == nil {
            throw ValidationError("--beamline must be one of \(Beamline.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(b)')")
        }
        let is34IDC = spec != nil || beamline?.lowercased() == Beamline.aps34IDC.rawValue
        if is34IDC && scan == nil { throw ValidationError("--spec needs --scan N (the scan's #S number)") }
        if is34IDC && spec == nil { throw ValidationError("--beamline 34idc needs --spec FILE and --scan N") }
        if spec != nil, let b = beamline, b.lowercased() != Beamline.aps34IDC.rawValue {
            throw ValidationError("--spec is read for --beamline 34idc only (got --beamline \(b))")
        }
        if is34IDC, let n = scan, Int(n) == nil { throw ValidationError("--scan must be the SPEC scan number (#S), an integer (got '\(n)')") }
        if spec != nil && scans.count != 1 { throw ValidationError("--spec reads one scan: give one TIFF folder (got \(scans.count))") }
        if spec != nil && monitor != nil { throw ValidationError("--monitor names an HDF5 dataset; with --spec the monitor is the SPEC file's Monitor column") }
    }

    func run() throws {
        try OutputCheck.file(out, overwrite: force)   // before any work (#22)
        common.apply()
        let ext = (out as NSString).pathExtension.lowercased()
        guard ["cxi", "h5", "hdf5"].contains(ext) else { throw UsageError("output '\(out)' must end in .cxi or .h5 (a CXI file)") }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("output '\(out)' exists; use --force to replace it")
        }
        var options = PreparationOptions()
        options.hotFactor = hotFactor
        options.deadMinCounts = deadMinCounts
        options.register = !noRegister
        options.minCorrelation = minCorrelation
        options.registrationBox = registrationBox
        options.upsampling = upsampling
        options.centring = centre
        options.binning = try parseTriple(bin, name: "--bin")
        guard options.binning.allSatisfy({ $0 >= 1 }) else { throw UsageError("--bin factors must be ≥ 1 (got '\(bin)')") }
        if let s = size {
            options.size = try parseTriple(s, name: "--size")
            guard options.size!.allSatisfy({ $0 >= 1 }) else { throw UsageError("--size must be positive (got '\(s)')") }
        }
        if let l = like {
            // The series' shape from a state prepared before: its crop (before binning) and binning.
            guard size == nil, bin == "1" else { throw UsageError("--like \(l) gives the size and binning: drop --size and --bin") }
            let p = try CXIResults.read(from: l).parameters
            guard case .ints(let crop)? = p["crop_size"], case .ints(let b)? = p["binning"], crop.count == 3, b.count == 3,
                  crop.allSatisfy({ $0 >= 1 }), b.allSatisfy({ $0 >= 1 }) else {
                throw UsageError("\(l) is not a pattern written by bragg prepare (it has no crop_size and binning under \(CXIResults.processPath))")
            }
            options.size = crop; options.binning = b
            if !common.quiet {
                print("size \(crop.map(String.init).joined(separator: ",")) and binning \(b.map(String.init).joined(separator: ",")) from \(l)")
            }
        }
        // A beamline scan: frames, monitor, region of interest and geometry from its files.
        // 34-ID-C: the TIFF folder and the SPEC scan; other beamlines (ID01, P10, I16, NeXus,
        // SIXS): their files, named or detected; nil for plain frame files.
        var beamlineScans: [BeamlineScan]? = nil
        if let specPath = spec, let n = scan.flatMap({ Int($0) }) {
            do {
                beamlineScans = [try APS34IDC.read(folder: scans[0], specPath: specPath, scan: n)]
            } catch let e as SPECError { throw UsageError(e.description) }
            catch let e as PreparationError { throw UsageError(e.description) }
            catch let e as FormatError { throw UsageError(e.description) }
        } else {
            do {   // --dataset without --beamline: the frames are named, the files read as plain stacks
                beamlineScans = dataset != nil && beamline == nil ? nil : try BeamlineReaders.scans(scans, beamline: beamline, scan: scan)
            } catch { throw UsageError("\(error)") }
            if !common.quiet { beamlineScans?.forEach { print($0.summary) } }
        }
        // The first scan's record describes the state (its geometry, its region of interest).
        let beamlineScan = beamlineScans?.first
        do {
            if let b = beamlineScan, b.beamline == .aps34IDC {
                // 34-ID-C's dark file is a bad-pixel map; its flat field is a white field in counts.
                var badPixels = try dark.map { APS34IDC.badPixelMask(try b.cutToROI(try readCalibration($0, what: "dark"), what: "dark \($0)")) }
                if let m = detectorMask {
                    let cut = try b.cutToROI(try readCalibration(m, what: "detector mask"), what: "detector mask \(m)")
                    badPixels = try badPixels.map { bp in
                        try RealVolume(shape: bp.shape, elements: zip(bp.floats, cut.floats).map { $0 != 0 || $1 != 0 ? 1 : 0 })
                    } ?? cut
                }
                options.detectorMask = badPixels
                options.flat = try flat.map { try APS34IDC.relativeEfficiency(try b.cutToROI(try readCalibration($0, what: "flat field"), what: "flat field \($0)")) }
            } else {
                options.dark = try dark.map { try readCalibration($0, what: "dark") }
                options.flat = try flat.map { try readCalibration($0, what: "flat field") }
                options.detectorMask = try detectorMask.map { try readCalibration($0, what: "detector mask") }
            }
        } catch let e as PreparationError { throw UsageError(e.description) }

        // Open every scan (metadata only) and check shapes before reading any frame.
        var stacks: [FrameStack] = beamlineScans?.map { $0.frames } ?? []
        for (k, s) in scans.enumerated() where beamlineScans == nil {
            do {
                stacks.append(try FrameStacks.open(s, dataset: dataset))
            } catch let e as PreparationError {
                throw UsageError("scan \(k + 1) (\(s)): \(e)")
            } catch {
                throw UsageError("scan \(k + 1) (\(s)): \(error)")
            }
        }
        try Preparation.validate(stacks)
        var inputs: [Scan] = []
        for (k, st) in stacks.enumerated() {
            var m: [Double]? = beamlineScans?[k].monitor
            if let mp = monitor {
                guard let h = st as? HDF5FrameStack else {
                    throw UsageError("scan \(k + 1) (\(st.source)): --monitor names an HDF5 dataset, but this scan is not an HDF5 file")
                }
                do { m = try h.perFrame(mp) } catch { throw UsageError("scan \(k + 1) (\(st.source)): monitor: \(error)") }
            }
            inputs.append(Scan(frames: st, monitor: m))
        }
        if let b = beamlineScan, b.beamline == .aps34IDC, !common.quiet {   // the other readers print their summary above
            let a = b.angles.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f°", $0.key, $0.value) }.joined(separator: ", ")
            print(String(format: "%@: %@, %d points, %@ step %.5f°; E = %.4g keV, distance %.4g m, %@ (%.0f µm pixels), region of interest from row %d, column %d; %@%@",
                         b.scanName, b.notes["spec_command"] ?? "", b.frames.shape[0], b.rockingMotor ?? "?", b.rockingStep ?? .nan,
                         (b.energy ?? .nan) / 1000, b.distance ?? .nan, b.notes["detector"] ?? "detector",
                         (b.pixelSize?.column ?? .nan) * 1e6, b.roiOrigin.row, b.roiOrigin.column, a,
                         b.monitor == nil ? "" : "; monitor: the Monitor column"))
        }

        let bar = ProgressBar(quiet: common.quiet, unit: "frames")
        let sh = stacks[0].shape
        bar.message("preparing \(stacks.count) scan(s) of \(sh[0]) frames of \(sh[1])×\(sh[2]) pixels")
        let result = try Preparation.prepare(scans: inputs, options: options, progress: bar.handler,
                                             messages: { bar.message("bragg: warning: " + $0) })
        bar.finish()
        common.saveWisdom()

        for r in result.scans {
            let s = r.shift.map { String(format: "%+.3f", $0) }.joined(separator: ", ")
            print(String(format: "scan %d: shift (%@) px, correlation %.4f, hot %d, constant %d, other bad %d, counts %.4g%@ (%@)",
                         r.index + 1, s, r.correlation, r.hotPixels, r.deadPixels, r.otherBadPixels, r.totalCounts,
                         r.included ? "" : " — LEFT OUT", r.source))
        }
        let masked = result.mask.sum() / Double(result.mask.count)
        let counts = result.pattern.sum()
        guard masked < 1, counts > 0, counts.isFinite else {   // all-zero or all-NaN frames (#22)
            throw UsageError("\(scans.joined(separator: ", ")): the frames hold no positive, finite counts (\(String(format: "%.0f", masked * 100))% of the pattern masked); nothing was written to \(out)")
        }
        print(String(format: "pattern %@ (crop %@ at %@, bin %@), Bragg peak at (%@) in the sum, (%@) in the pattern; %.2f%% of voxels masked; %.4g counts → %@",
                     result.pattern.shape.map(String.init).joined(separator: "×"),
                     result.cropSize.map(String.init).joined(separator: "×"),
                     result.cropStart.map(String.init).joined(separator: ","),
                     result.binning.map(String.init).joined(separator: "×"),
                     result.peak.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                     result.peakInPattern.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                     masked * 100, counts, out))

        // Geometry: the beamline's files (or the first scan's NeXus metadata), for the
        // pattern's pixels and frames (binned), overridden by the options.
        var g: CXIGeometry
        var source: String
        if let b = beamlineScan, Diffractometer.named(b.beamline.rawValue) == nil {
            // No diffractometer model for this beamline (I16, generic NeXus): the numbers
            // that need none; 2θ from --two-theta.
            g = b.basicGeometry
            if let s = g.rockingStep { g.rockingStep = s * Double(result.binning[0]) }
            if let p = g.pixelSize, result.binning[1] == result.binning[2] { g.pixelSize = p * Double(result.binning[1]) }
            g.beamline = b.beamline.rawValue
            g.angles = b.angles
            g.rockingCircle = b.rockingMotor
            if !g.isEmpty { g.shape = result.pattern.shape }
            source = b.scanName
        } else if let b = beamlineScan {
            do { g = try ScanGeometry.record(scan: b, prepared: result) }
            catch let e as PipelineError { throw UsageError(e.description) }
            catch let e as NumericsError { throw UsageError("\(b.scanName): \(e)") }
            source = b.scanName
        } else {
            g = (stacks[0] as? HDF5FrameStack).map { NeXusGeometry.read(from: $0.file) } ?? CXIGeometry()
            if let s = g.rockingStep { g.rockingStep = s * Double(result.binning[0]) }
            if let p = g.pixelSize, result.binning[1] == result.binning[2] { g.pixelSize = p * Double(result.binning[1]) }
            if !g.isEmpty { g.shape = result.pattern.shape }
            source = stacks[0].source
        }
        var overrides: [GeometryOverride] = []
        if let e = energyKeV { overrides.append(GeometryOverride(option: "--energy-kev", quantity: .energy, value: e * 1000)) }
        if let d = distance { overrides.append(GeometryOverride(option: "--distance", quantity: .distance, value: d)) }
        if let p = pixelMicrons {
            overrides.append(GeometryOverride(option: "--pixel-um", quantity: .pixelSize, value: p * 1e-6 * Double(result.binning[2])))
        }
        if let t = twoTheta { overrides.append(GeometryOverride(option: "--two-theta", quantity: .twoTheta, value: t * .pi / 180)) }
        if let r = rockingStep {
            overrides.append(GeometryOverride(option: "--rocking-step", quantity: .rockingStep, value: r * .pi / 180 * Double(result.binning[0])))
        }
        do {
            let (merged, note) = try GeometryMerge.apply(overrides, to: g, source: source)
            g = merged
            if let n = note { print(n) }
        } catch let e as PipelineError { throw UsageError(e.description) }
        if let bg = try? g.braggGeometry() {
            let v = bg.voxelSizes(shape: result.pattern.shape)
            print(String(format: "geometry: 2θ = %.3f°, out of plane %.3f°, |Q| = %.5g Å⁻¹ (d = %.4f Å), Q̂ = (%.3f, %.3f, %.3f); pattern centre at detector pixel (%@); voxel %.1f × %.1f × %.1f nm",
                         bg.twoTheta * 180 / .pi, bg.outOfPlane * 180 / .pi, bg.qMagnitude * 1e-10, bg.dSpacing * 1e10,
                         bg.qHat.x, bg.qHat.y, bg.qHat.z, (g.peakPixel ?? []).map { String(format: "%.1f", $0) }.joined(separator: ", "),
                         v[0] * 1e9, v[1] * 1e9, v[2] * 1e9))
        } else if beamlineScan != nil {
            print("geometry: incomplete (give the missing values with --energy-kev, --distance, --pixel-um, --rocking-step)")
        }

        let cxi = preparedPatternFile(result, options: options, geometry: g)
        try cxi.write(to: out, overwrite: force, compression: compression == 0 ? nil : compression)
    }
}
