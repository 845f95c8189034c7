import Foundation
import Numerics
import Formats

// APS 34-ID-C: a rocking scan is a folder of TIFF frames written by the EPICS areaDetector
// (one frame per point, in file-name order) and a scan of the beamline's SPEC file.
// Where each number comes from (checked on the shared scan 54, ../shared/realdata):
// - the scanned circle and its range: the `#S` command (`ascan th -0.279996 0.720004 200
//   0.25`); the motor line `#P` holds the circle BEFORE the scan (Theta 0.2200042), so the
//   first frame's angle is the scan's first point (the data column of that motor when
//   recorded, else the command's start);
// - circle angles: `#O` names / `#P` positions (Delta, Theta, Chi, Phi, Mu, Gamma);
// - distance: the `camdist` motor, mm;
// - energy: the `Energy` motor, keV (the monochromator). `IDEnergy` is the undulator's
//   setting, which sits a little above the photon energy by design (the undulator
//   harmonic is broad and is tuned on its high side); the monochromator picks the energy
//   that reaches the sample, as cohere's 34-ID-C reader also takes it;
// - detector: `#UIMDET` (e.g. "34idcTIM2:"), its pixel size from the table below (the
//   detectors' 55 µm Timepix pixels, as cohere's 34-ID-C detector classes give);
// - region of interest: `#UIMR5 minX sizeX minY sizeY …` (areaDetector's X = columns,
//   Y = rows), the full detector from `#Readout minX sizeX minY sizeY`;
// - monitor: the `Monitor` column (ion chamber counts per point), counting time `#T`.

/// A detector of 34-ID-C: pixel size and full size.
public struct APS34IDCDetector: Sendable {
    public var name: String
    public var pixelSize: Double
    public var rows: Int
    public var columns: Int
}

public enum APS34IDC {
    /// Detectors by their areaDetector prefix (without the trailing ':').
    public static let detectors: [String: APS34IDCDetector] = [
        "34idcTIM1": APS34IDCDetector(name: "34idcTIM1", pixelSize: 55e-6, rows: 256, columns: 256),
        "34idcTIM2": APS34IDCDetector(name: "34idcTIM2", pixelSize: 55e-6, rows: 512, columns: 512),
    ]
    /// The diffractometer's circles, as the SPEC file names them: sample Theta, Chi, Phi
    /// (and Mu), detector Delta (in the horizontal plane) and Gamma (elevation).
    public static let circles = ["Theta", "Chi", "Phi", "Mu", "Delta", "Gamma"]
    /// The region of interest the TIFF frames hold.
    public static let roiLine = "UIMR5"

    /// Reads scan `number` of `specPath` with its frames from `folder` (a folder of TIFF
    /// frames). Checks, before any frame is read, that the folder holds one frame per
    /// point of the scan and that the frames have the region of interest's size.
    public static func read(folder: String, specPath: String, scan number: Int) throws -> BeamlineScan {
        let spec = try SPECFile(path: specPath)
        let s = try spec.scan(number)
        let name = "\(specPath) #S \(number)"
        let frames: FrameStack
        do {
            frames = try TIFFFrameStack(paths: TIFFFrameStack.series(inFolder: folder))
        }
        var scan = BeamlineScan(beamline: .aps34IDC, frames: frames, scanName: name)

        // The rocking circle: the one motor the command scanned.
        guard let rocked = s.scannedMotors.first, s.scannedMotors.count == 1, let n = s.intervals, n > 0 else {
            if s.scannedMotors.count > 1 {
                throw PreparationError.invalidOption("scan #S \(number) of \(specPath) moves \(s.scannedMotors.count) motors (\(s.command)); a rocking scan moves one circle")
            }
            throw SPECError.unsupportedCommand(path: specPath, scan: number, command: s.command)
        }
        guard circles.contains(rocked.name) else {
            throw PreparationError.invalidOption("scan #S \(number) of \(specPath) scans \(rocked.name) (\(s.command)), not a diffractometer circle (\(circles.joined(separator: ", ")))")
        }
        let points = s.points > 0 ? s.points : n + 1
        guard frames.shape[0] == points else {
            throw PreparationError.invalidOption("\(folder) holds \(frames.shape[0]) frames but scan #S \(number) of \(specPath) recorded \(points) points (\(s.command))")
        }
        scan.rockingMotor = rocked.name
        scan.rockingStep = (rocked.end - rocked.start) / Double(n)

        // Circle angles before the scan, the rocked one at the first point.
        for c in circles {
            if let v = s.motorPositions[c] { scan.angles[c] = v }
        }
        for c in ["Delta", "Gamma", rocked.name] where scan.angles[c] == nil {
            throw SPECError.motorMissing(path: specPath, scan: number, motor: c, available: s.motorNames)
        }
        scan.angles[rocked.name] = s.column(rocked.name)?.first ?? rocked.start

        scan.energy = try s.position("Energy") * 1000
        scan.distance = try s.position("camdist") * 1e-3

        // Detector and region of interest.
        let detName = try s.requireHeader("UIMDET").trimmingCharacters(in: CharacterSet(charactersIn: ": "))
        let det = detectors[detName]
        if let d = det { scan.pixelSize = (d.pixelSize, d.pixelSize) }
        scan.notes["detector"] = detName
        if let r = s.header["Readout"], let v = intFields(r), v.count >= 4 { scan.detectorShape = (v[3], v[1]) }
        else if let d = det { scan.detectorShape = (d.rows, d.columns) }
        let rows = frames.shape[1], cols = frames.shape[2]
        if let line = s.header[roiLine] {
            guard let v = intFields(line), v.count >= 4 else {
                throw SPECError.badLine(path: specPath, scan: number, line: "#\(roiLine) \(line)", reason: "expected minX sizeX minY sizeY")
            }
            if v[3] == rows && v[1] == cols {
                scan.roiOrigin = (v[2], v[0])
            } else if let full = scan.detectorShape, full.rows == rows, full.columns == cols {
                scan.roiOrigin = (0, 0)   // full frames
            } else {
                throw PreparationError.invalidOption("the frames in \(folder) are \(rows)×\(cols) pixels but scan #S \(number) of \(specPath) records the region of interest #\(roiLine) \(line) (\(v[3])×\(v[1]) pixels from row \(v[2]), column \(v[0]))")
            }
        } else if let full = scan.detectorShape, full.rows == rows, full.columns == cols {
            scan.roiOrigin = (0, 0)
        } else {
            throw SPECError.headerMissing(path: specPath, scan: number, line: roiLine)
        }

        if let m = s.column("Monitor"), m.count == points, m.allSatisfy({ $0 > 0 && $0.isFinite }) { scan.monitor = m }
        scan.countTime = s.countTime
        scan.notes["spec_file"] = specPath
        scan.notes["spec_scan"] = String(number)
        scan.notes["spec_command"] = s.command
        if let d = s.header["D"] { scan.notes["date"] = d }
        if let e = s.motorPositions["IDEnergy"] { scan.notes["undulator_energy_keV"] = String(e) }
        return scan
    }

