//! Per-path policy: what is never uploaded (the secret deny-list), which class
//! a file belongs to (entry / bundler-hashed / plain) and the header settings
//! each file gets, with `cdnsync.toml` rules (globs, first match wins) on top.

use std::collections::{BTreeMap, HashSet};

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::headers::HeaderSettings;
use crate::mime;

/// Files never uploaded unless a rule explicitly includes them: version
/// control, secrets, credentials, OS and editor droppings.
pub const DENY_LIST: &[&str] = &[
    "**/.git/**",
    "**/.git",
    "**/.hg/**",
    "**/.svn/**",
    "**/.aws/**",
    "**/.ssh/**",
    "**/.env",
    "**/.env.*",
    "**/.envrc",
    "**/*.pem",
    "**/*.key",
    "**/*.p12",
    "**/*.pfx",
    "**/id_rsa*",
    "**/id_dsa*",
    "**/id_ecdsa*",
    "**/id_ed25519*",
    "**/.npmrc",
    "**/.pypirc",
    "**/.netrc",
    "**/.htpasswd",
    "**/.DS_Store",
    "**/Thumbs.db",
    "**/desktop.ini",
    "**/*.swp",
    "**/*.swo",
    "**/*~",
    "**/.#*",
    "**/cdnsync.toml",
    "**/.cdnsync/**",
    "**/.cdnsync-store/**",
];

pub const ENTRY_CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
pub const PLAIN_CACHE_CONTROL: &str = "public, max-age=300";

/// How a file is published. Fingerprinted assets are added by the
/// fingerprint stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FileClass {
    /// A stable URL (pages, robots.txt, service worker…): revalidated on every request.
    Entry,
    /// Already carries a content hash in its name (bundler output): immutable.
    Hashed,
    /// Referenced by the site and given a content-addressed name by cdnsync
    /// (`app.css` → `app.3f9c0a1b2d4e.css`): immutable.
    Asset,
    /// Everything else: a short cache lifetime.
    Plain,
}

/// A rule as written in `cdnsync.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Glob over the path relative to DIR (`*` stays within a directory, `**` crosses).
    pub glob: String,
    /// `true`: publish even if on the deny-list. `false`: never publish.
    pub include: Option<bool>,
    pub class: Option<FileClass>,
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub compress: Option<bool>,
}

/// Defaults that rules refine.
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub entry_cache_control: String,
    pub immutable_cache_control: String,
    pub plain_cache_control: String,
    pub compress: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            entry_cache_control: ENTRY_CACHE_CONTROL.into(),
            immutable_cache_control: IMMUTABLE_CACHE_CONTROL.into(),
            plain_cache_control: PLAIN_CACHE_CONTROL.into(),
            compress: true,
        }
    }
}

/// What the filter decided for a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Skip {
    /// On the built-in deny-list (pattern given).
    Denied { pattern: String },
    /// Excluded by a rule (`include = false`).
    Excluded { glob: String },
}

#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    matcher: GlobMatcher,
}

#[derive(Debug)]
pub struct Rules {
    rules: Vec<Rule>,
    deny: GlobSet,
    entry: GlobSet,
    pub defaults: Defaults,
}

/// Compile a user glob: `*` does not cross `/`; a pattern without `/`
/// matches at any depth (like .gitignore).
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    let p = if pattern.contains('/') {
        pattern.trim_start_matches('/').to_string()
    } else {
        format!("**/{pattern}")
    };
    GlobBuilder::new(&p)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob `{pattern}`: {}", e.kind()))
}

fn set(patterns: &[&str]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(
            GlobBuilder::new(p)
                .literal_separator(true)
                .case_insensitive(true)
                .build()
                .expect("built-in glob"),
        );
    }
    b.build().expect("built-in glob set")
}

/// Stable-URL files (see DESIGN.md, "Local classification").
const ENTRY_PATTERNS: &[&str] = &[
    "**/*.html",
    "**/*.htm",
    "**/*.xhtml",
    "robots.txt",
    "humans.txt",
    "ads.txt",
    "app-ads.txt",
    "security.txt",
    "**/sitemap*.xml",
    "**/sitemap*.xml.gz",
    "favicon.ico",
    "**/sw.js",
    "**/service-worker.js",
    "**/*.webmanifest",
    "**/manifest.json",
    "**/browserconfig.xml",
    ".well-known/**",
    "CNAME",
    "_redirects",
    "_headers",
    "**/*.rss",
    "**/rss.xml",
    "**/atom.xml",
    "**/feed.xml",
    "**/feed.json",
    "**/index.xml",
];

