import Foundation
import Numerics

// What a beamline reader brings back from a scan: the frames, and every number the
// geometry needs, as the beamline recorded them (motor names and degrees, not yet a
// scattering vector). The diffractometer model (Numerics.Diffractometer) turns these into
// a BraggGeometry; readers stay free of geometry.

/// The beamlines BraggKit reads, named as in `bragg prepare --beamline`.
public enum Beamline: String, CaseIterable, Sendable {
    /// APS 34-ID-C: TIFF series + SPEC file.
    case aps34IDC = "34idc"
    /// ESRF ID01: BLISS HDF5.
    case esrfID01 = "id01"
    /// PETRA III P10: Eiger master file (external links, bitshuffle/LZ4) + .fio file.
    case petraP10 = "p10"
    /// Diamond I13-1 / I16: NeXus.
    case diamondI16 = "i16"
    /// Any NeXus file with NXdetector + NXtransformations.
    case nexus = "nexus"
    /// SOLEIL SIXS: NeXus.
    case soleilSIXS = "sixs"
}

/// One rocking scan as a beamline recorded it.
public struct BeamlineScan {
    public var beamline: Beamline
    /// The frames (frame = rocking step, detector rows, detector columns), cut to the
    /// region of interest the beamline recorded.
    public var frames: FrameStack
    /// Scan number or name, for messages and provenance.
    public var scanName: String
    /// Photon energy, eV.
    public var energy: Double?
    /// Sample–detector distance, m.
    public var distance: Double?
    /// Detector pixel size (rows, columns), m.
    public var pixelSize: (row: Double, column: Double)?
    /// Every sample and detector circle angle, degrees, by the beamline's motor name, at
    /// the start of the scan (the scanned motor at its first point).
    public var angles: [String: Double]
    /// The motor that was scanned (rocked) and its step per frame, degrees.
    public var rockingMotor: String?
    public var rockingStep: Double?
    /// Incident-flux monitor per frame, and counting time per frame (s).
    public var monitor: [Double]?
    public var countTime: Double?
    /// Region of interest on the full detector: first row and column of the frames,
    /// and the full detector's shape (rows, columns), so that full-detector dark, flat
    /// and mask files can be cut to it.
    public var roiOrigin: (row: Int, column: Int)
    public var detectorShape: (rows: Int, columns: Int)?
    /// Where the direct beam hits the full detector at zero detector angles (row, column),
    /// when the beamline records it.
    public var directBeam: (row: Double, column: Double)?
    /// The lab directions (unit; x = y × z, y up, z along the beam) of increasing detector
    /// row and column index at zero detector angles, when the file records them (NeXus
    /// `NXdetector_module` `slow_pixel_direction`/`fast_pixel_direction` vectors); nil: the
    /// diffractometer preset's.
    public var pixelDirections: (row: SIMD3<Double>, column: SIMD3<Double>)?
    /// Anything else worth keeping in the results' provenance (name → text).
    public var notes: [String: String]

    public init(beamline: Beamline, frames: FrameStack, scanName: String, angles: [String: Double] = [:],
                roiOrigin: (row: Int, column: Int) = (0, 0)) {
        self.beamline = beamline; self.frames = frames; self.scanName = scanName
        self.angles = angles; self.roiOrigin = roiOrigin; self.notes = [:]
    }
}
