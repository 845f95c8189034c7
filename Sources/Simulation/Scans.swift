import Foundation
import Numerics

/// How the repeated rocking scans of one state differ, as at a beamline.
public struct RockingScanOptions: Equatable, Sendable {
    /// Scans per state (the seed summed 22).
    public var scans = 3
    /// RMS jitter of the crystal between scans, in pixels/frames per axis (sub-pixel shifts
    /// of the pattern that preparation must register before summing).
    public var drift = 0.4
    /// RMS step per scan of a slow drift (a random walk, as thermal drift of the stage),
    /// pixels/frames per axis, added to the jitter: after n scans it has moved by about
    /// walk·√n, so late scans sit a pixel or more from the first (0: none).
    public var walk = 0.0
    /// Relative RMS fluctuation of the incident intensity between scans.
    public var fluctuation = 0.05
    /// Relative RMS fluctuation of the incident intensity from frame to frame within a
    /// scan (0: constant within a scan), recorded by the monitor.
    public var frameFluctuation = 0.0
    /// Monitor counts per frame at the mean incident intensity.
    public var monitorCounts = 1e5
    /// Peak photon count of the sum of all scans of a state.
    public var photons = 1e6
    /// Flat background, counts per pixel per scan.
    public var background = 0.0
    /// Detector defects (module gaps, hot pixels), the same in every scan.
    public var defects = DetectorDefects(moduleSize: 0, gapWidth: 2, hotPixels: 3, hotValue: 1e6)
    /// Seeds the detector (its hot pixels) and, with `stream`, the scans.
    public var seed: UInt64 = 1
    /// An independent sequence of drifts, fluctuations and noise for the same detector
    /// (e.g. one per state of a series; 0 is the sequence of a lone crystal).
    public var stream: UInt64 = 0
    public init() {}

    /// Counts a hot pixel reads in every frame: a saturated 16-bit counter.
    public static let saturatedCounts: Float = 65535

    /// Repeated scans like the seed study's: 22 scans per state, whose sum has `photons` at
    /// the peak; the crystal jitters by 0.25 pixel RMS and drifts slowly (a walk of 0.1 pixel
    /// per scan, about half a pixel RMS over 22 scans; scans end up to 1–2 pixels apart) on
    /// each axis; the beam varies by 5% between scans and 2% between frames (the monitor
    /// records it); the detector has a 2-pixel gap row and column at 7/8 of its `size` pixels
    /// (a module boundary) and four hot pixels reading a saturated 16-bit count.
    ///
    /// The drift is kept this small because the preparation masks, in the sum, every voxel
    /// that is bad in any shifted scan and the slabs that wrap around in the Fourier shifts:
    /// with a walk of 0.3 pixel per scan and the gap at 3/4 of the detector, 28–31% of a 64³
    /// pattern was masked and one state of seed 1 came out as the twin (12° wrong).
    public static func seedStudy(size: Int, photons: Double = 1e6, seed: UInt64 = 1) -> RockingScanOptions {
        var o = RockingScanOptions()
        o.scans = 22; o.drift = 0.25; o.walk = 0.1; o.fluctuation = 0.05; o.frameFluctuation = 0.02
        o.photons = photons; o.seed = seed
        o.defects = DetectorDefects(moduleSize: Int((0.875 * Double(size)).rounded()), gapWidth: 2, hotPixels: 4,
                                    hotValue: saturatedCounts)
        return o
    }
}

/// One simulated rocking scan: frames (frame, row, col) and what a beamline would record.
public struct RockingScan: @unchecked Sendable {
    /// Counts, C order (frame, detector row, detector column).
    public var frames: RealVolume
    /// Sample rocking angle of each frame (radians): θ_B + (j − n/2)·step.
    public var angles: [Double]
    /// The mask of bad pixels (gaps, hot pixels), 1 = bad, same shape as `frames`.
    public var mask: RealVolume
    /// The monitor's reading per frame: `monitorCounts` × the incident intensity.
    public var monitor: [Double]
    /// Ground truth, not known to an experimenter: the drift (frames, rows, cols) and the
    /// mean intensity factor of this scan.
    public var drift: [Double]
    public var intensityFactor: Double
}

