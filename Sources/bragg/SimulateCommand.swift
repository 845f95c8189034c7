import ArgumentParser
import Analysis
import BraggKit
import Foundation
import Formats
import Numerics
import Simulation

/// `bragg simulate crystal|operando|scans`: simulated BCDI data with ground truth.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate crystals, their Bragg CDI patterns, rocking scans and the seed's operando series.",
        discussion: "Same seed, same bytes, on any machine and thread count. Single transforms are planned with FFTW 'estimate' unless --fft-effort is given.",
        subcommands: [SimulateCrystal.self, SimulateOperando.self, SimulateScans.self]
    )
}

/// Maps library errors to one-sentence usage errors (exit status 2).
private func usage<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as SimulationError { throw UsageError(commandLineMessage(for: e)) }
}

/// Planning effort for one-shot transforms: `estimate` unless the user chose one.
private func chooseSimulationEffort() {
    if !CommandLine.arguments.contains(where: { $0.hasPrefix("--fft-effort") }) { SimFFT.effort = .estimate }
}

private func geometryParameters(_ g: BraggGeometry) -> CXIGeometry {
    CXIGeometry(energy: g.energy, twoTheta: g.twoTheta, detectorDistance: g.distance, pixelSize: g.pixelSize,
                rockingStep: g.rockingStep, qVector: [g.q.x, g.q.y, g.q.z])
}

