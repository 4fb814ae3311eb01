//! The reference graph: which site files each HTML, CSS, JS, web-manifest
//! and SVG file points at, with the byte span of every file name as written,
//! so fingerprinting can rename targets and splice referrers byte-exactly.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::scan::Inventory;

pub mod css;
pub mod html;
pub mod js;
pub mod json;
pub mod resolve;

/// Languages cdnsync reads references from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Html,
    Css,
    Js,
    Manifest,
    Svg,
    /// Any other JSON file: no references, but strings that may name files.
    Json,
}

/// The language of a file, by name.
pub fn lang_of(rel: &str) -> Option<Lang> {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    Some(match ext {
        "html" | "htm" | "xhtml" => Lang::Html,
        "css" => Lang::Css,
        "js" | "mjs" => Lang::Js,
        "webmanifest" => Lang::Manifest,
        "json" if name == "manifest.json" => Lang::Manifest,
        "json" => Lang::Json,
        "svg" => Lang::Svg,
        _ => return None,
    })
}

/// How a reference relates to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    /// A subresource (stylesheet, script, image, font…): the target may be
    /// fingerprinted and the reference rewritten.
    Asset,
    /// Navigation (`<a href>`, `<iframe src>`…): resolved and checked, but
    /// the target keeps its name (other sites may link to it).
    Link,
}

/// A reference as a parser found it, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRef {
    /// The URL, decoded (HTML entities, CSS/JS escapes).
    pub url: String,
    /// Byte range of the URL as written in the file.
    pub span: (usize, usize),
    pub kind: RefKind,
    /// Byte range of the value of an `integrity` attribute on the same
    /// element, if any.
    pub integrity: Option<(usize, usize)>,
    /// JS module specifiers: bare names are not file paths.
    pub module_specifier: bool,
    /// Resolve against this directory instead of the file's (`<base href>`).
    pub base_dir: Option<String>,
}

impl RawRef {
    pub fn new(url: impl Into<String>, span: (usize, usize), kind: RefKind) -> Self {
        RawRef {
            url: url.into(),
            span,
            kind,
            integrity: None,
            module_specifier: false,
            base_dir: None,
        }
    }
}

/// A string in a script or JSON document that may name a file of the site
/// at run time (`new Image().src = "/logo.svg"`): its byte span and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrLit {
    pub span: (usize, usize),
    pub value: String,
}

impl StrLit {
    /// Whether a string could be a file's URL at all: short, one line,
    /// with a `.` or a `/` (keeps the many other strings of a bundle out).
    pub fn could_be_path(v: &str) -> bool {
        !v.is_empty()
            && v.len() <= 1024
            && !v.contains(['\n', '\r'])
            && v.contains(['.', '/'])
            && v.chars().any(char::is_alphanumeric)
    }
}

/// What a parser returns for one file.
#[derive(Debug, Default)]
pub struct Extracted {
    pub refs: Vec<RawRef>,
    /// String literals (JS, inline scripts, JSON) that could name files,
    /// other than the references above: their targets keep their names.
    pub strings: Vec<StrLit>,
    /// Set when the file could not be parsed: it is published unchanged and
    /// everything it may reference keeps its name.
    pub error: Option<String>,
}

/// A resolved reference to a file of the site.
#[derive(Debug, Clone, Serialize)]
pub struct Ref {
    pub target: String,
    /// Byte range of the written file name in the referrer.
    pub name_span: (usize, usize),
    pub line: usize,
    pub kind: RefKind,
    #[serde(skip)]
    pub integrity: Option<(usize, usize)>,
}

/// A reference to a file that is not in the site.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub file: String,
    pub line: usize,
    pub url: String,
}

