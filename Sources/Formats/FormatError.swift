import Foundation

/// A file that cannot be read or written as asked. Each case prints as one sentence
/// naming the file (and dataset), and what is wrong, so `bragg` can show it as is.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    /// The input file does not exist.
    case fileNotFound(path: String)
    /// The file exists but cannot be opened or read (permissions, I/O error).
    case unreadable(path: String, reason: String)
    /// The file ends before the data its header declares.
    case truncated(path: String, reason: String)
    /// The file's header cannot be understood.
    case badHeader(path: String, reason: String)
    /// An element type this reader does not handle.
    case unknownDType(path: String, dtype: String)
    /// A file named like HDF5 (.h5, .cxi, …) that is not HDF5.
    case notHDF5(path: String)
    /// A dataset (HDF5 path, NPZ member, VTI array) that is not in the file.
    case datasetNotFound(path: String, dataset: String, available: [String])
    /// The file holds several arrays and none was named.
    case datasetNeeded(path: String, available: [String])
    /// The array has the wrong kind (real/complex) or rank or shape for the request.
    case wrongShape(path: String, dataset: String?, reason: String)
    /// An output that exists already and may not be overwritten.
    case outputExists(path: String)
    /// The file's extension names no format this module knows.
    case unknownFormat(path: String)
    /// Writing failed.
    case writeFailed(path: String, reason: String)
    /// The HDF5 library refused an operation.
    case hdf5(path: String, reason: String)
    /// The request is valid but this format cannot hold it.
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p):
            return "file \(p) does not exist"
        case .unreadable(let p, let r):
            return "cannot read \(p): \(r)"
        case .truncated(let p, let r):
            return "file \(p) is truncated: \(r)"
        case .badHeader(let p, let r):
            return "file \(p) has an invalid header: \(r)"
        case .unknownDType(let p, let d):
            return "file \(p) holds an unsupported element type '\(d)' (supported: bool, uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64, complex64, complex128)"
        case .notHDF5(let p):
            return "file \(p) is not an HDF5 file"
        case .datasetNotFound(let p, let d, let avail):
            return "file \(p) has no dataset \(d)" + FormatError.listing(avail, lead: "; existing")
        case .datasetNeeded(let p, let avail):
            return "file \(p) holds several arrays; name one as \(p):DATASET" + FormatError.listing(avail, lead: " — available")
        case .wrongShape(let p, let d, let r):
            return "array \(d.map { "\(p):\($0)" } ?? p) \(r)"
        case .outputExists(let p):
            return "output \(p) exists already"
        case .unknownFormat(let p):
            return "cannot tell the format of \(p) (expected .npy, .npz, .h5/.hdf5/.cxi/.nxs or .vti)"
        case .writeFailed(let p, let r):
            return "cannot write \(p): \(r)"
        case .hdf5(let p, let r):
            return "HDF5 error on \(p): \(r)"
        case .unsupported(let p, let r):
            return "\(p): \(r)"
        }
    }

    static func listing(_ names: [String], lead: String) -> String {
        if names.isEmpty { return "" }
        let shown = names.prefix(12).joined(separator: ", ")
        return "\(lead): \(shown)" + (names.count > 12 ? ", … (\(names.count) in all)" : "")
    }
}
