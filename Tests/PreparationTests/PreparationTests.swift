import XCTest
@testable import Preparation
