import XCTest
@testable import Numerics
