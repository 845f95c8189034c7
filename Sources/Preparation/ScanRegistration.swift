import Foundation
import Numerics

/// Registration, the second stage of a preparation: each scan is registered to the first
/// one on a box around the first scan's Bragg peak (upsampled DFT, 1/upsampling voxel),
/// against the aligned sum of the boxes of the scans included before (the reference grows
/// as scans come in, staying in the first scan's frame). A scan whose correlation is below
/// the threshold is left out. Near the peak, a shifted scan's bad voxels are refilled from
/// the reference moved onto it, so the Fourier shift does not ring a neighbour-mean fill.
///
/// Runs on the adding thread, in scan order: the reference is the state of this stage
/// alone, and the only scan data it writes is the refilled voxels of the scan it registers.
final class ScanRegistration {
    let stackShape: [Int]
    let options: PreparationOptions
    let rows: Int, cols: Int
    let runtime: StageRuntime
    var referenceBox: RealVolume?
    /// The reference box's bad columns (y · box columns + x, through every frame), from the
    /// first scan's bad pixels.
    var referenceBad: [Int] = []
    /// Transforms of registration boxes.
    var fourier: BoxFourier?
    var referenceRepaired = false
    var boxStart: [Int] = [0, 0, 0]
    var boxSize: [Int] = [0, 0, 0]

    init(stackShape: [Int], options: PreparationOptions, runtime: StageRuntime) {
        self.stackShape = stackShape
        self.options = options
        self.runtime = runtime
        rows = stackShape[1]; cols = stackShape[2]
    }

    @discardableResult
    func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T { try runtime.timed(stage, body) }

    /// Registers a loaded scan to the first one (on the adding thread, in scan order: the
    /// reference is the aligned sum of the boxes of the scans before), refills its bad
    /// voxels near the peak, grows the reference, and says whether the scan is included.
    func register(_ loaded: LoadedScan) throws -> ScanReport {
        let data = loaded.data
        let k = loaded.index, source = loaded.source
        let (badList, hot, dead, other, total) = (loaded.badList, loaded.hot, loaded.dead, loaded.other, loaded.total)

        // 3. Registration to the first scan, on a box around its Bragg peak, against the
        //    aligned sum of the boxes of the scans before.
        var shift = [0.0, 0.0, 0.0]
        var correlation = 1.0
        let scanVolume = try RealVolume(shape: stackShape, storage: data)
        if referenceBox == nil {
            let peak = scanVolume.index(ofFlat: scanVolume.argmax())
            boxSize = stackShape.map { min($0, options.registrationBox) }
            boxStart = (0..<3).map { max(0, min(stackShape[$0] - boxSize[$0], peak[$0] - boxSize[$0] / 2)) }
            referenceBox = try scanVolume.cropped(start: boxStart, size: boxSize)
            referenceBad = boxColumns(badList)
        } else if let ref = referenceBox {
            let box = try scanVolume.cropped(start: boxStart, size: boxSize)
            // This scan's bad detector pixels inside the box (columns through every frame).
            let boxBad = boxColumns(badList)
            var boxSpectrum: FloatStorage?
            if options.register {
                let f = try boxFourier()
                let r = try timed("register") { try registerBox(box, boxBad: boxBad, onto: ref, fourier: f) }
                shift = r.shift; correlation = r.correlation
                boxSpectrum = r.boxSpectrum
                if correlation >= options.minCorrelation && !badList.isEmpty {
                    try timed("refill") {
                        try refillFromReference(boxSpectrum: r.boxSpectrum, referenceSpectrum: r.referenceSpectrum,
                                                boxBad: boxBad, shift: shift, fourier: f, in: data)
                    }
                    if !boxBad.isEmpty { boxSpectrum = nil }   // the box was refilled
                }
            } else {
                correlation = pearson(box, ref)
            }
            if correlation >= options.minCorrelation {
                // The reference grows into the aligned sum of the boxes: later scans are
                // registered against less noise, still in the first scan's frame.
                var sum = referenceBox ?? ref
                try timed("reference sum") {
                    let filled = try scanVolume.cropped(start: boxStart, size: boxSize)
                    if shift.allSatisfy({ $0 == 0 }) {
                        try sum.add(filled)
                    } else {
                        let f = try boxFourier()
                        try sum.add(f.shifted(boxSpectrum ?? f.spectrum(filled), by: shift))
                    }
                }
                referenceBox = sum
            }
        }
        var report = ScanReport(index: k, source: source, shift: shift, correlation: correlation, included: true,
                                note: nil, hotPixels: hot, deadPixels: dead, otherBadPixels: other, totalCounts: total)
        if !(correlation >= options.minCorrelation) {
            report.included = false
            report.note = String(format: "its correlation with the scans before (registered to the first) is %.3f, below the threshold %.3f", correlation, options.minCorrelation)
        }
        return report
    }

    /// The scan's bad pixels inside the registration box, as box columns (y · box columns
    /// + x; a column runs through every frame of the box).
    func boxColumns(_ list: [Int]) -> [Int] {
        var out: [Int] = []
        for i in list {
            let y = i / cols - boxStart[1], x = i % cols - boxStart[2]
            if y >= 0 && y < boxSize[1] && x >= 0 && x < boxSize[2] { out.append(y * boxSize[2] + x) }
        }
        return out
    }

