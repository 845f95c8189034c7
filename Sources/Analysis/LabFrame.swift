import Foundation
import Numerics

/// Trilinear interpolation at fractional C-order indices; points outside the box read 0.
@usableFromInline struct Trilinear {
    let s0: Int, s1: Int, s2: Int
    let p: UnsafePointer<Float>
    let comps: Int

    /// Interpolates component `c` (0 real or real part, 1 imaginary part); also returns the
    /// total weight of corners inside the box.
    @inline(__always) func sample(_ z: Double, _ y: Double, _ x: Double, weights: UnsafeMutablePointer<(Int, Float)>) -> Int {
        let fz = floor(z), fy = floor(y), fx = floor(x)
        let iz = Int(fz), iy = Int(fy), ix = Int(fx)
        let tz = Float(z - fz), ty = Float(y - fy), tx = Float(x - fx)
        var n = 0
        for dz in 0...1 {
            let zz = iz + dz
            if zz < 0 || zz >= s0 { continue }
            let wz = dz == 0 ? 1 - tz : tz
            for dy in 0...1 {
                let yy = iy + dy
                if yy < 0 || yy >= s1 { continue }
                let wy = dy == 0 ? 1 - ty : ty
                for dx in 0...1 {
                    let xx = ix + dx
                    if xx < 0 || xx >= s2 { continue }
                    let w = wz * wy * (dx == 0 ? 1 - tx : tx)
                    if w == 0 { continue }
                    weights[n] = ((zz * s1 + yy) * s2 + xx, w); n += 1
                }
            }
        }
        return n
    }
}

/// An orthogonal grid in the laboratory frame: C order (z, y, x) with cubic voxels;
/// `origin` is the lab position (m, relative to the reconstruction box centre) of voxel
/// (0, 0, 0), as (x, y, z).
public struct LabGrid: Sendable, Equatable {
    public var shape: [Int]
    public var voxelSize: Double
    public var origin: Vector3

    public init(shape: [Int], voxelSize: Double, origin: Vector3) {
        self.shape = shape; self.voxelSize = voxelSize; self.origin = origin
    }

    /// Lab position (x, y, z) of the voxel (iz, iy, ix).
    public func position(_ iz: Int, _ iy: Int, _ ix: Int) -> Vector3 {
        origin + voxelSize * Vector3(Double(ix), Double(iy), Double(iz))
    }

    /// The smallest grid of voxel `voxelSize` holding every support voxel (mask of a
    /// reconstruction of `shape` with real-space basis `basis`), with `margin` voxels more.
    public static func enclosing(mask: [UInt8], shape s: [Int], basis: Matrix3x3, voxelSize: Double, margin: Int = 2) throws -> LabGrid {
        guard voxelSize > 0, voxelSize.isFinite else { throw AnalysisError.badOption("the lab voxel size must be positive") }
        var lo = Vector3(repeating: .infinity), hi = Vector3(repeating: -.infinity)
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] where mask[(i * s[1] + j) * s[2] + k] != 0 {
            let r = basis * Vector3(Double(i - s[0] / 2), Double(j - s[1] / 2), Double(k - s[2] / 2))
            lo = pointwiseMin(lo, r); hi = pointwiseMax(hi, r)
        } } }
        guard lo.x.isFinite else { throw AnalysisError.emptySupport("no voxel to place on the lab grid") }
        // Half a voxel of the reconstruction grid on each side, so edge voxels are covered.
        let half: Vector3 = 0.5 * voxelSpan(basis)
        lo -= half; hi += half
        let m = Double(margin) * voxelSize
        lo -= Vector3(repeating: m); hi += Vector3(repeating: m)
        let n = (hi - lo) / voxelSize
        let nx = Int((n.x - 1e-9).rounded(.up)) + 1, ny = Int((n.y - 1e-9).rounded(.up)) + 1, nz = Int((n.z - 1e-9).rounded(.up)) + 1
        guard nx * ny * nz <= 1 << 28 else {
            throw AnalysisError.badOption("the lab grid of \(nz)×\(ny)×\(nx) voxels of \(voxelSize * 1e9) nm is too large; choose a larger voxel size")
        }
        let centre = 0.5 * (lo + hi)
        let origin = centre - 0.5 * voxelSize * Vector3(Double(nx - 1), Double(ny - 1), Double(nz - 1))
        return LabGrid(shape: [nz, ny, nx], voxelSize: voxelSize, origin: origin)
    }
}

