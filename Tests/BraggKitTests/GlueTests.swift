import XCTest
@testable import BraggKit

/// The glue between stages: geometry overrides, results geometry, one shape per series.
final class GlueTests: XCTestCase {
    /// A command-line value replaces the record's, the line names both, and what derives
    /// from it follows: the real-space voxel along the detector axes grows with the distance.
    func testOverrideIsAppliedAndReported() throws {
        let record = CXIGeometry(BraggGeometry.seedStudy)
        let (merged, note) = try GeometryMerge.apply([GeometryOverride(option: "--distance", quantity: .distance, value: 3.5)],
                                                     to: record, source: "s.cxi")
        XCTAssertEqual(note, "geometry from s.cxi, overridden on the command line: --distance 3.5 m replaces 2.8 m")
        let g = try XCTUnwrap(try merged.braggGeometry())
        XCTAssertEqual(g.distance, 3.5)
        XCTAssertEqual(merged.detectorDistance, 3.5)
        let before = BraggGeometry.seedStudy.voxelSizes(shape: [32, 32, 32]), after = g.voxelSizes(shape: [32, 32, 32])
        XCTAssertEqual(after[2] / before[2], 3.5 / 2.8, accuracy: 1e-9)
        XCTAssertEqual(after[0], before[0], accuracy: 1e-9 * before[0])   // the rocking axis' step does not change
        let (same, none) = try GeometryMerge.apply([], to: record, source: "s.cxi")
        XCTAssertNil(none); XCTAssertEqual(same, record)
    }

    /// Results of a pattern binned before phasing: the object's grid has steps twice as large
    /// in reciprocal space, and the same field of view.
    func testResultsGeometryOfABinnedPattern() throws {
        let record = CXIGeometry(BraggGeometry.seedStudy)
        let full = try ResultsGeometry.carry(record, patternShape: [64, 64, 64], objectShape: [64, 64, 64])
        let binned = try ResultsGeometry.carry(record, patternShape: [64, 64, 64], objectShape: [32, 32, 32])
        let v = try XCTUnwrap(full.voxelSize), w = try XCTUnwrap(binned.voxelSize)
        for a in 0..<3 { XCTAssertEqual(w[a], v[a], accuracy: 1e-9 * v[a]) }     // 2π/(nΔq): n halves, Δq doubles
        XCTAssertEqual(binned.shape, [32, 32, 32])
        XCTAssertEqual(ResultsGeometry.voxelSizeNanometres(binned, objectShape: [32, 32, 32])?[1] ?? 0, w[1] * 1e9, accuracy: 1e-6)
        XCTAssertNil(ResultsGeometry.voxelSizeNanometres(CXIGeometry(energy: 9000), objectShape: [32, 32, 32]))
    }

    /// A crystal reconstructed from a pattern of 40 frames (voxel 32/40 of the reference's
    /// along the rocking axis) brought to the reference's 32³: it is then the reference's
    /// object, sampled on the reference's voxel.
    func testSeriesStatesOfOtherShapesShareTheReferenceVoxel() throws {
        func gaussian(_ shape: [Int], sigma: [Double]) -> ComplexVolume {
            ComplexVolume(shape: shape) { f in
                let z = f / (shape[1] * shape[2]), y = (f / shape[2]) % shape[1], x = f % shape[2]
                let d = [Double(z - shape[0] / 2) / sigma[0], Double(y - shape[1] / 2) / sigma[1], Double(x - shape[2] / 2) / sigma[2]]
                let a = exp(-0.5 * (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))
                let phase = 0.3 * Double(x - shape[2] / 2) / 16
                return Complex32(Float(a * cos(phase)), Float(a * sin(phase)))
            }
        }
        let reference = gaussian([32, 32, 32], sigma: [3, 3, 3])
        let other = gaussian([40, 32, 32], sigma: [3 * 40.0 / 32, 3, 3])
        var states = [StateInput(label: "ref", object: reference), StateInput(label: "b", object: other)]
        let messages = try SeriesShapes.conform(&states, reference: 0)
        XCTAssertEqual(messages.count, 1)
        XCTAssertTrue(messages[0].hasPrefix("state 'b': reconstruction 40×32×32 brought to the reference's 32×32×32"), messages[0])
        XCTAssertEqual(states[1].object.shape, [32, 32, 32])
        var worst: Float = 0
        let a = states[1].object.floats, b = reference.floats
        for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])) }
        XCTAssertLessThan(worst, 2e-3, "largest difference from the reference's object")
    }
}

/// The CXI geometry record: every new field reads back as written, and files of the
/// earlier layout (the detector elevation among the extras) still read.
final class CXIGeometryTests: XCTestCase {
    func testRecordRoundTripAndOldLayout() throws {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("bk-geo-\(UUID().uuidString).cxi").path
        defer { try? FileManager.default.removeItem(atPath: p) }
        var g = CXIGeometry(BraggGeometry(energy: 9000, twoTheta: 0.6, outOfPlane: 0.22, distance: 0.5, pixelSize: 55e-6,
                                          rockingStep: 1e-4))
        g.rowPixelSize = 75e-6
        g.beamline = "34idc"; g.angles = ["Delta": 32.174, "Gamma": 12.6346, "Theta": 0.21]; g.rockingCircle = "Theta"
        g.roiOrigin = [0, 256]; g.detectorShape = [512, 512]; g.peakPixel = [127, 384.5]; g.directBeam = [256, 256]
        g.notes = ["scan": "example.spec #S 54"]; g.shape = [64, 64, 64]; g.voxelSize = [1e-8, 5e-9, 5e-9]
        g.realSpaceBasis = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
        try CXIResults(pattern: RealVolume(shape: [2, 2, 2]), geometry: g).write(to: p, overwrite: true)
        XCTAssertEqual(try CXIResults.read(from: p).geometry, g)
        XCTAssertEqual(try CXIResults.readGeometry(from: p), g)

        var old = CXIGeometry(energy: 9000, twoTheta: 0.6, detectorDistance: 0.5, pixelSize: 55e-6, rockingStep: 1e-4)
        old.extra = ["out_of_plane": 0.22]
        try CXIResults(pattern: RealVolume(shape: [2, 2, 2]), geometry: old).write(to: p, overwrite: true)
        let back = try CXIResults.read(from: p).geometry
        XCTAssertEqual(back.outOfPlane, 0.22)
        XCTAssertTrue(back.extra.isEmpty)
        XCTAssertEqual(try back.braggGeometry()?.outOfPlane, 0.22)
    }
}
