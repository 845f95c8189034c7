import ArgumentParser
import BraggKit
import Foundation

/// `bragg prepare`: options (PrepareOptions.swift), help (PrepareHelp.swift) and printing
/// (PrepareSummary.swift) beside it; the work is BraggKit's `StateList`, `StatePreparation`,
/// `Preparation` and `ResultsFile.prepared`.
struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Sum rocking scans of one state into a centred, masked pattern ready for `bragg phase`.",
        discussion: PrepareCommand.discussion)

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
    @OptionGroup var files: ScanFileOptions
    @OptionGroup var choices: PreparationChoiceOptions
    @OptionGroup var geometry: PrepareGeometryOptions
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
        if isSeries && !(out.hasSuffix("/") || StateList.isFolder(out)) {
            throw ValidationError("a series of states is written to a folder: give --out DIR/ (got '\(out)')")
        }
        guard (0...9).contains(compression) else { throw ValidationError("--compression must be 0…9 (got \(compression))") }
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
        if spec != nil && files.monitor != nil { throw ValidationError("--monitor names an HDF5 dataset; with --spec the monitor is the SPEC file's Monitor column") }
    }

    /// A series of states is asked for: several --scan numbers, a --states file, or an
    /// output folder (a path ending in / or an existing folder).
    var isSeries: Bool { states != nil || scan.count > 1 || out.hasSuffix("/") || StateList.isFolder(out) }

    /// The states to prepare: the --states file's, or the SCANs with their --scan numbers.
    func stateList() throws -> [StateSpec] {
        do {
            if let file = states { return try StateList.read(file, withSPEC: spec != nil) }
            return try StateList.fromScans(scans, scanNumbers: scan, withSPEC: spec != nil, series: isSeries)
        } catch let e as StateListError { throw UsageError(commandLineMessage(for: e)) }
    }

    func run() throws {
        let series = isSeries
        if series { try OutputCheck.folder(out, overwrite: true) } else { try OutputCheck.file(out, overwrite: force) }   // before any work (#22)
        common.apply()
        if !series && !["cxi", "h5", "hdf5"].contains((out as NSString).pathExtension.lowercased()) {
            throw UsageError("output '\(out)' must end in .cxi or .h5 (a CXI file), or in / for a folder of states")
        }
        let (options, likeNote) = try choices.preparationOptions()
        if let n = likeNote, !common.quiet { print(n) }
        var request = files.request()
        request.beamline = beamline; request.spec = spec; request.options = options
        request.scan = spec == nil && scan.count == 1 ? scan[0] : nil

        // Every state opened (metadata, beamline records, calibrations) and checked before
        // any frame is read; in a series, every output file too.
        let list = try stateList()
        var opened: [OpenedState] = [], outputs = [out]
        do {
            opened = try StatePreparation.open(list, request: request) { o in
                if !common.quiet { for b in o.beamlineScans ?? [] { print(PrepareSummary.beamline(b, state: series ? o.name : nil)) } }
            }
            if series {
                try StatePreparation.checkSeries(opened)
                outputs = opened.map { URL(fileURLWithPath: out).appendingPathComponent($0.name + ".cxi").path }
                try OutputCheck.files(outputs, overwrite: force)
            }
        } catch let e as PipelineError { throw UsageError(commandLineMessage(for: e)) }
        if series { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }

        let bar = ProgressBar(quiet: common.quiet, unit: "frames")
        let warn: (String) -> Void = { bar.message("bragg: warning: " + $0) }
        bar.message(PrepareSummary.start(opened, series: series))
        let results = series
            ? try Preparation.prepareSeries(states: opened.map { ($0.name, $0.scans) }, options: opened.map(\.options),
                                            size: options.size, binning: options.binning, progress: bar.handler, messages: warn)
            : [try Preparation.prepare(scans: opened[0].scans, options: opened[0].options, progress: bar.handler, messages: warn)]
        bar.finish()
        common.saveWisdom()
        for (k, (state, result)) in zip(opened, results).enumerated() {
            try write(state, result, to: outputs[k], options: options, label: series ? "state \(state.name): " : "")
        }
    }

    /// Prints what was done to a state, computes its geometry and writes its CXI file.
    func write(_ state: OpenedState, _ result: PreparedPattern, to path: String, options: PreparationOptions, label: String) throws {
        PrepareSummary.scans(result, label: label).forEach { print($0) }
        let masked = result.mask.sum() / Double(result.mask.count), counts = result.pattern.sum()
        guard masked < 1, counts > 0, counts.isFinite else {   // all-zero or all-NaN frames (#22)
            throw UsageError("\(state.paths.joined(separator: ", ")): the frames hold no positive, finite counts (\(String(format: "%.0f", masked * 100))% of the pattern masked); nothing was written to \(path)")
        }
        print(PrepareSummary.pattern(result, masked: masked, counts: counts, path: path, label: label))
        // Geometry: the beamline's files (or the first scan's NeXus metadata), for the
        // pattern's pixels and frames (binned), with the options' values over them.
        let g: CXIGeometry
        do {
            let (record, note) = try StatePreparation.geometry(of: state, prepared: result, options: geometry.geometryOptions())
            g = record
            if let n = note { print(label + n) }
        } catch let e as PipelineError { throw UsageError(commandLineMessage(for: e)) }
        if let line = PrepareSummary.geometry(g, result, state: state, label: label) { print(line) }
        let cxi = ResultsFile.prepared(result, options: options, geometry: g, programName: "BraggKit \(Bragg.version) prepare")
        try cxi.write(to: path, overwrite: force, compression: compression == 0 ? nil : compression)
    }
}
