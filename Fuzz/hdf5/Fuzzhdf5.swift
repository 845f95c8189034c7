import Foundation
import Formats

/// The superblock reader (our own parse of the first bytes, run on every file the HDF5
/// library refuses, to say "truncated" with both sizes) and the group walk `bragg info`
/// makes, through the same protected path: `HDF5File(reading:)` first walks the groups in a
/// child process (libhdf5 1.10.8 crashes on some corrupt group B-trees: SEGV in
/// H5G__node_sumup under H5Gget_info, found by this target) and refuses the file when that
/// child dies, so neither a libhdf5 crash nor a hang may reach this process.
func body(_ path: String, _ data: Data) {
    _ = HDF5File.declaredEnd(of: path)
    guard let f = try? HDF5File(reading: path) else { return }
    _ = try? f.datasets()
}

nonisolated(unsafe) var inputs = 0

/// libFuzzer entry (#22): the bytes go through the reader as a file a user would give it.
/// Any thrown error is fine; a crash, hang or runaway allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    // A new name per input: files that passed the child's walk are remembered by path,
    // inode, size and modification time, which two quick inputs of one size could share.
    inputs += 1
    let path = NSTemporaryDirectory() + "braggkit-fuzz-\(getpid())-\(inputs).h5"
    guard FileManager.default.createFile(atPath: path, contents: data) else { return 0 }
    defer { unlink(path) }
    body(path, data)
    return 0
}
