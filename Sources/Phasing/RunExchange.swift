import Numerics

/// What the ranks of a job spreading its runs (#24) tell each other: the stall check's χ²
/// (every rank), every finished run's metrics (every rank), and the kept runs' objects
/// (rank 0 only). Floats travel as their bits, so a gathered run is the run as computed.
/// In a world of one nothing is encoded.
enum RunExchange {
    /// A figure of every run that has one (χ² at the choice of alternative or the stall
    /// check, a kernel's width there), from this rank's `(run, value)`.
    static func perRun(_ mine: [(Int, Double?)], _ world: Communicator) throws -> [Int: Double] {
        var w = ByteWriter()
        w.int(mine.count)
        for (k, q) in mine { w.int(k); w.bool(q != nil); w.double(q ?? 0) }
        let all = world.size == 1 ? [w.bytes] : try world.allGather(w.bytes)
        var out = [Int: Double]()
        for bytes in all {
            var r = ByteReader(bytes)
            for _ in 0..<(try r.int()) {
                let k = try r.int(), has = try r.bool(), q = try r.double()
                if has { out[k] = q }
            }
        }
        return out
    }

    /// The kernel of every run that has one (at the choice of alternative), from this rank's
    /// `(run, kernel)`.
    static func kernels(_ mine: [(Int, PointSpreadFunction?)], _ world: Communicator) throws -> [Int: PointSpreadFunction] {
        var w = ByteWriter()
        w.int(mine.count)
        for (k, p) in mine { w.int(k); encode(p, &w) }
        let all = world.size == 1 ? [w.bytes] : try world.allGather(w.bytes)
        var out = [Int: PointSpreadFunction]()
        for bytes in all {
            var r = ByteReader(bytes)
            for _ in 0..<(try r.int()) {
                let k = try r.int()
                if let p = try decodeKernel(&r) { out[k] = p }
            }
        }
        return out
    }

    static func encode(_ p: PointSpreadFunction?, _ w: inout ByteWriter) {
        w.bool(p != nil)
        if let p { w.string(p.model.rawValue); w.doubles(p.fwhm); w.double(p.eta); w.double(p.background) }
    }

    static func decodeKernel(_ rd: inout ByteReader) throws -> PointSpreadFunction? {
        guard try rd.bool() else { return nil }
        let name = try rd.string()
        guard let model = PSFModel(rawValue: name) else { throw CommunicationError.malformed("point-spread model '\(name)'") }
        var p = PointSpreadFunction(model: model, fwhm: try rd.doubles())
        p.eta = try rd.double(); p.background = try rd.double()
        return p
    }

    /// Every rank's finished runs without their objects, in run order, on every rank (this
    /// rank's own runs keep their objects).
    static func summaries(_ mine: [PhasingRunResult], _ world: Communicator) throws -> [PhasingRunResult] {
        guard world.size > 1 else { return mine }
        var w = ByteWriter()
        w.int(mine.count)
        for r in mine { encode(r, &w) }
        var out: [PhasingRunResult] = []
        for (rank, bytes) in try world.allGather(w.bytes).enumerated() {
            if rank == world.rank { out += mine; continue }
            var rd = ByteReader(bytes)
            for _ in 0..<(try rd.int()) { out.append(try decode(&rd)) }
        }
        return out.sorted { $0.index < $1.index }
    }

    /// The objects and supports of the `kept` runs, sent to rank 0 by the ranks that ran them
    /// and put into `results` there. True on rank 0, false on the others (whose part ends).
    static func keptObjects(_ results: inout [PhasingRunResult], kept: Set<Int>, _ world: Communicator) throws -> Bool {
        guard world.size > 1 else { return true }
        var w = ByteWriter()
        let mine = results.filter { kept.contains($0.index) && $0.object != nil && $0.index % world.size == world.rank }
        w.int(world.rank == 0 ? 0 : mine.count)
        if world.rank != 0 {
            for r in mine { w.int(r.index); w.volume(r.object!); w.volume(r.support!) }
        }
        guard let all = try world.gather(w.bytes, root: 0) else { return false }
        for bytes in all.dropFirst() {
            var rd = ByteReader(bytes)
            for _ in 0..<(try rd.int()) {
                let k = try rd.int()
                let object = try rd.volume(ComplexVolume.self), support = try rd.volume(RealVolume.self)
                guard let j = results.firstIndex(where: { $0.index == k }) else {
                    throw CommunicationError.malformed("an object of run \(k + 1), which no rank ran")
                }
                results[j].object = object; results[j].support = support
            }
        }
        return true
    }

    static func encode(_ r: PhasingRunResult, _ w: inout ByteWriter) {
        w.int(r.index); w.u64(r.seed)
        w.bool(r.metrics != nil)
        if let m = r.metrics { w.double(m.chi2); w.double(m.llk); w.double(m.freeLLK); w.int(m.supportVoxels) }
        w.bool(r.failure != nil); w.string(r.failure ?? "")
        w.doubles(r.ramp.radiansPerVoxel); w.ints(r.roll)
        w.ints(r.chi2History.map(\.iteration)); w.doubles(r.chi2History.map(\.chi2))
        w.double(r.seconds); w.int(r.iterations); w.int(r.restarts); w.int(r.alternative); w.doubles(r.checkChi2)
        w.doubles(r.checkFreeLLK)
        w.bool(r.choiceChi2 != nil); w.double(r.choiceChi2 ?? 0)
        w.int(r.switchedFrom ?? -1)
        encode(r.psf, &w)
    }

    static func decode(_ rd: inout ByteReader) throws -> PhasingRunResult {
        var r = PhasingRunResult(index: try rd.int(), seed: try rd.u64())
        if try rd.bool() {
            r.metrics = PhasingMetrics(chi2: try rd.double(), llk: try rd.double(), freeLLK: try rd.double(),
                                       supportVoxels: try rd.int())
        }
        let failed = try rd.bool(), failure = try rd.string()
        r.failure = failed ? failure : nil
        r.ramp = PhaseRamp(radiansPerVoxel: try rd.doubles()); r.roll = try rd.ints()
        let its = try rd.ints(), chi2 = try rd.doubles()
        guard its.count == chi2.count else { throw CommunicationError.malformed("a χ² history of \(its.count) iterations and \(chi2.count) values") }
        r.chi2History = zip(its, chi2).map { (iteration: $0, chi2: $1) }
        r.seconds = try rd.double(); r.iterations = try rd.int(); r.restarts = try rd.int(); r.alternative = try rd.int(); r.checkChi2 = try rd.doubles()
        r.checkFreeLLK = try rd.doubles()
        let hasChoice = try rd.bool(), choice = try rd.double()
        r.choiceChi2 = hasChoice ? choice : nil
        let from = try rd.int()
        r.switchedFrom = from >= 0 ? from : nil
        r.psf = try decodeKernel(&rd)
        return r
    }
}
