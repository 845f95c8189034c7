import XCTest
@testable import Formats
import Numerics

/// The values make_fixtures.py stores: element i of each dtype (C order).
enum Expected {
    static let shape = [2, 3, 4]
    static func value(_ d: DType, _ i: Int) -> (re: Double, im: Double) {
        switch d {
        case .bool: return (i % 3 == 0 ? 1 : 0, 0)
        case .int8: return (Double((i % 7 - 3) * 10), 0)
        case .int16: return (Double((i % 7 - 3) * 1000), 0)
        case .int32: return (Double((i % 7 - 3) * 100000), 0)
        case .int64: return (Double((i % 7 - 3)) * 1e12, 0)
        case .uint8: return (Double((i % 11) * 20), 0)
        case .uint16: return (Double((i % 11) * 6000), 0)
        case .uint32: return (Double((i % 11) * 400000000), 0)
        case .uint64: return (Double(i % 11) * 1e15, 0)
        case .float32, .float64: return (Double(i) * 0.5 - 3.25, 0)
        case .complex64, .complex128: return (Double(i) * 0.5, -(Double(i) * 0.25 - 1))
        }
    }
    static func reals(_ d: DType, _ n: Int = 24) -> [Double] { (0..<n).map { value(d, $0).re } }
}

func fixture(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!.path
}

