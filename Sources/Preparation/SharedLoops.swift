import Foundation

/// Loops that one thread (the owner) runs and another thread, when it has nothing else to
/// do, can join. The owner posts a loop of `count` chunks with `run` and works through it;
/// a helper inside `help()` takes chunks of whatever loop is posted, until the owner calls
/// `endStep()`. Chunks are handed out one at a time under a lock, so each should be coarse
/// (a tenth of a millisecond or more).
///
/// Why: in `bragg prepare` the reading thread finishes its scan well before the adding
/// thread has transformed and added the previous one. With a fixed split one side always
/// waits; sharing the adding thread's loops lets both cores work until the step is done.
final class SharedLoops: @unchecked Sendable {
    private let condition = NSCondition()
    private var body: ((Int) -> Void)?
    private var count = 0, next = 0, running = 0
    private var stepOver = true

    /// Owner: runs `body(i)` for every i in 0..<count, sharing the chunks with a helper
    /// if one is in `help()`; returns when all are done.
    func run(_ count: Int, _ body: @escaping (Int) -> Void) {
        condition.lock()
        self.body = body
        self.count = count
        next = 0
        running = 0
        condition.broadcast()
        while true {
            if next < count {
                let i = next
                next += 1; running += 1
                condition.unlock()
                body(i)
                condition.lock()
                running -= 1
            } else if running > 0 {
                condition.wait()
            } else {
                break
            }
        }
        self.body = nil
        self.count = 0
        condition.unlock()
    }

    /// Owner: a new step begins (call before the helper may enter `help()`).
    func beginStep() {
        condition.lock(); stepOver = false; condition.unlock()
    }

    /// Owner: the step is over; a helper in `help()` returns.
    func endStep() {
        condition.lock(); stepOver = true; condition.broadcast(); condition.unlock()
    }

    /// Helper: takes chunks of the loops the owner posts until `endStep()`. Returns the
    /// number of chunks it ran.
    @discardableResult
    func help() -> Int {
        var done = 0
        condition.lock()
        while !stepOver {
            if let b = body, next < count {
                let i = next
                next += 1; running += 1
                condition.unlock()
                b(i)
                done += 1
                condition.lock()
                running -= 1
                if running == 0 && next >= count { condition.broadcast() }
            } else {
                condition.wait()
            }
        }
        condition.unlock()
        return done
    }
}
