import XCTest
@testable import Formats
import Numerics

final class SmokeTests: XCTestCase {
    func testSmoke() throws {
        let a = try ArrayIO.readReal("/tmp/fmt/a.npy")
        XCTAssertEqual(a.shape, [2, 3, 4]); XCTAssertEqual(a.floats, (0..<24).map(Float.init))
        let f = try ArrayIO.read("/tmp/fmt/f.npy")
        XCTAssertEqual(f.dtype, .int16); XCTAssertEqual(f.doubles(), (0..<24).map(Double.init))
        let c = try ArrayIO.readComplex("/tmp/fmt/c.npy")
        XCTAssertEqual(c[1, 2], Complex32(5, 5))
        let z = try ArrayIO.readReal("/tmp/fmt/zc.npz:x"); XCTAssertEqual(z, a)
        XCTAssertEqual(try ArrayIO.read("/tmp/fmt/z.npz:y").doubles(), [0, 1, 2, 3, 4])
        try ArrayIO.write(a, to: "/tmp/fmt/o.h5:/g/x", overwrite: true)
        XCTAssertEqual(try ArrayIO.readReal("/tmp/fmt/o.h5:/g/x"), a)
        try ArrayIO.write(c, to: "/tmp/fmt/oc.h5", overwrite: true)
        XCTAssertEqual(try ArrayIO.readComplex("/tmp/fmt/oc.h5"), c)
        try ArrayIO.write(a, to: "/tmp/fmt/o.npy", overwrite: true)
        try NPZ.write([("x", NDArray(a)), ("c", NDArray(c))], to: "/tmp/fmt/o.npz", compressed: true, overwrite: true)
        try VTI.write([("x", NDArray(a))], to: "/tmp/fmt/o.vti", overwrite: true)
        XCTAssertEqual(try ArrayIO.readReal("/tmp/fmt/o.vti"), a)
        do { _ = try ArrayIO.read("/tmp/fmt/bad.npy"); XCTFail() } catch { print(error) }
        do { _ = try ArrayIO.read("/tmp/fmt/o.h5:/g/y"); XCTFail() } catch { print(error) }
        print(try ArrayIO.list("/tmp/fmt/o.h5"), try ArrayIO.statistics("/tmp/fmt/o.h5:/g/x"))
    }
}
