import Foundation

/// Sub-voxel registration of two volumes by cross-correlation.
public enum Registration {
    /// The shift (voxels per axis, circular, in (−n/2, n/2]) that best moves `moving`
    /// onto `reference`: `moving.fourierShifted(by: s)` ≈ `reference`. The peak of the
    /// FFT cross-correlation is refined to sub-voxel precision by a parabola through the
    /// peak and its two neighbours on each axis. Also returns the normalised correlation
    /// coefficient at the peak (1 for identical shapes).
    public static func shift(of moving: ComplexVolume, onto reference: ComplexVolume) throws -> (shift: [Double], correlation: Double) {
        guard moving.shape == reference.shape else {
            throw NumericsError.shapeMismatch("register \(moving.shape) onto \(reference.shape)")
        }
        let c = try moving.correlated(with: reference).modulus()
        let peak = c.argmax()
        let idx = c.index(ofFlat: peak)
        let sh = c.shape
        var shift = [Double](repeating: 0, count: sh.count)
        let p0 = Double(c[flat: peak])
        for a in 0..<sh.count {
            var lo = idx, hi = idx
            lo[a] = (idx[a] - 1 + sh[a]) % sh[a]; hi[a] = (idx[a] + 1) % sh[a]
            let pm = Double(c[flat: c.flatIndex(lo)]), pp = Double(c[flat: c.flatIndex(hi)])
            let denom = pm - 2 * p0 + pp
            let frac = sh[a] >= 3 && denom < 0 ? 0.5 * (pm - pp) / denom : 0
            var s = Double(idx[a]) + max(-0.5, min(0.5, frac))
            if s > Double(sh[a]) / 2 { s -= Double(sh[a]) }
            shift[a] = s
        }
        let norm = (moving.squaredNorm() * reference.squaredNorm()).squareRoot()
        return (shift, norm > 0 ? p0 / norm : 0)
    }

    /// Real-volume version (intensities, amplitudes).
    public static func shift(of moving: RealVolume, onto reference: RealVolume) throws -> (shift: [Double], correlation: Double) {
        try shift(of: moving.complex(), onto: reference.complex())
    }
}