func tempDir() throws -> String {
    let d = NSTemporaryDirectory() + "braggkit-formats-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Runs a program and returns (status, stdout + stderr).
@discardableResult
func runProcess(_ exe: String, _ args: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe; p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// python3 with numpy (and optionally h5py/vtk), or nil.
func python(with modules: [String]) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin"]
    for exe in dirs.map({ $0 + "/python3" }) where FileManager.default.isExecutableFile(atPath: exe) {
        let check = "import " + (["numpy"] + modules).joined(separator: ", ")
        if let (s, _) = try? runProcess(exe, ["-c", check]), s == 0 { return exe }
    }
    return nil
}

final class NPYTests: XCTestCase {
    func testEveryDtypeWrittenByNumpyReadsExactly() throws {
        for d in DType.allCases {
            let a = try ArrayIO.read(fixture("\(d.rawValue).npy"))
            XCTAssertEqual(a.dtype, d, "\(d)")
            XCTAssertEqual(a.shape, Expected.shape, "\(d)")
            XCTAssertEqual(a.doubles(), Expected.reals(d), "\(d)")
            if d.isComplex {
                let c = try ArrayIO.readComplex(fixture("\(d.rawValue).npy"))
                for i in 0..<24 {
                    XCTAssertEqual(Double(c[flat: i].re), Expected.value(d, i).re)
                    XCTAssertEqual(Double(c[flat: i].im), Expected.value(d, i).im)
                }
                XCTAssertThrowsError(try ArrayIO.readReal(fixture("\(d.rawValue).npy"))) { e in
                    XCTAssertTrue("\(e)".contains("complex"), "\(e)")
                }
            } else {
                let r = try ArrayIO.readReal(fixture("\(d.rawValue).npy"))
                XCTAssertEqual(r.shape, Expected.shape)
                XCTAssertEqual(r.floats, Expected.reals(d).map { Float($0) }, "\(d)")
                let c = try ArrayIO.readComplex(fixture("\(d.rawValue).npy"))
                XCTAssertEqual(c.real().floats, r.floats)
                XCTAssertEqual(c.imaginary().maximum(), 0)
            }
        }
    }

    func testFortranOrderBigEndianAndHeaderVersions() throws {
        let ref = Expected.reals(.float32).map { Float($0) }
        for name in ["float32_fortran", "float32_be", "float32_v2", "float32_v3"] {
            let v = try ArrayIO.readReal(fixture(name + ".npy"))
            XCTAssertEqual(v.shape, Expected.shape, name)
            XCTAssertEqual(v.floats, ref, name)
            XCTAssertEqual(try ArrayIO.read(fixture(name + ".npy")).doubles(), Expected.reals(.float32), name)
        }
        let h = try NPY.header(of: fixture("float32_v3.npy"))
        XCTAssertEqual(h.dataOffset % 64, 0)
        let fbe = try ArrayIO.read(fixture("int16_fortran_be.npy"))
        XCTAssertEqual(fbe.dtype, .int16)
        XCTAssertEqual(fbe.doubles(), Expected.reals(.int16))
        for d: DType in [.float64, .int32, .uint16, .complex64, .complex128] {
            let a = try ArrayIO.read(fixture("\(d.rawValue)_be.npy"))
            XCTAssertEqual(a, try ArrayIO.read(fixture("\(d.rawValue).npy")), "big-endian \(d)")
        }
        let cbe = try ArrayIO.readComplex(fixture("complex64_be.npy"))
        XCTAssertEqual(cbe, try ArrayIO.readComplex(fixture("complex64.npy")))
    }

    func testRanksOtherThanThree() throws {
        XCTAssertEqual(try ArrayIO.read(fixture("float64_1d.npy")).shape, [24])
        XCTAssertEqual(try ArrayIO.readReal(fixture("float32_2d.npy")).shape, [4, 6])
        let s = try ArrayIO.read(fixture("scalar.npy"))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.doubles(), [2.5])
        XCTAssertEqual(try ArrayIO.readReal(fixture("scalar.npy")).floats, [2.5])
    }

    func testNPZStoredAndDeflated() throws {
        for name in ["stored.npz", "deflated.npz"] {
            XCTAssertEqual(Set(try NPZ.memberNames(fixture(name))), ["f", "c", "u"])
            let listed = try ArrayIO.list(fixture(name)).sorted { $0.name! < $1.name! }
            XCTAssertEqual(listed, [ArrayInfo(name: "c", shape: [6, 4], dtype: "complex64"),
                                    ArrayInfo(name: "f", shape: [2, 3, 4], dtype: "float32"),
                                    ArrayInfo(name: "u", shape: [24], dtype: "uint16")])
            XCTAssertEqual(try ArrayIO.read(fixture(name) + ":f").doubles(), Expected.reals(.float32))
            let c = try ArrayIO.readComplex(fixture(name) + ":c")
            XCTAssertEqual(c.shape, [6, 4])
            XCTAssertEqual(Double(c[flat: 7].im), Expected.value(.complex64, 7).im)
            let u = try ArrayIO.read(fixture(name) + ":u.npy")
            XCTAssertEqual(u.dtype, .uint16)
            XCTAssertEqual(u.doubles(), Expected.reals(.uint16))
            XCTAssertThrowsError(try ArrayIO.read(fixture(name))) { e in
                XCTAssertTrue("\(e)".contains("several arrays"), "\(e)")
            }
            XCTAssertThrowsError(try ArrayIO.read(fixture(name) + ":nope")) { e in
                XCTAssertTrue("\(e)".contains("no dataset nope") && "\(e)".contains("f"), "\(e)")
            }
        }
    }

    func testZip64NPZ() throws {
        // Zip64 end records and extra fields (as archives over 4 GiB have), written by Python's zipfile.
        XCTAssertEqual(try NPZ.memberNames(fixture("zip64.npz")), ["f", "i"])
        XCTAssertEqual(try ArrayIO.readReal(fixture("zip64.npz") + ":f").floats, Expected.reals(.float32).map { Float($0) })
        let i = try ArrayIO.read(fixture("zip64.npz") + ":i")
        XCTAssertEqual(i.dtype, .int32)
        XCTAssertEqual(i.doubles(), Expected.reals(.int32))
    }

    func testFortranTransposeOfLargerOddShape() throws {
        // A 4D odd shape: every axis permutation matters.
        let shape = [3, 5, 2, 7]
        let n = shape.reduce(1, *)
        var f = Data(count: n * 8)
        // Fortran element (a,b,c,d) at a + 3b + 15c + 30d holds its C index.
        f.withUnsafeMutableBytes { b in
            let p = b.bindMemory(to: Double.self)
            for a in 0..<3 { for bb in 0..<5 { for c in 0..<2 { for d in 0..<7 {
                p[a + 3 * bb + 15 * c + 30 * d] = Double(((a * 5 + bb) * 2 + c) * 7 + d)
            } } } }
        }
        let c = NDArray.fortranToC(f, shape: shape, itemSize: 8)
        let out = try NDArray(dtype: .float64, shape: shape, data: c).doubles()
        XCTAssertEqual(out, (0..<n).map(Double.init))
    }

    func testWrittenFilesReadBackAndOpenInNumpy() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var arrays = [(String, NDArray)]()
        for d in DType.allCases {
            let a = try ArrayIO.read(fixture("\(d.rawValue).npy"))
            try ArrayIO.write(a, to: "\(dir)/\(d.rawValue).npy", overwrite: false)
            XCTAssertEqual(try ArrayIO.read("\(dir)/\(d.rawValue).npy"), a)
            // Byte-identical to numpy's own file.
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(d.rawValue).npy")),
                           try Data(contentsOf: URL(fileURLWithPath: fixture("\(d.rawValue).npy"))), "\(d)")
            arrays.append((d.rawValue, a))
        }
        try NPZ.write(arrays, to: "\(dir)/stored.npz", compressed: false, overwrite: false)
        try NPZ.write(arrays, to: "\(dir)/deflated.npz", compressed: true, overwrite: false)
        for (n, a) in arrays {
            XCTAssertEqual(try ArrayIO.read("\(dir)/stored.npz:\(n)"), a)
            XCTAssertEqual(try ArrayIO.read("\(dir)/deflated.npz:\(n)"), a)
        }
        var vol = RealVolume(shape: [5, 6, 7])
        vol.withUnsafeMutableFloats { for i in 0..<$0.count { $0[i] = Float(i) * 0.25 - 7 } }
        try ArrayIO.write(vol, to: "\(dir)/vol.npy", overwrite: false)
        let cvol = try ComplexVolume(real: vol, imaginary: vol.map { -$0 })
        try ArrayIO.write(cvol, to: "\(dir)/cvol.npy", overwrite: false)
        XCTAssertEqual(try ArrayIO.readComplex("\(dir)/cvol.npy"), cvol)

        guard let py = python(with: []) else { throw XCTSkip("python3 with numpy not found: numpy-side checks skipped") }
        let script = """
            import numpy as np, sys
            d = sys.argv[1]
            i = np.arange(24)
            def values(k):
                if k == 'bool': return i % 3 == 0
                if k.startswith('int'): return (i % 7 - 3) * {'int8': 10, 'int16': 1000, 'int32': 100000, 'int64': 10**12}[k]
                if k.startswith('uint'): return (i % 11) * {'uint8': 20, 'uint16': 6000, 'uint32': 400000000, 'uint64': 10**15}[k]
                if k.startswith('float'): return i * 0.5 - 3.25
                return i * 0.5 - 1j * (i * 0.25 - 1)
            kinds = ['bool','uint8','int8','int16','uint16','int32','uint32','int64','uint64','float32','float64','complex64','complex128']
            for src in ['npy', 'stored', 'deflated']:
                z = None if src == 'npy' else np.load(f'{d}/{src}.npz')
                for k in kinds:
                    a = np.load(f'{d}/{k}.npy') if z is None else z[k]
                    assert a.dtype == np.dtype(k), (src, k, a.dtype)
                    assert a.shape == (2, 3, 4), (src, k, a.shape)
                    assert np.array_equal(a.ravel(), values(k).astype(k)), (src, k)
            v = np.load(f'{d}/vol.npy')
            assert v.dtype == np.float32 and v.shape == (5, 6, 7)
            assert np.array_equal(v.ravel(), (np.arange(210) * 0.25 - 7).astype(np.float32))
            c = np.load(f'{d}/cvol.npy')
            assert c.dtype == np.complex64 and np.array_equal(c, v - 1j * v)
            print('numpy agrees')
            """
        let (status, out) = try runProcess(py, ["-c", script, dir])
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("numpy agrees"), out)
    }
}

