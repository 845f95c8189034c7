import Numerics
import Foundation

/// Where the first support comes from.
public enum InitialSupport: Sendable {
    /// The thresholded autocorrelation |F⁻¹[I]| > t · max: the autocorrelation of a
    /// compact object spans at most twice the object, so this bounds it from outside.
    case autocorrelation(threshold: Double)
    /// A centred box of the given size (z, y, x voxels).
    case box([Int])
    /// A centred sphere of the given radius (voxels).
    case sphere(radius: Double)
    /// A centred volume of the pattern's shape, nonzero inside (e.g. read from a file).
    case volume(RealVolume)

    /// The default: autocorrelation thresholded at 4% of its maximum.
    public static let standard = InitialSupport.autocorrelation(threshold: 0.04)
}

extension InitialSupport {
    /// The support in FFT order (nonzero inside).
    func fftOrder(for data: PhasingData, threads: Int) throws -> FloatStorage {
        let sh = data.shape, n = data.count
        let out = FloatStorage(count: n)
        switch self {
        case .autocorrelation(let t):
            guard t > 0, t < 1 else {
                throw PhasingError.invalidOption("the autocorrelation threshold must be in (0, 1) (got \(t))")
            }
            var c = ComplexVolume(shape: sh)
            let a = data.startAmplitude.pointer
            c.withUnsafeMutableFloats { p in
                for i in 0..<n { let v = max(a[i], 0); p[2 * i] = v * v }
            }
            let plan = try FFTPlanner.plan(shape: sh, direction: .backward, inPlace: true, threads: threads)
            plan.execute(&c)
            let m = c.modulus()
            let limit = Float(t) * m.maximum()
            m.withUnsafeFloats { p in for i in 0..<n { out.pointer[i] = p[i] > limit ? 1 : 0 } }
        case .box(let size):
            guard size.count == data.originalShape.count || size.count == 3, size.allSatisfy({ $0 > 0 }) else {
                throw PhasingError.invalidOption("a box support needs one positive size per axis of \(data.originalShape) (got \(size))")
            }
            let s3 = size.count == 3 ? size : [1] + size
            let v = RealVolume(shape: sh) { f in
                let z = f / (sh[1] * sh[2]), y = (f / sh[2]) % sh[1], x = f % sh[2]
                let idx = [z, y, x]
                for a in 0..<3 {
                    let lo = sh[a] / 2 - s3[a] / 2
                    if idx[a] < lo || idx[a] >= lo + s3[a] { return 0 }
                }
                return 1
            }
            try copy(v, into: out)
        case .sphere(let r):
            guard r > 0 else { throw PhasingError.invalidOption("a sphere support needs a positive radius (got \(r))") }
            let v = RealVolume(shape: sh) { f in
                let z = Double(f / (sh[1] * sh[2]) - sh[0] / 2), y = Double((f / sh[2]) % sh[1] - sh[1] / 2)
                let x = Double(f % sh[2] - sh[2] / 2)
                return z * z + y * y + x * x <= r * r ? 1 : 0
            }
            try copy(v, into: out)
        case .volume(let v):
            guard v.shape == sh || v.shape == data.originalShape else {
                throw PhasingError.invalidData("the support has shape \(v.shape) but the pattern has shape \(data.originalShape)")
            }
            try copy(v.reshaped(sh), into: out)
        }
        return out
    }

    private func copy(_ centred: RealVolume, into out: FloatStorage) throws {
        let s = centred.ifftshifted()
        s.withUnsafeFloats { p in for i in 0..<p.count { out.pointer[i] = p[i] != 0 ? 1 : 0 } }
    }
}
