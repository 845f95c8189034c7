import Foundation
import Numerics

/// LeakyReLU with negative slope 0.01 (PyTorch's default).
public final class LeakyReLU: Layer {
    public let slope: Float
    var input: Tensor?
    var output: Tensor?
    var inputGrad: Tensor?
    public init(slope: Float = 0.01) { self.slope = slope }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor) -> Tensor {
        input = x
        if output == nil || output!.shape != x.shape { output = Tensor(shape: x.shape) }
        let a = x.pointer, y = output!.pointer, s = slope
        Parallel.forEachChunk(x.count, minChunk: 65_536) { r in
            for i in r { let v = a[i]; y[i] = v > 0 ? v : v * s }
        }
        return output!
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let x = input!
        if inputGrad == nil || inputGrad!.shape != x.shape { inputGrad = Tensor(shape: x.shape) }
        let a = x.pointer, g = dy.pointer, d = inputGrad!.pointer, s = slope
        Parallel.forEachChunk(x.count, minChunk: 65_536) { r in
            for i in r { d[i] = a[i] > 0 ? g[i] : g[i] * s }
        }
        return inputGrad!
    }
}

/// Group normalisation (Wu & He 2018): statistics over each group of channels of one
/// sample, so it behaves the same at batch size 1 in training and inference. Per-channel
/// scale γ (init 1) and shift β (init 0). ε = 1e-5 as PyTorch.
public final class GroupNorm: Layer {
    public let groups: Int
    public let channels: Int
    public let eps: Float = 1e-5
    public let gamma: Parameter
    public let beta: Parameter
    var xhat: Tensor?
    var invStd: [Float] = []
    var output: Tensor?
    var inputGrad: Tensor?

