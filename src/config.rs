//! One validated, read-only configuration per run, layered as
//! command line > `CDNSYNC_*` environment > `cdnsync.toml` > defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{CompressArg, PublishArgs, SseArg, TargetArgs};
use crate::error::{Error, Result};
use crate::rules::{Defaults, RuleSpec, Rules};
use crate::store::Sse;
use crate::target::Target;

/// `cdnsync.toml`, as written. Unknown keys are errors.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub to: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: Option<usize>,
    /// `aes256`, `aws:kms` or `none`.
    pub sse: Option<String>,
    pub sse_kms_key_id: Option<String>,
    pub sse_bucket_key: Option<bool>,
    pub max_delete: Option<usize>,
    /// `gzip` or `none`.
    pub compress: Option<String>,
    /// Content-addressed asset names and reference rewriting (default true).
    pub fingerprint: Option<bool>,
    /// Also publish each renamed asset under its original path (default true).
    pub original_copies: Option<bool>,
    /// Missing references are errors (default false).
    pub strict: Option<bool>,
    /// URL path the site is served under (default `/`).
    pub base_path: Option<String>,
    /// Hex characters of the hash in asset names (default 12).
    pub hash_length: Option<usize>,
    /// CloudFront distributions to invalidate.
    #[serde(default)]
    pub distribution_ids: Vec<String>,
    pub max_invalidation_paths: Option<usize>,
    /// Reverse-proxy caches to purge (http-purge backend).
    #[serde(default)]
    pub purge_urls: Vec<String>,
    /// `purge` or `ban`.
    pub purge_method: Option<String>,
    pub purge_host: Option<String>,
    pub purge_concurrency: Option<usize>,
    pub purge_attempts: Option<u32>,
    /// Releases whose objects gc always keeps (default 5).
    pub keep: Option<usize>,
    /// Grace period of unreferenced objects, e.g. "7d" (default 7d).
    pub grace: Option<String>,
    #[serde(default)]
    pub cache_control: CacheControlConfig,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheControlConfig {
    /// Entry files (pages, robots.txt…).
    pub entry: Option<String>,
    /// Files whose names carry a content hash.
    pub immutable: Option<String>,
    /// Everything else.
    pub default: Option<String>,
}

/// Validated settings for `publish` / `plan`.
#[derive(Debug)]
pub struct PublishConfig {
    pub dir: PathBuf,
    pub target: Target,
    pub dry_run: bool,
    pub json: bool,
    pub concurrency: usize,
    pub sse: Sse,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub max_delete: usize,
    pub allow_http: bool,
    pub allow_empty: bool,
    pub rules: Rules,
    pub config_path: Option<PathBuf>,
    pub multipart_threshold: u64,
    pub part_size: usize,
    pub wait_lock: Option<std::time::Duration>,
    pub lock_ttl: std::time::Duration,
    /// `None` with --no-gc.
    pub gc: Option<crate::gc::GcOptions>,
    /// Target settings as the target-only commands see them (CDN included).
    pub remote: TargetConfig,
    pub message: Option<String>,
    /// Source commit (GITHUB_SHA, else `git rev-parse HEAD` in DIR).
    pub commit: Option<String>,
    pub fingerprint: bool,
    /// Every renamed asset also answers at its original URL.
    pub original_copies: bool,
    pub strict: bool,
    /// Always starts and ends with `/`.
    pub base_path: String,
    pub hash_length: usize,
    pub manifest_out: Option<PathBuf>,
}

pub const DEFAULT_CONFIG: &str = "cdnsync.toml";

/// Read and parse a config file; errors carry line and column.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    parse_file(path, &text)
}

pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Error::ConfigSyntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().replace('\n', " "),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

