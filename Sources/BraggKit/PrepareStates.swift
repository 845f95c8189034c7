import Foundation
import Numerics
import Formats
import Preparation

// The glue of `bragg prepare` for one state or a series of states: open each state's scans
// (metadata only) with their beamline record and calibrations, check everything before any
// frame is read, and turn a prepared pattern into its geometry record. The command parses
// options and prints; this layer throws one sentence naming the file.

/// What the command line asks of every state.
public struct PrepareRequest {
    /// --beamline, --spec (34-ID-C), --scan for multi-scan files (ID01, P10), --dataset, --monitor.
    public var beamline: String?
    public var spec: String?
    public var scan: String?
    public var dataset: String?
    public var monitor: String?
    /// Calibration files (FILE or FILE:DATASET).
    public var dark: String?
    public var flat: String?
    public var detectorMask: String?
    /// The preparation's choices, shared by every state.
    public var options = PreparationOptions()
    public init() {}
}

/// One state opened: its scans (frames and monitors), the beamline records of its scans,
/// and its options with the calibrations cut to its region of interest.
public struct OpenedState {
    public var name: String
    public var paths: [String]
    public var scans: [Scan]
    /// nil: plain frame files (their NeXus metadata, if any, gives the geometry).
    public var beamlineScans: [BeamlineScan]?
    public var options: PreparationOptions
    /// The first scan's record describes the state (its geometry, its region of interest).
    public var beamlineScan: BeamlineScan? { beamlineScans?.first }
}

/// Command-line values of the geometry (SI: eV, m, rad), replacing the files'. The pixel
/// size and rocking step are the detector's and the scan's (before binning).
public struct GeometryOptions {
    public var energy: Double?
    public var distance: Double?
    public var pixelSize: Double?
    public var twoTheta: Double?
    public var rockingStep: Double?
    /// How each value is named in the note of what it replaced (a program's own names, e.g.
    /// its flags); a quantity without one is named in words (`GeometryOverride.Quantity.name`).
    public var labels: [GeometryOverride.Quantity: String] = [:]
    public init() {}

    func label(_ q: GeometryOverride.Quantity) -> String { labels[q] ?? q.name }
}

public enum StatePreparation {
    /// Opens one state's scans, reads their beamline records and calibrations, and checks
    /// the shapes: nothing is read of the frames yet. `specScan`: the SPEC #S number of a
    /// 34-ID-C state (its one TIFF folder in `paths`).
    public static func open(name: String, paths: [String], specScan: Int?, request: PrepareRequest) throws -> OpenedState {
        func fail(_ s: String) -> PipelineError { .input(s) }
        var beamlineScans: [BeamlineScan]?
        if let specPath = request.spec, let n = specScan {
            do { beamlineScans = [try APS34IDC.read(folder: paths[0], specPath: specPath, scan: n)] }
            catch let e as BeamlineError { throw e } catch { throw fail("\(error)") }
        } else {
            do {   // --dataset without --beamline: the frames are named, the files read as plain stacks
                beamlineScans = request.dataset != nil && request.beamline == nil ? nil
                    : try BeamlineReaders.scans(paths, beamline: request.beamline, scan: request.scan)
            } catch let e as BeamlineError { throw e } catch { throw fail("\(error)") }
        }
        var options = request.options
        func calibration(_ spec: String, _ what: String) throws -> RealVolume {
            do { return try CalibrationImage.read(spec) } catch { throw fail("\(what): \(error)") }
        }
        do {
            if let b = beamlineScans?.first, b.beamline == .aps34IDC {
                // 34-ID-C's dark file is a bad-pixel map; its flat field is a white field in counts.
                var badPixels = try request.dark.map { APS34IDC.badPixelMask(try b.cutToROI(try calibration($0, "dark"), what: "dark \($0)")) }
                if let m = request.detectorMask {
                    let cut = try b.cutToROI(try calibration(m, "detector mask"), what: "detector mask \(m)")
                    badPixels = try badPixels.map { bp in
                        try RealVolume(shape: bp.shape, elements: zip(bp.floats, cut.floats).map { $0 != 0 || $1 != 0 ? 1 : 0 })
                    } ?? cut
                }
                options.detectorMask = badPixels
                options.flat = try request.flat.map { try APS34IDC.relativeEfficiency(try b.cutToROI(try calibration($0, "flat field"), what: "flat field \($0)")) }
            } else {
                options.dark = try request.dark.map { try calibration($0, "dark") }
                options.flat = try request.flat.map { try calibration($0, "flat field") }
                options.detectorMask = try request.detectorMask.map { try calibration($0, "detector mask") }
            }
        } catch let e as PipelineError { throw e } catch { throw fail("\(error)") }

        var stacks: [FrameStack] = beamlineScans?.map { $0.frames } ?? []
        for (k, s) in paths.enumerated() where beamlineScans == nil {
            do { stacks.append(try FrameStacks.open(s, dataset: request.dataset)) }
            catch { throw PipelineError.scanUnreadable(scan: k, source: s, reason: error) }
        }
        do { try Preparation.validate(stacks) } catch { throw fail("\(error)") }
        var scans: [Scan] = []
        for (k, st) in stacks.enumerated() {
            var m: [Double]? = beamlineScans?[k].monitor
            if let mp = request.monitor {
                guard let h = st as? HDF5FrameStack else {
                    throw PipelineError.monitorNotHDF5(scan: k, source: st.source)
                }
                do { m = try h.perFrame(mp) } catch { throw fail("scan \(k + 1) (\(st.source)): monitor: \(error)") }
            }
            scans.append(Scan(frames: st, monitor: m))
        }
        return OpenedState(name: name, paths: paths, scans: scans, beamlineScans: beamlineScans, options: options)
    }

