//! Per-path policy: what is never uploaded (the secret deny-list), which class
//! a file belongs to (entry / bundler-hashed / plain) and the header settings
//! each file gets, with `cdnsync.toml` rules (globs, first match wins) on top.

use std::collections::{BTreeMap, HashSet};

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::headers::HeaderSettings;
use crate::mime;

/// Files never uploaded unless explicitly included (`--include-denied`, or a
/// rule with `include = true`): version control, secrets and credentials,
/// OS and editor droppings. The secret-file families follow the path
/// signatures of secret scanners (gitrob/shhgit file signatures, gitleaks'
/// `pkcs12-file` path rule): key stores, cloud, container, database and
/// package-manager credentials, infrastructure state, shell histories and
/// database dumps.
pub const DENY_LIST: &[&str] = &[
    // Version control.
    "**/.git/**",
    "**/.git",
    "**/.hg/**",
    "**/.svn/**",
    "**/.git-credentials",
    "**/.gitconfig",
    // Environment files.
    "**/.env",
    "**/.env.*",
    "**/.env-*",
    "**/*.env",
    "**/.envrc",
    // Private keys and key stores.
    "**/*.pem",
    "**/*.key",
    "**/*.p12",
    "**/*.pfx",
    "**/*.pkcs12",
    "**/*.ppk",
    "**/*.jks",
    "**/*.keystore",
    "**/*.kdbx",
    "**/*.ovpn",
    "**/id_rsa*",
    "**/id_dsa*",
    "**/id_ecdsa*",
    "**/id_ed25519*",
    "**/*_rsa",
    "**/*_dsa",
    "**/*_ecdsa",
    "**/*_ed25519",
    "**/.ssh/**",
    // Cloud and container credentials.
    "**/.aws/**",
    "**/.azure/**",
    "**/.gcloud/**",
    "**/.config/gcloud/**",
    "**/application_default_credentials.json",
    "**/.kube/config",
    "**/.docker/config.json",
    "**/.dockercfg",
    "**/.s3cfg",
    "**/.boto",
    "**/.vault-token",
    "**/credentials.json",
    "**/credentials.xml",
    "**/secrets.json",
    "**/secrets.yml",
    "**/secrets.yaml",
    // Package managers and tools.
    "**/.npmrc",
    "**/.yarnrc",
    "**/.yarnrc.yml",
    "**/.pypirc",
    "**/.gem/credentials",
    "**/.config/gh/hosts.yml",
    "**/.netrc",
    "**/_netrc",
    "**/.pgpass",
    "**/.my.cnf",
    // Infrastructure state.
    "**/*.tfstate",
    "**/*.tfstate.backup",
    "**/*.tfvars",
    "**/.terraform/**",
    // Shell and REPL histories.
    "**/.bash_history",
    "**/.zsh_history",
    "**/.sh_history",
    "**/.history",
    "**/.psql_history",
    "**/.mysql_history",
    "**/.python_history",
    "**/.node_repl_history",
    "**/.irb_history",
    // Database dumps.
    "**/*.sql",
    "**/*.sql.gz",
    "**/*.sql.bz2",
    "**/*.dump",
    "**/*.sqlite",
    "**/*.sqlite3",
    // Web server access control.
    "**/.htpasswd",
    "**/.htaccess",
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
    /// The CDN compresses on the fly (`--compress auto` behind CloudFront
    /// with compression on): the types it compresses are stored as they
    /// are, so viewers get brotli or gzip as they accept.
    pub edge_compresses: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            entry_cache_control: ENTRY_CACHE_CONTROL.into(),
            immutable_cache_control: IMMUTABLE_CACHE_CONTROL.into(),
            plain_cache_control: PLAIN_CACHE_CONTROL.into(),
            compress: true,
            edge_compresses: false,
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
    /// `_redirects` / `_headers` at the root: read as routing rules.
    Routing,
}

#[derive(Debug, Clone)]
struct Rule {
    spec: RuleSpec,
    matcher: GlobMatcher,
}

