import Foundation
import XCTest
import Numerics
@testable import Analysis

final class GeometryTests: XCTestCase {
    /// The seed's numbers: 13.5 keV, 2θ = 28.8° → |Q| = 3.40·10¹⁰ m⁻¹ (the seed prints
    /// 3.398·10¹⁰) and Q̂ = 0.969 x̂ − 0.249 ẑ.
    func testSeedScatteringVector() throws {
        let g = BraggGeometry.seedStudy
        try g.validate()
        XCTAssertEqual(g.qMagnitude, 3.40e10, accuracy: 0.002 * 3.40e10)
        XCTAssertEqual(norm(g.q), g.qMagnitude, accuracy: 1e-6 * g.qMagnitude)   // k_f − k_i agrees with 4π sin θ/λ
        XCTAssertEqual(g.qHat.x, 0.969, accuracy: 0.001)
        XCTAssertEqual(g.qHat.y, 0, accuracy: 1e-12)
        XCTAssertEqual(g.qHat.z, -0.249, accuracy: 0.001)
        XCTAssertEqual(g.wavelength, 0.91841e-10, accuracy: 1e-14)
    }

    /// u = φ/|Q|: 13.8° gives 0.0709 Å. The seed's Table 1 prints 0.142 Å for 13.8°, i.e.
    /// twice φ/|Q| (its factor-2 convention); we print both and they differ by exactly 2.
    func testDisplacementAndSeedFactorTwo() {
        let g = BraggGeometry.seedStudy
        let u = g.displacement(phase: 13.8 * .pi / 180)
        XCTAssertEqual(u * 1e10, 0.0709, accuracy: 0.0005)
        let seed = BraggGeometry.seedDisplacementFactor * u
        XCTAssertEqual(seed * 1e10, 0.142, accuracy: 0.001)              // the seed's Table 1 value
        XCTAssertEqual(BraggGeometry.seedDisplacementFactor, 2)
        // Every Table 1 pair (Δφ°, Å) of the seed obeys the factor 2: 45.5° → 0.467 Å, 22.0° → 0.226 Å.
        for (deg, table) in [(45.5, 0.467), (-1.1, -0.011), (22.0, 0.226), (21.1, 0.217)] {
            XCTAssertEqual(2 * g.displacement(phase: deg * .pi / 180) * 1e10, table, accuracy: 0.002)
        }
    }

    /// a_i·b_j = 2π δ_ij / N_j for the detector/rocking grid, and a non-orthogonal basis.
    func testRealSpaceBasisIsDualToReciprocalSteps() throws {
        var g = BraggGeometry.seedStudy
        g.outOfPlane = 5 * .pi / 180
        let shape = [40, 64, 48]
        let a = g.realSpaceBasis(shape: shape), b = g.reciprocalBasis
        for i in 0..<3 { for j in 0..<3 {
            let v = dot(a.column(i), b.column(j))
            XCTAssertEqual(v, i == j ? 2 * .pi / Double(shape[j]) : 0, accuracy: 1e-9)
        } }
        // Detector steps are k·p/D and perpendicular to k_f; the rocking step is dω·|â × Q|.
        XCTAssertEqual(norm(b.column(2)), g.wavenumber * g.pixelSize / g.distance, accuracy: 1)
        XCTAssertEqual(dot(b.column(1), g.exitDirection), 0, accuracy: 1e-3)
        XCTAssertEqual(norm(b.column(0)), g.rockingStep * norm(cross(g.rockingAxis, g.q)), accuracy: 1e-3)
        // With δ = 5°, the detector elevation shows in k_f.
        XCTAssertEqual(asin(g.exitDirection.y), 5 * .pi / 180, accuracy: 1e-12)
    }

    func testBadGeometryIsRejected() {
        var g = BraggGeometry.seedStudy
        g.twoTheta = 0
        XCTAssertThrowsError(try g.validate()) { e in XCTAssertTrue("\(e)".contains("2θ"), "\(e)") }
        g = .seedStudy; g.energy = -1
        XCTAssertThrowsError(try g.validate())
        g = .seedStudy; g.rockingAxis = g.qHat
        XCTAssertThrowsError(try g.validate())
    }
}

