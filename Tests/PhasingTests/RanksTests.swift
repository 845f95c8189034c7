import XCTest
import Foundation
import Numerics
@testable import Phasing

/// Runs spread over the ranks of a job (#24), in one process: three threads stand for three
/// MPI ranks, exchanging bytes through a `Communicator` with MPI's collective semantics. The
/// result on rank 0 must be the same bits as one process running every run, including the
/// stall check's decisions (taken on every rank from every rank's χ²).
final class RanksTests: XCTestCase {
    /// The options of RunsTests' stalled-run test: run 2 forced off course (support replaced
    /// by a 4³ box in a corner), found at the check point; 4 runs over 3 ranks, 2 kept.
    func stalledOptions(restarts: Int) throws -> (PhasingData, PhasingOptions) {
        let sim = try SimulatedCrystal(size: 32, radius: 5, length: 10, seed: 4)
        let data = try PhasingData(intensity: sim.intensity)
        var o = PhasingOptions()
        o.recipe = try Recipe.parse("HIO:60 sw=0, ER:40 sw=0")
        let s = sim.object.modulus().thresholded(above: 0)
        o.support = .volume(try s.gaussianFiltered(sigma: 1, method: .fourier).thresholded(above: 0.1))
        o.runs = 4; o.keep = 2; o.seed = 5; o.threads = 1; o.stallRestarts = restarts
        o.stallCheckFraction = 0.6; o.stallFactor = 20
        o.keepTolerance = 1e9     // two runs merged whatever their χ² (these runs are short): the merge's bits are compared
        o.startOverride = { k, engine in
            guard k == 1 else { return }
            for i in 0..<engine.count { engine.support[i] = 0 }
            let n = engine.shape[2], p = engine.shape[1] * n
            for z in 8..<12 { for y in 8..<12 { for x in 8..<12 { engine.support[z * p + y * n + x] = 1 } } }
        }
        return (data, o)
    }

    /// Every rank's return value, ranks run concurrently on their own threads.
    func phaseOnRanks(_ n: Int, _ data: PhasingData, _ o: PhasingOptions) throws -> [PhasingResult?] {
        let hub = ThreadHub(size: n)
        let box = RankResults(n)
        let group = DispatchGroup()
        for r in 0..<n {
            group.enter()
            Thread.detachNewThread {
                box.set(r, Result { try Phaser.phase(data, options: o, progress: nil, world: ThreadWorld(rank: r, hub: hub)) })
                group.leave()
            }
        }
        group.wait()
        return try box.values.map { try $0!.get() }
    }

    func floats<E>(_ v: Volume<E>) -> [UInt32] { v.withUnsafeFloats { $0.map(\.bitPattern) } }

    func assertSameBits(_ a: PhasingResult, _ b: PhasingResult, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(floats(a.object), floats(b.object), "object", file: file, line: line)
        XCTAssertEqual(floats(a.support), floats(b.support), "support", file: file, line: line)
        XCTAssertEqual(a.metrics, b.metrics, file: file, line: line)
        XCTAssertEqual(a.kept, b.kept, file: file, line: line)
        XCTAssertEqual(a.modeWeights.map(\.bitPattern), b.modeWeights.map(\.bitPattern), file: file, line: line)
        XCTAssertEqual(a.spread.bitPattern, b.spread.bitPattern, file: file, line: line)
        XCTAssertEqual(a.merged, b.merged, file: file, line: line)
        XCTAssertEqual(a.notes, b.notes, file: file, line: line)
        XCTAssertEqual(a.runs.count, b.runs.count, file: file, line: line)
        for (x, y) in zip(a.runs, b.runs) {
            XCTAssertEqual(x.index, y.index); XCTAssertEqual(x.seed, y.seed)
            XCTAssertEqual(x.metrics, y.metrics, "run \(x.index + 1)", file: file, line: line)
            XCTAssertEqual(x.failure, y.failure, file: file, line: line)
            XCTAssertEqual(x.iterations, y.iterations); XCTAssertEqual(x.restarts, y.restarts)
            XCTAssertEqual(x.checkChi2.map(\.bitPattern), y.checkChi2.map(\.bitPattern), file: file, line: line)
            XCTAssertEqual(x.checkFreeLLK.map(\.bitPattern), y.checkFreeLLK.map(\.bitPattern), file: file, line: line)
            XCTAssertEqual(x.ramp, y.ramp); XCTAssertEqual(x.roll, y.roll)
            XCTAssertEqual(x.chi2History.map(\.chi2), y.chi2History.map(\.chi2), file: file, line: line)
            XCTAssertEqual(x.psf, y.psf)
            XCTAssertEqual(x.object.map(floats), y.object.map(floats), "run \(x.index + 1) object", file: file, line: line)
        }
    }