final class HDF5Tests: XCTestCase {
    func testReadsH5pyFixture() throws {
        let path = fixture("h5py_fixture.h5")
        let list = try ArrayIO.list(path)
        let byName = Dictionary(uniqueKeysWithValues: list.map { ($0.name!, $0) })
        XCTAssertEqual(byName["/entry/data/data"]?.dtype, "float32")
        XCTAssertEqual(byName["/entry/data/data"]?.shape, [2, 3, 4])
        XCTAssertEqual(byName["/entry/data/counts"]?.dtype, "uint16")
        XCTAssertEqual(byName["/complex64"]?.dtype, "complex64")
        XCTAssertEqual(byName["/complex128"]?.dtype, "complex128")
        XCTAssertEqual(byName["/bool"]?.dtype, "bool")
        XCTAssertEqual(byName["/scalar"]?.shape, [])

        // Chunked + gzip (and shuffle) datasets, every numeric type, kept dtype.
        XCTAssertEqual(try ArrayIO.readReal(path + ":/entry/data/data").floats, Expected.reals(.float32).map { Float($0) })
        XCTAssertEqual(try ArrayIO.readReal(path + ":entry/data/data").shape, [2, 3, 4])
        for (ds, d) in [("/entry/data/counts", DType.uint16), ("/int16", .int16), ("/int64", .int64),
                        ("/float64", .float64), ("/bool", .bool), ("/big_endian", .float32)] {
            let a = try ArrayIO.read(path + ":" + ds)
            XCTAssertEqual(a.dtype, d, ds)
            XCTAssertEqual(a.doubles(), Expected.reals(d), ds)
            XCTAssertEqual(try ArrayIO.readReal(path + ":" + ds).floats, Expected.reals(d).map { Float($0) }, ds)
        }
        // Complex: compound (r, i) of both precisions, and a trailing axis of 2.
        for ds in ["/complex64", "/complex128", "/pairs"] {
            let c = try ArrayIO.readComplex(path + ":" + ds)
            XCTAssertEqual(c.shape, [2, 3, 4], ds)
            for i in 0..<24 {
                XCTAssertEqual(Double(c[flat: i].re), Expected.value(.complex64, i).re, ds)
                XCTAssertEqual(Double(c[flat: i].im), Expected.value(.complex64, i).im, ds)
            }
        }
        XCTAssertEqual(try ArrayIO.read(path + ":/complex128").dtype, .complex128)
        XCTAssertThrowsError(try ArrayIO.readReal(path + ":/complex64"))
        // A real dataset read as complex gets a zero imaginary part (spread in place).
        let rc = try ArrayIO.readComplex(path + ":/float64")
        XCTAssertEqual(rc.real().floats, Expected.reals(.float64).map { Float($0) })
        XCTAssertEqual(rc.imaginary().floats, [Float](repeating: 0, count: 24))

        let f = try HDF5File(reading: path)
        XCTAssertEqual(try f.readScalar("/scalar"), 2.5)
        let attrs = try f.attributes(of: "/entry/data/data")
        XCTAssertEqual(attrs["units"], .string("counts"))
        XCTAssertEqual(attrs["energy"], .double(9000))
        XCTAssertEqual(attrs["frame"], .int(7))
        XCTAssertEqual(attrs["q"], .doubles([1, 2, 3]))
        XCTAssertEqual(try f.attribute("title", of: "/"), .string("BraggKit test fixture"))
        let st = try f.statistics("/entry/data/data", slabBytes: 40)   // forces 1-row slabs
        XCTAssertEqual(st.minimum, -3.25); XCTAssertEqual(st.maximum, 8.25)
        XCTAssertEqual(st.mean, Expected.reals(.float32).reduce(0, +) / 24, accuracy: 1e-12)
        XCTAssertEqual(st.count, 24)
        XCTAssertEqual(try f.statistics("/entry/data/data"), st)
    }

