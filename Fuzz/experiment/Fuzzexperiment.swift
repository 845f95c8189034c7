import Foundation
import Analysis

func body(_ path: String, _ data: Data) {
    _ = try? Experiment.load(path: path)
}

/// libFuzzer entry (#22): the bytes go through the reader as a file a user would give it.
/// Any thrown error is fine; a crash, hang or runaway allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    let path = NSTemporaryDirectory() + "braggkit-fuzz-\(getpid()).toml"
    guard FileManager.default.createFile(atPath: path, contents: data) else { return 0 }
    defer { unlink(path) }
    body(path, data)
    return 0
}
