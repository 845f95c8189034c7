import Foundation
import Numerics

/// One face of a convex crystal: the half-space `normal · (r − centre) ≤ distance`.
public struct Facet: Equatable, Sendable {
    /// Outward unit normal (lab frame).
    public var normal: SIMD3<Double>
    /// Distance of the facet plane from the crystal's centre (same unit as positions).
    public var distance: Double
    public init(normal: SIMD3<Double>, distance: Double) {
        self.normal = normalized(normal); self.distance = distance
    }
}

/// Shapes the generator knows by name.
public enum CrystalShape: String, CaseIterable, Sendable {
    case hexagonalPrism = "hexagonal-prism", cube, octahedron
    case truncatedOctahedron = "truncated-octahedron"
}

/// A convex faceted crystal: the intersection of its facets' half-spaces, centred at
/// `centre`. Built in its own frame and rotated as a whole; sampled on any
/// `SamplingGrid` (orthogonal voxels or the non-orthogonal detector-conjugate grid)
/// with anti-aliased (partial-volume) edges.
public struct Crystal: Equatable, Sendable {
    public var facets: [Facet]
    public var centre: SIMD3<Double>

    public init(facets: [Facet], centre: SIMD3<Double> = .zero) {
        self.facets = facets; self.centre = centre
    }

    // MARK: Named shapes (all centred at the origin, unrotated)

    /// A hexagonal prism with its six-fold axis along z: six side facets at 60° steps
    /// whose distances are `radius` × `aspects[k]` for the opposite pair k (3 values),
    /// and two basal facets at ±`height`/2.
    public static func hexagonalPrism(radius: Double, height: Double,
                                      aspects: [Double] = [1, 1, 1]) -> Crystal {
        precondition(aspects.count == 3)
        var f: [Facet] = []
        for k in 0..<6 {
            let a = Double(k) * .pi / 3
            f.append(Facet(normal: SIMD3(cos(a), sin(a), 0), distance: radius * aspects[k % 3]))
        }
        f.append(Facet(normal: SIMD3(0, 0, 1), distance: height / 2))
        f.append(Facet(normal: SIMD3(0, 0, -1), distance: height / 2))
        return Crystal(facets: f)
    }

    /// A cube (or cuboid, with three edge lengths in x, y, z).
    public static func cube(edge: Double) -> Crystal { cuboid(edges: SIMD3(repeating: edge)) }

    public static func cuboid(edges e: SIMD3<Double>) -> Crystal {
        Crystal(facets: [
            Facet(normal: SIMD3(1, 0, 0), distance: e.x / 2), Facet(normal: SIMD3(-1, 0, 0), distance: e.x / 2),
            Facet(normal: SIMD3(0, 1, 0), distance: e.y / 2), Facet(normal: SIMD3(0, -1, 0), distance: e.y / 2),
            Facet(normal: SIMD3(0, 0, 1), distance: e.z / 2), Facet(normal: SIMD3(0, 0, -1), distance: e.z / 2),
        ])
    }

    /// A regular octahedron: eight {111} facets at `distance` from the centre.
    public static func octahedron(distance: Double) -> Crystal {
        var f: [Facet] = []
        for sx in [-1.0, 1] { for sy in [-1.0, 1] { for sz in [-1.0, 1] {
            f.append(Facet(normal: SIMD3(sx, sy, sz), distance: distance))
        } } }
        return Crystal(facets: f)
    }

    /// A truncated octahedron (Wulff shape of many fcc metals): {111} facets at
    /// `distance`, {100} facets at `distance` × `truncation`; 2/√3 ≈ 1.1547 gives the
    /// Archimedean solid, larger values truncate less (√3 is the plain octahedron).
    public static func truncatedOctahedron(distance: Double, truncation: Double = 2 / 3.0.squareRoot()) -> Crystal {
        var c = octahedron(distance: distance)
        for a in 0..<3 {
            for s in [-1.0, 1] {
                var n = SIMD3<Double>.zero; n[a] = s
                c.facets.append(Facet(normal: n, distance: distance * truncation))
            }
        }
        return c
    }

