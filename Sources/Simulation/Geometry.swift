import Foundation
import Numerics

/// The diffraction geometry of a Bragg CDI rocking scan and its conjugate real-space grid.
///
/// Lab frame (right-handed, SI units; the same as Analysis' `LabGeometry`): z along the
/// incident beam, y vertical (up), x horizontal, towards the detector's side. 2θ is the
/// total scattering angle; the detector is lifted above the horizontal plane by the
/// out-of-plane angle δ, and its in-plane angle γ obeys cos 2θ = cos γ cos δ:
/// k_f = k (cos δ sin γ, sin δ, cos δ cos γ). Q = k_f − k_i. The sample frame is the lab
/// frame at the central rocking angle. With δ = 0, Q̂ = (cos θ, 0, −sin θ).
///
/// A scan is a C-order stack (frame, row, col): frame index rocks the sample by
/// `rockingStep` about `rockingAxis` (a rotation +ω of the sample moves the measured
/// point of reciprocal space by −ω â × Q); the column index follows increasing 2θ on the
/// detector, the row index runs downwards (decreasing γ), as images are stored.
public struct BraggGeometry: Equatable, Sendable, CustomStringConvertible {
    /// Photon energy, eV.
    public var energy: Double
    /// Total scattering angle 2θ, radians.
    public var twoTheta: Double
    /// Out-of-plane detector angle δ (elevation), radians.
    public var outOfPlane: Double
    /// Sample–detector distance, m.
    public var distance: Double
    /// Detector pixel size, m (square pixels).
    public var pixelSize: Double
    /// Rocking step between frames, radians.
    public var rockingStep: Double
    /// Rocking axis, a unit vector in the lab frame (default: vertical, normal to the
    /// horizontal scattering plane).
    public var rockingAxis: SIMD3<Double>

    public init(energy: Double, twoTheta: Double, outOfPlane: Double = 0, distance: Double, pixelSize: Double,
                rockingStep: Double, rockingAxis: SIMD3<Double> = SIMD3(0, 1, 0)) {
        self.energy = energy; self.twoTheta = twoTheta; self.outOfPlane = outOfPlane; self.distance = distance
        self.pixelSize = pixelSize; self.rockingStep = rockingStep; self.rockingAxis = normalized(rockingAxis)
    }

    /// The seed study's geometry (I13-1, Diamond): 13.5 keV, 2θ = 28.8°, detector at 2.8 m,
    /// 55 µm pixels, rocking steps of 0.005°. |Q| = 3.40·10¹⁰ m⁻¹ (the LCO (1 0 −5) reflection).
    public static let seedStudy = BraggGeometry(energy: 13_500, twoTheta: 28.8 * .pi / 180, outOfPlane: 0,
                                                distance: 2.8, pixelSize: 55e-6, rockingStep: 0.005 * .pi / 180)

    /// hc in eV·m (CODATA 2018).
    public static let hc = 1.239_841_984e-6

    /// Checks that every quantity is physical; throws one sentence naming the first that is not.
    public func validate() throws {
        func bad(_ s: String) -> SimulationError { .invalidParameter("geometry: " + s) }
        guard energy > 0, energy.isFinite else { throw bad("the energy must be > 0 eV (got \(energy))") }
        guard twoTheta > 0, twoTheta < .pi else { throw bad("2θ must lie between 0° and 180° (got \(twoTheta * 180 / .pi)°)") }
        guard abs(outOfPlane) <= twoTheta else { throw bad("the out-of-plane angle \(outOfPlane * 180 / .pi)° exceeds 2θ") }
        guard distance > 0, distance.isFinite else { throw bad("the detector distance must be > 0 m (got \(distance))") }
        guard pixelSize > 0, pixelSize.isFinite else { throw bad("the pixel size must be > 0 m (got \(pixelSize))") }
        guard rockingStep != 0, rockingStep.isFinite else { throw bad("the rocking step must be nonzero") }
        guard norm(cross(rockingAxis, qHat)) > 1e-3 else { throw bad("the rocking axis is parallel to Q: rocking would not move through the Bragg peak") }
    }