final class AlignmentTests: XCTestCase {
    /// The twin of a centred object stays centred (even and odd sizes) and twin∘twin = id.
    func testTwinKeepsCentreAndIsInvolution() {
        for n in [16, 17] {
            let shape = [n, n, n]
            var v = ComplexVolume(shape: shape, repeating: Complex32(0, 0))
            let c = n / 2
            v[c, c, c] = Complex32(1, 2)
            v[c + 1, c, c - 2] = Complex32(3, -1)
            let t = v.twin()
            XCTAssertEqual(t[c, c, c], Complex32(1, -2))          // the centre maps onto itself
            XCTAssertEqual(t[c - 1, c, c + 2], Complex32(3, 1))   // r → −r, conjugated
            XCTAssertEqual(t.twin(), v)
        }
    }

    /// Sub-voxel registration: a known Fourier shift is found within 0.02 voxel.
    func testSubVoxelRegistration() throws {
        let shape = [40, 40, 40]
        let amp = try RealVolume(shape: shape, elements: Synthetic.amplitude(shape: shape))
        for s in [[1.3, -2.7, 0.45], [-0.5, 0.25, 3.8]] {
            let moved = try amp.fourierShifted(by: s)
            let r = try Registration.shift(of: moved, onto: amp, method: .peakSearch(from: .integer))
            for a in 0..<3 { XCTAssertEqual(r.shift[a], -s[a], accuracy: 0.02, "axis \(a) of \(s)") }
            XCTAssertGreaterThan(r.correlation, 0.9)
        }
    }

    /// The mean phase gradient of a linear ramp wrapped many times is found exactly.
    func testPhaseRampFromComplexField() {
        let shape = [24, 20, 16]
        let g = [0.9, -2.5, 0.3]
        var v = ComplexVolume(shape: shape) { f in
            let i = f / 320, j = (f / 16) % 20, k = f % 16
            return Complex32(modulus: 1, phase: Float(g[0] * Double(i) + g[1] * Double(j) + g[2] * Double(k)))
        }
        let sup = [UInt8](repeating: 1, count: v.count)
        let est = v.phaseRamp(inside: sup)
        for a in 0..<3 { XCTAssertEqual(est.radiansPerVoxel[a], g[a], accuracy: 1e-4) }
        v.removePhaseRamp(est)
        let p = v.phase()
        XCTAssertLessThan(abs(Double(p[0, 0, 0] - p[23, 19, 15])), 1e-2)   // flat afterwards
    }

    /// Exact Euclidean depth against brute force on a random blob, with anisotropic spacing.
    func testDepthMatchesBruteForce() {
        let shape = [12, 14, 10]
        var rng = TestRNG(state: 7)
        let n = shape.reduce(1, *)
        var mask = [UInt8](repeating: 0, count: n)
        for i in 0..<n { mask[i] = rng.uniform(0, 1) < 0.8 ? 1 : 0 }
        let spacing = [1.0, 1.5, 0.7]
        let d = Morphology.depth(mask, shape: shape, spacing: spacing)
        func pos(_ i: Int, _ j: Int, _ k: Int) -> Vector3 { Vector3(Double(i) * spacing[0], Double(j) * spacing[1], Double(k) * spacing[2]) }
        for i in 0..<shape[0] { for j in 0..<shape[1] { for k in 0..<shape[2] where mask[(i * shape[1] + j) * shape[2] + k] != 0 {
            var best = Double.infinity
            for a in -1...shape[0] { for b in -1...shape[1] { for c in -1...shape[2] {
                let outside = a < 0 || b < 0 || c < 0 || a >= shape[0] || b >= shape[1] || c >= shape[2] || mask[(a * shape[1] + b) * shape[2] + c] == 0
                if outside { best = min(best, norm(pos(i, j, k) - pos(a, b, c))) }
            } } }
            XCTAssertEqual(Double(d[(i * shape[1] + j) * shape[2] + k]), best, accuracy: 1e-4)
        } } }
    }

