import ArgumentParser
import BraggKit
import Foundation

struct ViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "Draw one reconstruction: central slices and its isosurface coloured by phase.",
        discussion: """
            FILE is a results file of `bragg phase` (.h5/.cxi: object and support) or a complex \
            .npy object (the support is then the voxels above --support-threshold of the maximum \
            amplitude). Writes into --out: slices.png (amplitude and phase through the crystal's \
            centre in three planes, with colour and scale bars), isosurface.png (two views), and the \
            mesh as isosurface.ply and isosurface.obj. A results file without a support, or an \
            object holding NaN, is refused with a message.

            Scale bars and mesh coordinates are in nm when the voxel size is known: --voxel-size, \
            else the results file's geometry (the real-space voxel `bragg phase` records from the \
            pattern's geometry, or one computed from its energy, 2θ, distance, pixels and rocking \
            step); otherwise they count voxels, and say so.
            """
    )

    @Argument(help: "Reconstruction: results .h5/.cxi, or complex .npy[:member].")
    var file: String

    @Option(name: .shortAndLong, help: "Folder for the pictures (created if missing).")
    var out: String = "view"

    @Option(help: "Voxel size in nm: one value, or three for z,y,x (default: from the file's geometry, else scale bars in voxels).")
    var voxelSize: String?

    @Option(help: "Isosurface at the level enclosing this fraction of the amplitude.")
    var fraction: Double = 0.9

    @Option(help: "For .npy objects: support = amplitude above this fraction of the maximum.")
    var supportThreshold: Double = 0.2

    @Flag(help: "Replace existing pictures in --out.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard fraction > 0 && fraction <= 1 else { throw ValidationError("--fraction must be in (0, 1] (got \(fraction))") }
        guard supportThreshold > 0 && supportThreshold < 1 else { throw ValidationError("--support-threshold must be in (0, 1)") }
    }

    func run() throws {
        try OutputCheck.folder(out, overwrite: force)   // before any work (#22)
        try OutputCheck.files(["slices.png", "isosurface.png", "isosurface.ply", "isosurface.obj"].map { out + "/" + $0 }, overwrite: force)
        common.apply()
        let spec = ArraySpec(file)
        var object: ComplexVolume
        var support: RealVolume
        var voxel: [Double]? = nil
        var voxelSource = ""
        if spec.dataset == nil, let p = try PeerResults.read(spec.path) {
            // A PyNX, cohere or bcdi result: its object, and its support or the amplitude threshold.
            print(p.note)
            object = p.object
            let amp = object.modulus()
            support = p.support ?? amp.thresholded(above: Float(supportThreshold) * amp.maximum())
            if let v = p.voxelSizeNm { voxel = v; voxelSource = "the file's voxel size" }
        } else if try spec.format() == .hdf5 && spec.dataset == nil {
            let r = try CXIResults.read(from: spec.path)
            guard let o = r.object else { throw UsageError("\(spec.path) holds no object at \(CXIResults.objectPath)") }
            guard let s = r.support else {
                throw UsageError("\(spec.path) holds no support at \(CXIResults.supportPath): cannot tell the crystal from its surroundings")
            }
            object = o; support = s
            if let v = ResultsGeometry.voxelSizeNanometres(r.geometry.isEmpty ? nil : r.geometry, objectShape: o.shape) {
                voxel = v; voxelSource = "the file's geometry"
            } else if let v = r.arrays["voxel_size_nm"]?.doubles(), v.count == 3 {
                voxel = v; voxelSource = "the file's voxel_size_nm"
            }
        } else {
            object = try ArrayIO.readComplex(file)
            let amp = object.modulus()
            support = amp.thresholded(above: Float(supportThreshold) * amp.maximum())
        }
        if let v = voxelSize {
            let parts = v.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard (parts.count == 1 || parts.count == 3), parts.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw UsageError("--voxel-size takes one positive number or three separated by commas (got '\(v)')")
            }
            let given = parts.count == 1 ? [parts[0], parts[0], parts[0]] : parts
            if let v = voxel {
                print(String(format: "--voxel-size %@ nm overrides %@ (%.2f × %.2f × %.2f nm)",
                             given.map { String(format: "%g", $0) }.joined(separator: ","), voxelSource, v[0], v[1], v[2]))
            }
            voxel = given; voxelSource = "--voxel-size"
        }
        let unit = voxel == nil ? "voxels" : "nm"
        if let v = voxel {
            print(String(format: "voxel %.2f × %.2f × %.2f nm (z, y, x) from %@", v[0], v[1], v[2], voxelSource))
        } else {
            print("voxel size unknown (no geometry in \(file); --voxel-size gives it): scale bars and mesh in voxels")
        }
        do {
            try ObjectFigures.validate(object, name: file)
        } catch let e as ReportError { throw UsageError(commandLineMessage(for: e)) }
        guard support.nonzeroCount() > 0 else { throw UsageError("\(file): the support is empty") }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let names = ["slices.png", "isosurface.png", "isosurface.ply", "isosurface.obj"].map { out + "/" + $0 }
        if !force, let existing = names.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            throw UsageError("\(existing) exists; pass --force to replace it")
        }
        let steps = voxel ?? [1, 1, 1]
        try ObjectFigures.slices(object: object, support: support, voxelSize: steps, title: file, lengthUnit: unit).writePNG(to: names[0])
        let mesh = try ObjectFigures.isosurface(object: object, fraction: fraction, voxelSize: steps)
        try ObjectFigures.views([MeshLayer(mesh: mesh)]).writePNG(to: names[1])
        try SafeOutput.write(to: names[2], overwrite: true) { try mesh.plyText().write(toFile: $0, atomically: false, encoding: .utf8) }
        try SafeOutput.write(to: names[3], overwrite: true) { try mesh.objText().write(toFile: $0, atomically: false, encoding: .utf8) }
        print("wrote \(names.joined(separator: ", ")) (\(mesh.vertices.count) vertices, \(mesh.triangles.count) triangles)")
    }
}
