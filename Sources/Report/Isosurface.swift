import Foundation
import Numerics

/// A triangle mesh. Vertices are (x, y, z) = (axis 2, axis 1, axis 0) of the volume it
/// came from, in the units of the spacing it was extracted with (nm for figures).
public struct Mesh: Sendable {
    public var vertices: [SIMD3<Float>]
    public var triangles: [SIMD3<UInt32>]
    /// Optional per-vertex colours (e.g. phase through the cyclic map).
    public var colours: [RGB]?

    public init(vertices: [SIMD3<Float>] = [], triangles: [SIMD3<UInt32>] = [], colours: [RGB]? = nil) {
        self.vertices = vertices; self.triangles = triangles; self.colours = colours
    }

    /// Enclosed volume by the divergence theorem (positive for outward-facing triangles).
    public var enclosedVolume: Double {
        var v = 0.0
        for t in triangles {
            let a = SIMD3<Double>(vertices[Int(t.x)]), b = SIMD3<Double>(vertices[Int(t.y)]), c = SIMD3<Double>(vertices[Int(t.z)])
            v += (a * cross(b, c)).sum() / 6
        }
        return v
    }

    /// Total area.
    public var area: Double {
        triangles.reduce(0.0) { acc, t in
            let a = SIMD3<Double>(vertices[Int(t.x)]), b = SIMD3<Double>(vertices[Int(t.y)]), c = SIMD3<Double>(vertices[Int(t.z)])
            let n = cross(b - a, c - a)
            return acc + 0.5 * (n * n).sum().squareRoot()
        }
    }

    /// True when every edge is shared by exactly two triangles, once in each direction
    /// (a closed, consistently oriented surface).
    public var isClosed: Bool {
        var count: [UInt64: Int] = [:]
        for t in triangles {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] { count[UInt64(a) << 32 | UInt64(b), default: 0] += 1 }
        }
        for (k, n) in count {
            let a = k >> 32, b = k & 0xffff_ffff
            if n != 1 || count[b << 32 | a] != 1 { return false }
        }
        return true
    }
}

/// Isosurface extraction by marching tetrahedra: every cube of the grid is cut into the
/// six tetrahedra of the Kuhn triangulation around its main diagonal, which neighbouring
/// cubes share face by face. Unlike the 256-case marching cubes, no case is ambiguous, so
/// the surface has no holes; vertices on grid edges are shared, so it has no duplicates.
public enum Isosurface {
    /// The six tetrahedra (corner indices, bit 0 = x, bit 1 = y, bit 2 = z).
    static let tetrahedra: [[Int]] = [[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]]

