import Foundation

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: the
/// diagonal left by the rotations (eigenvalues, unsorted) and the matrix whose column j is
/// the eigenvector of value j. Sweeps stop when the squared off-diagonal sum falls to
/// `tolerance` × max(`floor`, Σ a_ii²), or after 100 sweeps. Small Gram matrices (a PCA of
/// a series, merging a few phasing runs) are all it is for.
public func symmetricEigen(_ a0: [[Double]], tolerance: Double = 1e-22, floor: Double = 1) -> ([Double], [[Double]]) {
    let n = a0.count
    var a = a0
    var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
    for _ in 0..<100 {
        var off = 0.0
        for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
        if off <= tolerance * max(floor, (0..<n).map { a[$0][$0] * a[$0][$0] }.reduce(0, +)) { break }
        for p in 0..<n { for q in (p + 1)..<max(n, p + 1) where a[p][q] != 0 {
            let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
            let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
            let c = 1 / (t * t + 1).squareRoot(), s = t * c
            for k in 0..<n {
                let akp = a[k][p], akq = a[k][q]
                a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
            }
            for k in 0..<n {
                let apk = a[p][k], aqk = a[q][k]
                a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
            }
            for k in 0..<n {
                let vkp = v[k][p], vkq = v[k][q]
                v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
            }
        } }
    }
    return ((0..<n).map { a[$0][$0] }, v)
}
