import Foundation

/// A linear phase ramp exp(i g·(r − n/2)) of an object, g per array axis (z, y, x). A ramp
/// is a displaced Bragg peak (by g/2π of the sampled frequency range) or a uniform strain.
/// Stored in radians per voxel, the unit a phase gradient is measured in; read in cycles
/// per voxel where that unit is wanted (the peak's offset in frequency, the CXI record
/// `phase_ramp_removed_cycles_per_voxel`).
public struct PhaseRamp: Equatable, Sendable, CustomStringConvertible {
    public var radiansPerVoxel: [Double]

    public init(radiansPerVoxel: [Double]) { self.radiansPerVoxel = radiansPerVoxel }
    public init(cyclesPerVoxel: [Double]) { radiansPerVoxel = cyclesPerVoxel.map { 2 * Double.pi * $0 } }
    /// No ramp on a box of `rank` axes.
    public static func zero(rank: Int = 3) -> PhaseRamp { PhaseRamp(radiansPerVoxel: [Double](repeating: 0, count: rank)) }

    /// g / 2π per axis.
    public var cyclesPerVoxel: [Double] { radiansPerVoxel.map { $0 / (2 * Double.pi) } }
    public var rank: Int { radiansPerVoxel.count }

    public static prefix func - (g: PhaseRamp) -> PhaseRamp { PhaseRamp(radiansPerVoxel: g.radiansPerVoxel.map { -$0 }) }
    /// The ramp left on an object of ramp `a` once `b` is removed.
    public static func - (a: PhaseRamp, b: PhaseRamp) -> PhaseRamp {
        PhaseRamp(radiansPerVoxel: zip(a.radiansPerVoxel, b.radiansPerVoxel).map { $0 - $1 })
    }
    public var description: String { "(" + radiansPerVoxel.map { String(format: "%.6g", $0) }.joined(separator: ", ") + ") rad/voxel" }
}

extension Volume where Element == Complex32 {
    /// The linear phase ramp of the object as a whole: the circular centre of mass of the
    /// Bragg peak |F|² in frequency, 2π g_a = arg Σ_k |F_k|² e^{2πi k_a/n_a}, in (−π, π] per
    /// voxel. A ramp exp(i g·r) moves the peak by g/2π; removing it puts the object in the
    /// frame every BCDI result is reported in.
    ///
    /// By Wiener–Khinchin the sum is n times the object's circular autocorrelation at one
    /// voxel's lag, Σ_r ρ*(r) ρ(r + e_a), computed here in real space (`meanPhaseStep`).
    /// That makes it exact for a ramp on any object that does not wrap around the box,
    /// whatever its shape; the arithmetic centroid over (−1/2, 1/2] it replaces was pulled
    /// toward zero by the tails of a broad spectrum that wrap past ±1/2 (0.12 read as 0.113
    /// on a sharp-edged 32³ box) and by the Nyquist bin's lack of a sign (a ramp-free box
    /// read as −0.0012 to −0.0017). For a strained crystal it is the mean phase step between
    /// neighbours, weighted by the product of their moduli.
    public func braggPeakRamp() -> PhaseRamp {
        PhaseRamp(radiansPerVoxel: meanPhaseStep().map { $0 == -Double.pi ? Double.pi : $0 })
    }

    /// The linear phase ramp measured inside `support` (nonzero voxels): the mean phase step
    /// over the pairs of neighbours both inside it, not across the box's edge (`meanPhaseStep`).
    public func phaseRamp(inside support: [UInt8]) -> PhaseRamp {
        PhaseRamp(radiansPerVoxel: meanPhaseStep(inside: support))
    }

    /// ρ · exp(−i g·(r − n/2)): removes the ramp `g`, keeping the phase at the box centre.
    public func removingPhaseRamp(_ g: PhaseRamp) -> Volume {
        var out = self
        out.removePhaseRamp(g)
        return out
    }

    /// In place: ρ ← ρ · exp(−i g·(r − n/2)). The angle of each voxel is the sum, axis 0
    /// first, of per-axis terms g_a (i_a − ⌊n_a/2⌋) tabulated in Double.
    public mutating func removePhaseRamp(_ g: PhaseRamp) {
        precondition(g.rank == rank, "a ramp of \(g.rank) axes for a volume of shape \(shape)")
        guard rank > 0, count > 0 else { return }
        let s = shape, r = rank
        let ph = (0..<r).map { a in (0..<s[a]).map { g.radiansPerVoxel[a] * Double($0 - s[a] / 2) } }
        let last = s[r - 1], rows = count / last
        withUnsafeMutableFloats { buf in
            let p = SendablePointer(buf.baseAddress!)
            Parallel.forEachChunk(rows, minChunk: max(1, 4096 / last)) { range in
                for row in range {
                    // Axis 0 first, as (t0 + t1) + t2 for three axes.
                    var rem = row, idx = [Int](repeating: 0, count: r - 1)
                    for a in stride(from: r - 2, through: 0, by: -1) { idx[a] = rem % s[a]; rem /= s[a] }
                    var base = 0.0
                    for a in 0..<(r - 1) { base = a == 0 ? ph[0][idx[0]] : base + ph[a][idx[a]] }
                    for k in 0..<last {
                        let t = -(r == 1 ? ph[0][k] : base + ph[r - 1][k])
                        let c = Float(cos(t)), sn = Float(sin(t))
                        let f = (row &* last &+ k) &* 2
                        let re = p.pointer[f], im = p.pointer[f &+ 1]
                        p.pointer[f] = re * c - im * sn; p.pointer[f &+ 1] = re * sn + im * c
                    }
                }
            }
        }
    }
}
