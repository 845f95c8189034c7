// Module Preparation: from rocking-scan frame stacks to a pattern ready to phase.
// See ../shared/DESIGN.md. Per scan: dark/flat/monitor correction, bad-pixel masks;
// across scans: registration to the first scan and summation; then centring on the
// Bragg peak, cropping to a fast FFT size and optional binning.
import Foundation
import Numerics

/// A stack of detector frames: one rocking scan. Axis 0 is the frame (rocking angle),
/// axes 1 and 2 the detector rows and columns.
public protocol FrameStack {
    /// The file (and dataset) the frames come from, for messages.
    var source: String { get }
    /// [frames, rows, columns].
    var shape: [Int] { get }
    /// Frames `range` as Floats: a [range.count, rows, columns] volume.
    func readFrames(_ range: Range<Int>) throws -> RealVolume
    /// Frames the reader prefers to read at once (e.g. a whole HDF5 chunk); nil: any.
    var preferredFramesPerRead: Int? { get }
    /// Called when every frame has been read: readers holding data may release it.
    func finishedReading()
}

/// The package's own readers also fill a caller's buffer in place (the preparation reads
/// a block of frames straight into the scan's volume, so a large scan is never held
/// twice) and may deliver samples unconverted. `package`: these hand out raw pointers;
/// a frame stack of the library's users needs only `FrameStack.readFrames(_:)`.
package protocol FrameBufferFilling: FrameStack {
    /// Reads frames `range` as Floats in C order into `buffer`
    /// (range.count × rows × columns values).
    func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws
    /// The frames' own sample type when the reader can deliver them unconverted (nil: as
    /// Floats only). The preparation then converts them in its correction pass.
    var nativeSampleType: FrameSampleType? { get }
    /// Reads frames `range` unconverted, as `nativeSampleType`, into `buffer`
    /// (range.count × rows × columns samples).
    func readNativeFrames(_ range: Range<Int>, into buffer: UnsafeMutableRawPointer) throws
}

/// Sample types that frames can be delivered in without conversion.
package enum FrameSampleType: Sendable {
    case uint8, int8, uint16, int16, uint32, int32, float32

    package var byteCount: Int {
        switch self {
        case .uint8, .int8: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        }
    }
}

/// Frames already in memory (tests, NPY files read whole).
public struct InMemoryFrameStack: FrameStack, FrameBufferFilling {
    public let source: String
    public let frames: RealVolume
    public var shape: [Int] { frames.shape }

    public init(_ frames: RealVolume, source: String) throws {
        guard frames.rank == 3 else {
            throw PreparationError.notAFrameStack(source: source, shape: frames.shape)
        }
        self.frames = frames
        self.source = source
    }

    public func readFrames(_ range: Range<Int>) throws -> RealVolume { try framesVolume(range) }

    package func fillFrames(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        try checkFrameRange(range)
        let f = shape[1] * shape[2]
        frames.withUnsafeFloats { p in
            buffer.update(from: p.baseAddress! + range.lowerBound * f, count: range.count * f)
        }
    }
}

/// One scan to prepare: its frames and, optionally, the monitor (incident flux) per frame.
public struct Scan {
    public var frames: FrameStack
    public var monitor: [Double]?
    public init(frames: FrameStack, monitor: [Double]? = nil) {
        self.frames = frames; self.monitor = monitor
    }
}

/// How the Bragg peak is located for centring.
public enum PeakCentring: String, CaseIterable, Sendable {
    /// Centre of mass of the intensity in a box around the maximum.
    case centreOfMass = "com"
    /// The brightest voxel.
    case maximum = "max"
}

