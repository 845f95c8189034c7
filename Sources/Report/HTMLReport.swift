import Foundation

/// A table for the report: headers carry the units.
public struct ReportTable: Sendable, Equatable {
    public var headers: [String]
    public var rows: [[String]]
    public init(headers: [String], rows: [[String]]) { self.headers = headers; self.rows = rows }
}

/// A figure: an image (PNG or SVG) referenced by a path relative to the report.
public struct ReportFigure: Sendable, Equatable {
    public var caption: String
    public var path: String
    public var width: Int?
    public init(caption: String, path: String, width: Int? = nil) { self.caption = caption; self.path = path; self.width = width }
}

public struct ReportSection: Sendable {
    public var title: String
    public var paragraphs: [String]
    public var tables: [ReportTable]
    public var figures: [ReportFigure]
    public init(title: String, paragraphs: [String] = [], tables: [ReportTable] = [], figures: [ReportFigure] = []) {
        self.title = title; self.paragraphs = paragraphs; self.tables = tables; self.figures = figures
    }
}

/// Everything one series report shows.
public struct SeriesReport: Sendable {
    public var title: String
    public var summary: [String]
    public var sections: [ReportSection]
    /// Provenance: (what, value) pairs, the exact commands, and input checksums.
    public var provenance: [(String, String)]
    public var commands: [String]
    public var checksums: [(file: String, sha256: String)]

    public init(title: String, summary: [String], sections: [ReportSection], provenance: [(String, String)],
                commands: [String], checksums: [(file: String, sha256: String)]) {
        self.title = title; self.summary = summary; self.sections = sections
        self.provenance = provenance; self.commands = commands; self.checksums = checksums
    }
}

/// Writes one self-contained HTML page (inline CSS, relative image links, no network).
public enum HTMLReport {
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func table(_ t: ReportTable) -> String {
        var s = "<table>\n<thead><tr>" + t.headers.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in t.rows { s += "<tr>" + r.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }
        return s + "</tbody></table>\n"
    }

    public static func render(_ r: SeriesReport) -> String {
        var s = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>\(escape(r.title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
        h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
        table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
        th, td { border: 1px solid #bbb; padding: .3em .6em; text-align: right; }
        th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
        figure { display: inline-block; margin: .6em 1em .6em 0; vertical-align: top; }
        figure img { max-width: 100%; border: 1px solid #ddd; }
        figcaption { font-size: .88em; color: #444; max-width: 640px; }
        code, pre { background: #f6f6f6; font-size: .88em; } pre { padding: .6em; overflow-x: auto; }
        .note { color: #555; font-size: .92em; }
        </style></head><body>
        <h1>\(escape(r.title))</h1>

        """
        for p in r.summary { s += "<p>\(escape(p))</p>\n" }
        for sec in r.sections {
            s += "<h2>\(escape(sec.title))</h2>\n"
            for p in sec.paragraphs { s += "<p class=\"note\">\(escape(p))</p>\n" }
            for t in sec.tables { s += table(t) }
            for f in sec.figures {
                let w = f.width.map { " width=\"\($0)\"" } ?? ""
                s += "<figure><img src=\"\(escape(f.path))\" alt=\"\(escape(f.caption))\"\(w)><figcaption>\(escape(f.caption))</figcaption></figure>\n"
            }
        }
        s += "<h2>Provenance</h2>\n"
        s += table(ReportTable(headers: ["item", "value"], rows: r.provenance.map { [$0.0, $0.1] }))
        if !r.commands.isEmpty {
            s += "<p>Commands:</p><pre>" + r.commands.map(escape).joined(separator: "\n") + "</pre>\n"
        }
        if !r.checksums.isEmpty {
            s += table(ReportTable(headers: ["input file", "SHA-256"], rows: r.checksums.map { [$0.file, $0.sha256] }))
        }
        // Marks images that failed to load, so a headless browser's DOM dump can be checked
        // (make check-report); inline, so the page still needs no network.
        s += "<script>window.addEventListener('load', function () { var b = []; for (var i = 0; i < document.images.length; i++) { var m = document.images[i]; if (!m.complete || m.naturalWidth === 0) b.push(m.getAttribute('src')); } document.body.setAttribute('data-images', document.images.length); document.body.setAttribute('data-broken-images', b.join(' ') || 'none'); });</script>\n"
        return s + "</body></html>\n"
    }

    /// Every image path the page references (for checking that none is missing).
    public static func referencedImages(in html: String) -> [String] {
        var out: [String] = []
        var rest = html[...]
        while let r = rest.range(of: "<img src=\"") {
            let after = rest[r.upperBound...]
            guard let end = after.firstIndex(of: "\"") else { break }
            out.append(String(after[..<end]).replacingOccurrences(of: "&amp;", with: "&"))
            rest = after[end...]
        }
        return out
    }
}
