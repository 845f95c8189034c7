import CMPI
import Foundation
import Numerics

/// The processes of an MPI job (Open MPI), wrapped once: the only code that calls MPI and
/// holds its handles. `World.start()` gives the MPI world when the process was started by
/// `mpirun`/`srun` and the world of one otherwise, without touching MPI at all: a run that
/// never heard of MPI pays nothing but loading the library.
public final class World: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    /// Messages a rank posted to itself (MPI would need a receive already waiting).
    private var ownPosts: [[UInt8]] = []
    private static let postTag: Int32 = 24, gatherTag: Int32 = 25
    /// Messages over the network in pieces of at most this many bytes (MPI counts are Int32).
    private static let piece = 1 << 30

    /// Whether a launcher started this process as part of an MPI job: Open MPI's `mpirun`
    /// sets OMPI_COMM_WORLD_SIZE; PMIx and PMI launchers (`srun --mpi=pmix`, Hydra) set
    /// PMIX_RANK or PMI_RANK.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    /// Processes of this job on this machine (for the default threads per rank), 1 alone.
    public static var localSize: Int {
        let env = ProcessInfo.processInfo.environment
        for k in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[k].flatMap({ Int($0) }), v >= 1 { return v }
        }
        return 1
    }

    nonisolated(unsafe) private static var started: Communicator?

    /// The world of this process, MPI initialised on the first call when launched by MPI
    /// (MPI is finalised at exit). Call from the main thread.
    public static func start() throws -> Communicator {
        if let w = started { return w }
        guard launchedByMPI else { let w = SingleProcess(); started = w; return w }
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, bk_mpi_thread_funneled(), &provided)
        guard rc == bk_mpi_success() else { throw CommunicationError.mpi(call: "MPI_Init_thread", code: rc) }
        guard let comm = bk_mpi_comm_world() else { throw CommunicationError.mpi(call: "MPI_COMM_WORLD", code: -1) }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r); MPI_Comm_size(comm, &s)
        let w = World(rank: Int(r), size: Int(s), comm: comm)
        started = w
        atexit { World.finalize() }
        return w
    }

    private init(rank: Int, size: Int, comm: MPI_Comm) {
        self.rank = rank; self.size = size; self.comm = comm
    }

    /// Ends MPI in this process (every rank must reach it; called at exit). A rank that
    /// arrives early sleeps in a barrier instead of spinning in MPI_Finalize.
    static func finalize() {
        var done: Int32 = 0
        MPI_Finalized(&done)
        guard done == 0 else { return }
        if let w = started as? World { try? w.barrier() }
        MPI_Finalize()
    }

    /// Waits for a non-blocking operation, sleeping between tests: Open MPI's blocking calls
    /// poll a core at 100%, which on a node whose cores are the ranks' threads takes one from
    /// the ranks still computing (a rank with fewer runs waits for the others).
    private func complete(_ request: inout MPI_Request?, _ call: String) throws {
        var flag: Int32 = 0
        var pause: UInt32 = 50
        while true {
            try check(MPI_Test(&request, &flag, bk_mpi_status_ignore()), call)
            if flag != 0 { return }
            usleep(pause)
            pause = min(pause * 2, 5_000)
        }
    }

    /// Ends every process of the job at once with `code` (one rank failed where the others
    /// would wait for it forever). Returns only in a world of one, which it leaves to the caller.
    public static func abort(_ code: Int32) {
        guard let w = started as? World else { return }
        MPI_Abort(w.comm, code)
    }

    private func check(_ rc: Int32, _ call: String) throws {
        guard rc == bk_mpi_success() else { throw CommunicationError.mpi(call: call, code: rc) }
    }

    public func barrier() throws {
        var req: MPI_Request?
        try check(MPI_Ibarrier(comm, &req), "MPI_Ibarrier")
        try complete(&req, "MPI_Ibarrier")
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        var n = Int64(bytes.count)
        var req: MPI_Request?
        try check(MPI_Ibcast(&n, 1, bk_mpi_int64(), Int32(root), comm, &req), "MPI_Ibcast")
        try complete(&req, "MPI_Ibcast")
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n))
        try out.withUnsafeMutableBytes { p in
            var at = 0
            while at < p.count {
                let m = min(World.piece, p.count - at)
                try check(MPI_Ibcast(p.baseAddress! + at, Int32(m), bk_mpi_byte(), Int32(root), comm, &req), "MPI_Ibcast")
                try complete(&req, "MPI_Ibcast")
                at += m
            }
        }
        return out
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        try (0..<size).map { r in try broadcast(r == rank ? bytes : [], root: r) }
    }

    public func gather(_ bytes: [UInt8], root: Int) throws -> [[UInt8]]? {
        if rank != root {
            try send(bytes, to: root, tag: World.gatherTag)
            return nil
        }
        return try (0..<size).map { r in r == root ? bytes : try receive(from: r, tag: World.gatherTag) }
    }

    /// A length, then the bytes in pieces.
    private func send(_ bytes: [UInt8], to dest: Int, tag: Int32) throws {
        var n = Int64(bytes.count)
        var req: MPI_Request?
        try check(MPI_Isend(&n, 1, bk_mpi_int64(), Int32(dest), tag, comm, &req), "MPI_Isend")
        try complete(&req, "MPI_Isend")
        try bytes.withUnsafeBytes { p in
            var at = 0
            while at < p.count {
                let m = min(World.piece, p.count - at)
                try check(MPI_Isend(p.baseAddress! + at, Int32(m), bk_mpi_byte(), Int32(dest), tag, comm, &req), "MPI_Isend")
                try complete(&req, "MPI_Isend")
                at += m
            }
        }
    }

    private func receive(from source: Int, tag: Int32) throws -> [UInt8] {
        var n: Int64 = 0
        var req: MPI_Request?
        try check(MPI_Irecv(&n, 1, bk_mpi_int64(), Int32(source), tag, comm, &req), "MPI_Irecv")
        try complete(&req, "MPI_Irecv")
        guard n >= 0 else { throw CommunicationError.malformed("length \(n) from rank \(source)") }
        var out = [UInt8](repeating: 0, count: Int(n))
        try out.withUnsafeMutableBytes { p in
            var at = 0
            while at < p.count {
                let m = min(World.piece, p.count - at)
                try check(MPI_Irecv(p.baseAddress! + at, Int32(m), bk_mpi_byte(), Int32(source), tag, comm, &req), "MPI_Irecv")
                try complete(&req, "MPI_Irecv")
                at += m
            }
        }
        return out
    }

    public func post(_ bytes: [UInt8], to root: Int) throws {
        if root == rank { ownPosts.append(bytes); return }
        try send(bytes, to: root, tag: World.postTag)
    }

    public func receive(wait: Bool) throws -> (source: Int, bytes: [UInt8])? {
        if !ownPosts.isEmpty { return (rank, ownPosts.removeFirst()) }
        var status = MPI_Status()
        var flag: Int32 = 0
        while true {
            try check(MPI_Iprobe(bk_mpi_any_source(), World.postTag, comm, &flag, &status), "MPI_Iprobe")
            if flag != 0 { break }
            if !wait { return nil }
            usleep(2_000)
        }
        let source = Int(bk_mpi_status_source(&status))
        return (source, try receive(from: source, tag: World.postTag))
    }
}
