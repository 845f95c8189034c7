import Foundation
import Formats
import Numerics

extension RGBImage {
    /// Writes the image as an 8-bit RGB PNG (temporary name, then rename).
    public func writePNG(to path: String, overwrite: Bool = true) throws {
        try PNG.writeRGB(pixels, width: width, height: height, to: path, overwrite: overwrite)
    }
}

/// Pictures of one reconstruction: central slices of amplitude and phase in three planes,
/// and the isosurface coloured by phase from two viewpoints.
public enum ObjectFigures {
    /// Checks that an object can be drawn: 3D, finite, not all zero.
    public static func validate(_ object: ComplexVolume, name: String) throws {
        guard object.rank == 3 else { throw ReportError.invalid("\(name): the object must be 3D, got shape \(object.shape)") }
        let nan = object.withUnsafeFloats { p in p.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
        if nan > 0 { throw ReportError.invalid("\(name): the object holds \(nan) NaN or infinite values") }
        if object.squaredNorm() == 0 { throw ReportError.invalid("\(name): the object is all zeros") }
    }

    /// The planes perpendicular to axis 0, 1, 2, with their (rows, columns) voxel sizes.
    static let planes: [(axis: Int, name: String)] = [(0, "z"), (1, "y"), (2, "x")]

    /// A 2-row montage: amplitude (grey) and phase (cyclic, masked by the support) through
    /// the support's centre, perpendicular to each axis. `voxelSize` in nm per axis (z, y, x),
    /// or in `lengthUnit` (e.g. 1 "voxels" when the voxel size is unknown).
    public static func slices(object: ComplexVolume, support: RealVolume, voxelSize: [Double], title: String = "",
                              lengthUnit: String = "nm") throws -> RGBImage {
        try validate(object, name: title.isEmpty ? "object" : title)
        guard support.shape == object.shape else {
            throw ReportError.invalid("support \(support.shape) does not match object \(object.shape)")
        }
        let amp = object.modulus(), phase = object.phase()
        let centre = support.centreOfMass().map { Int($0.rounded()) }
        let aMax = Double(amp.maximum())
        var ampRow: [RGBImage] = [], phRow: [RGBImage] = []
        for (axis, name) in planes {
            let k = min(max(centre[axis], 0), object.shape[axis] - 1)
            let a = try amp.slice(axis: axis, index: k), f = try phase.slice(axis: axis, index: k)
            let s = try support.slice(axis: axis, index: k)
            var px = voxelSize; px.remove(at: axis)
            ampRow.append(try SliceFigure.render(SlicePanel(title: "amplitude, \(name) = \(k)", values: a, map: .grey,
                                                            range: (0, aMax), unit: "a.u.", pixelSize: (px[0], px[1]),
                                                            lengthUnit: lengthUnit)))
            phRow.append(try SliceFigure.render(SlicePanel(title: "phase, \(name) = \(k)", values: f, support: s, map: .phase,
                                                           range: (-.pi, .pi), unit: "rad", pixelSize: (px[0], px[1]),
                                                           lengthUnit: lengthUnit)))
        }
        return SliceFigure.montage([ampRow, phRow])
    }

    /// The isosurface of the amplitude at the level enclosing `fraction` of it, coloured by
    /// phase. Vertices are in nm (x, y, z = axes 2, 1, 0).
    public static func isosurface(object: ComplexVolume, fraction: Double = 0.9, voxelSize: [Double]) throws -> Mesh {
        try validate(object, name: "object")
        let amp = object.modulus()
        let level = try Isosurface.level(enclosing: fraction, of: amp)
        var mesh = try Isosurface.extract(amp, level: level, spacing: voxelSize)
        Isosurface.colourByPhase(&mesh, object: object, spacing: voxelSize)
        return mesh
    }

    /// Two shaded views of a mesh side by side (the seed's Fig. 2 shows each crystal from
    /// two directions).
    public static func views(_ layers: [MeshLayer], size: Int = 360,
                             views: [View] = [View(azimuth: 35, elevation: 25), View(azimuth: 215, elevation: -20)]) -> RGBImage {
        SliceFigure.montage([views.map { MeshRenderer.render(layers, view: $0, size: size) }])
    }
}