    /// A named shape whose largest dimension is about `size` (before rotation).
    public static func named(_ shape: CrystalShape, size: Double) -> Crystal {
        switch shape {
        case .hexagonalPrism: return hexagonalPrism(radius: size / 2, height: size * 0.8)
        case .cube: return cube(edge: size / 3.0.squareRoot())
        case .octahedron: return octahedron(distance: size / 2 / 3.0.squareRoot())
        case .truncatedOctahedron: return truncatedOctahedron(distance: size / 2 / 3.0.squareRoot() * 1.1)
        }
    }

    /// A hexagonal prism with random aspect ratios per facet pair (0.7–1.3) and random
    /// height (0.6–1.4 × the diameter), randomly rotated — the training shapes of the
    /// seed study. No dimension exceeds `maxExtent` along any axis of an orthogonal grid.
    public static func randomHexagonalPrism(maxExtent: Double, rng: inout SimulationRNG) -> Crystal {
        let aspects = (0..<3).map { _ in rng.uniform(0.7, 1.3) }
        let height = rng.uniform(0.6, 1.4) * 2
        var c = hexagonalPrism(radius: 1, height: height, aspects: aspects)
        c = c.rotated(by: Matrix3x3.randomRotation(&rng))
        return c.scaledToFit(maxExtent: SIMD3(repeating: maxExtent))
    }

    // MARK: Transformations

    /// Rotated about its centre.
    public func rotated(by r: Matrix3x3) -> Crystal {
        Crystal(facets: facets.map { Facet(normal: r * $0.normal, distance: $0.distance) }, centre: centre)
    }

    /// Scaled about its centre by `s` per lab axis (x, y, z): facet planes n·r ≤ d map
    /// to (S⁻¹n)·r ≤ d.
    public func scaled(by s: SIMD3<Double>) -> Crystal {
        Crystal(facets: facets.map { f in
            let m = f.normal / s
            let l = norm(m)
            return Facet(normal: m / l, distance: f.distance / l)
        }, centre: centre)
    }

    public func scaled(by s: Double) -> Crystal { scaled(by: SIMD3(repeating: s)) }

    /// Scaled uniformly so that its extent along x, y and z is at most `maxExtent`.
    public func scaledToFit(maxExtent: SIMD3<Double>) -> Crystal {
        let e = extent
        let s = min(maxExtent.x / e.x, maxExtent.y / e.y, maxExtent.z / e.z)
        return scaled(by: s)
    }

    /// Scaled per axis so that its extent along x, y, z is exactly `target`.
    public func stretched(toExtent target: SIMD3<Double>) -> Crystal {
        // Stretching a convex body per axis scales its bounding box by the same factors.
        scaled(by: target / extent)
    }

    public func translated(by t: SIMD3<Double>) -> Crystal { Crystal(facets: facets, centre: centre + t) }

    // MARK: Geometry

    /// The corners: intersections of three facet planes that satisfy every facet.
    public var vertices: [SIMD3<Double>] {
        var out: [SIMD3<Double>] = []
        let n = facets.count
        let scale = facets.map { abs($0.distance) }.max() ?? 1
        let tol = 1e-9 * scale
        for i in 0..<n { for j in (i + 1)..<max(n, i + 1) { for k in (j + 1)..<max(n, j + 1) {
            let m = Matrix3x3(rows: [facets[i].normal, facets[j].normal, facets[k].normal])
            guard abs(m.determinant) > 1e-12 else { continue }
            let p = m.inverse * SIMD3(facets[i].distance, facets[j].distance, facets[k].distance)
            if facets.allSatisfy({ dot($0.normal, p) <= $0.distance + tol }),
               !out.contains(where: { norm($0 - p) <= tol * 10 }) {
                out.append(p)
            }
        } } }
        return out.map { $0 + centre }
    }

