import Foundation
import Numerics

/// How a pattern of any size is brought to the network's cubic input, and how the prediction
/// is carried back to the pattern's full grid.
///
/// What binning and cropping a diffraction pattern do to the object (per axis, the pattern
/// N pixels of width Δq, the object's voxel 2π/(NΔq), its field of view N voxels):
/// - binning by b (summing b neighbouring pixels) makes the pixel bΔq: the field of view
///   shrinks b-fold to N/b voxels, the voxel size stays, and the oversampling (field of view
///   over the object's extent) drops b-fold;
/// - cropping to n pixels keeps Δq, so the field of view stays N/b voxels, now sampled by n
///   coarser voxels of N/(nb) original voxels each: lower resolution, same oversampling.
/// The network was trained on objects filling 0.55–0.9 of half its box, an oversampling of
/// about 2.8 per axis (the object must fit in the network's half-size output), so b is the
/// largest whole factor that leaves the pattern's oversampling (estimated from its
/// autocorrelation) at least 2.8, and the crop centres the Bragg peak.
/// The prediction then has voxels of N/(nb) original voxels per axis, and its zero frequency
/// sits at the crop's centre, p pixels from the pattern's centre; carried up, the object is
/// interpolated onto the full grid and multiplied by e^{+2πi p·r/N} (with F(q) = Σρ e^{−iq·r},
/// that ramp moves its Fourier transform's centre to the pattern's Bragg peak).
public struct NeuralInputFit: Sendable, CustomStringConvertible {
    /// The full pattern's shape and the network's input edge.
    public let fullShape: [Int]
    public let inputSize: Int
    /// Binning factor per axis, the first full pixel of the binned region, and the binned shape.
    public let bin: [Int]
    public let binOrigin: [Int]
    public let binnedShape: [Int]
    /// First binned pixel of the crop (negative, or past the end: padded with masked pixels).
    public let cropStart: [Int]
    /// The Bragg peak in the binned pattern.
    public let peak: [Int]
    /// The object's oversampling per axis estimated on the full pattern.
    public let oversampling: [Double]

    /// The training patterns' oversampling per axis (objects of 0.55–0.9 of half the box).
    public static let trainingOversampling = 2.8

    /// Plans the binning and crop of `pattern` (centred intensity, 3D) for a network of input
    /// `inputSize`³.
    public static func plan(pattern: RealVolume, mask: RealVolume?, inputSize n: Int) throws -> NeuralInputFit {
        let s = pattern.shape
        guard s.count == 3 else { throw NeuralError.invalidInput("the neural method needs a 3D pattern, got shape \(s)") }
        if let m = mask, m.shape != s { throw NeuralError.invalidInput("the mask has shape \(m.shape) but the pattern \(s)") }
        let over = try autocorrelationOversampling(pattern, mask: mask)
        var bin = [Int](repeating: 1, count: 3)
        for a in 0..<3 {
            // the largest b leaving the oversampling at least the training's, and ≥ n binned pixels
            var b = max(1, Int((over[a] / trainingOversampling).rounded(.down)))
            b = min(b, max(1, s[a] / n))
            bin[a] = b
        }
        let binned = (0..<3).map { s[$0] / bin[$0] }
        let origin = (0..<3).map { (s[$0] - binned[$0] * bin[$0]) / 2 }
        let fit0 = NeuralInputFit(fullShape: s, inputSize: n, bin: bin, binOrigin: origin, binnedShape: binned,
                                  cropStart: [0, 0, 0], peak: [0, 0, 0], oversampling: over)
        let b = fit0.binned(pattern, mask: mask)
        // The Bragg peak: the brightest measured binned pixel.
        var peakFlat = 0, best: Float = -.infinity
        b.pattern.withUnsafeFloats { p in
            let m = b.mask?.withUnsafeFloats { Array($0) }
            for i in 0..<p.count where (m?[i] ?? 0) == 0 && p[i] > best { best = p[i]; peakFlat = i }
        }
        let peak = b.pattern.index(ofFlat: peakFlat)
        let start = (0..<3).map { a -> Int in
            binned[a] >= n ? min(max(peak[a] - n / 2, 0), binned[a] - n) : peak[a] - n / 2
        }
        return NeuralInputFit(fullShape: s, inputSize: n, bin: bin, binOrigin: origin, binnedShape: binned,
                              cropStart: start, peak: peak, oversampling: over)
    }

