import Foundation
import Numerics

/// `BraggGeometry` (Numerics) is the one definition of the diffraction geometry: |Q|, Q̂,
/// the detector/rocking reciprocal steps and the conjugate real-space basis. Here, the
/// Simulation module's view of it: the conjugate grid as a `SamplingGrid`.
extension BraggGeometry {
    /// Checks the geometry, throwing the Simulation module's error.
    func validateForSimulation() throws {
        if let p = problem { throw SimulationError.invalidParameter("geometry: " + p) }
    }

    /// The real-space sampling grid of a scan of `shape` (positions in metres, lab frame,
    /// the crystal's centre at the grid's centre voxel).
    public func realSpaceGrid(shape: [Int]) -> SamplingGrid {
        SamplingGrid(shape: shape, steps: realSpaceSteps(shape: shape))
    }

    /// Lab position (m) of a fractional index of the conjugate grid.
    public func labPosition(index: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        realSpaceGrid(shape: shape).position(index)
    }

    /// Fractional index of the conjugate grid at a lab position (m).
    public func detectorIndex(of position: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        realSpaceGrid(shape: shape).index(of: position)
    }
}

/// Resampling between sampling grids (detector-conjugate ↔ orthogonal lab grids).
public enum Resampling {
    /// Values of `volume` (sampled on `source`) at the voxels of `target`, by trilinear
    /// interpolation; points outside the source grid read 0.
    public static func resample(_ volume: RealVolume, from source: SamplingGrid, to target: SamplingGrid) throws -> RealVolume {
        guard volume.shape == source.shape else {
            throw SimulationError.invalidParameter("volume of shape \(volume.shape) resampled from a grid of shape \(source.shape)")
        }
        let inv = source.basis.inverse
        let c = SIMD3<Double>(Double(source.shape[0] / 2), Double(source.shape[1] / 2), Double(source.shape[2] / 2))
        let o = source.origin
        let n0 = source.shape[0], n1 = source.shape[1], n2 = source.shape[2]
        return volume.withUnsafeFloats { src in
            let s = src.baseAddress!
            return target.evaluate { r in
                let f = inv * (r - o) + c
                let x0 = f.x.rounded(.down), x1 = f.y.rounded(.down), x2 = f.z.rounded(.down)
                let i0 = Int(x0), i1 = Int(x1), i2 = Int(x2)
                guard i0 >= -1, i1 >= -1, i2 >= -1, i0 < n0, i1 < n1, i2 < n2 else { return 0 }
                let t0 = f.x - x0, t1 = f.y - x1, t2 = f.z - x2
                var acc = 0.0
                for a in 0...1 {
                    let j0 = i0 + a
                    guard j0 >= 0 && j0 < n0 else { continue }
                    let w0 = a == 0 ? 1 - t0 : t0
                    for b in 0...1 {
                        let j1 = i1 + b
                        guard j1 >= 0 && j1 < n1 else { continue }
                        let w1 = w0 * (b == 0 ? 1 - t1 : t1)
                        for e in 0...1 {
                            let j2 = i2 + e
                            guard j2 >= 0 && j2 < n2 else { continue }
                            acc += w1 * (e == 0 ? 1 - t2 : t2) * Double(s[(j0 * n1 + j1) * n2 + j2])
                        }
                    }
                }
                return Float(acc)
            }
        }
    }

    /// The complex version (real and imaginary parts interpolated separately).
    public static func resample(_ volume: ComplexVolume, from source: SamplingGrid, to target: SamplingGrid) throws -> ComplexVolume {
        let re = try resample(volume.real(), from: source, to: target)
        let im = try resample(volume.imaginary(), from: source, to: target)
        return try ComplexVolume(real: re, imaginary: im)
    }

    /// An orthogonal lab grid (cubic voxels of `voxelSize`) that covers `source`'s extent.
    public static func labGrid(covering source: SamplingGrid, voxelSize: Double) -> SamplingGrid {
        var half = SIMD3<Double>.zero
        for a in 0..<3 { let s = source.steps[a]; half += SIMD3(abs(s.x), abs(s.y), abs(s.z)) * (Double(source.shape[a]) / 2) }
        // Lab grid axes are (z, y, x).
        let n = [half.z, half.y, half.x].map { 2 * Int(($0 / voxelSize).rounded(.up)) }
        var g = SamplingGrid.orthogonal(shape: n, voxelSize: voxelSize)
        g.origin = source.origin
        return g
    }
}
