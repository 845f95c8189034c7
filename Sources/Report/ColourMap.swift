import Foundation

/// An 8-bit sRGB colour.
public struct RGB: Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    public static let black = RGB(0, 0, 0), white = RGB(255, 255, 255)
    /// `#rrggbb`, for SVG and HTML.
    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
    public var description: String { hex }
}

/// OKLab (Ottosson 2020): a perceptual colour space in which equal distances look
/// equally different. The maps below are built in it, so they are perceptually uniform
/// by construction rather than by a copied table.
enum OKLab {
    static func toLinearSRGB(L: Double, a: Double, b: Double) -> (Double, Double, Double) {
        let l_ = L + 0.3963377774 * a + 0.2158037573 * b
        let m_ = L - 0.1055613458 * a - 0.0638541728 * b
        let s_ = L - 0.0894841775 * a - 1.2914855480 * b
        let l = l_ * l_ * l_, m = m_ * m_ * m_, s = s_ * s_ * s_
        return (4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
                -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
                -0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s)
    }

    static func fromLinearSRGB(_ r: Double, _ g: Double, _ b: Double) -> (L: Double, a: Double, b: Double) {
        let l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
        let m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
        let s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
        return (0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s,
                1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s,
                0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s)
    }

    static func encode(_ x: Double) -> UInt8 {
        let c = min(1, max(0, x))
        let v = c <= 0.0031308 ? 12.92 * c : 1.055 * pow(c, 1 / 2.4) - 0.055
        return UInt8((v * 255).rounded())
    }

    static func decode(_ x: UInt8) -> Double {
        let c = Double(x) / 255
        return c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4)
    }

    static func rgb(L: Double, a: Double, b: Double) -> RGB {
        let (r, g, bl) = toLinearSRGB(L: L, a: a, b: b)
        return RGB(encode(r), encode(g), encode(bl))
    }
}

/// A colour map: a 256-entry lookup table from [0, 1] to sRGB.
public struct ColourMap: Sendable {
    public let name: String
    /// Whether 0 and 1 are the same colour (for phase, which wraps at ±π).
    public let cyclic: Bool
    public let table: [RGB]

    public init(name: String, cyclic: Bool, table: [RGB]) {
        precondition(table.count >= 2)
        self.name = name; self.cyclic = cyclic; self.table = table
    }

    /// The colour of t ∈ [0, 1] (clamped; wrapped for a cyclic map). NaN maps to the first entry.
    public func colour(_ t: Double) -> RGB {
        guard t.isFinite else { return table[0] }
        var u = t
        if cyclic { u = u - u.rounded(.down) } else { u = min(1, max(0, u)) }
        let n = table.count
        // A cyclic table samples [0, 1) so index n wraps to 0.
        let i = cyclic ? Int((u * Double(n)).rounded(.down)) % n : Int((u * Double(n - 1)).rounded())
        return table[i]
    }

    /// The colour of `value` on the range [lo, hi].
    public func colour(_ value: Double, lo: Double, hi: Double) -> RGB {
        colour(hi > lo ? (value - lo) / (hi - lo) : 0.5)
    }

    /// Linear grey from black to white (amplitude).
    public static let grey = ColourMap(name: "grey", cyclic: false,
                                       table: (0..<256).map { RGB(UInt8($0), UInt8($0), UInt8($0)) })

    /// A perceptually uniform cyclic map for phase: a circle of constant lightness and
    /// chroma around the OKLab hue wheel, so equal phase steps look equally different
    /// everywhere and −π meets +π seamlessly. The hue starts at blue-violet so φ = 0 is
    /// green-yellow and ±π is violet.
    public static let phase: ColourMap = {
        let L = 0.72, C = 0.125, h0 = 4.2
        let table = (0..<256).map { i -> RGB in
            let h = h0 + 2 * Double.pi * Double(i) / 256
            return OKLab.rgb(L: L, a: C * cos(h), b: C * sin(h))
        }
        return ColourMap(name: "phase-cyclic", cyclic: true, table: table)
    }()

    /// A diverging map for signed quantities (Δφ, strain, displacement): blue through a
    /// light neutral at zero to red, interpolated in OKLab with lightness symmetric about
    /// the centre.
    public static let diverging: ColourMap = {
        let blue = (L: 0.45, a: -0.03, b: -0.17), mid = (L: 0.97, a: 0.0, b: 0.0), red = (L: 0.50, a: 0.17, b: 0.08)
        let table = (0..<256).map { i -> RGB in
            let t = Double(i) / 255
            let (p, q, u) = t < 0.5 ? (blue, mid, t * 2) : (mid, red, (t - 0.5) * 2)
            return OKLab.rgb(L: p.L + (q.L - p.L) * u, a: p.a + (q.a - p.a) * u, b: p.b + (q.b - p.b) * u)
        }
        return ColourMap(name: "diverging", cyclic: false, table: table)
    }()

    /// Lightness (OKLab L) of a colour, for tests of perceptual uniformity.
    public static func lightness(_ c: RGB) -> Double {
        OKLab.fromLinearSRGB(OKLab.decode(c.r), OKLab.decode(c.g), OKLab.decode(c.b)).L
    }

    /// Perceptual distance (OKLab ΔE) between two colours.
    public static func distance(_ x: RGB, _ y: RGB) -> Double {
        let p = OKLab.fromLinearSRGB(OKLab.decode(x.r), OKLab.decode(x.g), OKLab.decode(x.b))
        let q = OKLab.fromLinearSRGB(OKLab.decode(y.r), OKLab.decode(y.g), OKLab.decode(y.b))
        return ((p.L - q.L) * (p.L - q.L) + (p.a - q.a) * (p.a - q.a) + (p.b - q.b) * (p.b - q.b)).squareRoot()
    }
}