    /// Extent (bounding-box size) along x, y, z.
    public var extent: SIMD3<Double> {
        let v = vertices
        var lo = SIMD3<Double>(repeating: .infinity), hi = SIMD3<Double>(repeating: -.infinity)
        for p in v { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        return hi - lo
    }

    /// Extent along a unit direction (support function in both senses).
    public func extent(along u: SIMD3<Double>) -> Double {
        let d = vertices.map { dot($0, normalized(u)) }
        return (d.max() ?? 0) - (d.min() ?? 0)
    }

    /// Exact volume: Σ_f distance_f × area_f / 3 over the facet polygons.
    public var volume: Double {
        let v = vertices.map { $0 - centre }
        var total = 0.0
        let scale = facets.map { abs($0.distance) }.max() ?? 1
        for f in facets {
            let onFace = v.filter { abs(dot(f.normal, $0) - f.distance) <= 1e-7 * scale }
            guard onFace.count >= 3 else { continue }
            let c = onFace.reduce(SIMD3<Double>.zero, +) / Double(onFace.count)
            // Order the polygon's corners by angle about its centroid.
            let e1 = normalized(onFace[0] - c), e2 = cross(f.normal, e1)
            let sorted = onFace.sorted { atan2(dot($0 - c, e2), dot($0 - c, e1)) < atan2(dot($1 - c, e2), dot($1 - c, e1)) }
            var area = SIMD3<Double>.zero
            for i in 0..<sorted.count { area += cross(sorted[i] - c, sorted[(i + 1) % sorted.count] - c) }
            total += f.distance * abs(dot(area, f.normal)) / 2 / 3
        }
        return total
    }

    /// Signed distance inside the crystal from its nearest facet plane (positive inside).
    @inlinable public func depth(at r: SIMD3<Double>) -> Double {
        let d = r - centre
        var m = Double.infinity
        for f in facets { m = Swift.min(m, f.distance - dot(f.normal, d)) }
        return m
    }

    /// Amplitude on a grid: 1 inside, 0 outside, and on boundary voxels the fraction of
    /// the voxel inside the crystal: a linear ramp across the voxel's thickness along the
    /// facet normal where one facet cuts the voxel (exact in the sum for a flat facet), and
    /// the mean over 4×4×4 sub-voxels where edges or corners cut it. The summed amplitude ×
    /// voxel volume equals the crystal volume to a fraction of a percent. Positions and facet distances are in the grid's length unit.
    public func amplitude(on grid: SamplingGrid) -> RealVolume {
        let normals = facets.map { $0.normal }
        let dist = facets.map { $0.distance }
        let invWidth = facets.map { 1 / grid.thickness(along: $0.normal) }
        let c = centre, nf = facets.count
        // Sub-voxel offsets (4 × 4 × 4) for voxels cut by more than one facet.
        var offsets: [SIMD3<Double>] = []
        for a in 0..<4 { for b in 0..<4 { for e in 0..<4 {
            let f = SIMD3<Double>((Double(a) + 0.5) / 4 - 0.5, (Double(b) + 0.5) / 4 - 0.5, (Double(e) + 0.5) / 4 - 0.5)
            offsets.append(grid.steps[0] * f.x + grid.steps[1] * f.y + grid.steps[2] * f.z)
        } } }
        return grid.evaluate { r in
            let d = r - c
            var a = 1.0
            var partial = 0
            for k in 0..<nf {
                let s = 0.5 + (dist[k] - dot(normals[k], d)) * invWidth[k]
                if s <= 0 { return 0 }
                if s < 1 { partial += 1; a = s }
            }
            if partial <= 1 { return Float(a) }
            // Edges and corners: average the ramps of 64 sub-voxels (a quarter as thick).
            var sum = 0.0
            for o in offsets {
                let dd = d + o
                var m = 1.0
                for k in 0..<nf { m = Swift.min(m, 0.5 + 4 * (dist[k] - dot(normals[k], dd)) * invWidth[k]) }
                sum += Swift.min(1, Swift.max(0, m))
            }
            return Float(sum / 64)
        }
    }

    /// Amplitude on an orthogonal voxel grid of the given box (positions in voxels).
    public func amplitude(box: [Int]) -> RealVolume {
        amplitude(on: .orthogonal(shape: box))
    }
}
