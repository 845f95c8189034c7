import XCTest
@testable import Phasing
