import Foundation
import Numerics

/// Timings of the network's kernels (used by `bragg bench nn`).
public enum NeuralBenchmark {
    public struct Result: Sendable {
        public var size: Int
        public var width: Int
        public var threads: Int
        public var parameters: Int
        /// Median seconds of one training step (forward + physics + backward + AdamW).
        public var trainingStep: Double
        /// Median seconds of one inference (forward only, plus the physics forward).
        public var inference: Double
        public var trainingSteps: [Double]
        public var inferences: [Double]
        /// Median seconds per stage of a training step.
        public var stages: [(String, Double)]
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
    }

    /// Times `repeats` training steps and inferences on one simulated pattern after warm-up.
    public static func run(size: Int = 64, width: Int = 8, repeats: Int = 5, seed: UInt64 = 1) throws -> Result {
        let arch = NetworkArchitecture(width: width, inputSize: size)
        let net = try PhaseNet(architecture: arch, seed: seed)
        let ex = try Trainer.example(size: size, seed: seed)
        let physics = try FourierPhysics(box: [size, size, size], objectShape: [size / 2, size / 2, size / 2])
        try physics.setTarget(intensity: ex.intensity)
        let opt = AdamW(parameters: net.parameters, schedule: .constant(1e-4))
        var steps: [Double] = [], infer: [Double] = []
        var fw: [Double] = [], bw: [Double] = [], up: [Double] = [], ph: [Double] = []
        for r in 0..<(repeats + 1) {
            try Interruption.check()
            let t0 = now()
            net.zeroGrad()
            let out = net.forward(ex.input)
            let t1 = now()
            _ = physics.forward(amplitude: out.amplitude, phase: out.phase)
            let g = physics.backward()
            let t2 = now()
            net.backward(amplitude: g.amplitude, phase: g.phase)
            let t3 = now()
            opt.update()
            let t4 = now()
            if r > 0 {
                steps.append(t4 - t0); fw.append(t1 - t0); ph.append(t2 - t1); bw.append(t3 - t2); up.append(t4 - t3)
            }
        }
        for r in 0..<(repeats + 1) {
            try Interruption.check()
            let t0 = now()
            let out = net.forward(ex.input)
            _ = physics.forward(amplitude: out.amplitude, phase: out.phase)
            if r > 0 { infer.append(now() - t0) }
        }
        return Result(size: size, width: width, threads: Parallel.threads, parameters: net.parameterCount,
                      trainingStep: median(steps), inference: median(infer), trainingSteps: steps, inferences: infer,
                      stages: [("forward", median(fw)), ("physics", median(ph)), ("backward", median(bw)), ("adamw", median(up))])
    }
}

/// Accumulated seconds per kernel, switched on by `NeuralProfile.enabled` (bench only).
public enum NeuralProfile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) static var totals: [String: Double] = [:]
    @inline(__always) static func time<R>(_ key: String, _ body: () -> R) -> R {
        guard enabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        totals[key, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        return r
    }
    public static func reset() { totals = [:] }
    public static var report: [(String, Double)] { totals.sorted { $0.value > $1.value } }
}
