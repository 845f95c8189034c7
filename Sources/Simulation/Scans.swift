import Foundation
import Numerics

/// How the repeated rocking scans of one state differ, as at a beamline.
public struct RockingScanOptions: Equatable, Sendable {
    /// Scans per state (the seed summed 22).
    public var scans = 3
    /// RMS drift of the crystal between scans, in pixels/frames per axis (sub-pixel shifts
    /// of the pattern that preparation must register before summing).
    public var drift = 0.4
    /// Relative RMS fluctuation of the incident intensity between scans.
    public var fluctuation = 0.05
    /// Peak photon count of the sum of all scans of a state.
    public var photons = 1e6
    /// Flat background, counts per pixel per scan.
    public var background = 0.0
    /// Detector defects (module gaps, hot pixels), the same in every scan.
    public var defects = DetectorDefects(moduleSize: 0, gapWidth: 2, hotPixels: 3, hotValue: 1e6)
    public var seed: UInt64 = 1
    public init() {}
}

/// One simulated rocking scan: frames (frame, row, col) and what a beamline would record.
public struct RockingScan: @unchecked Sendable {
    /// Counts, C order (frame, detector row, detector column).
    public var frames: RealVolume
    /// Sample rocking angle of each frame (radians): θ_B + (j − n/2)·step.
    public var angles: [Double]
    /// The mask of bad pixels (gaps, hot pixels), 1 = bad, same shape as `frames`.
    public var mask: RealVolume
    /// Ground truth, not known to an experimenter: the drift (frames, rows, cols) and the
    /// intensity factor of this scan.
    public var drift: [Double]
    public var intensityFactor: Double
}

public enum RockingScans {
    /// Repeated rocking scans of one object sampled on `geometry`'s conjugate grid (the
    /// object's shape is the scan's shape). Each scan sees the object drifted by a random
    /// sub-pixel shift (a phase ramp, which moves the pattern exactly), the beam
    /// fluctuating, Poisson noise and the detector defects.
    public static func make(object: ComplexVolume, geometry: BraggGeometry,
                            options: RockingScanOptions = RockingScanOptions()) throws -> [RockingScan] {
        try geometry.validateForSimulation()
        guard options.scans >= 1 else { throw SimulationError.invalidParameter("at least one scan per state is needed (got \(options.scans))") }
        guard options.photons > 0 else { throw SimulationError.invalidParameter("the peak photon count must be > 0 (got \(options.photons))") }
        guard options.drift >= 0, options.fluctuation >= 0, options.fluctuation < 1 else {
            throw SimulationError.invalidParameter("drift must be ≥ 0 pixels and the intensity fluctuation in [0, 1)")
        }
        let shape = object.shape
        let reference = try Diffraction.intensity(of: object, box: shape)
        let peak = Double(reference.maximum())
        guard peak > 0 else { throw SimulationError.invalidParameter("the object is empty: it diffracts no intensity") }
        var rng = SimulationRNG(seed: options.seed, stream: 0x5343_414E)
        let (mask, hot) = Diffraction.detectorMask(shape: shape, defects: options.defects, seed: options.seed)
        let angles = (0..<shape[0]).map { geometry.braggAngle + Double($0 - shape[0] / 2) * geometry.rockingStep }
        var out: [RockingScan] = []
        for s in 0..<options.scans {
            try Interruption.check()
            let drift = (0..<3).map { _ in rng.normal() * options.drift }
            let factor = max(0.05, 1 + rng.normal() * options.fluctuation)
            let shifted = shiftedObject(object, by: drift)
            var i = try Diffraction.intensity(of: shifted, box: shape)
            let scale = Float(options.photons / Double(options.scans) * factor / peak)
            let bg = Float(options.background)
            i.withUnsafeMutableFloats { p in for k in 0..<p.count { p[k] = p[k] * scale + bg } }
            var frames = i.poissonSampled(seed: options.seed &+ UInt64(s + 1) &* 0x9E37_79B9)
            Diffraction.applyDefects(&frames, mask: mask, hot: hot, hotValue: options.defects.hotValue)
            out.append(RockingScan(frames: frames, angles: angles, mask: mask, drift: drift, intensityFactor: factor))
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
