//! Which CDN paths a release change invalidates, pure: changed and deleted
//! stable-name keys only (never content-addressed or new keys), `index.html`
//! also as `/dir/` and `/dir`, paths relative to the distribution's origin
//! path, URL-encoded as CloudFront requires, and minimised into `dir/*`
//! wildcards (then `/*`) when over the path budget.

use std::collections::BTreeSet;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// CloudFront's limits: paths per invalidation batch and wildcard paths
/// in progress at once.
pub const MAX_PATHS: usize = 3000;
/// CloudFront's limit of wildcard paths in progress.
pub const MAX_WILDCARDS: usize = 15;

/// RFC 1738 "unsafe" characters, plus `'` and everything non-ASCII: what
/// CloudFront wants encoded. Nothing else may be encoded, and `*` never.
const UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'~')
    .add(b'\'');

/// Percent-encode a path as an invalidation path (segments kept).
pub fn encode_path(p: &str) -> String {
    utf8_percent_encode(p, UNSAFE).to_string()
}

/// URL paths (decoded, starting with `/`) for changed keys. `keys` are
/// full keys in the bucket; `origin_path` is the distribution origin's path
/// (`""` or `site/v1`), stripped from each key. Keys outside it are skipped.
pub fn url_paths(keys: &[String], origin_path: &str) -> Vec<String> {
    let origin = origin_path.trim_matches('/');
    let mut out = BTreeSet::new();
    for k in keys {
        let rel = if origin.is_empty() {
            k.as_str()
        } else {
            match k.strip_prefix(origin).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => continue,
            }
        };
        out.insert(format!("/{rel}"));
        if let Some(dir) = rel.strip_suffix("index.html")
            && (dir.is_empty() || dir.ends_with('/'))
        {
            out.insert(format!("/{dir}"));
            if !dir.is_empty() {
                out.insert(format!("/{}", dir.trim_end_matches('/')));
            }
        }
    }
    out.into_iter().collect()
}

/// The directory of a path for grouping: `/a/b/c.html` → `/a/b/`,
/// `/a/b/` → `/a/`, `/a/*` → `/`.
fn parent(p: &str) -> &str {
    let t = p.strip_suffix('*').unwrap_or(p);
    let t = t.strip_suffix('/').unwrap_or(t);
    match t.rfind('/') {
        Some(i) => &t[..=i],
        None => "/",
    }
}

/// Collapse into wildcards until at most `max` paths (and at most
/// [`MAX_WILDCARDS`] wildcards) remain: the deepest directory holding two or
/// more paths becomes `dir/*`, step by step; `/*` when nothing smaller fits.
pub fn minimise(paths: Vec<String>, max: usize) -> Vec<String> {
    let max = max.clamp(1, MAX_PATHS);
    let mut set: BTreeSet<String> = paths.into_iter().collect();
    let wildcards = |s: &BTreeSet<String>| s.iter().filter(|p| p.ends_with('*')).count();
    while set.len() > max || wildcards(&set) > MAX_WILDCARDS {
        // Directories with the number of paths they directly or indirectly hold.
        let mut best: Option<(usize, usize, String)> = None; // (depth, count, dir)
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        for p in &set {
            let mut d = parent(p).to_string();
            loop {
                dirs.insert(d.clone());
                if d == "/" {
                    break;
                }
                d = parent(&d).to_string();
            }
        }
        for d in &dirs {
            let count = set
                .iter()
                .filter(|p| p.starts_with(d.as_str()) && *p != d)
                .count()
                + usize::from(set.contains(d));
            let depth = d.matches('/').count();
            if count >= 2 {
                let better = match &best {
                    None => true,
                    Some((bd, bc, _)) => depth > *bd || (depth == *bd && count > *bc),
                };
                if better {
                    best = Some((depth, count, d.clone()));
                }
            }
        }
        let Some((_, _, dir)) = best else {
            return vec!["/*".to_string()];
        };
        if dir == "/" {
            return vec!["/*".to_string()];
        }
        set.retain(|p| !p.starts_with(dir.as_str()));
        set.insert(format!("{dir}*"));
    }
    set.into_iter().collect()
}