    static func intFields(_ s: String) -> [Int]? {
        let v = s.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { Int($0) }
        return v.allSatisfy({ $0 != nil }) ? v.map { $0! } : nil
    }

    /// Pixels a 34-ID-C bad-pixel map marks (values > 1: dead or hot pixels, the "dark"
    /// file of the beamline), as a detector mask (1 = bad).
    public static func badPixelMask(_ map: RealVolume) -> RealVolume {
        map.map { $0 > 1 ? 1 : 0 }
    }

    /// The flat field (white field: counts of a uniform exposure) as relative efficiencies
    /// of mean 1 over the pixels it measured well; pixels below `minimumCounts` (cohere's
    /// 34-ID-C threshold: 100) hold too few counts to know their efficiency and become 0,
    /// which the preparation masks.
    public static func relativeEfficiency(_ flat: RealVolume, minimumCounts: Float = 100) throws -> RealVolume {
        var sum = 0.0, n = 0
        flat.withUnsafeFloats { p in for v in p where v >= minimumCounts && v.isFinite { sum += Double(v); n += 1 } }
        guard n > 0 else {
            throw PreparationError.badCalibration(what: "flat field", reason: "no pixel reaches \(Int(minimumCounts)) counts in the region of interest")
        }
        let mean = Float(sum / Double(n))
        return flat.map { $0 >= minimumCounts && $0.isFinite ? $0 / mean : 0 }
    }
}

extension BeamlineScan {
    /// A full-detector (or already cut) 2D calibration array cut to the frames' region of
    /// interest. Arrays of the frames' size are returned as they are.
    public func cutToROI(_ field: RealVolume, what: String) throws -> RealVolume {
        var f = field
        if f.rank == 3 && f.shape[0] == 1 { f = try f.reshaped(Array(f.shape.dropFirst())) }
        let rows = frames.shape[1], cols = frames.shape[2]
        guard f.rank == 2 else {
            throw PreparationError.badCalibration(what: what, reason: "expected one 2D image, got shape \(f.shape)")
        }
        if f.shape == [rows, cols] { return f }
        let o = roiOrigin
        guard o.row >= 0, o.column >= 0, o.row + rows <= f.shape[0], o.column + cols <= f.shape[1] else {
            throw PreparationError.badCalibration(what: what, reason: "its \(f.shape[0])×\(f.shape[1]) pixels do not hold the scan's region of interest (\(rows)×\(cols) pixels from row \(o.row), column \(o.column))")
        }
        if let d = detectorShape, f.shape != [d.rows, d.columns] {
            throw PreparationError.badCalibration(what: what, reason: "it is \(f.shape[0])×\(f.shape[1]) pixels, neither the frames' \(rows)×\(cols) nor the full detector's \(d.rows)×\(d.columns)")
        }
        return try f.cropped(start: [o.row, o.column], size: [rows, cols])
    }
}