/// Every choice of the preparation, with the defaults `bragg prepare` uses.
public struct PreparationOptions {
    /// Dark (background) frame subtracted from every frame: [rows, cols], or a full
    /// [frames, rows, cols] stack of the scans' shape.
    public var dark: RealVolume?
    /// Flat field (relative detector efficiency, [rows, cols]): frames are divided by it;
    /// pixels where it is ≤ 0 or not finite are masked.
    public var flat: RealVolume?
    /// The detector's own mask (gaps, known bad pixels): [rows, cols], nonzero = bad.
    public var detectorMask: RealVolume?
    /// A pixel is hot when its frame-summed counts exceed `hotFactor` × (median of its
    /// 8 neighbours + 1).
    public var hotFactor: Double = 10
    /// A pixel constant across all frames (dead, stuck or in a gap) is masked when the
    /// median of its neighbours' frame-summed counts is at least this: a live pixel would
    /// then almost surely vary (P(all zero) = e^-10 at 10 counts).
    public var deadMinCounts: Double = 10
    /// Register scans to the first one (off: plain sum).
    public var register = true
    /// Edge of the box around the first scan's Bragg peak used for registration.
    public var registrationBox = 64
    /// Registration precision: 1/upsampling voxel.
    public var upsampling = 20
    /// Scans whose correlation coefficient with the first is lower are left out.
    public var minCorrelation = 0.5
    public var centring: PeakCentring = .centreOfMass
    /// Output size before binning (per axis). nil: the largest fast size (2^a 3^b 5^c)
    /// that fits in the data symmetrically around the peak.
    public var size: [Int]?
    /// Binning factor per axis (summing b voxels into one).
    public var binning = [1, 1, 1]
    /// Frames read at a time.
    public var framesPerRead = 16
    /// How the forward FFT of a shifted scan is computed (the same sum either way, to
    /// rounding).
    public var scanTransform: ScanTransform = .framesAndColumns

    public init() {}
}

/// The forward FFT of a shifted scan before it is added to the sum.
public enum ScanTransform: Sendable {
    /// 2D FFTs of the frames, then 1D FFTs along the frame axis in blocks of columns, each
    /// block phase-ramped and added while in cache: chunks the reading thread can join.
    case framesAndColumns
    /// One 3D plan (a frame shape that would break FFTW's alignment uses it anyway).
    case wholeScan
}

/// What happened to one scan.
public struct ScanReport: Sendable {
    /// Position in the list of scans (0-based).
    public var index: Int
    public var source: String
    /// Shift (frames, rows, columns) applied to bring the scan onto the first one.
    public var shift: [Double]
    /// Correlation coefficient with the first scan at that shift (1 for the first).
    public var correlation: Double
    /// False when the scan was left out; `note` says why.
    public var included: Bool
    public var note: String?
    /// Pixels masked in this scan: hot, constant (dead or gap), bad values (negative,
    /// NaN/Inf, bad flat field or the detector mask).
    public var hotPixels: Int
    public var deadPixels: Int
    public var otherBadPixels: Int
    /// Sum of the corrected counts.
    public var totalCounts: Double
}

/// The prepared pattern and the record of how it was made.
public struct PreparedPattern {
    /// Summed, centred, cropped (and binned) intensity, zero-frequency at n/2 per axis.
    public var pattern: RealVolume
    /// 1 = bad (masked) voxel, 0 = good.
    public var mask: RealVolume
    public var scans: [ScanReport]
    /// Bragg peak position (frames, rows, columns) in the summed stack, before cropping,
    /// by the chosen centring (bad pixels filled by their neighbours' mean).
    public var peak: [Double]
    /// Corner of the crop in the summed stack (may be negative when padded).
    public var cropStart: [Int]
    /// Size of the crop before binning.
    public var cropSize: [Int]
    public var binning: [Int]
    /// Shape of the scans' frame stacks.
    public var stackShape: [Int]
    /// Detector pixels masked in the aligned frame (union over scans).
    public var maskedPixels: Int

    /// The same Bragg peak position in the output array's coordinates (after cropping and
    /// binning): n/2 per axis, to within half a voxel, when centring worked.
    public var peakInPattern: [Double]

    /// Wall time of each stage of the preparation (seconds) and the CPU time of the thread
    /// that ran it (without its parallel loops' workers), for profiling.
    public var stageSeconds: [(stage: String, seconds: Double, threadCPU: Double)] = []
}

