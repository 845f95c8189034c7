import Foundation
import Numerics

/// Learning-rate schedules: constant, cosine annealing with linear warm-up, or cyclic
/// (triangular, Smith 2017).
public enum LearningRateSchedule: Sendable, Equatable {
    case constant(Double)
    /// Linear warm-up over `warmup` steps to `peak`, then cosine decay to `floor` at `total`.
    case cosine(peak: Double, floor: Double, warmup: Int, total: Int)
    /// Triangular cycles between `low` and `high`, `period` steps per cycle.
    case cyclic(low: Double, high: Double, period: Int)

    public func rate(at step: Int) -> Double {
        switch self {
        case .constant(let r): return r
        case .cosine(let peak, let floor, let warmup, let total):
            if step < warmup { return peak * Double(step + 1) / Double(max(1, warmup)) }
            let t = min(1, Double(step - warmup) / Double(max(1, total - warmup)))
            return floor + 0.5 * (peak - floor) * (1 + cos(Double.pi * t))
        case .cyclic(let low, let high, let period):
            let p = max(2, period)
            let phase = Double(step % p) / Double(p)
            let tri = phase < 0.5 ? 2 * phase : 2 - 2 * phase
            return low + (high - low) * tri
        }
    }
}

/// Adam (Kingma & Ba 2014) with decoupled weight decay (AdamW, Loshchilov & Hutter 2019)
/// when `weightDecay` > 0. Moments are kept per parameter, by name, so they can be saved.
public final class AdamW {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float
    public var schedule: LearningRateSchedule
    /// Steps taken so far (the bias correction uses it).
    public var step: Int = 0
    /// Largest gradient norm allowed before clipping (0: no clipping).
    public var clipNorm: Double
    let parameters: [Parameter]
    var m: [FloatStorage]
    var v: [FloatStorage]

    public init(parameters: [Parameter], schedule: LearningRateSchedule, weightDecay: Float = 0,
                clipNorm: Double = 0) {
        self.parameters = parameters
        self.schedule = schedule
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        m = parameters.map { FloatStorage(count: $0.count) }
        v = parameters.map { FloatStorage(count: $0.count) }
    }

    /// Global L2 norm of all gradients.
    public func gradientNorm() -> Double {
        var s = 0.0
        for p in parameters {
            let g = p.grad.pointer
            for i in 0..<p.count { s += Double(g[i]) * Double(g[i]) }
        }
        return s.squareRoot()
    }

    /// Applies one update with the gradients currently accumulated (divided by `batch`).
    public func update(batch: Int = 1) {
        let lr = Float(schedule.rate(at: step))
        step += 1
        var gscale = 1 / Float(max(1, batch))
        if clipNorm > 0 {
            let norm = gradientNorm() * Double(gscale)
            if norm > clipNorm { gscale *= Float(clipNorm / norm) }
        }
        let b1 = beta1, b2 = beta2, e = eps
        let c1 = 1 / (1 - pow(b1, Float(step))), c2 = 1 / (1 - pow(b2, Float(step)))
        let decay = 1 - lr * weightDecay
        for (k, p) in parameters.enumerated() {
            let w = p.value.pointer, g = p.grad.pointer, mp = m[k].pointer, vp = v[k].pointer
            for i in 0..<p.count {
                let gi = g[i] * gscale
                mp[i] = b1 * mp[i] + (1 - b1) * gi
                vp[i] = b2 * vp[i] + (1 - b2) * gi * gi
                let mh = mp[i] * c1, vh = vp[i] * c2
                w[i] = w[i] * decay - lr * mh / (vh.squareRoot() + e)
            }
        }
    }

    /// The moment arrays, named "<param>.adam_m" / ".adam_v", for checkpoints.
    /// `package`: raw storage, for this package's checkpoint writer.
    package var stateTensors: [(name: String, shape: [Int], values: FloatStorage)] {
        var out: [(String, [Int], FloatStorage)] = []
        for (k, p) in parameters.enumerated() {
            out.append((p.name + ".adam_m", p.shape, m[k]))
            out.append((p.name + ".adam_v", p.shape, v[k]))
        }
        return out
    }
}