    /// The surface {v = level} of a 3D volume, closed by treating everything outside the
    /// box as below the level. `spacing` is the voxel size along (z, y, x).
    public static func extract(_ volume: RealVolume, level: Float, spacing: [Double] = [1, 1, 1]) throws -> Mesh {
        guard volume.rank == 3 else { throw ReportError.invalid("an isosurface needs a 3D volume, got shape \(volume.shape)") }
        guard level.isFinite else { throw ReportError.invalid("isosurface level must be finite") }
        // Pad by one voxel below the level so the surface closes at the box faces.
        let nz = volume.shape[0] + 2, ny = volume.shape[1] + 2, nx = volume.shape[2] + 2
        let below = level - max(1, abs(level))
        var grid = [Float](repeating: below, count: nz * ny * nx)
        volume.withUnsafeFloats { p in
            for z in 0..<(nz - 2) { for y in 0..<(ny - 2) {
                let src = (z * (ny - 2) + y) * (nx - 2), dst = ((z + 1) * ny + y + 1) * nx + 1
                for x in 0..<(nx - 2) { grid[dst + x] = p[src + x].isNaN ? below : p[src + x] }
            } }
        }
        let sz = Float(spacing[0]), sy = Float(spacing[1]), sx = Float(spacing[2])
        func position(_ id: Int) -> SIMD3<Float> {
            let x = id % nx, y = (id / nx) % ny, z = id / (nx * ny)
            return SIMD3(Float(x - 1) * sx, Float(y - 1) * sy, Float(z - 1) * sz)
        }
        var mesh = Mesh()
        var edgeVertex: [Int: UInt32] = [:]
        func vertex(_ a: Int, _ b: Int) -> UInt32 {
            let (i, j) = a < b ? (a, b) : (b, a)
            let key = i &* (nx * ny * nz) &+ j
            if let v = edgeVertex[key] { return v }
            let va = grid[i], vb = grid[j]
            // Clamp away from the corners so no two edges give the same point.
            let t = min(0.999, max(0.001, (level - va) / (vb - va)))
            let p = position(i) + (position(j) - position(i)) * t
            let idx = UInt32(mesh.vertices.count)
            mesh.vertices.append(p)
            edgeVertex[key] = idx
            return idx
        }
        // Orient each triangle so its normal points from the tetrahedron's inside corners
        // towards its outside corners (outward).
        var out = SIMD3<Float>(0, 0, 0)
        func emit(_ a: UInt32, _ b: UInt32, _ c: UInt32) {
            let pa = mesh.vertices[Int(a)], pb = mesh.vertices[Int(b)], pc = mesh.vertices[Int(c)]
            let n = cross(pb - pa, pc - pa)
            mesh.triangles.append((n * out).sum() >= 0 ? SIMD3(a, b, c) : SIMD3(a, c, b))
        }
        let offsets = (0..<8).map { k in (k & 1) + ((k >> 1) & 1) * nx + ((k >> 2) & 1) * nx * ny }
        for z in 0..<(nz - 1) { for y in 0..<(ny - 1) { for x in 0..<(nx - 1) {
            let base = (z * ny + y) * nx + x
            var any = false, all = true
            for o in offsets { let v = grid[base + o] > level; any = any || v; all = all && v }
            if !any || all { continue }
            for tet in tetrahedra {
                let ids = tet.map { base + offsets[$0] }
                let ins = ids.filter { grid[$0] > level }, outs = ids.filter { grid[$0] <= level }
                if ins.isEmpty || outs.isEmpty { continue }
                let ci = ins.reduce(SIMD3<Float>(0, 0, 0)) { $0 + position($1) } / Float(ins.count)
                let co = outs.reduce(SIMD3<Float>(0, 0, 0)) { $0 + position($1) } / Float(outs.count)
                out = co - ci
                switch ins.count {
                case 1:
                    let i = ins[0]
                    emit(vertex(i, outs[0]), vertex(i, outs[1]), vertex(i, outs[2]))
                case 3:
                    let o = outs[0]
                    emit(vertex(o, ins[0]), vertex(o, ins[1]), vertex(o, ins[2]))
                default:
                    let (a, b) = (ins[0], ins[1]), (c, d) = (outs[0], outs[1])
                    let ac = vertex(a, c), ad = vertex(a, d), bd = vertex(b, d), bc = vertex(b, c)
                    emit(ac, ad, bd)
                    emit(ac, bd, bc)
                }
            }
        } } }
        return mesh
    }

    /// The level whose superlevel set {v > level} holds `fraction` of Σv (the seed shows
    /// crystals at the isosurface "containing 99.9% of the data").
    public static func level(enclosing fraction: Double, of volume: RealVolume) throws -> Float {
        guard fraction > 0 && fraction <= 1 else { throw ReportError.invalid("fraction must be in (0, 1], got \(fraction)") }
        let values = volume.withUnsafeFloats { $0.filter { $0 > 0 && $0.isFinite } }.sorted(by: >)
        guard !values.isEmpty else { throw ReportError.invalid("the volume has no positive values to draw") }
        let total = values.reduce(0.0) { $0 + Double($1) }
        var acc = 0.0
        for v in values {
            acc += Double(v)
            if acc >= fraction * total { return v * 0.999_999 }
        }
        return values.last! * 0.999_999
    }

