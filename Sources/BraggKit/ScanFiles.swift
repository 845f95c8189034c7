import Foundation
import Formats
import Numerics
import Simulation

/// Simulated rocking scans as NeXus-like HDF5 files, as `bragg simulate scans` and
/// `Demo.run` write them and `bragg prepare` reads them: frames at
/// /entry/instrument/detector/data (counts, frame × row × column), the detector's own
/// mask of gap pixels at /entry/instrument/detector/pixel_mask (hot pixels are not in it:
/// the preparation finds them), the monitor per frame at /entry/monitor/data (NXmonitor),
/// the rocking angles, energy, distance, pixel size and 2θ with units, and the hidden ground
/// truth (drift, intensity factor) under /entry/simulation.
public enum ScanFiles {
    public static let framesPath = "/entry/instrument/detector/data"
    public static let pixelMaskPath = "/entry/instrument/detector/pixel_mask"
    public static let monitorPath = "/entry/monitor/data"
    public static let driftPath = "/entry/simulation/drift"

    /// The detector's gaps (1 = gap) for frames of `rows` × `cols` pixels: what a beamline's
    /// pixel mask records, without the hot pixels (which appear in use).
    public static func gapMask(rows: Int, cols: Int, defects: DetectorDefects) -> [UInt8] {
        var gaps = defects
        gaps.hotPixels = 0
        let (m, _) = Diffraction.detectorMask(shape: [1, rows, cols], defects: gaps, seed: 0)
        return m.withUnsafeFloats { p in p.map { $0 != 0 ? 1 : 0 } }
    }

    /// Writes one scan. Counts are stored as uint16 when every count fits (they do at the
    /// demo's photon levels: a scan holds 1/22 of the state's photons), else uint32, and
    /// deflated at `compression` (most pixels far from the peak hold 0–2 counts: a 64³
    /// scan of 512 KiB takes a few tens of KiB). Returns the dtype used.
    @discardableResult
    public static func write(_ s: RockingScan, to path: String, geometry g: BraggGeometry, gaps: [UInt8], label: String,
                      seed: UInt64, overwrite: Bool, compression: Int = 1) throws -> DType {
        let shape = s.frames.shape
        let top = s.frames.maximum()
        let frames: NDArray
        if top <= Float(UInt16.max) {
            let counts = s.frames.withUnsafeFloats { b in b.map { UInt16(max(0, $0.rounded())) } }
            frames = try NDArray(dtype: .uint16, shape: shape, data: counts.withUnsafeBufferPointer { Data(buffer: $0) })
        } else {
            let counts = s.frames.withUnsafeFloats { b in b.map { UInt32(max(0, min(4.2e9, $0.rounded()))) } }
            frames = try NDArray(dtype: .uint32, shape: shape, data: counts.withUnsafeBufferPointer { Data(buffer: $0) })
        }
        try HDF5File.create(path, overwrite: overwrite) { f in
            try f.write(frames, at: framesPath, compression: compression)
            try f.write(NDArray(gaps, dtype: .uint8, shape: [shape[1], shape[2]]), at: pixelMaskPath, compression: compression)
            try f.write(doubles: s.monitor, at: monitorPath)
            try f.setAttribute("units", .string("counts"), on: monitorPath)
            try f.write(scalar: g.energy, at: "/entry/instrument/source/energy")
            try f.setAttribute("units", .string("eV"), on: "/entry/instrument/source/energy")
            try f.write(scalar: g.distance, at: "/entry/instrument/detector/distance")
            try f.setAttribute("units", .string("m"), on: "/entry/instrument/detector/distance")
            for axis in ["x", "y"] {
                try f.write(scalar: g.pixelSize, at: "/entry/instrument/detector/\(axis)_pixel_size")
                try f.setAttribute("units", .string("m"), on: "/entry/instrument/detector/\(axis)_pixel_size")
            }
            try f.write(scalar: g.twoTheta * 180 / .pi, at: "/entry/instrument/detector/two_theta")
            try f.setAttribute("units", .string("deg"), on: "/entry/instrument/detector/two_theta")
            try f.write(scalar: g.outOfPlane * 180 / .pi, at: "/entry/instrument/detector/out_of_plane_angle")
            try f.setAttribute("units", .string("deg"), on: "/entry/instrument/detector/out_of_plane_angle")
            try f.write(doubles: s.angles.map { $0 * 180 / .pi }, at: "/entry/sample/rocking_angle")
            try f.setAttribute("units", .string("deg"), on: "/entry/sample/rocking_angle")
            try f.write(doubles: s.drift, at: driftPath)
            try f.setAttribute("units", .string("pixels (frame, row, column)"), on: driftPath)
            try f.write(scalar: s.intensityFactor, at: "/entry/simulation/intensity_factor")
            try f.write(string: label, at: "/entry/simulation/state")
            try f.write(scalar: Double(seed), at: "/entry/simulation/seed")
        }
        return frames.dtype
    }
}