/// A file of the site named by a string in a script or JSON document (not
/// by a reference cdnsync rewrites): JavaScript may build its URL at run
/// time, so it keeps its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    pub target: String,
    pub line: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct FileRefs {
    pub lang: Option<Lang>,
    pub refs: Vec<Ref>,
    /// Files named by its strings.
    pub pins: Vec<Pin>,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Graph {
    /// Referrer → its references (only files that were parsed).
    pub files: BTreeMap<String, FileRefs>,
    pub missing: Vec<Missing>,
}

#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// URL path the site is served under: `/` or `/sub/`.
    pub base_path: String,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            base_path: "/".into(),
        }
    }
}

/// Files larger than this are not parsed for references (a 128 MiB script
/// would take gigabytes in the parser): published unchanged, with a
/// warning, and every file they may name keeps its name.
pub const MAX_PARSE_BYTES: usize = 16 << 20;

/// Bracket nesting deeper than this is not parsed (the parsers recurse):
/// same treatment as a file too large.
pub const MAX_NESTING: usize = 500;

/// The deepest nesting of `(`, `[` and `{` (strings not excluded: a rough
/// upper bound, cheap, never recursive).
pub fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for &b in bytes {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parse one file's bytes; a file too large or too deeply nested to parse
/// safely is reported as unparsable.
pub fn extract(lang: Lang, bytes: &[u8]) -> Extracted {
    if bytes.len() > MAX_PARSE_BYTES {
        return Extracted {
            error: Some(format!(
                "larger than {} MiB, not parsed for references",
                MAX_PARSE_BYTES >> 20
            )),
            ..Extracted::default()
        };
    }
    if nesting_depth(bytes) > MAX_NESTING {
        return Extracted {
            error: Some(format!(
                "nested more than {MAX_NESTING} levels deep, not parsed for references"
            )),
            ..Extracted::default()
        };
    }
    match lang {
        Lang::Html => html::extract(bytes, false),
        Lang::Svg => html::extract(bytes, true),
        Lang::Css => with_text(bytes, |t| Extracted {
            refs: css::extract(t, 0, RefKind::Asset),
            ..Extracted::default()
        }),
        Lang::Js => js::extract(bytes),
        Lang::Manifest => json::extract_manifest(bytes),
        Lang::Json => json::extract_data(bytes),
    }
}

/// Parse a text file: `f` sees the UTF-8 text after an optional BOM, and
/// its spans are shifted past the BOM. Not UTF-8: a parse error.
pub fn with_text(bytes: &[u8], f: impl FnOnce(&str) -> Extracted) -> Extracted {
    let body = strip_bom(bytes);
    let off = bytes.len() - body.len();
    let Ok(text) = std::str::from_utf8(body) else {
        return Extracted {
            error: Some("not valid UTF-8".into()),
            ..Extracted::default()
        };
    };
    let mut ex = f(text);
    for r in &mut ex.refs {
        r.span = (r.span.0 + off, r.span.1 + off);
    }
    for l in &mut ex.strings {
        l.span = (l.span.0 + off, l.span.1 + off);
    }
    ex
}

pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b)
}

