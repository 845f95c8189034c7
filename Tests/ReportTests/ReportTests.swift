import XCTest
@testable import Report
