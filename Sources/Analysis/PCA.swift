import Foundation
import Numerics

/// Principal component analysis of a series of phase-difference maps, the seed's
/// Eqs. (2)–(4).
public struct PhasePCA: Sendable {
    /// Eigenvalues of C = Σ Δφᵢ ⊗ Δφᵢ (rad²), largest first (the nonzero ones are those of
    /// the Gram matrix Gᵢⱼ = Δφᵢ·Δφⱼ).
    public var eigenvalues: [Double]
    /// λₖ / Σλ.
    public var explainedVariance: [Double]
    /// Order parameters Ωᵢ = ψ₁·Δφᵢ (rad), sign chosen so the largest |Ω| is positive.
    public var omega: [Double]
    /// Ωᵢ / max|Ω|.
    public var omegaNormalised: [Double]
    /// ψ₁ on the voxels of the common support (unit norm).
    public var component: [Float]
    /// Inverse PCA (Eq. 4, read as the map of what drives ψ₁): the smallest set of voxels
    /// holding `regionFraction` of Σψ₁², 1 inside.
    public var region: [UInt8]
    public var regionFraction: Double

    /// `differences`: one Δφᵢ per state, each on the same list of common-support voxels.
    /// Uses the N×N Gram matrix (never the voxel×voxel covariance): ψ₁ = Σᵢ vᵢ Δφᵢ / √λ₁.
    public init(differences: [[Float]], regionFraction: Double = 0.99) throws {
        guard regionFraction > 0, regionFraction <= 1 else {
            throw AnalysisError.badOption("the inverse-PCA fraction must lie in (0, 1], got \(regionFraction)")
        }
        let k = differences.count
        guard k >= 1, let m = differences.first?.count, m > 0 else { throw AnalysisError.emptySupport("no voxels for the PCA") }
        var g = [Double](repeating: 0, count: k * k)
        for i in 0..<k { for j in i..<k {
            let a = differences[i], b = differences[j]
            let v = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                Parallel.sum(m) { r in var acc = 0.0; for t in r { acc += Double(pa[t]) * Double(pb[t]) }; return acc }
            } }
            g[i * k + j] = v; g[j * k + i] = v
        } }
        // Numerics' one Jacobi solver; its stop (full off-diagonal sum against the diagonal)
        // at 2e-30 matches the upper-triangle test at 1e-30 this PCA had.
        let (diag, columns) = symmetricEigen((0..<k).map { i in Array(g[(i * k)..<(i * k + k)]) }, tolerance: 2e-30)
        let order = (0..<k).sorted { diag[$0] > diag[$1] }
        let vals = order.map { diag[$0] }
        var vecs = [Double](repeating: 0, count: k * k)   // row-major, column c = eigenvector of vals[c]
        for (c, o) in order.enumerated() { for r in 0..<k { vecs[r * k + c] = columns[r][o] } }
        eigenvalues = vals.map { max(0, $0) }
        let total = eigenvalues.reduce(0, +)
        explainedVariance = eigenvalues.map { total > 0 ? $0 / total : 0 }
        let l1 = eigenvalues[0]
        var v1 = (0..<k).map { vecs[$0 * k] }
        var om = v1.map { $0 * l1.squareRoot() }
        if let big = om.max(by: { abs($0) < abs($1) }), big < 0 { om = om.map { -$0 }; v1 = v1.map { -$0 } }
        omega = om
        let mx = om.map(abs).max() ?? 0
        omegaNormalised = om.map { mx > 0 ? $0 / mx : 0 }
        var psi = [Float](repeating: 0, count: m)
        if l1 > 0 {
            let inv = 1 / l1.squareRoot()
            for i in 0..<k where v1[i] != 0 {
                let c = Float(v1[i] * inv)
                differences[i].withUnsafeBufferPointer { d in for t in 0..<m { psi[t] += c * d[t] } }
            }
        }
        component = psi
        self.regionFraction = regionFraction
        // The region: voxels sorted by ψ₁², accumulated until the fraction is reached.
        let w = psi.map { Double($0) * Double($0) }
        let wsum = w.reduce(0, +)
        var reg = [UInt8](repeating: 0, count: m)
        if wsum > 0 {
            let order = (0..<m).sorted { w[$0] > w[$1] }
            var acc = 0.0
            for t in order {
                reg[t] = 1; acc += w[t]
                if acc >= regionFraction * wsum { break }
            }
        }
        region = reg
    }
}