    /// Missing density: a hole punched in one state is found, its amplitude taken from the
    /// other state and its phase inpainted harmonically (exact for a linear phase across
    /// the hole, wrapped several times).
    func testMissingDensityFill() throws {
        let shape = [32, 32, 32]
        let n = shape.reduce(1, *)
        let amp = [Float](repeating: 0, count: n).enumerated().map { f, _ -> Float in
            let i = f / 1024, j = (f / 32) % 32, k = f % 32
            return abs(i - 16) <= 10 && abs(j - 16) <= 10 && abs(k - 16) <= 10 ? 1 : 0
        }
        let ph: [Float] = (0..<n).map { f -> Float in
            let j = Double((f / 32) % 32), k = Double(f % 32)
            return Float(0.8 * j + 0.5 * k)
        }
        var holed = amp
        var hole: [Int] = []
        for i in 10...13 { for j in 12...15 { for k in 9...12 { let f = (i * 32 + j) * 32 + k; holed[f] = 0.02; hole.append(f) } } }
        let a = Synthetic.object(amplitude: amp, phase: ph, shape: shape)
        let b = Synthetic.object(amplitude: holed, phase: ph, shape: shape)
        let sup = try RealVolume(shape: shape, elements: amp)
        var opt = AnalysisOptions()
        // Integer registration: the hole biases an amplitude registration by a fraction of a
        // voxel, which this steep test phase would turn into an offset.
        opt.removeRamp = false; opt.labFrame = false; opt.twinCheck = false; opt.subVoxel = false
        // The supports as given (with two states, a hole cut from one amplitude-defined support
        // would leave the majority common support, and nothing would be missing).
        opt.supportFraction = nil
        let r = try SeriesAnalysis.run(states: [StateInput(label: "full", object: a, support: sup),
                                                 StateInput(label: "holed", object: b, support: sup)],
                                       geometry: .seedStudy, options: opt)
        XCTAssertEqual(r.states[0].filledVoxels, 0)
        XCTAssertEqual(r.states[1].filledVoxels, hole.count)
        let o = r.states[1].aligned, ref = r.states[0].aligned
        var maxErr = 0.0
        for f in hole {
            XCTAssertEqual(Double(o[flat: f].modulus), Double(ref[flat: f].modulus), accuracy: 1e-3)
            let d = Alignment.wrap(Double(o[flat: f].phase - ref[flat: f].phase))
            maxErr = max(maxErr, abs(d))
        }
        XCTAssertLessThan(maxErr, 0.01)
        XCTAssertEqual(r.states[1].meanPhaseDifference, 0, accuracy: 1e-3)
    }
}

final class SeriesTests: XCTestCase {
    /// Per-state domain weights (rad) of the synthetic operando series: a path out and back.
    static let weights: [[Double]] = [[0.5, 0.0, 0.4], [1.6, 0.5, 0.2], [2.9, 1.8, -0.4], [0.7, 0.2, 0.5],
                                      [2.2, 1.1, 0.0], [1.8, 0.9, 0.7]]

