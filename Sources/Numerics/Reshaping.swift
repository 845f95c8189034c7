import Foundation

// Shape operations (crop, pad, roll, flip, slice), written once for real and complex
// volumes of any rank: they move whole elements of `Element.components` Floats.

extension Volume {
    /// Copies the rows of a box between two volumes. `srcStart`/`dstStart` are the box
    /// corners, `box` its shape. Works row by row along the last axis (memcpy speed).
    static func copyBox(from src: UnsafePointer<Float>, srcShape: [Int], srcStart: [Int],
                        to dst: UnsafeMutablePointer<Float>, dstShape: [Int], dstStart: [Int], box: [Int]) {
        let r = box.count
        if box.contains(0) { return }
        let c = Element.components
        let ss = Volume.strides(of: srcShape), ds = Volume.strides(of: dstShape)
        let rowLen = box[r - 1] * c
        let rows = box.dropLast().reduce(1, *)
        let outer = Array(box.dropLast())
        Parallel.forEachChunk(rows, minChunk: max(1, 65536 / max(rowLen, 1))) { range in
            var idx = [Int](repeating: 0, count: max(r - 1, 0))
            for row in range {
                var rem = row
                for a in stride(from: r - 2, through: 0, by: -1) { idx[a] = rem % outer[a]; rem /= outer[a] }
                var so = srcStart[r - 1], dof = dstStart[r - 1]
                for a in 0..<(r - 1) {
                    so += (idx[a] + srcStart[a]) * ss[a]
                    dof += (idx[a] + dstStart[a]) * ds[a]
                }
                (dst + dof * c).update(from: src + so * c, count: rowLen)
            }
        }
    }

