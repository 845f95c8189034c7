import Foundation
import Numerics

/// One state of an operando series, as read from its reconstruction.
public struct StateInput: @unchecked Sendable {
    public var label: String
    /// Voltage or other condition, as written in the experiment file ("3.5 V").
    public var condition: String
    /// The complex object, C order (rocking, row, column), centred in its box.
    public var object: ComplexVolume
    /// The reconstruction's support (nonzero inside), when the results file holds one.
    public var support: RealVolume?
    /// χ² of the reconstruction (seed Eq. 1), when the results file holds it.
    public var chi2: Double?
    /// Further runs of the same state (for the phase-retrieval transfer function).
    public var runs: [ComplexVolume]
    /// The measured intensity of this state (centred), for the PRTF.
    public var pattern: RealVolume?

    public init(label: String, condition: String = "", object: ComplexVolume, support: RealVolume? = nil,
                chi2: Double? = nil, runs: [ComplexVolume] = [], pattern: RealVolume? = nil) {
        self.label = label; self.condition = condition; self.object = object; self.support = support
        self.chi2 = chi2; self.runs = runs; self.pattern = pattern
    }
}

/// Options of a series analysis (the experiment file's [analysis] table).
public struct AnalysisOptions: Sendable, Equatable {
    /// Index of the reference state (Δφᵢ = φᵢ − φ_ref).
    public var reference: Int = 0
    /// The core is the voxels deeper than this fraction of the largest depth.
    public var coreFraction: Double = 0.5
    /// Support threshold (fraction of the largest amplitude) when a state has no support.
    public var supportThreshold: Double = 0.2
    /// Each state's support is where its amplitude exceeds this fraction of its interior
    /// level (the 90th percentile of the amplitude over the reconstruction's support): at
    /// 0.5, the half-height of the edge, i.e. the facets, the same rule for every state and
    /// for a true object (amplitude 1 inside). nil: the reconstruction's support as given
    /// (shrink-wrap supports are generous by design and differ from run to run).
    public var supportFraction: Double? = 0.5
    public var commonSupport: CommonSupportRule = .majority
    /// Missing density: common-support voxels whose amplitude is below this fraction both of
    /// the state's median amplitude over the common support and of the other states' mean
    /// amplitude at that voxel are filled (needs two states or more).
    public var fillThreshold: Double = 0.25
    /// Choose between object and twin by the complex overlap with the reference (after
    /// sub-voxel registration and ramp removal of both).
    public var twinCheck: Bool = true
    /// Refine the registration below one voxel.
    public var subVoxel: Bool = true
    /// Remove each state's linear phase ramp (a displaced Bragg peak, or a uniform strain).
    public var removeRamp: Bool = true
    /// Lab-frame voxel size (m); nil uses the shortest real-space basis vector.
    public var labVoxelSize: Double? = nil
    /// Inverse PCA: the region holding this fraction of ψ₁'s weight.
    public var pcaRegionFraction: Double = 0.99
    /// Resample every state onto the lab grid (needed for the .vti output and the edge fit).
    public var labFrame: Bool = true

    public init() {}

    public func validate(states: Int) throws {
        guard reference >= 0, reference < states else { throw AnalysisError.badOption("reference state \(reference) is not one of the \(states) states") }
        guard coreFraction >= 0, coreFraction < 1 else { throw AnalysisError.badOption("core fraction must lie in [0, 1), got \(coreFraction)") }
        guard supportThreshold > 0, supportThreshold < 1 else { throw AnalysisError.badOption("support threshold must lie in (0, 1), got \(supportThreshold)") }
        if let f = supportFraction { guard f > 0, f < 1 else { throw AnalysisError.badOption("support fraction must lie in (0, 1), got \(f)") } }
        guard fillThreshold >= 0, fillThreshold < 1 else { throw AnalysisError.badOption("fill threshold must lie in [0, 1), got \(fillThreshold)") }
        if let v = labVoxelSize { guard v > 0, v.isFinite else { throw AnalysisError.badOption("lab voxel size must be positive") } }
        guard pcaRegionFraction > 0, pcaRegionFraction <= 1 else { throw AnalysisError.badOption("inverse-PCA fraction must lie in (0, 1]") }
    }
}

