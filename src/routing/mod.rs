//! Edge routing: what a request path answers on the edge (directory index,
//! trailing slash, clean URLs, SPA fallback, redirects, response headers),
//! decided once as data ([`Table`]) that both `serve` and the generated
//! CloudFront Functions act on, so the preview is what the edge does.

use std::collections::BTreeSet;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

pub mod function;
pub mod parse;

pub use parse::{SiteRoutingFiles, read_site_files};

/// The site-root files that configure routing; never uploaded.
pub const SITE_FILES: [&str; 2] = ["_redirects", "_headers"];

/// CloudFront's limit on a function's code.
pub const FUNCTION_MAX: usize = 10 * 1024;

/// Most redirect rules and header rules a record may hold.
const RULES_MAX: usize = 10_000;
/// Longest pattern, target, header name or value.
const TEXT_MAX: usize = 1024;

/// What `/dir` (no slash) does when `dir/index.html` exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrailingSlash {
    /// `/dir` → 301 `/dir/` (how S3 website hosting and most hosts answer).
    #[default]
    Add,
    /// `/dir/` → 301 `/dir`; `/dir` answers `dir/index.html`.
    Remove,
    /// Both answer `dir/index.html`.
    Keep,
}

impl std::fmt::Display for TrailingSlash {
    /// As written in `cdnsync.toml`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrailingSlash::Add => "add",
            TrailingSlash::Remove => "remove",
            TrailingSlash::Keep => "keep",
        })
    }
}

/// One redirect or rewrite rule (`_redirects` line or `[[redirects]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Path pattern: literal segments, `:name` (one segment), a final `*`.
    pub from: String,
    /// Site path or absolute `https://` URL; `:name` and `:splat` expand.
    pub to: String,
    /// 301, 302, 303, 307, 308, or 200 (a rewrite: never shadows a file).
    pub status: u16,
    /// Apply even where a file answers the path (`301!`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Response headers for the paths a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRule {
    /// Path pattern, as for redirects.
    pub path: String,
    /// `(name, value)` in order; a later rule's value wins for a name.
    pub headers: Vec<(String, String)>,
}

/// The routing settings of a release: from `cdnsync.toml` and the site's
/// `_redirects` / `_headers`. Stored in the release record (validated on
/// read), so a rollback restores the routing with the pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    #[serde(default)]
    pub trailing_slash: TrailingSlash,
    /// `/about` answers `about.html`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clean_urls: bool,
    /// Key of the single-page app's entry: unknown extension-less paths
    /// answer it with 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spa: Option<String>,
    /// Key of the page answering what is missing (status 404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderRule>,
}

/// The routing part of a release record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRecord {
    pub settings: Routing,
    /// blake3 of the generated functions: what the edge must run.
    pub digest: String,
}

/// What the edge acts on: the settings plus what it must know of the
/// release's files. Serialized into the functions as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Serialized `add`, `remove` or `keep`.
    pub ts: TrailingSlash,
    /// URL paths (no trailing slash; `""` for the root) with an
    /// `index.html`; `None` when they do not fit the function: every
    /// extension-less path is then taken for a directory.
    pub dirs: Option<BTreeSet<String>>,
    /// With clean URLs: `/about` for `about.html`.
    pub pages: BTreeSet<String>,
    /// SPA entry as a URL path (`/index.html`).
    pub spa: Option<String>,
    /// `[from, to, status]`, in order.
    pub redirects: Vec<(String, String, u16)>,
    /// `[pattern, [[name, value]…]]`, in order.
    pub headers: Vec<(String, Vec<(String, String)>)>,
}

/// What a request answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Answer {
    /// Serve this URL path (percent-encoded, as sent to the origin).
    Serve(String),
    /// Send the client elsewhere.
    Redirect(u16, String),
}

