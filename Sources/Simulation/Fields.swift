import Foundation
import Numerics

/// Phase fields φ(r) = Q·u(r) of the displacement fields met in BCDI (sign convention of
/// DESIGN.md: Robinson & Harder 2009). Positions come from a `SamplingGrid`; Q and the
/// Burgers vector are in the inverse and direct units of the grid (m⁻¹ and m, or
/// rad/voxel and voxels), so that Q·u is in radians.
public enum PhaseField {

    /// Gaussian-correlated random phase, the training distribution of the seed study:
    /// seeded white noise smoothed by a Gaussian of standard deviation
    /// `correlationLength` voxels, then shifted to zero mean and scaled to `rms`
    /// radians (or, with `peak: true`, to a largest |φ| of `rms`) over the voxels where
    /// `support` > 0.5 (over the whole box when `support` is nil). The field is
    /// returned everywhere in the box; outside the crystal it does not matter.
    public static func gaussianCorrelated(shape: [Int], correlationLength: Double, rms: Double,
                                          support: RealVolume? = nil, seed: UInt64,
                                          peak: Bool = false) throws -> RealVolume {
        guard correlationLength >= 0, correlationLength.isFinite else {
            throw SimulationError.invalidParameter("the phase correlation length must be ≥ 0 voxels (got \(correlationLength))")
        }
        guard rms >= 0, rms.isFinite else {
            throw SimulationError.invalidParameter("the phase RMS must be ≥ 0 rad (got \(rms))")
        }
        if let s = support, s.shape != shape {
            throw SimulationError.invalidParameter("the support's shape \(s.shape) differs from the phase field's \(shape)")
        }
        var noise = RealVolume.whiteNoise(shape: shape, seed: seed)
        if correlationLength > 0 {
            noise = try gaussianSmoothed(noise, sigma: correlationLength)
        }
        // Zero mean and requested scale over the crystal.
        let n = noise.count
        var sum = 0.0, sum2 = 0.0, cnt = 0.0, peakAbs = 0.0
        noise.withUnsafeFloats { p in
            if let s = support {
                s.withUnsafeFloats { m in
                    for i in 0..<n where m[i] > 0.5 { let v = Double(p[i]); sum += v; sum2 += v * v; cnt += 1 }
                }
            } else {
                for i in 0..<n { let v = Double(p[i]); sum += v; sum2 += v * v }
                cnt = Double(n)
            }
        }
        guard cnt > 0 else { return RealVolume(shape: shape) }
        let mean = sum / cnt
        if peak {
            noise.withUnsafeFloats { p in
                if let s = support {
                    s.withUnsafeFloats { m in for i in 0..<n where m[i] > 0.5 { peakAbs = max(peakAbs, abs(Double(p[i]) - mean)) } }
                } else {
                    for i in 0..<n { peakAbs = max(peakAbs, abs(Double(p[i]) - mean)) }
                }
            }
        }
        let sd = max(sum2 / cnt - mean * mean, 0).squareRoot()
        let denom = peak ? peakAbs : sd
        let scale = denom > 0 ? Float(rms / denom) : 0
        let m = Float(mean)
        noise.withUnsafeMutableFloats { p in for i in 0..<n { p[i] = (p[i] - m) * scale } }
        return noise
    }

    /// A linear phase ramp φ = g·(r − origin): a uniform strain or lattice tilt seen
    /// through one reflection. Shifts the Bragg peak by +g (F(q) = Σρ e^{−iq·r}).
    public static func ramp(on grid: SamplingGrid, gradient g: SIMD3<Double>) -> RealVolume {
        let o = grid.origin
        return grid.evaluate { r in Float(dot(g, r - o)) }
    }

    /// Uniform strain ε along Q (u = ε (Q̂·r) Q̂, so φ = ε |Q| Q̂·r): the phase gradient is ε Q.
    public static func uniformStrain(on grid: SamplingGrid, q: SIMD3<Double>, strain: Double) -> RealVolume {
        ramp(on: grid, gradient: q * strain)
    }

    /// A small rigid lattice tilt by `angle` (radians) about `axis`: u = ω × r with
    /// ω = angle·axis, so φ = Q·(ω × r) = (Q × ω)·r, a ramp of gradient Q × ω.
    public static func tilt(on grid: SamplingGrid, q: SIMD3<Double>, axis: SIMD3<Double>, angle: Double) -> RealVolume {
        // Q·(ω × r) = r·(Q × ω): a ramp of gradient Q × ω.
        ramp(on: grid, gradient: cross(q, normalized(axis) * angle))
    }

