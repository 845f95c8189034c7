// swift-tools-version:6.0
// A program of its own that uses BraggKit as a library (issue 23): it depends on the
// package by path, as another project would by URL and version.
import PackageDescription

let package = Package(
    name: "UseBraggKit",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "BraggKit", path: "../..")],
    targets: [
        .executableTarget(name: "UseBraggKit", dependencies: [.product(name: "BraggKit", package: "BraggKit")],
                          swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
