import XCTest
import Numerics
@testable import Simulation

/// Sum of wrapped phase steps around a closed loop of voxels, over 2π.
func windingNumber(_ phase: RealVolume, loop: [[Int]]) -> Double {
    var total = 0.0
    for k in 0..<loop.count {
        let a = loop[k], b = loop[(k + 1) % loop.count]
        var d = Double(phase[b[0], b[1], b[2]] - phase[a[0], a[1], a[2]])
        d = atan2(sin(d), cos(d))
        total += d
    }
    return total / (2 * .pi)
}

/// A square loop of half-width h around (c, c) in the plane of axes (p, q) at `fixed`
/// on the remaining axis.
func squareLoop(centre c: Int, halfWidth h: Int, axes p: Int, _ q: Int, fixedAxis f: Int, at fixed: Int) -> [[Int]] {
    var pts: [(Int, Int)] = []
    for i in -h..<h { pts.append((c + i, c - h)) }
    for i in -h..<h { pts.append((c + h, c + i)) }
    for i in -h..<h { pts.append((c - i, c + h)) }
    for i in -h..<h { pts.append((c - h, c - i)) }
    return pts.map { (u, v) in var idx = [0, 0, 0]; idx[p] = u; idx[q] = v; idx[f] = fixed; return idx }
}

final class FieldTests: XCTestCase {
    func testScrewDislocationWindsByQDotB() {
        let n = 24, grid = SamplingGrid.orthogonal(shape: [n, n, n])
        // Line along lab z (array axis 0), Q along z too: Q·b = |Q| |b|.
        for winding in [1.0, 2.0, -1.0] {
            let q = SIMD3<Double>(0, 0, 0.7)
            let b = 2 * Double.pi * winding / 0.7
            let phi = PhaseField.screwDislocation(on: grid, q: q, direction: SIMD3(0, 0, 1), burgersLength: b)
            // Loop in the (y, x) plane = array axes (1, 2), at z index 5 and 18.
            for z in [5, 18] {
                let w = windingNumber(phi, loop: squareLoop(centre: 12, halfWidth: 5, axes: 2, 1, fixedAxis: 0, at: z))
                XCTAssertEqual(w, winding, accuracy: 1e-6)
            }
            // A loop that does not enclose the line winds zero times.
            let w0 = windingNumber(phi, loop: squareLoop(centre: 6, halfWidth: 3, axes: 1, 2, fixedAxis: 0, at: 12).map { [$0[0], $0[1] + 10, $0[2] - 0] })
            XCTAssertEqual(w0, 0, accuracy: 1e-6)
        }
        // Q ⊥ b: the screw dislocation is invisible.
        let phi = PhaseField.screwDislocation(on: grid, q: SIMD3(0.7, 0, 0), direction: SIMD3(0, 0, 1), burgersLength: 3)
        XCTAssertEqual(windingNumber(phi, loop: squareLoop(centre: 12, halfWidth: 5, axes: 1, 2, fixedAxis: 0, at: 12)), 0, accuracy: 1e-6)
    }

    func testEdgeDislocationWindsByQDotB() {
        let n = 24, grid = SamplingGrid.orthogonal(shape: [n, n, n])
        // Line along y (array axis 1), Burgers vector along x with Q along x: winding Q·b/2π = 1.
        let q = SIMD3<Double>(0.5, 0, 0.2)
        let b = SIMD3<Double>(2 * .pi / 0.5, 0, 0)
        let phi = PhaseField.edgeDislocation(on: grid, q: q, direction: SIMD3(0, 1, 0), burgers: b)
        let w = windingNumber(phi, loop: squareLoop(centre: 12, halfWidth: 6, axes: 0, 2, fixedAxis: 1, at: 9))
        XCTAssertEqual(w, 1, accuracy: 1e-6)
        // And through the complex object: arg of ρ winds the same way.
        let amp = RealVolume(shape: [n, n, n], repeating: 1)
        let obj = try! ComplexVolume(modulus: amp, phase: phi)
        XCTAssertEqual(windingNumber(obj.phase(), loop: squareLoop(centre: 12, halfWidth: 4, axes: 0, 2, fixedAxis: 1, at: 3)), 1, accuracy: 1e-6)
    }

