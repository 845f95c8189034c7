import Foundation
import Numerics

/// The one definition of a state's support, used when the analysis starts and again after
/// the state is moved by a sub-voxel shift (a Fourier-shifted mask is no longer a mask).
public enum SupportRule: Sendable, Equatable {
    /// Amplitude above a fixed level: `supportFraction` × the interior level, found once on
    /// the reconstruction's support (or on `supportThreshold` × maximum when it has none),
    /// rescaled with the amplitude when it is normalised.
    case amplitudeAbove(Float)
    /// Amplitude above this fraction of the amplitude's own maximum (`supportFraction` off,
    /// no support given).
    case fractionOfMaximum(Float)
    /// The reconstruction's support as given (`supportFraction` off), moved with the object:
    /// Fourier-shifted and kept where above 0.5.
    case given

    /// The support of `amplitude` under the threshold rules (nil for `.given`).
    public func threshold(_ amplitude: RealVolume) -> [UInt8]? {
        switch self {
        case .amplitudeAbove(let level): return amplitude.floats.map { $0 > level ? 1 : 0 }
        case .fractionOfMaximum(let f): let t = f * amplitude.maximum(); return amplitude.floats.map { $0 > t ? 1 : 0 }
        case .given: return nil
        }
    }

    /// The rule after the amplitude is multiplied by `scale`.
    func scaled(by scale: Float) -> SupportRule {
        if case .amplitudeAbove(let level) = self { return .amplitudeAbove(level * scale) }
        return self
    }
}

/// One state of a series as it moves through the stages of `SeriesAnalysis`: the
/// reconstruction, what each stage has done to it, and what each has measured.
public struct StateReconstruction: @unchecked Sendable {
    public var input: StateInput
    /// The object as the stages have left it (normalised, ramp-free, twin-chosen, shifted,
    /// filled, global phase removed).
    public var object: ComplexVolume
    /// This state's own support (1 inside), moved with the object.
    public var support: [UInt8]
    public var supportRule: SupportRule
    /// Removed phase ramp.
    public var phaseRamp: PhaseRamp = .zero()
    public var twinFlipped = false
    public var twinOverlaps: (object: Double, twin: Double) = (0, 0)
    public var shift: [Double] = [0, 0, 0]
    public var correlation: Double = 1
    public var filledVoxels = 0
    /// Wrapped Δφ against the reference over the common support, in common-support order.
    public var phaseDifference: [Float] = []
    /// Unwrapped phase (0 outside the common support), strain along Q, and where the strain
    /// has a central difference (2) on the reconstruction grid.
    public var unwrappedPhase: [Float] = []
    public var strain: [Float] = []
    public var strainValid: [UInt8] = []
    public var lab: LabFields?
    public var edgeResolution: Double?
    public var prtfResolution: Double?

    public init(input: StateInput, object: ComplexVolume, support: [UInt8], supportRule: SupportRule) {
        self.input = input; self.object = object; self.support = support; self.supportRule = supportRule
    }
}

/// The common morphology of an aligned series: the common support and its core.
public struct CommonMorphology: Sendable {
    public var support: [UInt8]
    /// Flat indices of the common support, in order (the PCA's voxel order).
    public var indices: [Int]
    public var core: [UInt8]
    /// Flat indices of the core, in order.
    public var coreIndices: [Int]
    /// The deepest voxel of the common support (the unwrapping seed).
    public var seed: Int
}

/// The stages of a series analysis, each a function of per-state values that can be run and
/// tested alone; `SeriesAnalysis.run` is their sequence.
public extension SeriesAnalysis {

    /// Stage 1, normalise: the state's own support (by the one `SupportRule` the options
    /// give) and its amplitude scaled to mean 1 over that support.
    static func normalise(_ input: StateInput, options: AnalysisOptions) throws -> StateReconstruction {
        let amp = input.object.modulus()
        var rule: SupportRule
        var sup: [UInt8]
        if let f = options.supportFraction {
            // The interior level is measured on the reconstruction's support, or on a
            // fraction of the maximum when it has none.
            let base: [UInt8] = input.support.map { s in s.floats.map { $0 != 0 ? 1 : 0 } }
                ?? SupportRule.fractionOfMaximum(Float(options.supportThreshold)).threshold(amp)!
            rule = .amplitudeAbove(Float(f) * Self.interiorLevel(amp, support: base))
            sup = rule.threshold(amp)!
        } else if let s = input.support {
            rule = .given
            sup = s.floats.map { $0 != 0 ? 1 : 0 }
        } else {
            rule = .fractionOfMaximum(Float(options.supportThreshold))
            sup = rule.threshold(amp)!
        }
        var sum = 0.0, cnt = 0
        amp.withUnsafeFloats { a in for i in 0..<a.count where sup[i] != 0 { sum += Double(a[i]); cnt += 1 } }
        guard cnt > 0, sum > 0 else { throw AnalysisError.emptySupport("state '\(input.label)': its support is empty") }
        var o = input.object
        let scale = Float(Double(cnt) / sum)
        o.scale(by: scale)
        rule = rule.scaled(by: scale)
        return StateReconstruction(input: input, object: o, support: sup, supportRule: rule)
    }

