import Foundation
import XCTest
import Numerics
@testable import Analysis

/// Each stage of `SeriesAnalysis.run`, alone, against a known truth.
final class SeriesStageTests: XCTestCase {
    static let shape = [32, 32, 32]

    /// (At scale 0.83 no facet passes through voxel centres, where the half-height
    /// threshold would tie.)
    static func crystal(scale: Double = 0.83) -> [Float] { Synthetic.amplitude(shape: shape, sigma: 0.8, scale: scale) }

    /// Normalise: the support is the half-height of the crystal's edge (the facets: as many
    /// voxels as lie inside the true surface), the amplitude has mean 1 over it whatever its
    /// scale, and the support rule, rescaled with the amplitude, gives the same support again.
    func testNormaliseFindsFacetsAndMeanOne() throws {
        let shape = Self.shape
        let amp = Self.crystal().map { $0 * 3.7 }
        let obj = Synthetic.object(amplitude: amp, phase: Synthetic.phase(shape: shape, weights: [0.5, 0.2, 0.1]), shape: shape)
        let st = try SeriesAnalysis.normalise(StateInput(label: "a", object: obj), options: AnalysisOptions())
        let inside = (0..<amp.count).filter { f in
            let i = f / 1024, j = (f / 32) % 32, k = f % 32
            return Synthetic.signedDistance(Vector3(Double(i - 16), Double(j - 16), Double(k - 16)), scale: 0.83) < 0
        }.count
        let count = st.support.reduce(0) { $0 + Int($1) }
        XCTAssertEqual(Double(count), Double(inside), accuracy: 0.03 * Double(inside))
        let m = st.object.modulus()
        var sum = 0.0
        m.withUnsafeFloats { a in for f in 0..<a.count where st.support[f] != 0 { sum += Double(a[f]) } }
        XCTAssertEqual(sum / Double(count), 1, accuracy: 1e-5)
        guard case .amplitudeAbove(let level) = st.supportRule else { return XCTFail("\(st.supportRule)") }
        // Half the interior level (90th percentile over the support) of the normalised amplitude.
        XCTAssertEqual(Double(level), 0.5 * Double(SeriesAnalysis.interiorLevel(m, support: st.support)), accuracy: 0.01)
        let again = st.supportRule.threshold(m)!
        XCTAssertLessThanOrEqual(zip(again, st.support).filter { $0 != $1 }.count, 2)
    }

    /// Align: a state that is the twin of the reference, moved by a known sub-voxel shift,
    /// with a known phase ramp and global phase, is recognised as the twin, moved back by
    /// that shift, and has that ramp (beyond the reference's own) removed: it then overlaps
    /// the reference to 0.99.
    func testAlignmentRemovesKnownTwinShiftAndRamp() throws {
        let shape = Self.shape
        let amp = Self.crystal()
        let ref = Synthetic.object(amplitude: amp, phase: Synthetic.phase(shape: shape, weights: [0.6, -0.3, 0.4]), shape: shape)
        let d = [1.4, -2.3, 0.6], g = [0.3, -0.2, 0.25]
        let moved = try ref.twin().fourierShifted(by: d)
        let moving = ComplexVolume(shape: shape) { f in
            let i = f / 1024, j = (f / 32) % 32, k = f % 32
            let ramp = g[0] * Double(i - 16) + g[1] * Double(j - 16) + g[2] * Double(k - 16) + 0.9
            let v = moved[flat: f]
            return Complex32(modulus: v.modulus, phase: v.phase + Float(ramp))
        }
        let options = AnalysisOptions()
        var r = try SeriesAnalysis.normalise(StateInput(label: "ref", object: ref), options: options)
        var m = try SeriesAnalysis.normalise(StateInput(label: "moving", object: moving), options: options)
        let rFree = SeriesAnalysis.removePhaseRamp(&r, options: options)
        let mFree = SeriesAnalysis.removePhaseRamp(&m, options: options)
        try SeriesAnalysis.alignToReference(&m, rampFree: mFree, referenceRampFree: rFree,
                                            referenceAmplitude: r.object.modulus(), options: options)
        XCTAssertTrue(m.twinFlipped)
        XCTAssertGreaterThan(m.twinOverlaps.twin, m.twinOverlaps.object)
        for a in 0..<3 {
            XCTAssertEqual(m.shift[a], d[a], accuracy: 0.05, "shift axis \(a)")
            let removed: Double = m.phaseRamp.radiansPerVoxel[a] - r.phaseRamp.radiansPerVoxel[a]
            XCTAssertEqual(removed, g[a], accuracy: 2e-3, "ramp axis \(a)")
        }
        let ip = try r.object.inner(m.object)
        let overlap = (Double(ip.re) * Double(ip.re) + Double(ip.im) * Double(ip.im)).squareRoot()
            / (r.object.squaredNorm() * m.object.squaredNorm()).squareRoot()
        XCTAssertGreaterThan(overlap, 0.99)
        // The support followed the object: it is the reference's, to the edge voxels.
        let differ = zip(m.support, r.support).filter { $0 != $1 }.count
        XCTAssertLessThan(Double(differ), 0.05 * Double(r.support.reduce(0) { $0 + Int($1) }))
    }

