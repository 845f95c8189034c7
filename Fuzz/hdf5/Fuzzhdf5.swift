import Foundation
import Formats

/// The superblock reader: our own parse of the first bytes, run on every file the HDF5
/// library refuses (to say "truncated" with both sizes). The group walk is not fuzzed here:
/// its input goes through libhdf5 first, and libhdf5 1.10.8 itself crashes on corrupt group
/// B-trees (SEGV in H5G__node_sumup under H5Gget_info, found in the first 10-minute run);
/// the walk's own bounds are tested in HardeningTests.testHDF5LinkCyclesEndTheWalk.
func body(_ path: String, _ data: Data) {
    _ = HDF5File.declaredEnd(of: path)
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
