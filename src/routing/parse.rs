//! The site's `_redirects` and `_headers` files (Netlify / Cloudflare Pages
//! syntax) read into routing rules, and the checks every rule passes,
//! whether from a file, `cdnsync.toml` or a release record read back.

use std::path::Path;

use super::{HeaderRule, Redirect, TEXT_MAX};

/// Statuses a rule may have: redirects, and 200 for a rewrite.
const STATUSES: [u16; 6] = [200, 301, 302, 303, 307, 308];

/// Headers an edge function may not set on a response (CloudFront's
/// read-only viewer-response headers) or that would break the transfer.
const READ_ONLY: [&str; 8] = [
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "warning",
    "via",
    "connection",
    "upgrade",
    "host",
];

/// Rules read from the site's routing files.
#[derive(Debug, Default, Clone)]
pub struct SiteRoutingFiles {
    pub redirects: Vec<Redirect>,
    pub headers: Vec<HeaderRule>,
    /// Which files were there (`_redirects`, `_headers`).
    pub found: Vec<&'static str>,
}

/// A path pattern: starts with `/`, `*` only as the last segment, no query
/// or fragment, no spaces or control characters.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("`{}`: a path pattern starts with `/`", show(p)));
    }
    if p.len() > TEXT_MAX || p.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("`{}`: not a path pattern", show(p)));
    }
    if p.contains(['?', '#']) {
        return Err(format!(
            "`{}`: query strings and fragments are not matched (only the path)",
            show(p)
        ));
    }
    let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    for (i, s) in segs.iter().enumerate() {
        if s.contains('*') && (*s != "*" || i + 1 != segs.len()) {
            return Err(format!(
                "`{}`: `*` must be a whole last segment (`/docs/*`)",
                show(p)
            ));
        }
        if s.starts_with(':') && s.len() == 1 {
            return Err(format!(
                "`{}`: a placeholder needs a name (`:slug`)",
                show(p)
            ));
        }
    }
    Ok(())
}

/// A redirect rule as the edge can run it.
pub fn check_redirect(r: &Redirect) -> Result<(), String> {
    check_pattern(&r.from)?;
    if !STATUSES.contains(&r.status) {
        return Err(format!(
            "`{}`: status {} is not supported (301, 302, 303, 307, 308, or 200 for a rewrite)",
            show(&r.from),
            r.status
        ));
    }
    let absolute = r.to.starts_with("https://") || r.to.starts_with("http://");
    if !(r.to.starts_with('/') || absolute)
        || r.to.len() > TEXT_MAX
        || r.to.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "`{}`: target `{}` is not a site path or an http(s) URL",
            show(&r.from),
            show(&r.to)
        ));
    }
    if absolute && r.status == 200 {
        return Err(format!(
            "`{}`: a rewrite (200) to another host is a proxy, which the edge function cannot do",
            show(&r.from)
        ));
    }
    for name in placeholders(&r.to) {
        let bound = if name == "splat" {
            r.from.ends_with("/*") || r.from == "*"
        } else {
            r.from.split('/').any(|s| s.strip_prefix(':') == Some(name))
        };
        if !bound {
            return Err(format!(
                "`{}`: target uses `:{name}`, which the path does not bind",
                show(&r.from)
            ));
        }
    }
    Ok(())
}

/// `:name`s used in a target (`https://` colons are not placeholders).
fn placeholders(to: &str) -> Vec<&str> {
    let path = to
        .strip_prefix("https://")
        .or_else(|| to.strip_prefix("http://"))
        .unwrap_or(to);
    path.split(':')
        .skip(1)
        .map(|s| {
            let n = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            &s[..n]
        })
        .filter(|n| !n.is_empty() && !n.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// A response header the edge can set.
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) {
        return Err(format!("`{}` is not a header name", show(name)));
    }
    if READ_ONLY.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("header `{name}` cannot be set at the edge"));
    }
    if value.len() > TEXT_MAX || value.chars().any(char::is_control) {
        return Err(format!(
            "header `{name}`: the value has control characters or is too long"
        ));
    }
    Ok(())
}

fn show(s: &str) -> String {
    crate::redact::printable(&s.chars().take(120).collect::<String>())
}

/// `_redirects`: `from to [status][!]` per line, `#` comments.
pub fn parse_redirects(text: &str) -> Result<Vec<Redirect>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.split_once('#').map_or(line, |(a, _)| a).trim();
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 2 {
            return Err((n, "expected `from to [status]`".into()));
        }
        if parts.len() > 3 || parts[1].contains('=') {
            return Err((
                n,
                "query, country, language and role conditions are not supported (only `from to [status]`)".into(),
            ));
        }
        let (status, force) = match parts.get(2) {
            None => (301, false),
            Some(s) => {
                let (num, force) = s.strip_suffix('!').map_or((*s, false), |x| (x, true));
                let status = num
                    .parse::<u16>()
                    .map_err(|_| (n, format!("`{s}` is not a status")))?;
                (status, force)
            }
        };
        let r = Redirect {
            from: parts[0].to_string(),
            to: parts[1].to_string(),
            status,
            force,
        };
        check_redirect(&r).map_err(|e| (n, e))?;
        out.push(r);
    }
    Ok(out)
}

/// `_headers`: a path pattern on its own line, then indented
/// `Name: value` lines; `#` comments.
pub fn parse_headers(text: &str) -> Result<Vec<HeaderRule>, (usize, String)> {
    let mut out: Vec<HeaderRule> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if !indented {
            check_pattern(line).map_err(|e| (n, e))?;
            out.push(HeaderRule {
                path: line.to_string(),
                headers: Vec::new(),
            });
            continue;
        }
        let Some(rule) = out.last_mut() else {
            return Err((n, "a header line before any path".into()));
        };
        let Some((name, value)) = line.split_once(':') else {
            return Err((n, "expected `Name: value`".into()));
        };
        let (name, value) = (name.trim(), value.trim());
        check_header(name, value).map_err(|e| (n, e))?;
        rule.headers.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Read the routing files the scan found (`_redirects`, `_headers` at
/// the root of the build directory): an error names the file and line.
pub fn read_site_files(dir: &Path, present: &[&str]) -> crate::error::Result<SiteRoutingFiles> {
    use crate::error::Error;
    let mut found = SiteRoutingFiles::default();
    for name in super::SITE_FILES
        .into_iter()
        .filter(|n| present.contains(n))
    {
        let path = dir.join(name);
        let text = match std::fs::read(&path) {
            Ok(b) if b.len() > 4 << 20 => {
                return Err(Error::input(&path, "over 4 MiB; not a routing file"));
            }
            Ok(b) => String::from_utf8(b).map_err(|_| Error::input(&path, "not UTF-8 text"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let at = |(line, msg): (usize, String)| Error::input(&path, format!("line {line}: {msg}"));
        if name == "_redirects" {
            found.redirects = parse_redirects(&text).map_err(at)?;
        } else {
            found.headers = parse_headers(&text).map_err(at)?;
        }
        found.found.push(name);
    }
    Ok(found)
}