    func testGaussianCorrelatedPhaseStatistics() throws {
        let n = 32
        let support = Crystal.cube(edge: 20).amplitude(box: [n, n, n])
        let phi = try PhaseField.gaussianCorrelated(shape: [n, n, n], correlationLength: 3, rms: 0.7, support: support, seed: 4)
        var s = 0.0, s2 = 0.0, c = 0.0
        for i in 0..<phi.count where support[flat: i] > 0.5 { let v = Double(phi[flat: i]); s += v; s2 += v * v; c += 1 }
        XCTAssertEqual(s / c, 0, accuracy: 1e-5)
        XCTAssertEqual((s2 / c).squareRoot(), 0.7, accuracy: 1e-4)
        // Correlated: neighbouring voxels nearly equal; at 3σ apart much less so.
        var near = 0.0, far = 0.0
        for z in 6..<26 { for y in 6..<26 { for x in 6..<18 {
            near += Double(phi[z, y, x] * phi[z, y, x + 1]); far += Double(phi[z, y, x] * phi[z, y, x + 9])
        } } }
        XCTAssertGreaterThan(near, 4 * abs(far))
        let peak = try PhaseField.gaussianCorrelated(shape: [n, n, n], correlationLength: 3, rms: 1.5, support: support, seed: 4, peak: true)
        var m: Float = 0
        for i in 0..<peak.count where support[flat: i] > 0.5 { m = max(m, abs(peak[flat: i])) }
        XCTAssertEqual(m, 1.5, accuracy: 1e-4)
    }

    func testUniformStrainShiftsBraggPeakByPredictedPixels() throws {
        let n = 32, grid = SamplingGrid.orthogonal(shape: [n, n, n])
        let amp = Crystal.cube(edge: 12).amplitude(on: grid)
        let q = SIMD3<Double>(0.3, 0.1, 0.2) * 10                    // rad/voxel
        let strain = 0.06
        let phi = PhaseField.uniformStrain(on: grid, q: q, strain: strain)
        let box = [64, 64, 64]
        let i0 = try Diffraction.intensity(of: amp.complex(), box: box)
        let i1 = try Diffraction.intensity(of: ComplexVolume(modulus: amp, phase: phi), box: box)
        // Gradient g = εQ moves the peak by g·N/2π pixels along each array axis (z, y, x).
        let g = q * strain
        let predicted = [g.z, g.y, g.x].map { $0 * 64 / (2 * .pi) }
        let c0 = i0.centreOfMass(), c1 = i1.centreOfMass()
        for a in 0..<3 { XCTAssertEqual(c1[a] - c0[a], predicted[a], accuracy: 0.05, "axis \(a)") }
        XCTAssertGreaterThan(predicted.map(abs).max()!, 1.5)
    }

    func testSurfaceDomainAndMissingDensity() {
        let n = 32, grid = SamplingGrid.orthogonal(shape: [n, n, n])
        let c = Crystal.cube(edge: 20)
        let d = SurfaceDomain(facetDirection: SIMD3(1, 0, 0), depth: 4, phaseOffset: 1, edgeWidth: 0.5)
        let w = d.weight(on: grid, crystal: c)
        // Facet x = +10 (array axis 2 index 26): inside the layer 2 voxels deep, outside it 8 deep.
        XCTAssertGreaterThan(w[16, 16, 24], 0.95)
        XCTAssertLessThan(w[16, 16, 18], 0.05)
        let m = MissingDensity(centre: .zero, radii: SIMD3(4, 4, 4), fraction: 0.8, edgeWidth: 0.5).factor(on: grid)
        XCTAssertEqual(m[16, 16, 16], 0.2, accuracy: 0.01)
        XCTAssertEqual(m[16, 16, 26], 1, accuracy: 0.01)
    }
}