impl PublishConfig {
    /// Layer flags/env over the file over defaults, and validate.
    pub fn resolve(args: &PublishArgs, dry_run: bool) -> Result<PublishConfig> {
        let (file, config_path) = match &args.remote.config {
            Some(p) => (load_file(p)?, Some(p.clone())),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG);
                if p.is_file() {
                    (load_file(&p)?, Some(p))
                } else {
                    (FileConfig::default(), None)
                }
            }
        };
        let cfg_path = config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let setting = |name: &str, msg: String| Error::Config {
            path: cfg_path.clone(),
            message: format!("`{name}`: {msg}"),
        };

        let to = args.remote.to.clone().or(file.to.clone()).ok_or_else(|| {
            Error::Usage("no target: pass --to s3://bucket[/prefix] or a directory (or set `to` in cdnsync.toml)".into())
        })?;
        let target = Target::parse(&to)?;

        let sse_name = match args.remote.sse {
            Some(SseArg::Aes256) => "aes256".to_string(),
            Some(SseArg::Kms) => "aws:kms".to_string(),
            Some(SseArg::None) => "none".to_string(),
            None => file.sse.clone().unwrap_or_else(|| "aes256".into()),
        };
        let kms_key = args
            .remote
            .sse_kms_key_id
            .clone()
            .or(file.sse_kms_key_id.clone());
        let sse = match sse_name.to_ascii_lowercase().as_str() {
            "aes256" => Sse::Aes256,
            "aws:kms" | "kms" => Sse::Kms {
                key_id: kms_key.clone(),
                bucket_key: file.sse_bucket_key.unwrap_or(true),
            },
            "none" => Sse::None,
            other => {
                return Err(setting(
                    "sse",
                    format!("`{other}` is not one of aes256, aws:kms, none"),
                ));
            }
        };
        if kms_key.is_some() && !matches!(sse, Sse::Kms { .. }) {
            return Err(Error::Usage("--sse-kms-key-id needs --sse aws:kms".into()));
        }

        let compress = match args.compress {
            Some(CompressArg::Gzip) => true,
            Some(CompressArg::None) => false,
            None => match file.compress.as_deref() {
                None | Some("gzip") => true,
                Some("none") => false,
                Some(other) => {
                    return Err(setting(
                        "compress",
                        format!("`{other}` is not one of gzip, none"),
                    ));
                }
            },
        };

        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(32);
        if concurrency == 0 || concurrency > 1024 {
            return Err(Error::Usage(format!(
                "concurrency must be between 1 and 1024, got {concurrency}"
            )));
        }

        let mut defaults = Defaults {
            compress,
            ..Defaults::default()
        };
        if let Some(v) = &file.cache_control.entry {
            defaults.entry_cache_control = v.clone();
        }
        if let Some(v) = &file.cache_control.immutable {
            defaults.immutable_cache_control = v.clone();
        }
        if let Some(v) = &file.cache_control.default {
            defaults.plain_cache_control = v.clone();
        }
        for (name, v) in [
            ("cache_control.entry", &defaults.entry_cache_control),
            ("cache_control.immutable", &defaults.immutable_cache_control),
            ("cache_control.default", &defaults.plain_cache_control),
        ] {
            check_header_value(v).map_err(|m| setting(name, m))?;
        }
        for (i, r) in file.rules.iter().enumerate() {
            for v in [&r.cache_control, &r.content_type, &r.content_disposition]
                .into_iter()
                .flatten()
            {
                check_header_value(v).map_err(|m| setting(&format!("rules[{i}]"), m))?;
            }
        }
        // `--include-denied GLOB` is an include rule ahead of the file's.
        let specs: Vec<RuleSpec> = args
            .include_denied
            .iter()
            .map(|g| RuleSpec {
                glob: g.clone(),
                include: Some(true),
                ..Default::default()
            })
            .chain(file.rules.iter().cloned())
            .collect();
        let rules = Rules::new(&specs, defaults).map_err(|m| setting("rules", m))?;

        let endpoint_url = args
            .remote
            .endpoint_url
            .clone()
            .or(file.endpoint_url.clone());
        let allow_http = args.remote.allow_http;
        if let Some(e) = &endpoint_url {
            crate::store::s3::check_endpoint(e, allow_http)?;
        }

        let base_path = {
            let b = args
                .base_path
                .clone()
                .or(file.base_path.clone())
                .unwrap_or_else(|| "/".into());
            let t = b.trim_matches('/');
            if t.is_empty() {
                "/".to_string()
            } else {
                format!("/{t}/")
            }
        };
        if base_path.contains(['?', '#', ' ']) || base_path.contains("//") {
            return Err(setting(
                "base_path",
                format!("`{base_path}` is not a URL path"),
            ));
        }
        let hash_length = args.hash_length.or(file.hash_length).unwrap_or(12);
        if !(8..=64).contains(&hash_length) {
            return Err(Error::Usage(format!(
                "hash length must be between 8 and 64, got {hash_length}"
            )));
        }

        let (wait_lock, lock_ttl) = lock_settings(&args.remote)?;
        let (multipart_threshold, part_size) =
            crate::execute::transfer_sizes(args.multipart_threshold, args.part_size);
        let remote = TargetConfig::resolve(&args.remote)?;
        let max_delete = args.max_delete.or(file.max_delete).unwrap_or(256);
        let gc = if args.no_gc {
            None
        } else {
            Some(gc_options(&args.retention, &file, max_delete)?)
        };
        Ok(PublishConfig {
            remote,
            gc,
            wait_lock,
            lock_ttl,
            message: args.message.clone(),
            commit: source_commit(&args.dir),
            fingerprint: !args.no_fingerprint && file.fingerprint.unwrap_or(true),
            original_copies: !args.no_original_copies && file.original_copies.unwrap_or(true),
            strict: args.strict || file.strict.unwrap_or(false),
            base_path,
            hash_length,
            manifest_out: args.manifest_out.clone(),
            dir: args.dir.clone(),
            target,
            dry_run: dry_run || args.dry_run,
            json: args.remote.json,
            concurrency,
            sse,
            endpoint_url,
            region: args.remote.region.clone().or(file.region.clone()),
            max_delete: args.max_delete.or(file.max_delete).unwrap_or(256),
            allow_http,
            allow_empty: args.allow_empty,
            rules,
            config_path,
            multipart_threshold,
            part_size,
        })
    }
}