    /// The sub-volume of shape `size` starting at `start` (every index inside the volume).
    public func cropped(start: [Int], size: [Int]) throws -> Volume {
        guard start.count == rank, size.count == rank else {
            throw NumericsError.shapeMismatch("crop of rank \(size.count) from a volume of rank \(rank)")
        }
        for a in 0..<rank where start[a] < 0 || size[a] < 0 || start[a] + size[a] > shape[a] {
            throw NumericsError.invalidArgument("crop \(start)+\(size) outside shape \(shape)")
        }
        var out = Volume(shape: size)
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                Volume.copyBox(from: s.baseAddress!, srcShape: shape, srcStart: start,
                               to: d.baseAddress!, dstShape: size, dstStart: [Int](repeating: 0, count: rank), box: size)
            }
        }
        return out
    }

    /// The centred sub-volume of shape `size`: element `n/2` of each axis stays at `size/2`,
    /// so the centre of an fftshifted pattern stays the centre.
    public func centralCrop(to size: [Int]) throws -> Volume {
        guard size.count == rank else { throw NumericsError.shapeMismatch("crop \(size) of \(shape)") }
        let start = (0..<rank).map { shape[$0] / 2 - size[$0] / 2 }
        return try cropped(start: start, size: size)
    }

    /// This volume placed into a zero volume of shape `size` at corner `start`
    /// (parts falling outside are clipped).
    public func embedded(in size: [Int], at start: [Int]) throws -> Volume {
        guard size.count == rank, start.count == rank else {
            throw NumericsError.shapeMismatch("embed \(shape) in \(size)")
        }
        var out = Volume(shape: size)
        var srcStart = [Int](repeating: 0, count: rank), dstStart = srcStart, box = srcStart
        for a in 0..<rank {
            let lo = max(0, start[a]), hi = min(size[a], start[a] + shape[a])
            if hi <= lo { return out }
            dstStart[a] = lo; srcStart[a] = lo - start[a]; box[a] = hi - lo
        }
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                Volume.copyBox(from: s.baseAddress!, srcShape: shape, srcStart: srcStart,
                               to: d.baseAddress!, dstShape: size, dstStart: dstStart, box: box)
            }
        }
        return out
    }

    /// Zero-pads (or crops, per axis) to `size` keeping the centre element `n/2` at `size/2`.
    public func centred(in size: [Int]) throws -> Volume {
        guard size.count == rank else { throw NumericsError.shapeMismatch("pad \(shape) to \(size)") }
        let start = (0..<rank).map { size[$0] / 2 - shape[$0] / 2 }
        return try embedded(in: size, at: start)
    }

    /// Pads with zeros: `before[a]` elements before and `after[a]` after along each axis.
    public func padded(before: [Int], after: [Int]) throws -> Volume {
        guard before.count == rank, after.count == rank, (before + after).allSatisfy({ $0 >= 0 }) else {
            throw NumericsError.invalidArgument("invalid padding \(before), \(after) for rank \(rank)")
        }
        return try embedded(in: (0..<rank).map { shape[$0] + before[$0] + after[$0] }, at: before)
    }

    /// Circular shift: element at index i moves to (i + shift) mod n, per axis (numpy.roll).
    public func rolled(by shift: [Int]) throws -> Volume {
        guard shift.count == rank else { throw NumericsError.shapeMismatch("roll of rank \(shift.count) on \(shape)") }
        var out = Volume(shape: shape)
        let n = shape
        // Each axis splits into two pieces; copy the 2^rank boxes.
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                for piece in 0..<(1 << rank) {
                    var ss = [Int](repeating: 0, count: rank), dd = ss, box = ss
                    var empty = false
                    for a in 0..<rank {
                        let k = ((shift[a] % max(n[a], 1)) + max(n[a], 1)) % max(n[a], 1)
                        if (piece >> a) & 1 == 0 { ss[a] = 0; dd[a] = k; box[a] = n[a] - k }
                        else { ss[a] = n[a] - k; dd[a] = 0; box[a] = k }
                        if box[a] == 0 { empty = true }
                    }
                    if empty { continue }
                    Volume.copyBox(from: s.baseAddress!, srcShape: n, srcStart: ss,
                                   to: d.baseAddress!, dstShape: n, dstStart: dd, box: box)
                }
            }
        }
        return out
    }

    /// numpy.fft.fftshift over all axes: the zero frequency moves from index 0 to n/2.
    public func fftshifted() -> Volume { try! rolled(by: shape.map { $0 / 2 }) }
    /// numpy.fft.ifftshift over all axes: the inverse of `fftshifted`.
    public func ifftshifted() -> Volume { try! rolled(by: shape.map { -($0 / 2) }) }

    /// Reverses the given axes (numpy.flip).
    public func flipped(axes: [Int]? = nil) -> Volume {
        let ax = Set(axes ?? Array(0..<rank))
        var out = Volume(shape: shape)
        let c = Element.components
        let st = strides
        let n = count
        let sh = shape
        withUnsafeFloats { s in
            out.withUnsafeMutableFloats { d in
                let sp = s.baseAddress!, dp = SendablePointer(d.baseAddress!)
                let flipLast = ax.contains(rank - 1)
                let rowLen = sh[rank - 1]
                Parallel.forEachChunk(n / max(rowLen, 1), minChunk: max(1, 8192 / max(rowLen, 1))) { range in
                    for row in range {
                        // source row index for destination row `row`
                        var rem = row, src = 0
                        for a in stride(from: rank - 2, through: 0, by: -1) {
                            var i = rem % sh[a]; rem /= sh[a]
                            if ax.contains(a) { i = sh[a] - 1 - i }
                            src += i * st[a]
                        }
                        let dBase = row * rowLen
                        if flipLast {
                            for x in 0..<rowLen {
                                for k in 0..<c { dp.pointer[(dBase + x) * c + k] = sp[(src + rowLen - 1 - x) * c + k] }
                            }
                        } else {
                            (dp.pointer + dBase * c).update(from: sp + src * c, count: rowLen * c)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The (rank−1)-dimensional slice at `index` along `axis`.
    public func slice(axis: Int, index: Int) throws -> Volume {
        guard axis >= 0, axis < rank, index >= 0, index < shape[axis], rank >= 2 else {
            throw NumericsError.invalidArgument("slice \(index) on axis \(axis) of shape \(shape)")
        }
        var start = [Int](repeating: 0, count: rank), size = shape
        start[axis] = index; size[axis] = 1
        var newShape = shape; newShape.remove(at: axis)
        return try cropped(start: start, size: size).reshaped(newShape)
    }

    /// The central slice (index n/2) perpendicular to `axis`.
    public func centralSlice(axis: Int) throws -> Volume {
        guard axis >= 0, axis < rank else { throw NumericsError.invalidArgument("axis \(axis) of shape \(shape)") }
        return try slice(axis: axis, index: shape[axis] / 2)
    }

    /// Sums along one axis (a projection), accumulating in Double.
    public func summed(axis: Int) throws -> Volume {
        guard axis >= 0, axis < rank, rank >= 2 else { throw NumericsError.invalidArgument("axis \(axis) of shape \(shape)") }
        var newShape = shape; newShape.remove(at: axis)
        let outer = shape[..<axis].reduce(1, *), n = shape[axis], inner = shape[(axis + 1)...].reduce(1, *)
        let c = Element.components
        var acc = [Double](repeating: 0, count: outer * inner * c)
        withUnsafeFloats { s in
            for o in 0..<outer { for k in 0..<n {
                let base = (o * n + k) * inner * c, ob = o * inner * c
                for j in 0..<(inner * c) { acc[ob + j] += Double(s[base + j]) }
            } }
        }
        var out = Volume(shape: newShape)
        out.withUnsafeMutableFloats { d in for j in 0..<acc.count { d[j] = Float(acc[j]) } }
        return out
    }
}

// The symmetries of a cubic grid that the discrete Fourier transform carries over from a
// centred pattern to its centred object: reflections about the centre voxel and axis
// permutations (rank 3).
extension Volume {
    /// The reflection about the centre voxel ⌊N/2⌋ along `axes` (default: all three):
    /// index i ↦ (2⌊N/2⌋ − i) mod N. The centre voxel stays put for even and odd sizes
    /// alike (numpy.flip would move an even-sized centred array by one voxel), so the
    /// reflection of a centred pattern is the pattern of the reflected centred object.
    public func reflectedAboutCentre(axes: [Int]? = nil) -> Volume {
        precondition(rank == 3, "reflectedAboutCentre needs a 3D volume, got shape \(shape)")
        let ax = Set(axes ?? [0, 1, 2])
        return pointReflected(indexSum: (0..<3).map { ax.contains($0) ? 2 * (shape[$0] / 2) : nil })
    }

    /// The point reflection i ↦ (s_a − i) mod N_a on each axis a whose index sum s_a is
    /// given (nil leaves the axis as it is): the reflection about the point s/2, a voxel
    /// (s even) or the midpoint between two (s odd). Rank 3.
    public func pointReflected(indexSum: [Int?]) -> Volume {
        precondition(rank == 3 && indexSum.count == 3, "pointReflected needs a 3D volume and three index sums, got \(shape), \(indexSum)")
        let st = strides
        let offsets: [[Int]] = (0..<3).map { (a: Int) -> [Int] in
            let n = shape[a]
            guard let s = indexSum[a] else { return (0..<n).map { $0 * st[a] } }
            let c = ((s % n) + n) % n
            return (0..<n).map { (i: Int) -> Int in ((c - i + n) % n) * st[a] }
        }
        return gathered(shape: shape, offsets: offsets)
    }

    /// The axes permuted as numpy.transpose(v, p): output axis a is input axis p[a].
    public func permutedAxes(_ p: [Int]) -> Volume {
        precondition(rank == 3 && p.sorted() == [0, 1, 2], "permutedAxes needs a 3D volume and a permutation of 0, 1, 2; got \(shape), \(p)")
        let st = strides
        let outShape = p.map { shape[$0] }
        let offsets: [[Int]] = (0..<3).map { (a: Int) -> [Int] in (0..<outShape[a]).map { (i: Int) -> Int in i * st[p[a]] } }
        return gathered(shape: outShape, offsets: offsets)
    }

    /// out[i, j, k] = self[element offset offsets[0][i] + offsets[1][j] + offsets[2][k]].
    func gathered(shape outShape: [Int], offsets: [[Int]]) -> Volume {
        var out = Volume(shape: outShape)
        let c = Element.components
        let (n1, n2) = (outShape[1], outShape[2])
        withUnsafeFloats { src in
            out.withUnsafeMutableFloats { dst in
                let sp = src.baseAddress!, dp = SendablePointer(dst.baseAddress!)
                Parallel.forEachChunk(outShape[0], minChunk: 1) { r in
                    for i in r {
                        for j in 0..<n1 {
                            let sbase = offsets[0][i] &+ offsets[1][j], dbase = (i &* n1 &+ j) &* n2
                            for k in 0..<n2 {
                                let q = (sbase &+ offsets[2][k]) &* c, d = (dbase &+ k) &* c
                                for m in 0..<c { dp.pointer[d &+ m] = sp[q &+ m] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

// The twin image: a diffraction pattern |F|² cannot tell an object ρ(r) from conj ρ(−r),
// so every comparison of reconstructions (merging runs, aligning a series, scoring against
// a truth, supervising a network) must try both. One definition, used by all of them.
extension Volume where Element == Complex32 {
    /// The twin image conj ρ(−r) about the centre voxel ⌊N/2⌋ of each axis (the frame
    /// every object is stored in), or about the point `indexSum`/2 when given
    /// (`pointReflected`). Its pattern is the same as the object's.
    public func twin(indexSum: [Int]? = nil) -> Volume {
        (indexSum.map { pointReflected(indexSum: $0) } ?? reflectedAboutCentre()).conjugated()
    }
}

extension Volume where Element == Float {
    /// A real field (a support, an amplitude) under the twin's point reflection, about the
    /// centre voxel ⌊N/2⌋ or about `indexSum`/2 when given; nothing to conjugate.
    public func twin(indexSum: [Int]? = nil) -> Volume {
        indexSum.map { pointReflected(indexSum: $0) } ?? reflectedAboutCentre()
    }
}
