import Foundation
import Numerics

/// Errors of the neural module: one sentence naming what was wrong.
public enum NeuralError: Error, CustomStringConvertible, Equatable {
    case invalidInput(String)
    case modelFile(path: String, problem: String)
    case incompatibleModel(path: String, problem: String)
    /// A checkpoint saved part-way into an epoch of at least as many pairs as the epoch now asked for.
    case checkpointPastEpoch(path: String, pairsDone: Int, samples: Int)

    public var description: String {
        switch self {
        case .invalidInput(let s): return s
        case .modelFile(let p, let s): return "model file \(p): \(s)"
        case .incompatibleModel(let p, let s): return "model file \(p) does not fit: \(s)"
        case .checkpointPastEpoch(let p, let d, let n):
            return "model file \(p): its checkpoint is \(d) pairs into an epoch, but an epoch is now \(n) pairs"
        }
    }
}

/// Loss between predicted and measured normalised Fourier amplitudes.
public enum FourierLoss: String, Sendable, CaseIterable {
    case l1, l2
}

/// The physics layer: object A·e^{iφ} (half the box per axis) → zero-padded, centred in the
/// box → FFT (F = Σ ρ e^{−iq·r}) → modulus M → normalised to the data → loss over unmasked
/// pixels. Normalisation: M̂ = M · ΣD / ΣM over unmasked pixels, where D is the measured
/// amplitude √I scaled to peak 1, so M̂ and D carry the same total. Its gradient is exact:
/// through the normalisation, the modulus (F/|F|) and the FFT's adjoint (the unnormalised
/// backward transform).
public final class FourierPhysics {
    public let box: [Int]
    public let objectShape: [Int]
    public let loss: FourierLoss
    let origin: [Int]
    let forwardPlan: FFTPlan
    let backwardPlan: FFTPlan
    /// Working field: the padded object, then its transform, then gradients (interleaved).
    let field: FloatStorage
    /// |F| of the last forward pass, FFT order.
    let modulus: FloatStorage
    /// Measured amplitude (peak 1) and validity (1 measured, 0 masked), FFT order.
    let measured: FloatStorage
    let valid: FloatStorage
    var measuredSum = 0.0
    var measuredSquares = 0.0
    var validCount = 0
    var scale = 1.0
    var amplitudeIn: Tensor?
    var phaseIn: Tensor?
    var gradA: Tensor?
    var gradPhi: Tensor?
    /// χ² of the seed's Eq. (1) for the last forward pass.
    public private(set) var chi2 = Double.nan

    public init(box: [Int], objectShape: [Int], loss: FourierLoss = .l1) throws {
        guard box.count == 3, objectShape.count == 3, zip(box, objectShape).allSatisfy({ $0 >= $1 && $1 > 0 }) else {
            throw NeuralError.invalidInput("an object of shape \(objectShape) does not fit a box of \(box)")
        }
        self.box = box
        self.objectShape = objectShape
        self.loss = loss
        origin = (0..<3).map { box[$0] / 2 - objectShape[$0] / 2 }
        // FFTW threads pay only at 256³ here (SWIFT-NUMERICS.md); one thread below.
        let t = box.reduce(1, *) >= 256 * 256 * 256 ? Parallel.threads : 1
        // FFTW_ESTIMATE picks its plan without timing, so the rounding of every step is the
        // same run after run (MEASURE may choose another plan each time, and training for a
        // given seed and thread count must repeat). The FFT is a small part of a step.
        forwardPlan = try FFTPlanner.plan(shape: box, direction: .forward, inPlace: true, threads: t, effort: .estimate)
        backwardPlan = try FFTPlanner.plan(shape: box, direction: .backward, inPlace: true, threads: t, effort: .estimate)
        let n = box.reduce(1, *)
        field = FloatStorage(count: 2 * n)
        modulus = FloatStorage(count: n)
        measured = FloatStorage(count: n)
        valid = FloatStorage(count: n)
    }

