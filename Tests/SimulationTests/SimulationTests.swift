import XCTest
@testable import Simulation
