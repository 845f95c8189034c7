import ArgumentParser
import BraggKit
import Foundation
import Formats
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
func simulationUsage<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as SimulationError { throw UsageError(commandLineMessage(for: e)) }
}

/// Planning effort for one-shot transforms: `estimate` unless the user chose one.
func chooseSimulationEffort() {
    if !CommandLine.arguments.contains(where: { $0.hasPrefix("--fft-effort") }) { SimFFT.effort = .estimate }
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
        try simulationUsage { try o.validate() }
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
        let r = try simulationUsage { try CrystalSimulation.make(o) }
        if format == .npy {
            try ArrayIO.write(r.intensity, to: out, overwrite: force)
        } else {
            try SimulatedFiles.crystal(r, options: o, command: CommandLine.arguments.joined(separator: " "))
                .write(to: out, overwrite: force)
        }
        if !common.quiet {
            let e = r.crystal.extent
            printError(String(format: "simulated %@ %d³, crystal %.1f × %.1f × %.1f voxels, peak %.3g photons in %.2f s → %@",
                              shape.rawValue, size, e.x, e.y, e.z, Double(r.intensity.maximum()), Date().timeIntervalSince(t0), out))
        }
        common.saveWisdom()
    }
}
