import ArgumentParser
import Foundation

// The options every `bragg bench` command shares, declared once: --repeats and --json
// (`BenchOptions`), and the cube edge --size of those that time one cubic volume
// (`BenchSizeOption`). Each command names its defaults, help and size limits in a
// `BenchDefaults` type, so its --help reads as before.

/// A bench command's defaults and help for the shared options.
protocol BenchDefaults {
    /// Timed repeats by default, and what one repeat is.
    static var repeats: Int { get }
    static var repeatsHelp: String { get }
    /// The help of --json (default: one JSON line instead of text).
    static var jsonHelp: String { get }
}

extension BenchDefaults {
    static var jsonHelp: String { "Print one machine-readable JSON line instead of text." }
}

/// A bench command timing a cube of --size: its default, help and the edges it takes.
protocol BenchSizeDefaults: BenchDefaults {
    static var size: Int { get }
    static var sizeHelp: String { get }
    /// The edges allowed: within `sizeRange`, a multiple of `sizeMultiple`.
    static var sizeRange: ClosedRange<Int> { get }
    static var sizeMultiple: Int { get }
}

extension BenchSizeDefaults {
    static var sizeMultiple: Int { 1 }
}

/// --repeats and --json.
struct BenchOptions<Defaults: BenchDefaults>: ParsableArguments {
    @Option(help: ArgumentHelp(Defaults.repeatsHelp))
    var repeats: Int = Defaults.repeats

    @Flag(help: ArgumentHelp(Defaults.jsonHelp))
    var json = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1 (got \(repeats))") }
    }
}

/// --size: the edge of the cubic volume timed.
struct BenchSizeOption<Defaults: BenchSizeDefaults>: ParsableArguments {
    @Option(help: ArgumentHelp(Defaults.sizeHelp))
    var size: Int = Defaults.size

    func validate() throws {
        let r = Defaults.sizeRange, m = Defaults.sizeMultiple
        guard r.contains(size) && size % m == 0 else {
            throw ValidationError(m == 1 ? "--size must be between \(r.lowerBound) and \(r.upperBound) (got \(size))"
                                         : "--size must be a multiple of \(m) up to \(r.upperBound) (got \(size))")
        }
    }
}
