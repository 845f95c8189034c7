// use-braggkit PATTERN.cxi OUT: phase a prepared pattern (CXI file of `bragg prepare` or
// `bragg simulate`, with its mask and geometry), analyse the object, write the results.
import BraggKit
import Foundation

let (patternFile, out) = (CommandLine.arguments[1], CommandLine.arguments[2])
let input = try PatternInput.read(patternFile, mask: nil)
var options = PhasingOptions()
options.recipe = try Recipe.parse("short")
let phased = try Phaser.phase(try PhasingData(intensity: input.pattern, mask: input.mask), options: options)
guard let geometry = try input.geometry?.braggGeometry() else { fatalError("\(patternFile) records no geometry") }
let analysis = try SeriesAnalysis.run(states: [StateInput(label: "crystal", object: phased.object, support: phased.support)],
                                      geometry: geometry)
try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
try ArrayIO.write(phased.object, to: out + "/object.npy", overwrite: true)
try analysis.tableCSV().write(toFile: out + "/table.csv", atomically: true, encoding: .utf8)
let state = analysis.states[0]
print(String(format: "chi2 %.4f; crystal %.2f × %.2f × %.2f µm (x, y, z), edge resolution %.0f nm → %@/table.csv",
             phased.metrics.chi2, state.extent.x * 1e6, state.extent.y * 1e6, state.extent.z * 1e6,
             (state.edgeResolution ?? .nan) * 1e9, out))