impl Rules {
    pub fn new(specs: &[RuleSpec], defaults: Defaults) -> Result<Rules, String> {
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let matcher = compile_glob(&spec.glob)?;
            rules.push(Rule {
                spec: spec.clone(),
                matcher,
            });
        }
        Ok(Rules {
            rules,
            deny: set(DENY_LIST),
            entry: set(ENTRY_PATTERNS),
            defaults,
        })
    }

    fn first_match(&self, rel: &str) -> Option<&RuleSpec> {
        self.rules
            .iter()
            .find(|r| r.matcher.is_match(rel))
            .map(|r| &r.spec)
    }

    /// First rule that says include / exclude for this path.
    fn include_rule(&self, rel: &str) -> Option<&RuleSpec> {
        self.rules
            .iter()
            .find(|r| r.spec.include.is_some() && r.matcher.is_match(rel))
            .map(|r| &r.spec)
    }

    /// `None`: publish it. `Some(skip)`: do not, and why.
    pub fn skip(&self, rel: &str) -> Option<Skip> {
        if let Some(r) = self.include_rule(rel) {
            return if r.include == Some(true) {
                None
            } else {
                Some(Skip::Excluded {
                    glob: r.glob.clone(),
                })
            };
        }
        let hits = self.deny.matches(rel);
        hits.first().map(|&i| Skip::Denied {
            pattern: DENY_LIST[i].to_string(),
        })
    }

    /// Whether a directory can be pruned from the walk: it is denied and no
    /// rule could include anything below it.
    pub fn skip_dir(&self, rel_dir: &str) -> bool {
        let probe = format!("{rel_dir}/");
        if !self.deny.is_match(&probe) && !self.deny.is_match(rel_dir) {
            return false;
        }
        // A rule that includes something might match below this directory.
        !self.rules.iter().any(|r| r.spec.include == Some(true))
    }

    /// Built-in class for a path (before rules).
    pub fn builtin_class(&self, rel: &str, hashed: bool) -> FileClass {
        if self.entry.is_match(rel) {
            FileClass::Entry
        } else if hashed {
            FileClass::Hashed
        } else {
            FileClass::Plain
        }
    }

    /// The class and header settings of one file.
    pub fn settings(&self, rel: &str, hashed: bool) -> (FileClass, HeaderSettings) {
        self.settings_as(rel, hashed, false)
    }

    /// Settings of a file; `fingerprinted`: cdnsync renamed it, so it is an
    /// immutable asset whatever its built-in class.
    pub fn settings_as(
        &self,
        rel: &str,
        hashed: bool,
        fingerprinted: bool,
    ) -> (FileClass, HeaderSettings) {
        let rule = self.first_match(rel);
        let class = if fingerprinted {
            FileClass::Asset
        } else {
            rule.and_then(|r| r.class)
                .unwrap_or_else(|| self.builtin_class(rel, hashed))
        };
        let content_type = rule
            .and_then(|r| r.content_type.clone())
            .unwrap_or_else(|| mime::content_type(rel));
        let cache_control =
            rule.and_then(|r| r.cache_control.clone())
                .unwrap_or_else(|| match class {
                    FileClass::Entry => self.defaults.entry_cache_control.clone(),
                    FileClass::Hashed | FileClass::Asset => {
                        self.defaults.immutable_cache_control.clone()
                    }
                    FileClass::Plain => self.defaults.plain_cache_control.clone(),
                });
        let compress = rule
            .and_then(|r| r.compress)
            .unwrap_or(self.defaults.compress)
            && mime::is_compressible(&content_type);
        let content_disposition = rule.and_then(|r| r.content_disposition.clone());
        (
            class,
            HeaderSettings {
                content_type,
                cache_control,
                content_disposition,
                compress,
            },
        )
    }
}

