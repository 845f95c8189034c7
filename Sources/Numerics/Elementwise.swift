import Foundation

// Elementwise maths and reductions over unsafe buffers, parallel over chunks.
// Sums are accumulated in Double (DESIGN.md: Float in bulk, Double for sums).

extension Volume {
    /// Multiplies every component by `s` in place.
    public mutating func scale(by s: Float) {
        withUnsafeMutableFloats { p in
            let b = SendablePointer(p.baseAddress!)
            Parallel.forEachChunk(p.count) { r in
                for i in r { b.pointer[i] *= s }
            }
        }
    }

    /// Sum of every component, per component (real: [Σ], complex: [Σre, Σim]).
    func componentSums() -> [Double] {
        let c = Element.components
        return withUnsafeFloats { p in
            (0..<c).map { k in
                Parallel.sum(count) { r in
                    var s = 0.0
                    for i in r { s += Double(p[i &* c &+ k]) }
                    return s
                }
            }
        }
    }

    /// Σ|v|² in Double.
    public func squaredNorm() -> Double {
        withUnsafeFloats { p in
            Parallel.sum(p.count) { r in
                var s = 0.0
                for i in r { let v = Double(p[i]); s += v * v }
                return s
            }
        }
    }

    /// Adds `other` in place (same shape).
    public mutating func add(_ other: Volume) throws {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("\(shape) + \(other.shape)") }
        other.withUnsafeFloats { o in
            withUnsafeMutableFloats { p in
                let b = SendablePointer(p.baseAddress!)
                Parallel.forEachChunk(p.count) { r in for i in r { b.pointer[i] += o[i] } }
            }
        }
    }

    /// Subtracts `other` in place (same shape).
    public mutating func subtract(_ other: Volume) throws {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("\(shape) - \(other.shape)") }
        other.withUnsafeFloats { o in
            withUnsafeMutableFloats { p in
                let b = SendablePointer(p.baseAddress!)
                Parallel.forEachChunk(p.count) { r in for i in r { b.pointer[i] -= o[i] } }
            }
        }
    }

    public static func + (a: Volume, b: Volume) throws -> Volume { var c = a; try c.add(b); return c }
    public static func - (a: Volume, b: Volume) throws -> Volume { var c = a; try c.subtract(b); return c }
}

extension Volume where Element == Float {
    /// Σ v.
    public func sum() -> Double { componentSums()[0] }
    /// Mean value.
    public func mean() -> Double { count == 0 ? .nan : sum() / Double(count) }

    /// Largest value (NaN values are ignored; −∞ when empty).
    public func maximum() -> Float {
        withUnsafeFloats { p in
            var m = -Float.infinity
            for v in p where v > m { m = v }
            return m
        }
    }

    /// Smallest value (NaN values are ignored; +∞ when empty).
    public func minimum() -> Float {
        withUnsafeFloats { p in
            var m = Float.infinity
            for v in p where v < m { m = v }
            return m
        }
    }

    /// Flat index of the largest value.
    public func argmax() -> Int {
        withUnsafeFloats { p in
            var m = -Float.infinity, k = 0
            for i in 0..<p.count where p[i] > m { m = p[i]; k = i }
            return k
        }
    }

    /// Multi-index of a flat index.
    public func index(ofFlat f: Int) -> [Int] {
        var rem = f, idx = [Int](repeating: 0, count: rank)
        for a in stride(from: rank - 1, through: 0, by: -1) { idx[a] = rem % shape[a]; rem /= shape[a] }
        return idx
    }

    /// Centre of mass of the values (weights) in index coordinates, per axis.
    public func centreOfMass() -> [Double] {
        let st = strides, sh = shape, r = rank
        return withUnsafeFloats { p -> [Double] in
            var acc = [Double](repeating: 0, count: r)
            var total = 0.0
            // Accumulate along rows: the last axis varies fastest.
            let rowLen = sh[r - 1], rows = count / max(rowLen, 1)
            for row in 0..<rows {
                var rs = 0.0, rx = 0.0
                let base = row * rowLen
                for x in 0..<rowLen { let w = Double(p[base + x]); rs += w; rx += w * Double(x) }
                if rs == 0 { continue }
                total += rs
                acc[r - 1] += rx
                var rem = row
                for a in stride(from: r - 2, through: 0, by: -1) {
                    let i = rem % sh[a]; rem /= sh[a]
                    acc[a] += rs * Double(i)
                }
            }
            _ = st
            return total == 0 ? sh.map { Double($0 - 1) / 2 } : acc.map { $0 / total }
        }
    }

    /// Number of NaN and of ±Inf values.
    public func nonFiniteCounts() -> (nan: Int, inf: Int) {
        withUnsafeFloats { p in
            var n = 0, i = 0
            for v in p { if v.isNaN { n += 1 } else if v.isInfinite { i += 1 } }
            return (n, i)
        }
    }

    /// Elementwise product, in place.
    public mutating func multiply(by other: RealVolume) throws {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("\(shape) * \(other.shape)") }
        other.withUnsafeFloats { o in
            withUnsafeMutableFloats { p in
                let b = SendablePointer(p.baseAddress!)
                Parallel.forEachChunk(p.count) { r in for i in r { b.pointer[i] *= o[i] } }
            }
        }
    }

    /// The complex volume with this as real part.
    public func complex() -> ComplexVolume {
        var out = ComplexVolume(shape: shape)
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(s.count) { r in for i in r { b.pointer[2 &* i] = s[i] } }
            }
        }
        return out
    }

    /// 1 where the value exceeds `t`, else 0.
    public func thresholded(above t: Float) -> RealVolume {
        var out = RealVolume(shape: shape)
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(s.count) { r in for i in r { b.pointer[i] = s[i] > t ? 1 : 0 } }
            }
        }
        return out
    }

    /// Number of values different from zero.
    public func nonzeroCount() -> Int {
        withUnsafeFloats { p in var n = 0; for v in p where v != 0 { n += 1 }; return n }
    }
}

