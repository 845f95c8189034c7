import Foundation
import Numerics

/// Depth inside a support and 3D phase unwrapping.
public enum Morphology {

    /// Exact Euclidean distance (in the units of `spacing`, one per axis) from every
    /// support voxel to the nearest voxel outside it; the box boundary counts as outside.
    /// Felzenszwalb–Huttenlocher lower envelopes of parabolas, one axis at a time.
    public static func depth(_ mask: [UInt8], shape s: [Int], spacing: [Double] = [1, 1, 1]) -> [Float] {
        // Pad by one background voxel on every side so the box edge is "outside".
        let p = s.map { $0 + 2 }
        let n = p[0] * p[1] * p[2]
        let big = 1e30
        var f = [Double](repeating: 0, count: n)
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] where mask[(i * s[1] + j) * s[2] + k] != 0 {
            f[((i + 1) * p[1] + j + 1) * p[2] + k + 1] = big
        } } }
        let st = [p[1] * p[2], p[2], 1]
        f.withUnsafeMutableBufferPointer { fb in
            let fp = SendablePointer(fb.baseAddress!)
            for a in 0..<3 {
                let len = p[a], sp = spacing[a]
                let others = (0..<3).filter { $0 != a }
                let lines = p[others[0]] * p[others[1]]
                Parallel.forEachChunk(lines, minChunk: 64) { range in
                    var g = [Double](repeating: 0, count: len), d = g
                    var v = [Int](repeating: 0, count: len), z = [Double](repeating: 0, count: len + 1)
                    for line in range {
                        let u = line / p[others[1]], w = line % p[others[1]]
                        let base = u * st[others[0]] + w * st[others[1]]
                        for q in 0..<len { g[q] = fp.pointer[base + q * st[a]] }
                        // Lower envelope of parabolas x ↦ g(q) + (sp·(x − q))².
                        var kk = 0
                        v[0] = 0; z[0] = -Double.infinity; z[1] = .infinity
                        for q in 1..<len {
                            var sx = 0.0
                            while true {
                                let r = v[kk]
                                sx = ((g[q] + sp * sp * Double(q * q)) - (g[r] + sp * sp * Double(r * r))) / (2 * sp * sp * Double(q - r))
                                if sx <= z[kk] && kk > 0 { kk -= 1 } else { break }
                            }
                            if sx <= z[kk] { // kk == 0 and the new parabola dominates everywhere
                                v[0] = q; z[0] = -Double.infinity; z[1] = .infinity; continue
                            }
                            kk += 1; v[kk] = q; z[kk] = sx; z[kk + 1] = .infinity
                        }
                        kk = 0
                        for q in 0..<len {
                            while z[kk + 1] < Double(q) { kk += 1 }
                            let r = v[kk], dq = sp * Double(q - r)
                            d[q] = g[r] + dq * dq
                        }
                        for q in 0..<len { fp.pointer[base + q * st[a]] = d[q] }
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: s[0] * s[1] * s[2])
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] {
            let o = (i * s[1] + j) * s[2] + k
            if mask[o] != 0 { out[o] = Float(f[((i + 1) * p[1] + j + 1) * p[2] + k + 1].squareRoot()) }
        } } }
        return out
    }

    /// The core of a support: voxels deeper than `fraction` of the largest depth.
    public static func core(depth: [Float], fraction: Double) -> [UInt8] {
        let m = depth.max() ?? 0
        let t = Float(fraction) * m
        return depth.map { $0 > 0 && $0 >= t ? 1 : 0 }
    }

    /// Quality-guided 3D phase unwrapping inside `mask`: a flood fill from `seed` that
    /// always grows from the best voxel reached so far (quality = amplitude), so the noisy
    /// low-amplitude surface is unwrapped last and its errors cannot propagate inwards.
    /// Each new voxel takes its discoverer's unwrapped phase plus the wrapped difference.
    /// Voxels of `mask` not connected to the seed stay at their wrapped phase.
    public static func unwrapPhase(_ rho: ComplexVolume, mask: [UInt8], seed: Int) -> [Float] {
        let s = rho.shape
        let n = rho.count
        let wrapped = rho.phase().floats
        let quality = rho.modulus().floats
        var out = wrapped
        var done = [UInt8](repeating: 0, count: n)
        guard seed >= 0, seed < n, mask[seed] != 0 else { return out }
        let st = [s[1] * s[2], s[2], 1]
        var heap = BinaryHeap()
        done[seed] = 1
        heap.push(quality[seed], Int32(seed))
        while let (_, cur32) = heap.pop() {
            let cur = Int(cur32)
            var rem = cur
            let i = rem / st[0]; rem %= st[0]
            let j = rem / st[1], k = rem % st[1]
            let idx = (i, j, k)
            for a in 0..<3 {
                let c = a == 0 ? idx.0 : (a == 1 ? idx.1 : idx.2)
                for d in stride(from: -1, through: 1, by: 2) {
                    let q = c + d
                    guard q >= 0, q < s[a] else { continue }
                    let g = cur + d * st[a]
                    guard mask[g] != 0, done[g] == 0 else { continue }
                    done[g] = 1
                    out[g] = out[cur] + Float(Alignment.wrap(Double(wrapped[g] - wrapped[cur])))
                    heap.push(quality[g], Int32(g))
                }
            }
        }
        return out
    }
}

/// A max-heap of (key, index) pairs for the quality-guided flood fill.
struct BinaryHeap {
    private var keys: [Float] = []
    private var vals: [Int32] = []
    var isEmpty: Bool { keys.isEmpty }

    mutating func push(_ key: Float, _ val: Int32) {
        keys.append(key); vals.append(val)
        var c = keys.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            if keys[p] >= keys[c] { break }
            keys.swapAt(p, c); vals.swapAt(p, c); c = p
        }
    }

    mutating func pop() -> (Float, Int32)? {
        guard let topK = keys.first else { return nil }
        let topV = vals[0]
        let lastK = keys.removeLast(), lastV = vals.removeLast()
        if !keys.isEmpty {
            keys[0] = lastK; vals[0] = lastV
            var p = 0
            let n = keys.count
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < n && keys[l] > keys[m] { m = l }
                if r < n && keys[r] > keys[m] { m = r }
                if m == p { break }
                keys.swapAt(p, m); vals.swapAt(p, m); p = m
            }
        }
        return (topK, topV)
    }
}