    /// Common support: three boxes 2 voxels apart along x merge into their intersection,
    /// union or majority (in 2 of 3) exactly as documented; the unwrapping seed is the
    /// deepest voxel, at the centre of the merged box; an empty merge throws.
    func testCommonSupportRulesAndCore() throws {
        let shape = Self.shape
        let obj = ComplexVolume(shape: shape) { _ in Complex32(1, 0) }
        func box(_ x0: Int) -> StateReconstruction {
            let sup: [UInt8] = (0..<obj.count).map { f in
                let i = f / 1024, j = (f / 32) % 32, k = f % 32
                return (8...23).contains(i) && (8...23).contains(j) && (x0...(x0 + 15)).contains(k) ? 1 : 0
            }
            return StateReconstruction(input: StateInput(label: "\(x0)", object: obj), object: obj, support: sup, supportRule: .given)
        }
        let states = [box(6), box(8), box(10)]
        // Cubic voxels (10 nm): the depth of a box voxel is its distance to the nearest face.
        let basis = Matrix3x3(columns: [SIMD3(1e-8, 0, 0), SIMD3(0, 1e-8, 0), SIMD3(0, 0, 1e-8)])
        for (rule, xs) in [(CommonSupportRule.intersection, 10...21), (.union, 6...25), (.majority, 8...23)] {
            let c = try SeriesAnalysis.commonMorphology(states, rule: rule, coreFraction: 0.5, basis: basis)
            XCTAssertEqual(c.indices.count, 16 * 16 * xs.count, "\(rule)")
            XCTAssertTrue(c.indices.allSatisfy { xs.contains($0 % 32) && (8...23).contains($0 / 1024) })
            XCTAssertEqual(c.support.reduce(0) { $0 + Int($1) }, c.indices.count)
            // The seed is as deep as any voxel: its distance to the merged box's nearest face
            // (boxes have ties: any voxel of the deepest set will do).
            func faceDistance(_ f: Int) -> Int {
                let i = f / 1024, j = (f / 32) % 32, k = f % 32
                return min(i - 7, 24 - i, j - 7, 24 - j, k - xs.lowerBound + 1, xs.upperBound + 1 - k)
            }
            let deepest = c.indices.map(faceDistance).max()!
            XCTAssertEqual(faceDistance(c.seed), deepest, "\(rule)")
            // The core: the voxels at least half as deep as the deepest.
            XCTAssertEqual(c.coreIndices, c.indices.filter { 2 * faceDistance($0) >= deepest }, "\(rule)")
        }
        XCTAssertThrowsError(try SeriesAnalysis.commonMorphology([box(0), box(16)], rule: .intersection, coreFraction: 0.5, basis: basis))
    }

