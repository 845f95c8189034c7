// use-braggkit PATTERN.cxi OUT: phase a prepared pattern (CXI file of `bragg prepare` or
// `bragg simulate`, with its mask and geometry), write the CXI result, analyse the object
// and write the series outputs (table.csv, table.json, pca.json, the lab-frame .vti).
import BraggKit
import Foundation

let (patternFile, out) = (CommandLine.arguments[1], CommandLine.arguments[2])
let input = try PatternInput.read(patternFile, mask: nil)
var options = PhasingOptions()
options.recipe = try Recipe.parse("short")
let phased = try Reconstruction.iterative(input, source: patternFile, options: options)
try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
try phased.write(to: out + "/reconstruction.cxi", overwrite: true)
let geometry = try GeometryMerge.resolve(experiment: nil, stored: input.geometry, storedSource: patternFile, overrides: [])
let analysis = try SeriesAnalysis.run(states: [StateInput(label: "crystal", object: phased.object, support: phased.support, chi2: phased.chi2)],
                                      geometry: geometry.geometry)
try SeriesOutputs.write(analysis, to: out, overwrite: true,
                        tableExtras: SeriesOutputs.geometryExtras(geometry, result: analysis, reference: 0))
let state = analysis.states[0]
print(String(format: "chi2 %.4f; crystal %.2f × %.2f × %.2f µm (x, y, z), edge resolution %.0f nm; %@ → %@/reconstruction.cxi, table.csv",
             phased.chi2, state.extent.x * 1e6, state.extent.y * 1e6, state.extent.z * 1e6,
             (state.edgeResolution ?? .nan) * 1e9, geometry.summary, out))