struct SimulateCrystal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crystal",
        abstract: "Simulate one faceted crystal and its oversampled, noisy diffraction pattern.",
        discussion: "--out FILE.npy writes the intensity; FILE.h5 (CXI layout) writes the intensity, the ground-truth object, support, mask and every parameter."
    )

    @Option(help: "Box (pattern) edge in voxels; the crystal spans at most half of it.") var size: Int = 64
    @Option(help: "Random seed (64-bit).") var seed: UInt64 = 1
    @Option(help: "Peak photon count of the pattern (> 0).") var photons: Double = 1e6
    @Option(help: "Crystal shape: hexagonal-prism, cube, octahedron, truncated-octahedron.") var shape: CrystalShape = .hexagonalPrism
    @Option(name: .customLong("crystal-size"), help: "Largest crystal extent in voxels (default 0.4 × size; at most size/2).") var crystalSize: Double?
    @Flag(name: .customLong("no-rotation"), help: "Keep the shape unrotated (and the prism regular).") var noRotation = false
    @Option(name: .customLong("voxel-nm"), help: "Voxel edge in nm (scales φ = Q·u of strain and dislocations).") var voxelNm: Double = 10
    @Option(name: .customLong("phase-rms"), help: "RMS of a Gaussian-correlated phase, rad (0: none).") var phaseRMS: Double = 0
    @Option(name: .customLong("correlation-length"), help: "Correlation length of that phase, voxels.") var correlationLength: Double = 4
    @Option(help: "Uniform strain along Q (e.g. 1e-4).") var strain: Double = 0
    @Option(name: .customLong("tilt-deg"), help: "Lattice tilt about the vertical axis, degrees.") var tiltDeg: Double = 0
    @Option(help: "Dislocation through the centre: screw or edge.") var dislocation: DislocationKind?
    @Option(help: "Q·b/2π of the dislocation (an integer for a lattice vector).") var burgers: Double = 1
    @Option(help: "Number of random surface domains.") var domains: Int = 0
    @Option(name: .customLong("domain-phase"), help: "Phase offset of each surface domain, rad (random sign).") var domainPhase: Double = 1
    @Option(name: .customLong("missing-density"), help: "Fraction of density removed in one region (0–1).") var missingDensity: Double = 0
    @Option(help: "Flat background, counts per pixel.") var background: Double = 0
    @Option(name: .customLong("blur-sigma"), help: "Partial-coherence blur: Gaussian σ in pixels.") var blurSigma: Double = 0
    @Option(name: .customLong("blur-lorentzian"), help: "Partial-coherence blur: Lorentzian half width in pixels.") var blurLorentzian: Double = 0
    @Option(name: .customLong("blur-pvoigt"), help: "Partial-coherence blur: pseudo-Voigt FWHM in pixels (with --blur-eta).") var blurPVoigt: Double = 0
    @Option(name: .customLong("blur-eta"), help: "Lorentzian fraction of the pseudo-Voigt blur (0–1).") var blurEta: Double = 0.5
    @Option(name: .customLong("module-size"), help: "Detector module size in pixels: gaps between modules are masked (0: none).") var moduleSize: Int = 0
    @Option(name: .customLong("hot-pixels"), help: "Number of hot pixels.") var hotPixels: Int = 0
    @Flag(name: .customLong("no-noise"), help: "Expected counts, no Poisson noise.") var noNoise = false
    @Option(help: "Output: .npy (intensity) or .h5/.cxi (intensity, object, support, mask, parameters).") var out: String
    @Flag(help: "Overwrite an existing output.") var force = false
    @OptionGroup var common: CommonOptions

    func options() throws -> CrystalOptions {
        var o = CrystalOptions()
        guard size > 0 else { throw UsageError("--size must be a positive number of voxels (got \(size))") }
        o.size = size; o.seed = seed; o.photons = photons
        o.shape = shape; o.crystalSize = crystalSize; o.randomOrientation = !noRotation
        o.voxelSize = voxelNm * 1e-9; o.phaseRMS = phaseRMS; o.correlationLength = correlationLength
        o.strain = strain; o.tilt = tiltDeg * .pi / 180
        if let d = dislocation { o.dislocation = d }
        o.burgersWinding = burgers; o.surfaceDomains = domains; o.domainPhase = domainPhase
        o.missingDensity = missingDensity; o.background = background
        guard blurSigma >= 0, blurLorentzian >= 0, blurPVoigt >= 0 else { throw UsageError("blur widths must be ≥ 0 pixels") }
        guard blurEta >= 0, blurEta <= 1 else { throw UsageError("--blur-eta must lie in [0, 1] (got \(blurEta))") }
        let blurs = [blurSigma, blurLorentzian, blurPVoigt].filter { $0 > 0 }.count
        guard blurs <= 1 else { throw UsageError("give one of --blur-sigma, --blur-lorentzian and --blur-pvoigt") }
        o.blur = blurSigma > 0 ? .gaussian(sigma: blurSigma) : (blurLorentzian > 0 ? .lorentzian(halfWidth: blurLorentzian)
            : (blurPVoigt > 0 ? .pseudoVoigt(fwhm: blurPVoigt, eta: blurEta) : .none))
        guard moduleSize >= 0, hotPixels >= 0 else { throw UsageError("--module-size and --hot-pixels must be ≥ 0") }
        if moduleSize > 0 || hotPixels > 0 { o.defects = DetectorDefects(moduleSize: moduleSize, gapWidth: 2, hotPixels: hotPixels) }
        o.poissonNoise = !noNoise
        try usage { try o.validate() }
        return o
    }

    func run() throws {
        try OutputCheck.file(out, overwrite: force)   // before any work
        common.apply()
        chooseSimulationEffort()
        let o = try options()
        let format = FileFormat.from(path: out)
        guard format == .npy || out.hasSuffix(".h5") || out.hasSuffix(".cxi") else {
            throw UsageError("--out must end in .npy, .h5 or .cxi (got '\(out)')")
        }
        if FileManager.default.fileExists(atPath: out) && !force {
            throw UsageError("\(out) exists; pass --force to replace it")
        }
        let t0 = Date()
        let r = try usage { try CrystalSimulation.make(o) }
        if format == .npy {
            try ArrayIO.write(r.intensity, to: out, overwrite: force)
        } else {
            let e = r.crystal.extent
            let params: [String: HDF5Attribute] = [
                "command": .string(CommandLine.arguments.joined(separator: " ")), "seed": .int(Int(truncatingIfNeeded: seed)),
                "shape": .string(shape.rawValue), "box_size": .int(size), "crystal_extent_voxels": .doubles([e.z, e.y, e.x]),
                "crystal_volume_voxels": .double(r.crystal.volume), "voxel_size_m": .double(o.voxelSize),
                "peak_photons": .double(photons), "poisson_noise": .int(noNoise ? 0 : 1), "phase_rms_rad": .double(phaseRMS),
                "correlation_length_voxels": .double(correlationLength), "strain": .double(strain), "tilt_deg": .double(tiltDeg),
                "dislocation": .string(dislocation?.rawValue ?? "none"), "burgers_winding": .double(burgers),
                "surface_domains": .int(domains), "domain_phase_rad": .double(domainPhase),
                "missing_density": .double(missingDensity), "background": .double(background),
                "blur_sigma_px": .double(blurSigma), "blur_lorentzian_px": .double(blurLorentzian),
                "blur_pvoigt_fwhm_px": .double(blurPVoigt), "blur_pvoigt_eta": .double(blurPVoigt > 0 ? blurEta : 0),
                "module_size_px": .int(moduleSize), "hot_pixels": .int(hotPixels),
                "q_per_voxel": .doubles([r.qPerVoxel.x, r.qPerVoxel.y, r.qPerVoxel.z]),
                "facet_normals": .doubles(r.crystal.facets.flatMap { [$0.normal.x, $0.normal.y, $0.normal.z] }),
                "facet_distances_voxels": .doubles(r.crystal.facets.map { $0.distance }),
                "note": .string("simulated: image_1 holds the ground-truth object, data_1 the pattern"),
            ]
            try CXIResults(object: r.object, support: r.support, pattern: r.intensity, mask: r.mask, parameters: params,
                           geometry: geometryParameters(o.geometry)).write(to: out, overwrite: force)
        }
        if !common.quiet {
            let e = r.crystal.extent
            printError(String(format: "simulated %@ %d³, crystal %.1f × %.1f × %.1f voxels, peak %.3g photons in %.2f s → %@",
                              shape.rawValue, size, e.x, e.y, e.z, Double(r.intensity.maximum()), Date().timeIntervalSince(t0), out))
        }
        common.saveWisdom()
    }
}