    func testWriteReadEveryDtypeAndAttributes() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/all.h5"
        var arrays = [(String, NDArray)]()
        for d in DType.allCases { arrays.append((d.rawValue, try ArrayIO.read(fixture("\(d.rawValue).npy")))) }
        var vol = RealVolume(shape: [40, 50, 60])   // 480 kB: chunked and compressed
        vol.withUnsafeMutableFloats { for i in 0..<$0.count { $0[i] = Float(i % 977) } }
        try HDF5File.create(path, overwrite: false) { f in
            for (n, a) in arrays { try f.write(a, at: "/arrays/\(n)") }
            try f.write(vol, at: "/deep/er/volume", compression: 6)
            try f.setAttribute("name", .string("ε-strain ✓"), on: "/deep")
            try f.setAttribute("iterations", .int(600), on: "/deep/er/volume")
            try f.setAttribute("beta", .double(0.9), on: "/deep/er/volume")
            try f.setAttribute("shape", .ints([40, 50, 60]), on: "/deep/er/volume")
            try f.setAttribute("q", .doubles([0.1, -0.2]), on: "/")
            try f.write(string: "hello", at: "/note")
        }
        let f = try HDF5File(reading: path)
        for (n, a) in arrays { XCTAssertEqual(try f.readArray("/arrays/\(n)"), a, n) }
        XCTAssertEqual(try f.readReal("/deep/er/volume"), vol)
        XCTAssertEqual(try f.attribute("name", of: "/deep"), .string("ε-strain ✓"))
        XCTAssertEqual(try f.attributes(of: "/deep/er/volume"),
                       ["iterations": .int(600), "beta": .double(0.9), "shape": .ints([40, 50, 60])])
        XCTAssertEqual(try f.attribute("q", of: "/"), .doubles([0.1, -0.2]))
        XCTAssertEqual(try f.readString("/note"), "hello")
        // Compressed: far smaller than the raw 480 kB.
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertLessThan(size, 200_000)