    /// Ground-truth objects with random global phases, shifts of a few voxels (sub-voxel
    /// parts included) and random twin flips: Δφ_mean within 1° and normalised Ω within 0.02.
    func testSeriesRecoversPhaseChangesThroughTwinShiftAndGlobalPhase() throws {
        let shape = [48, 48, 48]
        let n = shape.reduce(1, *)
        let amp = Synthetic.amplitude(shape: shape)
        let truthPhases = SeriesTests.weights.map { Synthetic.phase(shape: shape, weights: $0) }
        // Truth: support, core (depth ≥ 0.5 max), each phase minus its core median, Δφ wrapped.
        let support = amp.map { $0 > 0.2 ? UInt8(1) : 0 }
        // Depth in physical units (the seed geometry's voxels are not cubic), as the analysis does.
        let basis = BraggGeometry.seedStudy.realSpaceBasis(shape: shape)
        let depth = Morphology.depth(support, shape: shape, spacing: (0..<3).map { norm(basis.column($0)) })
        let core = Morphology.core(depth: depth, fraction: 0.5)
        let idx = (0..<n).filter { support[$0] != 0 }
        let medians = truthPhases.map { p -> Double in
            let v = (0..<n).filter { core[$0] != 0 }.map { Double(p[$0]) }.sorted()
            return v[v.count / 2]
        }
        let truthDiffs: [[Float]] = truthPhases.indices.map { s in
            idx.map { Float(Alignment.wrap((Double(truthPhases[s][$0]) - medians[s]) - (Double(truthPhases[0][$0]) - medians[0]))) }
        }
        let truthMeans = truthDiffs.map { $0.reduce(0.0) { $0 + Double($1) } / Double(idx.count) }
        let truthPCA = try PhasePCA(differences: truthDiffs)

        var rng = TestRNG(state: 2024)
        var states: [StateInput] = []
        var flips: [Bool] = []
        for (s, ph) in truthPhases.enumerated() {
            var o = Synthetic.object(amplitude: amp, phase: ph, shape: shape)
            let flip = s > 0 && rng.uniform(0, 1) < 0.5
            if flip { o = o.twin() }
            flips.append(flip)
            if s > 0 {
                let sh = (0..<3).map { _ in rng.uniform(-3, 3) }
                o = try o.fourierShifted(by: sh)
            }
            o.rotatePhase(by: Float(rng.uniform(-.pi, .pi)))
            o.scale(by: Float(rng.uniform(0.5, 2)))        // arbitrary scale per reconstruction
            states.append(StateInput(label: "V\(s)", condition: "\(s)", object: o, chi2: 0.1 * Double(s)))
        }
        XCTAssertTrue(flips.contains(true) && flips.contains(false), "the draw should flip some states only")
        var opt = AnalysisOptions()
        opt.removeRamp = false
        let r = try SeriesAnalysis.run(states: states, geometry: .seedStudy, options: opt)
        for s in states.indices {
            XCTAssertEqual(r.states[s].twinFlipped, flips[s], "state \(s)")
            XCTAssertEqual(r.states[s].meanPhaseDifference * 180 / .pi, truthMeans[s] * 180 / .pi, accuracy: 1.0, "state \(s)")
            XCTAssertEqual(r.states[s].omegaNormalised, truthPCA.omegaNormalised[s], accuracy: 0.02, "state \(s)")
            XCTAssertEqual(r.states[s].chi2, 0.1 * Double(s))
        }
        XCTAssertEqual(r.states[0].meanPhaseDifference, 0)
        // The table states the seed's factor 2: its displacement column is 2φ/|Q|, ours φ/|Q|.
        let cols = SeriesResult.tableColumns
        let iP = cols.firstIndex(of: "delta_phi_mean_deg")!, iU = cols.firstIndex(of: "mean_relative_displacement_A")!
        let iS = cols.firstIndex(of: "mean_relative_displacement_seed_convention_A")!
        for row in r.tableRows() {
            let dphi = row[iP] as! Double, u = row[iU] as! Double, seedU = row[iS] as! Double
            XCTAssertEqual(u, dphi * .pi / 180 / BraggGeometry.seedStudy.qMagnitude * 1e10, accuracy: 1e-9)
            XCTAssertEqual(seedU, 2 * u, accuracy: 1e-12)
        }
        XCTAssertTrue(r.tableCSV().contains("the seed's Table 1 prints 2*phi/|Q|"))
        let json = try JSONSerialization.jsonObject(with: r.tableJSON()) as! [String: Any]
        XCTAssertEqual((json["states"] as! [Any]).count, 6)
        XCTAssertTrue(((json["conventions"] as! [String: String])["displacement"]!).contains("2*phi/|Q|"))
        let pcaDoc = try JSONSerialization.jsonObject(with: r.pcaJSON()) as! [String: Any]
        XCTAssertEqual((pcaDoc["omega_normalised"] as! [Double]).count, 6)
        XCTAssertGreaterThan(abs(truthMeans[2]) * 180 / .pi, 5, "the series must change the phase noticeably")
        XCTAssertEqual(r.pca.explainedVariance.reduce(0, +), 1, accuracy: 1e-9)
        // The lab frame was built; the crystal's extent is physical (hundreds of nm to µm).
        let lab = try XCTUnwrap(r.states[2].lab)
        XCTAssertEqual(lab.amplitude.shape, r.labGrid!.shape)
        XCTAssertGreaterThan(lab.support.sum(), 100)
        XCTAssertGreaterThan(r.states[0].extent.x, 0.3e-6)
    }

