import ArgumentParser
import BraggKit
import Cluster
import Formats
import Foundation
import Numerics
import Phasing

/// The MPI world of this process for the commands that spread work over ranks (#24):
/// `bragg phase` under `mpirun` spreads its runs; `bragg batch` spreads patterns, each
/// phased within one rank.
enum ClusterRun {
    /// Set by `bragg batch`: each pattern is phased by one rank alone.
    nonisolated(unsafe) static var override: Communicator?
    /// The last result `phase` gave on this rank (for the batch's summary).
    nonisolated(unsafe) static var lastResult: PhasingResult?

    static func world() throws -> Communicator { try override ?? World.start() }
    static var isRoot: Bool { (try? world())?.isRoot ?? true }

    /// Under MPI without --threads, the cores of a node are shared between its ranks instead
    /// of every rank taking all of them.
    static func shareCores(threadsGiven: Bool, world: Communicator) {
        guard world.size > 1, !threadsGiven else { return }
        Parallel.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / World.localSize)
    }

    /// Refuses work that is not spread over ranks when several were started: every rank
    /// would do it all and write the same files.
    static func refuseRanks(_ what: String) throws {
        let world = try world()
        guard world.size > 1 else { return }
        if !world.isRoot { exit(2) }   // said once, by rank 0
        throw UsageError("\(what) does not spread over MPI ranks; run it without mpirun (\(world.size) ranks were started)")
    }

    /// `Phaser.phase` over the ranks of this job: the result on rank 0, nil on the others.
    /// A failure that only one rank sees (a lost message) ends the whole job at once, since
    /// the other ranks would wait for it forever; a failure every rank sees alike (no run
    /// finished) is reported once, by rank 0.
    static func phase(_ data: PhasingData, options: PhasingOptions, progress: ProgressHandler?,
                      threadsGiven: Bool) throws -> PhasingResult? {
        let world = try world()
        shareCores(threadsGiven: threadsGiven, world: world)
        if world.size > 1 && world.isRoot {
            progress?(ProgressReport(stage: "note", done: 0, total: 0,
                                     note: "\(options.runs) run(s) over \(world.size) MPI ranks, \(Parallel.threads) thread(s) each"))
        }
        do {
            let r = try Phaser.phase(data, options: options, progress: progress, world: world)
            lastResult = r
            return r
        } catch let e as PhasingError where world.size > 1 {
            if world.isRoot { throw e }
            exit(2)
        } catch where world.size > 1 {
            printError("bragg: error on MPI rank \(world.rank) of \(world.size): \(error); ending the job")
            World.abort(error is InterruptedError ? 130 : 2)
            throw error
        }
    }
}