final class OversamplingTests: XCTestCase {
    func testMeasuredOversamplingMatchesRequested() throws {
        let box = [96, 80, 90]
        let requested = [2.0, 2.5, 3.0]
        // Extents per array axis (z, y, x) → lab (x, y, z).
        let ext = (0..<3).map { Double(box[$0]) / requested[$0] }
        var rng = SimulationRNG(seed: 8)
        let shapes = [Crystal.cube(edge: 1),
                      Crystal.randomHexagonalPrism(maxExtent: 1, rng: &rng)]
        for c0 in shapes {
            let c = c0.stretched(toExtent: SIMD3(ext[2], ext[1], ext[0]))
            let amp = c.amplitude(on: .orthogonal(shape: box))
            let i = try Diffraction.intensity(of: amp.complex(), box: box)
            let measured = try CrystalSimulation.measuredOversampling(of: i)
            for a in 0..<3 { XCTAssertEqual(measured[a] / requested[a], 1, accuracy: 0.05, "axis \(a): \(measured)") }
        }
    }
}

final class GeometryTests: XCTestCase {
    func testSeedGeometryNumbers() throws {
        let g = BraggGeometry.seedStudy
        try g.validate()
        XCTAssertEqual(g.qMagnitude / 1e10, 3.40, accuracy: 0.005)
        // The seed's Q̂ = 0.969 x̂ − 0.249 ẑ.
        XCTAssertEqual(g.qHat.x, 0.969, accuracy: 0.001)
        XCTAssertEqual(g.qHat.z, -0.249, accuracy: 0.001)
        XCTAssertEqual(g.wavelength * 1e10, 0.9184, accuracy: 1e-4)
        let shape = [64, 128, 128]
        let b = g.reciprocalSteps, a = g.realSpaceSteps(shape: shape)
        for i in 0..<3 { for j in 0..<3 {
            XCTAssertEqual((b[i] * a[j]).sum(), i == j ? 2 * .pi / Double(shape[i]) : 0, accuracy: 1e-12)
        } }
        // Detector pixel step k·p/D = 1.344e6 m⁻¹; rocking step |Q|·dω = 2.97e6 m⁻¹.
        XCTAssertEqual((b[2] * b[2]).sum().squareRoot(), 1.3438e6, accuracy: 1e3)
        XCTAssertEqual((b[0] * b[0]).sum().squareRoot(), 2.9694e6, accuracy: 1e3)
        let nm = g.voxelSizes(shape: shape).map { $0 * 1e9 }
        XCTAssertEqual(nm[1], 36.5, accuracy: 0.5)
        // Lab position ↔ index round trip.
        let p = SIMD3<Double>(1e-7, -2e-7, 3e-8)
        let back = g.labPosition(index: g.detectorIndex(of: p, shape: shape), shape: shape)
        XCTAssertEqual(((back - p) * (back - p)).sum().squareRoot(), 0, accuracy: 1e-15)
        var bad = g; bad.energy = -1
        XCTAssertThrowsError(try bad.validate())
    }

