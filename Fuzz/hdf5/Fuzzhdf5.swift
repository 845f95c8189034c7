import Foundation
import Formats

/// The superblock reader (run on every file the HDF5 library refuses) and, when the library
/// opens the file, the group walk.
func body(_ path: String, _ data: Data) {
    _ = HDF5File.declaredEnd(of: path)
    if let f = try? HDF5File(reading: path) { _ = try? f.datasets() }
}

/// libFuzzer entry (#22): the bytes go through the reader as a file a user would give it.
/// Any thrown error is fine; a crash, hang or runaway allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    let path = NSTemporaryDirectory() + "braggkit-fuzz-\(getpid()).h5"
    guard FileManager.default.createFile(atPath: path, contents: data) else { return 0 }
    defer { unlink(path) }
    body(path, data)
    return 0
}
