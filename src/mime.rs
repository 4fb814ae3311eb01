//! Content-Type for web files: an own table of the types browsers care about
//! (so `.js` is `text/javascript`, `.webmanifest` is right, text gets a
//! charset), then mime_guess, then `application/octet-stream`.

/// Content-Type for a key or path, by its extension (case-insensitive).
pub fn content_type(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    if let Some(t) = table(&ext) {
        return with_charset(t);
    }
    match mime_guess::from_ext(&ext).first() {
        Some(m) => with_charset(m.essence_str()),
        None => "application/octet-stream".to_string(),
    }
}

fn table(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" | "cjs" => "text/javascript",
        "json" | "map" => "application/json",
        "jsonld" => "application/ld+json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "svg" | "svgz" => "image/svg+xml",
        "xml" | "xsl" => "application/xml",
        "rss" => "application/rss+xml",
        "atom" => "application/atom+xml",
        "txt" | "text" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "ics" => "text/calendar",
        "vtt" => "text/vtt",
        "png" => "image/png",
        "apng" => "image/apng",
        "jpg" | "jpeg" | "jfif" | "pjpeg" | "pjp" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "jxl" => "image/jxl",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mov" => "video/quicktime",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "mpd" => "application/dash+xml",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        _ => return None,
    })
}

/// Text types get `; charset=utf-8`.
fn with_charset(essence: &str) -> String {
    if is_text(essence) {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// Whether a MIME essence is textual (for the charset parameter).
pub fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/json"
                | "application/ld+json"
                | "application/manifest+json"
                | "application/xml"
                | "application/rss+xml"
                | "application/atom+xml"
                | "application/javascript"
                | "image/svg+xml"
                | "application/dash+xml"
        )
}

/// Whether gzip is worth trying for this Content-Type (text-like formats,
/// plus wasm); already-compressed media and archives are not.
pub fn is_compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    is_text(essence)
        || matches!(
            essence,
            "application/wasm"
                | "image/x-icon"
                | "image/bmp"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
                | "application/vnd.apple.mpegurl"
        )
}

/// Whether CloudFront compresses this Content-Type on the fly (its
/// documented list); other types reach viewers as stored.
pub fn edge_compresses(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/dash+xml"
            | "application/eot"
            | "application/font"
            | "application/font-sfnt"
            | "application/javascript"
            | "application/json"
            | "application/opentype"
            | "application/otf"
            | "application/pdf"
            | "application/pkcs7-mime"
            | "application/protobuf"
            | "application/rss+xml"
            | "application/truetype"
            | "application/ttf"
            | "application/vnd.apple.mpegurl"
            | "application/vnd.mapbox-vector-tile"
            | "application/vnd.ms-fontobject"
            | "application/wasm"
            | "application/xhtml+xml"
            | "application/xml"
            | "application/x-font-opentype"
            | "application/x-font-truetype"
            | "application/x-font-ttf"
            | "application/x-httpd-cgi"
            | "application/x-javascript"
            | "application/x-mpegurl"
            | "application/x-opentype"
            | "application/x-otf"
            | "application/x-perl"
            | "application/x-ttf"
            | "font/eot"
            | "font/opentype"
            | "font/otf"
            | "font/ttf"
            | "image/svg+xml"
            | "text/css"
            | "text/csv"
            | "text/html"
            | "text/javascript"
            | "text/js"
            | "text/plain"
            | "text/richtext"
            | "text/tab-separated-values"
            | "text/xml"
            | "text/x-script"
            | "text/x-component"
            | "text/x-java-source"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("a/b/App.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.cjs"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x.js.map"), "application/json; charset=utf-8");
        assert_eq!(
            content_type("m.webmanifest"),
            "application/manifest+json; charset=utf-8"
        );
        assert_eq!(content_type("f.woff2"), "font/woff2");
        assert_eq!(content_type("i.avif"), "image/avif");
        assert_eq!(content_type("i.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(content_type("v.mp4"), "video/mp4");
        assert_eq!(content_type("w.wasm"), "application/wasm");
    }

    #[test]
    fn fallbacks() {
        // mime_guess knows .epub; nothing knows .zzqx; dotfiles have no extension.
        assert_eq!(content_type("book.epub"), "application/epub+zip");
        assert_eq!(content_type("blob.zzqx"), "application/octet-stream");
        assert_eq!(content_type("CNAME"), "application/octet-stream");
        assert_eq!(content_type(".htaccess"), "application/octet-stream");
    }

    #[test]
    fn compressible() {
        assert!(is_compressible("text/css; charset=utf-8"));
        assert!(is_compressible("application/wasm"));
        assert!(is_compressible("image/svg+xml; charset=utf-8"));
        assert!(!is_compressible("image/png"));
        assert!(!is_compressible("font/woff2"));
        assert!(!is_compressible("video/mp4"));
        // What CloudFront compresses itself, and what it leaves alone.
        assert!(edge_compresses("text/html; charset=utf-8"));
        assert!(edge_compresses("application/json"));
        assert!(!edge_compresses("application/manifest+json"));
        assert!(!edge_compresses("image/x-icon"));
        assert!(is_compressible("image/x-icon"));
    }
}