    public init(name: String, groups: Int, channels: Int) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels in \(groups) groups")
        self.groups = groups
        self.channels = channels
        gamma = Parameter(name: name + ".weight", shape: [channels])
        beta = Parameter(name: name + ".bias", shape: [channels])
        gamma.value.pointer.update(repeating: 1, count: channels)
    }

    public var parameters: [Parameter] { [gamma, beta] }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.channels == channels, "GroupNorm(\(channels)) given \(x.shape)")
        if output == nil || output!.shape != x.shape {
            output = Tensor(shape: x.shape); xhat = Tensor(shape: x.shape)
        }
        invStd = [Float](repeating: 0, count: groups)
        let n = x.voxelsPerChannel, cpg = channels / groups, m = cpg * n
        let xp = x.pointer, hp = xhat!.pointer, yp = output!.pointer
        let gp = gamma.value.pointer, bp = beta.value.pointer
        invStd.withUnsafeMutableBufferPointer { istd in
            let isp = SendablePointer(istd.baseAddress!)
            Parallel.forEachChunk(groups, minChunk: 1) { range in
                for g in range {
                    let base = g * m
                    var s = 0.0, s2 = 0.0
                    // Two-level sums in Double: Float accumulation drifts at 64³.
                    var i = 0
                    while i < m {
                        let e = min(m, i + 4096)
                        var fs: Float = 0, fs2: Float = 0
                        for j in i..<e { let v = xp[base + j]; fs += v; fs2 += v * v }
                        s += Double(fs); s2 += Double(fs2); i = e
                    }
                    let mean = s / Double(m)
                    let variance = max(0, s2 / Double(m) - mean * mean)
                    let inv = Float(1 / (variance + Double(eps)).squareRoot())
                    isp.pointer[g] = inv
                    let mu = Float(mean)
                    for c in 0..<cpg {
                        let ch = g * cpg + c
                        let off = ch * n
                        let ga = gp[ch], be = bp[ch]
                        for j in 0..<n {
                            let h = (xp[off + j] - mu) * inv
                            hp[off + j] = h
                            yp[off + j] = h * ga + be
                        }
                    }
                }
            }
        }
        return output!
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = xhat!.shape
        if inputGrad == nil || inputGrad!.shape != shape { inputGrad = Tensor(shape: shape) }
        let n = xhat!.voxelsPerChannel, cpg = channels / groups, m = cpg * n
        let hp = xhat!.pointer, gyp = dy.pointer, dxp = inputGrad!.pointer
        let gp = gamma.value.pointer
        let dgp = gamma.grad.pointer, dbp = beta.grad.pointer
        var dGamma = [Double](repeating: 0, count: channels)
        var dBeta = [Double](repeating: 0, count: channels)
        dGamma.withUnsafeMutableBufferPointer { dg in dBeta.withUnsafeMutableBufferPointer { db in
            let dgs = SendablePointer(dg.baseAddress!), dbs = SendablePointer(db.baseAddress!)
            let istd = invStd
            Parallel.forEachChunk(groups, minChunk: 1) { range in
                for g in range {
                    // dx = inv · (dxhat − mean(dxhat) − xhat · mean(dxhat · xhat)), dxhat = γ dy
                    var sumD = 0.0, sumDH = 0.0
                    for c in 0..<cpg {
                        let ch = g * cpg + c, off = ch * n
                        var a: Float = 0, b: Float = 0, cs = 0.0, ch2 = 0.0
                        var j = 0
                        while j < n {
                            let e = min(n, j + 4096)
                            var fa: Float = 0, fb: Float = 0
                            for i in j..<e { let d = gyp[off + i], h = hp[off + i]; fa += d; fb += d * h }
                            cs += Double(fa); ch2 += Double(fb); j = e
                        }
                        a = Float(cs); b = Float(ch2)
                        dbs.pointer[ch] = cs
                        dgs.pointer[ch] = ch2
                        sumD += Double(gp[ch]) * Double(a)
                        sumDH += Double(gp[ch]) * Double(b)
                    }
                    let meanD = Float(sumD / Double(m)), meanDH = Float(sumDH / Double(m))
                    let inv = istd[g]
                    for c in 0..<cpg {
                        let ch = g * cpg + c, off = ch * n
                        let ga = gp[ch]
                        for i in 0..<n {
                            let h = hp[off + i]
                            dxp[off + i] = inv * (ga * gyp[off + i] - meanD - h * meanDH)
                        }
                    }
                }
            }
        } }
        for c in 0..<channels { dgp[c] += Float(dGamma[c]); dbp[c] += Float(dBeta[c]) }
        return inputGrad!
    }
}

