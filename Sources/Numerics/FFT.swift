import CFFTW
import Foundation

/// How hard FFTW searches for a fast plan. `measure` is the default; `patient` finds
/// plans ~25% faster at 128³ but takes tens of seconds, so it pays with saved wisdom.
public enum FFTEffort: String, CaseIterable, Sendable {
    case estimate, measure, patient, exhaustive

    var flags: UInt32 {
        switch self {
        case .estimate: return bk_fftw_estimate()
        case .measure: return bk_fftw_measure()
        case .patient: return bk_fftw_patient()
        case .exhaustive: return bk_fftw_exhaustive()
        }
    }
}

/// Sign convention of DESIGN.md: forward is F(q) = Σ ρ(r) exp(−i q·r) (FFTW_FORWARD).
public enum FFTDirection: Sendable {
    case forward, backward
    var sign: Int32 { self == .forward ? bk_fftw_forward() : bk_fftw_backward() }
}

/// A complex-to-complex FFTW plan for one shape, direction, placement and thread count.
/// Made once through `FFTPlanner` (planning is serialised: FFTW's planner is not thread-safe) and executed
/// any number of times, concurrently if wanted, on any 64-byte aligned arrays of that shape.
/// Unnormalised in both directions, as FFTW.
public final class FFTPlan: @unchecked Sendable {
    public let shape: [Int]
    public let direction: FFTDirection
    public let inPlace: Bool
    public let threads: Int
    public let effort: FFTEffort
    let plan: fftwf_plan
    /// Number of complex elements.
    public var count: Int { shape.reduce(1, *) }

    /// Called by `FFTPlanner.cached` only, with the planner lock held.
    init(shape: [Int], direction: FFTDirection, inPlace: Bool, threads: Int, effort: FFTEffort) throws {
        self.shape = shape; self.direction = direction; self.inPlace = inPlace
        self.threads = threads; self.effort = effort
        let n = shape.reduce(1, *)
        // Planning with MEASURE or above overwrites its arrays: plan on scratch memory.
        let a = FloatStorage(count: 2 * n)
        let b = inPlace ? a : FloatStorage(count: 2 * n)
        let dims = shape.map { Int32($0) }
        FFTPlanner.initThreadsOnce()
        fftwf_plan_with_nthreads(Int32(threads))
        let p = dims.withUnsafeBufferPointer { d in
            a.pointer.withMemoryRebound(to: fftwf_complex.self, capacity: n) { pa in
                b.pointer.withMemoryRebound(to: fftwf_complex.self, capacity: n) { pb in
                    fftwf_plan_dft(Int32(shape.count), d.baseAddress!, pa, pb, direction.sign, effort.flags)
                }
            }
        }
        guard let p else { throw NumericsError.invalidArgument("FFTW could not plan a transform of shape \(shape)") }
        plan = p
        FFTPlanner.planned(effort: effort)
    }

    deinit { FFTPlanner.destroy(plan) }

    /// Transforms `count` complex values (interleaved Floats) from `input` to `output`.
    /// Both must be 64-byte aligned (all `Volume` storage is); `input == output` exactly
    /// when the plan is in place.
    @inlinable
    package func execute(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        precondition((input == output) == inPlace, "FFT plan placement does not match the arrays")
        executeUnchecked(input, output)
    }

    @usableFromInline
    func executeUnchecked(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        let n = count
        input.withMemoryRebound(to: fftwf_complex.self, capacity: n) { i in
            output.withMemoryRebound(to: fftwf_complex.self, capacity: n) { o in
                fftwf_execute_dft(plan, i, o)
            }
        }
    }

    /// Transforms a complex volume of this plan's shape in place.
    public func execute(_ v: inout ComplexVolume) {
        precondition(v.shape == shape, "FFT plan for \(shape) applied to \(v.shape)")
        precondition(inPlace, "in-place execution needs an in-place plan")
        v.withUnsafeMutableFloats { p in executeUnchecked(p.baseAddress!, p.baseAddress!) }
    }

    /// Floating-point operations of one transform by the usual 5 N log2 N count.
    public var nominalFlops: Double { 5.0 * Double(count) * log2(Double(count)) }
}

/// The one plan cache of the process (complex, batched and real plans alike), FFTW's
/// thread set-up and wisdom files, all behind one lock: FFTW's planner is not thread-safe,
/// so planning, destroying a plan and the wisdom calls are serialised with the cache itself.
public enum FFTPlanner {
    static let lock = NSLock()

    /// Destroys a plan under the planner lock (FFTW's planner is not thread-safe, and
    /// destroying a plan touches it); every plan class's deinit.
    static func destroy(_ plan: fftwf_plan) {
        lock.lock()
        fftwf_destroy_plan(plan)
        lock.unlock()
    }
    nonisolated(unsafe) static var threadsReady = false
    nonisolated(unsafe) static var cache: [Key: AnyObject] = [:]
    nonisolated(unsafe) static var plannedWithEffort = false
    nonisolated(unsafe) static var _defaultEffort: FFTEffort = .measure

    /// What identifies a plan: its kind and every parameter FFTW planned it for.
    enum Key: Hashable {
        case complex(shape: [Int], forward: Bool, inPlace: Bool, threads: Int, effort: FFTEffort)
        case batch(shape: [Int], howmany: Int, stride: Int, distance: Int, forward: Bool, effort: FFTEffort)
        case real(shape: [Int], forward: Bool, threads: Int, effort: FFTEffort)
    }

    /// The cached plan for `key`, made by `make` (under the lock, as FFTW's planner needs)
    /// on first use.
    static func cached<Plan: AnyObject>(_ key: Key, make: () throws -> Plan) throws -> Plan {
        lock.lock(); defer { lock.unlock() }
        if let p = cache[key] { return p as! Plan }
        let p = try make()
        cache[key] = p
        return p
    }