    /// 4 runs over 3 ranks, run 2 (on rank 1) stalled and restarted: rank 0's result is the
    /// one-process result bit for bit, the other ranks get nil.
    func testRunsOverRanksGiveTheSameBitsWithARestartedRun() throws {
        let (data, o) = try stalledOptions(restarts: 1)
        let one = try Phaser.phase(data, options: o)
        XCTAssertEqual(one.runs[1].restarts, 1, "the forced run must stall for this test to mean something")
        XCTAssertEqual(one.kept.count, 2)
        let ranks = try phaseOnRanks(3, data, o)
        XCTAssertNil(ranks[1]); XCTAssertNil(ranks[2])
        assertSameBits(try XCTUnwrap(ranks[0]), one)
    }

    /// The same with no restart allowed: the stalled run is dropped on every rank alike.
    func testDroppedRunOverRanks() throws {
        let (data, o) = try stalledOptions(restarts: 0)
        let one = try Phaser.phase(data, options: o)
        XCTAssertNotNil(one.runs[1].failure)
        let ranks = try phaseOnRanks(2, data, o)
        XCTAssertNil(ranks[1])
        assertSameBits(try XCTUnwrap(ranks[0]), one)
    }

    /// The choice of recipe alternative over 3 ranks (AlternativeChoiceTests' case: runs 2 and
    /// 4 switch at iteration 80) takes the same decision from every rank's χ² and kernels:
    /// rank 0's result is the one-process result bit for bit.
    func testAlternativeChoiceOverRanks() throws {
        let (data, o) = try AlternativeChoiceTests.blurredTwoKernels()
        let one = try Phaser.phase(data, options: o)
        XCTAssertEqual(one.alternativeChoice?.switched, [1, 3], "the choice must switch runs for this test to mean something")
        let ranks = try phaseOnRanks(3, data, o)
        XCTAssertNil(ranks[1]); XCTAssertNil(ranks[2])
        let r0 = try XCTUnwrap(ranks[0])
        assertSameBits(r0, one)
        XCTAssertEqual(r0.alternativeChoice, one.alternativeChoice)
        XCTAssertEqual(r0.runs.map(\.switchedFrom), one.runs.map(\.switchedFrom))
        XCTAssertEqual(r0.runs.map(\.alternative), one.runs.map(\.alternative))
        XCTAssertEqual(r0.runs.map { $0.choiceChi2?.bitPattern }, one.runs.map { $0.choiceChi2?.bitPattern })
    }