    /// Displacement of a straight dislocation (isotropic elasticity, Hirth & Lothe):
    /// line through `point` along `direction`, Burgers vector `burgers` (any mix of screw
    /// and edge), Poisson ratio ν. `coreRadius` regularises the edge term's ln r at the core.
    public static func dislocationDisplacement(at r: SIMD3<Double>, point: SIMD3<Double>, direction: SIMD3<Double>,
                                               burgers: SIMD3<Double>, poissonRatio nu: Double = 0.3,
                                               coreRadius: Double = 0.1) -> SIMD3<Double> {
        let t = normalized(direction)
        let bs = dot(burgers, t)                 // screw component (along the line)
        let be = burgers - t * bs                 // edge component
        let beLen = norm(be)
        // Local frame: e1 along the edge Burgers vector (or any ⊥ axis), e2 = t × e1.
        let e1: SIMD3<Double> = beLen > 0 ? be / beLen : normalized(cross(t, abs(t.x) < 0.9 ? SIMD3(1, 0, 0) : SIMD3(0, 1, 0)))
        let e2 = cross(t, e1)
        let d = r - point
        let x = dot(d, e1), y = dot(d, e2)
        let theta = atan2(y, x)
        let r2 = x * x + y * y + coreRadius * coreRadius
        var u = t * (bs * theta / (2 * .pi))
        if beLen > 0 {
            let ux = beLen / (2 * .pi) * (theta + x * y / (2 * (1 - nu) * r2))
            let uy = -beLen / (2 * .pi) * ((1 - 2 * nu) / (4 * (1 - nu)) * log(r2) + (x * x - y * y) / (4 * (1 - nu) * r2))
            u += e1 * ux + e2 * uy
        }
        return u
    }

    /// φ = Q·u of a screw dislocation (Burgers vector along the line): the phase winds by
    /// Q·b around the line (2π × an integer for a lattice vector with Q·b = 2πn).
    public static func screwDislocation(on grid: SamplingGrid, q: SIMD3<Double>, point: SIMD3<Double> = .zero,
                                        direction: SIMD3<Double>, burgersLength: Double) -> RealVolume {
        dislocation(on: grid, q: q, point: point, direction: direction, burgers: normalized(direction) * burgersLength)
    }

    /// φ = Q·u of an edge dislocation: line along `direction`, Burgers vector `burgers`
    /// perpendicular to it (its component along the line is ignored).
    public static func edgeDislocation(on grid: SamplingGrid, q: SIMD3<Double>, point: SIMD3<Double> = .zero,
                                       direction: SIMD3<Double>, burgers: SIMD3<Double>,
                                       poissonRatio: Double = 0.3) -> RealVolume {
        let t = normalized(direction)
        return dislocation(on: grid, q: q, point: point, direction: direction,
                           burgers: burgers - t * dot(burgers, t), poissonRatio: poissonRatio)
    }

    /// φ = Q·u of a general (mixed) straight dislocation.
    public static func dislocation(on grid: SamplingGrid, q: SIMD3<Double>, point: SIMD3<Double>,
                                   direction: SIMD3<Double>, burgers: SIMD3<Double>,
                                   poissonRatio: Double = 0.3) -> RealVolume {
        let core = 0.25 * (grid.voxelSizes.min() ?? 1)
        return grid.evaluate { r in
            Float(dot(q, dislocationDisplacement(at: r, point: point, direction: direction, burgers: burgers,
                                                 poissonRatio: poissonRatio, coreRadius: core)))
        }
    }

    /// Gaussian smoothing through the FFT (circular; the crystal sits well inside its box).
    static func gaussianSmoothed(_ v: RealVolume, sigma: Double) throws -> RealVolume {
        var c = v.complex()
        try SimFFT.forward(&c)
        let sh = c.shape
        let f = (0..<3).map { a in
            (0..<sh[a]).map { k -> Float in
                let q = 2 * Double.pi * FFT.frequency(k, sh[a])
                return Float(exp(-0.5 * sigma * sigma * q * q))
            }
        }
        let n1 = sh[1], n2 = sh[2]
        c.withUnsafeMutableFloats { p in
            let d = SendablePointer(p.baseAddress!)
            Parallel.forEachChunk(sh[0] * n1, minChunk: max(1, 8192 / n2)) { range in
                for row in range {
                    let g = f[0][row / n1] * f[1][row % n1]
                    let base = 2 &* row &* n2
                    for x in 0..<n2 {
                        let w = g * f[2][x]
                        d.pointer[base &+ 2 &* x] *= w
                        d.pointer[base &+ 2 &* x &+ 1] *= w
                    }
                }
            }
        }
        try SimFFT.inverse(&c)
        return c.real()
    }
}

