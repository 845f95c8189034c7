import ArgumentParser
import BraggKit
import Foundation

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

    enum Defaults: BenchDefaults {
        static let repeats = 2, repeatsHelp = "Timed repeats of each measurement."
    }

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
    @OptionGroup var bench: BenchOptions<Defaults>
    @Flag(help: "Print the wall time of each preparation stage (last repeat) and of the CXI output.")
    var profile = false
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard scans >= 1 else { throw ValidationError("--scans must be at least 1 (got \(scans))") }
        guard (0...9).contains(compression) else { throw ValidationError("--compression must be 0…9 (got \(compression))") }
        guard (0...9).contains(outputCompression) else { throw ValidationError("--output-compression must be 0…9 (got \(outputCompression))") }
    }

    func run() throws {
        common.apply()
        let sh = try parseTriple(shape, name: "--shape")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let paths = (0..<scans).map { (dir as NSString).appendingPathComponent(String(format: "scan_%02d.h5", $0)) }
        let bar = ProgressBar(quiet: common.quiet || bench.json, unit: "scans")
        if !paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            let t = try Benchmarks.seconds {
                try Benchmarks.writeScans(paths, shape: sh, photons: photons, compression: compression == 0 ? nil : compression,
                                          progress: bar.handler)
            }
            bar.message(String(format: "wrote %d scans in %.1f s", scans, t))
        }
        let bytes = paths.reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: $1))?[.size] as? Int) ?? 0) }
        let t = try Benchmarks.prepare(paths, output: (dir as NSString).appendingPathComponent("prepared.cxi"),
                                       compression: outputCompression == 0 ? nil : outputCompression, repeats: bench.repeats)
        print(summary(t, shape: sh, bytes: bytes).joined(separator: "\n"))
    }

    /// The lines printed: the JSON line, or the files, the medians, CPU time, ratio, stages and result.
    func summary(_ t: Benchmarks.PrepareTimings, shape sh: [Int], bytes: Int) -> [String] {
        let m = Benchmarks.median
        let tr = m(t.read), tp = m(t.prepare), cr = m(t.readCPU), cp = m(t.prepareCPU)
        let rssMiB = Benchmarks.peakResidentMiB(), frames = Double(scans * sh[0]), repeats = bench.repeats
        if bench.json {
            return [#"{"bench":"prepare","scans":\#(scans),"shape":[\#(sh[0]),\#(sh[1]),\#(sh[2])],"compression":\#(compression),"file_mib":\#(String(format: "%.1f", Double(bytes) / 1048576)),"read_s":\#(String(format: "%.3f", tr)),"prepare_s":\#(String(format: "%.3f", tp)),"speed_ratio":\#(String(format: "%.3f", tr / tp)),"threads":\#(Parallel.threads),"max_rss_mib":\#(String(format: "%.0f", rssMiB)),"read_cpu_s":\#(String(format: "%.3f", cr)),"prepare_cpu_s":\#(String(format: "%.3f", cp))}"#]
        }
        var lines = [
            String(format: "%d scans of %d×%d×%d uint32 frames, gzip %d, %.1f MiB on disk", scans, sh[0], sh[1], sh[2], compression, Double(bytes) / 1048576),
            String(format: "read whole (HDF5File.readReal): %.3f s median of %d (%.0f frames/s)", tr, repeats, frames / tr),
            String(format: "bragg prepare (library, with CXI output): %.3f s median of %d (%.0f frames/s)", tp, repeats, frames / tp),
            String(format: "CPU time (user + system, all threads): read %.3f s, prepare %.3f s (ratio %.2f); load average %.2f",
                   cr, cp, cr / cp, Benchmarks.loadAverage()),
            String(format: "speed of prepare relative to reading: %.2f (≥ 0.5 wanted); %d thread(s); this process's peak RSS %.0f MiB",
                   tr / tp, Parallel.threads, rssMiB),
        ]
        guard let r = t.last else { return lines }
        func row(_ name: String, _ s: String) -> String { "  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + s }
        if profile {
            lines.append(row("open files, monitors", String(format: "%7.3f s", t.openSeconds)))
            let staged = r.stageSeconds.reduce(0) { $0 + $1.seconds }   // stages overlap (reading thread)
            lines.append(row("unstaged", String(format: "%7.3f s", t.prepareSeconds - staged)))
            for (stage, s, c) in r.stageSeconds { lines.append(row(stage, String(format: "%7.3f s (its thread's CPU %.3f s)", s, c))) }
            lines.append(row("CXI output", String(format: "%7.3f s", t.writeSeconds)))
        }
        let worst = r.scans.map { s in s.correlation }.min() ?? 0
        lines.append(String(format: "result: %@ pattern, %d/%d scans summed, lowest correlation %.4f (checksum %.4g)",
                            r.pattern.shape.map(String.init).joined(separator: "×"),
                            r.scans.filter { $0.included }.count, r.scans.count, worst, t.checksum))
        return lines
    }
}