    /// Sets the measured pattern: centred intensity (zero frequency at n/2) and an optional
    /// mask (nonzero = bad pixel). Negative counts are treated as zero.
    public func setTarget(intensity: RealVolume, mask: RealVolume? = nil) throws {
        guard intensity.shape == box else {
            throw NeuralError.invalidInput("the pattern has shape \(intensity.shape) but the physics layer expects \(box)")
        }
        if let m = mask, m.shape != box {
            throw NeuralError.invalidInput("the mask has shape \(m.shape) but the pattern has \(box)")
        }
        let amp = FourierPhysics.normalisedAmplitude(intensity: intensity, mask: mask).ifftshifted()
        let bad = mask?.ifftshifted()
        amp.withUnsafeFloats { a in measured.pointer.update(from: a.baseAddress!, count: a.count) }
        let n = box.reduce(1, *)
        let v = valid.pointer
        if let bad {
            bad.withUnsafeFloats { b in for i in 0..<n { v[i] = b[i] != 0 ? 0 : 1 } }
        } else {
            v.update(repeating: 1, count: n)
        }
        var s = 0.0, s2 = 0.0, c = 0
        let d = measured.pointer
        for i in 0..<n where v[i] != 0 { s += Double(d[i]); s2 += Double(d[i]) * Double(d[i]); c += 1 }
        guard c > 0, s > 0 else { throw NeuralError.invalidInput("the pattern has no measured counts outside the mask") }
        measuredSum = s; measuredSquares = s2; validCount = c
    }

    /// √I scaled to peak 1 over unmasked pixels (the network's input and the loss target).
    public static func normalisedAmplitude(intensity: RealVolume, mask: RealVolume?) -> RealVolume {
        var a = RealVolume(shape: intensity.shape)
        var peak: Float = 0
        intensity.withUnsafeFloats { ip in
            a.withUnsafeMutableFloats { ap in
                for i in 0..<ip.count { ap[i] = max(ip[i], 0).squareRoot() }
                if let m = mask {
                    m.withUnsafeFloats { mp in
                        for i in 0..<ip.count where mp[i] == 0 { peak = max(peak, ap[i]) }
                        for i in 0..<ip.count where mp[i] != 0 { ap[i] = 0 }
                    }
                } else {
                    for i in 0..<ip.count { peak = max(peak, ap[i]) }
                }
                if peak > 0 { let s = 1 / peak; for i in 0..<ip.count { ap[i] *= s } }
            }
        }
        return a
    }

    /// Forms the object, transforms it and returns the loss; keeps what `backward` needs.
    @discardableResult
    public func forward(amplitude: Tensor, phase: Tensor) -> Double {
        precondition(amplitude.spatial == objectShape && phase.spatial == objectShape,
                     "physics layer expects objects of \(objectShape), got \(amplitude.shape), \(phase.shape)")
        amplitudeIn = amplitude; phaseIn = phase
        let f = field.pointer
        let n = box.reduce(1, *)
        f.update(repeating: 0, count: 2 * n)
        let (d, h, w) = (objectShape[0], objectShape[1], objectShape[2])
        let (H, W) = (box[1], box[2])
        let ap = amplitude.pointer, pp = phase.pointer
        let o = origin
        Parallel.forEachChunk(d, minChunk: 1) { zr in
            for z in zr { for y in 0..<h {
                let src = (z * h + y) * w
                let dst = ((z + o[0]) * H + (y + o[1])) * W + o[2]
                for x in 0..<w {
                    let a = ap[src + x], p = pp[src + x]
                    f[2 * (dst + x)] = a * cos(p)
                    f[2 * (dst + x) + 1] = a * sin(p)
                }
            } }
        }
        forwardPlan.execute(f, f)
        let m = modulus.pointer, v = valid.pointer
        let sumM = Parallel.sum(n, minChunk: 32_768) { r in
            var s = 0.0
            var fs: Float = 0
            var k = 0
            for i in r {
                let re = f[2 * i], im = f[2 * i + 1]
                let mod = (re * re + im * im).squareRoot()
                m[i] = mod
                fs += mod * v[i]
                k += 1
                if k == 4096 { s += Double(fs); fs = 0; k = 0 }
            }
            return s + Double(fs)
        }
        scale = sumM > 0 ? measuredSum / sumM : 0
        let sc = Float(scale), dp = measured.pointer
        let kind = loss
        // loss and χ² of Eq. (1) (model intensity scaled so that Σ model² = Σ data² over measured pixels)
        let l = Parallel.sum(n, minChunk: 32_768) { r in
            var s = 0.0
            for i in r where v[i] != 0 {
                let e = Double(m[i] * sc - dp[i])
                s += kind == .l1 ? abs(e) : e * e
            }
            return s
        }
        let modSq = Parallel.sum(n, minChunk: 32_768) { r in
            var s = 0.0
            for i in r where v[i] != 0 { s += Double(m[i]) * Double(m[i]) }
            return s
        }
        let cross = Parallel.sum(n, minChunk: 32_768) { r in
            var s = 0.0
            for i in r where v[i] != 0 { s += Double(dp[i]) * Double(m[i]) }
            return s
        }
        chi2 = ChiSquare.eq1(dataModelAmplitudes: cross, model: modSq, data: measuredSquares)
        return l / Double(validCount)
    }

