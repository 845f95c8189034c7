import Foundation
import Numerics
import Formats
import Preparation
import Simulation

// What `bragg bench prepare` measures: simulated NeXus scan files of one state, and the
// time to read them whole against the time to prepare them (with CXI output).

extension Benchmarks {
    /// Reading a state's scan files whole against preparing them, `repeats` times each, alternating.
    public struct PrepareTimings {
        /// Wall and CPU (user + system, all threads) seconds of each repeat.
        public var read: [Double] = [], prepare: [Double] = []
        public var readCPU: [Double] = [], prepareCPU: [Double] = []
        /// Of the last repeat: opening the files and monitors, preparing, writing the CXI file.
        public var openSeconds = 0.0, prepareSeconds = 0.0, writeSeconds = 0.0
        /// The last prepared pattern, and the sum of every frame read whole (a checksum).
        public var last: PreparedPattern?
        public var checksum = 0.0
    }

    /// (a) Every file's frames read whole (`HDF5File.readReal`), then (b) the files prepared
    /// (streaming read, masks, registration, summation, centring) and written to `output`
    /// (gzip level `compression`, nil for none); `repeats` times each, alternating.
    public static func prepare(_ paths: [String], output: String, compression: Int?, repeats: Int) throws -> PrepareTimings {
        var t = PrepareTimings()
        for _ in 0..<repeats {
            var c0 = cpuSeconds()
            t.read.append(try seconds {
                for p in paths {
                    try Interruption.check()
                    let f = try HDF5File(reading: p)
                    t.checksum += try f.readReal("/entry/instrument/detector/data").sum()
                }
            })
            t.readCPU.append(cpuSeconds() - c0)
            c0 = cpuSeconds()
            t.prepare.append(try seconds {
                var stacks: [HDF5FrameStack] = [], inputs: [Scan] = []
                t.openSeconds = try seconds {
                    stacks = try paths.map { try HDF5FrameStack(path: $0) }
                    inputs = try stacks.map { Scan(frames: $0, monitor: try $0.perFrame("/entry/instrument/monitor/data")) }
                }
                var result: PreparedPattern?
                t.prepareSeconds = try seconds { result = try Preparation.prepare(scans: inputs) }
                let r = result!
                t.writeSeconds = try seconds {
                    try CXIResults(pattern: r.pattern, mask: r.mask, geometry: NeXusGeometry.read(from: stacks[0].file))
                        .write(to: output, overwrite: true, compression: compression)
                }
                t.last = r
            })
            t.prepareCPU.append(cpuSeconds() - c0)
        }
        return t
    }

    /// Simulated NeXus scans of one state, written one at a time to `paths`: a hexagonal-prism
    /// crystal with a gentle phase, drift between scans, flux fluctuating between scans and
    /// frames (recorded as the monitor), Poisson noise, six hot pixels; uint32 frames of
    /// `shape` (frames, rows, columns) at gzip level `compression` (nil: contiguous), the sum
    /// of the scans holding `photons` at its peak.
    public static func writeScans(_ paths: [String], shape sh: [Int], photons: Double, compression: Int?,
                                  progress: ProgressHandler? = nil) throws {
        let size = Double(sh.min()!) / 3
        var amp = Crystal.named(.hexagonalPrism, size: size).amplitude(box: sh)
        // A gentle strain-like phase so that the pattern is not centro-symmetric.
        let obj = try ComplexVolume(modulus: amp, phase: RealVolume(shape: sh) { i in
            let x = Double(i % sh[2]) - Double(sh[2] / 2), y = Double(i / sh[2] % sh[1]) - Double(sh[1] / 2)
            return Float(0.6 * sin(2 * .pi * (x + 0.5 * y) / (1.5 * size)))
        })
        amp = RealVolume(shape: [1])
        let reference = try Diffraction.intensity(of: obj, box: sh)
        let peak = Double(reference.maximum())
        var rng = SimulationRNG(seed: 2024)
        // Hot pixels: the same detector pixels in every scan, reading 10⁶ in every frame.
        let hot = (0..<6).map { _ in (rng.integer(below: sh[1]), rng.integer(below: sh[2])) }
        let step = 0.005
        let angles = (0..<sh[0]).map { 15.0 + Double($0 - sh[0] / 2) * step }
        for (k, p) in paths.enumerated() {
            try Interruption.check()
            progress?(ProgressReport(stage: "writing simulated scans", done: k, total: paths.count))
            let drift = k == 0 ? [0.0, 0, 0] : (0..<3).map { _ in rng.normal() * 0.7 }
            let factor = max(0.3, 1 + 0.1 * rng.normal())
            let flux = (0..<sh[0]).map { _ in factor * max(0.3, 1 + 0.05 * rng.normal()) }
            var i = try Diffraction.intensity(of: RockingScans.shiftedObject(obj, by: drift), box: sh)
            let scale = photons / Double(paths.count) / peak
            let fp = sh[1] * sh[2]
            i.withUnsafeMutableFloats { q in
                for z in 0..<sh[0] {
                    let s = Float(scale * flux[z])
                    for j in 0..<fp { q[z * fp + j] *= s }
                }
            }
            var frames = i.poissonSampled(seed: 77 &+ UInt64(k))
            i = RealVolume(shape: [1])
            frames.withUnsafeMutableFloats { q in
                for z in 0..<sh[0] { for (r, c) in hot { q[z * fp + r * sh[2] + c] = 1e6 } }
            }
            let counts = frames.withUnsafeFloats { b in b.map { UInt32(max(0, min(4.2e9, $0))) } }
            frames = RealVolume(shape: [1])
            let array = try NDArray(dtype: .uint32, shape: sh, data: counts.withUnsafeBufferPointer { Data(buffer: $0) })
            try HDF5File.create(p, overwrite: true) { f in
                try f.write(array, at: "/entry/instrument/detector/data", compression: compression)
                try f.write(doubles: flux.map { $0 * 1e5 }, at: "/entry/instrument/monitor/data")
                try f.write(scalar: 9000, at: "/entry/instrument/source/energy")
                try f.setAttribute("units", .string("eV"), on: "/entry/instrument/source/energy")
                try f.write(scalar: 1.83, at: "/entry/instrument/detector/distance")
                try f.setAttribute("units", .string("m"), on: "/entry/instrument/detector/distance")
                try f.write(scalar: 55e-6, at: "/entry/instrument/detector/x_pixel_size")
                try f.setAttribute("units", .string("m"), on: "/entry/instrument/detector/x_pixel_size")
                try f.write(scalar: 30.0, at: "/entry/instrument/detector/two_theta")
                try f.setAttribute("units", .string("deg"), on: "/entry/instrument/detector/two_theta")
                try f.write(doubles: angles, at: "/entry/sample/rocking_angle")
                try f.setAttribute("units", .string("deg"), on: "/entry/sample/rocking_angle")
                try f.write(doubles: drift, at: "/entry/simulation/drift")
            }
        }
        progress?(ProgressReport(stage: "writing simulated scans", done: paths.count, total: paths.count))
    }

    /// User + system CPU seconds of this process so far (all threads).
    public static func cpuSeconds() -> Double {
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        return Double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + Double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6
    }

    /// The 1-minute load average (−1 when unknown).
    public static func loadAverage() -> Double {
        var l = [0.0, 0.0, 0.0]
        return getloadavg(&l, 3) > 0 ? l[0] : -1
    }

    /// This process's peak resident memory, MiB.
    public static func peakResidentMiB() -> Double {
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        return Double(ru.ru_maxrss) / 1024
    }
}
