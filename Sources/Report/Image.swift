import Foundation

/// An 8-bit RGB raster, row-major from the top-left, with the few drawing operations
/// the figures need (filled rectangles, lines, bitmap text, alpha blending).
public struct RGBImage: Sendable {
    public let width: Int, height: Int
    /// Interleaved r, g, b bytes, `3 * width * height`.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, background: RGB = .white) {
        precondition(width > 0 && height > 0, "empty image")
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: 3 * width * height)
        for i in 0..<(width * height) { pixels[3 * i] = background.r; pixels[3 * i + 1] = background.g; pixels[3 * i + 2] = background.b }
    }

    public subscript(x: Int, y: Int) -> RGB {
        get { let i = 3 * (y * width + x); return RGB(pixels[i], pixels[i + 1], pixels[i + 2]) }
        set {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = 3 * (y * width + x); pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }

    /// Blends `c` over the pixel with opacity `alpha` ∈ [0, 1].
    public mutating func blend(x: Int, y: Int, _ c: RGB, alpha: Double) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x), a = min(1, max(0, alpha))
        pixels[i] = UInt8((Double(pixels[i]) * (1 - a) + Double(c.r) * a).rounded())
        pixels[i + 1] = UInt8((Double(pixels[i + 1]) * (1 - a) + Double(c.g) * a).rounded())
        pixels[i + 2] = UInt8((Double(pixels[i + 2]) * (1 - a) + Double(c.b) * a).rounded())
    }

    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ c: RGB) {
        for yy in max(0, y)..<min(height, y + h) { for xx in max(0, x)..<min(width, x + w) { self[xx, yy] = c } }
    }

    /// A one-pixel rectangle outline.
    public mutating func stroke(x: Int, y: Int, width w: Int, height h: Int, _ c: RGB) {
        line(x, y, x + w - 1, y, c); line(x, y + h - 1, x + w - 1, y + h - 1, c)
        line(x, y, x, y + h - 1, c); line(x + w - 1, y, x + w - 1, y + h - 1, c)
    }

    /// Bresenham line.
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            for t in 0..<thickness { for u in 0..<thickness { self[x + t - thickness / 2, y + u - thickness / 2] = c } }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Width in pixels of `text` at `scale`.
    public static func textWidth(_ text: String, scale: Int = 1) -> Int {
        max(0, text.count * BitmapFont.advance * scale - scale)
    }

    /// Draws `text` with its top-left corner at (x, y); unknown characters draw as '?'.
    public mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, colour: RGB = .black) {
        var cx = x
        for ch in text {
            let rows = BitmapFont.glyphs[ch] ?? BitmapFont.glyphs["?"]!
            for (r, mask) in rows.enumerated() {
                for col in 0..<BitmapFont.width where mask & (1 << (4 - col)) != 0 {
                    fill(x: cx + col * scale, y: y + r * scale, width: scale, height: scale, colour)
                }
            }
            cx += BitmapFont.advance * scale
        }
    }

    /// Copies `other` with its top-left corner at (x, y).
    public mutating func draw(_ other: RGBImage, x: Int, y: Int) {
        for yy in 0..<other.height where y + yy >= 0 && y + yy < height {
            for xx in 0..<other.width where x + xx >= 0 && x + xx < width {
                self[x + xx, y + yy] = other[xx, yy]
            }
        }
    }

    /// Nearest-neighbour enlargement by an integer factor (keeps voxels visible as squares).
    public func enlarged(by f: Int) -> RGBImage {
        guard f > 1 else { return self }
        var out = RGBImage(width: width * f, height: height * f)
        for y in 0..<out.height { for x in 0..<out.width { out[x, y] = self[x / f, y / f] } }
        return out
    }
}