    /// Stage 2a, phase ramp: measures the state's linear phase ramp over its support and
    /// returns the object without it; the state loses its ramp when `options.removeRamp`.
    /// (The ramp-free object serves the twin choice either way: a ramp survives the twin
    /// operation and would lower both overlaps.)
    static func removePhaseRamp(_ state: inout StateReconstruction, options: AnalysisOptions) -> ComplexVolume {
        var rampFree = state.object
        let g = state.object.phaseRamp(inside: state.support)
        rampFree.removePhaseRamp(g)
        if options.removeRamp { state.object = rampFree; state.phaseRamp = g }
        return rampFree
    }

    /// Stage 2b, align to the reference: twin choice, then registration and shift.
    ///
    /// The twin choice compares the complex overlaps |Σ ρ_ref* ρ| / (‖ρ_ref‖ ‖ρ‖) of the
    /// ramp-free object and of its twin with the ramp-free reference, after sub-voxel
    /// registration: Δφ between states is small, so the right candidate overlaps the
    /// reference closely in phase as well as in amplitude (the amplitudes alone cannot tell
    /// the twin of a nearly centrosymmetric crystal). The shift comes from the amplitudes,
    /// which the phase changes being measured do not bias. The support follows the object
    /// (twinned with it; after a shift, the state's `SupportRule` again).
    static func alignToReference(_ state: inout StateReconstruction, rampFree: ComplexVolume,
                                 referenceRampFree: ComplexVolume, referenceAmplitude: RealVolume,
                                 options: AnalysisOptions) throws {
        let shape = state.object.shape
        var obj = state.object
        var sup = state.support
        var flip = false
        if options.twinCheck {
            let direct = try Registration.shift(of: rampFree, onto: referenceRampFree, method: options.registration)
            let twin = try Registration.shift(of: rampFree.twin(), onto: referenceRampFree, method: options.registration)
            state.twinOverlaps = (direct.correlation, twin.correlation)
            flip = twin.correlation > direct.correlation
        }
        if flip {
            obj = obj.twin()
            sup = try RealVolume(shape: shape, elements: sup.map { Float($0) }).twin().floats.map { $0 != 0 ? 1 : 0 }
        }
        let reg = try Registration.shift(of: obj.modulus(), onto: referenceAmplitude, method: options.registration)
        var sh = reg.shift
        if !options.subVoxel { sh = sh.map { $0.rounded() } }
        if sh.contains(where: { $0 != 0 }) {
            obj = try obj.fourierShifted(by: sh)
            if let s = state.supportRule.threshold(obj.modulus()) {
                sup = s
            } else {
                let sv = try RealVolume(shape: shape, elements: sup.map { Float($0) }).fourierShifted(by: sh)
                sup = sv.floats.map { $0 > 0.5 ? 1 : 0 }
            }
        }
        state.object = obj; state.support = sup
        state.twinFlipped = flip; state.shift = sh; state.correlation = reg.correlation
    }

    /// Stage 3, common support: the aligned states' supports merged by `rule` (majority:
    /// in more than half of them; union: in any; intersection: in all), its core (voxels
    /// deeper than `coreFraction` of the largest depth, in nm on the reconstruction grid)
    /// and its deepest voxel. Throws when the common support is empty.
    static func commonMorphology(_ states: [StateReconstruction], rule: CommonSupportRule, coreFraction: Double,
                                 basis: Matrix3x3) throws -> CommonMorphology {
        let shape = states[0].object.shape
        let n = shape.reduce(1, *)
        let common = Alignment.commonSupport(states.map(\.support), rule: rule)
        let commonIdx = (0..<n).filter { common[$0] != 0 }
        guard !commonIdx.isEmpty else {
            throw AnalysisError.emptySupport("the \(rule.rawValue) common support of the aligned states is empty")
        }
        let spacing = [norm(basis.column(0)), norm(basis.column(1)), norm(basis.column(2))].map { $0 * 1e9 }
        let depth = Morphology.depth(common, shape: shape, spacing: spacing)
        let core = Morphology.core(depth: depth, fraction: coreFraction)
        var seed = 0
        for i in 0..<n where depth[i] > depth[seed] { seed = i }
        return CommonMorphology(support: common, indices: commonIdx, core: core,
                                coreIndices: (0..<n).filter { core[$0] != 0 }, seed: seed)
    }