    /// Called with the lock held.
    static func initThreadsOnce() {
        if !threadsReady { _ = fftwf_init_threads(); threadsReady = true }
    }

    /// Called with the lock held.
    static func planned(effort: FFTEffort) { if effort != .estimate { plannedWithEffort = true } }

    /// The effort used when none is given. Set once at start-up (the CLI's `--fft-effort`).
    public static var defaultEffort: FFTEffort {
        get { lock.lock(); defer { lock.unlock() }; return _defaultEffort }
        set { lock.lock(); _defaultEffort = newValue; lock.unlock() }
    }

    /// A plan from the cache, made on first use.
    public static func plan(shape: [Int], direction: FFTDirection, inPlace: Bool = true,
                            threads: Int? = nil, effort: FFTEffort? = nil) throws -> FFTPlan {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw NumericsError.invalidArgument("cannot plan an FFT of shape \(shape)")
        }
        let t = threads ?? Parallel.threads, e = effort ?? defaultEffort
        return try cached(.complex(shape: shape, forward: direction == .forward, inPlace: inPlace, threads: t, effort: e)) {
            try FFTPlan(shape: shape, direction: direction, inPlace: inPlace, threads: t, effort: e)
        }
    }

    /// Forgets every cached plan (they are destroyed when no one holds them, outside the
    /// lock, since destroying one takes it).
    public static func clearCache() {
        lock.lock()
        let old = cache
        cache.removeAll()
        lock.unlock()
        withExtendedLifetime(old) {}
    }

    /// The default wisdom file: `$BRAGG_FFTW_WISDOM`, else `~/.cache/braggkit/fftwf-wisdom`.
    public static var defaultWisdomPath: String {
        if let p = ProcessInfo.processInfo.environment["BRAGG_FFTW_WISDOM"], !p.isEmpty { return p }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSTemporaryDirectory()
        return home + "/.cache/braggkit/fftwf-wisdom"
    }

    /// Loads saved wisdom; returns false when the file is absent or unreadable.
    @discardableResult
    public static func importWisdom(from path: String = defaultWisdomPath) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        lock.lock(); defer { lock.unlock() }
        initThreadsOnce()
        return fftwf_import_wisdom_from_filename(path) != 0
    }

    /// Saves the wisdom gathered so far (atomically: temporary file, then rename).
    @discardableResult
    public static func exportWisdom(to path: String = defaultWisdomPath) -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp\(getpid())"
        lock.lock()
        let ok = fftwf_export_wisdom_to_filename(tmp) != 0
        lock.unlock()
        guard ok else { try? FileManager.default.removeItem(atPath: tmp); return false }
        return rename(tmp, path) == 0
    }

    /// True when a plan was made with measured (non-estimate) effort in this process,
    /// i.e. there may be new wisdom worth saving.
    public static var hasNewWisdom: Bool { lock.lock(); defer { lock.unlock() }; return plannedWithEffort }
}

/// Convenience transforms on whole volumes. `forward` is unnormalised, `inverse` divides
/// by N (numpy's `fftn`/`ifftn`), so inverse(forward(x)) == x.
public enum FFT {
    /// Forward transform in place.
    public static func forward(_ v: inout ComplexVolume, threads: Int? = nil) throws {
        let p = try FFTPlanner.plan(shape: v.shape, direction: .forward, threads: threads)
        p.execute(&v)
    }

    /// Inverse transform in place, normalised by 1/N.
    public static func inverse(_ v: inout ComplexVolume, threads: Int? = nil) throws {
        let p = try FFTPlanner.plan(shape: v.shape, direction: .backward, threads: threads)
        p.execute(&v)
        v.scale(by: 1 / Float(v.count))
    }

    public static func forward(_ v: ComplexVolume) throws -> ComplexVolume { var c = v; try forward(&c); return c }
    public static func inverse(_ v: ComplexVolume) throws -> ComplexVolume { var c = v; try inverse(&c); return c }

    /// Whether n factors into 2, 3, 5 and 7 only (FFTW's fast sizes).
    public static func isFastSize(_ n: Int, primes: [Int] = [2, 3, 5, 7]) -> Bool {
        guard n > 0 else { return false }
        var m = n
        for p in primes { while m % p == 0 { m /= p } }
        return m == 1
    }

    /// The smallest n' ≥ n of the form 2^a 3^b 5^c 7^d (or of the given primes).
    public static func nextFastSize(_ n: Int, primes: [Int] = [2, 3, 5, 7]) -> Int {
        var m = max(n, 1)
        while !isFastSize(m, primes: primes) { m += 1 }
        return m
    }

    /// The largest n' ≤ n of the fast form (for cropping data to a fast size).
    public static func previousFastSize(_ n: Int, primes: [Int] = [2, 3, 5, 7]) -> Int {
        var m = max(n, 1)
        while m > 1 && !isFastSize(m, primes: primes) { m -= 1 }
        return m
    }

    /// The fast size nearest to n (ties go up), for choosing a box.
    public static func nearestFastSize(_ n: Int, primes: [Int] = [2, 3, 5, 7]) -> Int {
        let up = nextFastSize(n, primes: primes), down = previousFastSize(n, primes: primes)
        return (up - n) <= (n - down) ? up : down
    }

    /// Frequency (in cycles per sample, numpy.fft.fftfreq) of unshifted index k of n.
    @inlinable public static func frequency(_ k: Int, _ n: Int) -> Double {
        Double(k < (n + 1) / 2 ? k : k - n) / Double(n)
    }
}