    /// Opens every state of `states` in order (`open(name:paths:specScan:request:)`, with the
    /// state's scan in a multi-scan file over the request's), handing each to `each` as soon
    /// as it is open.
    public static func open(_ states: [StateSpec], request: PrepareRequest,
                            each: (OpenedState) throws -> Void = { _ in }) throws -> [OpenedState] {
        var opened: [OpenedState] = []
        for st in states {
            var r = request
            if let n = st.scan { r.scan = n }
            let o = try open(name: st.name, paths: st.paths, specScan: st.specScan, request: r)
            try each(o)
            opened.append(o)
        }
        return opened
    }

    /// Checks a series before any frame is read: distinct state names, one detector frame
    /// (rows × columns) across states. Errors name the state and its file.
    public static func checkSeries(_ states: [OpenedState]) throws {
        var seen = Set<String>()
        for s in states {
            guard seen.insert(s.name).inserted else {
                throw PipelineError.duplicateStateName(name: s.name, paths: s.paths)
            }
        }
        do { try Preparation.validateSeries(states.map { ($0.name, $0.scans.map(\.frames)) }) }
        catch { throw PipelineError.input("\(error)") }
    }

    /// The geometry record of a prepared state and the line naming what the command line
    /// overrode (nil when nothing was). A beamline with a diffractometer model computes Q and
    /// the detector's steps from the circles, with the command line's energy, distance and
    /// pixel size in place of the files' (so that a file without a distance still gets its
    /// full geometry from --distance); 2θ and the rocking step then replace the result's.
    /// Without a model (generic NeXus, plain frame files) the files' numbers are used as
    /// they are, with every command-line value over them.
    public static func geometry(of state: OpenedState, prepared result: PreparedPattern,
                                options o: GeometryOptions) throws -> (record: CXIGeometry, note: String?) {
        let bin = result.binning
        var g: CXIGeometry, source: String
        var overrides: [GeometryOverride] = []
        var replaced: [String] = []
        if var b = state.beamlineScan, Diffractometer.named(b.beamline.rawValue) != nil {
            func part(_ option: String, _ q: GeometryOverride.Quantity, _ new: Double, _ old: Double?) {
                let t = GeometryOverride(option: option, quantity: q, value: new)
                replaced.append("\(option) \(t.text(new)) replaces \(old == nil ? "none" : t.text(old))")
            }
            if let e = o.energy { part(o.label(.energy), .energy, e, b.energy); b.energy = e }
            if let d = o.distance { part(o.label(.distance), .distance, d, b.distance); b.distance = d }
            if let p = o.pixelSize { part(o.label(.pixelSize), .pixelSize, p, b.pixelSize?.column); b.pixelSize = (p, p) }
            do { g = try ScanGeometry.record(scan: b, prepared: result) }
            catch let e as PipelineError { throw e }
            catch { throw PipelineError.geometry("\(b.scanName): \(error)") }
            source = b.scanName
        } else if let b = state.beamlineScan {
            // No diffractometer model for this beamline (generic NeXus): the numbers that
            // need none; 2θ from --two-theta.
            g = b.basicGeometry
            if let s = g.rockingStep { g.rockingStep = s * Double(bin[0]) }
            if let p = g.pixelSize, bin[1] == bin[2] { g.pixelSize = p * Double(bin[1]) }
            g.beamline = b.beamline.rawValue
            g.angles = b.angles
            g.rockingCircle = b.rockingMotor
            if !g.isEmpty { g.shape = result.pattern.shape }
            source = b.scanName
        } else {
            g = (state.scans.first?.frames as? HDF5FrameStack).map { NeXusGeometry.read(from: $0.file) } ?? CXIGeometry()
            if let s = g.rockingStep { g.rockingStep = s * Double(bin[0]) }
            if let p = g.pixelSize, bin[1] == bin[2] { g.pixelSize = p * Double(bin[1]) }
            if !g.isEmpty { g.shape = result.pattern.shape }
            source = state.scans.first?.frames.source ?? state.name
        }
        if replaced.isEmpty {
            if let e = o.energy { overrides.append(GeometryOverride(option: o.label(.energy), quantity: .energy, value: e)) }
            if let d = o.distance { overrides.append(GeometryOverride(option: o.label(.distance), quantity: .distance, value: d)) }
            if let p = o.pixelSize {
                overrides.append(GeometryOverride(option: o.label(.pixelSize), quantity: .pixelSize, value: p * Double(bin[2])))
            }
        }
        if let t = o.twoTheta { overrides.append(GeometryOverride(option: o.label(.twoTheta), quantity: .twoTheta, value: t)) }
        if let r = o.rockingStep {
            overrides.append(GeometryOverride(option: o.label(.rockingStep), quantity: .rockingStep, value: r * Double(bin[0])))
        }
        let (merged, note) = try GeometryMerge.apply(overrides, to: g, source: source)
        var parts = replaced
        if let n = note, let r = n.range(of: "overridden on the command line: ") { parts.append(String(n[r.upperBound...])) }
        return (merged, parts.isEmpty ? nil : "geometry from \(source), overridden on the command line: " + parts.joined(separator: "; "))
    }
}