/// Resampling from the reconstruction (detector/rocking) grid onto a lab grid.
public enum LabFrame {

    /// Fractional reconstruction index of each lab voxel: n = A⁻¹ r + N/2.
    static func indexMap(grid: LabGrid, basis: Matrix3x3, shape s: [Int]) throws -> (Matrix3x3, Vector3) {
        guard basis.isInvertible else { throw AnalysisError.geometry("the real-space basis is singular") }
        let ainv = basis.inverse
        let c = Vector3(Double(s[0] / 2), Double(s[1] / 2), Double(s[2] / 2))
        return (ainv, c)
    }

    /// Trilinear resampling of a complex object onto `grid` (outside the box reads 0).
    public static func resample(_ v: ComplexVolume, basis: Matrix3x3, onto grid: LabGrid) throws -> ComplexVolume {
        try resampleFloats(v, basis: basis, grid: grid)
    }

    /// Trilinear resampling of a real field onto `grid`.
    public static func resample(_ v: RealVolume, basis: Matrix3x3, onto grid: LabGrid) throws -> RealVolume {
        try resampleFloats(v, basis: basis, grid: grid)
    }

    static func resampleFloats<E>(_ v: Volume<E>, basis: Matrix3x3, grid: LabGrid) throws -> Volume<E> {
        let s = v.shape
        let (ainv, c) = try indexMap(grid: grid, basis: basis, shape: s)
        var out = Volume<E>(shape: grid.shape)
        let comps = E.components
        let g = grid.shape
        v.withUnsafeFloats { src in
            let tri = Trilinear(s0: s[0], s1: s[1], s2: s[2], p: src.baseAddress!, comps: comps)
            out.withUnsafeMutableFloats { dst in
                let dp = SendablePointer(dst.baseAddress!)
                Parallel.forEachChunk(g[0], minChunk: 1) { range in
                    let w = UnsafeMutablePointer<(Int, Float)>.allocate(capacity: 8)
                    defer { w.deallocate() }
                    for iz in range { for iy in 0..<g[1] { for ix in 0..<g[2] {
                        let n = ainv * grid.position(iz, iy, ix) + c
                        let m = tri.sample(n.x, n.y, n.z, weights: w)
                        let o = ((iz * g[1] + iy) * g[2] + ix) * comps
                        for cc in 0..<comps {
                            var acc: Float = 0
                            for t in 0..<m { acc += w[t].1 * tri.p[w[t].0 * comps + cc] }
                            dp.pointer[o + cc] = acc
                        }
                    } } }
                }
            }
        }
        return out
    }

    /// The crystal's extent along the lab x, y, z (m): the spread of the support voxel
    /// centres plus one voxel's projection, for a mask on the reconstruction grid.
    public static func extent(mask: [UInt8], shape s: [Int], basis: Matrix3x3) -> Vector3 {
        var lo = Vector3(repeating: .infinity), hi = Vector3(repeating: -.infinity)
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] where mask[(i * s[1] + j) * s[2] + k] != 0 {
            let r = basis * Vector3(Double(i), Double(j), Double(k))
            lo = pointwiseMin(lo, r); hi = pointwiseMax(hi, r)
        } } }
        guard lo.x.isFinite else { return .zero }
        let span: Vector3 = voxelSpan(basis)
        return hi - lo + span
    }
}

/// Strain along Q from the complex field.
public enum Strain {