    /// Wavelength, m.
    public var wavelength: Double { BraggGeometry.hc / energy }
    /// Wavenumber k = 2π/λ, m⁻¹.
    public var wavenumber: Double { 2 * .pi / wavelength }
    /// Incident wavevector k_i (lab).
    public var incidentWavevector: SIMD3<Double> { SIMD3(0, 0, wavenumber) }
    /// In-plane detector angle γ (cos 2θ = cos γ cos δ), radians.
    public var inPlaneAngle: Double { acos(max(-1, min(1, cos(twoTheta) / cos(outOfPlane)))) }
    /// Unit vector towards the detector centre (lab).
    public var exitDirection: SIMD3<Double> {
        let g = inPlaneAngle
        return SIMD3(cos(outOfPlane) * sin(g), sin(outOfPlane), cos(outOfPlane) * cos(g))
    }
    /// Exit wavevector k_f at the detector centre (lab).
    public var exitWavevector: SIMD3<Double> { exitDirection * wavenumber }
    /// Scattering vector Q = k_f − k_i (lab), m⁻¹.
    public var q: SIMD3<Double> { exitWavevector - incidentWavevector }
    /// |Q| = 4π sin θ_B / λ, m⁻¹.
    public var qMagnitude: Double { norm(q) }
    /// Unit vector along Q (lab).
    public var qHat: SIMD3<Double> { normalized(q) }
    /// Bragg angle θ_B: half the total scattering angle.
    public var braggAngle: Double { twoTheta / 2 }
    /// Lattice spacing of the reflection, d = 2π/|Q|, m.
    public var dSpacing: Double { 2 * .pi / qMagnitude }

    /// Detector column direction (horizontal, increasing γ: ŷ × k̂_f normalised), ⊥ k_f.
    public var columnDirection: SIMD3<Double> { let g = inPlaneAngle; return SIMD3(cos(g), 0, -sin(g)) }
    /// Detector row direction (downwards: column × k̂_f), ⊥ k_f.
    public var rowDirection: SIMD3<Double> {
        let g = inPlaneAngle
        return SIMD3(sin(outOfPlane) * sin(g), -cos(outOfPlane), sin(outOfPlane) * cos(g))
    }

    /// Reciprocal-space steps (lab, m⁻¹) of one frame, one row and one column: the q moved
    /// by one index along each array axis of a scan (small-angle linearisation about Q).
    public var reciprocalSteps: [SIMD3<Double>] {
        let pix = wavenumber * pixelSize / distance
        return [cross(rockingAxis, q) * (-rockingStep), rowDirection * pix, columnDirection * pix]
    }

    /// q (lab, relative to the Bragg peak) at a fractional index of a centred scan of
    /// `shape` (index n/2 is the peak).
    public func qOffset(index: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        let s = reciprocalSteps
        let d = index - SIMD3(Double(shape[0] / 2), Double(shape[1] / 2), Double(shape[2] / 2))
        return s[0] * d.x + s[1] * d.y + s[2] * d.z
    }

    /// Real-space steps (lab, m) of the grid conjugate to a scan of `shape`: the vectors
    /// a_b with Δq_a · a_b = 2π δ_ab / n_a, so that the discrete Fourier transform of an
    /// object sampled on this (non-orthogonal) grid lands exactly on detector pixels and
    /// frames: A = 2π (Bᵀ)⁻¹ diag(1/n).
    public func realSpaceSteps(shape: [Int]) -> [SIMD3<Double>] {
        let b = Matrix3x3(columns: reciprocalSteps)
        let a = b.transposed.inverse
        let cols = a.columns
        return (0..<3).map { cols[$0] * (2 * .pi / Double(shape[$0])) }
    }

    /// The real-space sampling grid of a scan of `shape` (positions in metres, lab frame,
    /// the crystal's centre at the grid's centre voxel).
    public func realSpaceGrid(shape: [Int]) -> SamplingGrid {
        SamplingGrid(shape: shape, steps: realSpaceSteps(shape: shape))
    }

    /// Edge lengths (m) of a voxel of the conjugate grid along each array axis.
    public func voxelSizes(shape: [Int]) -> [Double] { realSpaceSteps(shape: shape).map(norm) }