/// Line numbers for many offsets of one file: the newline positions once,
/// then a binary search per offset (a page with thousands of references
/// would otherwise be rescanned from the top for each).
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(bytes: &[u8]) -> Lines {
        Lines(memchr::memchr_iter(b'\n', bytes).collect())
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

/// Resolve a file's raw references against the set of site files.
pub fn resolve_refs(
    rel: &str,
    bytes: &[u8],
    raw: Vec<RawRef>,
    files: &HashSet<&str>,
    opts: &GraphOptions,
    missing: &mut Vec<Missing>,
) -> Vec<Ref> {
    let mut out = Vec::new();
    let lines = Lines::new(bytes);
    for r in raw {
        if r.module_specifier && resolve::is_bare_specifier(&r.url) {
            continue;
        }
        let Ok(res) = resolve::resolve(&r.url, rel, &opts.base_path, r.base_dir.as_deref()) else {
            continue;
        };
        let line = lines.line(r.span.0);
        let mut target = res.path;
        if !files.contains(target.as_str()) {
            // `/about` for `/about/index.html`, `/page` for `/page.html`.
            let dir_index = format!("{target}/index.html");
            let html = format!("{target}.html");
            if r.kind == RefKind::Link && files.contains(dir_index.as_str()) {
                target = dir_index;
            } else if r.kind == RefKind::Link && files.contains(html.as_str()) {
                target = html;
            } else {
                missing.push(Missing {
                    file: rel.to_string(),
                    line,
                    url: r.url.clone(),
                });
                continue;
            }
        }
        let raw_text = std::str::from_utf8(&bytes[r.span.0..r.span.1]).unwrap_or("");
        let (a, b) = resolve::written_name_span(raw_text);
        out.push(Ref {
            target,
            name_span: (r.span.0 + a, r.span.0 + b),
            line,
            kind: r.kind,
            integrity: r.integrity,
        });
    }
    out
}

/// File names (last path segment) → the one file of the site with that
/// name, `None` when several share it.
pub fn name_index<'a>(files: impl Iterator<Item = &'a str>) -> HashMap<&'a str, Option<&'a str>> {
    let mut m: HashMap<&str, Option<&str>> = HashMap::new();
    for f in files {
        let name = f.rsplit('/').next().unwrap_or(f);
        m.entry(name).and_modify(|v| *v = None).or_insert(Some(f));
    }
    m
}

/// The site files a string may name when a script uses it as a URL: as a
/// URL relative to the file holding it, root-relative (under the base
/// path), relative to the site root (a script runs in a page, often the
/// home page), or a bare file name that only one file of the site has.
pub fn string_targets(
    value: &str,
    from: &str,
    files: &HashSet<&str>,
    names: &HashMap<&str, Option<&str>>,
    opts: &GraphOptions,
) -> Vec<String> {
    let v = value.trim();
    let path = &v[..v.find(['?', '#']).unwrap_or(v.len())];
    if path.is_empty() || path.ends_with('/') || path.ends_with('.') {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: String| {
        if files.contains(p.as_str()) && !out.contains(&p) {
            out.push(p);
        }
    };
    if let Ok(r) = resolve::resolve(v, from, &opts.base_path, None) {
        add(r.path);
    }
    if !v.starts_with('/')
        && let Ok(r) = resolve::resolve(v, "", &opts.base_path, Some(""))
    {
        add(r.path);
    }
    if !path.contains('/') {
        let name = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        if let Some(Some(f)) = names.get(name.as_ref()) {
            add(f.to_string());
        }
    }
    out
}

/// Read and parse every HTML/CSS/JS/manifest/SVG/JSON file of the
/// inventory, in parallel.
pub fn build(inv: &Inventory, opts: &GraphOptions) -> crate::error::Result<Graph> {
    on_parser_threads(|| build_on_pool(inv, opts))?
}

/// Run `f` (which parses in parallel) on threads with a large stack: the
/// parsers recurse, and a deeply nested (but allowed) file must not
/// overflow a thread's stack.
pub fn on_parser_threads<T: Send>(f: impl FnOnce() -> T + Send) -> crate::error::Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .thread_name(|i| format!("cdnsync-parse-{i}"))
        .build()
        .map_err(|e| crate::error::Error::Internal(format!("cannot start parser threads: {e}")))?;
    Ok(pool.install(f))
}

