// swift-tools-version:6.0
// BraggKit: Bragg coherent X-ray diffraction imaging, from frames to strain, in Swift.
import PackageDescription

// Release-only flags: let clang-imported maths vectorise (no errno) and use AVX2/FMA.
// Measured in ../shared/SWIFT-NUMERICS.md: 1.5–7x on elementwise loops.
// They are unsafe flags, which SwiftPM refuses in a versioned dependency, and
// -march=x86-64-v3 exists on x86_64 only; so they are declared only when BRAGG_NATIVE is
// set (the Makefile sets it) and the manifest is built on x86_64. Without it the package
// builds anywhere, with the compiler's portable defaults.
#if arch(x86_64)
let native = Context.environment["BRAGG_NATIVE"].map { !$0.isEmpty && $0 != "0" } ?? false
#else
let native = false
#endif
let fastMath: [SwiftSetting] = native ? [
    .unsafeFlags(["-Xcc", "-fno-math-errno", "-Xcc", "-march=x86-64-v3"],
                 .when(configuration: .release)),
] : []
let mode: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "BraggKit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bragg", targets: ["bragg"]),
        .library(name: "BraggKit", targets: ["BraggKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The experiment file (TOML 1.0, through toml++).
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // C libraries, each wrapped once (module map + pkg-config).
        .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev", "zlib1g-dev"])]),
        .systemLibrary(name: "CTIFF", path: "Sources/CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"])]),
        // Open MPI (#24): runs and scans spread over the ranks of an `mpirun`/`srun` job.
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "Numerics", dependencies: ["CFFTW", "COpenBLAS"], swiftSettings: mode + fastMath),
        .target(name: "Formats", dependencies: ["Numerics", "CHDF5", "CPNG", "CTIFF"], swiftSettings: mode + fastMath),
        .target(name: "Simulation", dependencies: ["Numerics"], swiftSettings: mode + fastMath),
        .target(name: "Preparation", dependencies: ["Numerics", "Formats"], swiftSettings: mode + fastMath),
        .target(name: "Phasing", dependencies: ["Numerics"], swiftSettings: mode + fastMath),
        .target(name: "Neural", dependencies: ["Numerics", "Simulation", "COpenBLAS"], swiftSettings: mode + fastMath),
        .target(name: "Analysis", dependencies: ["Numerics", .product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: mode + fastMath),
        .target(name: "Report", dependencies: ["Numerics", "Formats"], swiftSettings: mode + fastMath),
        // The MPI world behind Numerics' Communicator; only the program links it.
        .target(name: "Cluster", dependencies: ["Numerics", "CMPI"], swiftSettings: mode),
        // The umbrella: re-exports the stages and holds the glue between them.
        .target(name: "BraggKit", dependencies: ["Numerics", "Formats", "Simulation", "Preparation", "Phasing",
                                                 "Neural", "Analysis", "Report"], swiftSettings: mode + fastMath),
        .executableTarget(
            name: "bragg",
            dependencies: ["BraggKit", "Numerics", "Formats", "Simulation", "Preparation", "Phasing", "Neural",
                           "Analysis", "Report", "Cluster",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: mode + fastMath),

        .testTarget(name: "NumericsTests", dependencies: ["Numerics"], swiftSettings: mode),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "Numerics"],
                    resources: [.copy("Fixtures")], swiftSettings: mode),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "Numerics"], swiftSettings: mode),
        .testTarget(name: "PreparationTests", dependencies: ["Preparation", "Formats", "Simulation", "Numerics"], swiftSettings: mode),
        .testTarget(name: "PhasingTests", dependencies: ["Phasing", "Simulation", "Numerics"], swiftSettings: mode),
        .testTarget(name: "NeuralTests", dependencies: ["Neural", "Simulation", "Formats", "Numerics"], swiftSettings: mode),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Simulation", "Phasing", "Numerics"], swiftSettings: mode),
        .testTarget(name: "BraggKitTests", dependencies: ["BraggKit"], swiftSettings: mode),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Formats", "Numerics"], swiftSettings: mode),
        // The command line parsed in process (option values, validation, error sentences).
        .testTarget(name: "braggTests", dependencies: ["bragg"], swiftSettings: mode),
    ]
)

// libFuzzer targets, one per parser (#22), only when BRAGG_FUZZ is set, so ordinary builds
// and tests never see them: `make fuzz` builds them with `--sanitize=fuzzer` in .build-fuzz.
if Context.environment["BRAGG_FUZZ"] != nil {
    let fuzzers: [(String, [Target.Dependency])] = [
        ("npy", ["Formats"]), ("npz", ["Formats"]), ("vti", ["Formats"]), ("tiff", ["Formats"]),
        ("safetensors", ["Neural"]), ("experiment", ["Analysis"]), ("hdf5", ["Formats"]), ("recipe", ["Phasing"]),
    ]
    for (name, deps) in fuzzers {
        package.targets.append(.executableTarget(name: "fuzz-\(name)", dependencies: deps, path: "Fuzz/\(name)",
                                                 exclude: ["corpus"], swiftSettings: mode))
    }
}