    /// Lab position (m) of a fractional index of the conjugate grid.
    public func labPosition(index: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        realSpaceGrid(shape: shape).position(index)
    }

    /// Fractional index of the conjugate grid at a lab position (m).
    public func detectorIndex(of position: SIMD3<Double>, shape: [Int]) -> SIMD3<Double> {
        realSpaceGrid(shape: shape).index(of: position)
    }

    public var description: String {
        String(format: "E = %.1f keV, 2θ = %.3f°, δ = %.3f°, D = %.3f m, pixel = %.1f µm, rocking step = %.4f°, |Q| = %.4g m⁻¹",
               energy / 1000, twoTheta * 180 / .pi, outOfPlane * 180 / .pi, distance, pixelSize * 1e6,
               rockingStep * 180 / .pi, qMagnitude)
    }
}

/// Resampling between sampling grids (detector-conjugate ↔ orthogonal lab grids).
public enum Resampling {
    /// Values of `volume` (sampled on `source`) at the voxels of `target`, by trilinear
    /// interpolation; points outside the source grid read 0.
    public static func resample(_ volume: RealVolume, from source: SamplingGrid, to target: SamplingGrid) throws -> RealVolume {
        guard volume.shape == source.shape else {
            throw SimulationError.invalidParameter("volume of shape \(volume.shape) resampled from a grid of shape \(source.shape)")
        }
        let inv = source.basis.inverse
        let c = SIMD3<Double>(Double(source.shape[0] / 2), Double(source.shape[1] / 2), Double(source.shape[2] / 2))
        let o = source.origin
        let n0 = source.shape[0], n1 = source.shape[1], n2 = source.shape[2]
        return volume.withUnsafeFloats { src in
            let s = src.baseAddress!
            return target.evaluate { r in
                let f = inv * (r - o) + c
                let x0 = f.x.rounded(.down), x1 = f.y.rounded(.down), x2 = f.z.rounded(.down)
                let i0 = Int(x0), i1 = Int(x1), i2 = Int(x2)
                guard i0 >= -1, i1 >= -1, i2 >= -1, i0 < n0, i1 < n1, i2 < n2 else { return 0 }
                let t0 = f.x - x0, t1 = f.y - x1, t2 = f.z - x2
                var acc = 0.0
                for a in 0...1 {
                    let j0 = i0 + a
                    guard j0 >= 0 && j0 < n0 else { continue }
                    let w0 = a == 0 ? 1 - t0 : t0
                    for b in 0...1 {
                        let j1 = i1 + b
                        guard j1 >= 0 && j1 < n1 else { continue }
                        let w1 = w0 * (b == 0 ? 1 - t1 : t1)
                        for e in 0...1 {
                            let j2 = i2 + e
                            guard j2 >= 0 && j2 < n2 else { continue }
                            acc += w1 * (e == 0 ? 1 - t2 : t2) * Double(s[(j0 * n1 + j1) * n2 + j2])
                        }
                    }
                }
                return Float(acc)
            }
        }
    }

    /// The complex version (real and imaginary parts interpolated separately).
    public static func resample(_ volume: ComplexVolume, from source: SamplingGrid, to target: SamplingGrid) throws -> ComplexVolume {
        let re = try resample(volume.real(), from: source, to: target)
        let im = try resample(volume.imaginary(), from: source, to: target)
        return try ComplexVolume(real: re, imaginary: im)
    }

    /// An orthogonal lab grid (cubic voxels of `voxelSize`) that covers `source`'s extent.
    public static func labGrid(covering source: SamplingGrid, voxelSize: Double) -> SamplingGrid {
        var half = SIMD3<Double>.zero
        for a in 0..<3 { let s = source.steps[a]; half += SIMD3(abs(s.x), abs(s.y), abs(s.z)) * (Double(source.shape[a]) / 2) }
        // Lab grid axes are (z, y, x).
        let n = [half.z, half.y, half.x].map { 2 * Int(($0 / voxelSize).rounded(.up)) }
        var g = SamplingGrid.orthogonal(shape: n, voxelSize: voxelSize)
        g.origin = source.origin
        return g
    }
}
