import XCTest
@testable import Formats
