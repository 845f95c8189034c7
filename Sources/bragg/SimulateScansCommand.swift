import ArgumentParser
import BraggKit
import Foundation

/// `bragg simulate scans`: repeated rocking scans of the series' crystal, as a beamline writes them.
struct SimulateScans: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scans",
        abstract: "Simulate repeated rocking scans of one crystal in the seed's geometry, as NeXus-like HDF5 files.",
        discussion: """
            Each scan_NN.h5 holds frames at /entry/instrument/detector/data (counts as uint16 when \
            they fit, else uint32; frame × row × column), the detector's gap mask at \
            /entry/instrument/detector/pixel_mask (hot pixels are left for `bragg prepare` to \
            find), the monitor per frame at /entry/monitor/data, the rocking angles at \
            /entry/sample/rocking_angle, energy, distance, pixel size and 2θ with units, and the \
            hidden ground truth (drift, intensity factor) under /entry/simulation. The defaults \
            are the seed study's acquisition, as `bragg demo` simulates it: 22 scans whose sum \
            has --photons at the peak, a jitter of 0.25 pixel and a slow walk of 0.1 pixel per \
            scan on every axis, the beam varying by 5% between scans and 2% between frames, a \
            2-pixel gap row and column at 7/8 of the detector and 4 hot pixels. --state scans \
            one state of the operando series (all: every state, into --out/state_NN/).
            """
    )

    @Option(help: "Frames, rows and columns (a cube) of each scan.") var size: Int = 64
    @Option(help: "Random seed (64-bit).") var seed: UInt64 = 1
    @Option(help: "Peak photon count of the sum of the scans (> 0).") var photons: Double = 1e6
    @Option(help: "Scans per state.") var scans: Int = 22
    @Option(help: "RMS jitter between scans, pixels per axis.") var drift: Double = 0.25
    @Option(help: "RMS step of the slow drift (a random walk) per scan, pixels per axis.") var walk: Double = 0.1
    @Option(help: "RMS relative fluctuation of the incident intensity between scans.") var fluctuation: Double = 0.05
    @Option(name: .customLong("frame-fluctuation"), help: "RMS relative fluctuation of the incident intensity between frames.") var frameFluctuation: Double = 0.02
    @Option(name: .customLong("hot-pixels"), help: "Number of hot pixels.") var hotPixels: Int = 4
    @Option(name: .customLong("module-size"), help: "Detector module size in pixels: a 2-pixel gap after each module (0: no gaps; default 7/8 of --size).") var moduleSize: Int?
    @Flag(name: .customLong("truncated-corner"), help: "Cut one corner off the prism, as `bragg demo` does (see `simulate operando`).") var truncatedCorner = false
    @Option(help: "Operando state 0–5 to scan, or all (default: the first state's crystal).") var state: String = "0"
    @OptionGroup var output: OutputFolderOptions
    var out: String { output.out }
    var force: Bool { output.force }
    @OptionGroup var common: CommonOptions

    func run() throws {
        try OutputCheck.folder(out, overwrite: force)   // before any work
        common.apply()
        chooseSimulationEffort()
        guard size >= 16 else { throw UsageError("--size must be at least 16 (got \(size))") }
        guard photons > 0 else { throw UsageError("--photons must be > 0 (got \(photons))") }
        guard scans >= 1 else { throw UsageError("--scans must be at least 1 (got \(scans))") }
        let states: [Int]
        if state == "all" { states = Array(0..<6) }
        else if let k = Int(state), (0..<6).contains(k) { states = [k] }
        else { throw UsageError("--state must be 0–5 or all (got '\(state)')") }
        let fm = FileManager.default
        let folders = state == "all" ? states.map { String(format: "%@/state_%02d", out, $0) } : [out]
        if !force, let f = folders.first(where: { fm.fileExists(atPath: $0 + "/scan_00.h5") }) {
            throw UsageError("\(f) already holds scans; pass --force to replace them")
        }
        let g = BraggGeometry.seedStudy
        var o = OperandoOptions()
        o.size = size; o.seed = seed; o.photons = photons; o.geometry = g; o.poissonNoise = false
        o.truncatedCorner = truncatedCorner
        let bar = ProgressBar(quiet: common.quiet, unit: "step")
        let series = try simulationUsage { try OperandoSeries.make(options: o, progress: bar.handler) }
        bar.finish()
        var so = RockingScanOptions.seedStudy(size: size, photons: photons, seed: seed)
        so.scans = scans; so.drift = drift; so.walk = walk; so.fluctuation = fluctuation; so.frameFluctuation = frameFluctuation
        guard hotPixels >= 0, (moduleSize ?? 0) >= 0 else { throw UsageError("--hot-pixels and --module-size must be ≥ 0") }
        so.defects.hotPixels = hotPixels
        if let m = moduleSize { so.defects.moduleSize = m }
        let gaps = ScanFiles.gapMask(rows: size, cols: size, defects: so.defects)
        for (k, folder) in zip(states, folders) {
            try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            so.stream = UInt64(k)
            let result = try simulationUsage { try RockingScans.make(object: series.states[k].object, geometry: g, options: so) }
            for (j, s) in result.enumerated() {
                try ScanFiles.write(s, to: String(format: "%@/scan_%02d.h5", folder, j), geometry: g, gaps: gaps,
                                    label: series.states[k].label, seed: seed, overwrite: force)
            }
            if !common.quiet {
                printError("wrote \(result.count) scans of \(size)³ (\(series.states[k].label)) to \(folder); voxel sizes " +
                           series.metrics.voxelSizeNm.map { String(format: "%.1f", $0) }.joined(separator: " × ") + " nm")
            }
        }
        common.saveWisdom()
    }
}