fn lock_settings(a: &TargetArgs) -> Result<(Option<std::time::Duration>, std::time::Duration)> {
    let parse = |flag: &str, v: &str| {
        crate::lock::parse_duration(v).map_err(|e| Error::Usage(format!("{flag}: {e}")))
    };
    let wait = a
        .wait_lock
        .as_deref()
        .map(|v| parse("--wait-lock", v))
        .transpose()?;
    let ttl = match a.lock_ttl.as_deref() {
        Some(v) => parse("--lock-ttl", v)?,
        None => std::time::Duration::from_secs(15 * 60),
    };
    Ok((wait, ttl))
}

/// The commit being published: `GITHUB_SHA` in Actions, else the git HEAD
/// of the directory (when it is in a work tree), with `-dirty` appended
/// when tracked files have uncommitted changes (as `git describe --dirty`).
fn source_commit(dir: &Path) -> Option<String> {
    if let Ok(sha) = std::env::var("GITHUB_SHA")
        && !sha.trim().is_empty()
    {
        return Some(sha.trim().to_string());
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let head = git(&["rev-parse", "HEAD"])
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| !o.stdout.iter().all(u8::is_ascii_whitespace));
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// `--keep` / `--grace` over the file's `keep` / `grace` over 5 / 7 days.
pub fn gc_options(
    r: &crate::cli::RetentionArgs,
    file: &FileConfig,
    max_delete: usize,
) -> Result<crate::gc::GcOptions> {
    let grace = match r.grace.clone().or(file.grace.clone()) {
        Some(g) => {
            crate::lock::parse_duration(&g).map_err(|e| Error::Usage(format!("--grace: {e}")))?
        }
        None => std::time::Duration::from_secs(7 * 86400),
    };
    Ok(crate::gc::GcOptions {
        keep: r.keep.or(file.keep).unwrap_or(5).max(1),
        grace,
        max_delete,
    })
}

/// The configuration file named by `--config`, else `./cdnsync.toml`, else empty.
pub fn file_for(a: &TargetArgs) -> Result<FileConfig> {
    match &a.config {
        Some(p) => load_file(p),
        None if Path::new(DEFAULT_CONFIG).is_file() => load_file(Path::new(DEFAULT_CONFIG)),
        None => Ok(FileConfig::default()),
    }
}

/// Settings of commands that act on a target without a build directory
/// (`releases`, `rollback`, `gc`, `unlock`).
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub target: Target,
    pub distribution_ids: Vec<String>,
    pub cdn_endpoint_url: Option<String>,
    pub max_invalidation_paths: usize,
    /// `--wait`: how long to wait for invalidations.
    pub cdn_wait: Option<std::time::Duration>,
    /// Reverse-proxy caches to purge, and how.
    pub purge_urls: Vec<String>,
    pub purge: crate::cdn::http_purge::PurgeOptions,
    pub sse: Sse,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    pub json: bool,
    pub wait_lock: Option<std::time::Duration>,
    pub lock_ttl: std::time::Duration,
}