struct SimulateOperando: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operando",
        abstract: "Simulate the seed's six-state operando series (charge 2.5–4.0 V, discharge 3.5, 3.0 V).",
        discussion: "Writes into --out (a folder) state_NN_<label>.h5 (CXI: pattern, ground-truth object, support, parameters) and ground_truth.json (mean phase change against the first state and PCA order parameters on the common support)."
    )

    @Option(help: "Box (pattern) edge in voxels.") var size: Int = 64
    @Option(help: "Random seed (64-bit).") var seed: UInt64 = 1
    @Option(help: "Peak photon count of each pattern (> 0).") var photons: Double = 1e6
    @Option(help: "Largest crystal extent as a fraction of the box (≤ 0.5).") var fill: Double = 0.45
    @Flag(name: .customLong("detector-frame"), help: "Sample on the seed geometry's detector/rocking grid (patterns are rocking-frame stacks).") var detectorFrame = false
    @Flag(name: .customLong("no-noise"), help: "Expected counts, no Poisson noise.") var noNoise = false
    @Flag(name: .customLong("truncated-corner"), help: "Cut one corner off the prism (~6% of its volume): a crystal that is not centrosymmetric, whose twin differs in amplitude.") var truncatedCorner = false
    @OptionGroup var output: OutputFolderOptions
    var out: String { output.out }
    var force: Bool { output.force }
    @OptionGroup var common: CommonOptions

    func run() throws {
        try OutputCheck.folder(out, overwrite: force)   // before any work
        common.apply()
        chooseSimulationEffort()
        guard size > 0 else { throw UsageError("--size must be a positive number of voxels (got \(size))") }
        guard photons > 0 else { throw UsageError("--photons must be > 0 (got \(photons))") }
        var o = OperandoOptions()
        o.size = size; o.seed = seed; o.photons = photons; o.fill = fill; o.poissonNoise = !noNoise
        o.geometry = detectorFrame ? .seedStudy : nil
        o.truncatedCorner = truncatedCorner
        let fm = FileManager.default
        if fm.fileExists(atPath: out + "/ground_truth.json") && !force {
            throw UsageError("\(out) already holds a simulated series; pass --force to replace it")
        }
        try fm.createDirectory(atPath: out, withIntermediateDirectories: true)
        let bar = ProgressBar(quiet: common.quiet, unit: "state")
        let series = try usage { try OperandoSeries.make(options: o, progress: bar.handler) }
        bar.finish()
        let g = BraggGeometry.seedStudy
        for (i, s) in series.states.enumerated() {
            let name = String(format: "state_%02d_%@", i, String(s.label.map { $0.isLetter || $0.isNumber || $0 == "." ? $0 : "_" }))
            try CXIResults(object: s.object, support: s.support, pattern: s.pattern,
                           parameters: ["label": .string(s.label), "voltage_V": .double(s.voltage), "charging": .int(s.charging ? 1 : 0),
                                        "seed": .int(Int(truncatingIfNeeded: seed)), "frame": .string(detectorFrame ? "detector" : "lab"),
                                        "voxel_size_nm": .doubles(series.metrics.voxelSizeNm),
                                        "note": .string("simulated: image_1 holds the ground-truth object, data_1 the pattern")],
                           geometry: geometryParameters(g)).write(to: "\(out)/\(name).h5", overwrite: force)
        }
        // The simulation's own metrics, plus the same quantities under `bragg analyze`'s
        // conventions (what an analysis of perfect reconstructions reports).
        var doc = (try JSONSerialization.jsonObject(with: try JSONEncoder.pretty.encode(series.metrics)) as? [String: Any]) ?? [:]
        let truth = try SeriesAnalysis.groundTruth(objects: series.states.map(\.object), supports: series.states.map(\.support),
                                                   labels: series.states.map(\.label), geometry: g)
        doc["analysis_convention"] = SeriesOutputs.groundTruth(truth)
        doc["analysis_convention_note"] = "Δφ_mean, Ω and the edge FWHM as bragg analyze computes them on the true objects (support: amplitude above half its interior level; core-median global phase; ramp removed; majority common support; erf edge fit in the lab frame); compare reconstructions against these. Phase retrieval may return the whole series as the twin of the truth: its Δφ_mean then all change sign (Ω and edge widths stay); decide that once for the series, from the reference's overlap with the true object, never per state"
        let json = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        try SafeOutput.write(to: out + "/ground_truth.json", overwrite: force) { _ = fm.createFile(atPath: $0, contents: json) }
        if !common.quiet {
            for s in series.metrics.states {
                print(String(format: "%-16@ Δφ_mean %7.2f°  u_mean %7.4f Å  PCA Ω %8.2f rad", s.label, s.meanPhaseChangeDeg,
                             s.meanDisplacementAngstrom, s.pcaOrderParameter))
            }
        }
        common.saveWisdom()
    }
}

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
        let series = try usage { try OperandoSeries.make(options: o, progress: bar.handler) }
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
            let result = try usage { try RockingScans.make(object: series.states[k].object, geometry: g, options: so) }
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

