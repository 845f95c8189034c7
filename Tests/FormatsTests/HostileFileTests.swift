import XCTest
import Foundation
@testable import Formats

/// Files that crash, hang or exhaust the HDF5 and TIFF libraries (#22): the group walk of
/// an HDF5 file runs first in a child process, and declared data that cannot be in the file
/// (or in memory) is refused before anything is allocated.
extension HardeningTests {
    /// A group B-tree that makes libhdf5 1.10.8 read through a null pointer (SIGSEGV in
    /// H5G__node_sumup under H5Gget_info). Found by fuzzing; before the child-process walk,
    /// `bragg info` on it died with SIGSEGV (exit 139) and so did this test process.
    func testCorruptGroupBTreeIsRefusedNotCrashed() throws {
        let bad = fixture("corrupt_group_btree.h5")
        for args in [["info", bad], ["convert", bad, path("c.npy")], ["phase", bad, "--out", path("o.cxi")]] {
            assertRefused(try bragg(args, timeout: 30), naming: bad, saying: "the HDF5 group structure is corrupt (libhdf5 failed reading it)", within: 5)
        }
        XCTAssertEqual(files(in: dir), [])
        // In this process too: the library refuses the file instead of letting the walk crash it.
        XCTAssertThrowsError(try HDF5File(reading: bad)) { e in
            XCTAssertTrue("\(e)".contains("group structure is corrupt"), "\(e)")
        }
        // A sound file still opens and lists its dataset after the child's walk.
        let good = path("good.h5")
        try ArrayIO.write(NDArray(dtype: .float32, shape: [2, 3], data: Data(count: 24)), to: good + ":/entry/data", overwrite: false)
        XCTAssertEqual(try HDF5File(reading: good).datasets().compactMap(\.name), ["/entry/data"])
    }

