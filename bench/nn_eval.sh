#!/usr/bin/env bash
# Evaluation of a trained phase-retrieval model on freshly simulated crystals (seeds
# TrainingOptions.evaluationSeed(i), never used in training), as asked by issue 5:
# median normalised complex error (twin, sub-voxel shift, global phase/scale removed) of
#   1. the prediction alone,
#   2. the prediction after --refine-steps K of fine-tuning on the pattern,
#   3. the prediction handed to the iterative engine for ER:50 (start object + support),
#   4. the iterative default recipe (HIO:400 RAAR:300 ER:100 with shrink-wrap) alone.
# (3) needs PhasingEngine.start(from:), still internal to Phasing, hence a private package
# built with -enable-testing and `@testable import Phasing`.
#
#   bench/nn_eval.sh MODEL [CRYSTALS=20] [REFINE_STEPS=500] [THREADS=2]
set -euo pipefail
MODEL=$(realpath "$1"); N=${2:-20}; K=${3:-500}; T=${4:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${NN_EVAL_DIR:-/tmp/nn-eval-pkg}
mkdir -p "$W/Sources/nneval"
for d in CFFTW COpenBLAS Numerics Simulation Phasing Neural; do ln -sfn "$ROOT/Sources/$d" "$W/Sources/$d"; done
cat > "$W/Package.swift" <<'PKG'
// swift-tools-version:6.0
import PackageDescription
let fast: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(["-Xcc", "-fno-math-errno", "-Xcc", "-march=x86-64-v3", "-enable-testing"])]
let package = Package(name: "NNEval", targets: [
  .systemLibrary(name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f"),
  .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
  .target(name: "Numerics", dependencies: ["CFFTW", "COpenBLAS"], swiftSettings: fast),
  .target(name: "Simulation", dependencies: ["Numerics"], swiftSettings: fast),
  .target(name: "Phasing", dependencies: ["Numerics"], swiftSettings: fast),
  .target(name: "Neural", dependencies: ["Numerics", "Simulation", "COpenBLAS"], swiftSettings: fast),
  .executableTarget(name: "nneval", dependencies: ["Numerics", "Simulation", "Phasing", "Neural"], swiftSettings: fast),
])
PKG
cat > "$W/Sources/nneval/main.swift" <<'SWIFT'
import Foundation
import Numerics
import Simulation
import Neural
@testable import Phasing

let a = CommandLine.arguments
let modelPath = a[1], count = Int(a[2])!, refine = Int(a[3])!
Parallel.threads = Int(a[4])!
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
func median(_ x: [Double]) -> Double { let s = x.sorted(); return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])) }
var rows: [[Double]] = []
print("crystal seed  predict  refine\(refine)  predict+ER50  iterative-default   (normalised complex error; seconds)")
for i in 0..<count {
    let seed = TrainingOptions.evaluationSeed(i)
    let pair = try TrainingPair.make(size: 64, seed: seed)
    let truth = try pair.object.centred(in: [64, 64, 64])
    // 1. prediction alone
    var t0 = now()
    let (net, _) = try PhaseNet.load(from: modelPath)
    let p = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net, refineSteps: 0)
    let tPredict = now() - t0
    let ePredict = try ReconstructionError.normalised(p.object, truth: truth)
    // 3. prediction + ER:50 (the engine starts from the predicted object and support)
    t0 = now()
    let data = try PhasingData(intensity: pair.intensity)
    let engine = try PhasingEngine(data: data, support: p.support, threads: Parallel.threads)
    let start = p.object.ifftshifted()
    start.withUnsafeFloats { engine.start(from: $0.baseAddress!) }
    try engine.run(recipe: try Recipe.parse("ER:50"), shrinkWrap: ShrinkWrapSchedule())
    _ = engine.finalMetrics()
    let eER = try ReconstructionError.normalised(engine.object, truth: truth)
    let tER = now() - t0
    // 4. the iterative default recipe from a random start
    t0 = now()
    var opts = PhasingOptions(); opts.seed = seed
    let it = try Phaser.phase(data, options: opts)
    let eIter = try ReconstructionError.normalised(it.object, truth: truth)
    let tIter = now() - t0
    // 2. refinement (fine-tunes a fresh copy of the model on this pattern)
    var eRefine = Double.nan, tRefine = 0.0
    if refine > 0 {
        t0 = now()
        let (net2, _) = try PhaseNet.load(from: modelPath)
        let r = try NeuralPhaser.reconstruct(pattern: pair.intensity, model: net2, refineSteps: refine)
        eRefine = try ReconstructionError.normalised(r.object, truth: truth)
        tRefine = now() - t0
    }
    rows.append([ePredict, eRefine, eER, eIter])
    print(String(format: "%3d %llu  %.3f (%.2fs)  %.3f (%.0fs)  %.3f (%.2fs)  %.3f (%.1fs)", i, seed, ePredict, tPredict,
                 eRefine, tRefine, eER, tER + tPredict, eIter, tIter))
    fflush(stdout)
}
print(String(format: "median over %d crystals: predict %.3f, refine%d %.3f, predict+ER:50 %.3f, iterative default (%d iterations) %.3f",
             rows.count, median(rows.map { $0[0] }), refine, median(rows.map { $0[1] }.filter { !$0.isNaN }),
             median(rows.map { $0[2] }), Recipe.standard.totalIterations, median(rows.map { $0[3] })))
SWIFT
swift build -c release --package-path "$W" --scratch-path "$W/.build" --product nneval >&2
"$W/.build/release/nneval" "$MODEL" "$N" "$K" "$T"
