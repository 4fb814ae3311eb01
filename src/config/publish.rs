//! Settings of `publish` / `plan`: the target's (resolved once, in
//! [`TargetConfig::resolve`]) plus what to publish and how to transfer it.

use std::path::{Path, PathBuf};

use crate::cli::{CompressArg, PublishArgs};
use crate::error::{Error, Result};
use crate::routing::Routing;
use crate::rules::{Defaults, RuleSpec, Rules};

use super::{Loaded, TargetConfig, check_header_value, gc_options};

/// Validated settings for `publish` / `plan`.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Where, and how to reach it (shared with every other command).
    pub remote: TargetConfig,
    /// What is published and how it is named.
    pub site: SiteConfig,
    pub transfer: TransferConfig,
    /// `None` with --no-gc.
    pub gc: Option<crate::gc::GcOptions>,
    pub dry_run: bool,
    pub message: Option<String>,
    /// Source commit (GITHUB_SHA, else `git rev-parse HEAD` in DIR).
    pub commit: Option<String>,
    pub manifest_out: Option<PathBuf>,
    /// The configuration file read, if any.
    pub config_path: Option<PathBuf>,
}

/// What is published: the directory, its rules and naming.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub dir: PathBuf,
    pub rules: Rules,
    pub allow_empty: bool,
    pub fingerprint: bool,
    /// Every renamed asset also answers at its original URL.
    pub original_copies: bool,
    pub strict: bool,
    /// Always starts and ends with `/`.
    pub base_path: String,
    pub hash_length: usize,
    /// Precompression of text (`auto`: settled against the CDN).
    pub compress: CompressArg,
    /// Edge routing from `cdnsync.toml` (`None`: off); the site's
    /// `_redirects` / `_headers` are added when it is read.
    pub routing: Option<Routing>,
}

/// How the transfer runs and how much it may delete.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub concurrency: usize,
    pub multipart_threshold: u64,
    pub part_size: usize,
    /// Most stale objects a publish deletes without --max-delete.
    pub max_delete: usize,
}

/// `--concurrency` must be in 1..=1024.
pub(crate) fn check_concurrency(n: usize) -> Result<usize> {
    if n == 0 || n > 1024 {
        return Err(Error::Usage(format!(
            "concurrency must be between 1 and 1024, got {n}"
        )));
    }
    Ok(n)
}

impl PublishConfig {
    /// Layer flags/env over the file over defaults, and validate.
    pub fn resolve(args: &PublishArgs, dry_run: bool, loaded: &Loaded) -> Result<PublishConfig> {
        let file = &loaded.file;
        let remote = TargetConfig::resolve(&args.remote, loaded)?;
        let concurrency = check_concurrency(args.concurrency.or(file.concurrency).unwrap_or(32))?;
        let (multipart_threshold, part_size) =
            crate::transfer::transfer_sizes(args.multipart_threshold, args.part_size);
        let max_delete = args.max_delete.or(file.max_delete).unwrap_or(256);
        let gc = if args.no_gc {
            None
        } else {
            Some(gc_options(&args.retention, loaded, max_delete)?)
        };
        Ok(PublishConfig {
            site: SiteConfig::resolve(args, loaded)?,
            transfer: TransferConfig {
                concurrency,
                multipart_threshold,
                part_size,
                max_delete,
            },
            remote,
            gc,
            dry_run: dry_run || args.dry_run,
            message: args.message.clone(),
            commit: source_commit(&args.dir),
            manifest_out: args.manifest_out.clone(),
            config_path: loaded.path.clone(),
        })
    }
}