/// The invalidation batch: encoded, minimised paths.
pub fn batch(keys: &[String], origin_path: &str, max_paths: usize) -> Vec<String> {
    let paths = url_paths(keys, origin_path);
    minimise(paths, max_paths)
        .iter()
        .map(|p| encode_path(p))
        .collect()
}

/// Idempotent on retry: the same release and paths give the same reference.
pub fn caller_reference(release: &str, paths: &[String]) -> String {
    let mut sorted: Vec<&String> = paths.iter().collect();
    sorted.sort();
    let mut h = blake3::Hasher::new();
    h.update(release.as_bytes());
    for p in sorted {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    format!("cdnsync-{}", &h.finalize().to_hex()[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn index_pages_are_also_their_directories() {
        assert_eq!(
            url_paths(&s(&["index.html", "blog/index.html", "blog/post.html"]), ""),
            s(&[
                "/",
                "/blog",
                "/blog/",
                "/blog/index.html",
                "/blog/post.html",
                "/index.html"
            ])
        );
    }

    #[test]
    fn origin_path_is_stripped() {
        assert_eq!(
            url_paths(&s(&["site/v1/a.html", "other/b.html"]), "/site/v1"),
            s(&["/a.html"])
        );
        assert_eq!(
            url_paths(&s(&["site/v1/index.html"]), "site/v1/"),
            s(&["/", "/index.html"])
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_path("/a b/c~d's.html"), "/a%20b/c%7Ed%27s.html");
        assert_eq!(encode_path("/café/ü.html"), "/caf%C3%A9/%C3%BC.html");
        assert_eq!(encode_path("/css/*"), "/css/*");
        assert_eq!(encode_path("/a+b&c=d(1)!.html"), "/a+b&c=d(1)!.html");
        assert_eq!(encode_path("/100%.html"), "/100%25.html");
    }

    // The cases s3deploy documents for its path minimisation.
    #[test]
    fn twenty_css_files_in_one_dir() {
        let p: Vec<String> = (0..20).map(|i| format!("/css/f{i}.css")).collect();
        assert_eq!(minimise(p, 15), s(&["/css/*"]));
    }

    #[test]
    fn twenty_files_in_twenty_dirs() {
        let p: Vec<String> = (0..20).map(|i| format!("/d{i}/f.html")).collect();
        assert_eq!(minimise(p, 15), s(&["/*"]));
    }

    #[test]
    fn deepest_directories_collapse_first_and_small_sets_stay() {
        let mut p: Vec<String> = (0..10).map(|i| format!("/docs/api/v{i}.html")).collect();
        p.extend((0..5).map(|i| format!("/blog/p{i}.html")));
        p.push("/index.html".into());
        let m = minimise(p.clone(), 15);
        assert!(m.contains(&"/docs/api/*".to_string()), "{m:?}");
        assert_eq!(m.len(), 7);
        let few = s(&["/a.html", "/b/c.html"]);
        assert_eq!(minimise(few.clone(), 15), few);
    }

    #[test]
    fn wildcard_limit_is_respected() {
        // 20 directories with 2 files each, budget 40: no collapse needed
        // by count; budget 30 forces collapses but never more than 15 wildcards.
        let p: Vec<String> = (0..20)
            .flat_map(|i| [format!("/d{i}/a.html"), format!("/d{i}/b.html")])
            .collect();
        assert_eq!(minimise(p.clone(), 40).len(), 40);
        let m = minimise(p, 30);
        assert!(
            m.len() <= 30 && m.iter().filter(|x| x.ends_with('*')).count() <= MAX_WILDCARDS,
            "{m:?}"
        );
    }

    #[test]
    fn caller_reference_is_stable_and_order_free() {
        let a = caller_reference("r1", &s(&["/a", "/b"]));
        assert_eq!(a, caller_reference("r1", &s(&["/b", "/a"])));
        assert_ne!(a, caller_reference("r2", &s(&["/a", "/b"])));
        assert!(a.len() <= 128);
    }
}