    func testDetectorFrameRoundTripRecoversShape() throws {
        let g = BraggGeometry.seedStudy
        let shape = [64, 96, 96]
        let det = g.realSpaceGrid(shape: shape)
        var rng = SimulationRNG(seed: 21)
        var crystal = Crystal.hexagonalPrism(radius: 1, height: 1.6, aspects: [1.0, 0.92, 1.06])
            .rotated(by: .randomRotation(&rng))
        // Fit the crystal within 40% of the (skewed) box in every index direction.
        let inv = det.basis.inverse
        let idx = (0..<3).map { crystal.extent(along: inv.rows[$0]) * norm(inv.rows[$0]) / Double(shape[$0]) }
        crystal = crystal.scaled(by: 0.4 / idx.max()!)
        // Simulate in the detector frame: the crystal sampled on the conjugate grid, and
        // check that its pattern is what the detector would see (peak at the centre).
        let ampDet = crystal.amplitude(on: det)
        let pattern = try Diffraction.intensity(of: ampDet.complex(), box: shape)
        XCTAssertEqual(pattern.index(ofFlat: pattern.argmax()), shape.map { $0 / 2 })
        // Map back to an orthogonal lab grid with the inverse transform.
        let voxel = 0.5 * det.voxelSizes.min()!
        var lab = Resampling.labGrid(covering: det, voxelSize: voxel)
        let half = max(crystal.extent.x, crystal.extent.y, crystal.extent.z) * 0.6
        let m = 2 * Int((half / voxel).rounded(.up))
        lab.shape = [m, m, m]
        let ampLab = try Resampling.resample(ampDet, from: det, to: lab)
        // Volume within 2%.
        let v = ampLab.sum() * lab.voxelVolume
        XCTAssertEqual(v / crystal.volume, 1, accuracy: 0.02)
        XCTAssertEqual(ampDet.sum() * det.voxelVolume / crystal.volume, 1, accuracy: 0.01)
        // Facet normals within 1°: on partly filled voxels the amplitude is a linear
        // function of position across each facet (a = ½ + (d − n·r)/w), so a least-squares
        // fit of a against the voxels' lab positions (r = A(m − c), the inverse transform)
        // gives −n/w. Voxels are grouped by their nearest facet plane, away from edges.
        func fittedNormals(_ a: RealVolume, grid: SamplingGrid) -> [Double] {
            // Width of the partial-volume ramps: one detector-grid voxel along the normal.
            let w = crystal.facets.map { det.thickness(along: $0.normal) }.max()!
            var pts = [[(SIMD3<Double>, Double)]](repeating: [], count: crystal.facets.count)
            let sh = grid.shape
            for i0 in 0..<sh[0] { for i1 in 0..<sh[1] { for i2 in 0..<sh[2] {
                let v = Double(a[i0, i1, i2])
                guard v > 0.02 && v < 0.98 else { continue }
                let r = grid.position(SIMD3(Double(i0), Double(i1), Double(i2)))
                let d = crystal.facets.map { abs($0.distance - ($0.normal * (r - crystal.centre)).sum()) }
                let order = d.indices.sorted { d[$0] < d[$1] }
                if d[order[1]] > w { pts[order[0]].append((r, v)) }
            } } }
            return crystal.facets.indices.map { k in
                let p = pts[k]
                guard p.count >= 20 else { XCTFail("facet \(k): only \(p.count) voxels"); return 90 }
                let mr = p.map { $0.0 }.reduce(.zero, +) / Double(p.count), ma = p.map { $0.1 }.reduce(0, +) / Double(p.count)
                var cov = [SIMD3<Double>](repeating: .zero, count: 3), cra = SIMD3<Double>.zero
                for (r, v) in p {
                    let dr = r - mr
                    cov[0] += dr * dr.x; cov[1] += dr * dr.y; cov[2] += dr * dr.z
                    cra += dr * (v - ma)
                }
                let g = Matrix3x3(rows: cov).inverse * cra
                let n = -g / (g * g).sum().squareRoot()
                return acos(min(1, (n * crystal.facets[k].normal).sum())) * 180 / .pi
            }
        }
        for (k, angle) in fittedNormals(ampDet, grid: det).enumerated() { XCTAssertLessThan(angle, 1, "facet \(k)") }
        for (k, angle) in fittedNormals(ampLab, grid: lab).enumerated() { XCTAssertLessThan(angle, 1, "lab-grid facet \(k)") }
    }