        guard let py = python(with: ["h5py"]) else { throw XCTSkip("python3 with numpy and h5py not found: h5py-side checks skipped") }
        let script = """
            import h5py, numpy as np, sys
            f = h5py.File(sys.argv[1], 'r')
            for k in ['bool','uint8','int8','int16','uint16','int32','uint32','int64','uint64','float32','float64','complex64','complex128']:
                a = f['arrays/' + k][()]
                b = np.load(sys.argv[2] + '/' + k + '.npy')
                assert a.dtype == b.dtype, (k, a.dtype)
                assert np.array_equal(a, b), k
            v = f['deep/er/volume']
            assert v.compression == 'gzip' and v.chunks is not None
            assert np.array_equal(v[()].ravel(), (np.arange(120000) % 977).astype('f4'))
            assert f['deep'].attrs['name'] == 'ε-strain ✓'
            assert v.attrs['iterations'] == 600 and v.attrs['beta'] == 0.9
            assert list(f.attrs['q']) == [0.1, -0.2]
            assert f['note'][()].decode() == 'hello'
            print('h5py agrees')
            """
        let fixtures = URL(fileURLWithPath: fixture("bool.npy")).deletingLastPathComponent().path
        let (status, out) = try runProcess(py, ["-c", script, path, fixtures])
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("h5py agrees"), out)
    }

    func testMissingDatasetNamesWhatExists() throws {
        let path = fixture("h5py_fixture.h5")
        XCTAssertThrowsError(try ArrayIO.readReal(path + ":/entry/data/dat")) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains(path) && m.contains("no dataset /entry/data/dat"), m)
            XCTAssertTrue(m.contains("/entry/data/data") && m.contains("/entry/data/counts"), m)
        }
        XCTAssertThrowsError(try ArrayIO.readReal(path + ":/nothing/here/data")) { e in
            XCTAssertTrue("\(e)".contains("/entry/data/data"), "\(e)")   // same last name
        }
        XCTAssertThrowsError(try ArrayIO.readReal(path)) { e in
            XCTAssertTrue("\(e)".contains("several arrays"), "\(e)")
        }
    }

    func testCXIResultsRoundTrip() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var obj = ComplexVolume(shape: [8, 9, 10])
        obj.withUnsafeMutableFloats { for i in 0..<$0.count { $0[i] = sin(Float(i)) } }
        let support = obj.modulus().thresholded(above: 0.5)
        var pattern = RealVolume(shape: [8, 9, 10])
        pattern.withUnsafeMutableFloats { for i in 0..<$0.count { $0[i] = Float(i * i) } }
        let mask = pattern.map { $0 > 500 ? Float(1) : 0 }
        var r = CXIResults(object: obj, support: support, pattern: pattern, mask: mask)
        r.parameters = ["algorithm": .string("HIO**600 ER**200"), "beta": .double(0.9), "runs": .int(10),
                        "sigma": .doubles([2, 1.5, 1])]
        r.metrics = ["chi2": 0.0123, "support_size": 321]
        r.curves = ["loss": [3, 2, 1.5, 1.25]]
        r.arrays = ["phase_ramp": NDArray([0.1, 0.2, 0.3])]
        r.geometry = CXIGeometry(energy: 9000, twoTheta: 0.5, detectorDistance: 1.2, pixelSize: 55e-6,
                                 rockingStep: 1e-4, qVector: [0, 2.3e10, 0], extra: ["sample_temperature": 300])
        try r.write(to: dir + "/r.cxi", overwrite: false)
        XCTAssertThrowsError(try r.write(to: dir + "/r.cxi", overwrite: false)) { e in
            // The library names the file; the command line adds its own flag (#23).
            XCTAssertEqual("\(e)", "output \(dir)/r.cxi exists already")
        }
        let b = try CXIResults.read(from: dir + "/r.cxi")
        XCTAssertEqual(b.object, obj)
        XCTAssertEqual(b.support, support)
        XCTAssertEqual(b.pattern, pattern)
        XCTAssertEqual(b.mask, mask)
        XCTAssertEqual(b.parameters, r.parameters)
        XCTAssertEqual(b.metrics, r.metrics)
        XCTAssertEqual(b.curves, r.curves)
        XCTAssertEqual(b.arrays, r.arrays)
        XCTAssertEqual(b.geometry.energy!, 9000, accuracy: 1e-9)
        var g = b.geometry; g.energy = 9000
        XCTAssertEqual(g, r.geometry)
        XCTAssertEqual(b.programName, "BraggKit")
        // Binary support and mask are stored compactly; the object as complex64.
        let f = try HDF5File(reading: dir + "/r.cxi")
        XCTAssertEqual(try f.dtype(of: CXIResults.supportPath), .uint8)
        XCTAssertEqual(try f.dtype(of: CXIResults.objectPath), .complex64)
        XCTAssertEqual(try ArrayIO.readComplex(dir + "/r.cxi"), obj)   // the default dataset
        // An empty result is valid too.
        try CXIResults().write(to: dir + "/empty.cxi", overwrite: false)
        XCTAssertNil(try CXIResults.read(from: dir + "/empty.cxi").object)
    }
}

