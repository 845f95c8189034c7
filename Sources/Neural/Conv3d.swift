import COpenBLAS
import Foundation
import Numerics

/// A layer of the network: forward caches what backward needs; backward accumulates the
/// parameter gradients and returns the gradient with respect to the input.
public protocol Layer: AnyObject {
    var parameters: [Parameter] { get }
    func forward(_ x: Tensor) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
}

/// Scratch buffers shared by all convolutions of one network (backward runs layer by
/// layer, so one column-gradient buffer serves them all).
final class ConvScratch: @unchecked Sendable {
    private var buffer: FloatStorage?
    func columns(_ n: Int) -> UnsafeMutablePointer<Float> {
        if buffer == nil || buffer!.count < n { buffer = FloatStorage(count: n) }
        return buffer!.pointer
    }
}

/// 3×3×3 convolution, zero padding 1, stride 1 or 2 (PyTorch `Conv3d(cin, cout, 3,
/// stride, padding=1)`): output edge ⌊(n − 1)/s⌋ + 1. Computed as im2col + sgemm:
/// Y[cout, N] = W[cout, cin·27] · col[cin·27, N]. The column matrix of the forward pass
/// is kept for the weight gradient.
public final class Conv3d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    public let weight: Parameter
    public let bias: Parameter?
    /// False for a first layer whose input is data: its input gradient is never needed.
    public var computesInputGradient = true

    var inShape: [Int] = []
    var outSpatial: [Int] = []
    var col: FloatStorage?
    var output: Tensor?
    var inputGrad: Tensor?
    let scratch: ConvScratch

    init(name: String, inChannels: Int, outChannels: Int, stride: Int, bias: Bool, scratch: ConvScratch) {
        precondition(stride == 1 || stride == 2, "stride must be 1 or 2")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.scratch = scratch
        weight = Parameter(name: name + ".weight", shape: [outChannels, inChannels, 3, 3, 3])
        self.bias = bias ? Parameter(name: name + ".bias", shape: [outChannels]) : nil
    }

    public convenience init(name: String, inChannels: Int, outChannels: Int, stride: Int = 1, bias: Bool = true) {
        self.init(name: name, inChannels: inChannels, outChannels: outChannels, stride: stride, bias: bias,
                  scratch: ConvScratch())
    }

    public var parameters: [Parameter] { bias.map { [weight, $0] } ?? [weight] }

    /// He (Kaiming) normal initialisation for LeakyReLU networks; bias zero.
    public func initialise(_ rng: inout SeededGenerator, gain: Double = 2.0.squareRoot()) {
        let fanIn = Double(inChannels * 27)
        let std = gain / fanIn.squareRoot()
        let p = weight.value.pointer
        for i in 0..<weight.count { p[i] = Float(std * rng.normal()) }
        if let b = bias { b.value.pointer.update(repeating: 0, count: b.count) }
    }

    var K: Int { inChannels * 27 }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.shape.count == 4 && x.channels == inChannels,
                     "Conv3d(\(inChannels)→\(outChannels)) given input \(x.shape)")
        NeuralThreads.sync()
        let sp = x.spatial
        let os = sp.map { ($0 - 1) / stride + 1 }
        inShape = x.shape
        outSpatial = os
        let n = os.reduce(1, *)
        if col == nil || col!.count != K * n { col = FloatStorage(count: K * n) }
        if output == nil || output!.shape != [outChannels] + os { output = Tensor(shape: [outChannels] + os) }
        let y = output!
        let key = "conv\(inChannels)-\(outChannels)s\(stride)@\(sp[0])"
        NeuralProfile.time("gather " + key) {
            Im2Col.gather(x.pointer, channels: inChannels, spatial: sp, stride: stride, into: col!.pointer)
        }
        if let b = bias {
            let yp = y.pointer, bp = b.value.pointer
            for c in 0..<outChannels { (yp + c * n).update(repeating: bp[c], count: n) }
        }
        NeuralProfile.time("gemm-fwd " + key) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outChannels), Int32(n), Int32(K),
                    1, weight.value.pointer, Int32(K), col!.pointer, Int32(n),
                    bias == nil ? 0 : 1, y.pointer, Int32(n))
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        NeuralThreads.sync()
        let n = outSpatial.reduce(1, *)
        precondition(dy.count == outChannels * n, "Conv3d backward: gradient shape \(dy.shape)")
        let key = "conv\(inChannels)-\(outChannels)s\(stride)@\(inShape[1])"
        // dW += dY · colᵀ
        NeuralProfile.time("gemm-dW " + key) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(outChannels), Int32(K), Int32(n),
                    1, dy.pointer, Int32(n), col!.pointer, Int32(n), 1, weight.grad.pointer, Int32(K))
        }
        if let b = bias {
            let g = b.grad.pointer, d = dy.pointer
            for c in 0..<outChannels {
                var s: Float = 0
                let row = d + c * n
                for i in 0..<n { s += row[i] }
                g[c] += s
            }
        }
        if inputGrad == nil || inputGrad!.shape != inShape { inputGrad = Tensor(shape: inShape) }
        let dx = inputGrad!
        guard computesInputGradient else { return dx }
        // dcol = Wᵀ · dY, then scatter-add back to the input grid.
        let dcol = scratch.columns(K * n)
        NeuralProfile.time("gemm-dcol " + key) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(K), Int32(n), Int32(outChannels),
                    1, weight.value.pointer, Int32(K), dy.pointer, Int32(n), 0, dcol, Int32(n))
        }
        NeuralProfile.time("scatter " + key) {
        Im2Col.scatter(dcol, channels: inChannels, spatial: Array(inShape.dropFirst()), stride: stride,
                       into: dx.pointer)
        }
        return dx
    }
}