/// Fields of one state on the orthogonal lab grid (C order z, y, x).
public struct LabFields: @unchecked Sendable {
    public var amplitude: RealVolume
    public var phase: RealVolume
    /// Δφ against the reference (rad, wrapped).
    public var phaseDifference: RealVolume
    /// u = φ_unwrapped / |Q| (m).
    public var displacement: RealVolume
    /// ε along Q (dimensionless).
    public var strain: RealVolume
    /// The common support (1 inside).
    public var support: RealVolume
    /// Inverse PCA: Ωᵢ·ψ₁, this state's share of the principal component (rad).
    public var pcaProjection: RealVolume
    /// Inverse PCA region holding the chosen fraction of ψ₁'s weight (1 inside).
    public var pcaRegion: RealVolume

    /// The arrays by the names the .vti file uses.
    public var named: [(String, RealVolume)] {
        [("amplitude", amplitude), ("phase", phase), ("delta_phase", phaseDifference),
         ("displacement", displacement), ("strain", strain), ("support", support),
         ("inverse_pca", pcaProjection), ("pca_region", pcaRegion)]
    }
}

/// What the analysis finds for one state.
public struct StateResult: @unchecked Sendable {
    public var label: String
    public var condition: String
    public var chi2: Double?
    public var twinFlipped: Bool
    /// Complex overlaps |Σ ρ_ref* ρ| / (‖ρ_ref‖ ‖ρ‖) with the reference, after sub-voxel
    /// registration and ramp removal, of the object as given and of its twin: the twin
    /// choice takes the larger ((1, 0) for the reference; (0, 0) without a twin check).
    public var twinOverlaps: (object: Double, twin: Double)
    /// Shift applied (voxels per axis) to bring the state onto the reference.
    public var shift: [Double]
    /// Normalised amplitude correlation with the reference after the twin choice.
    public var correlation: Double
    /// Removed phase ramp.
    public var phaseRamp: PhaseRamp
    /// Common-support voxels whose density was filled.
    public var filledVoxels: Int
    /// Mean of the wrapped per-voxel Δφ over the common support (rad).
    public var meanPhaseDifference: Double
    /// Δφ_mean / |Q| (m); the seed's Table 1 prints twice this.
    public var meanRelativeDisplacement: Double
    /// Mean of εᵢ − ε_ref over the common-support voxels where both have a central difference.
    public var meanRelativeStrain: Double
    public var omega: Double
    public var omegaNormalised: Double
    /// Edge-profile resolution (FWHM, m), when the lab frame was computed.
    public var edgeResolution: Double?
    /// PRTF half-period resolution (m), when several runs were given.
    public var prtfResolution: Double?
    /// Crystal extent along the lab x, y, z (m), from this state's aligned support.
    public var extent: Vector3
    /// The aligned object on the reconstruction grid.
    public var aligned: ComplexVolume
    /// Unwrapped phase on the reconstruction grid (rad, 0 outside the common support).
    public var unwrappedPhase: [Float]
    /// Strain along Q on the reconstruction grid.
    public var strain: [Float]
    public var lab: LabFields?
}

/// The whole series' analysis.
public struct SeriesResult: @unchecked Sendable {
    public var geometry: BraggGeometry
    public var options: AnalysisOptions
    public var shape: [Int]
    /// Real-space basis of the reconstruction grid (m per voxel, columns).
    public var basis: Matrix3x3
    public var states: [StateResult]
    public var pca: PhasePCA
    public var commonSupport: [UInt8]
    public var commonSupportVoxels: Int
    public var coreVoxels: Int
    public var labGrid: LabGrid?
}

/// Aligns an operando series to one morphology and measures it (see DESIGN.md, Analysis).
public enum SeriesAnalysis {