#[derive(Debug, Clone)]
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

    /// Whether a rule explicitly includes this path (it may be denied).
    pub fn explicitly_included(&self, rel: &str) -> bool {
        self.include_rule(rel)
            .is_some_and(|r| r.include == Some(true))
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

    /// The class a rule gives a path explicitly, if any.
    pub fn rule_class(&self, rel: &str) -> Option<FileClass> {
        self.first_match(rel).and_then(|r| r.class)
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
        let by_default = self.defaults.compress
            && !(self.defaults.edge_compresses && mime::edge_compresses(&content_type));
        let compress = rule.and_then(|r| r.compress).unwrap_or(by_default)
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

/// Whether a hash-looking segment is strong evidence on its own: hex (8–64)
/// with letters and digits, or base64url/base32 (8–22) with letters and a
/// digit, `_` or `-` inside.
fn strong_hash(seg: &str) -> bool {
    let has_digit = seg.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = seg.bytes().any(|b| b.is_ascii_alphabetic());
    let hex = (8..=64).contains(&seg.len())
        && (seg
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            || seg
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
    if hex {
        return has_digit && has_alpha;
    }
    let b64 = seg
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    let inner_sep = seg[1..seg.len().saturating_sub(1).max(1)]
        .bytes()
        .any(|c| c == b'_' || c == b'-');
    b64 && (8..=22).contains(&seg.len()) && has_alpha && (has_digit || inner_sep)
}

/// Segments bundlers put between a hash and the extension
/// (`index.md.C6xrKs9U.lean.js`, `main.3f9c0a1b.js.map`,
/// `main.3f9c0a1b.js.LICENSE.txt`).
const HASH_SUFFIXES: &[&str] = &[
    "map", "lean", "min", "chunk", "bundle", "module", "modern", "legacy", "esm", "iife", "umd",
    "worker", "entry", "client", "server", "js", "mjs", "cjs", "css", "LICENSE", "gz", "br",
];

/// The hash-like segment of a file name, if any: the last `-`/`.`
/// separated segment of the stem (after the extension and bundler suffixes
/// are stripped), or Rollup's 8-character base64url tail, which may itself
/// contain `-` or `_`, or a whole stem of 16+ hex characters (Next.js CSS).
pub fn hash_segment(file_name: &str) -> Option<&str> {
    let (mut stem, _ext) = file_name.rsplit_once('.')?;
    for _ in 0..3 {
        match stem.rsplit_once('.') {
            Some((s, suffix)) if !s.is_empty() && HASH_SUFFIXES.contains(&suffix) => stem = s,
            _ => break,
        }
    }
    if stem.is_empty() {
        return None;
    }
    let is_b64 = |t: &str| {
        t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    // `[name]-[hash]` / `[name].[hash]`: the segment after the last separator.
    if let Some(i) = stem.rfind(['-', '.']) {
        let tail = &stem[i + 1..];
        if i > 0 && (8..=64).contains(&tail.len()) && is_b64(tail) && strong_hash(tail) {
            return Some(tail);
        }
    }
    // Rollup / Vite: exactly 8 base64url characters after a separator.
    if stem.len() > 9 && stem.is_char_boundary(stem.len() - 9) {
        let (head, tail) = stem.split_at(stem.len() - 8);
        // A tail with `-` or `_` inside must look random (both cases), not
        // a slug such as `sync-444`.
        let random = tail.bytes().any(|b| b.is_ascii_uppercase())
            && tail.bytes().any(|b| b.is_ascii_lowercase());
        if head.ends_with(['-', '.']) && is_b64(tail) && (random || !tail.contains(['-', '_'])) {
            return Some(tail);
        }
    }
    if let Some(i) = stem.rfind(['-', '.']) {
        let tail = &stem[i + 1..];
        if i > 0 && (8..=64).contains(&tail.len()) && is_b64(tail) {
            return Some(tail);
        }
    }
    // A name that is only a long hash (`_next/static/css/a1b2c3d4e5f60718.css`).
    if stem.len() >= 16 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && strong_hash(stem) {
        return Some(stem);
    }
    None
}

/// Folders that bundlers document as immutable output as a whole.
const IMMUTABLE_FOLDERS: &[&str] = &["_next/static/", "_app/immutable/"];

/// What the build directory's names say about bundler output.
#[derive(Debug, Default, Clone)]
pub struct Bundled {
    /// Files that already carry a bundler hash (immutable, never renamed,
    /// bytes never rewritten).
    pub hashed: HashSet<String>,
    /// Folders where most files carry a hash: the bundler's output folder.
    /// Its other files keep their names and bytes too.
    pub folders: HashSet<String>,
}

impl Bundled {
    pub fn is_hashed(&self, rel: &str) -> bool {
        self.hashed.contains(rel)
    }

    /// In a bundler output folder (hashed or not).
    pub fn in_folder(&self, rel: &str) -> bool {
        let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        self.folders.contains(dir)
    }

    /// The bundler folder holding `rel`, if any.
    pub fn folder_of(&self, rel: &str) -> Option<&str> {
        let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        self.folders.get(dir).map(String::as_str)
    }
}

/// Which files already carry a bundler hash, and which folders are bundler
/// output. A name counts when its hash segment is strong evidence by
/// itself, when it has the same length as the strong hashes that make up
/// most candidates of its directory (bundlers use one hash length, and some
/// hashes happen to have no digit), or when it lies in a folder bundlers
/// document as immutable. A folder where at least 3 files, and at least
/// half of its files, carry a strong hash is bundler output as a whole.
pub fn detect_bundled<'a>(paths: impl IntoIterator<Item = &'a str>) -> Bundled {
    // dir -> len -> (strong count, candidates)
    type Lens<'a> = BTreeMap<usize, (usize, Vec<&'a str>)>;
    let mut by_dir: BTreeMap<&str, (usize, Lens<'a>)> = BTreeMap::new();
    let mut out = Bundled::default();
    for p in paths {
        let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
        let d = by_dir.entry(dir).or_default();
        d.0 += 1;
        if IMMUTABLE_FOLDERS.iter().any(|f| p.starts_with(f)) {
            out.hashed.insert(p.to_string());
        }
        if let Some(seg) = hash_segment(name) {
            let e = d.1.entry(seg.len()).or_insert((0, Vec::new()));
            if strong_hash(seg) {
                e.0 += 1;
                out.hashed.insert(p.to_string());
            }
            e.1.push(p);
        }
    }
    for (dir, (total, lens)) in &by_dir {
        let mut strong_in_dir = 0;
        for (strong, cands) in lens.values() {
            strong_in_dir += strong;
            if *strong >= 3 && strong * 2 >= cands.len() {
                out.hashed
                    .extend(cands.iter().map(std::string::ToString::to_string));
            }
        }
        if strong_in_dir >= 3 && strong_in_dir * 2 >= *total {
            out.folders.insert(dir.to_string());
        }
    }
    out
}

/// The files that already carry a bundler hash (see [`detect_bundled`]).
pub fn detect_hashed<'a>(paths: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    detect_bundled(paths).hashed
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
            ".git-credentials",
            ".dockercfg",
            ".docker/config.json",
            ".pgpass",
            ".s3cfg",
            ".boto",
            ".yarnrc.yml",
            "infra/prod.tfstate",
            "infra/prod.tfstate.backup",
            "putty.ppk",
            "release.jks",
            "bundle.pfx",
            ".bash_history",
            "home/.zsh_history",
            ".env-production",
            "prod.env",
            ".htaccess",
            ".htpasswd",
            "config/credentials.json",
            "secrets.json",
            "backup/db.sql",
            "backup/db.sql.gz",
            "deploy_rsa",
        ] {
            assert!(matches!(r.skip(p), Some(Skip::Denied { .. })), "{p}");
        }
        for p in [
            "index.html",
            "environment.js",
            "keys.html",
            "a/keyboard.png",
            "gitlog.txt",
            "environment.json",
            "docs/sql.html",
            "history.html",
            "img/credentials-screen.png",
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
    fn bundler_names_of_every_style() {
        let hashed = [
            // Vite / Rollup: 8 base64url, `-` or `_` inside.
            "assets/index-B4x9Tz2k.js",
            "assets/index-B4x-Tz2k.js",
            "assets/vendor-DgqH_Kq1.css",
            // VitePress: `.md.<hash>.js` and `.lean.js`.
            "assets/index.md.C6xrKs9U.lean.js",
            "assets/guide_getting-started.md.C6xrKs9U.js",
            "assets/chunks/theme.BXvyuW_w.js",
            "assets/inter-roman-latin.Di8DUHzh.woff2",
            // webpack / rspack: any number of `-` or `.` in the name, hex.
            "assets/images/docusaurus-plushie-banner-a60f7593abca1e3eef26a9afa244e4fb.jpeg",
            "assets/js/main.3f9c0a1b.js",
            "assets/js/1df93b7f.4f6a2c8e.js",
            "assets/js/runtime~main.3f9c0a1b.js",
            "static/js/main.3f9c0a1b.js.map",
            "static/js/main.3f9c0a1b.js.LICENSE.txt",
            "app-2c8f9e1d3b4a5f6e7d8c.js",
            // esbuild: base32, upper case.
            "main-5XK2ZQHD.js",
            // Next.js: chunks, CSS named by its hash, the build-id folder.
            "_next/static/chunks/pages/index-0123abcd4567ef89.js",
            "_next/static/css/0123abcd4567ef89.css",
            "_next/static/Xy3_buildIdAbc123/_buildManifest.js",
            "_app/immutable/chunks/index.js",
        ];
        let plain = [
            "report-20261126.pdf",
            "about-overview.html",
            "img/chapter1-overview.png",
            "img/logo.svg",
            "js/lib/component-library.js",
            "downloads/Annual Report 2023.pdf",
            "img/hero-480.png",
            "img/hero@2x.png",
            "fonts/inter-regular.woff2",
            "docs/getting-started.html",
            "docs/api/article-sync-444.html",
            "blog/post-2023-444/index.html",
        ];
        let b = detect_bundled(hashed.iter().chain(plain.iter()).copied());
        for h in hashed {
            assert!(b.is_hashed(h), "{h} not recognised");
        }
        for p in plain {
            assert!(!b.is_hashed(p), "{p} taken for bundler output");
        }
    }

    #[test]
    fn a_folder_of_hashed_files_is_bundler_output_as_a_whole() {
        let files = [
            "assets/a-B4x9Tz2k.js",
            "assets/b-C1a2b3c4.js",
            "assets/c-D9z8y7x6.css",
            "assets/logo.svg",
            "img/a.png",
            "img/b-C1a2b3c4.png",
        ];
        let b = detect_bundled(files.iter().copied());
        assert!(b.in_folder("assets/logo.svg"));
        assert!(!b.is_hashed("assets/logo.svg"), "no hash: not immutable");
        assert!(!b.in_folder("img/a.png"));
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