impl TargetConfig {
    /// How to reach the target's bucket (`bucket` from its `s3://` URL).
    pub fn s3_options(&self, bucket: &str) -> crate::store::s3::S3Options {
        crate::store::s3::S3Options {
            bucket: bucket.to_string(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            allow_http: self.allow_http,
            ..Default::default()
        }
    }

    pub fn resolve(a: &TargetArgs) -> Result<TargetConfig> {
        let file = file_for(a)?;
        let to = a.to.clone().or(file.to.clone()).ok_or_else(|| {
            Error::Usage("no target: pass --to s3://bucket[/prefix] or a directory (or set `to` in cdnsync.toml)".into())
        })?;
        let target = Target::parse(&to)?;
        let kms = a.sse_kms_key_id.clone().or(file.sse_kms_key_id.clone());
        let sse = match (a.sse, file.sse.as_deref()) {
            (Some(SseArg::None), _) | (None, Some("none")) => Sse::None,
            (Some(SseArg::Kms), _) | (None, Some("aws:kms" | "kms")) => Sse::Kms {
                key_id: kms,
                bucket_key: file.sse_bucket_key.unwrap_or(true),
            },
            _ => Sse::Aes256,
        };
        let endpoint_url = a.endpoint_url.clone().or(file.endpoint_url.clone());
        if let Some(e) = &endpoint_url {
            crate::store::s3::check_endpoint(e, a.allow_http)?;
        }
        let (wait_lock, lock_ttl) = lock_settings(a)?;
        let distribution_ids: Vec<String> = if a.distribution_ids.is_empty() {
            file.distribution_ids.clone()
        } else {
            a.distribution_ids.clone()
        }
        .into_iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
        if !distribution_ids.is_empty() && matches!(target, Target::Local { .. }) {
            return Err(Error::Usage(
                "--distribution-id needs an s3:// target (a local directory has no CDN)".into(),
            ));
        }
        if let Some(d) = distribution_ids
            .iter()
            .find(|d| !d.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(Error::Usage(format!("invalid distribution id `{d}`")));
        }
        let purge_urls: Vec<String> = if a.purge_urls.is_empty() {
            file.purge_urls.clone()
        } else {
            a.purge_urls.clone()
        }
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
        for u in &purge_urls {
            crate::store::s3::check_endpoint(u, a.allow_http)
                .map_err(|e| Error::Usage(format!("--purge-url: {e}")))?;
        }
        let purge_method = match (a.purge_method, file.purge_method.as_deref()) {
            (Some(m), _) => m,
            (None, None | Some("purge")) => crate::cdn::http_purge::PurgeMethod::Purge,
            (None, Some("ban")) => crate::cdn::http_purge::PurgeMethod::Ban,
            (None, Some(other)) => {
                return Err(Error::Config {
                    path: a
                        .config
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
                    message: format!("`purge_method`: `{other}` is not one of purge, ban"),
                });
            }
        };
        let purge_concurrency = a.purge_concurrency.or(file.purge_concurrency).unwrap_or(8);
        if purge_concurrency == 0 || purge_concurrency > 256 {
            return Err(Error::Usage(format!(
                "purge concurrency must be between 1 and 256, got {purge_concurrency}"
            )));
        }
        let purge = crate::cdn::http_purge::PurgeOptions {
            method: purge_method,
            host: a.purge_host.clone().or(file.purge_host.clone()),
            concurrency: purge_concurrency,
            attempts: a
                .purge_attempts
                .or(file.purge_attempts)
                .unwrap_or(3)
                .clamp(1, 10),
            ..Default::default()
        };
        let cdn_wait = if a.wait {
            Some(match &a.wait_timeout {
                Some(t) => crate::lock::parse_duration(t)
                    .map_err(|e| Error::Usage(format!("--wait-timeout: {e}")))?,
                None => std::time::Duration::from_secs(600),
            })
        } else {
            None
        };
        Ok(TargetConfig {
            target,
            distribution_ids,
            cdn_endpoint_url: a.cdn_endpoint_url.clone(),
            max_invalidation_paths: a
                .max_invalidation_paths
                .or(file.max_invalidation_paths)
                .unwrap_or(15)
                .clamp(1, 3000),
            cdn_wait,
            purge_urls,
            purge,
            sse,
            endpoint_url,
            region: a.region.clone().or(file.region.clone()),
            allow_http: a.allow_http,
            json: a.json,
            wait_lock,
            lock_ttl,
        })
    }
}

impl PublishConfig {
    /// The target part of the settings.
    pub fn target_config(&self) -> &TargetConfig {
        &self.remote
    }
}

/// Header values must be printable ASCII (HTTP field rules).
fn check_header_value(v: &str) -> std::result::Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = v.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "`{v}` contains {c:?}, which is not allowed in an HTTP header"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let f = parse_file(
            Path::new("c.toml"),
            r#"
to = "s3://bucket/site"
region = "eu-west-1"
concurrency = 8
sse = "aws:kms"
sse_kms_key_id = "alias/site"
max_delete = 10
compress = "none"

[cache_control]
default = "public, max-age=60"

[[rules]]
glob = "downloads/**"
content_disposition = "attachment"
cache_control = "public, max-age=3600"

[[rules]]
glob = ".well-known/*.pem"
include = true
"#,
        )
        .unwrap();
        assert_eq!(f.to.as_deref(), Some("s3://bucket/site"));
        assert_eq!(f.rules.len(), 2);
        assert_eq!(
            f.cache_control.default.as_deref(),
            Some("public, max-age=60")
        );
    }

    #[test]
    fn unknown_keys_and_syntax_errors_have_line_and_column() {
        let e = parse_file(Path::new("c.toml"), "to = \"s3://b\"\nconcurency = 3\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.toml:2:1: "), "{s}");
        assert!(s.contains("concurency"), "{s}");
        let e =
            parse_file(Path::new("c.toml"), "[[rules]]\nglob = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3:1: "), "{e}");
        let e = parse_file(Path::new("c.toml"), "to = \n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:1:"), "{e}");
        assert!(matches!(e, Error::ConfigSyntax { .. }));
    }

    #[test]
    fn header_values_are_checked() {
        assert!(check_header_value("public, max-age=60").is_ok());
        assert!(check_header_value("").is_err());
        assert!(check_header_value("a\nb").is_err());
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// The complete example in docs/config.md parses, sets every key, and
    /// every key has its own section: the reference cannot drift from the code.
    #[test]
    fn docs_config_md_documents_every_key() {
        let doc = include_str!("../docs/config.md");
        let start = doc.find("```toml\n").expect("example block") + 8;
        let end = start + doc[start..].find("```").unwrap();
        let cfg = parse_file(Path::new("docs/config.md"), &doc[start..end])
            .unwrap_or_else(|e| panic!("the example does not parse: {e}"));
        // Destructured: a new key fails to compile here until it is documented.
        let FileConfig {
            to,
            region,
            endpoint_url,
            concurrency,
            sse,
            sse_kms_key_id,
            sse_bucket_key,
            max_delete,
            compress,
            fingerprint,
            original_copies,
            strict,
            base_path,
            hash_length,
            distribution_ids,
            max_invalidation_paths,
            purge_urls,
            purge_method,
            purge_host,
            purge_concurrency,
            purge_attempts,
            keep,
            grace,
            cache_control,
            rules,
        } = cfg;
        let set = [
            ("to", to.is_some()),
            ("region", region.is_some()),
            ("endpoint_url", endpoint_url.is_some()),
            ("concurrency", concurrency.is_some()),
            ("sse", sse.is_some()),
            ("sse_kms_key_id", sse_kms_key_id.is_some()),
            ("sse_bucket_key", sse_bucket_key.is_some()),
            ("max_delete", max_delete.is_some()),
            ("compress", compress.is_some()),
            ("fingerprint", fingerprint.is_some()),
            ("original_copies", original_copies.is_some()),
            ("strict", strict.is_some()),
            ("base_path", base_path.is_some()),
            ("hash_length", hash_length.is_some()),
            ("distribution_ids", !distribution_ids.is_empty()),
            ("max_invalidation_paths", max_invalidation_paths.is_some()),
            ("purge_urls", !purge_urls.is_empty()),
            ("purge_method", purge_method.is_some()),
            ("purge_host", purge_host.is_some()),
            ("purge_concurrency", purge_concurrency.is_some()),
            ("purge_attempts", purge_attempts.is_some()),
            ("keep", keep.is_some()),
            ("grace", grace.is_some()),
        ];
        for (key, present) in set {
            assert!(
                present,
                "the example in docs/config.md does not set `{key}`"
            );
            assert!(
                doc.contains(&format!("### `{key}`")),
                "docs/config.md has no section for `{key}`"
            );
        }
        let CacheControlConfig {
            entry,
            immutable,
            default,
        } = cache_control;
        assert!(entry.is_some() && immutable.is_some() && default.is_some());
        for key in ["entry", "immutable", "default"] {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "[cache_control] {key}"
            );
        }
        let r = &rules;
        assert!(r.iter().any(|r| r.include == Some(true)));
        assert!(r.iter().any(|r| r.include == Some(false)));
        assert!(r.iter().any(|r| r.class.is_some()));
        assert!(r.iter().any(|r| r.cache_control.is_some()));
        assert!(r.iter().any(|r| r.content_type.is_some()));
        assert!(r.iter().any(|r| r.content_disposition.is_some()));
        assert!(r.iter().any(|r| r.compress.is_some()));
        for key in [
            "glob",
            "include",
            "class",
            "cache_control",
            "content_type",
            "content_disposition",
            "compress",
        ] {
            assert!(doc.contains(&format!("| `{key}` |")), "[[rules]] {key}");
        }
        // And the rules themselves are valid.
        Rules::new(&rules, Defaults::default()).unwrap();
    }
}