    /// Stage 4, fill missing density: common-support voxels of state `i` whose amplitude is
    /// below `fillThreshold` × the state's median over the common support and below
    /// `fillThreshold` × the other states' mean at that voxel (the soft surface layer, low in
    /// every state, is not missing) take that mean as amplitude and a phase inpainted from
    /// their own state. `amplitudes`: every state's amplitude before any fill. Returns the
    /// number of voxels filled.
    @discardableResult
    static func fillMissingDensity(_ state: inout StateReconstruction, index i: Int, amplitudes: [[Float]],
                                   common: CommonMorphology, options: AnalysisOptions) -> Int {
        let total = amplitudes.count, n = common.support.count
        var vals = common.indices.map { amplitudes[i][$0] }
        vals.sort()
        let med = vals[vals.count / 2]
        let thr = Float(options.fillThreshold) * med
        var meanAmp = [Float](repeating: 0, count: n)
        var fill: [Int] = []
        if total > 1 {
            for f in common.indices where amplitudes[i][f] < thr {
                var acc: Float = 0
                for j in 0..<total where j != i { acc += amplitudes[j][f] }
                let m = acc / Float(total - 1)
                if amplitudes[i][f] < Float(options.fillThreshold) * m { fill.append(f); meanAmp[f] = m }
            }
        }
        state.filledVoxels = fill.count
        guard !fill.isEmpty else { return 0 }
        var known = common.support
        for f in fill { known[f] = 0 }
        Alignment.inpaint(&state.object, fill: fill, amplitude: meanAmp, known: known, domain: common.support)
        return fill.count
    }

    /// Stage 5, core phase: removes the state's global phase, the circular median of its
    /// phase over the core of the common support.
    static func removeCorePhase(_ state: inout StateReconstruction, core: CommonMorphology) {
        let coreIdx = core.coreIndices
        let ph = state.object.withUnsafeFloats { p in coreIdx.map { Double(atan2(p[2 * $0 + 1], p[2 * $0])) } }
        let g = Alignment.circularMedian(ph)
        state.object.rotatePhase(by: Float(-g))
    }

    /// Stage 6a, phase difference: arg(ρᵢ ρ_ref*) ∈ (−π, π] over the common support.
    static func phaseDifference(_ object: ComplexVolume, reference: ComplexVolume, common: CommonMorphology) -> [Float] {
        object.withUnsafeFloats { a in reference.withUnsafeFloats { b in
            common.indices.map { f in
                let ar = a[2 * f], ai = a[2 * f + 1], br = b[2 * f], bi = b[2 * f + 1]
                return atan2(ai * br - ar * bi, ar * br + ai * bi)
            }
        } }
    }

    /// Stage 7, strain: the phase unwrapped from the deepest voxel (0 outside the common
    /// support) and the strain along Q, ε = ∂u/∂x_Q with u = φ/|Q|.
    static func strain(_ state: inout StateReconstruction, common: CommonMorphology, basis: Matrix3x3,
                       geometry: BraggGeometry) throws {
        var u = Morphology.unwrapPhase(state.object, mask: common.support, seed: common.seed)
        for f in 0..<u.count where common.support[f] == 0 { u[f] = 0 }
        state.unwrappedPhase = u
        let e = try Strain.alongQ(state.object, support: common.support, basis: basis, qHat: geometry.qHat,
                                  qMagnitude: geometry.qMagnitude)
        state.strain = e.strain; state.strainValid = e.valid
    }