    func testRockingScansDriftAndDefects() throws {
        let g = BraggGeometry.seedStudy
        let shape = [32, 32, 32]
        let det = g.realSpaceGrid(shape: shape)
        let inv = det.basis.inverse
        var c = Crystal.octahedron(distance: 1)
        let idx = (0..<3).map { c.extent(along: inv.rows[$0]) * norm(inv.rows[$0]) / 32 }
        c = c.scaled(by: 0.4 / idx.max()!)
        let obj = c.amplitude(on: det).complex()
        var o = RockingScanOptions()
        o.scans = 3; o.photons = 1e5; o.drift = 0.5; o.seed = 5
        o.defects = DetectorDefects(moduleSize: 16, gapWidth: 2, hotPixels: 2, hotValue: 5e5)
        let scans = try RockingScans.make(object: obj, geometry: g, options: o)
        XCTAssertEqual(scans.count, 3)
        XCTAssertEqual(scans[0].angles.count, 32)
        XCTAssertEqual(scans[0].angles[16], g.braggAngle, accuracy: 1e-12)
        XCTAssertEqual(scans[0].angles[17] - scans[0].angles[16], g.rockingStep, accuracy: 1e-12)
        // Gap at the module boundary (rows/cols 15, 16), through every frame.
        XCTAssertEqual(scans[0].mask[3, 15, 4], 1); XCTAssertEqual(scans[0].mask[30, 4, 16], 1)
        XCTAssertEqual(scans[0].frames[3, 15, 4], 0)
        XCTAssertEqual(scans[0].mask.sum(), Double(32 * (32 * 32 - 30 * 30 - 0) + 2 * 32), accuracy: 0)
        // The centre of mass of each scan's good pixels moves by its drift.
        let clean = try Diffraction.intensity(of: obj, box: shape).centreOfMass()
        for s in scans {
            var f = s.frames
            try f.multiply(by: s.mask.map { 1 - $0 })
            let com = f.centreOfMass()
            for a in 0..<3 { XCTAssertEqual(com[a] - clean[a], s.drift[a], accuracy: 0.35, "axis \(a)") }
        }
        let again = try RockingScans.make(object: obj, geometry: g, options: o)
        XCTAssertEqual(again[2].frames, scans[2].frames)
    }
}

final class SeriesTests: XCTestCase {
    func testJacobiEigenAndPCAAgainstDirectCovariance() {
        let a: [[Double]] = [[4, 1, 2], [1, 3, 0], [2, 0, 5]]
        let (vals, vecs) = OperandoSeries.symmetricEigen(a)
        for j in 0..<3 {
            for i in 0..<3 {
                let av = (0..<3).map { a[i][$0] * vecs[$0][j] }.reduce(0, +)
                XCTAssertEqual(av, vals[j] * vecs[i][j], accuracy: 1e-10)
            }
        }
        // PCA: Ω from the Gram matrix equals ψ₁·Δφ with ψ₁ from the covariance by power iteration.
        var rng = SimulationRNG(seed: 3)
        let deltas: [[Double]] = [[Double](repeating: 0, count: 50)] + (1..<5).map { i in (0..<50).map { k in Double(i) * sin(Double(k) * 0.3) + 0.3 * rng.normal() } }
        let (omega, eig) = OperandoSeries.pcaOrderParameters(deltas)
        var psi = [Double](repeating: 1, count: 50)
        for _ in 0..<500 {
            var next = [Double](repeating: 0, count: 50)
            for d in deltas { let s = zip(d, psi).map(*).reduce(0, +); for k in 0..<50 { next[k] += d[k] * s } }
            let l = next.map { $0 * $0 }.reduce(0, +).squareRoot()
            psi = next.map { $0 / l }
        }
        let direct = deltas.map { zip($0, psi).map(*).reduce(0, +) }
        let sign = direct.reduce(0, +) < 0 ? -1.0 : 1.0
        for i in 0..<5 { XCTAssertEqual(omega[i], sign * direct[i], accuracy: 1e-6) }
        XCTAssertEqual(omega[0], 0)
        XCTAssertEqual(eig[0], omega.map { $0 * $0 }.reduce(0, +), accuracy: 1e-6)
    }