/// Why a preparation could not be done: one sentence naming the scan and file.
public enum PreparationError: Error, CustomStringConvertible {
    case noScans
    case notAFrameStack(source: String, shape: [Int])
    case emptyScan(scan: Int, source: String)
    case shapeMismatch(scan: Int, source: String, shape: [Int], expected: [Int], firstSource: String)
    case readFailed(scan: Int, source: String, reason: String)
    case badMonitor(scan: Int, source: String, reason: String)
    case badCalibration(what: String, reason: String)
    case invalidOption(String)
    case allLeftOut(String)
    /// A state of a series whose detector frames differ from the first state's.
    case stateShapeMismatch(state: String, source: String, frame: [Int], expected: [Int], firstState: String, firstSource: String)
    case noCommonCrop(axis: Int, binning: Int)
    /// No crop of `axis` around the Bragg peak is divisible by the binning (a crop size must be given).
    case noCrop(axis: Int, length: Int, peak: Int, binning: Int)
    /// A beamline name BraggKit does not know.
    case unknownBeamline(String)
    /// An HDF5 scan file in which no dataset of detector frames was found at the usual
    /// places (`tried`); `available` lists its 3D datasets (or all, when it has none).
    case framesNotFound(path: String, tried: [String], available: [String])

    public var description: String {
        switch self {
        case .noScans:
            return "no scans were given to prepare"
        case .notAFrameStack(let s, let sh):
            return "\(s) is not a stack of frames: expected 3 axes (frames, rows, columns), got shape \(sh)"
        case .emptyScan(let k, let s):
            return "scan \(k + 1) (\(s)) holds no frames"
        case .shapeMismatch(let k, let s, let sh, let e, let f):
            return "scan \(k + 1) (\(s)) has frames of shape \(sh) (frames, rows, columns) but scan 1 (\(f)) has \(e); all scans of one state must have the same shape"
        case .readFailed(let k, let s, let r):
            return "scan \(k + 1) (\(s)): \(r)"
        case .badMonitor(let k, let s, let r):
            return "scan \(k + 1) (\(s)): monitor \(r)"
        case .badCalibration(let w, let r):
            return "\(w): \(r)"
        case .invalidOption(let s):
            return s
        case .allLeftOut(let s):
            return s
        case .stateShapeMismatch(let st, let src, let fr, let e, let fst, let fsrc):
            return "state \(st) (\(src)) has \(fr[0])×\(fr[1])-pixel frames but state \(fst) (\(fsrc)) has \(e[0])×\(e[1]); the states of a series must come from one detector region"
        case .noCommonCrop(let a, let b):
            return "no crop of axis \(a) divisible by the binning \(b) fits around every state's Bragg peak; give a crop size"
        case .noCrop(let a, let n, let c, let b):
            return "no crop of axis \(a) (length \(n)) around the Bragg peak at \(c) is divisible by the binning \(b); give a crop size"
        case .unknownBeamline(let name):
            return "unknown beamline '\(name)': BraggKit knows \(Beamline.allCases.map { $0.rawValue }.joined(separator: ", "))"
        case .framesNotFound(let p, let tried, let available):
            let shown = available.prefix(12).joined(separator: ", ") + (available.count > 12 ? ", … (\(available.count) in all)" : "")
            return "file \(p) has no dataset of detector frames (tried \(tried.joined(separator: ", "))); name the frames' dataset"
                + (available.isEmpty ? "" : "; existing: \(shown)")
        }
    }
}

/// The whole preparation in one call (see `ScanAccumulator` for the streaming steps).
public enum Preparation {
    /// Checks every scan's shape, then streams the scans through a `ScanAccumulator`
    /// (the running sum, the scan being added and the next one being read, on a second
    /// thread, in memory) and centres, crops and bins.
    public static func prepare(scans: [Scan], options: PreparationOptions = PreparationOptions(),
                               progress: ProgressHandler? = nil,
                               messages: ((String) -> Void)? = nil) throws -> PreparedPattern {
        guard let first = scans.first else { throw PreparationError.noScans }
        try validate(scans.map { $0.frames })
        let acc = try ScanAccumulator(stackShape: first.frames.shape, options: options)
        // Every scan has the first one's shape (validated above).
        let perScan = first.frames.shape[0], total = scans.count * perScan
        try acc.add(scans, progress: { k, f in
            progress?(ProgressReport(stage: "preparing \(scans.count) scan(s)", done: k * perScan + f, total: total,
                                     metrics: [("scan", Double(k + 1))]))
        }, report: { report in
            if !report.included, let note = report.note { messages?("scan \(report.index + 1) (\(report.source)) left out: \(note)") }
        })
        return try acc.finish()
    }