/// The column transforms of a 3×3×3, padding-1 convolution. Row r = (c, kz, ky, kx) of
/// the column matrix is the input channel c seen through offset (kz−1, ky−1, kx−1) on the
/// output grid; each output row segment is a contiguous (stride 1) or every-other
/// (stride 2) run of one input row, so both directions are straight copies.
enum Im2Col {
    static func gather(_ x: UnsafeMutablePointer<Float>, channels: Int, spatial: [Int], stride s: Int,
                       into col: UnsafeMutablePointer<Float>) {
        let D = spatial[0], H = spatial[1], W = spatial[2]
        let Do = (D - 1) / s + 1, Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1
        let n = Do * Ho * Wo
        let rows = channels * 27
        let xs = SendablePointer(x), cs = SendablePointer(col)
        Parallel.forEachChunk(rows, minChunk: max(1, 65_536 / max(n, 1))) { range in
            for r in range {
                let c = r / 27, k = r % 27
                let kz = k / 9, ky = (k / 3) % 3, kx = k % 3
                let src = xs.pointer + c * D * H * W
                let dst = cs.pointer + r * n
                for oz in 0..<Do {
                    let iz = oz * s + kz - 1
                    let plane = dst + oz * Ho * Wo
                    if iz < 0 || iz >= D { plane.update(repeating: 0, count: Ho * Wo); continue }
                    for oy in 0..<Ho {
                        let iy = oy * s + ky - 1
                        let d = plane + oy * Wo
                        if iy < 0 || iy >= H { d.update(repeating: 0, count: Wo); continue }
                        let row = src + (iz * H + iy) * W
                        copyRow(row, W: W, into: d, Wo: Wo, kx: kx, stride: s)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func copyRow(_ row: UnsafeMutablePointer<Float>, W: Int, into d: UnsafeMutablePointer<Float>,
                        Wo: Int, kx: Int, stride s: Int) {
        if s == 1 {
            // ix = ox + kx − 1
            var lo = 0, hi = Wo
            if kx == 0 { d[0] = 0; lo = 1 }
            if kx == 2 { d[Wo - 1] = 0; hi = Wo - 1 }
            let off = kx - 1
            var ox = lo
            while ox < hi { d[ox] = row[ox &+ off]; ox &+= 1 }
        } else {
            for ox in 0..<Wo {
                let ix = 2 &* ox &+ kx &- 1
                d[ox] = (ix >= 0 && ix < W) ? row[ix] : 0
            }
        }
    }

    /// The adjoint of `gather`: dx[c] += Σ over rows of channel c. Parallel over
    /// channels, so no two threads write the same input voxel.
    static func scatter(_ col: UnsafeMutablePointer<Float>, channels: Int, spatial: [Int], stride s: Int,
                        into dx: UnsafeMutablePointer<Float>) {
        let D = spatial[0], H = spatial[1], W = spatial[2]
        let Do = (D - 1) / s + 1, Ho = (H - 1) / s + 1, Wo = (W - 1) / s + 1
        let n = Do * Ho * Wo
        let xs = SendablePointer(dx), cs = SendablePointer(col)
        Parallel.forEachChunk(channels, minChunk: 1) { range in
            for c in range {
                let dst = xs.pointer + c * D * H * W
                dst.update(repeating: 0, count: D * H * W)
                for k in 0..<27 {
                    let kz = k / 9, ky = (k / 3) % 3, kx = k % 3
                    let src = cs.pointer + (c * 27 + k) * n
                    for oz in 0..<Do {
                        let iz = oz * s + kz - 1
                        if iz < 0 || iz >= D { continue }
                        for oy in 0..<Ho {
                            let iy = oy * s + ky - 1
                            if iy < 0 || iy >= H { continue }
                            let row = dst + (iz * H + iy) * W
                            let g = src + (oz * Ho + oy) * Wo
                            if s == 1 {
                                var lo = 0, hi = Wo
                                if kx == 0 { lo = 1 }
                                if kx == 2 { hi = Wo - 1 }
                                let off = kx - 1
                                var ox = lo
                                while ox < hi { row[ox &+ off] += g[ox]; ox &+= 1 }
                            } else {
                                for ox in 0..<Wo {
                                    let ix = 2 &* ox &+ kx &- 1
                                    if ix >= 0 && ix < W { row[ix] += g[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