    /// ε_QQ = ∂u_Q/∂x_Q with u = φ/|Q|. The phase gradient along each array axis comes from
    /// the complex field, ∂φ/∂n_a ≈ arg(ρ*(x − e_a) ρ(x + e_a)) / 2, so phase wraps (and the
    /// branch cut of a dislocation) create no false strain; the derivative along Q̂ is then
    /// (A⁻¹Q̂)·∇_n φ for the real-space basis A (m per voxel, columns). This is exact for a
    /// linear phase, needs no interpolation, and works on sheared (detector) grids. Where a
    /// neighbour leaves the support a one-sided difference is used (`valid` = 1 instead of 2);
    /// voxels with an axis lacking both neighbours stay 0 (`valid` = 0).
    public static func alongQ(_ rho: ComplexVolume, support: [UInt8], basis: Matrix3x3, qHat: Vector3,
                              qMagnitude: Double) throws -> (strain: [Float], valid: [UInt8]) {
        guard basis.isInvertible else { throw AnalysisError.geometry("the real-space basis is singular") }
        let ainv = basis.inverse
        let s = rho.shape
        let d = ainv * qHat                           // index units per metre along Q̂
        let w = [d.x / qMagnitude, d.y / qMagnitude, d.z / qMagnitude]
        let n = rho.count
        var strain = [Float](repeating: 0, count: n)
        var valid = [UInt8](repeating: 0, count: n)
        let st = [s[1] * s[2], s[2], 1]
        rho.withUnsafeFloats { rb in
            strain.withUnsafeMutableBufferPointer { eb in
                valid.withUnsafeMutableBufferPointer { vb in
                    let p = rb.baseAddress!
                    let ep = SendablePointer(eb.baseAddress!), vp = SendablePointer(vb.baseAddress!)
                    @inline(__always) func argProduct(_ a: Int, _ b: Int) -> Double {
                        // arg(ρ*(a) ρ(b))
                        let ar = p[2 &* a], ai = p[2 &* a &+ 1], br = p[2 &* b], bi = p[2 &* b &+ 1]
                        return Double(atan2(ar * bi - ai * br, ar * br + ai * bi))
                    }
                    Parallel.forEachChunk(s[0], minChunk: 1) { range in
                        for i in range { for j in 0..<s[1] { for k in 0..<s[2] {
                            let o = (i &* s[1] &+ j) &* s[2] &+ k
                            guard support[o] != 0 else { continue }
                            let idx = (i, j, k)
                            var acc = 0.0
                            var flag: UInt8 = 2
                            for a in 0..<3 {
                                let c = a == 0 ? idx.0 : (a == 1 ? idx.1 : idx.2)
                                let lo = c > 0 && support[o &- st[a]] != 0
                                let hi = c < s[a] - 1 && support[o &+ st[a]] != 0
                                let g: Double
                                if lo && hi { g = 0.5 * argProduct(o &- st[a], o &+ st[a]) }
                                else if hi { g = argProduct(o, o &+ st[a]); flag = min(flag, 1) }
                                else if lo { g = argProduct(o &- st[a], o); flag = min(flag, 1) }
                                else { if w[a] != 0 { flag = 0 }; g = 0 }
                                acc += w[a] * g
                            }
                            guard flag > 0 else { continue }
                            ep.pointer[o] = Float(acc)
                            vp.pointer[o] = flag
                        } } }
                    }
                }
            }
        }
        return (strain, valid)
    }
}

/// The lab-frame span (x, y, z) of one reconstruction voxel: Σ|a_i| per component.
func voxelSpan(_ basis: Matrix3x3) -> Vector3 {
    let a = basis.column(0), b = basis.column(1), c = basis.column(2)
    return Vector3(abs(a.x) + abs(b.x) + abs(c.x), abs(a.y) + abs(b.y) + abs(c.y), abs(a.z) + abs(b.z) + abs(c.z))
}