    func testOperandoSeriesStatesAndMetrics() throws {
        var o = OperandoOptions()
        o.size = 32; o.seed = 2; o.photons = 1e5
        let r = try OperandoSeries.make(options: o)
        XCTAssertEqual(r.states.map { $0.label }, ["charge 2.5 V", "charge 3.0 V", "charge 3.5 V", "charge 4.0 V",
                                                   "discharge 3.5 V", "discharge 3.0 V"])
        XCTAssertEqual(r.metrics.states[0].meanPhaseChangeRad, 0)
        XCTAssertEqual(r.metrics.states[0].pcaOrderParameter, 0, accuracy: 1e-9)
        // Missing density in the first state only; the same crystal throughout.
        XCTAssertLessThan(r.metrics.states[0].supportVoxels, r.metrics.states[1].supportVoxels)
        XCTAssertEqual(r.metrics.states[1].supportVoxels, r.metrics.states[5].supportVoxels)
        // 3.5 V charge changes most; 4.0 V returns close to the first state (the seed's Table 1).
        let d = r.metrics.states.map { abs($0.meanPhaseChangeDeg) }
        XCTAssertEqual(d.firstIndex(of: d.max()!), 2)
        XCTAssertLessThan(d[3], d[2] / 3)
        XCTAssertEqual(r.metrics.states[2].meanDisplacementAngstrom,
                       r.metrics.states[2].meanPhaseChangeRad / r.metrics.qMagnitude * 1e10, accuracy: 1e-12)
        // Patterns: centred, peak photons as asked (noisy).
        XCTAssertEqual(r.states[0].pattern.shape, [32, 32, 32])
        XCTAssertEqual(Double(r.states[0].pattern.maximum()) / 1e5, 1, accuracy: 0.05)
        let again = try OperandoSeries.make(options: o)
        XCTAssertEqual(again.states[4].pattern, r.states[4].pattern)
        XCTAssertEqual(again.metrics, r.metrics)
    }
}

final class CrystalSimulationTests: XCTestCase {
    func testOptionsValidation() {
        var o = CrystalOptions()
        o.size = -4
        XCTAssertThrowsError(try CrystalSimulation.make(o)) { XCTAssertTrue("\($0)".contains("box size")) }
        o = CrystalOptions(); o.photons = 0
        XCTAssertThrowsError(try CrystalSimulation.make(o)) { XCTAssertTrue("\($0)".contains("photon")) }
        o = CrystalOptions(); o.size = 32; o.crystalSize = 17
        XCTAssertThrowsError(try CrystalSimulation.make(o)) { XCTAssertTrue("\($0)".contains("larger than half the box")) }
    }

    func testSameSeedSameBytesAndFields() throws {
        var o = CrystalOptions()
        o.size = 32; o.seed = 77; o.phaseRMS = 0.5; o.strain = 1e-4; o.dislocation = .screw
        o.surfaceDomains = 2; o.missingDensity = 0.5; o.background = 0.5; o.blur = .gaussian(sigma: 0.7)
        o.defects = DetectorDefects(moduleSize: 16, gapWidth: 2, hotPixels: 3, hotValue: 1e6)
        let a = try CrystalSimulation.make(o), b = try CrystalSimulation.make(o)
        XCTAssertEqual(a.intensity, b.intensity)
        XCTAssertEqual(a.object, b.object)
        XCTAssertEqual(a.mask.sum(), b.mask.sum())
        XCTAssertEqual(a.intensity.nonFiniteCounts().nan, 0)
        o.seed = 78
        XCTAssertNotEqual(try CrystalSimulation.make(o).intensity, a.intensity)
        for s in CrystalShape.allCases {
            var p = CrystalOptions(); p.size = 24; p.shape = s
            let r = try CrystalSimulation.make(p)
            XCTAssertGreaterThan(r.support.sum(), 100)
        }
    }

    func testCoherenceBlurConservesIntensity() throws {
        let obj = Crystal.cube(edge: 8).amplitude(box: [16, 16, 16]).complex()
        let i = try Diffraction.intensity(of: obj, box: [32, 32, 32])
        for blur in [CoherenceBlur.gaussian(sigma: 1), .lorentzian(halfWidth: 0.7)] {
            let b = try Diffraction.blurred(i, blur)
            XCTAssertEqual(b.sum() / i.sum(), 1, accuracy: 1e-4)
            XCTAssertLessThan(b.maximum(), i.maximum())
        }
    }
}