fn build_on_pool(inv: &Inventory, opts: &GraphOptions) -> crate::error::Result<Graph> {
    let files: HashSet<&str> = inv.files.iter().map(|f| f.rel.as_str()).collect();
    let names = name_index(inv.files.iter().map(|f| f.rel.as_str()));
    let parsed: Vec<crate::error::Result<(String, FileRefs, Vec<Missing>)>> = inv
        .files
        .par_iter()
        .filter_map(|f| lang_of(&f.rel).map(|l| (f, l)))
        .map(|(f, lang)| {
            let bytes = std::fs::read(&f.path).map_err(|e| crate::error::Error::io(&f.path, e))?;
            if blake3::hash(&bytes).to_hex().as_str() != f.hash {
                return Err(crate::error::Error::FileChanged {
                    path: f.path.clone(),
                });
            }
            let ex = extract(lang, &bytes);
            let mut missing = Vec::new();
            let mut pins: Vec<Pin> = Vec::new();
            if !ex.strings.is_empty() {
                let lines = Lines::new(&bytes);
                for l in &ex.strings {
                    for target in string_targets(&l.value, &f.rel, &files, &names, opts) {
                        if !pins.iter().any(|p| p.target == target) {
                            pins.push(Pin {
                                target,
                                line: lines.line(l.span.0),
                            });
                        }
                    }
                }
            }
            let refs = if ex.error.is_some() {
                Vec::new()
            } else {
                resolve_refs(&f.rel, &bytes, ex.refs, &files, opts, &mut missing)
            };
            Ok((
                f.rel.clone(),
                FileRefs {
                    lang: Some(lang),
                    refs,
                    pins,
                    error: ex.error,
                },
                missing,
            ))
        })
        .collect();
    let mut g = Graph::default();
    for p in parsed {
        let (rel, refs, missing) = p?;
        g.missing.extend(missing);
        g.files.insert(rel, refs);
    }
    g.missing
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_newlines_before_the_offset() {
        let text = b"a\nbb\n\nccc\nd";
        let l = Lines::new(text);
        for off in 0..=text.len() + 2 {
            let naive = text[..off.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            assert_eq!(l.line(off), naive, "offset {off}");
        }
    }

    #[test]
    fn strings_resolve_to_the_files_a_script_may_load() {
        let files: HashSet<&str> = [
            "img/logo.svg",
            "lib/mode-x.js",
            "lib/util.js",
            "docs/util.js",
            "data/a b.json",
            "index.html",
        ]
        .into_iter()
        .collect();
        let names = name_index(files.iter().copied());
        let o = GraphOptions::default();
        let t = |v: &str, from: &str| string_targets(v, from, &files, &names, &o);
        assert_eq!(t("/img/logo.svg", "js/app.js"), ["img/logo.svg"]);
        assert_eq!(
            t("img/logo.svg?v=2", "js/app.js"),
            ["img/logo.svg"],
            "from the root"
        );
        assert_eq!(t("../img/logo.svg", "js/app.js"), ["img/logo.svg"]);
        assert_eq!(t("mode-x.js", "lib/loader.js"), ["lib/mode-x.js"]);
        assert_eq!(
            t("mode-x.js", "other/loader.js"),
            ["lib/mode-x.js"],
            "unique name"
        );
        assert!(
            t("util.js", "x/y.js").is_empty(),
            "two files share the name"
        );
        assert_eq!(t("/data/a%20b.json", "x.js"), ["data/a b.json"]);
        assert!(t("/docs/", "x.js").is_empty() && t("img/", "x.js").is_empty());
        assert!(t("https://cdn.example.com/img/logo.svg", "x.js").is_empty());
    }

    #[test]
    fn deep_or_huge_files_are_unparsable_not_a_crash() {
        for lang in [
            Lang::Js,
            Lang::Css,
            Lang::Json,
            Lang::Manifest,
            Lang::Html,
            Lang::Svg,
        ] {
            let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
            let ex = extract(lang, deep.as_bytes());
            assert!(ex.error.unwrap().contains("nested"), "{lang:?}");
        }
        let huge = vec![b' '; MAX_PARSE_BYTES + 1];
        assert!(extract(Lang::Js, &huge).error.unwrap().contains("larger"));
        // Just under the cap, on the parser threads: parsed.
        let r = on_parser_threads(|| {
            let js = format!(
                "const a = {}1{}; import './x.js';",
                "[".repeat(MAX_NESTING - 5),
                "]".repeat(MAX_NESTING - 5)
            );
            let css = format!(
                "{}a{{b:url(i.png)}}{}",
                "@media print{".repeat(MAX_NESTING - 5),
                "}".repeat(MAX_NESTING - 5)
            );
            (
                extract(Lang::Js, js.as_bytes()),
                extract(Lang::Css, css.as_bytes()),
            )
        })
        .unwrap();
        assert!(
            r.0.error.is_none() && r.0.refs.len() == 1,
            "{:?}",
            r.0.error
        );
        assert!(r.1.error.is_none(), "{:?}", r.1.error);
    }

    #[test]
    fn languages() {
        assert_eq!(lang_of("a/b.HTML"), Some(Lang::Html));
        assert_eq!(lang_of("x.mjs"), Some(Lang::Js));
        assert_eq!(lang_of("site.webmanifest"), Some(Lang::Manifest));
        assert_eq!(lang_of("data/manifest.json"), Some(Lang::Manifest));
        assert_eq!(lang_of("data/other.json"), Some(Lang::Json));
        assert_eq!(lang_of("i.svg"), Some(Lang::Svg));
        assert_eq!(lang_of("x.png"), None);
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Fragments that exercise the parsers' edge cases.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<img src=\"a.png\">".to_string()),
            Just("<IMG SRC=b.png>".to_string()),
            Just("<link rel=stylesheet href='c.css'>".to_string()),
            Just("<img srcset=\"a.png 1x, b,c.png 2x\">".to_string()),
            Just("<style>a{b:url(d.png)}</style>".to_string()),
            Just("<script type=module>import './e.js'</script>".to_string()),
            Just("<a href=\"x&amp;y.html\">".to_string()),
            Just("url(".to_string()),
            Just("@import \"f.css\";".to_string()),
            Just("import x from './g.js';".to_string()),
            Just("import('./h.js')".to_string()),
            Just("new URL('i.png', import.meta.url)".to_string()),
            Just("//# sourceMappingURL=j.map\n".to_string()),
            Just("\"'`".to_string()),
            Just("/* */ <!-- -->".to_string()),
            Just("\r\n\u{feff}é€".to_string()),
            "[ -~]{0,12}".prop_map(|s| s),
        ]
    }

    fn doc() -> impl Strategy<Value = String> {
        prop::collection::vec(fragment(), 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any input: no panic; every span lies inside the text on char
        /// boundaries; the written name lies inside its reference; and
        /// inserting a hash into every name changes nothing else.
        #[test]
        fn spans_are_sound_and_renames_touch_only_names(text in doc(), lang in prop_oneof![
            Just(Lang::Html), Just(Lang::Css), Just(Lang::Js), Just(Lang::Svg), Just(Lang::Manifest)
        ]) {
            let bytes = text.as_bytes();
            let ex = extract(lang, bytes);
            let mut splices = Vec::new();
            for r in &ex.refs {
                prop_assert!(r.span.0 <= r.span.1 && r.span.1 <= bytes.len());
                prop_assert!(text.is_char_boundary(r.span.0) && text.is_char_boundary(r.span.1));
                let raw = &text[r.span.0..r.span.1];
                let (a, b) = resolve::written_name_span(raw);
                prop_assert!(a <= b && b <= raw.len());
                splices.push(crate::fingerprint::Splice { start: r.span.0 + b, end: r.span.0 + b, text: ".0123abcd".into() });
            }
            splices.sort_by_key(|s| s.start);
            splices.dedup();
            let out = crate::fingerprint::apply(bytes, &splices);
            // Removing the inserted text gives the input back.
            let removed: Vec<u8> = {
                let mut v = Vec::with_capacity(bytes.len());
                let mut i = 0;
                let mut shift = 0;
                for s in &splices {
                    let pos = s.start + shift;
                    v.extend_from_slice(&out[i..pos]);
                    i = pos + s.text.len();
                    shift += s.text.len();
                }
                v.extend_from_slice(&out[i..]);
                v
            };
            prop_assert_eq!(removed, bytes.to_vec());
            // The identity map (no renames) leaves the bytes as they are.
            prop_assert_eq!(crate::fingerprint::apply(bytes, &[]), bytes.to_vec());
        }
    }
}