    /// 200 copies of a small CXI file written by `bragg`, each with 1–4 bytes set at random
    /// (fixed seed): `bragg info` must end every one within seconds, with exit 0 or 2, never
    /// by a signal. Runs eight at a time.
    func testByteFlippedCXIFilesNeitherHangNorCrash() throws {
        let npy = path("p.npy"), cxi = path("p.cxi")
        var values = Data()
        for i in 0..<(8 * 8 * 8) { var v = Float(i % 17); values.append(Data(bytes: &v, count: 4)) }
        try ArrayIO.write(NDArray(dtype: .float32, shape: [8, 8, 8], data: values), to: npy, overwrite: false)
        let made = try bragg(["convert", npy, cxi])
        XCTAssertEqual(made.status, 0, made.output)
        let original = try XCTUnwrap(FileManager.default.contents(atPath: cxi))
        var rng = SplitMix(seed: 22)
        var variants = [String]()
        for k in 0..<200 {
            var b = [UInt8](original)
            for _ in 0..<(1 + Int(rng.next() % 4)) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            let v = path("flip\(k).cxi")
            FileManager.default.createFile(atPath: v, contents: Data(b))
            variants.append(v)
        }
        let exe = try braggExecutable()
        var failures = [String]()
        for batch in stride(from: 0, to: variants.count, by: 8) {
            var running = [(String, Process, Date)]()
            for v in variants[batch..<min(batch + 8, variants.count)] {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: exe)
                p.arguments = ["info", v]
                p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
                try p.run()
                running.append((v, p, Date()))
            }
            for (v, p, t0) in running {
                while p.isRunning && Date().timeIntervalSince(t0) < 10 { usleep(10_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL); failures.append("\(v): still running after 10 s") }
                p.waitUntilExit()
                if p.terminationReason == .uncaughtSignal { failures.append("\(v): killed by signal \(p.terminationStatus)") }
                else if ![0, 2].contains(p.terminationStatus) { failures.append("\(v): exit \(p.terminationStatus)") }
            }
        }
        XCTAssertEqual(failures, [])
    }

    /// A header declaring far more data than the file holds, or than memory can: refused in
    /// one sentence before the allocation (which used to take the whole machine's memory, or
    /// stop the process when the allocation failed).
    func testDeclaredDataBeyondFileOrMemoryIsRefused() throws {
        // TIFF: one uncompressed 16-bit page of 65536 × 65536 pixels (8 GiB) in 200 bytes.
        let tif = path("huge.tif")
        FileManager.default.createFile(atPath: tif, contents: tiffHeader(width: 65536, height: 65536, bits: 16))
        // (TIFF frames are read by `bragg prepare`, whose callers allocate a page per reader.)
        XCTAssertThrowsError(try TIFFReader(tif)) { e in
            XCTAssertEqual("\(e)", "file \(tif) is truncated: page 1 declares 65536 × 65536 pixels of 16 bits (8589934592 bytes) but the file has \(tiffHeader(width: 1, height: 1, bits: 16).count)")
        }
        // A deflated stack of 64 such pages (1 TiB as floats): each page could be real, the
        // stack cannot be held whole (beyond any test machine's memory).
        let stack = path("stack.tif")
        FileManager.default.createFile(atPath: stack, contents: tiffHeader(width: 65536, height: 65536, bits: 16, pages: 64, compression: 8))
        let reader = try TIFFReader(stack)
        XCTAssertEqual(reader.shape, [64, 65536, 65536])
        XCTAssertThrowsError(try reader.readAll()) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(stack): 64 pages of 65536 × 65536 pixels are more than this machine's"), "\(e)")
        }
        // HDF5: a chunked, compressed dataset of 2⁵⁰ elements, never written (legal: it reads
        // as its fill value), so its size cannot be checked against the file: against memory.
        guard let py = python(with: ["h5py"]) else { throw XCTSkip("python3 with h5py not found") }
        let h5 = path("huge.h5"), contiguous = path("contiguous.h5")
        let script = """
            import h5py, numpy as np
            with h5py.File('\(h5)', 'w') as f:
                f.create_dataset('data', shape=(1 << 20, 1 << 20, 1 << 10), dtype='f4', chunks=(1, 64, 64), compression='gzip')
            with h5py.File('\(contiguous)', 'w') as f:
                f['data'] = np.arange(123457, dtype=np.float32)
            # The contiguous dataset's extent (and the layout's size) made 2^32 elements: 16 GiB
            # of data declared at an address in a 500 kB file.
            b = bytearray(open('\(contiguous)', 'rb').read())
            old, new = (123457).to_bytes(8, 'little'), (1 << 32).to_bytes(8, 'little')
            assert old in b
            b = b.replace(old, new)
            old4, new4 = (123457 * 4).to_bytes(8, 'little'), ((1 << 32) * 4).to_bytes(8, 'little')
            b = b.replace(old4, new4)
            open('\(contiguous)', 'wb').write(b)
            """
        let (s, o) = try runProcess(py, ["-c", script])
        XCTAssertEqual(s, 0, o)
        assertRefused(try bragg(["convert", h5, path("h.npy")], timeout: 30), naming: h5, saying: "bytes of memory")
        assertRefused(try bragg(["phase", h5, "--out", path("h.cxi")], timeout: 30), naming: h5, saying: "bytes of memory")
        // `info` streams its statistics, so only data far beyond what the file stores is refused.
        assertRefused(try bragg(["info", h5], timeout: 30), naming: h5, saying: "but the file stores 0 bytes of it")
        let r = try bragg(["convert", contiguous, path("c.npy")], timeout: 30)
        assertRefused(r, naming: contiguous, saying: "4294967296 elements")
        XCTAssertEqual(files(in: dir).filter { $0.hasSuffix(".npy") || $0.hasSuffix(".cxi") }, [])
    }

    /// A little-endian baseline TIFF: `pages` directories of greyscale pages (compression 1:
    /// none, 8: deflate) sharing one 8-byte strip at offset 8, far shorter than each declares.
    func tiffHeader(width: UInt32, height: UInt32, bits: UInt16, pages: Int = 1, compression: UInt16 = 1) -> Data {
        var d = Data([0x49, 0x49, 42, 0]); d.append(le32(16)); d.append(Data(count: 8))
        let entries: [(UInt16, UInt16, UInt32)] = [   // tag, type (3 SHORT, 4 LONG), value
            (256, 4, width), (257, 4, height), (258, 3, UInt32(bits)), (259, 3, UInt32(compression)), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, 8),
        ]
        for k in 0..<pages {
            d.append(le16(UInt16(entries.count)))
            for (tag, type, value) in entries {
                d.append(le16(tag)); d.append(le16(type)); d.append(le32(1))
                d.append(type == 3 ? le16(UInt16(value)) + le16(0) : le32(value))
            }
            d.append(le32(k + 1 < pages ? UInt32(d.count + 4) : 0))   // the next directory follows
        }
        return d
    }

    func le16(_ v: UInt16) -> Data { Data([UInt8(v & 0xFF), UInt8(v >> 8)]) }
    func le32(_ v: UInt32) -> Data { Data((0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) }) }
}

/// A small seeded generator (SplitMix64) for reproducible corruptions.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
