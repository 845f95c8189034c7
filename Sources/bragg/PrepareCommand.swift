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
    do { return try CalibrationImage.read(spec) } catch let e as FormatError { throw UsageError("\(what): \(commandLineMessage(for: e))") }
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
            --rocking-step override it, and say so (energy, distance and pixel size enter the \
            diffractometer model, so a file without a distance gets its full geometry from --distance). \
            Diamond I16 files (--beamline i16) get the six-circle of H. You (1999) as diffcalc defines \
            it (mu, eta, chi, phi; gam, delta); an I13-1 file, whose robot-arm detector has no model \
            here, needs --two-theta.

            A series of states in one shape: with --out DIR/ every SCAN is one state (or list states \
            of several scans in --states FILE; with --spec, give one TIFF folder per --scan). Every \
            file is opened and checked (one detector frame size across states, no existing output \
            without --force) before any frame is read; each state is summed on its own, then every \
            state is cropped to one size around its own Bragg peak: --size, --like's, or the largest \
            fast size that fits around every state's peak; one DIR/NAME.cxi per state (NAME: the \
            folder or file name, or the --states name).
            """
    )

    @Argument(help: "The scans of one state (files or TIFF folders); with an output folder (--out DIR/), one state per SCAN.")
    var scans: [String] = []

    @Option(help: "A series of states in a text file, one a line: 'NAME SCAN [SCAN …]' ('NAME FOLDER SCAN_NUMBER' with --spec; paths relative to the file; # starts a comment). Written to --out DIR/NAME.cxi, all in one shape.")
    var states: String?

    @Option(help: "Beamline layout of the scans: 34idc, id01, p10, i16, nexus, sixs (default: found from the files; 34idc with --spec).")
    var beamline: String?

    @Option(help: "The beamline's SPEC file (34-ID-C), giving the geometry of scan --scan.")
    var spec: String?

    @Option(help: "Scan: the #S number in the SPEC file (34-ID-C), the scan in a multi-scan file (ID01 BLISS: the number before .1) or in a P10 experiment folder. Repeated: one state per scan (34-ID-C: one per TIFF folder, in order).")
    var scan: [String] = []

    @Option(name: .shortAndLong, help: "Output CXI file (.cxi or .h5), or a folder (ending in /, or existing) for a series of states: one NAME.cxi per state.")
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
        guard !scans.isEmpty || states != nil else { throw ValidationError("give at least one scan (or a --states file)") }
        if states != nil && !scans.isEmpty { throw ValidationError("--states lists the scans: give no SCAN arguments with it") }
        if states != nil && !scan.isEmpty && spec != nil { throw ValidationError("with --states and --spec each line gives its scan number: drop --scan") }
        if isSeries && !(out.hasSuffix("/") || isDirectory(out)) {
            throw ValidationError("a series of states is written to a folder: give --out DIR/ (got '\(out)')")
        }
        guard hotFactor > 1 else { throw ValidationError("--hot-factor must be > 1 (got \(hotFactor))") }
        guard (-1...1).contains(minCorrelation) else { throw ValidationError("--min-correlation must be in [-1, 1] (got \(minCorrelation))") }
        guard registrationBox >= 4 else { throw ValidationError("--registration-box must be at least 4 (got \(registrationBox))") }
        guard (0...9).contains(compression) else { throw ValidationError("--compression must be 0…9 (got \(compression))") }
        guard upsampling >= 1 && upsampling <= 1000 else { throw ValidationError("--upsampling must be in 1…1000 (got \(upsampling))") }
        if let b = beamline, Beamline(rawValue: b.lowercased()) == nil {
            throw ValidationError("--beamline must be one of \(Beamline.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(b)')")
        }
        let is34IDC = spec != nil || beamline?.lowercased() == Beamline.aps34IDC.rawValue
        if is34IDC && scan.isEmpty && states == nil { throw ValidationError("--spec needs --scan N (the scan's #S number)") }
        if is34IDC && spec == nil { throw ValidationError("--beamline 34idc needs --spec FILE and --scan N") }
        if spec != nil, let b = beamline, b.lowercased() != Beamline.aps34IDC.rawValue {
            throw ValidationError("--spec is read for --beamline 34idc only (got --beamline \(b))")
        }
        if is34IDC, let n = scan.first(where: { Int($0) == nil }) { throw ValidationError("--scan must be the SPEC scan number (#S), an integer (got '\(n)')") }
        if spec != nil && states == nil && scans.count != scan.count {
            throw ValidationError("--spec reads one scan per TIFF folder: give one folder per --scan (got \(scans.count) folder(s) for \(scan.count) --scan)")
        }
        if spec != nil && monitor != nil { throw ValidationError("--monitor names an HDF5 dataset; with --spec the monitor is the SPEC file's Monitor column") }
    }

    /// A series of states is asked for: several --scan numbers, a --states file, or an
    /// output folder (a path ending in / or an existing folder).
    var isSeries: Bool {
        var isDir: ObjCBool = false
        return states != nil || scan.count > 1 || out.hasSuffix("/")
            || (FileManager.default.fileExists(atPath: out, isDirectory: &isDir) && isDir.boolValue)
    }

    /// The states to prepare: (name, scan paths, SPEC scan number, scan in a multi-scan file).
    func stateList() throws -> [(name: String, paths: [String], specScan: Int?, scan: String?)] {
        func stem(_ p: String) -> String {
            let u = URL(fileURLWithPath: p.hasSuffix("/") ? String(p.dropLast()) : p)
            return u.pathExtension.isEmpty || isDirectory(p) ? u.lastPathComponent : u.deletingPathExtension().lastPathComponent
        }
        if let file = states {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw UsageError("cannot read the states file \(file)") }
            let base = URL(fileURLWithPath: file).deletingLastPathComponent()
            var list: [(String, [String], Int?, String?)] = []
            for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                if words.isEmpty { continue }
                func resolved(_ p: String) -> String { p.hasPrefix("/") ? p : base.appendingPathComponent(p).path }
                if spec != nil {
                    guard words.count == 3, let n = Int(words[2]) else {
                        throw UsageError("\(file) line \(k + 1): with --spec a state is 'NAME FOLDER SCAN_NUMBER' (got '\(line.trimmingCharacters(in: .whitespaces))')")
                    }
                    list.append((words[0], [resolved(words[1])], n, nil))
                } else {
                    guard words.count >= 2 else {
                        throw UsageError("\(file) line \(k + 1): a state is 'NAME SCAN [SCAN …]' (got '\(line.trimmingCharacters(in: .whitespaces))')")
                    }
                    list.append((words[0], words.dropFirst().map(resolved), nil, nil))
                }
            }
            guard !list.isEmpty else { throw UsageError("the states file \(file) lists no state") }
            return list
        }
        if spec != nil {
            // 34-ID-C: each TIFF folder with its own #S number.
            guard scans.count == scan.count else {
                throw UsageError("--spec pairs each TIFF folder with one --scan number: \(scans.count) folder(s) for \(scan.count) --scan")
            }
            return zip(scans, scan).map { (stem($0), [$0], Int($1), nil) }
        }
        if scan.count > 1 {
            // Several scans of one multi-scan file (ID01 BLISS), or one --scan per file.
            if scans.count == 1 { return scan.map { ("\(stem(scans[0]))_\($0)", scans, nil, $0) } }
            guard scans.count == scan.count else {
                throw UsageError("give one --scan per file or one file for all --scan numbers (got \(scans.count) files and \(scan.count) --scan)")
            }
            return zip(scans, scan).map { ("\(stem($0))_\($1)", [$0], nil, $1) }
        }
        // One output file: every SCAN is a scan of the one state (summed).
        if !isSeries { return [(stem(scans[0]), scans, nil, scan.first)] }
        return scans.map { (stem($0), [$0], nil, nil) }   // one state per SCAN
    }

    func isDirectory(_ p: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue
    }

    func run() throws {
        let series = isSeries
        if series { try OutputCheck.folder(out, overwrite: true) } else { try OutputCheck.file(out, overwrite: force) }   // before any work (#22)
        common.apply()
        if !series {
            let ext = (out as NSString).pathExtension.lowercased()
            guard ["cxi", "h5", "hdf5"].contains(ext) else { throw UsageError("output '\(out)' must end in .cxi or .h5 (a CXI file), or in / for a folder of states") }
        }
        var request = PrepareRequest()
        request.beamline = beamline; request.spec = spec; request.dataset = dataset; request.monitor = monitor
        request.scan = spec == nil && scan.count == 1 ? scan[0] : nil
        request.dark = dark; request.flat = flat; request.detectorMask = detectorMask
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
        request.options = options

        // Every state opened (metadata, beamline records, calibrations) and checked before
        // any frame is read; in a series, every output file too.
        let list = try stateList()
        var opened: [OpenedState] = []
        var outputs: [String] = []
        do {
            for st in list {
                var r = request
                if let n = st.scan { r.scan = n }
                let o = try StatePreparation.open(name: st.name, paths: st.paths, specScan: st.specScan, request: r)
                opened.append(o)
                if !common.quiet {
                    for b in o.beamlineScans ?? [] {
                        print((series ? "state \(o.name): " : "") + (b.beamline == .aps34IDC ? summary34IDC(b) : b.summary))
                    }
                }
            }
            if series {
                try StatePreparation.checkSeries(opened)
                outputs = opened.map { URL(fileURLWithPath: out).appendingPathComponent($0.name + ".cxi").path }
                try OutputCheck.files(outputs, overwrite: force)
            }
        } catch let e as PipelineError { throw UsageError(commandLineMessage(for: e)) }
        if series { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } else { outputs = [out] }

        let bar = ProgressBar(quiet: common.quiet, unit: "frames")
        let results: [PreparedPattern]
        if series {
            bar.message("preparing \(opened.count) states (\(opened.map { "\($0.name): \($0.scans.count) scan(s)" }.joined(separator: ", ")))")
            results = try Preparation.prepareSeries(states: opened.map { ($0.name, $0.scans) }, options: opened.map(\.options),
                                                    size: options.size, binning: options.binning, progress: bar.handler,
                                                    messages: { bar.message("bragg: warning: " + $0) })
        } else {
            let sh = opened[0].scans[0].frames.shape
            bar.message("preparing \(opened[0].scans.count) scan(s) of \(sh[0]) frames of \(sh[1])×\(sh[2]) pixels")
            results = [try Preparation.prepare(scans: opened[0].scans, options: opened[0].options, progress: bar.handler,
                                               messages: { bar.message("bragg: warning: " + $0) })]
        }
        bar.finish()
        common.saveWisdom()

        var geometry = GeometryOptions()
        geometry.labels = prepareGeometryFlags
        geometry.energy = energyKeV.map { $0 * 1000 }
        geometry.distance = distance
        geometry.pixelSize = pixelMicrons.map { $0 * 1e-6 }
        geometry.twoTheta = twoTheta.map { $0 * .pi / 180 }
        geometry.rockingStep = rockingStep.map { $0 * .pi / 180 }
        for (k, (state, result)) in zip(opened, results).enumerated() {
            try write(state, result, to: outputs[k], options: options, geometry: geometry, label: series ? "state \(state.name): " : "")
        }
    }

    /// Prints what was done to a state, computes its geometry and writes its CXI file.
    func write(_ state: OpenedState, _ result: PreparedPattern, to path: String, options: PreparationOptions,
               geometry: GeometryOptions, label: String) throws {
        for r in result.scans {
            let s = r.shift.map { String(format: "%+.3f", $0) }.joined(separator: ", ")
            print(String(format: "%@scan %d: shift (%@) px, correlation %.4f, hot %d, constant %d, other bad %d, counts %.4g%@ (%@)",
                         label, r.index + 1, s, r.correlation, r.hotPixels, r.deadPixels, r.otherBadPixels, r.totalCounts,
                         r.included ? "" : " — LEFT OUT", r.source))
        }
        let masked = result.mask.sum() / Double(result.mask.count)
        let counts = result.pattern.sum()
        guard masked < 1, counts > 0, counts.isFinite else {   // all-zero or all-NaN frames (#22)
            throw UsageError("\(state.paths.joined(separator: ", ")): the frames hold no positive, finite counts (\(String(format: "%.0f", masked * 100))% of the pattern masked); nothing was written to \(path)")
        }
        print(String(format: "%@pattern %@ (crop %@ at %@, bin %@), Bragg peak at (%@) in the sum, (%@) in the pattern; %.2f%% of voxels masked; %.4g counts → %@",
                     label, result.pattern.shape.map(String.init).joined(separator: "×"),
                     result.cropSize.map(String.init).joined(separator: "×"),
                     result.cropStart.map(String.init).joined(separator: ","),
                     result.binning.map(String.init).joined(separator: "×"),
                     result.peak.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                     result.peakInPattern.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                     masked * 100, counts, path))

        // Geometry: the beamline's files (or the first scan's NeXus metadata), for the
        // pattern's pixels and frames (binned), with the options' values over them.
        let g: CXIGeometry
        do {
            let (record, note) = try StatePreparation.geometry(of: state, prepared: result, options: geometry)
            g = record
            if let n = note { print(label + n) }
        } catch let e as PipelineError { throw UsageError(commandLineMessage(for: e)) }
        if let bg = try? g.braggGeometry() {
            let v = bg.voxelSizes(shape: result.pattern.shape)
            print(String(format: "%@geometry: 2θ = %.3f°, out of plane %.3f°, |Q| = %.5g Å⁻¹ (d = %.4f Å), Q̂ = (%.3f, %.3f, %.3f); pattern centre at detector pixel (%@); voxel %.1f × %.1f × %.1f nm",
                         label, bg.twoTheta * 180 / .pi, bg.outOfPlane * 180 / .pi, bg.qMagnitude * 1e-10, bg.dSpacing * 1e10,
                         bg.qHat.x, bg.qHat.y, bg.qHat.z, (g.peakPixel ?? []).map { String(format: "%.1f", $0) }.joined(separator: ", "),
                         v[0] * 1e9, v[1] * 1e9, v[2] * 1e9))
        } else if state.beamlineScan != nil {
            let why = g.notes["geometry"].map { " — \($0)" } ?? ""
            print("\(label)geometry: incomplete\(why) (give the missing values with --energy-kev, --distance, --pixel-um, --two-theta, --rocking-step)")
        }

        let cxi = ResultsFile.prepared(result, options: options, geometry: g, programName: "BraggKit \(Bragg.version) prepare")
        try cxi.write(to: path, overwrite: force, compression: compression == 0 ? nil : compression)
    }

    /// The 34-ID-C reader's line (the SPEC scan: command, points, energy, distance, detector, angles).
    func summary34IDC(_ b: BeamlineScan) -> String {
        let a = b.angles.sorted { $0.key < $1.key }.map { String(format: "%@ %.4f°", $0.key, $0.value) }.joined(separator: ", ")
        return String(format: "%@: %@, %d points, %@ step %.5f°; E = %.4g keV, distance %.4g m, %@ (%.0f µm pixels), region of interest from row %d, column %d; %@%@",
                      b.scanName, b.notes["spec_command"] ?? "", b.frames.shape[0], b.rockingMotor ?? "?", b.rockingStep ?? .nan,
                      (b.energy ?? .nan) / 1000, b.distance ?? .nan, b.notes["detector"] ?? "detector",
                      (b.pixelSize?.column ?? .nan) * 1e6, b.roiOrigin.row, b.roiOrigin.column, a,
                      b.monitor == nil ? "" : "; monitor: the Monitor column")
    }
}