impl SiteConfig {
    fn resolve(args: &PublishArgs, loaded: &Loaded) -> Result<SiteConfig> {
        let file = &loaded.file;
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
            return Err(
                loaded.setting_error("base_path", format!("`{base_path}` is not a URL path"))
            );
        }
        let hash_length = args.hash_length.or(file.hash_length).unwrap_or(12);
        if !(8..=64).contains(&hash_length) {
            return Err(Error::Usage(format!(
                "hash length must be between 8 and 64, got {hash_length}"
            )));
        }
        Ok(SiteConfig {
            dir: args.dir.clone(),
            rules: rules(args, loaded)?,
            allow_empty: args.allow_empty,
            fingerprint: !args.no_fingerprint && file.fingerprint.unwrap_or(true),
            original_copies: !args.no_original_copies && file.original_copies.unwrap_or(true),
            strict: args.strict || file.strict.unwrap_or(false),
            base_path,
            hash_length,
            compress: compress(args.compress, loaded),
            routing: routing(args, loaded)?,
        })
    }
}

/// `[routing]`, `[[redirects]]` and `[[headers]]`, checked; `None` with
/// `--no-routing` or `enabled = false`.
fn routing(args: &PublishArgs, loaded: &Loaded) -> Result<Option<Routing>> {
    let file = &loaded.file;
    if args.no_routing || file.routing.enabled == Some(false) {
        return Ok(None);
    }
    let page = |name: &str, v: &Option<String>| -> Result<Option<String>> {
        let Some(v) = v.as_deref().map(|v| v.trim_start_matches('/')) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(Some(String::new()));
        }
        match crate::release::key_problem(v) {
            Some(p) => Err(loaded.setting_error(name, format!("`{v}` is {p}"))),
            None => Ok(Some(v.to_string())),
        }
    };
    let r = Routing {
        trailing_slash: file.routing.trailing_slash.unwrap_or_default(),
        clean_urls: file.routing.clean_urls.unwrap_or(false),
        spa: page("routing.spa", &file.routing.spa)?.filter(|s| !s.is_empty()),
        // `Some("")`: none, even when the site has a 404.html.
        not_found: page("routing.not_found", &file.routing.not_found)?,
        redirects: file
            .redirects
            .iter()
            .map(|r| crate::routing::Redirect {
                from: r.from.clone(),
                to: r.to.clone(),
                status: r.status.unwrap_or(301),
                force: r.force,
            })
            .collect(),
        headers: file
            .headers
            .iter()
            .map(|h| crate::routing::HeaderRule {
                path: h.path.clone(),
                headers: h
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect(),
    };
    for (i, x) in r.redirects.iter().enumerate() {
        crate::routing::parse::check_redirect(x)
            .map_err(|m| loaded.setting_error(&format!("redirects[{i}]"), m))?;
    }
    for (i, h) in r.headers.iter().enumerate() {
        crate::routing::parse::check_pattern(&h.path)
            .and_then(|()| {
                h.headers
                    .iter()
                    .try_for_each(|(n, v)| crate::routing::parse::check_header(n, v))
            })
            .map_err(|m| loaded.setting_error(&format!("headers[{i}]"), m))?;
    }
    Ok(Some(r))
}

/// How text is stored: `--compress` over the file over `auto`.
pub(crate) fn compress(arg: Option<CompressArg>, loaded: &Loaded) -> CompressArg {
    arg.or(loaded.file.compress).unwrap_or(CompressArg::Auto)
}

/// The file's cache-control defaults and rules, `--include-denied` first.
fn rules(args: &PublishArgs, loaded: &Loaded) -> Result<Rules> {
    let file = &loaded.file;
    let mut defaults = Defaults {
        // `auto` is settled against the CDN when publishing (gzip unless
        // every CloudFront behaviour serving the bucket compresses).
        compress: compress(args.compress, loaded) != CompressArg::None,
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
        check_header_value(v).map_err(|m| loaded.setting_error(name, m))?;
    }
    for (i, r) in file.rules.iter().enumerate() {
        for v in [&r.cache_control, &r.content_type, &r.content_disposition]
            .into_iter()
            .flatten()
        {
            check_header_value(v).map_err(|m| loaded.setting_error(&format!("rules[{i}]"), m))?;
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
    Rules::new(&specs, defaults).map_err(|m| loaded.setting_error("rules", m))
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
