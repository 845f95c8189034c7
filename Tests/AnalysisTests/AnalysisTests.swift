import XCTest
@testable import Analysis
