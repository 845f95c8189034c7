import Foundation
import Phasing

/// The recipe grammar (`bragg phase --recipe`, `--then`, `nn-eval --iterative-recipe`):
/// any text either parses or throws `PhasingError.invalidRecipe`. A recipe that parses must
/// stay within the iteration limit, and its printed form (written into result files and
/// shown to the user) must parse again to the same steps and iteration counts.
func body(_ text: String) {
    guard let recipe = try? Recipe.parse(text) else { return }
    precondition(!recipe.steps.isEmpty && recipe.totalIterations <= Recipe.maximumIterations,
                 "parsed recipe out of bounds: \(recipe)")
    guard let again = try? Recipe.parse(recipe.description) else {
        preconditionFailure("the printed recipe \"\(recipe)\" does not parse again (from \"\(text)\")")
    }
    precondition(again.steps.map(\.algorithm) == recipe.steps.map(\.algorithm)
                 && again.steps.map(\.iterations) == recipe.steps.map(\.iterations),
                 "the printed recipe \"\(recipe)\" parses to other steps: \"\(again)\"")
}

/// libFuzzer entry (#22): the bytes as the text a user would pass (any bytes, decoded as
/// UTF-8 with replacement, as the command line's arguments are).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    body(String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self))
    return 0
}
