import Foundation
import Numerics
import Formats

/// The experiment geometry a NeXus scan file records, where it records it: energy,
/// detector distance, pixel size, 2θ and the rocking angles (their mean step). Values are
/// converted to SI (eV for energy) from their `units` attribute; what is absent stays nil.
public enum NeXusGeometry {
    static let energyPaths = ["/entry/instrument/source/energy", "/entry/instrument/monochromator/energy",
                              "/entry/instrument/beam/incident_energy", "/entry/instrument/energy"]
    static let distancePaths = ["/entry/instrument/detector/distance", "/entry/instrument/detector/detector_distance"]
    static let pixelPaths = ["/entry/instrument/detector/x_pixel_size", "/entry/instrument/detector/pixel_size"]
    static let twoThetaPaths = ["/entry/instrument/detector/two_theta", "/entry/instrument/detector/polar_angle",
                                "/entry/instrument/two_theta"]
    static let anglePaths = ["/entry/sample/rocking_angle", "/entry/sample/rocking_angles", "/entry/instrument/rocking_angle",
                             "/entry/sample/omega", "/entry/sample/eta", "/entry/data/rocking_angle"]

    public static func read(from f: HDF5File) -> CXIGeometry {
        var g = CXIGeometry()
        g.energy = first(f, energyPaths).map { v, u in
            switch u { case "kev": return v * 1e3; case "j": return v / 1.602176634e-19; default: return v }
        }
        g.detectorDistance = first(f, distancePaths).map { v, u in length(v, u) }
        g.pixelSize = first(f, pixelPaths).map { v, u in length(v, u) }
        g.twoTheta = first(f, twoThetaPaths).map { v, u in angle(v, u) }
        for p in anglePaths where f.isDataset(p) {
            guard let a = try? f.readDoubles(p), a.count >= 2 else { continue }
            let u = unit(f, p)
            g.rockingStep = angle((a.last! - a.first!) / Double(a.count - 1), u)
            break
        }
        return g
    }

    static func unit(_ f: HDF5File, _ p: String) -> String {
        ((try? f.attribute("units", of: p))??.stringValue ?? "").lowercased()
    }

    static func first(_ f: HDF5File, _ paths: [String]) -> (Double, String)? {
        for p in paths where f.isDataset(p) {
            if let v = try? f.readDoubles(p), let x = v.first, x.isFinite { return (x, unit(f, p)) }
        }
        return nil
    }

    static func length(_ v: Double, _ u: String) -> Double {
        switch u { case "mm": return v * 1e-3; case "um", "µm", "micron", "microns": return v * 1e-6; case "cm": return v * 1e-2; default: return v }
    }

    /// NeXus angles are in degrees unless the units say radians.
    static func angle(_ v: Double, _ u: String) -> Double {
        u.hasPrefix("rad") ? v : v * Double.pi / 180
    }
}