final class OtherFormatTests: XCTestCase {
    func testVTIRoundTripAndLayout() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let amp = try ArrayIO.read(fixture("float32.npy"))
        let cplx = try ArrayIO.read(fixture("complex64.npy"))
        let counts = try ArrayIO.read(fixture("uint16.npy"))
        let flags = try ArrayIO.read(fixture("bool.npy"))
        try VTI.write([("amplitude", amp), ("object", cplx), ("counts", counts), ("support", flags)], to: dir + "/a.vti",
                      spacing: [3, 2, 1], origin: [-1, 0, 1], overwrite: false)
        XCTAssertEqual(try VTI.read(dir + "/a.vti", array: "amplitude"), amp)
        XCTAssertEqual(try VTI.read(dir + "/a.vti", array: "object"), cplx)
        XCTAssertEqual(try VTI.read(dir + "/a.vti", array: "counts"), counts)
        let s = try VTI.read(dir + "/a.vti", array: "support")
        XCTAssertEqual(s.dtype, .uint8)
        XCTAssertEqual(s.doubles(), flags.doubles())
        XCTAssertEqual(try ArrayIO.list(dir + "/a.vti").map { $0.name! }, ["amplitude", "object", "counts", "support"])
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/a.vti")).prefix(1200), as: UTF8.self)
        // x first: shape (z, y, x) = (2, 3, 4); spacing and origin given in z, y, x order.
        XCTAssertTrue(text.contains("WholeExtent=\"0 3 0 2 0 1\""), text)
        XCTAssertTrue(text.contains("Spacing=\"1.0 2.0 3.0\"") && text.contains("Origin=\"1.0 0.0 -1.0\""), text)
        XCTAssertTrue(text.contains("header_type=\"UInt64\"") && text.contains("NumberOfComponents=\"2\""), text)
        // Volumes go out straight from their storage, mixed with typed arrays.
        let real = try ArrayIO.readReal(fixture("float32.npy"))
        let complex = try ArrayIO.readComplex(fixture("complex64.npy"))
        try VTI.write(fields: [("r", .real(real)), ("c", .complex(complex)), ("u", .array(counts))], to: dir + "/v.vti",
                      overwrite: false)
        XCTAssertEqual(try VTI.read(dir + "/v.vti", array: "r").realVolume(), real)
        XCTAssertEqual(try VTI.read(dir + "/v.vti", array: "c").complexVolume(), complex)
        XCTAssertEqual(try VTI.read(dir + "/v.vti", array: "u"), counts)
        // 2D arrays keep their rank.
        let flat = try ArrayIO.read(fixture("float32_2d.npy"))
        try ArrayIO.write(flat, to: dir + "/flat.vti", overwrite: false)
        XCTAssertEqual(try ArrayIO.read(dir + "/flat.vti"), flat)