    /// Bytes cross unchanged: a run's summary read back equals it, bit for bit.
    func testRunSummaryRoundTrip() throws {
        var r = PhasingRunResult(index: 3, seed: 0xDEAD_BEEF_0123_4567)
        r.metrics = PhasingMetrics(chi2: 0.1 + 0.2, llk: -.pi, freeLLK: .nan, supportVoxels: 1234)
        r.failure = "stalled, \"twice\""
        r.ramp = PhaseRamp(radiansPerVoxel: [1e-300, -0.0, 3]); r.roll = [-1, 0, 7]
        r.chi2History = [(10, 0.5), (20, 0.25)]
        r.iterations = 230; r.restarts = 2; r.checkChi2 = [4, 5.5]; r.checkFreeLLK = [0.7, .nan]; r.seconds = 1.5
        r.choiceChi2 = 0.1 + 0.7; r.switchedFrom = 1; r.alternative = 2
        var p = PointSpreadFunction(model: .pseudoVoigt, fwhm: [0.5, 0.7, 1.1], eta: 0.3)
        p.background = 2.5
        r.psf = p
        var w = ByteWriter()
        RunExchange.encode(r, &w)
        var rd = ByteReader(w.bytes)
        let back = try RunExchange.decode(&rd)
        XCTAssertTrue(rd.atEnd)
        XCTAssertEqual(back.index, 3); XCTAssertEqual(back.seed, r.seed)
        XCTAssertEqual(back.metrics!.chi2.bitPattern, r.metrics!.chi2.bitPattern)
        XCTAssertTrue(back.metrics!.freeLLK.isNaN); XCTAssertEqual(back.metrics!.supportVoxels, 1234)
        XCTAssertEqual(back.failure, r.failure)
        XCTAssertEqual(back.ramp.radiansPerVoxel.map(\.bitPattern), r.ramp.radiansPerVoxel.map(\.bitPattern)); XCTAssertEqual(back.roll, r.roll)
        XCTAssertEqual(back.chi2History.map(\.iteration), [10, 20]); XCTAssertEqual(back.chi2History.map(\.chi2), [0.5, 0.25])
        XCTAssertEqual(back.iterations, 230); XCTAssertEqual(back.restarts, 2); XCTAssertEqual(back.checkChi2, [4, 5.5])
        XCTAssertEqual(back.checkFreeLLK.map(\.bitPattern), r.checkFreeLLK.map(\.bitPattern))
        XCTAssertEqual(back.psf, r.psf)
        XCTAssertEqual(back.choiceChi2?.bitPattern, r.choiceChi2?.bitPattern); XCTAssertEqual(back.switchedFrom, 1)
        XCTAssertEqual(back.alternative, 2)
        var plain = PhasingRunResult(index: 0, seed: 1)
        plain.metrics = nil
        var w2 = ByteWriter(); RunExchange.encode(plain, &w2)
        var rd2 = ByteReader(w2.bytes)
        let back2 = try RunExchange.decode(&rd2)
        XCTAssertNil(back2.choiceChi2); XCTAssertNil(back2.switchedFrom)
        // a truncated message is refused, not read past its end
        var short = ByteReader(Array(w.bytes.dropLast(3)))
        XCTAssertThrowsError(try RunExchange.decode(&short))
    }
}

/// Collective exchanges between threads: each call returns when every rank has made it.
final class ThreadHub: @unchecked Sendable {
    let size: Int
    private let cond = NSCondition()
    private var slots: [[UInt8]?]
    private var arrived = 0, generation = 0
    private var last: [[UInt8]] = []
    private var mail: [[(Int, [UInt8])]]

    init(size: Int) {
        self.size = size
        slots = Array(repeating: nil, count: size)
        mail = Array(repeating: [], count: size)
    }

    func exchange(_ rank: Int, _ bytes: [UInt8]) -> [[UInt8]] {
        cond.lock(); defer { cond.unlock() }
        let gen = generation
        slots[rank] = bytes
        arrived += 1
        if arrived == size {
            last = slots.map { $0! }
            slots = Array(repeating: nil, count: size)
            arrived = 0; generation += 1
            cond.broadcast()
        } else {
            while generation == gen { cond.wait() }
        }
        return last
    }

    func post(_ bytes: [UInt8], from: Int, to: Int) { cond.lock(); mail[to].append((from, bytes)); cond.unlock() }
    func take(_ rank: Int) -> (Int, [UInt8])? {
        cond.lock(); defer { cond.unlock() }
        return mail[rank].isEmpty ? nil : mail[rank].removeFirst()
    }
}

final class ThreadWorld: Communicator {
    let rank: Int
    let hub: ThreadHub
    init(rank: Int, hub: ThreadHub) { self.rank = rank; self.hub = hub }
    var size: Int { hub.size }
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { hub.exchange(rank, bytes) }
    func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        let all = hub.exchange(rank, bytes)
        return rank == root ? all : nil
    }
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { hub.exchange(rank, bytes)[root] }
    func barrier() throws { _ = hub.exchange(rank, []) }
    func post(_ bytes: [UInt8], to root: Int) throws { hub.post(bytes, from: rank, to: root) }
    func receive(wait: Bool) throws -> (source: Int, bytes: [UInt8])? {
        while true {
            if let m = hub.take(rank) { return (m.0, m.1) }
            if !wait { return nil }
            usleep(1000)
        }
    }
}

final class RankResults: @unchecked Sendable {
    private let lock = NSLock()
    private var v: [Result<PhasingResult?, Error>?]
    init(_ n: Int) { v = Array(repeating: nil, count: n) }
    func set(_ r: Int, _ x: Result<PhasingResult?, Error>) { lock.lock(); v[r] = x; lock.unlock() }
    var values: [Result<PhasingResult?, Error>?] { lock.lock(); defer { lock.unlock() }; return v }
}