    func boxFourier() throws -> BoxFourier {
        if let f = fourier { return f }
        let f = try BoxFourier(shape: boxSize)
        fourier = f
        return f
    }

    /// Sets the voxels of `columns` of box `v` to max(0, scale × the same voxels of `src`).
    func fill(_ v: inout RealVolume, columns: [Int], from src: RealVolume, scale: Float) {
        let fp = boxSize[1] * boxSize[2]
        v.withUnsafeMutableFloats { p in src.withUnsafeFloats { q in
            for c in columns { for z in 0..<boxSize[0] { p[z * fp + c] = max(0, q[z * fp + c] * scale) } }
        } }
    }

    /// Registration of a scan's box onto the reference box. Bad pixels sit at the same
    /// detector positions in every scan, so their neighbour-mean fill is a fixed pattern
    /// that pulls the shift towards zero: after a first estimate, the bad voxels of each
    /// box are replaced by the other box moved by the current shift (scaled to its
    /// counts), and the shift is estimated again at full precision. Also returns the half
    /// spectra of the two boxes as given (for the refill and the reference sum).
    func registerBox(_ box: RealVolume, boxBad: [Int], onto ref: RealVolume, fourier f: BoxFourier) throws
        -> (shift: [Double], correlation: Double, boxSpectrum: FloatStorage, referenceSpectrum: FloatStorage) {
        let a = f.spectrum(ref), b = f.spectrum(box)
        let refBad = referenceRepaired ? [] : referenceBad
        if boxBad.isEmpty && refBad.isEmpty {
            let r = try f.upsampledShift(of: b, onto: a, upsampling: options.upsampling)
            return (r.shift, r.correlation, b, a)
        }
        // A first estimate to ~0.1 pixel (the integer peak and a parabola) is enough to fill
        // the bad voxels; then the full precision on the filled boxes.
        let first = try f.upsampledShift(of: b, onto: a, upsampling: options.upsampling, coarse: true)
        // Box sums: the zero frequencies.
        let scale = Double(b.pointer[0]) / max(Double(a.pointer[0]), 1e-30)
        var fb = b, fa = a
        if !boxBad.isEmpty {
            // moving(x) ≈ ref(x + s): the reference moved by −s stands in for the scan.
            var filled = box
            fill(&filled, columns: boxBad, from: f.shifted(a, by: first.shift.map { -$0 }), scale: Float(scale))
            fb = f.spectrum(filled)
        }
        if !refBad.isEmpty {
            var filled = ref
            fill(&filled, columns: refBad, from: f.shifted(b, by: first.shift), scale: Float(1 / scale))
            fa = f.spectrum(filled)
        }
        let r = try f.upsampledShift(of: fb, onto: fa, upsampling: options.upsampling)
        return (r.shift, r.correlation, b, a)
    }

    /// Near the Bragg peak a neighbour-mean fill is far off, and the Fourier shift would
    /// ring that error into good voxels. Inside the registration box, a shifted scan's bad
    /// voxels are therefore refilled with the reference moved onto the scan (scaled to the
    /// scan's counts). The reference's own bad voxels are first repaired, once, from the
    /// first scan registered with a shift of at least 1.5 pixels on the detector (so that
    /// its values there come from good pixels). Takes the half spectra of the scan's box
    /// and of the reference as they were registered.
    func refillFromReference(boxSpectrum b: FloatStorage, referenceSpectrum a: FloatStorage, boxBad: [Int],
                             shift: [Double], fourier f: BoxFourier, in data: FloatStorage) throws {
        guard var ref = referenceBox else { return }
        let scale = Double(b.pointer[0]) / max(Double(a.pointer[0]), 1e-30)
        var a = a
        if !referenceRepaired && max(abs(shift[1]), abs(shift[2])) >= 1.5 && !referenceBad.isEmpty {
            fill(&ref, columns: referenceBad, from: f.shifted(b, by: shift), scale: Float(1 / scale))
            referenceBox = ref
            referenceRepaired = true
            a = f.spectrum(ref)
        }
        guard !boxBad.isEmpty else { return }
        let refInScan = f.shifted(a, by: shift.map { -$0 })
        let fp = boxSize[1] * boxSize[2], bx = boxSize[2]
        refInScan.withUnsafeFloats { q in
            for c in boxBad {
                let y = c / bx, x = c % bx
                for z in 0..<boxSize[0] {
                    let v = max(0, q[z * fp + c] * Float(scale))
                    data.pointer[((z + boxStart[0]) * rows + y + boxStart[1]) * cols + x + boxStart[2]] = v
                }
            }
        }
    }

    func pearson(_ a: RealVolume, _ b: RealVolume) -> Double {
        let ma = a.mean(), mb = b.mean()
        var sab = 0.0, saa = 0.0, sbb = 0.0
        a.withUnsafeFloats { p in b.withUnsafeFloats { q in
            for i in 0..<p.count {
                let x = Double(p[i]) - ma, y = Double(q[i]) - mb
                sab += x * y; saa += x * x; sbb += y * y
            }
        } }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }
}