    /// Whether the pattern goes to the network unchanged.
    public var isIdentity: Bool { bin == [1, 1, 1] && fullShape == [inputSize, inputSize, inputSize] && cropStart == [0, 0, 0] }

    /// Size of one prediction voxel in full-grid voxels, per axis: N/(n·b).
    public var voxelScale: [Double] { (0..<3).map { Double(fullShape[$0]) / Double(inputSize * bin[$0]) } }

    /// Position of the network input's centre (its zero frequency, index n/2) in the full
    /// pattern, minus the full pattern's centre N/2, in full pixels (fractional for even bins).
    public var peakOffset: [Double] {
        (0..<3).map { a -> Double in
            let first = Double(binOrigin[a] + (cropStart[a] + inputSize / 2) * bin[a])
            return first + Double(bin[a] - 1) / 2 - Double(fullShape[a] / 2)
        }
    }

    public var description: String {
        func x(_ v: [Int]) -> String { v.map(String.init).joined(separator: "×") }
        func f(_ v: [Double]) -> String { v.map { String(format: "%.1f", $0) }.joined(separator: ", ") }
        let crop = (0..<3).map { cropStart[$0] >= 0 && cropStart[$0] + inputSize <= binnedShape[$0] }.allSatisfy { $0 }
        return "\(x(fullShape)) pattern (oversampling ≈ \(f(oversampling))) binned \(x(bin)) to \(x(binnedShape)), "
            + (crop ? "cropped" : "cropped/padded (masked)") + " to \(inputSize)³ around the Bragg peak at binned pixel (\(peak.map(String.init).joined(separator: ", "))); "
            + "one prediction voxel is \(voxelScale.map { String(format: "%.2f", $0) }.joined(separator: "×")) full-grid voxels"
    }

    /// The pattern (and mask) binned: each binned pixel the sum over its measured pixels,
    /// scaled by (pixels / measured pixels); masked when none of them is measured.
    func binned(_ pattern: RealVolume, mask: RealVolume?) -> (pattern: RealVolume, mask: RealVolume?) {
        let s = fullShape, m = binnedShape
        var out = RealVolume(shape: m)
        var outMask: RealVolume? = mask == nil ? nil : RealVolume(shape: m)
        var good = [Float](repeating: 0, count: m.reduce(1, *))
        let per = Float(bin.reduce(1, *))
        pattern.withUnsafeFloats { p in
            let mp = mask?.withUnsafeFloats { Array($0) }
            out.withUnsafeMutableFloats { o in
                for z in 0..<(m[0] * bin[0]) { for y in 0..<(m[1] * bin[1]) { for x in 0..<(m[2] * bin[2]) {
                    let i = ((z + binOrigin[0]) * s[1] + y + binOrigin[1]) * s[2] + x + binOrigin[2]
                    if let mp, mp[i] != 0 { continue }
                    let j = ((z / bin[0]) * m[1] + y / bin[1]) * m[2] + x / bin[2]
                    o[j] += p[i].isFinite ? max(p[i], 0) : 0; good[j] += 1
                } } }
                for j in 0..<o.count where good[j] > 0 { o[j] *= per / good[j] }
            }
        }
        if outMask != nil {
            outMask!.withUnsafeMutableFloats { o in for j in 0..<o.count { o[j] = good[j] == 0 ? 1 : 0 } }
        }
        return (out, outMask)
    }

    /// The network's input: the pattern binned, then cropped to `inputSize`³ around the peak
    /// (pixels outside the binned pattern are padded as masked).
    public func apply(_ pattern: RealVolume, mask: RealVolume?) -> (pattern: RealVolume, mask: RealVolume?) {
        let b = binned(pattern, mask: mask)
        let n = inputSize, m = binnedShape
        var out = RealVolume(shape: [n, n, n]), outMask = RealVolume(shape: [n, n, n])
        var padded = false
        b.pattern.withUnsafeFloats { p in
            let bm = b.mask?.withUnsafeFloats { Array($0) }
            out.withUnsafeMutableFloats { o in outMask.withUnsafeMutableFloats { om in
                for z in 0..<n { for y in 0..<n { for x in 0..<n {
                    let i = (z * n + y) * n + x
                    let (bz, by, bx) = (z + cropStart[0], y + cropStart[1], x + cropStart[2])
                    guard bz >= 0, bz < m[0], by >= 0, by < m[1], bx >= 0, bx < m[2] else { om[i] = 1; padded = true; continue }
                    let j = (bz * m[1] + by) * m[2] + bx
                    o[i] = p[j]; om[i] = bm?[j] ?? 0
                } } }
            } }
        }
        return (out, mask != nil || padded ? outMask : nil)
    }