    /// Core phase: a global phase offset is removed (the circular median over the core
    /// becomes 0), and phase differences between voxels are kept.
    func testCorePhaseRemovesGlobalOffset() throws {
        let shape = Self.shape
        let amp = Self.crystal()
        let ph = Synthetic.phase(shape: shape, weights: [0.4, 0.3, -0.2]).map { $0 + 2.8 }
        let obj = Synthetic.object(amplitude: amp, phase: ph, shape: shape)
        var st = try SeriesAnalysis.normalise(StateInput(label: "a", object: obj), options: AnalysisOptions())
        let basis = BraggGeometry.seedStudy.realSpaceBasis(shape: shape)
        let c = try SeriesAnalysis.commonMorphology([st], rule: .majority, coreFraction: 0.5, basis: basis)
        let before = st.object
        SeriesAnalysis.removeCorePhase(&st, core: c)
        let core = c.coreIndices.map { Double(st.object[flat: $0].phase) }
        XCTAssertEqual(Alignment.circularMedian(core), 0, accuracy: 1e-5)
        let shift = Alignment.wrap(Double(before[flat: c.seed].phase - st.object[flat: c.seed].phase))
        XCTAssertGreaterThan(abs(shift), 2.5)   // the 2.8 rad offset (less the domains' median) was removed
        for f in c.indices.prefix(500) {
            XCTAssertEqual(Alignment.wrap(Double(before[flat: f].phase - st.object[flat: f].phase) - shift), 0, accuracy: 1e-4)
        }
    }

    /// Strain: a linear displacement u = ε (r·Q̂) Q̂ (uniform strain along Q, phase Q·u
    /// wrapping several times) gives ε and its unwrapped phase; a shear u = ε (r·p̂) Q̂ with
    /// p̂ ⊥ Q̂ gives no strain along Q.
    func testStrainOfLinearDisplacement() throws {
        let shape = Self.shape
        let g = BraggGeometry.seedStudy
        let a = g.realSpaceBasis(shape: shape)
        let amp = Self.crystal()
        var p = cross(g.qHat, Vector3(0, 1, 0))
        p = p / norm(p)
        for (direction, eps, expected) in [(g.qHat, 2e-4, 2e-4), (p, 2e-4, 0.0)] {
            let phase: [Float] = (0..<amp.count).map { f in
                let r = a * Vector3(Double(f / 1024 - 16), Double((f / 32) % 32 - 16), Double(f % 32 - 16))
                return Float(g.qMagnitude * eps * dot(direction, r))
            }
            let obj = Synthetic.object(amplitude: amp, phase: phase, shape: shape)
            var st = try SeriesAnalysis.normalise(StateInput(label: "e", object: obj), options: AnalysisOptions())
            let c = try SeriesAnalysis.commonMorphology([st], rule: .majority, coreFraction: 0.5, basis: a)
            try SeriesAnalysis.strain(&st, common: c, basis: a, geometry: g)
            var n = 0
            for f in c.indices where st.strainValid[f] == 2 {
                XCTAssertEqual(Double(st.strain[f]), expected, accuracy: 0.01 * eps)
                n += 1
            }
            XCTAssertGreaterThan(n, 1000)
            if expected != 0 {
                let span = c.indices.map { phase[$0] }.max()! - c.indices.map { phase[$0] }.min()!
                XCTAssertGreaterThan(Double(span), 2 * .pi)   // the phase wraps
                for f in c.indices {
                    XCTAssertEqual(Double(st.unwrappedPhase[f] - st.unwrappedPhase[c.seed]), Double(phase[f] - phase[c.seed]), accuracy: 1e-3)
                }
            }
            XCTAssertTrue((0..<amp.count).allSatisfy { c.support[$0] != 0 || st.unwrappedPhase[$0] == 0 })
        }
    }
}
