//! URL → file resolution for references found in HTML, CSS, JS, manifests
//! and SVG: relative and root-relative URLs (with an optional base path),
//! `?query` and `#fragment` kept, percent-decoding, and everything that is
//! not a file in the site (external, `data:`, `mailto:`, anchors) skipped.

use percent_encoding::percent_decode_str;

/// A reference that points into the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Path of the target relative to the site root (decoded, normalised).
    pub path: String,
    /// Byte range, within the reference text, of the last path segment (the
    /// file name as written): what a rename replaces.
    pub name_span: (usize, usize),
}

/// Why a reference was not resolved to a site path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// Has a scheme (`https:`, `data:`, `mailto:`…) or is protocol-relative.
    External,
    /// Empty, or only a `#fragment` / `?query`.
    SameDocument,
    /// Root-relative but outside the base path, or `..` above the root.
    OutsideSite,
}

/// The part of a URL reference before `?` / `#`.
fn path_part(r: &str) -> &str {
    let end = r.find(['?', '#']).unwrap_or(r.len());
    &r[..end]
}

fn has_scheme(r: &str) -> bool {
    let mut chars = r.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    for (_, c) in chars {
        match c {
            ':' => return true,
            c if c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.' => {}
            _ => return false,
        }
    }
    false
}

/// Normalise `a/./b/../c` segments; `None` if `..` climbs above the root.
fn normalise(segments: impl Iterator<Item = String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in segments {
        match s.as_str() {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            _ => out.push(s),
        }
    }
    Some(out)
}

/// Resolve `reference` found in the file `from` (a site path). `base_path`
/// is the URL path the site is served under (`/` or `/sub/`); `base_dir`
/// overrides the referrer's directory (an HTML `<base href>`), as a site
/// path ending in `/` or empty for the root.
pub fn resolve(
    reference: &str,
    from: &str,
    base_path: &str,
    base_dir: Option<&str>,
) -> Result<Resolved, Unresolved> {
    let r = reference.trim_matches(|c: char| c.is_ascii_whitespace());
    let lead = reference.len()
        - reference
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .len();
    if r.starts_with("//") || has_scheme(r) {
        return Err(Unresolved::External);
    }
    let path = path_part(r);
    if path.is_empty() {
        return Err(Unresolved::SameDocument);
    }
    let decoded = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let segments: Vec<String> = if let Some(abs) = path.strip_prefix('/') {
        let base = base_path.trim_matches('/');
        let rest = if base.is_empty() {
            abs
        } else if let Some(rest) = abs.strip_prefix(base) {
            match rest.strip_prefix('/') {
                Some(r) => r,
                None if rest.is_empty() => "",
                None => return Err(Unresolved::OutsideSite),
            }
        } else {
            return Err(Unresolved::OutsideSite);
        };
        rest.split('/').map(decoded).collect()
    } else {
        let dir = match base_dir {
            Some(d) => d.to_string(),
            None => match from.rfind('/') {
                Some(i) => from[..=i].to_string(),
                None => String::new(),
            },
        };
        dir.split('/')
            .map(str::to_string)
            .chain(path.split('/').map(decoded))
            .collect()
    };
    let dir_like = path.ends_with('/')
        || path.ends_with("/.")
        || path.ends_with("/..")
        || path == "."
        || path == "..";
    let mut parts = normalise(segments.into_iter()).ok_or(Unresolved::OutsideSite)?;
    if dir_like || parts.is_empty() {
        parts.push("index.html".into());
    }
    // The written file name: after the last `/` of the path part.
    let name_start = path.rfind('/').map(|i| i + 1).unwrap_or(0);
    let name_span = if dir_like {
        (lead + path.len(), lead + path.len())
    } else {
        (lead + name_start, lead + path.len())
    };
    Ok(Resolved {
        path: parts.join("/"),
        name_span,
    })
}

/// Byte range of the written file name (last path segment before `?`/`#`)
/// within a reference's raw text, leading whitespace included in offsets.
pub fn written_name_span(raw: &str) -> (usize, usize) {
    let lead = raw.len()
        - raw
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .len();
    let r = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    let path = path_part(r);
    let start = path.rfind('/').map(|i| i + 1).unwrap_or(0);
    (lead + start, lead + path.len())
}