    /// The amplitude of a crystal's interior: the 90th percentile of `amplitude` over
    /// `support` (robust to the few ringing voxels above the plateau, and to surface and
    /// missing-density voxels below it).
    static func interiorLevel(_ amplitude: RealVolume, support: [UInt8]) -> Float {
        var v: [Float] = []
        amplitude.withUnsafeFloats { a in for i in 0..<a.count where support[i] != 0 { v.append(a[i]) } }
        guard !v.isEmpty else { return 0 }
        v.sort()
        return v[Int(0.9 * Double(v.count - 1))]
    }

    public static func run(states: [StateInput], geometry: BraggGeometry, options: AnalysisOptions = AnalysisOptions(),
                           progress: ProgressHandler? = nil) throws -> SeriesResult {
        guard !states.isEmpty else { throw AnalysisError.tooFewStates(0) }
        try geometry.validateForAnalysis()
        try options.validate(states: states.count)
        let ref = options.reference
        let shape = states[ref].object.shape
        guard shape.count == 3, shape.allSatisfy({ $0 >= 4 }) else {
            throw AnalysisError.shapeMismatch(state: states[ref].label, shape: shape, expected: [-1, -1, -1])
        }
        for st in states {
            guard st.object.shape == shape else { throw AnalysisError.shapeMismatch(state: st.label, shape: st.object.shape, expected: shape) }
            let bad = st.object.withUnsafeFloats { p in p.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
            guard bad == 0 else { throw AnalysisError.nonFinite(state: st.label, count: bad) }
            guard st.object.modulus().maximum() > 0 else { throw AnalysisError.emptyObject(state: st.label) }
            if let s = st.support, s.shape != shape { throw AnalysisError.supportMismatch(state: st.label, shape: s.shape, expected: shape) }
        }
        let n = shape.reduce(1, *)
        let basis = geometry.realSpaceBasis(shape: shape)
        let qMag = geometry.qMagnitude
        let total = states.count
        func report(_ stage: String, _ done: Int) { progress?(ProgressReport(stage: stage, done: done, total: total)) }

        // 1. Each state's own support, and amplitudes normalised to mean 1 over it.
        var objects: [ComplexVolume] = []
        var supports: [[UInt8]] = []
        var levels = [Float](repeating: 0, count: total)   // amplitude threshold of the support (after normalising)
        for (i, st) in states.enumerated() {
            let amp = st.object.modulus()
            var sup: [UInt8]
            if let s = st.support { sup = s.floats.map { $0 != 0 ? 1 : 0 } }
            else { let t = Float(options.supportThreshold) * amp.maximum(); sup = amp.floats.map { $0 > t ? 1 : 0 } }
            if let f = options.supportFraction {
                levels[i] = Float(f) * Self.interiorLevel(amp, support: sup)
                sup = amp.floats.map { $0 > levels[i] ? 1 : 0 }
            }
            var sum = 0.0, cnt = 0
            amp.withUnsafeFloats { a in for i in 0..<n where sup[i] != 0 { sum += Double(a[i]); cnt += 1 } }
            guard cnt > 0, sum > 0 else { throw AnalysisError.emptySupport("state '\(st.label)': its support is empty") }
            var o = st.object
            o.scale(by: Float(Double(cnt) / sum))
            levels[i] *= Float(Double(cnt) / sum)
            objects.append(o); supports.append(sup)
        }

        // 2. Ramp removal, twin choice and registration against the reference. The twin choice
        // compares the complex overlaps |Σ ρ_ref* ρ| / (‖ρ_ref‖ ‖ρ‖) of the object and of its twin
        // after sub-voxel registration (of the complex fields, both with their linear phase
        // ramps removed: a ramp survives the twin operation and would lower both overlaps).
        // Δφ between states is small, so the right candidate overlaps the reference closely in
        // phase as well as in amplitude; the amplitudes alone cannot tell the twin of a
        // (nearly) centrosymmetric crystal.
        var ramps = [PhaseRamp](repeating: .zero(), count: total)
        var rampFree = objects
        for i in 0..<total {
            let g = objects[i].phaseRamp(inside: supports[i])
            rampFree[i].removePhaseRamp(g)
            if options.removeRamp { objects[i] = rampFree[i]; ramps[i] = g }
        }
        let refAmp = objects[ref].modulus()
        var twinFlags = [Bool](repeating: false, count: total)
        var shifts = [[Double]](repeating: [0, 0, 0], count: total)
        var correlations = [Double](repeating: 1, count: total)
        var overlaps = [(object: Double, twin: Double)](repeating: (0, 0), count: total)
        overlaps[ref] = (1, 0)
        for i in 0..<total where i != ref {
            try Interruption.check()
            report("align", i)
            var obj = objects[i]
            var sup = supports[i]
            var flip = false
            if options.twinCheck {
                let direct = try Registration.shift(of: rampFree[i], onto: rampFree[ref], method: options.registration)
                let twin = try Registration.shift(of: rampFree[i].twin(), onto: rampFree[ref], method: options.registration)
                overlaps[i] = (direct.correlation, twin.correlation)
                flip = twin.correlation > direct.correlation
            }
            if flip {
                obj = obj.twin()
                sup = try RealVolume(shape: shape, elements: sup.map { Float($0) }).twin().floats.map { $0 != 0 ? 1 : 0 }
            }
            // The shift comes from the amplitudes, which the phase changes being measured do not bias.
            let reg = try Registration.shift(of: obj.modulus(), onto: refAmp, method: options.registration)
            var sh = reg.shift
            if !options.subVoxel { sh = sh.map { $0.rounded() } }
            if sh.contains(where: { $0 != 0 }) {
                obj = try obj.fourierShifted(by: sh)
                if options.supportFraction != nil {
                    // The same amplitude threshold on the moved amplitude.
                    sup = obj.modulus().floats.map { $0 > levels[i] ? 1 : 0 }
                } else if states[i].support != nil {
                    let sv = try RealVolume(shape: shape, elements: sup.map { Float($0) }).fourierShifted(by: sh)
                    sup = sv.floats.map { $0 > 0.5 ? 1 : 0 }
                } else {
                    // No support given: threshold the moved amplitude again (sharper than moving the mask).
                    let a = obj.modulus()
                    let t = Float(options.supportThreshold) * a.maximum()
                    sup = a.floats.map { $0 > t ? 1 : 0 }
                }
            }
            objects[i] = obj; supports[i] = sup
            twinFlags[i] = flip; shifts[i] = sh; correlations[i] = reg.correlation
        }
        rampFree = []

        // 3. Common support.
        let common = Alignment.commonSupport(supports, rule: options.commonSupport)
        let commonIdx = (0..<n).filter { common[$0] != 0 }
        guard !commonIdx.isEmpty else {
            throw AnalysisError.emptySupport("the \(options.commonSupport.rawValue) common support of the aligned states is empty")
        }

        // 4. Missing density: amplitude from the other states, phase inpainted from its own.
        let amps = objects.map { $0.modulus().floats }
        var filled = [Int](repeating: 0, count: total)
        for i in 0..<total {
            try Interruption.check()
            report("fill", i)
            var vals = commonIdx.map { amps[i][$0] }
            vals.sort()
            let med = vals[vals.count / 2]
            let thr = Float(options.fillThreshold) * med
            // Missing where low against this state's own level and against the others' mean
            // at that voxel (the soft surface layer, low in every state, is not missing).
            var meanAmp = [Float](repeating: 0, count: n)
            var fill: [Int] = []
            if total > 1 {
                for f in commonIdx where amps[i][f] < thr {
                    var acc: Float = 0
                    for j in 0..<total where j != i { acc += amps[j][f] }
                    let m = acc / Float(total - 1)
                    if amps[i][f] < Float(options.fillThreshold) * m { fill.append(f); meanAmp[f] = m }
                }
            }
            filled[i] = fill.count
            guard !fill.isEmpty else { continue }
            var known = common
            for f in fill { known[f] = 0 }
            Alignment.inpaint(&objects[i], fill: fill, amplitude: meanAmp, known: known, domain: common)
        }

        // 5. Core of the common support and the global phase of each state.
        let spacing = [norm(basis.column(0)), norm(basis.column(1)), norm(basis.column(2))].map { $0 * 1e9 }
        let depth = Morphology.depth(common, shape: shape, spacing: spacing)
        let core = Morphology.core(depth: depth, fraction: options.coreFraction)
        let coreIdx = (0..<n).filter { core[$0] != 0 }
        var seed = 0
        for i in 0..<n where depth[i] > depth[seed] { seed = i }
        for i in 0..<total {
            let ph = objects[i].withUnsafeFloats { p in coreIdx.map { Double(atan2(p[2 * $0 + 1], p[2 * $0])) } }
            let g = Alignment.circularMedian(ph)
            objects[i].rotatePhase(by: Float(-g))
        }

        // 6. Δφᵢ over the common support, and the PCA.
        report("pca", 0)
        var diffs: [[Float]] = []
        for i in 0..<total {
            let d: [Float] = objects[i].withUnsafeFloats { a in objects[ref].withUnsafeFloats { b in
                commonIdx.map { f in
                    let ar = a[2 * f], ai = a[2 * f + 1], br = b[2 * f], bi = b[2 * f + 1]
                    // arg(ρᵢ ρ_ref*) ∈ (−π, π]
                    return atan2(ai * br - ar * bi, ar * br + ai * bi)
                }
            } }
            diffs.append(d)
        }
        let pca = try PhasePCA(differences: diffs, regionFraction: options.pcaRegionFraction)

        // 7. Unwrapped phase, displacement and strain.
        var unwrapped: [[Float]] = [], strains: [[Float]] = [], valids: [[UInt8]] = []
        for i in 0..<total {
            try Interruption.check()
            report("strain", i)
            var u = Morphology.unwrapPhase(objects[i], mask: common, seed: seed)
            for f in 0..<n where common[f] == 0 { u[f] = 0 }
            unwrapped.append(u)
            let e = try Strain.alongQ(objects[i], support: common, basis: basis, qHat: geometry.qHat, qMagnitude: qMag)
            strains.append(e.strain); valids.append(e.valid)
        }

        // 8. Lab frame.
        var grid: LabGrid? = nil
        var labs = [LabFields?](repeating: nil, count: total)
        var edge = [Double?](repeating: nil, count: total)
        if options.labFrame {
            let voxel = options.labVoxelSize ?? min(norm(basis.column(0)), norm(basis.column(1)), norm(basis.column(2)))
            let g = try LabGrid.enclosing(mask: common, shape: shape, basis: basis, voxelSize: voxel)
            grid = g
            let commonVol = try RealVolume(shape: shape, elements: common.map { Float($0) })
            let labSupport = try LabFrame.resample(commonVol, basis: basis, onto: g).floats.map { $0 > 0.5 ? Float(1) : 0 }
            let labSupportVol = try RealVolume(shape: g.shape, elements: labSupport)
            var psiFull = [Float](repeating: 0, count: n), regFull = psiFull
            for (t, f) in commonIdx.enumerated() { psiFull[f] = pca.component[t]; regFull[f] = Float(pca.region[t]) }
            let psiLab = try LabFrame.resample(RealVolume(shape: shape, elements: psiFull), basis: basis, onto: g).floats
            let regLab = try LabFrame.resample(RealVolume(shape: shape, elements: regFull), basis: basis, onto: g).floats.map { $0 > 0.5 ? Float(1) : 0 }
            let refLab = try LabFrame.resample(objects[ref], basis: basis, onto: g)
            for i in 0..<total {
                try Interruption.check()
                report("lab frame", i)
                let c = i == ref ? refLab : try LabFrame.resample(objects[i], basis: basis, onto: g)
                var dfull = [Float](repeating: 0, count: n)
                for (t, f) in commonIdx.enumerated() { dfull[f] = diffs[i][t] }
                let m = g.shape.reduce(1, *)
                func masked(_ v: [Float]) throws -> RealVolume {
                    try RealVolume(shape: g.shape, elements: (0..<m).map { labSupport[$0] != 0 ? v[$0] : 0 })
                }
                // Δφ on the lab grid from the resampled complex fields (no interpolation across wraps).
                let dl: [Float] = c.withUnsafeFloats { a in refLab.withUnsafeFloats { b in
                    (0..<m).map { f in atan2(a[2 * f + 1] * b[2 * f] - a[2 * f] * b[2 * f + 1], a[2 * f] * b[2 * f] + a[2 * f + 1] * b[2 * f + 1]) }
                } }
                let uLab = try LabFrame.resample(RealVolume(shape: shape, elements: unwrapped[i]), basis: basis, onto: g).floats.map { $0 / Float(qMag) }
                let eLab = try LabFrame.resample(RealVolume(shape: shape, elements: strains[i]), basis: basis, onto: g).floats
                let om = Float(pca.omega[i])
                let amp = c.modulus()
                labs[i] = LabFields(amplitude: try masked(amp.floats.map { $0 }), phase: try masked(c.phase().floats),
                                    phaseDifference: try masked(dl), displacement: try masked(uLab),
                                    strain: try masked(eLab), support: labSupportVol,
                                    pcaProjection: try masked(psiLab.map { $0 * om }),
                                    pcaRegion: try RealVolume(shape: g.shape, elements: regLab))
                if let fit = try? Resolution.edgeProfile(amplitude: amp, support: labSupport.map { $0 != 0 ? 1 : 0 }, voxelSize: voxel) {
                    edge[i] = fit.fwhm
                }
            }
        }

        // 9. PRTF for states with several runs.
        var prtfRes = [Double?](repeating: nil, count: total)
        for i in 0..<total where !states[i].runs.isEmpty {
            try Interruption.check()
            report("prtf", i)
            var runs: [ComplexVolume] = [states[i].object]
            for r in states[i].runs {
                guard r.shape == shape else { throw AnalysisError.shapeMismatch(state: "\(states[i].label) (run)", shape: r.shape, expected: shape) }
                var o = r
                let refA = states[i].object.modulus()
                let d = try Registration.shift(of: o.modulus(), onto: refA, method: .integer)
                let t = try Registration.shift(of: o.modulus().twin(), onto: refA, method: .integer)
                if t.correlation > d.correlation { o = o.twin() }
                let reg = try Registration.shift(of: o.modulus(), onto: refA, method: .peakSearch(from: .integer))
                o = try o.fourierShifted(by: reg.shift)
                let ip = try states[i].object.inner(o)   // Σ conj(ref)·o: its phase is the global offset
                o.rotatePhase(by: Float(-atan2(ip.im, ip.re)))
                runs.append(o)
            }
            prtfRes[i] = try Resolution.prtf(runs: runs, intensity: states[i].pattern, steps: geometry.reciprocalBasis).resolution
        }

        // 10. Per-state numbers.
        var results: [StateResult] = []
        for i in 0..<total {
            let dm = diffs[i].reduce(0.0) { $0 + Double($1) } / Double(commonIdx.count)
            var es = 0.0, ec = 0
            for f in commonIdx where valids[i][f] == 2 && valids[ref][f] == 2 { es += Double(strains[i][f] - strains[ref][f]); ec += 1 }
            let ext = LabFrame.extent(mask: supports[i], shape: shape, basis: basis)
            results.append(StateResult(
                label: states[i].label, condition: states[i].condition, chi2: states[i].chi2,
                twinFlipped: twinFlags[i], twinOverlaps: overlaps[i], shift: shifts[i], correlation: correlations[i], phaseRamp: ramps[i],
                filledVoxels: filled[i], meanPhaseDifference: dm, meanRelativeDisplacement: dm / qMag,
                meanRelativeStrain: ec > 0 ? es / Double(ec) : 0, omega: pca.omega[i],
                omegaNormalised: pca.omegaNormalised[i], edgeResolution: edge[i], prtfResolution: prtfRes[i],
                extent: ext, aligned: objects[i], unwrappedPhase: unwrapped[i], strain: strains[i], lab: labs[i]))
        }
        report("done", total)
        return SeriesResult(geometry: geometry, options: options, shape: shape, basis: basis, states: results, pca: pca,
                            commonSupport: common, commonSupportVoxels: commonIdx.count, coreVoxels: coreIdx.count,
                            labGrid: grid)
    }
}