impl Routing {
    /// Every value, as untrusted input (a record read back) or checked
    /// config: the first problem found.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.redirects.len() > RULES_MAX || self.headers.len() > RULES_MAX {
            return Err(format!("more than {RULES_MAX} routing rules"));
        }
        for key in self.spa.iter().chain(&self.not_found) {
            if let Some(p) = crate::keys::key_problem(key) {
                return Err(format!(
                    "routing page `{}`: {p}",
                    crate::redact::printable(key)
                ));
            }
        }
        for r in &self.redirects {
            parse::check_redirect(r)?;
        }
        for h in &self.headers {
            parse::check_pattern(&h.path)?;
            for (n, v) in &h.headers {
                parse::check_header(n, v)?;
            }
        }
        Ok(())
    }

    /// The table the edge acts on for a release with these keys;
    /// `with_dirs` false leaves the directory list out (every
    /// extension-less path is then a directory), for when it does not fit.
    pub fn table<'a>(&self, keys: impl IntoIterator<Item = &'a str>, with_dirs: bool) -> Table {
        let mut dirs = BTreeSet::new();
        let mut pages = BTreeSet::new();
        for k in keys {
            if let Some(d) = k
                .strip_suffix("index.html")
                .filter(|d| d.is_empty() || d.ends_with('/'))
            {
                dirs.insert(
                    format!("/{}", d.trim_end_matches('/'))
                        .trim_end_matches('/')
                        .to_string(),
                );
            }
            if self.clean_urls
                && let Some(p) = k.strip_suffix(".html")
                && !p.is_empty()
                && !p.ends_with('/')
            {
                pages.insert(format!("/{p}"));
            }
        }
        Table {
            ts: self.trailing_slash,
            dirs: with_dirs.then_some(dirs),
            pages,
            spa: self.spa.as_ref().map(|s| format!("/{}", encode(s))),
            redirects: self
                .redirects
                .iter()
                .map(|r| (r.from.clone(), r.to.clone(), r.status))
                .collect(),
            headers: self
                .headers
                .iter()
                .map(|h| (h.path.clone(), h.headers.clone()))
                .collect(),
        }
    }

    /// Drop exact, unforced redirects whose path a file of the release
    /// answers (a file shadows a rule, as on Netlify): the rules dropped.
    pub fn shadowed(&mut self, keys: &BTreeSet<&str>) -> Vec<Redirect> {
        let (keep, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut self.redirects)
            .into_iter()
            .partition(|r| {
                r.force || r.from.contains([':', '*']) || {
                    let k = r.from.trim_start_matches('/');
                    let idx = format!("{}/index.html", k.trim_end_matches('/'));
                    !(keys.contains(k) || keys.contains(idx.trim_start_matches('/')))
                }
            });
        self.redirects = keep;
        dropped
    }
}

/// Characters `encodeURI` leaves as they are; everything else is
/// percent-encoded (the generated function uses `encodeURI`).
const URI: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b';')
    .remove(b',')
    .remove(b'/')
    .remove(b'?')
    .remove(b':')
    .remove(b'@')
    .remove(b'&')
    .remove(b'=')
    .remove(b'+')
    .remove(b'$')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'#');

/// `encodeURI`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, URI).to_string()
}

/// `decodeURIComponent`, or `None` where it throws (a `%` not followed by
/// two hex digits, bytes that are not UTF-8).
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'%'
            && !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return None;
        }
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The last segment has a `.`: a file name, never a directory, page or
/// SPA route.
fn has_extension(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|s| s.contains('.'))
}

/// Segments of a path for matching: a trailing `/` does not count.
pub(crate) fn segments(path: &str) -> Vec<&str> {
    let t = path.trim_start_matches('/');
    let t = t.strip_suffix('/').unwrap_or(t);
    if t.is_empty() {
        Vec::new()
    } else {
        t.split('/').collect()
    }
}

/// Placeholders bound by a pattern matching `path`, or `None`.
pub fn matches(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let pat = segments(pattern);
    let got = segments(path);
    let mut caps = Vec::new();
    for (i, p) in pat.iter().enumerate() {
        if *p == "*" {
            caps.push(("splat".to_string(), got.get(i..).unwrap_or(&[]).join("/")));
            return Some(caps);
        }
        let g = got.get(i)?;
        if let Some(name) = p.strip_prefix(':') {
            caps.push((name.to_string(), (*g).to_string()));
        } else if p != g {
            return None;
        }
    }
    (pat.len() == got.len()).then_some(caps)
}