    /// The Gram-matrix PCA equals the voxel-by-voxel covariance PCA of Eq. (2) on a case
    /// small enough to build C = Σ Δφᵢ ⊗ Δφᵢ directly.
    func testGramPCAEqualsCovariancePCA() throws {
        var rng = TestRNG(state: 3)
        let m = 30, k = 5
        let diffs: [[Float]] = (0..<k).map { i in (0..<m).map { _ in i == 0 ? 0 : Float(rng.uniform(-1, 1) + 0.3 * Double(i)) } }
        let pca = try PhasePCA(differences: diffs, regionFraction: 0.9)
        var c = [Double](repeating: 0, count: m * m)
        for d in diffs { for a in 0..<m { for b in 0..<m { c[a * m + b] += Double(d[a]) * Double(d[b]) } } }
        let (diag, columns) = symmetricEigen((0..<m).map { a in Array(c[(a * m)..<(a * m + m)]) }, tolerance: 2e-30)
        let order = (0..<m).sorted { diag[$0] > diag[$1] }
        let vals = order.map { diag[$0] }
        var vecs = [Double](repeating: 0, count: m * m)
        for (col, o) in order.enumerated() { for r in 0..<m { vecs[r * m + col] = columns[r][o] } }
        XCTAssertEqual(vals[0], pca.eigenvalues[0], accuracy: 1e-6 * vals[0])
        XCTAssertEqual(vals[1], pca.eigenvalues[1], accuracy: 1e-5 * vals[0])
        var sign = 0.0
        for a in 0..<m { sign += vecs[a * m] * Double(pca.component[a]) }
        for a in 0..<m { XCTAssertEqual(abs(vecs[a * m]), abs(Double(pca.component[a])), accuracy: 1e-5) }
        XCTAssertEqual(abs(sign), 1, accuracy: 1e-5)
        for i in 0..<k {
            var om = 0.0
            for a in 0..<m { om += vecs[a * m] * Double(diffs[i][a]) }
            XCTAssertEqual(abs(om), abs(pca.omega[i]), accuracy: 1e-4)
        }
        XCTAssertEqual(pca.omega[0], 0)
        let big = pca.omega.max { abs($0) < abs($1) }!
        XCTAssertGreaterThan(big, 0)                                      // the largest |Ω| is positive
        // The region holds at least 90% of Σψ₁² and dropping its weakest voxel would not.
        let w = pca.component.map { Double($0) * Double($0) }
        let inside = zip(w, pca.region).filter { $0.1 != 0 }.map { $0.0 }
        XCTAssertGreaterThanOrEqual(inside.reduce(0, +), 0.9 - 1e-9)
        XCTAssertLessThan(inside.reduce(0, +) - inside.min()!, 0.9)
    }
}

