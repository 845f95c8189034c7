import XCTest
@testable import BraggKit

/// The SPEC reader on a small synthesized file: scans by number, the #S command (absolute
/// and relative), #O/#P motor positions through #o mnemonics, #L columns, header lines,
/// and the one-sentence errors.
final class SPECTests: XCTestCase {
    static let text = """
    #F /tmp/test.spec
    #E 1580609738
    #D Sat Feb 01 20:15:38 2020

    #O0 Delta  Theta  Chi  Phi  Gamma  pm motor
    #O1 camdist  Energy
    #o0 del th chi phi gam pmm
    #o1 cam en

    #S 3  ascan  th -0.5 0.5  4 0.25
    #D Tue Feb 04 12:28:23 2020
    #T 0.25  (Seconds)
    #P0 30 0.1 90 -5 12.5 7
    #P1 500 9
    #UIMDET 34idcTIM2:
    #UIMR5  0 256 0 256 1
    #N 3
    #L Theta  pm detector  Monitor
    -0.5 10 1000
    -0.25 11 1001
    0 12 1002
    0.25 13 1003
    0.5 14 1004

    #S 7  dscan  chi -1 1  2 1
    #P0 31 0.2 89 -5 12.5 7
    #P1 400 8
    #L Chi  Monitor
    88 5
    89 6
    90 7
    """

    func write(_ text: String) throws -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("bk-spec-\(UUID().uuidString).spec").path
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: p) }
        return p
    }

    func testScansMotorsColumnsAndCommands() throws {
        let path = try write(SPECTests.text)
        let f = try SPECFile(path: path)
        XCTAssertEqual(f.scanNumbers, [3, 7])
        let s = try f.scan(3)
        XCTAssertEqual(s.commandName, "ascan")
        XCTAssertEqual(s.scannedMotors, [SPECScannedMotor(name: "Theta", written: "th", start: -0.5, end: 0.5)])
        XCTAssertEqual(s.intervals, 4)
        XCTAssertEqual(s.countTime, 0.25)
        XCTAssertEqual(s.motorNames, ["Delta", "Theta", "Chi", "Phi", "Gamma", "pm motor", "camdist", "Energy"])
        XCTAssertEqual(try s.position("Theta"), 0.1)          // before the scan
        XCTAssertEqual(try s.position("th"), 0.1)             // by mnemonic
        XCTAssertEqual(try s.position("pm motor"), 7)         // a name with a space
        XCTAssertEqual(try s.position("Energy"), 9)
        XCTAssertEqual(s.columns, ["Theta", "pm detector", "Monitor"])
        XCTAssertEqual(s.points, 5)
        XCTAssertEqual(s.column("Theta"), [-0.5, -0.25, 0, 0.25, 0.5])
        XCTAssertEqual(s.column("pm detector"), [10, 11, 12, 13, 14])
        XCTAssertEqual(s.header["UIMDET"], "34idcTIM2:")
        XCTAssertEqual(s.header["UIMR5"], "0 256 0 256 1")
        // a relative scan: its range is about the position before the scan
        let d = try f.scan(7)
        XCTAssertEqual(d.scannedMotors.first?.name, "Chi")
        XCTAssertEqual(d.scannedMotors.first?.start ?? .nan, 88, accuracy: 1e-12)
        XCTAssertEqual(d.scannedMotors.first?.end ?? .nan, 90, accuracy: 1e-12)
        XCTAssertEqual(try d.position("camdist"), 400)
    }

    func testErrorsNameTheFileAndTheProblem() throws {
        let path = try write(SPECTests.text)
        let f = try SPECFile(path: path)
        XCTAssertThrowsError(try f.scan(5)) { e in
            XCTAssertEqual("\(e)", "the SPEC file \(path) has no scan #S 5 (it holds scans 3–7)")
        }
        let s = try f.scan(3)
        XCTAssertThrowsError(try s.position("Mu")) { e in
            XCTAssertTrue("\(e)".hasPrefix("scan #S 3 of the SPEC file \(path) records no motor 'Mu' (its motors: Delta, Theta"), "\(e)")
        }
        XCTAssertThrowsError(try s.requireColumn("ImageTot")) { e in
            XCTAssertTrue("\(e)".contains("has no data column 'ImageTot'"), "\(e)")
        }
        XCTAssertThrowsError(try SPECFile(path: path + ".missing")) { e in
            XCTAssertEqual("\(e)", "cannot read the SPEC file \(path).missing: no such file")
        }
        let notSpec = try write("hello\nworld\n")
        XCTAssertThrowsError(try SPECFile(path: notSpec)) { e in
            XCTAssertEqual("\(e)", "\(notSpec) is not a SPEC file: it has no '#S' scan line")
        }
        // a data row with a value missing
        let bad = try write(SPECTests.text.replacingOccurrences(of: "-0.25 11 1001", with: "-0.25 11"))
        XCTAssertThrowsError(try SPECFile(path: bad).scan(3)) { e in
            XCTAssertTrue("\(e)".contains("2 values for the 3 columns of its #L line"), "\(e)")
        }
    }
}