/// Whether a JS module specifier is bare (`react`, `lodash/fp`): resolved
/// by a bundler or import map, not a file path.
pub fn is_bare_specifier(s: &str) -> bool {
    !(s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with('/')
        || s == "."
        || s == ".."
        || has_scheme(s))
}

/// The fingerprinted form of a written file name: `.<hash>` inserted before
/// the extension (`a%20b.png` → `a%20b.3f9c0a1b2d4e.png`), so every other
/// byte of the reference stays as written.
pub fn hashed_name(written: &str, hash: &str) -> String {
    match written.rfind('.') {
        Some(i) if i > 0 => format!("{}.{hash}{}", &written[..i], &written[i..]),
        _ => format!("{written}.{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: &str, from: &str) -> String {
        resolve(r, from, "/", None).unwrap().path
    }

    #[test]
    fn relative_and_root_relative() {
        assert_eq!(ok("css/a.css", "index.html"), "css/a.css");
        assert_eq!(ok("../css/a.css", "blog/post.html"), "css/a.css");
        assert_eq!(ok("./img/x.png", "blog/post.html"), "blog/img/x.png");
        assert_eq!(ok("/css/a.css", "blog/deep/post.html"), "css/a.css");
        assert_eq!(ok("a.css?v=2#x", "index.html"), "a.css");
        assert_eq!(ok("../", "blog/post/index.html"), "blog/index.html");
        assert_eq!(ok("./", "blog/index.html"), "blog/index.html");
        assert_eq!(ok("/", "a/b.html"), "index.html");
        assert_eq!(ok("a%20b+c.png", "index.html"), "a b+c.png");
        assert_eq!(ok("caf%C3%A9.png", "index.html"), "café.png");
        assert_eq!(ok("  img/x.png ", "index.html"), "img/x.png");
    }

    #[test]
    fn skipped_references() {
        for r in [
            "https://x.com/a.css",
            "//cdn.x.com/a.js",
            "data:image/png;base64,AA",
            "mailto:a@b",
            "javascript:void(0)",
            "tel:123",
            "blob:xyz",
        ] {
            assert_eq!(
                resolve(r, "index.html", "/", None),
                Err(Unresolved::External),
                "{r}"
            );
        }
        for r in ["", "#top", "?q=1"] {
            assert_eq!(
                resolve(r, "index.html", "/", None),
                Err(Unresolved::SameDocument),
                "{r}"
            );
        }
        assert_eq!(
            resolve("../../x.css", "a/b.html", "/", None),
            Err(Unresolved::OutsideSite)
        );
    }

    #[test]
    fn base_path_and_base_href() {
        assert_eq!(
            resolve("/sub/css/a.css", "x.html", "/sub/", None)
                .unwrap()
                .path,
            "css/a.css"
        );
        assert_eq!(
            resolve("/other/a.css", "x.html", "/sub/", None),
            Err(Unresolved::OutsideSite)
        );
        assert_eq!(
            resolve("/subway/a.css", "x.html", "/sub/", None),
            Err(Unresolved::OutsideSite)
        );
        assert_eq!(
            resolve("a.css", "blog/x.html", "/", Some("static/"))
                .unwrap()
                .path,
            "static/a.css"
        );
    }

    #[test]
    fn name_span_and_hashed_names() {
        let r = "../img/a%20b.png?v=1#f";
        let res = resolve(r, "css/site.css", "/", None).unwrap();
        assert_eq!(&r[res.name_span.0..res.name_span.1], "a%20b.png");
        let new = format!(
            "{}{}{}",
            &r[..res.name_span.0],
            hashed_name(&r[res.name_span.0..res.name_span.1], "0123456789ab"),
            &r[res.name_span.1..]
        );
        assert_eq!(new, "../img/a%20b.0123456789ab.png?v=1#f");
        assert_eq!(hashed_name("LICENSE", "abc"), "LICENSE.abc");
        assert_eq!(hashed_name(".htaccess", "abc"), ".htaccess.abc");
        assert_eq!(hashed_name("app.js.map", "abc"), "app.js.abc.map");
    }
}