final class PhysicsTests: XCTestCase {
    /// A uniform strain ε along Q (φ = ε|Q| Q̂·r on the sheared detector grid of the seed's
    /// geometry) is recovered as ε ± 5% across the interior (here far better).
    func testUniformStrainRecovered() throws {
        let shape = [40, 40, 40]
        let g = BraggGeometry.seedStudy
        let a = g.realSpaceBasis(shape: shape)
        let eps = 1.0e-4
        let n = shape.reduce(1, *)
        let amp = Synthetic.amplitude(shape: shape, sigma: 0.8, scale: 1.2)
        let ph: [Float] = (0..<n).map { f in
            let i = f / 1600, j = (f / 40) % 40, k = f % 40
            let r = a * Vector3(Double(i - 20), Double(j - 20), Double(k - 20))
            return Float(eps * g.qMagnitude * dot(g.qHat, r))
        }
        var opt = AnalysisOptions()
        opt.removeRamp = false; opt.labFrame = false
        let obj = Synthetic.object(amplitude: amp, phase: ph, shape: shape)
        let r = try SeriesAnalysis.run(states: [StateInput(label: "strained", object: obj)], geometry: g, options: opt)
        let sup = r.commonSupport
        let depth = Morphology.depth(sup, shape: shape)
        var count = 0
        for f in 0..<n where depth[f] >= 2 {
            XCTAssertEqual(Double(r.states[0].strain[f]), eps, accuracy: 0.05 * eps)
            count += 1
        }
        XCTAssertGreaterThan(count, 1000)
        // Displacement: the unwrapped phase over |Q| grows linearly along Q̂ (several wraps).
        let u = r.states[0].unwrappedPhase
        let span = (u.max()! - u.min()!)
        XCTAssertGreaterThan(Double(span), 2 * .pi)
        // With ramp removal (the default) a uniform strain is a ramp and is taken out.
        opt.removeRamp = true
        let r2 = try SeriesAnalysis.run(states: [StateInput(label: "strained", object: obj)], geometry: g, options: opt)
        for f in 0..<n where depth[f] >= 2 { XCTAssertEqual(Double(r2.states[0].strain[f]), 0, accuracy: 0.05 * eps) }
    }

    /// A dislocation line perpendicular to Q (phase winding 2π around it) produces no
    /// spurious strain away from its core: the strain follows the analytic −b/(ρ²|Q|), with
    /// no spike on the branch cut of the wrapped phase; unwrapping stays finite.
    func testDislocationGivesNoSpuriousStrain() throws {
        let shape = [32, 32, 32]
        let n = shape.reduce(1, *)
        // A cubic grid of 10 nm voxels, axes along lab z, y, x; Q along x.
        let h = 10e-9
        let basis = Matrix3x3(columns: [Vector3(0, 0, h), Vector3(0, h, 0), Vector3(h, 0, 0)])
        let qHat = Vector3(1, 0, 0), qMag = 3.4e10
        // Line along y through (x, z) = (0.3, −0.4) voxels from the centre: φ = atan2(z, x).
        var obj = ComplexVolume(shape: shape)
        var truth = [Double](repeating: 0, count: n), rho = truth
        for i in 0..<32 { for j in 0..<32 { for k in 0..<32 {
            let z = Double(i - 16) + 0.4, x = Double(k - 16) - 0.3
            let f = (i * 32 + j) * 32 + k
            obj[flat: f] = Complex32(modulus: 1, phase: Float(atan2(z, x)))
            truth[f] = -z / ((x * x + z * z) * h * qMag)
            rho[f] = (x * x + z * z).squareRoot()
        } } }
        let sup = [UInt8](repeating: 1, count: n)
        let e = try Strain.alongQ(obj, support: sup, basis: basis, qHat: qHat, qMagnitude: qMag)
        var worst = 0.0, checked = 0
        for f in 0..<n where rho[f] > 4 && e.valid[f] == 2 {
            // Error relative to the phase change of one voxel step (a wrap spike would be 2π).
            worst = max(worst, abs(Double(e.strain[f]) - truth[f]) * h * qMag)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20_000)
        XCTAssertLessThan(worst, 0.01)
        // Naive differences of the wrapped phase would jump by ~2π on the cut: check it is there.
        let wrapped = obj.phase()
        var jump: Float = 0
        for i in 0..<15 { jump = max(jump, abs(wrapped[i, 16, 10] - wrapped[i, 16, 9])) }
        XCTAssertGreaterThan(jump, 0)
    }