    /// A prediction (centred in the network's n³ box) carried to the full grid: trilinear
    /// interpolation of the complex object at r/voxelScale (r from the full box's centre),
    /// zero outside the prediction's box, times the ramp e^{+2πi p·r/N} that puts its
    /// Fourier centre on the crop's centre. The support is the carried amplitude above
    /// `supportThreshold` of its maximum (as the prediction's own support).
    public func carryUp(_ object: ComplexVolume, supportThreshold: Float = 0.2) -> (object: ComplexVolume, support: RealVolume) {
        let n = inputSize, s = fullShape, scale = voxelScale, p = peakOffset
        // Per axis and full index: the lower prediction index, its weight's fraction, and the
        // ramp's phase (separable: the phases add, the weights multiply).
        let tables = (0..<3).map { a -> (lo: [Int], t: [Double], phase: [Double]) in
            var lo = [Int](), t = [Double](), ph = [Double]()
            for k in 0..<s[a] {
                let r = Double(k - s[a] / 2)
                let u = r / scale[a] + Double(n / 2)
                let f = u.rounded(.down)
                lo.append(Int(f)); t.append(u - f); ph.append(2 * Double.pi * p[a] * r / Double(s[a]))
            }
            return (lo, t, ph)
        }
        var out = ComplexVolume(shape: s)
        object.withUnsafeFloats { src in
            out.withUnsafeMutableFloats { dst in
                for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] {
                    let lz = tables[0].lo[z], ly = tables[1].lo[y], lx = tables[2].lo[x]
                    if lz < -1 || lz >= n || ly < -1 || ly >= n || lx < -1 || lx >= n { continue }
                    let tz = tables[0].t[z], ty = tables[1].t[y], tx = tables[2].t[x]
                    var re = 0.0, im = 0.0
                    for dz in 0...1 { for dy in 0...1 { for dx in 0...1 {
                        let kz = lz + dz, ky = ly + dy, kx = lx + dx
                        guard kz >= 0, kz < n, ky >= 0, ky < n, kx >= 0, kx < n else { continue }
                        let w = (dz == 1 ? tz : 1 - tz) * (dy == 1 ? ty : 1 - ty) * (dx == 1 ? tx : 1 - tx)
                        let idx = (kz * n + ky) * n + kx
                        re += w * Double(src[2 * idx]); im += w * Double(src[2 * idx + 1])
                    } } }
                    if re == 0 && im == 0 { continue }
                    let ph = tables[0].phase[z] + tables[1].phase[y] + tables[2].phase[x]
                    let c = cos(ph), si = sin(ph)
                    let o = 2 * ((z * s[1] + y) * s[2] + x)
                    dst[o] = Float(re * c - im * si); dst[o + 1] = Float(re * si + im * c)
                } } }
            }
        }
        let amp = out.modulus()
        let support = amp.thresholded(above: amp.maximum() * supportThreshold)
        return (out, support)
    }

    /// The oversampling per axis: the pattern's size over the object's extent, the extent
    /// being half the autocorrelation's (|F⁻¹[I]| above 5% of its peak, masked pixels 0).
    static func autocorrelationOversampling(_ pattern: RealVolume, mask: RealVolume?) throws -> [Double] {
        let s = pattern.shape
        var c = ComplexVolume(shape: s)
        pattern.withUnsafeFloats { p in
            let m = mask?.withUnsafeFloats { Array($0) }
            c.withUnsafeMutableFloats { o in
                for i in 0..<p.count where (m?[i] ?? 0) == 0 && p[i].isFinite { o[2 * i] = max(p[i], 0) }
            }
        }
        c = c.ifftshifted()
        try FFT.inverse(&c)
        let a = c.modulus()
        let t = a.maximum() * 0.05
        var reach = [0, 0, 0]
        a.withUnsafeFloats { p in
            for z in 0..<s[0] { for y in 0..<s[1] { for x in 0..<s[2] where p[(z * s[1] + y) * s[2] + x] > t {
                reach[0] = max(reach[0], min(z, s[0] - z))
                reach[1] = max(reach[1], min(y, s[1] - y))
                reach[2] = max(reach[2], min(x, s[2] - x))
            } } }
        }
        // the autocorrelation reaches ±(extent − 1) voxels
        return (0..<3).map { Double(s[$0]) / Double(max(reach[$0] + 1, 1)) }
    }
}
