import Foundation

/// One series of a plot.
public struct PlotSeries: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var colour: RGB
    public var markers: Bool
    public init(name: String, x: [Double], y: [Double], colour: RGB = RGB(31, 119, 180), markers: Bool = true) {
        self.name = name; self.x = x; self.y = y; self.colour = colour; self.markers = markers
    }
}

/// Line plots as standalone SVG: axes with ticks, titles with units, a legend; the x axis
/// may carry category labels (states), the y axis may be logarithmic (loss curves).
public struct SVGPlot: Sendable {
    public var title: String
    public var xTitle: String
    public var yTitle: String
    public var series: [PlotSeries]
    /// Labels for x = 0, 1, 2… instead of numeric ticks.
    public var categories: [String]?
    public var logY = false
    public var width = 560, height = 340
    /// A horizontal reference line (e.g. y = 0).
    public var referenceY: Double?

    public init(title: String, xTitle: String, yTitle: String, series: [PlotSeries],
                categories: [String]? = nil, logY: Bool = false, referenceY: Double? = nil) {
        self.title = title; self.xTitle = xTitle; self.yTitle = yTitle; self.series = series
        self.categories = categories; self.logY = logY; self.referenceY = referenceY
    }

    public static let palette = [RGB(31, 119, 180), RGB(214, 39, 40), RGB(44, 160, 44), RGB(148, 103, 189),
                                 RGB(255, 127, 14), RGB(23, 190, 207)]

    /// Round tick positions covering [lo, hi] (about `count` of them).
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var k = (lo / step).rounded(.up)
        var out: [Double] = []
        while k * step <= hi + step * 1e-9 {
            // Round to the step's precision so 3 × 0.2 prints as 0.6.
            let scale = pow(10, 6 - floor(log10(step)))
            let t = (k * step * scale).rounded() / scale
            out.append(t == 0 ? 0 : t); k += 1
        }
        return out
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func label(_ v: Double) -> String {
        let a = abs(v)
        if v == 0 { return "0" }
        if a >= 1e4 || a < 1e-3 { return String(format: "%.0e", v) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    public func svg() -> String {
        let ml = 70.0, mr = 20.0, mt = 34.0, mb = 56.0
        let pw = Double(width) - ml - mr, ph = Double(height) - mt - mb
        let pts = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) } }
        var x0 = pts.map(\.0).min() ?? 0, x1 = pts.map(\.0).max() ?? 1
        var ys = pts.map { logY ? log10($0.1) : $0.1 }
        if let r = referenceY, !logY { ys.append(r) }
        var y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if let c = categories { x0 = -0.5; x1 = Double(c.count) - 0.5 }
        if x1 <= x0 { x0 -= 1; x1 += 1 }
        if y1 <= y0 { y0 -= 1; y1 += 1 }
        let padY = (y1 - y0) * 0.08
        if !logY { y0 -= padY; y1 += padY }
        if logY { y0 = floor(y0); y1 = ceil(y1) }
        func sx(_ x: Double) -> Double { ml + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { mt + ph - ((logY ? log10(y) : y) - y0) / (y1 - y0) * ph }
        var o = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Double(width) / 2)" y="20" text-anchor="middle" font-size="14" font-weight="bold">\(SVGPlot.esc(title))</text>
        <rect x="\(ml)" y="\(mt)" width="\(pw)" height="\(ph)" fill="none" stroke="#444"/>

        """
        // y ticks
        let yt: [Double] = logY ? Array(stride(from: y0, through: y1, by: 1)) : SVGPlot.ticks(y0, y1)
        for t in yt {
            let v = logY ? pow(10, t) : t
            let y = mt + ph - (t - y0) / (y1 - y0) * ph
            o += "<line x1=\"\(ml - 4)\" y1=\"\(y)\" x2=\"\(ml + pw)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
            o += "<text x=\"\(ml - 7)\" y=\"\(y + 4)\" text-anchor=\"end\">\(SVGPlot.label(v))</text>\n"
        }
        // x ticks
        if let c = categories {
            for (i, name) in c.enumerated() {
                let x = sx(Double(i))
                o += "<line x1=\"\(x)\" y1=\"\(mt + ph)\" x2=\"\(x)\" y2=\"\(mt + ph + 4)\" stroke=\"#444\"/>"
                o += "<text x=\"\(x)\" y=\"\(mt + ph + 18)\" text-anchor=\"middle\">\(SVGPlot.esc(name))</text>\n"
            }
        } else {
            for t in SVGPlot.ticks(x0, x1) {
                let x = sx(t)
                o += "<line x1=\"\(x)\" y1=\"\(mt + ph)\" x2=\"\(x)\" y2=\"\(mt + ph + 4)\" stroke=\"#444\"/>"
                o += "<text x=\"\(x)\" y=\"\(mt + ph + 18)\" text-anchor=\"middle\">\(SVGPlot.label(t))</text>\n"
            }
        }
        if let r = referenceY, !logY, r >= y0, r <= y1 {
            o += "<line x1=\"\(ml)\" y1=\"\(sy(r))\" x2=\"\(ml + pw)\" y2=\"\(sy(r))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n"
        }
        o += "<text x=\"\(ml + pw / 2)\" y=\"\(Double(height) - 12)\" text-anchor=\"middle\">\(SVGPlot.esc(xTitle))</text>\n"
        o += "<text transform=\"translate(16 \(mt + ph / 2)) rotate(-90)\" text-anchor=\"middle\">\(SVGPlot.esc(yTitle))</text>\n"
        for (k, s) in series.enumerated() {
            let p = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
            guard !p.isEmpty else { continue }
            let d = p.enumerated().map { i, q in "\(i == 0 ? "M" : "L")\(String(format: "%.2f", sx(q.0))),\(String(format: "%.2f", sy(q.1)))" }.joined(separator: " ")
            o += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(s.colour.hex)\" stroke-width=\"2\"/>\n"
            if s.markers { for q in p { o += "<circle cx=\"\(String(format: "%.2f", sx(q.0)))\" cy=\"\(String(format: "%.2f", sy(q.1)))\" r=\"3.5\" fill=\"\(s.colour.hex)\"/>" } }
            if series.count > 1 {
                let ly = mt + 14 + Double(k) * 16
                o += "\n<line x1=\"\(ml + pw - 130)\" y1=\"\(ly - 4)\" x2=\"\(ml + pw - 112)\" y2=\"\(ly - 4)\" stroke=\"\(s.colour.hex)\" stroke-width=\"2\"/>"
                o += "<text x=\"\(ml + pw - 106)\" y=\"\(ly)\">\(SVGPlot.esc(s.name))</text>"
            }
            o += "\n"
        }
        return o + "</svg>\n"
    }
}
