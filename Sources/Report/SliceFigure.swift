import Foundation
import Numerics

/// One 2D panel of a slice figure: values drawn through a colour map, pixels outside the
/// support left blank, with a title, a colour bar with units and a scale bar in nm.
public struct SlicePanel: Sendable {
    public var title: String
    /// 2D values, shape [rows, columns].
    public var values: RealVolume
    /// 2D support of the same shape (nonzero = inside); nil shows every pixel.
    public var support: RealVolume?
    public var map: ColourMap
    /// Value range mapped to the colour bar's ends.
    public var range: (lo: Double, hi: Double)
    /// Unit label printed beside the colour bar ("rad", "‰", "Å", "a.u.").
    public var unit: String
    /// Pixel size in `lengthUnit` along rows and columns (0 hides the scale bar).
    public var pixelSize: (rows: Double, columns: Double)
    /// "nm" (the bar then reads nm or µm), or another unit written as is ("voxels" where the
    /// voxel size is unknown).
    public var lengthUnit: String

    public init(title: String, values: RealVolume, support: RealVolume? = nil, map: ColourMap,
                range: (lo: Double, hi: Double), unit: String, pixelSize: (rows: Double, columns: Double),
                lengthUnit: String = "nm") {
        self.title = title; self.values = values; self.support = support; self.map = map
        self.range = range; self.unit = unit; self.pixelSize = pixelSize; self.lengthUnit = lengthUnit
    }
}

public enum SliceFigure {
    /// The blank shown outside the support.
    public static let outside = RGB(236, 236, 236)

    /// Draws the slice alone, one image pixel per value (no labels).
    public static func raster(_ p: SlicePanel) throws -> RGBImage {
        guard p.values.rank == 2 else { throw ReportError.invalid("a slice panel needs 2D values, got shape \(p.values.shape)") }
        if let s = p.support, s.shape != p.values.shape {
            throw ReportError.invalid("support \(s.shape) does not match slice \(p.values.shape)")
        }
        let h = p.values.shape[0], w = p.values.shape[1]
        var img = RGBImage(width: w, height: h, background: outside)
        for y in 0..<h { for x in 0..<w {
            if let s = p.support, s[y, x] == 0 { continue }
            let v = Double(p.values[y, x])
            img[x, y] = v.isFinite ? p.map.colour(v, lo: p.range.lo, hi: p.range.hi) : outside
        } }
        return img
    }

    /// A nice scale-bar length (1, 2 or 5 × 10ᵏ nm) close to a quarter of `extent` nm.
    public static func niceLength(_ extent: Double) -> Double {
        let target = extent / 4
        guard target > 0 else { return 0 }
        let k = pow(10, floor(log10(target)))
        for m in [5.0, 2.0, 1.0] where m * k <= target { return m * k }
        return k
    }

    /// Formats a tick value compactly.
    static func tick(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1000 || a < 0.01 { return String(format: "%.1e", v) }
        if a >= 10 { return String(format: "%.0f", v) }
        return String(format: "%.2g", v)
    }

    /// The complete panel: title, enlarged slice, scale bar, colour bar with ticks and unit.
    public static func render(_ p: SlicePanel, targetSize: Int = 220) throws -> RGBImage {
        let raw = try raster(p)
        let f = max(1, targetSize / max(raw.width, raw.height))
        let body = raw.enlarged(by: f)
        let pad = 8, barW = 14, labelW = 52, titleH = 24
        let width = pad + body.width + pad + barW + 4 + labelW
        let height = titleH + body.height + 30
        var img = RGBImage(width: width, height: height)
        img.text(p.title, x: pad, y: 4, scale: 2 > 1 && RGBImage.textWidth(p.title, scale: 2) < width - 2 * pad ? 2 : 1)
        img.draw(body, x: pad, y: titleH)
        img.stroke(x: pad - 1, y: titleH - 1, width: body.width + 2, height: body.height + 2, RGB(120, 120, 120))
        // Scale bar in nm under the slice.
        if p.pixelSize.columns > 0 {
            let extent = Double(raw.width) * p.pixelSize.columns
            let len = niceLength(extent)
            let px = Int((len / p.pixelSize.columns * Double(f)).rounded())
            let y0 = titleH + body.height + 8
            img.fill(x: pad, y: y0, width: px, height: 4, .black)
            let label = p.lengthUnit != "nm" ? "\(tick(len)) \(p.lengthUnit)" : (len >= 1000 ? "\(tick(len / 1000)) µm" : "\(tick(len)) nm")
            img.text(label, x: pad + px + 6, y: y0 - 2)
        }
        // Colour bar.
        let bx = pad + body.width + pad, by = titleH, bh = body.height
        for y in 0..<bh {
            let t = 1 - Double(y) / Double(max(1, bh - 1))
            img.fill(x: bx, y: by + y, width: barW, height: 1, p.map.colour(t))
        }
        img.stroke(x: bx - 1, y: by - 1, width: barW + 2, height: bh + 2, RGB(120, 120, 120))
        for (t, y) in [(1.0, by), (0.5, by + bh / 2 - 3), (0.0, by + bh - 7)] {
            let v = p.range.lo + t * (p.range.hi - p.range.lo)
            img.text(tick(v), x: bx + barW + 4, y: y)
        }
        img.text(p.unit, x: bx, y: by + bh + 8)
        return img
    }

    /// Arranges panels in a grid with optional row labels on the left (a montage, as the
    /// seed's Fig. 3a shows all states side by side).
    public static func montage(_ rows: [[RGBImage]], rowLabels: [String] = [], gap: Int = 6) -> RGBImage {
        let labelW = rowLabels.isEmpty ? 0 : (rowLabels.map { RGBImage.textWidth($0, scale: 2) }.max() ?? 0) + 12
        let colW = (0..<(rows.map(\.count).max() ?? 0)).map { c in rows.compactMap { c < $0.count ? $0[c].width : nil }.max() ?? 0 }
        let rowH = rows.map { $0.map(\.height).max() ?? 0 }
        let width = max(1, labelW + colW.reduce(0, +) + gap * (colW.count + 1))
        let height = max(1, rowH.reduce(0, +) + gap * (rowH.count + 1))
        var img = RGBImage(width: width, height: height)
        var y = gap
        for (r, row) in rows.enumerated() {
            if r < rowLabels.count { img.text(rowLabels[r], x: 4, y: y + rowH[r] / 2 - 7, scale: 2) }
            var x = labelW + gap
            for (c, panel) in row.enumerated() { img.draw(panel, x: x, y: y); x += colW[c] + gap }
            y += rowH[r] + gap
        }
        return img
    }
}

/// Errors of the Report module: one sentence each.
public enum ReportError: Error, CustomStringConvertible {
    case invalid(String)
    /// A file the series analysis writes is missing from `path`'s folder.
    case analysisMissing(path: String)
    /// The analysis folder `folder` lacks the lab-frame file of state `state` (0-based).
    case stateFileMissing(folder: String, state: Int, label: String, states: Int)

    public var description: String {
        switch self {
        case .invalid(let s): return s
        case .analysisMissing(let p): return "\(p) is missing: analyse the series into its folder first"
        case .stateFileMissing(let d, let i, let l, let n):
            return "\(d) has no \(ReportError.stateFilePattern(i)) for state '\(l)' (table.json lists \(n) states): analyse the series into it again"
        }
    }

    /// The name pattern of state `index`'s lab-frame file.
    public static func stateFilePattern(_ index: Int) -> String { String(format: "state_%02d_*.vti", index) }
}
