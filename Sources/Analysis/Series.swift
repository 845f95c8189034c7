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
    /// Removed phase ramp (rad per voxel per axis).
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

    /// Aligns and measures a series: the stages in `SeriesStages.swift`, in order, over one
    /// `StateReconstruction` per state.
    public static func run(states inputs: [StateInput], geometry: BraggGeometry, options: AnalysisOptions = AnalysisOptions(),
                           progress: ProgressHandler? = nil) throws -> SeriesResult {
        let shape = try validate(inputs, geometry: geometry, options: options)
        let ref = options.reference
        let basis = geometry.realSpaceBasis(shape: shape)
        let total = inputs.count
        func report(_ stage: String, _ done: Int) { progress?(ProgressReport(stage: stage, done: done, total: total)) }

        // 1. Own support and normalised amplitude.
        var states = try inputs.map { try normalise($0, options: options) }
        // 2. Phase ramps, then twin choice and registration against the reference.
        var rampFree = states.indices.map { removePhaseRamp(&states[$0], options: options) }
        let refAmp = states[ref].object.modulus()
        states[ref].twinOverlaps = (1, 0)
        for i in 0..<total where i != ref {
            try Interruption.check()
            report("align", i)
            try alignToReference(&states[i], rampFree: rampFree[i], referenceRampFree: rampFree[ref],
                                 referenceAmplitude: refAmp, options: options)
        }
        rampFree = []
        // 3. Common support and its core.
        let common = try commonMorphology(states, rule: options.commonSupport, coreFraction: options.coreFraction, basis: basis)
        // 4. Missing density (against the amplitudes before any fill).
        let amps = states.map { $0.object.modulus().floats }
        for i in 0..<total {
            try Interruption.check()
            report("fill", i)
            fillMissingDensity(&states[i], index: i, amplitudes: amps, common: common, options: options)
        }
        // 5. Global phase over the core.
        for i in 0..<total { removeCorePhase(&states[i], core: common) }
        // 6. Δφᵢ over the common support, and the PCA.
        report("pca", 0)
        for i in 0..<total { states[i].phaseDifference = phaseDifference(states[i].object, reference: states[ref].object, common: common) }
        let pca = try PhasePCA(differences: states.map(\.phaseDifference), regionFraction: options.pcaRegionFraction)
        // 7. Unwrapped phase, displacement and strain.
        for i in 0..<total {
            try Interruption.check()
            report("strain", i)
            try strain(&states[i], common: common, basis: basis, geometry: geometry)
        }
        // 8. Lab frame.
        var grid: LabGrid? = nil
        if options.labFrame {
            grid = try labFrame(&states, reference: ref, common: common, pca: pca, basis: basis, geometry: geometry,
                                options: options, report: report)
        }
        // 9. PRTF for states with several runs.
        for i in 0..<total where !inputs[i].runs.isEmpty {
            try Interruption.check()
            report("prtf", i)
            states[i].prtfResolution = try prtfResolution(inputs[i], geometry: geometry)
        }
        // 10. Per-state numbers.
        let results = states.indices.map { stateResult(states, index: $0, reference: ref, common: common, basis: basis, geometry: geometry, pca: pca) }
        report("done", total)
        return SeriesResult(geometry: geometry, options: options, shape: shape, basis: basis, states: results, pca: pca,
                            commonSupport: common.support, commonSupportVoxels: common.indices.count,
                            coreVoxels: common.coreIndices.count, labGrid: grid)
    }

    /// Checks the inputs before any work; returns the common shape.
    static func validate(_ states: [StateInput], geometry: BraggGeometry, options: AnalysisOptions) throws -> [Int] {
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
        return shape
    }

    /// The numbers of state `i` once every stage has run: mean Δφ and displacement, mean
    /// strain relative to the reference where both have a central difference, Ω, extent.
    static func stateResult(_ states: [StateReconstruction], index i: Int, reference ref: Int, common: CommonMorphology,
                            basis: Matrix3x3, geometry: BraggGeometry, pca: PhasePCA) -> StateResult {
        let st = states[i], shape = st.object.shape
        let dm = st.phaseDifference.reduce(0.0) { $0 + Double($1) } / Double(common.indices.count)
        var es = 0.0, ec = 0
        for f in common.indices where st.strainValid[f] == 2 && states[ref].strainValid[f] == 2 {
            es += Double(st.strain[f] - states[ref].strain[f]); ec += 1
        }
        return StateResult(
            label: st.input.label, condition: st.input.condition, chi2: st.input.chi2,
            twinFlipped: st.twinFlipped, twinOverlaps: st.twinOverlaps, shift: st.shift, correlation: st.correlation,
            phaseRamp: st.phaseRamp, filledVoxels: st.filledVoxels, meanPhaseDifference: dm,
            meanRelativeDisplacement: dm / geometry.qMagnitude, meanRelativeStrain: ec > 0 ? es / Double(ec) : 0,
            omega: pca.omega[i], omegaNormalised: pca.omegaNormalised[i], edgeResolution: st.edgeResolution,
            prtfResolution: st.prtfResolution, extent: LabFrame.extent(mask: st.support, shape: shape, basis: basis),
            aligned: st.object, unwrappedPhase: st.unwrappedPhase, strain: st.strain, lab: st.lab)
    }
}