    /// Edge-profile resolution: a crystal blurred by a Gaussian of σ = 1.5 voxels reads
    /// FWHM = 2.355σ within 10%.
    func testEdgeProfileResolution() throws {
        let shape = [48, 48, 48]
        let sigma = 1.5
        let amp = try RealVolume(shape: shape, elements: Synthetic.amplitude(shape: shape, sigma: sigma))
        let sup = amp.floats.map { $0 > 0.1 ? UInt8(1) : 0 }
        let fit = try Resolution.edgeProfile(amplitude: amp, support: sup, voxelSize: 5e-9)
        XCTAssertEqual(fit.sigma, sigma * 5e-9, accuracy: 0.1 * sigma * 5e-9)
        XCTAssertEqual(fit.fwhm, 2.3548 * sigma * 5e-9, accuracy: 0.1 * 2.3548 * sigma * 5e-9)
        XCTAssertGreaterThan(fit.profiles, 100)
    }

    /// Lab resampling with a basis equal to the lab voxels reproduces the object; the extent
    /// of a box of 10×12×14 voxels of 20 nm is 0.20 × 0.24 × 0.28 µm (x, y, z).
    func testLabResamplingAndExtent() throws {
        let shape = [24, 24, 24]
        let h = 20e-9
        let basis = Matrix3x3(columns: [Vector3(0, 0, h), Vector3(0, h, 0), Vector3(h, 0, 0)])
        var mask = [UInt8](repeating: 0, count: 24 * 24 * 24)
        for i in 5..<19 { for j in 6..<18 { for k in 7..<17 { mask[(i * 24 + j) * 24 + k] = 1 } } }
        let ext = LabFrame.extent(mask: mask, shape: shape, basis: basis)
        XCTAssertEqual(ext.x, 10 * h, accuracy: 1e-12)
        XCTAssertEqual(ext.y, 12 * h, accuracy: 1e-12)
        XCTAssertEqual(ext.z, 14 * h, accuracy: 1e-12)
        let v = ComplexVolume(shape: shape) { f in Complex32(Float(f % 7), Float(f % 5)) }
        let grid = LabGrid(shape: shape, voxelSize: h, origin: basis * Vector3(-12, -12, -12))
        let out = try LabFrame.resample(v, basis: basis, onto: grid)
        XCTAssertEqual(out, v)
        let g2 = try LabGrid.enclosing(mask: mask, shape: shape, basis: basis, voxelSize: h, margin: 0)
        XCTAssertEqual(g2.shape, [15, 13, 11])
    }

    /// PRTF of runs that agree up to noise is ~1 at low q and falls off where the noise wins
    /// (below 1/e needs ≳ 8 runs: pure noise averages to 1/√runs).
    func testPRTFResolution() throws {
        let shape = [32, 32, 32]
        let amp = Synthetic.amplitude(shape: shape, sigma: 1.0, scale: 0.6)
        var rng = TestRNG(state: 11)
        let runs: [ComplexVolume] = (0..<12).map { _ in
            ComplexVolume(shape: shape) { f in
                Complex32(amp[f] + Float(rng.uniform(-0.15, 0.15)), Float(rng.uniform(-0.15, 0.15)))
            }
        }
        let steps = BraggGeometry.seedStudy.reciprocalBasis
        let r = try Resolution.prtf(runs: runs, intensity: nil, steps: steps)
        XCTAssertGreaterThan(r.prtf[0], 0.95)
        XCTAssertLessThan(r.prtf.last!, 0.8)
        let res = try XCTUnwrap(r.resolution)
        XCTAssertGreaterThan(res, 0)
    }
}