        guard let py = python(with: ["vtk"]) else { throw XCTSkip("python3 with vtk not found: VTK reader check skipped") }
        let script = """
            import sys, vtk, numpy as np
            from vtk.util.numpy_support import vtk_to_numpy
            r = vtk.vtkXMLImageDataReader(); r.SetFileName(sys.argv[1]); r.Update()
            im = r.GetOutput()
            assert im.GetDimensions() == (4, 3, 2), im.GetDimensions()
            assert im.GetSpacing() == (1.0, 2.0, 3.0) and im.GetOrigin() == (1.0, 0.0, -1.0)
            pd = im.GetPointData()
            assert np.array_equal(vtk_to_numpy(pd.GetArray('amplitude')), np.arange(24) * 0.5 - 3.25)
            o = vtk_to_numpy(pd.GetArray('object'))
            assert o.shape == (24, 2) and np.array_equal(o[:, 1], -(np.arange(24) * 0.25 - 1))
            print('vtk agrees')
            """
        let (status, out) = try runProcess(py, ["-c", script, dir + "/a.vti"])
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("vtk agrees"), out)
    }

    func testPNGGreyAndRGB() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = 13, h = 7
        let grey = (0..<(w * h)).map { UInt8(($0 * 37) % 256) }
        try PNG.writeGrey(grey, width: w, height: h, to: dir + "/g.png", overwrite: false)
        let g = try PNG.read(dir + "/g.png")
        XCTAssertEqual(g.channels, 1); XCTAssertEqual(g.width, w); XCTAssertEqual(g.height, h)
        XCTAssertEqual(g.pixels, grey)
        let rgb = (0..<(w * h * 3)).map { UInt8(($0 * 53 + 7) % 256) }
        try PNG.writeRGB(rgb, width: w, height: h, to: dir + "/c.png", overwrite: false)
        let c = try PNG.read(dir + "/c.png")
        XCTAssertEqual(c.channels, 3); XCTAssertEqual(c.pixels, rgb)
        let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/c.png")).prefix(8))
        XCTAssertEqual(head, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertThrowsError(try PNG.read(fixture("float32.npy")))
    }

    func testSafeWritingNeverLeavesPartialFiles() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try ArrayIO.read(fixture("float32.npy"))
        try ArrayIO.write(a, to: dir + "/x.npy", overwrite: false)
        XCTAssertThrowsError(try ArrayIO.write(a, to: dir + "/x.npy", overwrite: false)) { e in
            XCTAssertEqual("\(e)", "output \(dir)/x.npy exists already")
        }
        let b = try ArrayIO.read(fixture("int16.npy"))
        try ArrayIO.write(b, to: dir + "/x.npy", overwrite: true)
        XCTAssertEqual(try ArrayIO.read(dir + "/x.npy"), b)
        // A write that fails half way (second array of the wrong shape) leaves nothing.
        XCTAssertThrowsError(try VTI.write([("a", a), ("b", try ArrayIO.read(fixture("float64_1d.npy")))],
                                           to: dir + "/bad.vti", overwrite: false))
        XCTAssertThrowsError(try HDF5File.create(dir + "/bad.h5", overwrite: false) { f in
            try f.write(a, at: "/a")
            throw FormatError.writeFailed(path: dir + "/bad.h5", reason: "simulated failure")
        })
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertEqual(left, ["x.npy"])
    }

    func testSpecParsing() {
        XCTAssertEqual(ArraySpec("a/b.h5:/entry/data"), ArraySpec(path: "a/b.h5", dataset: "/entry/data"))
        XCTAssertEqual(ArraySpec("x.npz:f"), ArraySpec(path: "x.npz", dataset: "f"))
        XCTAssertEqual(ArraySpec("dir:with:colons/x.npy"), ArraySpec(path: "dir:with:colons/x.npy"))
        XCTAssertEqual(ArraySpec("r.cxi"), ArraySpec(path: "r.cxi"))
        XCTAssertEqual(FileFormat.from(path: "r.CXI"), .hdf5)
    }
}

/// Runs the built `bragg` program on bad inputs: one sentence naming the file and the problem,
/// exit status 2, no crash.
/// The `bragg` program built beside the test bundle.
func braggExecutable() throws -> String {
    let candidates = [Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("bragg").path,
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("bragg").path]
    guard let p = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        throw XCTSkip("the bragg executable is not built next to the tests (swift build first)")
    }
    return p
}

final class CommandLineTests: XCTestCase {
    func braggPath() throws -> String { try braggExecutable() }