/// Whether a hash-looking segment is strong evidence on its own: hex with
/// letters and digits, or base64url with letters and digits.
fn strong_hash(seg: &str) -> bool {
    let hex = seg.len() >= 8
        && seg.len() <= 64
        && seg
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let has_digit = seg.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = seg.bytes().any(|b| b.is_ascii_alphabetic());
    if hex {
        return has_digit && has_alpha;
    }
    seg.len() <= 16 && has_digit && has_alpha
}

/// The hash-like segment at the end of a file stem (`index-B4x9Tz2k` →
/// `B4x9Tz2k`, `app.3f9c0a1b` → `3f9c0a1b`), if any: 8–64 characters of
/// base64url after a `-` or `.`.
pub fn hash_segment(file_name: &str) -> Option<&str> {
    // Strip the extension (and a `.map` after it).
    let base = file_name.strip_suffix(".map").unwrap_or(file_name);
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => return None,
    };
    let bytes = stem.as_bytes();
    // Try separators from the right, preferring the longest valid tail of
    // base64url characters of length 8..=64 (Rollup hashes may contain `-`).
    let mut best = None;
    for (i, &b) in bytes.iter().enumerate().rev() {
        if b != b'-' && b != b'.' {
            continue;
        }
        let tail = &stem[i + 1..];
        if tail.len() < 8 {
            continue;
        }
        if tail.len() > 64 {
            break;
        }
        if tail
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            && i > 0
        {
            best = Some(tail);
        }
    }
    best
}