    /// Trilinear interpolation of a complex volume at a point given as (x, y, z) in voxels.
    public static func sample(_ v: ComplexVolume, at p: SIMD3<Float>) -> Complex32 {
        let sh = v.shape
        let x = min(max(Double(p.x), 0), Double(sh[2] - 1)), y = min(max(Double(p.y), 0), Double(sh[1] - 1))
        let z = min(max(Double(p.z), 0), Double(sh[0] - 1))
        let x0 = min(Int(x), sh[2] - 1), y0 = min(Int(y), sh[1] - 1), z0 = min(Int(z), sh[0] - 1)
        let x1 = min(x0 + 1, sh[2] - 1), y1 = min(y0 + 1, sh[1] - 1), z1 = min(z0 + 1, sh[0] - 1)
        let fx = Float(x - Double(x0)), fy = Float(y - Double(y0)), fz = Float(z - Double(z0))
        func at(_ zz: Int, _ yy: Int, _ xx: Int) -> Complex32 { v[zz, yy, xx] }
        let c00 = at(z0, y0, x0) * (1 - fx) + at(z0, y0, x1) * fx
        let c01 = at(z0, y1, x0) * (1 - fx) + at(z0, y1, x1) * fx
        let c10 = at(z1, y0, x0) * (1 - fx) + at(z1, y0, x1) * fx
        let c11 = at(z1, y1, x0) * (1 - fx) + at(z1, y1, x1) * fx
        return (c00 * (1 - fy) + c01 * fy) * (1 - fz) + (c10 * (1 - fy) + c11 * fy) * fz
    }

    /// Colours each vertex by the phase of `object` there (interpolated on the complex
    /// field, so wraps do not smear), through `map` over (−π, π].
    public static func colourByPhase(_ mesh: inout Mesh, object: ComplexVolume, spacing: [Double], map: ColourMap = .phase) {
        mesh.colours = mesh.vertices.map { p in
            let q = SIMD3<Float>(p.x / Float(spacing[2]), p.y / Float(spacing[1]), p.z / Float(spacing[0]))
            let c = sample(object, at: q)
            return map.colour((Double(c.phase) + .pi) / (2 * .pi))
        }
    }
}

extension Mesh {
    /// ASCII PLY with per-vertex colours when present (opens in ParaView, MeshLab, Blender).
    public func plyText() -> String {
        var s = "ply\nformat ascii 1.0\ncomment BraggKit isosurface\nelement vertex \(vertices.count)\n"
        s += "property float x\nproperty float y\nproperty float z\n"
        if colours != nil { s += "property uchar red\nproperty uchar green\nproperty uchar blue\n" }
        s += "element face \(triangles.count)\nproperty list uchar int vertex_indices\nend_header\n"
        var lines: [String] = []
        lines.reserveCapacity(vertices.count + triangles.count)
        for (i, v) in vertices.enumerated() {
            if let c = colours?[i] { lines.append("\(v.x) \(v.y) \(v.z) \(c.r) \(c.g) \(c.b)") }
            else { lines.append("\(v.x) \(v.y) \(v.z)") }
        }
        for t in triangles { lines.append("3 \(t.x) \(t.y) \(t.z)") }
        return s + lines.joined(separator: "\n") + "\n"
    }

    /// Wavefront OBJ (1-based indices; colours as the common `v x y z r g b` extension).
    public func objText() -> String {
        var lines = ["# BraggKit isosurface: \(vertices.count) vertices, \(triangles.count) triangles"]
        for (i, v) in vertices.enumerated() {
            if let c = colours?[i] {
                lines.append(String(format: "v %g %g %g %.4f %.4f %.4f", v.x, v.y, v.z, Double(c.r) / 255, Double(c.g) / 255, Double(c.b) / 255))
            } else { lines.append("v \(v.x) \(v.y) \(v.z)") }
        }
        for t in triangles { lines.append("f \(t.x + 1) \(t.y + 1) \(t.z + 1)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
