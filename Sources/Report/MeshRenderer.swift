import Foundation
import Numerics

/// A mesh to draw, with its colour (when the mesh has no vertex colours) and opacity.
public struct MeshLayer: Sendable {
    public var mesh: Mesh
    public var colour: RGB
    /// 1 draws opaque with a depth buffer; below 1 the layer is blended back to front
    /// over what is drawn (the seed's Fig. 4: a translucent crystal around opaque regions).
    public var opacity: Double
    public init(mesh: Mesh, colour: RGB = RGB(180, 180, 190), opacity: Double = 1) {
        self.mesh = mesh; self.colour = colour; self.opacity = opacity
    }
}

/// An orthographic view: azimuth about the z axis and elevation above the x–y plane, degrees.
public struct View: Sendable {
    public var azimuth: Double, elevation: Double
    public init(azimuth: Double, elevation: Double) { self.azimuth = azimuth; self.elevation = elevation }
}

/// A small software rasteriser: orthographic projection, depth buffer, Lambert shading with
/// smooth vertex normals, and back-to-front alpha blending for translucent layers.
public enum MeshRenderer {
    public static func render(_ layers: [MeshLayer], view: View, size: Int = 360,
                              background: RGB = .white, axes: Bool = true) -> RGBImage {
        var img = RGBImage(width: size, height: size, background: background)
        let all = layers.flatMap { $0.mesh.vertices }
        guard !all.isEmpty else { return img }
        var lo = all[0], hi = all[0]
        for v in all { lo = pointwiseMin(lo, v); hi = pointwiseMax(hi, v) }
        let centre = (lo + hi) / 2
        let radius = max(1e-6, ((hi - lo) * (hi - lo)).sum().squareRoot() / 2)
        let az = view.azimuth * .pi / 180, el = view.elevation * .pi / 180
        // Rows of the rotation: screen right, screen up, towards the viewer.
        let right = SIMD3<Float>(Float(-sin(az)), Float(cos(az)), 0)
        let toward = SIMD3<Float>(Float(cos(el) * cos(az)), Float(cos(el) * sin(az)), Float(sin(el)))
        let up = cross(toward, right)
        let scale = Float(size) * 0.45 / radius
        let light = simdNormalize(toward + up * 0.6 + right * 0.3)
        func project(_ p: SIMD3<Float>) -> SIMD3<Float> {
            let q = p - centre
            return SIMD3(Float(size) / 2 + (q * right).sum() * scale, Float(size) / 2 - (q * up).sum() * scale, (q * toward).sum())
        }
        var depth = [Float](repeating: -.infinity, count: size * size)

        struct Tri { var p: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>); var c: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>); var alpha: Float; var depth: Float }
        func shaded(_ layer: MeshLayer) -> [Tri] {
            let m = layer.mesh
            var normals = [SIMD3<Float>](repeating: .zero, count: m.vertices.count)
            for t in m.triangles {
                let a = m.vertices[Int(t.x)], b = m.vertices[Int(t.y)], c = m.vertices[Int(t.z)]
                let n = cross(b - a, c - a)
                normals[Int(t.x)] += n; normals[Int(t.y)] += n; normals[Int(t.z)] += n
            }
            let base = SIMD3<Float>(Float(layer.colour.r), Float(layer.colour.g), Float(layer.colour.b))
            let lit = (0..<m.vertices.count).map { i -> SIMD3<Float> in
                let n = simdNormalize(normals[i])
                let d = abs((n * light).sum())
                let col = m.colours.map { c in SIMD3<Float>(Float(c[i].r), Float(c[i].g), Float(c[i].b)) } ?? base
                return col * (0.35 + 0.65 * d)
            }
            let proj = m.vertices.map(project)
            return m.triangles.map { t in
                let a = proj[Int(t.x)], b = proj[Int(t.y)], c = proj[Int(t.z)]
                return Tri(p: (a, b, c), c: (lit[Int(t.x)], lit[Int(t.y)], lit[Int(t.z)]), alpha: Float(layer.opacity),
                           depth: (a.z + b.z + c.z) / 3)
            }
        }
        func raster(_ t: Tri, blend: Bool) {
            let (a, b, c) = t.p
            let minX = max(0, Int(min(a.x, b.x, c.x).rounded(.down))), maxX = min(size - 1, Int(max(a.x, b.x, c.x).rounded(.up)))
            let minY = max(0, Int(min(a.y, b.y, c.y).rounded(.down))), maxY = min(size - 1, Int(max(a.y, b.y, c.y).rounded(.up)))
            let area = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
            if abs(area) < 1e-12 || minX > maxX || minY > maxY { return }
            for y in minY...maxY { for x in minX...maxX {
                let px = Float(x) + 0.5, py = Float(y) + 0.5
                let w0 = ((b.x - px) * (c.y - py) - (b.y - py) * (c.x - px)) / area
                let w1 = ((c.x - px) * (a.y - py) - (c.y - py) * (a.x - px)) / area
                let w2 = 1 - w0 - w1
                if w0 < 0 || w1 < 0 || w2 < 0 { continue }
                let z = w0 * a.z + w1 * b.z + w2 * c.z
                let k = y * size + x
                if z <= depth[k] { continue }
                let col = t.c.0 * w0 + t.c.1 * w1 + t.c.2 * w2
                let rgb = RGB(UInt8(min(255, max(0, col.x))), UInt8(min(255, max(0, col.y))), UInt8(min(255, max(0, col.z))))
                if blend { img.blend(x: x, y: y, rgb, alpha: Double(t.alpha)) }
                else { img[x, y] = rgb; depth[k] = z }
            } }
        }
        for layer in layers where layer.opacity >= 1 { for t in shaded(layer) { raster(t, blend: false) } }
        let translucent = layers.filter { $0.opacity < 1 }.flatMap(shaded).sorted { $0.depth < $1.depth }
        for t in translucent { raster(t, blend: true) }

        if axes {
            // A small x/y/z triad in the lower left, as the seed's figures show.
            let o = (x: 34, y: size - 34)
            for (axis, name, col) in [(SIMD3<Float>(1, 0, 0), "x", RGB(200, 40, 40)), (SIMD3<Float>(0, 1, 0), "y", RGB(30, 150, 60)),
                                      (SIMD3<Float>(0, 0, 1), "z", RGB(40, 70, 200))] {
                let dx = Int(((axis * right).sum() * 24).rounded()), dy = Int((-(axis * up).sum() * 24).rounded())
                img.line(o.x, o.y, o.x + dx, o.y + dy, col, thickness: 2)
                img.text(name, x: o.x + dx + (dx >= 0 ? 3 : -9), y: o.y + dy - 3, colour: col)
            }
        }
        return img
    }
}

@inline(__always) func simdNormalize(_ v: SIMD3<Float>) -> SIMD3<Float> {
    let n = (v * v).sum().squareRoot()
    return n > 0 ? v / n : v
}