/// `to` with `:name` / `:splat` replaced (captures encoded again).
fn expand(to: &str, caps: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = to;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let n = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        match caps.iter().rev().find(|(k, _)| k == &after[..n]) {
            Some((_, v)) if n > 0 => out.push_str(&encode(v)),
            _ => out.push_str(&rest[i..=i + n]),
        }
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// A site-relative Location that cannot leave the site: `//host/x` (or
/// `/\host/x`, which browsers read the same) is a protocol-relative URL
/// to another host, so leading slashes collapse to one.
fn one_slash(loc: String) -> String {
    let b = loc.as_bytes();
    if b.len() > 1 && b[0] == b'/' && (b[1] == b'/' || b[1] == b'\\') {
        format!("/{}", loc.trim_start_matches(['/', '\\']))
    } else {
        loc
    }
}

fn with_query(mut to: String, query: Option<&str>) -> String {
    if let Some(q) = query.filter(|q| !q.is_empty())
        && !to.contains('?')
    {
        to.push('?');
        to.push_str(q);
    }
    to
}

impl Table {
    fn dir_known(&self, path: &str) -> bool {
        match &self.dirs {
            Some(d) => d.contains(path.trim_end_matches('/')),
            None => !has_extension(path),
        }
    }

    /// A file, directory or page answers this path (rewrites never
    /// shadow one).
    fn names_something(&self, path: &str) -> bool {
        if path.ends_with('/') {
            return self.dir_known(path);
        }
        has_extension(path) || self.dir_known(path) || self.pages.contains(path)
    }

    /// What the edge answers for a request path (as sent: percent-encoded)
    /// and query string.
    pub fn route(&self, raw: &str, query: Option<&str>) -> Answer {
        let path = decode(raw).unwrap_or_else(|| raw.to_string());
        for (from, to, status) in &self.redirects {
            let Some(caps) = matches(from, &path) else {
                continue;
            };
            let target = expand(to, &caps);
            if *status != 200 {
                let loc = with_query(target, query);
                // A capture must not turn `/:splat` into `//evil.com`; a
                // rule written protocol-relative stays as written.
                let loc = if to.starts_with("//") {
                    loc
                } else {
                    one_slash(loc)
                };
                return Answer::Redirect(*status, loc);
            }
            if self.names_something(&path) {
                continue;
            }
            let dpath = decode(&target).unwrap_or_else(|| target.clone());
            return self.resolve(&target, &dpath, query);
        }
        self.resolve(raw, &path, query)
    }

    fn resolve(&self, raw: &str, path: &str, query: Option<&str>) -> Answer {
        if path.ends_with('/') {
            if self.ts == TrailingSlash::Remove && path != "/" && self.dir_known(path) {
                return Answer::Redirect(
                    301,
                    one_slash(with_query(raw.trim_end_matches('/').to_string(), query)),
                );
            }
            return Answer::Serve(format!("{raw}index.html"));
        }
        let dir = match &self.dirs {
            Some(d) => d.contains(path),
            None => !has_extension(path) && !self.pages.contains(path) && self.spa.is_none(),
        };
        if dir {
            if self.ts == TrailingSlash::Add {
                return Answer::Redirect(301, one_slash(with_query(format!("{raw}/"), query)));
            }
            return Answer::Serve(format!("{raw}/index.html"));
        }
        if self.pages.contains(path) {
            return Answer::Serve(format!("{raw}.html"));
        }
        if let Some(spa) = &self.spa
            && !has_extension(path)
        {
            return Answer::Serve(spa.clone());
        }
        Answer::Serve(raw.to_string())
    }

    /// Response headers for a served path (decoded): every rule matching
    /// it, or the page URL it stands for, in order; a later value wins.
    pub fn headers_for(&self, served: &str) -> Vec<(String, String)> {
        let mut alias = vec![served.to_string()];
        if let Some(d) = served.strip_suffix("index.html") {
            alias.push(d.to_string());
        }
        if let Some(p) = served.strip_suffix(".html") {
            alias.push(p.to_string());
        }
        if served.ends_with('/') {
            alias.push(format!("{served}index.html"));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for (pattern, hs) in &self.headers {
            if !alias.iter().any(|a| matches(pattern, a).is_some()) {
                continue;
            }
            for (n, v) in hs {
                out.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
                out.push((n.to_ascii_lowercase(), v.clone()));
            }
        }
        out
    }
}

/// The release's routing: `config` (from `cdnsync.toml`) with the site's
/// `_redirects` / `_headers` rules first, and the 404 page resolved
/// (`404.html` when the site has one). `has` says whether a file is in the
/// site. An error names the setting or file.
pub fn for_site(
    config: &Routing,
    files: SiteRoutingFiles,
    has: impl Fn(&str) -> bool,
) -> std::result::Result<Routing, String> {
    let mut r = config.clone();
    r.redirects = files.redirects.into_iter().chain(r.redirects).collect();
    r.headers = files.headers.into_iter().chain(r.headers).collect();
    r.not_found = match r.not_found.as_deref() {
        None => has("404.html").then(|| "404.html".to_string()),
        Some("") => None,
        Some(k) if has(k) => Some(k.to_string()),
        Some(k) => {
            return Err(format!(
                "routing.not_found: `{k}` is not a file of the site"
            ));
        }
    };
    if let Some(k) = r.spa.as_deref()
        && !has(k)
    {
        return Err(format!("routing.spa: `{k}` is not a file of the site"));
    }
    r.validate()?;
    Ok(r)
}

/// What the edge runs for `record` on a release with `keys`, under
/// `prefix` (the functions generated again from the record).
pub fn edge(
    record: &RoutingRecord,
    keys: &[&str],
    prefix: &str,
) -> std::result::Result<crate::cdn::EdgeRouting, String> {
    let c = function::compile(&record.settings, keys)?;
    Ok(edge_of(&c, &record.settings, prefix))
}

/// What the edge runs for functions already generated from `settings`.
pub fn edge_of(
    c: &function::Compiled,
    settings: &Routing,
    prefix: &str,
) -> crate::cdn::EdgeRouting {
    crate::cdn::EdgeRouting {
        digest: c.digest.clone(),
        request: c.request.clone(),
        response: c.response.clone(),
        not_found: settings
            .not_found
            .as_ref()
            .map(|k| format!("/{}", encode(k))),
        prefix: prefix.to_string(),
        with_base: function::with_base,
        kvs: c.kvs.clone(),
    }
}

#[cfg(test)]
mod tests;