public enum RockingScans {
    /// Repeated rocking scans of one object sampled on `geometry`'s conjugate grid (the
    /// object's shape is the scan's shape). Each scan sees the object drifted (a slow random
    /// walk plus jitter, sub-pixel and whole pixels; a phase ramp, which moves the pattern
    /// exactly, wrapping around the box), the beam fluctuating between scans and between
    /// frames (the monitor records it), Poisson noise at `photons / scans` peak counts per
    /// scan (so the sum of the scans has `photons`) and the detector defects.
    public static func make(object: ComplexVolume, geometry: BraggGeometry,
                            options: RockingScanOptions = RockingScanOptions()) throws -> [RockingScan] {
        try geometry.validateForSimulation()
        guard options.scans >= 1 else { throw SimulationError.invalidParameter("at least one scan per state is needed (got \(options.scans))") }
        guard options.photons > 0 else { throw SimulationError.invalidParameter("the peak photon count must be > 0 (got \(options.photons))") }
        guard options.drift >= 0, options.walk >= 0, options.fluctuation >= 0, options.fluctuation < 1,
              options.frameFluctuation >= 0, options.frameFluctuation < 1 else {
            throw SimulationError.invalidParameter("drift and walk must be ≥ 0 pixels and the intensity fluctuations in [0, 1)")
        }
        guard options.monitorCounts > 0 else { throw SimulationError.invalidParameter("the monitor counts must be > 0 (got \(options.monitorCounts))") }
        let shape = object.shape
        let reference = try Diffraction.intensity(of: object, box: shape)
        let peak = Double(reference.maximum())
        guard peak > 0 else { throw SimulationError.invalidParameter("the object is empty: it diffracts no intensity") }
        // Stream 0 keeps the sequence this function gave before streams existed.
        var rng = SimulationRNG(seed: options.seed, stream: 0x5343_414E &+ options.stream &* 0x1_0000_0000)
        let (mask, hot) = Diffraction.detectorMask(shape: shape, defects: options.defects, seed: options.seed)
        let angles = (0..<shape[0]).map { geometry.braggAngle + Double($0 - shape[0] / 2) * geometry.rockingStep }
        let frameCount = shape[0], perFrame = shape[1] * shape[2]
        var walked = [0.0, 0.0, 0.0]
        var out: [RockingScan] = []
        for s in 0..<options.scans {
            try Interruption.check()
            let jitter = (0..<3).map { _ in rng.normal() * options.drift }
            if options.walk > 0 { walked = walked.map { $0 + rng.normal() * options.walk } }
            let drift = (0..<3).map { walked[$0] + jitter[$0] }
            let factor = max(0.05, 1 + rng.normal() * options.fluctuation)
            let flux = (0..<frameCount).map { _ in
                options.frameFluctuation > 0 ? factor * max(0.05, 1 + rng.normal() * options.frameFluctuation) : factor
            }
            let shifted = shiftedObject(object, by: drift)
            var i = try Diffraction.intensity(of: shifted, box: shape)
            let scale = options.photons / Double(options.scans) / peak
            let bg = Float(options.background)
            i.withUnsafeMutableFloats { p in
                for f in 0..<frameCount {
                    let sf = Float(scale * flux[f])
                    for k in (f * perFrame)..<((f + 1) * perFrame) { p[k] = p[k] * sf + bg }
                }
            }
            var frames = i.poissonSampled(seed: (options.seed ^ (options.stream &* 0xA24B_AED4_963E_E407)) &+ UInt64(s + 1) &* 0x9E37_79B9)
            Diffraction.applyDefects(&frames, mask: mask, hot: hot, hotValue: options.defects.hotValue)
            out.append(RockingScan(frames: frames, angles: angles, mask: mask, monitor: flux.map { $0 * options.monitorCounts },
                                   drift: drift, intensityFactor: factor))
        }
        return out
    }

    /// The object multiplied by the phase ramp exp(2πi Σ δ_a (m_a − n_a/2)/n_a), which
    /// translates its pattern by δ pixels (frames, rows, cols).
    public static func shiftedObject(_ object: ComplexVolume, by delta: [Double]) -> ComplexVolume {
        let sh = object.shape
        var o = object
        let g = (0..<3).map { 2 * Double.pi * delta[$0] / Double(sh[$0]) }
        o.withUnsafeMutableFloats { p in
            for i0 in 0..<sh[0] { for i1 in 0..<sh[1] {
                let base = (i0 * sh[1] + i1) * sh[2]
                let a01 = g[0] * Double(i0 - sh[0] / 2) + g[1] * Double(i1 - sh[1] / 2)
                for i2 in 0..<sh[2] {
                    let a = Float(a01 + g[2] * Double(i2 - sh[2] / 2))
                    let c = cos(a), s = sin(a)
                    let re = p[2 * (base + i2)], im = p[2 * (base + i2) + 1]
                    p[2 * (base + i2)] = re * c - im * s
                    p[2 * (base + i2) + 1] = re * s + im * c
                }
            } }
        }
        return o
    }
}