    func expectBadInput(_ args: [String], mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, out) = try runProcess(try braggPath(), args)
        XCTAssertEqual(status, 2, out, file: file, line: line)
        XCTAssertTrue(out.hasPrefix("bragg: error: "), out, file: file, line: line)
        XCTAssertEqual(out.split(separator: "\n").count, 1, "one line: \(out)", file: file, line: line)
        for m in mentions { XCTAssertTrue(out.contains(m), "'\(m)' missing in: \(out)", file: file, line: line) }
    }

    func testBadInputsGiveOneMessageAndStatus2() throws {
        try expectBadInput(["info", fixture("truncated_data.npy")], mentions: [fixture("truncated_data.npy"), "truncated", "(2, 3, 4)"])
        try expectBadInput(["info", fixture("truncated_header.npy")], mentions: [fixture("truncated_header.npy"), "truncated"])
        try expectBadInput(["info", fixture("float16.npy")], mentions: [fixture("float16.npy"), "unsupported element type '<f2'"])
        try expectBadInput(["convert", fixture("structured.npy"), "/tmp/never.h5"], mentions: [fixture("structured.npy"), "unsupported element type"])
        try expectBadInput(["info", fixture("h5py_fixture.h5") + ":/entry/data/missing"],
                           mentions: [fixture("h5py_fixture.h5"), "no dataset /entry/data/missing", "/entry/data/data"])
        try expectBadInput(["info", "/no/such/dir/scan.h5"], mentions: ["/no/such/dir/scan.h5", "does not exist"])
        try expectBadInput(["convert", "/no/such/file.npy", "/tmp/x.npy"], mentions: ["/no/such/file.npy", "does not exist"])
        try expectBadInput(["info", fixture("not_hdf5.h5")], mentions: [fixture("not_hdf5.h5"), "is not an HDF5 file"])
    }

    /// An HDF5 file cut short: the library only says it cannot open it; the message says it
    /// is truncated, with the size its superblock declares (version 0 here, as h5py and our
    /// writer make; version 2 after a user block below).
    func testTruncatedHDF5IsNamedTruncated() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/scan.h5"
        let v = RealVolume(shape: [16, 16, 16], repeating: 1)
        try HDF5File.create(path, overwrite: false) { f in try f.write(v, at: "/entry/data", compression: nil) }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber
        XCTAssertEqual(HDF5File.declaredEnd(of: path), size.uint64Value)
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try h.truncate(atOffset: size.uint64Value / 2)
        try h.close()
        try expectBadInput(["info", path + ":/entry/data"],
                           mentions: [path, "is truncated", "declares \(size) bytes but the file has \(size.uint64Value / 2)"])

        // Version 2 superblock after a 512-byte user block: base 512, end of file 3000.
        var bytes = [UInt8](repeating: 0, count: 512) + [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A, 2, 8, 8, 0]
        for value in [UInt64(512), .max, 3000, 600] { bytes += (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        bytes += [0, 0, 0, 0] + [UInt8](repeating: 0, count: 400)
        let v2 = dir + "/v2.h5"
        try Data(bytes).write(to: URL(fileURLWithPath: v2))
        XCTAssertEqual(HDF5File.declaredEnd(of: v2), 3512)
        XCTAssertNil(HDF5File.declaredEnd(of: fixture("not_hdf5.h5")))
    }

    func testInfoAndConvertThroughEveryFormat() throws {
        let bragg = try braggPath()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (s0, info) = try runProcess(bragg, ["info", fixture("h5py_fixture.h5") + ":/entry/data/data"])
        XCTAssertEqual(s0, 0, info)
        XCTAssertTrue(info.contains("/entry/data/counts") && info.contains("uint16"), info)
        XCTAssertTrue(info.contains("min -3.25") && info.contains("max 8.25") && info.contains("zeros 0"), info)
        // npy → h5 → npz → vti → npy keeps dtype, shape and values bit for bit.
        for d in ["uint16", "complex128", "int64", "float32"] {
            let src = fixture("\(d).npy")
            let steps = ["\(dir)/\(d).h5:/entry/x", "\(dir)/\(d).npz:x", "\(dir)/\(d).vti:x", "\(dir)/\(d)-back.npy"]
            var from = src
            for to in steps {
                let (s, out) = try runProcess(bragg, ["convert", from, to])
                XCTAssertEqual(s, 0, out)
                from = to
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(d)-back.npy")),
                           try Data(contentsOf: URL(fileURLWithPath: src)), d)
        }
        let (s1, out1) = try runProcess(bragg, ["convert", fixture("float32.npy"), "\(dir)/float32.h5:/entry/x"])
        XCTAssertEqual(s1, 2, out1)
        XCTAssertTrue(out1.contains("--force"), out1)
        // All arrays of a file at once.
        let (s2, out2) = try runProcess(bragg, ["convert", fixture("deflated.npz"), "\(dir)/all.h5"])
        XCTAssertEqual(s2, 0, out2)
        XCTAssertEqual(Set(try ArrayIO.list("\(dir)/all.h5").map { $0.name! }), ["/f", "/c", "/u"])
    }
}