struct BenchSimulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Time training-pair generation and a full crystal simulation.",
        discussion: "Median of --repeats after one warm-up (which pays for FFT planning)."
    )
    @Option(name: .customLong("pair-size"), help: "Training pattern size.") var pairSize: Int = 64
    @Option(name: .customLong("crystal-size"), help: "Box of the crystal simulation.") var crystalSize: Int = 128
    @Option(help: "Timed repeats.") var repeats: Int = 10
    @Flag(help: "Print one machine-readable JSON line.") var json = false
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        chooseSimulationEffort()
        guard repeats >= 1, pairSize >= 8, crystalSize >= 8 else { throw UsageError("--repeats ≥ 1 and sizes ≥ 8 are needed") }
        _ = try TrainingPair.make(size: pairSize, seed: 0)
        var pair: [Double] = []
        for r in 0..<repeats { pair.append(try timeIt { _ = try TrainingPair.make(size: pairSize, seed: UInt64(r + 1)) }) }
        var o = CrystalOptions()
        o.size = crystalSize; o.phaseRMS = 0.5
        _ = try CrystalSimulation.make(o)
        var crystal: [Double] = []
        for r in 0..<max(1, repeats / 3) { o.seed = UInt64(r + 1); crystal.append(try timeIt { _ = try CrystalSimulation.make(o) }) }
        if json {
            print(#"{"bench":"simulate","pair_size":\#(pairSize),"pair_ms":\#(String(format: "%.3f", median(pair) * 1e3)),"crystal_size":\#(crystalSize),"crystal_ms":\#(String(format: "%.2f", median(crystal) * 1e3)),"threads":\#(Parallel.threads)}"#)
        } else {
            print(String(format: "training pair %d³: %.2f ms median of %d; crystal %d³ (prism, correlated phase, noise): %.1f ms median of %d; %d thread(s)",
                         pairSize, median(pair) * 1e3, pair.count, crystalSize, median(crystal) * 1e3, crystal.count, Parallel.threads))
        }
    }
}

extension JSONEncoder {
    static var pretty: JSONEncoder {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }
}
