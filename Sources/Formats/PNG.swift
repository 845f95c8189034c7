import Foundation
import CPNG

/// An 8-bit image, rows top to bottom, grey (1 channel) or RGB (3 channels, interleaved).
public struct PNGImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 (grey) or 3 (RGB).
    public var channels: Int
    /// height × width × channels bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard channels == 1 || channels == 3 else {
            throw FormatError.unsupported(path: "(image)", reason: "PNG images here have 1 (grey) or 3 (RGB) channels, not \(channels)")
        }
        guard width > 0, height > 0, pixels.count == width * height * channels else {
            throw FormatError.wrongShape(path: "(image)", dataset: nil, reason: "has \(pixels.count) bytes for \(width)×\(height)×\(channels)")
        }
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// PNG files through libpng's simplified API (which reports errors in a message instead of
/// longjmp, so it is safe to call from Swift).
public enum PNG {
    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { b in
            String(decoding: b.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Writes an 8-bit grey or RGB PNG (safely: temporary name, then rename).
    public static func write(_ img: PNGImage, to path: String, overwrite: Bool) throws {
        try SafeOutput.write(to: path, overwrite: overwrite) { tmp in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            image.width = UInt32(img.width)
            image.height = UInt32(img.height)
            image.format = img.channels == 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0
            let ok = img.pixels.withUnsafeBytes { b in
                png_image_write_to_file(&image, tmp, 0, b.baseAddress, 0, nil)
            }
            if ok == 0 {
                let m = message(&image)
                png_image_free(&image)
                throw FormatError.writeFailed(path: path, reason: "libpng: \(m)")
            }
        }
    }

    /// Grey image from row-major bytes.
    public static func writeGrey(_ pixels: [UInt8], width: Int, height: Int, to path: String, overwrite: Bool) throws {
        try write(PNGImage(width: width, height: height, channels: 1, pixels: pixels), to: path, overwrite: overwrite)
    }

    /// RGB image from row-major interleaved bytes.
    public static func writeRGB(_ pixels: [UInt8], width: Int, height: Int, to path: String, overwrite: Bool) throws {
        try write(PNGImage(width: width, height: height, channels: 3, pixels: pixels), to: path, overwrite: overwrite)
    }

    /// Reads a PNG as 8-bit grey (`channels` 1) or RGB (3); by default as stored
    /// (colour images as RGB, grey ones as grey; alpha is composited on black).
    public static func read(_ path: String, channels: Int? = nil) throws -> PNGImage {
        _ = try InputFile(path)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            let m = message(&image)
            png_image_free(&image)
            throw FormatError.badHeader(path: path, reason: "not a readable PNG (libpng: \(m))")
        }
        let colour = (image.format & UInt32(PNG_FORMAT_FLAG_COLOR)) != 0
        let c = channels ?? (colour ? 3 : 1)
        image.format = c == 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0
        let w = Int(image.width), h = Int(image.height)
        var pixels = [UInt8](repeating: 0, count: w * h * c)
        var black = png_color(red: 0, green: 0, blue: 0)
        let ok = pixels.withUnsafeMutableBytes { b in
            png_image_finish_read(&image, &black, b.baseAddress, 0, nil)
        }
        if ok == 0 {
            let m = message(&image)
            png_image_free(&image)
            throw FormatError.truncated(path: path, reason: "libpng: \(m)")
        }
        return try PNGImage(width: w, height: h, channels: c, pixels: pixels)
    }
}
