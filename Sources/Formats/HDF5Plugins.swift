import CHDF5
import Foundation

// HDF5 compression filters that live outside the library (bitshuffle/LZ4 of Dectris Eiger
// files at PETRA III P10, LZ4, BZip2) are loaded by HDF5 from a plugin folder. Debian's
// packages `bitshuffle` (filter 32008) and `hdf5-filter-plugin` (LZ4 32004, BZip2 307)
// install them in /usr/lib/<arch>/hdf5/serial/plugins. Debian's libhdf5 already searches
// there; the folder is appended to the search path anyway when HDF5 does not list it (another
// build of the library), so that no user has to set HDF5_PLUGIN_PATH.

public enum HDF5Plugins {
    /// Filter names for messages, by HDF5 filter id (the registered ids of The HDF Group).
    public static let knownFilters: [Int: String] = [
        1: "gzip", 2: "shuffle", 3: "Fletcher32", 4: "szip", 5: "nbit", 6: "scale-offset",
        307: "BZip2", 32000: "LZF", 32001: "Blosc", 32004: "LZ4", 32008: "bitshuffle (with LZ4)",
        32013: "ZFP", 32015: "Zstandard",
    ]

    /// Where Debian installs HDF5 plugins (serial library), for this machine's architecture.
    static func systemFolders() -> [String] {
        let fm = FileManager.default
        let archs = (try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? []
        return archs.filter { $0.hasSuffix("-linux-gnu") }.sorted()
            .map { "/usr/lib/\($0)/hdf5/serial/plugins" }
            .filter { fm.fileExists(atPath: $0) }
    }

    /// The folders HDF5 searches for plugins now.
    public static func searchPath() -> [String] {
        var n: UInt32 = 0
        guard H5PLsize(&n) >= 0 else { return [] }
        var out = [String]()
        for i in 0..<n {
            let len = H5PLget(i, nil, 0)
            guard len > 0 else { continue }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            H5PLget(i, &buf, Int(len) + 1)
            out.append(String(cString: buf))
        }
        return out
    }

    /// Appends Debian's plugin folders to HDF5's search path where missing (done once, when
    /// the first HDF5 file is opened).
    static let appendSystemFolders: Void = {
        let known = Set(searchPath().map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        for f in systemFolders() where !known.contains(URL(fileURLWithPath: f).standardizedFileURL.path) {
            H5PLappend(f)
        }
    }()

    /// Whether HDF5 can decode filter `id` (loading its plugin if needed).
    public static func isAvailable(_ id: Int) -> Bool {
        _ = HDF5File.setUp
        _ = appendSystemFolders
        return H5Zfilter_avail(H5Z_filter_t(id)) > 0
    }

    /// What to install for a filter HDF5 cannot decode.
    static func remedy(for id: Int) -> String {
        switch id {
        case 32008: return "install Debian's `bitshuffle` package (it puts libh5bshuf.so in the HDF5 plugin folder)"
        case 32004, 307: return "install Debian's `hdf5-filter-plugin` package"
        case 32000: return "install Debian's `hdf5-plugin-lzf` package"
        case 32001: return "install Debian's `hdf5-filter-plugin-blosc-serial` package"
        case 32013: return "install Debian's `hdf5-filter-plugin-zfp-serial` package"
        default: return "install an HDF5 plugin for it, or point HDF5_PLUGIN_PATH at one"
        }
    }
}

extension HDF5File {
    /// The compression/transform filters of a dataset, in pipeline order (HDF5 filter ids).
    public func filters(of dpath: String) throws -> [Int] {
        let p = HDF5File.normalise(dpath)
        let d = H5Dopen2(id, p, HDF5File.P)
        guard d >= 0 else { throw FormatError.datasetNotFound(path: path, dataset: p, available: suggestions(for: p)) }
        defer { H5Dclose(d) }
        let dcpl = H5Dget_create_plist(d)
        defer { H5Pclose(dcpl) }
        let n = H5Pget_nfilters(dcpl)
        var out = [Int]()
        for i in 0..<max(n, 0) {
            var flags: UInt32 = 0, nelmts = 0, config: UInt32 = 0
            var name = [CChar](repeating: 0, count: 64)
            let f = H5Pget_filter2(dcpl, UInt32(i), &flags, &nelmts, nil, 64, &name, &config)
            if f >= 0 { out.append(Int(f)) }
        }
        return out
    }

    /// Checks before any frame is read that HDF5 can decode every filter of `dpath`; else
    /// one sentence naming the filter and the package that provides it.
    public func checkFilters(of dpath: String) throws {
        for f in try filters(of: dpath) where !HDF5Plugins.isAvailable(f) {
            let name = HDF5Plugins.knownFilters[f].map { "\($0), HDF5 filter \(f)" } ?? "HDF5 filter \(f)"
            throw FormatError.unsupported(path: path, reason: "dataset \(HDF5File.normalise(dpath)) is compressed with \(name), which this HDF5 library cannot decode: \(HDF5Plugins.remedy(for: f))")
        }
    }
}
