//! Migrate's policy for names and headers: which shard a key is in, which
//! names cannot be keys, which types a browser may show inline.

use crate::headers::HeaderSettings;
use crate::mime;

/// Which shard a key belongs to: blake3 of the key, first 8 bytes, mod N.
pub fn shard_of(key: &str, n: u64) -> u64 {
    let h = blake3::hash(key.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % n.max(1)
}

/// Parse `I/N`.
pub fn parse_shard(s: &str) -> std::result::Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid shard `{s}`: expected I/N, e.g. 0/4"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("invalid shard index in `{s}`"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("invalid shard count in `{s}`"))?;
    if n == 0 || i >= n {
        return Err(format!("invalid shard `{s}`: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Why a relative path cannot be a key (reported, never silently changed).
pub fn bad_name(rel: &str) -> Option<&'static str> {
    if rel.chars().any(char::is_control) {
        Some("control character in the name")
    } else if rel.contains('\\') {
        Some("backslash in the name")
    } else if rel.len() > crate::plan::MAX_KEY_BYTES {
        Some("name longer than S3's 1,024-byte key limit")
    } else {
        None
    }
}

/// Whether a browser may show a type inline without running anything from
/// it: an allow-list (images but SVG, audio, video, fonts, PDF, plain text
/// and CSV). Everything else — HTML, XHTML, SVG, any XML (`*/xml`,
/// `*+xml`: Chromium runs XHTML-namespace scripts in any XML document),
/// JavaScript, unknown types — is served as an attachment.
pub fn safe_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.ends_with("+xml") || essence.ends_with("/xml") {
        return false;
    }
    let (top, _) = essence.split_once('/').unwrap_or((&essence, ""));
    matches!(top, "image" | "audio" | "video" | "font")
        || matches!(
            essence.as_str(),
            "application/pdf" | "text/plain" | "text/csv" | "application/font-woff"
        )
}

/// Headers of a migrated file: the web type table, `attachment` for every
/// type not safe inline (unless `--inline`), no precompression.
pub fn headers_for(rel: &str, cache_control: &str, inline: bool) -> HeaderSettings {
    let content_type = mime::content_type(rel);
    let attachment = !inline && !safe_inline(&content_type);
    HeaderSettings {
        content_type,
        cache_control: cache_control.to_string(),
        content_disposition: attachment.then(|| "attachment".to_string()),
        compress: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_keys() {
        let keys: Vec<String> = (0..1000).map(|i| format!("u/{i}.jpg")).collect();
        let mut counts = [0; 4];
        for k in &keys {
            counts[shard_of(k, 4) as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(
            parse_shard("4/4").is_err() && parse_shard("x").is_err() && parse_shard("1/0").is_err()
        );
    }

    #[test]
    fn names_and_headers() {
        assert!(bad_name("a\u{7}b.jpg").is_some());
        assert!(bad_name("a\\b.jpg").is_some());
        assert!(bad_name("a b+c%.jpg").is_none());
        let h = headers_for("x/page.html", "public, max-age=86400", false);
        assert_eq!(h.content_disposition.as_deref(), Some("attachment"));
        assert!(!h.compress);
        assert_eq!(
            headers_for("x/a.svg", "c", false)
                .content_disposition
                .as_deref(),
            Some("attachment")
        );
        assert_eq!(headers_for("x/a.jpg", "c", false).content_disposition, None);
        assert_eq!(
            headers_for("x/page.html", "c", true).content_disposition,
            None,
            "--inline"
        );
        // Anything a browser may run or render as a document is an attachment.
        for f in [
            "feed.rss", "atom.xml", "a.xhtml", "m.mml", "x.rdf", "app.js", "a.mjs", "a.xsl",
            "a.wasm", "noext", "a.php", "a.htm",
        ] {
            assert_eq!(
                headers_for(f, "c", false).content_disposition.as_deref(),
                Some("attachment"),
                "{f}"
            );
        }
        for t in [
            "application/atom+xml",
            "application/rss+xml; charset=utf-8",
            "text/xml",
            "image/svg+xml",
        ] {
            assert!(!safe_inline(t), "{t}");
        }
        for f in [
            "a.png", "a.webp", "a.mp4", "a.mp3", "a.pdf", "a.txt", "a.woff2", "a.csv",
        ] {
            assert_eq!(headers_for(f, "c", false).content_disposition, None, "{f}");
        }
    }
}