    /// A series of states prepared to one shape: every state's scans are checked (shapes,
    /// and the same detector frame across states) before any frame is read, each state is
    /// summed (registered within the state, as `prepare`), then every sum is cropped to one
    /// size around its own Bragg peak: `size` when given, else the largest common size
    /// (`commonFittingSize`), and binned by `binning`. `options[k]` holds state k's
    /// calibrations and choices (their size and binning are ignored). Every sum is held
    /// until all are cropped (one stack of floats per state).
    public static func prepareSeries(states: [(name: String, scans: [Scan])], options: [PreparationOptions],
                                     size: [Int]?, binning: [Int],
                                     progress: ProgressHandler? = nil,
                                     messages: ((String) -> Void)? = nil) throws -> [PreparedPattern] {
        guard !states.isEmpty, states.count == options.count else { throw PreparationError.noScans }
        try validateSeries(states.map { ($0.name, $0.scans.map(\.frames)) })
        if let s = size {
            guard s.count == 3, (0..<3).allSatisfy({ s[$0] >= 1 && binning.count == 3 && s[$0] % binning[$0] == 0 }) else {
                throw PreparationError.invalidOption("the output size \(s) is not divisible by the binning \(binning)")
            }
        }
        let total = states.reduce(0) { $0 + $1.scans.count * $1.scans[0].frames.shape[0] }
        var done = 0
        var sums: [SummedStack] = []
        for (k, state) in states.enumerated() {
            var o = options[k]
            o.size = nil; o.binning = binning
            let acc = try ScanAccumulator(stackShape: state.scans[0].frames.shape, options: o)
            let perScan = state.scans[0].frames.shape[0], before = done
            try acc.add(state.scans, progress: { j, f in
                progress?(ProgressReport(stage: "preparing \(states.count) states", done: before + j * perScan + f, total: total,
                                         metrics: [("state", Double(k + 1))]))
            }, report: { r in
                if !r.included, let note = r.note { messages?("state \(state.name): scan \(r.index + 1) (\(r.source)) left out: \(note)") }
            })
            done += state.scans.count * perScan
            sums.append(try acc.finishSum())
        }
        let common = try size ?? commonFittingSize(stackShapes: sums.map(\.stackShape), centres: sums.map(\.centre), binning: binning)
        return try sums.map { try $0.pattern(size: common) }
    }

    /// Checks every state's stacks (`validate`) and that all states have the first state's
    /// detector frame (rows × columns; their frame counts may differ). Errors name the file.
    public static func validateSeries(_ states: [(name: String, stacks: [FrameStack])]) throws {
        guard let first = states.first, let f0 = first.stacks.first else { throw PreparationError.noScans }
        for s in states {
            try validate(s.stacks)
            let sh = s.stacks[0].shape
            if Array(sh.dropFirst()) != Array(f0.shape.dropFirst()) {
                throw PreparationError.stateShapeMismatch(state: s.name, source: s.stacks[0].source, frame: Array(sh.dropFirst()),
                                                          expected: Array(f0.shape.dropFirst()), firstState: first.name, firstSource: f0.source)
            }
        }
    }

    /// The largest size per axis, divisible by the binning with a fast quotient
    /// (2^a 3^b 5^c), of a box centred on every state's peak voxel (`centres`, peak at
    /// n/2) that lies inside every state's stack: `fittingSize` for all states at once.
    public static func commonFittingSize(stackShapes: [[Int]], centres: [[Int]], binning: [Int]) throws -> [Int] {
        try (0..<3).map { a in
            var n = stackShapes.map { $0[a] }.min() ?? 0
            while n >= 1 {
                let fits = zip(stackShapes, centres).allSatisfy { sh, c in c[a] - n / 2 >= 0 && c[a] - n / 2 + n <= sh[a] }
                if fits && n % binning[a] == 0 && FFT.isFastSize(n / binning[a], primes: [2, 3, 5]) { return n }
                n -= 1
            }
            throw PreparationError.noCommonCrop(axis: a, binning: binning[a])
        }
    }