/// A surface domain: a smooth layer under one facet (or under a patch of it) whose
/// lattice is displaced, giving it its own phase offset — how lithium-depleted regions
/// near a cathode crystal's surface appear in BCDI.
public struct SurfaceDomain: Equatable, Sendable {
    /// Outward direction of the facet the domain lies under (the crystal's facet
    /// closest to this direction is used).
    public var facetDirection: SIMD3<Double>
    /// Depth from the facet plane into the crystal (grid length unit).
    public var depth: Double
    /// Phase offset inside the domain (radians).
    public var phaseOffset: Double
    /// Lateral radius of the patch around the facet point nearest `patchCentre`
    /// (infinite: the whole facet).
    public var lateralRadius: Double
    /// Offset of the patch centre from the facet's centre, in the facet plane.
    public var patchOffset: SIMD3<Double>
    /// Width of the smooth (logistic) boundary.
    public var edgeWidth: Double
    /// Rotation of the domain's inner boundary about the patch centre (a tilted front).
    public var boundaryTilt: Matrix3x3

    public init(facetDirection: SIMD3<Double>, depth: Double, phaseOffset: Double,
                lateralRadius: Double = .infinity, patchOffset: SIMD3<Double> = .zero,
                edgeWidth: Double = 1, boundaryTilt: Matrix3x3 = .identity) {
        self.facetDirection = facetDirection; self.depth = depth; self.phaseOffset = phaseOffset
        self.lateralRadius = lateralRadius; self.patchOffset = patchOffset; self.edgeWidth = edgeWidth
        self.boundaryTilt = boundaryTilt
    }

    /// The domain's weight (0 outside, 1 deep inside, smooth in between) on a grid.
    public func weight(on grid: SamplingGrid, crystal: Crystal) -> RealVolume {
        let dir = normalized(facetDirection)
        let f = crystal.facets.max { dot($0.normal, dir) < dot($1.normal, dir) }!
        let n = f.normal
        let inner = boundaryTilt * n
        let facetPoint = crystal.centre + n * f.distance + (patchOffset - n * dot(patchOffset, n))
        let w = max(edgeWidth, 1e-9), depth = self.depth, radius = lateralRadius
        return grid.evaluate { r in
            let d = r - facetPoint
            let s = -dot(inner, d)                       // depth below the (tilted) facet plane
            var v = 1 / (1 + exp((s - depth) / w))
            if radius.isFinite {
                let lat = d - n * dot(d, n)
                v *= 1 / (1 + exp((norm(lat) - radius) / w))
            }
            return Float(v)
        }
    }
}

/// A region of reduced density ("missing density"): an ellipsoid where the amplitude
/// falls by `fraction`, with a smooth edge.
public struct MissingDensity: Equatable, Sendable {
    public var centre: SIMD3<Double>
    public var radii: SIMD3<Double>
    public var fraction: Double
    public var edgeWidth: Double
    public init(centre: SIMD3<Double>, radii: SIMD3<Double>, fraction: Double = 1, edgeWidth: Double = 1) {
        self.centre = centre; self.radii = radii; self.fraction = fraction; self.edgeWidth = edgeWidth
    }

    /// The amplitude multiplier (1 − fraction inside, 1 outside).
    public func factor(on grid: SamplingGrid) -> RealVolume {
        let c = centre, rr = radii, f = fraction, w = max(edgeWidth, 1e-9)
        let scale = (rr.x + rr.y + rr.z) / 3
        return grid.evaluate { r in
            let e = (r - c) / rr
            let dist = (norm(e) - 1) * scale           // ≈ distance outside the ellipsoid
            return Float(1 - f / (1 + exp(dist / w)))
        }
    }
}

/// One-shot FFTs for simulation. The effort follows `FFTPlanner.defaultEffort` unless a
/// caller sets `SimFFT.effort` (the CLI uses `estimate` for single transforms, where
/// planning with `measure` would cost more than the transform).
public enum SimFFT {
    nonisolated(unsafe) private static var _effort: FFTEffort? = nil
    private static let lock = NSLock()
    /// Planning effort for the simulation's transforms (nil: the planner's default).
    public static var effort: FFTEffort? {
        get { lock.lock(); defer { lock.unlock() }; return _effort }
        set { lock.lock(); _effort = newValue; lock.unlock() }
    }

    static func forward(_ v: inout ComplexVolume) throws {
        let p = try FFTPlanner.plan(shape: v.shape, direction: .forward, effort: effort)
        p.execute(&v)
    }

    static func inverse(_ v: inout ComplexVolume) throws {
        let p = try FFTPlanner.plan(shape: v.shape, direction: .backward, effort: effort)
        p.execute(&v)
        v.scale(by: 1 / Float(v.count))
    }
}
