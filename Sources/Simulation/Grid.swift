import Foundation
import Numerics

extension Matrix3x3 {
    /// A rotation uniform over SO(3) (Shoemake's random unit quaternion).
    public static func randomRotation(_ rng: inout SimulationRNG) -> Matrix3x3 {
        let u1 = rng.uniform(), u2 = rng.uniform(), u3 = rng.uniform()
        let w = (1 - u1).squareRoot() * sin(2 * .pi * u2), x = (1 - u1).squareRoot() * cos(2 * .pi * u2)
        let y = u1.squareRoot() * sin(2 * .pi * u3), z = u1.squareRoot() * cos(2 * .pi * u3)
        return Matrix3x3(rows: [
            SIMD3(1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
            SIMD3(2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
            SIMD3(2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
        ])
    }
}

/// Where the voxels of a C-order `(axis0, axis1, axis2)` volume sit in space: voxel
/// `(i0, i1, i2)` is at `origin + Σ_a (i_a − centre_a) · steps[a]`, with `centre_a = n_a / 2`
/// (the index an fftshifted array puts at the middle). Vectors are lab `(x, y, z)`.
///
/// An orthogonal voxel grid has steps `(0,0,s)`, `(0,s,0)`, `(s,0,0)` — axis 0 is z, axis 2
/// is x, as in DESIGN.md. The grid conjugate to a detector/rocking scan has non-orthogonal
/// steps (see `BraggGeometry.realSpaceSteps`).
public struct SamplingGrid: Equatable, Sendable {
    public var shape: [Int]
    /// Step vector of each array axis (lab frame, any length unit: voxels, metres).
    public var steps: [SIMD3<Double>]
    public var origin: SIMD3<Double>

    public init(shape: [Int], steps: [SIMD3<Double>], origin: SIMD3<Double> = .zero) {
        precondition(shape.count == 3 && steps.count == 3, "a sampling grid is 3D")
        self.shape = shape; self.steps = steps; self.origin = origin
    }

    /// An orthogonal grid of cubic voxels of edge `voxelSize` (axis 0 = z, 1 = y, 2 = x).
    public static func orthogonal(shape: [Int], voxelSize: Double = 1) -> SamplingGrid {
        SamplingGrid(shape: shape, steps: [SIMD3(0, 0, voxelSize), SIMD3(0, voxelSize, 0), SIMD3(voxelSize, 0, 0)])
    }

    /// Index of the grid's centre voxel per axis (n/2).
    public var centre: [Int] { shape.map { $0 / 2 } }
    /// Matrix whose columns are the step vectors: position = origin + basis · (index − centre).
    public var basis: Matrix3x3 { Matrix3x3(columns: steps) }
    /// Volume of one voxel (|det basis|).
    public var voxelVolume: Double { abs(basis.determinant) }
    /// Edge lengths of a voxel along each array axis.
    public var voxelSizes: [Double] { steps.map(norm) }

    /// Lab position of a (possibly fractional) index.
    @inlinable public func position(_ index: SIMD3<Double>) -> SIMD3<Double> {
        let c = SIMD3<Double>(Double(shape[0] / 2), Double(shape[1] / 2), Double(shape[2] / 2))
        let d = index - c
        return origin + steps[0] * d.x + steps[1] * d.y + steps[2] * d.z
    }

    /// Fractional index of a lab position (the inverse of `position`).
    public func index(of position: SIMD3<Double>) -> SIMD3<Double> {
        let c = SIMD3<Double>(Double(shape[0] / 2), Double(shape[1] / 2), Double(shape[2] / 2))
        return basis.inverse * (position - origin) + c
    }

    /// Thickness of one voxel measured along a unit normal: the length of the voxel
    /// parallelepiped's projection onto `n`. Used to spread an edge over one voxel.
    @inlinable public func thickness(along n: SIMD3<Double>) -> Double {
        abs(dot(n, steps[0])) + abs(dot(n, steps[1])) + abs(dot(n, steps[2]))
    }

    /// Evaluates `f(position)` at every voxel, in parallel, rows of the last axis at a time.
    public func evaluate(_ f: (SIMD3<Double>) -> Float) -> RealVolume {
        var v = RealVolume(shape: shape)
        let n1 = shape[1], n2 = shape[2]
        let c = SIMD3<Double>(Double(shape[0] / 2), Double(shape[1] / 2), Double(shape[2] / 2))
        let s0 = steps[0], s1 = steps[1], s2 = steps[2], o = origin
        v.withUnsafeMutableFloats { p in
            let d = SendablePointer(p.baseAddress!)
            Parallel.forEachChunk(shape[0] * n1, minChunk: max(1, 8192 / max(n2, 1))) { range in
                for row in range {
                    let i0 = row / n1, i1 = row % n1
                    var r = o + s0 * (Double(i0) - c.x) + s1 * (Double(i1) - c.y) - s2 * c.z
                    let base = row &* n2
                    for i2 in 0..<n2 {
                        d.pointer[base &+ i2] = f(r)
                        r += s2
                    }
                }
            }
        }
        return v
    }
}