    /// Checks that every stack has 3 axes, at least one frame, and the first one's shape.
    public static func validate(_ stacks: [FrameStack]) throws {
        guard let first = stacks.first else { throw PreparationError.noScans }
        for (k, s) in stacks.enumerated() {
            guard s.shape.count == 3 else { throw PreparationError.notAFrameStack(source: s.source, shape: s.shape) }
            if s.shape[0] == 0 || s.shape[1] == 0 || s.shape[2] == 0 { throw PreparationError.emptyScan(scan: k, source: s.source) }
            if s.shape != first.shape {
                throw PreparationError.shapeMismatch(scan: k, source: s.source, shape: s.shape,
                                                     expected: first.shape, firstSource: first.source)
            }
        }
    }

    /// Bragg peak position: the maximum, or the centre of mass of the (unmasked) intensity
    /// in a box of edge `box` around the maximum.
    /// `brightest`: the maximum's position when the caller knows it already (no mask).
    public static func peakPosition(_ v: RealVolume, mask: RealVolume? = nil, method: PeakCentring, box: Int,
                                    brightest: [Int]? = nil) -> [Double] {
        var w = v
        if let m = mask, m.shape == v.shape {
            w.withUnsafeMutableFloats { p in m.withUnsafeFloats { q in
                for i in 0..<p.count where q[i] != 0 { p[i] = 0 }
            } }
        }
        let top = mask == nil ? brightest ?? w.index(ofFlat: w.argmax()) : w.index(ofFlat: w.argmax())
        if method == .maximum { return top.map(Double.init) }
        let size = v.shape.map { min($0, box) }
        let start = (0..<v.rank).map { max(0, min(v.shape[$0] - size[$0], top[$0] - size[$0] / 2)) }
        guard let sub = try? w.cropped(start: start, size: size) else { return top.map(Double.init) }
        // Clip negatives so that noise cannot pull the centre of mass.
        var s = sub
        s.withUnsafeMutableFloats { p in for i in 0..<p.count where !(p[i] > 0) { p[i] = 0 } }
        let c = s.centreOfMass()
        return (0..<v.rank).map { Double(start[$0]) + c[$0] }
    }

    /// Largest size n ≤ the data, divisible by `bin`, with n/bin of the form 2^a 3^b 5^c,
    /// such that a box of n centred on index p (p at n/2) fits in 0..<length.
    public static func fittingSize(length: Int, peak p: Int, bin: Int) -> Int? {
        var n = length
        while n >= 1 {
            let start = p - n / 2
            if start >= 0 && start + n <= length && n % bin == 0 && FFT.isFastSize(n / bin, primes: [2, 3, 5]) {
                return n
            }
            n -= 1
        }
        return nil
    }

    /// Sums `bin[a]` voxels per axis into one; a binned voxel is bad when any part is bad.
    public static func binned(_ v: RealVolume, mask: RealVolume, by bin: [Int]) throws -> (RealVolume, RealVolume) {
        guard bin.count == 3, bin.allSatisfy({ $0 >= 1 }) else {
            throw PreparationError.invalidOption("binning must give 3 factors ≥ 1 (got \(bin))")
        }
        let sh = v.shape
        guard (0..<3).allSatisfy({ sh[$0] % bin[$0] == 0 }) else {
            throw PreparationError.invalidOption("binning \(bin) does not divide the shape \(sh)")
        }
        if bin == [1, 1, 1] { return (v, mask) }
        let out = (0..<3).map { sh[$0] / bin[$0] }
        var p = RealVolume(shape: out), m = RealVolume(shape: out)
        v.withUnsafeFloats { src in mask.withUnsafeFloats { msk in
            p.withUnsafeMutableFloats { dp in m.withUnsafeMutableFloats { dm in
                for z in 0..<sh[0] {
                    let oz = z / bin[0]
                    for y in 0..<sh[1] {
                        let oy = y / bin[1]
                        let srow = (z * sh[1] + y) * sh[2], orow = (oz * out[1] + oy) * out[2]
                        for x in 0..<sh[2] {
                            let o = orow + x / bin[2]
                            dp[o] += src[srow + x]
                            if msk[srow + x] != 0 { dm[o] = 1 }
                        }
                    }
                }
            } }
        } }
        return (p, m)
    }
}