/// Trilinear ×2 upsampling, PyTorch `Upsample(scale_factor=2, mode="trilinear",
/// align_corners=False)`: along each axis out[2i] = ¾x[i] + ¼x[i−1], out[2i+1] = ¾x[i] +
/// ¼x[i+1], indices clamped at the edges. Done as three separable 1D passes.
public final class Upsample2x: Layer {
    var inShape: [Int] = []
    var t1: Tensor?, t2: Tensor?, output: Tensor?
    var g1: Tensor?, g2: Tensor?, inputGrad: Tensor?
    public init() {}
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor) -> Tensor {
        inShape = x.shape
        let C = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
        let s1 = [C, D, H, 2 * W], s2 = [C, D, 2 * H, 2 * W], s3 = [C, 2 * D, 2 * H, 2 * W]
        if output == nil || output!.shape != s3 {
            t1 = Tensor(shape: s1); t2 = Tensor(shape: s2); output = Tensor(shape: s3)
        }
        Upsample2x.pass(x.pointer, outer: C * D * H, n: W, inner: 1, into: t1!.pointer)
        Upsample2x.pass(t1!.pointer, outer: C * D, n: H, inner: 2 * W, into: t2!.pointer)
        Upsample2x.pass(t2!.pointer, outer: C, n: D, inner: 4 * H * W, into: output!.pointer)
        return output!
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let C = inShape[0], D = inShape[1], H = inShape[2], W = inShape[3]
        if inputGrad == nil || inputGrad!.shape != inShape {
            g2 = Tensor(shape: [C, D, 2 * H, 2 * W]); g1 = Tensor(shape: [C, D, H, 2 * W])
            inputGrad = Tensor(shape: inShape)
        }
        Upsample2x.adjoint(dy.pointer, outer: C, n: D, inner: 4 * H * W, into: g2!.pointer)
        Upsample2x.adjoint(g2!.pointer, outer: C * D, n: H, inner: 2 * W, into: g1!.pointer)
        Upsample2x.adjoint(g1!.pointer, outer: C * D * H, n: W, inner: 1, into: inputGrad!.pointer)
        return inputGrad!
    }

    /// Doubles the middle axis of an (outer, n, inner) array.
    static func pass(_ x: UnsafeMutablePointer<Float>, outer: Int, n: Int, inner: Int,
                     into y: UnsafeMutablePointer<Float>) {
        Parallel.forEachChunk(outer, minChunk: max(1, 16_384 / max(1, n * inner))) { range in
            for o in range {
                let src = x + o * n * inner, dst = y + o * 2 * n * inner
                for i in 0..<n {
                    let a = src + i * inner
                    let lo = src + max(i - 1, 0) * inner, hi = src + min(i + 1, n - 1) * inner
                    let e = dst + 2 * i * inner, f = e + inner
                    for k in 0..<inner {
                        e[k] = 0.75 * a[k] + 0.25 * lo[k]
                        f[k] = 0.75 * a[k] + 0.25 * hi[k]
                    }
                }
            }
        }
    }

    /// The transpose of `pass`.
    static func adjoint(_ g: UnsafeMutablePointer<Float>, outer: Int, n: Int, inner: Int,
                        into dx: UnsafeMutablePointer<Float>) {
        Parallel.forEachChunk(outer, minChunk: max(1, 16_384 / max(1, n * inner))) { range in
            for o in range {
                let src = g + o * 2 * n * inner, dst = dx + o * n * inner
                dst.update(repeating: 0, count: n * inner)
                for i in 0..<n {
                    let a = dst + i * inner
                    let lo = dst + max(i - 1, 0) * inner, hi = dst + min(i + 1, n - 1) * inner
                    let e = src + 2 * i * inner, f = e + inner
                    for k in 0..<inner {
                        a[k] += 0.75 * (e[k] + f[k])
                        lo[k] += 0.25 * e[k]
                        hi[k] += 0.25 * f[k]
                    }
                }
            }
        }
    }
}

/// Output heads: sigmoid (amplitude in 0…1) or π·tanh (phase in −π…π).
public final class HeadActivation: Layer {
    public enum Kind: String, Sendable { case sigmoid, piTanh }
    public let kind: Kind
    var output: Tensor?
    var inputGrad: Tensor?
    public init(_ kind: Kind) { self.kind = kind }
    public var parameters: [Parameter] { [] }

    public func forward(_ x: Tensor) -> Tensor {
        if output == nil || output!.shape != x.shape { output = Tensor(shape: x.shape) }
        let a = x.pointer, y = output!.pointer
        switch kind {
        case .sigmoid: for i in 0..<x.count { y[i] = 1 / (1 + exp(-a[i])) }
        case .piTanh: for i in 0..<x.count { y[i] = Float.pi * tanh(a[i]) }
        }
        return output!
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let y = output!
        if inputGrad == nil || inputGrad!.shape != y.shape { inputGrad = Tensor(shape: y.shape) }
        let yp = y.pointer, g = dy.pointer, d = inputGrad!.pointer
        switch kind {
        case .sigmoid: for i in 0..<y.count { d[i] = g[i] * yp[i] * (1 - yp[i]) }
        case .piTanh:
            let ip = 1 / Float.pi
            for i in 0..<y.count { let t = yp[i] * ip; d[i] = g[i] * Float.pi * (1 - t * t) }
        }
        return inputGrad!
    }
}