    /// Gradients of the last forward's loss with respect to amplitude and phase.
    public func backward() -> (amplitude: Tensor, phase: Tensor) {
        let n = box.reduce(1, *)
        let f = field.pointer, m = modulus.pointer, v = valid.pointer, dp = measured.pointer
        let sc = Float(scale)
        let kind = loss
        let inv = 1 / Float(validCount)
        // g = ∂L/∂M̂; t = Σ g M̂ (over measured pixels)
        let t = Parallel.sum(n, minChunk: 32_768) { r in
            var s = 0.0
            for i in r where v[i] != 0 {
                let mh = m[i] * sc
                let e = mh - dp[i]
                let g = kind == .l1 ? (e > 0 ? inv : (e < 0 ? -inv : 0)) : 2 * e * inv
                s += Double(g * mh)
            }
            return s
        }
        let tOverSD = Float(t / measuredSum)
        Parallel.forEachChunk(n, minChunk: 32_768) { r in
            for i in r {
                let mod = m[i]
                var gm: Float = 0
                if v[i] != 0 {
                    let e = mod * sc - dp[i]
                    let g = kind == .l1 ? (e > 0 ? inv : (e < 0 ? -inv : 0)) : 2 * e * inv
                    gm = sc * (g - tOverSD)
                }
                // ∂L/∂F = ∂L/∂M · F/|F|
                let k = mod > 1e-20 ? gm / mod : 0
                f[2 * i] *= k
                f[2 * i + 1] *= k
            }
        }
        backwardPlan.execute(f, f)
        let shape = [1] + objectShape
        if gradA == nil { gradA = Tensor(shape: shape); gradPhi = Tensor(shape: shape) }
        let (d, h, w) = (objectShape[0], objectShape[1], objectShape[2])
        let (H, W) = (box[1], box[2])
        let ap = amplitudeIn!.pointer, pp = phaseIn!.pointer
        let ga = gradA!.pointer, gp = gradPhi!.pointer
        let o = origin
        Parallel.forEachChunk(d, minChunk: 1) { zr in
            for z in zr { for y in 0..<h {
                let src = (z * h + y) * w
                let dst = ((z + o[0]) * H + (y + o[1])) * W + o[2]
                for x in 0..<w {
                    let gr = f[2 * (dst + x)], gi = f[2 * (dst + x) + 1]
                    let p = pp[src + x], c = cos(p), s = sin(p)
                    ga[src + x] = gr * c + gi * s
                    gp[src + x] = ap[src + x] * (gi * c - gr * s)
                }
            } }
        }
        return (gradA!, gradPhi!)
    }

    /// The predicted normalised amplitude M̂ of the last forward pass, centred.
    public func predictedAmplitude() -> RealVolume {
        var v = RealVolume(shape: box)
        let m = modulus.pointer, sc = Float(scale)
        v.withUnsafeMutableFloats { p in for i in 0..<p.count { p[i] = m[i] * sc } }
        return v.fftshifted()
    }

    /// The complex object A·e^{iφ} placed centred in the full box (the reconstruction).
    public static func object(amplitude: Tensor, phase: Tensor, box: [Int]) -> ComplexVolume {
        var obj = ComplexVolume(shape: amplitude.spatial)
        let ap = amplitude.pointer, pp = phase.pointer
        obj.withUnsafeMutableFloats { o in
            for i in 0..<amplitude.count {
                o[2 * i] = ap[i] * cos(pp[i]); o[2 * i + 1] = ap[i] * sin(pp[i])
            }
        }
        return try! obj.centred(in: box)
    }
}