    /// Stage 8, lab frame: every state's fields resampled onto an orthogonal lab grid around
    /// the common support (Δφ from the resampled complex fields, so no interpolation across
    /// wraps), and the edge-profile resolution of each. Returns the grid.
    static func labFrame(_ states: inout [StateReconstruction], reference ref: Int, common: CommonMorphology,
                         pca: PhasePCA, basis: Matrix3x3, geometry: BraggGeometry, options: AnalysisOptions,
                         report: (String, Int) -> Void) throws -> LabGrid {
        let shape = states[ref].object.shape
        let n = shape.reduce(1, *)
        let qMag = geometry.qMagnitude
        let commonIdx = common.indices
        let voxel = options.labVoxelSize ?? min(norm(basis.column(0)), norm(basis.column(1)), norm(basis.column(2)))
        let g = try LabGrid.enclosing(mask: common.support, shape: shape, basis: basis, voxelSize: voxel)
        let commonVol = try RealVolume(shape: shape, elements: common.support.map { Float($0) })
        let labSupport = try LabFrame.resample(commonVol, basis: basis, onto: g).floats.map { $0 > 0.5 ? Float(1) : 0 }
        let labSupportVol = try RealVolume(shape: g.shape, elements: labSupport)
        var psiFull = [Float](repeating: 0, count: n), regFull = psiFull
        for (t, f) in commonIdx.enumerated() { psiFull[f] = pca.component[t]; regFull[f] = Float(pca.region[t]) }
        let psiLab = try LabFrame.resample(RealVolume(shape: shape, elements: psiFull), basis: basis, onto: g).floats
        let regLab = try LabFrame.resample(RealVolume(shape: shape, elements: regFull), basis: basis, onto: g).floats.map { $0 > 0.5 ? Float(1) : 0 }
        let refLab = try LabFrame.resample(states[ref].object, basis: basis, onto: g)
        for i in states.indices {
            try Interruption.check()
            report("lab frame", i)
            let c = i == ref ? refLab : try LabFrame.resample(states[i].object, basis: basis, onto: g)
            let m = g.shape.reduce(1, *)
            func masked(_ v: [Float]) throws -> RealVolume {
                try RealVolume(shape: g.shape, elements: (0..<m).map { labSupport[$0] != 0 ? v[$0] : 0 })
            }
            let dl: [Float] = c.withUnsafeFloats { a in refLab.withUnsafeFloats { b in
                (0..<m).map { f in atan2(a[2 * f + 1] * b[2 * f] - a[2 * f] * b[2 * f + 1], a[2 * f] * b[2 * f] + a[2 * f + 1] * b[2 * f + 1]) }
            } }
            let uLab = try LabFrame.resample(RealVolume(shape: shape, elements: states[i].unwrappedPhase), basis: basis, onto: g).floats.map { $0 / Float(qMag) }
            let eLab = try LabFrame.resample(RealVolume(shape: shape, elements: states[i].strain), basis: basis, onto: g).floats
            let om = Float(pca.omega[i])
            let amp = c.modulus()
            states[i].lab = LabFields(amplitude: try masked(amp.floats.map { $0 }), phase: try masked(c.phase().floats),
                                      phaseDifference: try masked(dl), displacement: try masked(uLab),
                                      strain: try masked(eLab), support: labSupportVol,
                                      pcaProjection: try masked(psiLab.map { $0 * om }),
                                      pcaRegion: try RealVolume(shape: g.shape, elements: regLab))
            if let fit = try? Resolution.edgeProfile(amplitude: amp, support: labSupport.map { $0 != 0 ? 1 : 0 }, voxelSize: voxel) {
                states[i].edgeResolution = fit.fwhm
            }
        }
        return g
    }

    /// Stage 9, resolution: the phase-retrieval transfer function of a state with several
    /// runs, each run brought onto the state's reconstruction (twin by amplitude overlap,
    /// sub-voxel shift, global phase). Returns the half-period resolution (m), nil without
    /// further runs.
    static func prtfResolution(_ input: StateInput, geometry: BraggGeometry) throws -> Double? {
        guard !input.runs.isEmpty else { return nil }
        let shape = input.object.shape
        var runs: [ComplexVolume] = [input.object]
        for r in input.runs {
            guard r.shape == shape else { throw AnalysisError.shapeMismatch(state: "\(input.label) (run)", shape: r.shape, expected: shape) }
            var o = r
            let refA = input.object.modulus()
            let d = try Registration.shift(of: o.modulus(), onto: refA, method: .integer)
            let t = try Registration.shift(of: o.modulus().twin(), onto: refA, method: .integer)
            if t.correlation > d.correlation { o = o.twin() }
            let reg = try Registration.shift(of: o.modulus(), onto: refA, method: .peakSearch(from: .integer))
            o = try o.fourierShifted(by: reg.shift)
            let ip = try input.object.inner(o)   // Σ conj(ref)·o: its phase is the global offset
            o.rotatePhase(by: Float(-atan2(ip.im, ip.re)))
            runs.append(o)
        }
        return try Resolution.prtf(runs: runs, intensity: input.pattern, steps: geometry.reciprocalBasis).resolution
    }
}
