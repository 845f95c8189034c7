import XCTest
@testable import Neural
