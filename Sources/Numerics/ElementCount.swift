/// The number of elements (and bytes) a shape read from a file declares, with every
/// product checked: a header is untrusted input, and a plain `reduce(1, *)` over
/// (3037000500, 3037000500, 1) traps the process instead of refusing the file.
public enum ElementCount {
    /// Product of the extents times `itemSize`; nil when an extent is negative or the
    /// product does not fit in an Int.
    public static func of(_ shape: [Int], itemSize: Int = 1) -> Int? {
        guard itemSize >= 0 else { return nil }
        var n = itemSize
        for e in shape {
            guard e >= 0 else { return nil }
            let (p, overflow) = n.multipliedReportingOverflow(by: e)
            if overflow { return nil }
            n = p
        }
        return n
    }

    /// `a + b` for non-negative offsets and sizes; nil on overflow.
    public static func sum(_ a: Int, _ b: Int) -> Int? {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : s
    }
}
