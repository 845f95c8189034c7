import ArgumentParser
import Foundation
import Numerics
import Formats
import Preparation
import Simulation

struct BenchPrepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Time `bragg prepare` against simply reading the same scan files.",
        discussion: """
            Uses the NeXus scan files scan_NN.h5 in --dir, writing them first when absent \
            (simulated: a hexagonal-prism crystal, drift between scans, fluctuating flux \
            recorded as a monitor, Poisson noise, hot pixels; uint32 frames, gzip level \
            --compression, chunked by HDF5File). Then, --repeats times each, alternating: \
            (a) read every file's frames whole into memory (HDF5File.readReal), \
            (b) prepare them (streaming read, masks, registration, summation, centring, \
            CXI output). Prints the medians and the speed ratio (a)/(b). Measure memory with \
            /usr/bin/time -v on `bragg prepare` itself (this process also generated the files).
            """
    )

    @Option(help: "Folder of scan files (created and filled when it holds none).")
    var dir: String = "bench-prepare"

    @Option(help: "Scans of the state.")
    var scans: Int = 22

    @Option(help: "Frames, rows, columns of each scan.")
    var shape: String = "160,256,256"

    @Option(help: "gzip level of generated files (0: uncompressed, contiguous).")
    var compression: Int = 4

    @Option(name: .customLong("output-compression"), help: "gzip level of the prepared CXI file (0: none), as `bragg prepare --compression`.")
    var outputCompression: Int = PrepareCommand.defaultCompression

    @Option(help: "Peak photon count of the sum of all scans.")
    var photons: Double = 1e6

    @Option(help: "Timed repeats of each measurement.")
    var repeats: Int = 2

    @Flag(help: "Print the wall time of each preparation stage (last repeat) and of the CXI output.")
    var profile = false

    @Flag(help: "Print one machine-readable JSON line instead of text.")
    var json = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard scans >= 1, repeats >= 1 else { throw ValidationError("--scans and --repeats must be at least 1") }
        guard (0...9).contains(compression) else { throw ValidationError("--compression must be 0…9 (got \(compression))") }
        guard (0...9).contains(outputCompression) else { throw ValidationError("--output-compression must be 0…9 (got \(outputCompression))") }
    }

    func run() throws {
        common.apply()
        let sh = try parseTriple(shape, name: "--shape")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let paths = (0..<scans).map { (dir as NSString).appendingPathComponent(String(format: "scan_%02d.h5", $0)) }
        let bar = ProgressBar(quiet: common.quiet || json, unit: "scans")
        if !paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            let t = try timeIt { try generate(paths: paths, shape: sh, bar: bar) }
            bar.message(String(format: "wrote %d scans in %.1f s", scans, t))
        }
        let bytes = paths.reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: $1))?[.size] as? Int) ?? 0) }
        let out = (dir as NSString).appendingPathComponent("prepared.cxi")
        var readTimes: [Double] = [], prepTimes: [Double] = []
        var checksum = 0.0
        var last: PreparedPattern?
        var readCPU: [Double] = [], prepCPU: [Double] = []
        var writeSeconds = 0.0, openSeconds = 0.0, prepareSeconds = 0.0
        for _ in 0..<repeats {
            var c0 = cpuSeconds()
            readTimes.append(try timeIt {
                for p in paths {
                    try Interruption.check()
                    let f = try HDF5File(reading: p)
                    checksum += try f.readReal("/entry/instrument/detector/data").sum()
                }
            })
            readCPU.append(cpuSeconds() - c0)
            c0 = cpuSeconds()
            prepTimes.append(try timeIt {
                var stacks: [HDF5FrameStack] = [], inputs: [Scan] = []
                openSeconds = try timeIt {
                    stacks = try paths.map { try HDF5FrameStack(path: $0) }
                    inputs = try stacks.map { Scan(frames: $0, monitor: try $0.perFrame("/entry/instrument/monitor/data")) }
                }
                var result: PreparedPattern?
                prepareSeconds = try timeIt { result = try Preparation.prepare(scans: inputs) }
                let r = result!
                writeSeconds = try timeIt {
                    try CXIResults(pattern: r.pattern, mask: r.mask, geometry: NeXusGeometry.read(from: stacks[0].file))
                        .write(to: out, overwrite: true, compression: outputCompression == 0 ? nil : outputCompression)
                }
                last = r
            })
            prepCPU.append(cpuSeconds() - c0)
        }
        let tr = median(readTimes), tp = median(prepTimes)
        let cr = median(readCPU), cp = median(prepCPU)
        var ru = rusage()
        getrusage(RUSAGE_SELF.rawValue, &ru)
        let rssMiB = Double(ru.ru_maxrss) / 1024
        let frames = Double(scans * sh[0])
        if json {
            print(#"{"bench":"prepare","scans":\#(scans),"shape":[\#(sh[0]),\#(sh[1]),\#(sh[2])],"compression":\#(compression),"file_mib":\#(String(format: "%.1f", Double(bytes) / 1048576)),"read_s":\#(String(format: "%.3f", tr)),"prepare_s":\#(String(format: "%.3f", tp)),"speed_ratio":\#(String(format: "%.3f", tr / tp)),"threads":\#(Parallel.threads),"max_rss_mib":\#(String(format: "%.0f", rssMiB)),"read_cpu_s":\#(String(format: "%.3f", cr)),"prepare_cpu_s":\#(String(format: "%.3f", cp))}"#)
        } else {
            print(String(format: "%d scans of %d×%d×%d uint32 frames, gzip %d, %.1f MiB on disk",
                         scans, sh[0], sh[1], sh[2], compression, Double(bytes) / 1048576))
            print(String(format: "read whole (HDF5File.readReal): %.3f s median of %d (%.0f frames/s)", tr, repeats, frames / tr))
            print(String(format: "bragg prepare (library, with CXI output): %.3f s median of %d (%.0f frames/s)", tp, repeats, frames / tp))
            print(String(format: "CPU time (user + system, all threads): read %.3f s, prepare %.3f s (ratio %.2f); load average %.2f",
                         cr, cp, cr / cp, loadAverage()))
            print(String(format: "speed of prepare relative to reading: %.2f (≥ 0.5 wanted); %d thread(s); this process's peak RSS %.0f MiB",
                         tr / tp, Parallel.threads, rssMiB))
            if profile, let r = last {
                print("  " + "open files, monitors".padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%7.3f s", openSeconds))
                let staged = r.stageSeconds.reduce(0) { $0 + $1.seconds }   // stages overlap (reading thread)
                print("  " + "unstaged".padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%7.3f s", prepareSeconds - staged))
                for (stage, t, c) in r.stageSeconds {
                    print("  " + stage.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%7.3f s (its thread's CPU %.3f s)", t, c))
                }
                print("  " + "CXI output".padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%7.3f s", writeSeconds))
            }
            if let r = last {
                let worst = r.scans.map { s in s.correlation }.min() ?? 0
                print(String(format: "result: %@ pattern, %d/%d scans summed, lowest correlation %.4f (checksum %.4g)",
                             r.pattern.shape.map(String.init).joined(separator: "×"),
                             r.scans.filter { $0.included }.count, r.scans.count, worst, checksum))
            }
        }
    }

    /// Simulated NeXus scans of one state, written one at a time.
    func generate(paths: [String], shape sh: [Int], bar: ProgressBar) throws {
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
            bar.update(ProgressReport(stage: "writing simulated scans", done: k, total: paths.count))
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
                try f.write(array, at: "/entry/instrument/detector/data", compression: compression == 0 ? nil : compression)
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
        bar.update(ProgressReport(stage: "writing simulated scans", done: paths.count, total: paths.count))
    }
}

/// User + system CPU seconds of this process so far (all threads).
private func cpuSeconds() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    return Double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + Double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6
}

/// The 1-minute load average (−1 when unknown).
private func loadAverage() -> Double {
    var l = [0.0, 0.0, 0.0]
    return getloadavg(&l, 3) > 0 ? l[0] : -1
}