extension Volume where Element == Complex32 {
    /// Builds A·exp(iφ) from modulus and phase volumes of one shape.
    public init(modulus: RealVolume, phase: RealVolume) throws {
        guard modulus.shape == phase.shape else {
            throw NumericsError.shapeMismatch("modulus \(modulus.shape) vs phase \(phase.shape)")
        }
        self.init(shape: modulus.shape)
        modulus.withUnsafeFloats { a in phase.withUnsafeFloats { f in
            withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(a.count) { r in
                    for i in r { b.pointer[2 &* i] = a[i] * cos(f[i]); b.pointer[2 &* i &+ 1] = a[i] * sin(f[i]) }
                }
            }
        } }
    }

    /// Builds a complex volume from real and imaginary parts.
    public init(real: RealVolume, imaginary: RealVolume) throws {
        guard real.shape == imaginary.shape else {
            throw NumericsError.shapeMismatch("real \(real.shape) vs imaginary \(imaginary.shape)")
        }
        self.init(shape: real.shape)
        real.withUnsafeFloats { a in imaginary.withUnsafeFloats { f in
            withUnsafeMutableFloats { d in
                for i in 0..<a.count { d[2 * i] = a[i]; d[2 * i + 1] = f[i] }
            }
        } }
    }

    private func mapToReal(_ f: @escaping (Float, Float) -> Float) -> RealVolume {
        var out = RealVolume(shape: shape)
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(d.count) { r in
                    for i in r { b.pointer[i] = f(s[2 &* i], s[2 &* i &+ 1]) }
                }
            }
        }
        return out
    }

    /// |ρ|.
    public func modulus() -> RealVolume { mapToReal { ($0 * $0 + $1 * $1).squareRoot() } }
    /// |ρ|² (intensity).
    public func intensity() -> RealVolume { mapToReal { $0 * $0 + $1 * $1 } }
    /// arg ρ in (−π, π].
    public func phase() -> RealVolume { mapToReal { atan2($1, $0) } }
    public func real() -> RealVolume { mapToReal { re, _ in re } }
    public func imaginary() -> RealVolume { mapToReal { _, im in im } }

    /// Complex conjugate.
    public func conjugated() -> ComplexVolume {
        var out = self
        out.withUnsafeMutableFloats { d in
            let b = SendablePointer(d.baseAddress!)
            Parallel.forEachChunk(d.count / 2) { r in for i in r { b.pointer[2 &* i &+ 1] = -b.pointer[2 &* i &+ 1] } }
        }
        return out
    }

    /// ρ ← ρ · exp(iθ): a global phase offset.
    public mutating func rotatePhase(by theta: Float) {
        let c = cos(theta), s = sin(theta)
        withUnsafeMutableFloats { d in
            let b = SendablePointer(d.baseAddress!)
            Parallel.forEachChunk(d.count / 2) { r in
                for i in r {
                    let re = b.pointer[2 &* i], im = b.pointer[2 &* i &+ 1]
                    b.pointer[2 &* i] = re * c - im * s; b.pointer[2 &* i &+ 1] = re * s + im * c
                }
            }
        }
    }

    /// Σ ρ.
    public func sum() -> Complex32 { let s = componentSums(); return Complex32(Float(s[0]), Float(s[1])) }

    /// Σ conj(a)·b in Double (the inner product ⟨a, b⟩).
    public func inner(_ other: ComplexVolume) throws -> (re: Double, im: Double) {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("⟨\(shape), \(other.shape)⟩") }
        return withUnsafeFloats { a in other.withUnsafeFloats { b in
            let re = Parallel.sum(count) { r in
                var s = 0.0
                for i in r { s += Double(a[2 &* i]) * Double(b[2 &* i]) + Double(a[2 &* i &+ 1]) * Double(b[2 &* i &+ 1]) }
                return s
            }
            let im = Parallel.sum(count) { r in
                var s = 0.0
                for i in r { s += Double(a[2 &* i]) * Double(b[2 &* i &+ 1]) - Double(a[2 &* i &+ 1]) * Double(b[2 &* i]) }
                return s
            }
            return (re, im)
        } }
    }

    /// Elementwise product with another complex volume, in place.
    public mutating func multiply(by other: ComplexVolume) throws {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("\(shape) * \(other.shape)") }
        other.withUnsafeFloats { o in
            withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(d.count / 2) { r in
                    for i in r {
                        let ar = b.pointer[2 &* i], ai = b.pointer[2 &* i &+ 1]
                        let br = o[2 &* i], bi = o[2 &* i &+ 1]
                        b.pointer[2 &* i] = ar * br - ai * bi; b.pointer[2 &* i &+ 1] = ar * bi + ai * br
                    }
                }
            }
        }
    }

    /// Elementwise product with a real volume, in place.
    public mutating func multiply(by other: RealVolume) throws {
        guard other.shape == shape else { throw NumericsError.shapeMismatch("\(shape) * \(other.shape)") }
        other.withUnsafeFloats { o in
            withUnsafeMutableFloats { d in
                let b = SendablePointer(d.baseAddress!)
                Parallel.forEachChunk(d.count / 2) { r in
                    for i in r { b.pointer[2 &* i] *= o[i]; b.pointer[2 &* i &+ 1] *= o[i] }
                }
            }
        }
    }
}