/// Which files already carry a bundler hash. A name counts when its hash
/// segment is strong evidence by itself, or when it has the same length as
/// the strong hashes that make up most candidates of its directory (bundlers
/// use one hash length, and some hashes happen to have no digit).
pub fn detect_hashed<'a>(paths: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    // dir -> len -> (strong count, candidates)
    let mut by_dir: BTreeMap<&str, BTreeMap<usize, (usize, Vec<&str>)>> = BTreeMap::new();
    let mut out = HashSet::new();
    for p in paths {
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        if let Some(seg) = hash_segment(name) {
            let e = by_dir
                .entry(dir)
                .or_default()
                .entry(seg.len())
                .or_insert((0, Vec::new()));
            if strong_hash(seg) {
                e.0 += 1;
                out.insert(p.to_string());
            }
            e.1.push(p);
        }
    }
    for lens in by_dir.values() {
        for (strong, cands) in lens.values() {
            if *strong >= 3 && strong * 2 >= cands.len() {
                out.extend(cands.iter().map(|s| s.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(specs: &[RuleSpec]) -> Rules {
        Rules::new(specs, Defaults::default()).unwrap()
    }

    #[test]
    fn deny_list() {
        let r = rules(&[]);
        for p in [
            ".git/config",
            "sub/.git/HEAD",
            ".env",
            ".env.production",
            "certs/server.pem",
            "tls.key",
            "home/id_rsa",
            "id_ed25519.pub",
            ".npmrc",
            ".aws/credentials",
            "img/.DS_Store",
            "Thumbs.db",
            "index.html.swp",
            "notes.txt~",
            "cdnsync.toml",
        ] {
            assert!(matches!(r.skip(p), Some(Skip::Denied { .. })), "{p}");
        }
        for p in [
            "index.html",
            "environment.js",
            "keys.html",
            "a/keyboard.png",
            "gitlog.txt",
        ] {
            assert_eq!(r.skip(p), None, "{p}");
        }
    }

    #[test]
    fn include_rule_overrides_deny_and_exclude_rule_skips() {
        let r = rules(&[
            RuleSpec {
                glob: ".well-known/*.pem".into(),
                include: Some(true),
                ..Default::default()
            },
            RuleSpec {
                glob: "drafts/**".into(),
                include: Some(false),
                ..Default::default()
            },
        ]);
        assert_eq!(r.skip(".well-known/pub.pem"), None);
        assert!(matches!(r.skip("x.pem"), Some(Skip::Denied { .. })));
        assert!(matches!(
            r.skip("drafts/a.html"),
            Some(Skip::Excluded { .. })
        ));
    }

    #[test]
    fn classes_and_cache_control() {
        let r = rules(&[]);
        let (c, h) = r.settings("index.html", false);
        assert_eq!(c, FileClass::Entry);
        assert_eq!(h.cache_control, ENTRY_CACHE_CONTROL);
        assert!(h.compress);
        for p in [
            "robots.txt",
            "sitemap.xml",
            "sitemap-2.xml",
            "favicon.ico",
            "sw.js",
            "service-worker.js",
            "site.webmanifest",
            ".well-known/security.txt",
            "docs/a/b.htm",
        ] {
            assert_eq!(r.settings(p, false).0, FileClass::Entry, "{p}");
        }
        let (c, h) = r.settings("assets/index-B4x9Tz2k.js", true);
        assert_eq!(c, FileClass::Hashed);
        assert_eq!(h.cache_control, IMMUTABLE_CACHE_CONTROL);
        let (c, h) = r.settings("img/logo.png", false);
        assert_eq!(c, FileClass::Plain);
        assert_eq!(h.cache_control, PLAIN_CACHE_CONTROL);
        assert!(!h.compress);
        // robots.txt only at the root counts as an entry
        assert_eq!(r.settings("docs/robots.txt", false).0, FileClass::Plain);
    }

    #[test]
    fn rules_first_match_wins() {
        let r = rules(&[
            RuleSpec {
                glob: "downloads/*.pdf".into(),
                cache_control: Some("public, max-age=3600".into()),
                content_disposition: Some("attachment".into()),
                ..Default::default()
            },
            RuleSpec {
                glob: "*.pdf".into(),
                cache_control: Some("no-store".into()),
                ..Default::default()
            },
            RuleSpec {
                glob: "*.css".into(),
                compress: Some(false),
                content_type: Some("text/css".into()),
                class: Some(FileClass::Entry),
                ..Default::default()
            },
        ]);
        let (_, h) = r.settings("downloads/a.pdf", false);
        assert_eq!(h.cache_control, "public, max-age=3600");
        assert_eq!(h.content_disposition.as_deref(), Some("attachment"));
        let (_, h) = r.settings("other/a.pdf", false);
        assert_eq!(h.cache_control, "no-store");
        let (c, h) = r.settings("x/site.css", false);
        assert_eq!(c, FileClass::Entry);
        assert!(!h.compress);
        assert_eq!(h.content_type, "text/css");
        assert_eq!(h.cache_control, ENTRY_CACHE_CONTROL);
    }

    #[test]
    fn invalid_glob_is_an_error() {
        let e = Rules::new(
            &[RuleSpec {
                glob: "a/[b".into(),
                ..Default::default()
            }],
            Defaults::default(),
        )
        .unwrap_err();
        assert!(e.contains("a/[b"), "{e}");
    }

    #[test]
    fn hash_segments() {
        assert_eq!(hash_segment("index-B4x9Tz2k.js"), Some("B4x9Tz2k"));
        assert_eq!(hash_segment("app.3f9c0a1b.css"), Some("3f9c0a1b"));
        assert_eq!(hash_segment("index-B4x-Tz2k.js"), Some("B4x-Tz2k"));
        assert_eq!(hash_segment("index-B4x9Tz2k.js.map"), Some("B4x9Tz2k"));
        assert_eq!(hash_segment("logo.png"), None);
        assert_eq!(hash_segment("short-abc.js"), None);
    }

    #[test]
    fn detects_bundler_hashes_with_directory_consensus() {
        let paths = [
            "assets/index-B4x9Tz2k.js",
            "assets/vendor-C1a2b3c4.js",
            "assets/Route12-D9z8y7x6.js",
            "assets/Route13-AbCdEfGh.js", // no digit, same length as the others
            "app.3f9c0a1b.css",
            "report-20261126.pdf", // date, not a hash
            "about-overview.html", // a word
            "img/chapter1-overview.png",
        ];
        let h = detect_hashed(paths.iter().copied());
        assert!(h.contains("assets/index-B4x9Tz2k.js"));
        assert!(h.contains("assets/Route13-AbCdEfGh.js"));
        assert!(h.contains("app.3f9c0a1b.css"));
        assert!(!h.contains("report-20261126.pdf"));
        assert!(!h.contains("about-overview.html"));
        assert!(!h.contains("img/chapter1-overview.png"));
    }
}