final class InputTests: XCTestCase {
    func testBadInputsNameTheState() throws {
        let a = ComplexVolume(shape: [16, 16, 16], repeating: Complex32(1, 0))
        let b = ComplexVolume(shape: [16, 16, 12], repeating: Complex32(1, 0))
        let zero = ComplexVolume(shape: [16, 16, 16], repeating: Complex32(0, 0))
        XCTAssertThrowsError(try SeriesAnalysis.run(states: [StateInput(label: "2.5 V", object: a), StateInput(label: "3.0 V", object: b)],
                                                    geometry: .seedStudy)) { e in
            XCTAssertTrue("\(e)".contains("'3.0 V'") && "\(e)".contains("shape"), "\(e)")
        }
        XCTAssertThrowsError(try SeriesAnalysis.run(states: [StateInput(label: "2.5 V", object: a), StateInput(label: "4 V", object: zero)],
                                                    geometry: .seedStudy)) { e in
            XCTAssertEqual("\(e)", "state '4 V': the reconstruction is all zeros")
        }
        var g = BraggGeometry.seedStudy
        g.twoTheta = 0
        XCTAssertThrowsError(try SeriesAnalysis.run(states: [StateInput(label: "x", object: a)], geometry: g)) { e in
            XCTAssertTrue("\(e)".contains("2θ"), "\(e)")
        }
        var nanObj = a
        nanObj[flat: 5] = Complex32(.nan, 0)
        XCTAssertThrowsError(try SeriesAnalysis.run(states: [StateInput(label: "a", object: a), StateInput(label: "bad", object: nanObj)],
                                                    geometry: .seedStudy)) { e in XCTAssertTrue("\(e)".contains("'bad'"), "\(e)") }
    }

    func testExperimentFile() throws {
        let text = """
        # the seed's series
        [geometry]
        energy_kev = 13.5
        two_theta_deg = 28.8
        distance_m = 2.8
        pixel_size_um = 55
        rocking_step_deg = 0.005
        rocking_axis = [0, 1, 0]

        [analysis]
        reference = "3.0 V"
        common_support = "union"
        voxel_nm = 12.5
        pca_fraction = 0.995

        [[state]]
        label = "2.5 V"   # charge
        voltage = 2.5
        file = "s0.npy"

        [[state]]
        label = "3.0 V"
        condition = "charge # 2"
        file = '/abs/s1.cxi'
        runs = [
          "r1.cxi",
          "r2.cxi",
        ]
        """
        let e = try Experiment.parse(text, baseDirectory: "/data/exp")
        XCTAssertEqual(e.states.count, 2)
        XCTAssertEqual(e.states[0].file, "/data/exp/s0.npy")
        XCTAssertEqual(e.states[0].condition, "2.5 V")
        XCTAssertEqual(e.states[1].condition, "charge # 2")
        XCTAssertEqual(e.states[1].file, "/abs/s1.cxi")
        XCTAssertEqual(e.states[1].runs, ["/data/exp/r1.cxi", "/data/exp/r2.cxi"])
        XCTAssertEqual(e.options.reference, 1)
        XCTAssertEqual(e.options.commonSupport, .union)
        XCTAssertEqual(e.options.labVoxelSize!, 12.5e-9, accuracy: 1e-15)
        let g = try XCTUnwrap(e.geometry)
        XCTAssertEqual(g.qMagnitude, BraggGeometry.seedStudy.qMagnitude, accuracy: 1)
        XCTAssertThrowsError(try e.checkFiles()) { err in
            XCTAssertEqual("\(err)", "experiment file: state '2.5 V': file '/data/exp/s0.npy' does not exist")
        }
        XCTAssertThrowsError(try Experiment.parse("[[state]]\nlabel = \"a\"\nfile = \"x\"\nfoo = 1\n")) { err in
            XCTAssertTrue("\(err)".contains("unknown key 'foo'"), "\(err)")
        }
        XCTAssertThrowsError(try Experiment.parse("[[state]]\nfile = \"x\nlabel = 2\n")) { err in
            XCTAssertTrue("\(err)".contains("line 2"), "\(err)")
        }
    }
}
