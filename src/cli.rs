//! Command-line interface (clap derive). Every flag can also come from a
//! `CDNSYNC_*` environment variable; values left unset here fall back to
//! `cdnsync.toml`, then to defaults (see `config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cdnsync",
    version,
    about = "Publish a static build directory to S3 behind a CDN: encrypted, incremental, with the right headers",
    after_help = "Examples:\n  cdnsync publish ./dist --to s3://my-bucket/site\n  cdnsync publish ./dist --to ./public          # local directory target, no AWS needed\n  cdnsync plan ./dist --to s3://my-bucket --json  # what would change"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print only errors (no progress, no summary).
    #[arg(long, short, global = true, env = "CDNSYNC_QUIET")]
    pub quiet: bool,

    /// More logging (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload DIR to the target: only what changed, then record a release.
    #[command(
        after_help = "Examples:\n  cdnsync publish ./dist --to s3://my-bucket/site\n  cdnsync publish ./dist --to s3://my-bucket --sse aws:kms --sse-kms-key-id alias/site\n  cdnsync publish ./dist --to ./public --dry-run"
    )]
    Publish(PublishArgs),
    /// Show what `publish` would do (same as `publish --dry-run`).
    #[command(
        after_help = "Examples:\n  cdnsync plan ./dist --to s3://my-bucket/site\n  cdnsync plan ./dist --to s3://my-bucket/site --json\n  cdnsync plan ./dist --to s3://my-bucket/site --format markdown > plan.md   # for a PR comment"
    )]
    Plan(PublishArgs),
    /// Preview a local-directory target with the headers S3 + CloudFront would send.
    #[command(
        after_help = "Examples:\n  cdnsync publish ./dist --to ./public && cdnsync serve ./public\n  cdnsync serve ./public --port 0   # any free port"
    )]
    Serve(ServeArgs),
    /// List the releases recorded in the target (`*` marks the live one).
    #[command(
        after_help = "Examples:\n  cdnsync releases --to s3://my-bucket/site\n  cdnsync releases --to ./public --json"
    )]
    Releases(TargetArgs),
    /// Make an earlier release live again, by server-side copies (no local files, no uploads).
    #[command(
        after_help = "Examples:\n  cdnsync rollback --to s3://my-bucket/site            # to the previous release\n  cdnsync rollback --to s3://my-bucket/site 20261126T134403.123Z-1a2b3c4d"
    )]
    Rollback(RollbackArgs),
    /// Delete content-addressed objects no kept release needs, after a grace period.
    #[command(
        after_help = "Examples:\n  cdnsync gc --to s3://my-bucket/site --dry-run\n  cdnsync gc --to s3://my-bucket/site --keep 10 --grace 14d"
    )]
    Gc(GcArgs),
    /// Move existing user uploads (a directory tree) into S3: verified, resumable, shardable.
    #[command(
        after_help = "Examples:\n  cdnsync migrate /var/www/uploads --to s3://media/uploads --base-url https://example.com/uploads/ --cdn-url https://cdn.example.com/uploads/\n  cdnsync migrate /var/www/uploads --to s3://media/uploads --shard 2/4   # machine 3 of 4"
    )]
    Migrate(MigrateArgs),
    /// Show the target's publish lock; with --force, remove it.
    #[command(
        after_help = "Examples:\n  cdnsync unlock --to s3://my-bucket/site\n  cdnsync unlock --to s3://my-bucket/site --force"
    )]
    Unlock(UnlockArgs),
    /// Check the bucket (and distribution) behind a target: private, encrypted, TLS-only, OAC, HTTPS.
    #[command(
        after_help = "Exit codes: 0 all good, 10 warnings, 11 failures (see --help of each finding's fix).\n\nExamples:\n  cdnsync doctor --to s3://my-bucket/site\n  cdnsync doctor --to s3://my-bucket/site --distribution-id E2EXAMPLE --json"
    )]
    Doctor(TargetArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  cdnsync completions bash > /etc/bash_completion.d/cdnsync\n  cdnsync completions zsh > \"${fpath[1]}/_cdnsync\"\n  cdnsync completions fish > ~/.config/fish/completions/cdnsync.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory.
    #[command(
        after_help = "Examples:\n  cdnsync man | man -l -\n  cdnsync man --dir /usr/local/share/man/man1"
    )]
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write cdnsync.1 and cdnsync-<command>.1 into this directory instead of printing cdnsync.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How `publish` and `plan` print their report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A short summary for people (the default).
    Human,
    /// One JSON document (same as --json).
    Json,
    /// A Markdown table, fit for a pull-request comment.
    Markdown,
}

#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// Release to restore (default: the one before the live release).
    pub id: Option<String>,
    #[command(flatten)]
    pub remote: TargetArgs,
    /// Show what would change; change nothing.
    #[arg(long, env = "CDNSYNC_DRY_RUN")]
    pub dry_run: bool,
}

/// Retention settings shared by `gc` and `publish`.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Newest releases whose objects are always kept (default 5).
    #[arg(long, env = "CDNSYNC_KEEP", value_name = "N")]
    pub keep: Option<usize>,
    /// How long unreferenced objects stay, counted from the first release that dropped them (default 7d).
    #[arg(long, env = "CDNSYNC_GRACE", value_name = "DURATION")]
    pub grace: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub remote: TargetArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Show what would be deleted; delete nothing.
    #[arg(long, env = "CDNSYNC_DRY_RUN")]
    pub dry_run: bool,
    /// Most objects one run may delete (default 256); over it, none are deleted.
    #[arg(long, env = "CDNSYNC_MAX_DELETE", value_name = "N")]
    pub max_delete: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The directory of existing uploads.
    pub src: PathBuf,
    #[command(flatten)]
    pub remote: TargetArgs,
    /// Where the files are served today (for url-map.csv and the nginx redirects).
    #[arg(long, env = "CDNSYNC_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Where they will be served from (the CDN).
    #[arg(long, env = "CDNSYNC_CDN_URL", value_name = "URL")]
    pub cdn_url: Option<String>,
    /// Directory for url-map.csv and nginx-redirects.conf (default: current directory).
    #[arg(long, env = "CDNSYNC_MAP_DIR", value_name = "DIR")]
    pub map_dir: Option<PathBuf>,
    /// Parallel requests (default 32).
    #[arg(long, env = "CDNSYNC_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Migrate only shard I of N (by key hash), e.g. 2/4; many machines, no coordinator.
    #[arg(long, env = "CDNSYNC_SHARD", value_name = "I/N")]
    pub shard: Option<String>,
    /// Migrate files matching this glob although they are on the secret
    /// deny-list (repeatable).
    #[arg(long, value_name = "GLOB", value_delimiter = ',')]
    pub include_denied: Vec<String>,

    /// Serve every type inline, not only images, media, fonts, PDF and
    /// plain text (HTML, SVG, XML, JS as documents: only if their origin is trusted).
    #[arg(long, env = "CDNSYNC_INLINE")]
    pub inline: bool,
    /// Cache-Control of migrated objects.
    #[arg(
        long,
        env = "CDNSYNC_CACHE_CONTROL",
        default_value = "public, max-age=86400"
    )]
    pub cache_control: String,
    /// Show what would be uploaded; write nothing.
    #[arg(long, env = "CDNSYNC_DRY_RUN")]
    pub dry_run: bool,
    /// Upload nothing: re-check every file against its remote copy (size, content hash) and report mismatches.
    #[arg(long, conflicts_with = "delete_source")]
    pub verify: bool,
    /// Upload nothing: delete each local file whose remote copy is verified identical (a separate, explicit step).
    #[arg(long)]
    pub delete_source: bool,
    /// At most this many files per second.
    #[arg(long, env = "CDNSYNC_RATE", value_name = "OPS")]
    pub rate: Option<f64>,
    /// State journal of migrated files, for fast reruns (default: in the user's cache dir).
    #[arg(long, env = "CDNSYNC_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Keep no state journal: every rerun lists the bucket.
    #[arg(long, conflicts_with = "state")]
    pub no_state: bool,
    /// Where to write the per-file failure report (default cdnsync-migrate-report.json, written only on failures).
    #[arg(long, env = "CDNSYNC_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[arg(
        long,
        env = "CDNSYNC_MULTIPART_THRESHOLD",
        value_name = "BYTES",
        hide = true
    )]
    pub multipart_threshold: Option<u64>,
    #[arg(long, env = "CDNSYNC_PART_SIZE", value_name = "BYTES", hide = true)]
    pub part_size: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub remote: TargetArgs,
    /// Remove the lock even though another run may hold it.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The local target directory (as written by `cdnsync publish DIR --to it`).
    pub dir: PathBuf,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "CDNSYNC_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "CDNSYNC_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SseArg {
    /// SSE-S3 (the default).
    #[value(name = "aes256")]
    Aes256,
    /// SSE-KMS, optionally with --sse-kms-key-id.
    #[value(name = "aws:kms", alias = "kms")]
    Kms,
    /// No encryption header: only for S3-compatible stores that reject it.
    #[value(name = "none")]
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressArg {
    /// Identity where every CloudFront behaviour serving the bucket
    /// compresses (the edge negotiates brotli/gzip), else gzip (the default).
    Auto,
    /// gzip text types when it saves at least 10%.
    Gzip,
    /// Never compress.
    None,
}

/// Where to publish (shared by every command that talks to a target).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Where to publish: s3://bucket[/prefix], file:///abs/path or a directory.
    #[arg(long, env = "CDNSYNC_TO", value_name = "TARGET")]
    pub to: Option<String>,
    /// Print one JSON report on stdout instead of the human summary.
    #[arg(long, env = "CDNSYNC_JSON")]
    pub json: bool,
    /// Server-side encryption for every object (default aes256).
    #[arg(long, env = "CDNSYNC_SSE", value_enum, ignore_case = true)]
    pub sse: Option<SseArg>,
    /// KMS key id, ARN or alias for --sse aws:kms.
    #[arg(long, env = "CDNSYNC_SSE_KMS_KEY_ID", value_name = "ID")]
    pub sse_kms_key_id: Option<String>,
    /// S3-compatible endpoint (also AWS_ENDPOINT_URL). Path-style addressing is used.
    #[arg(long, env = "CDNSYNC_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region (also AWS_REGION / the profile).
    #[arg(long, env = "CDNSYNC_REGION", value_name = "R")]
    pub region: Option<String>,
    /// Configuration file (default: ./cdnsync.toml when present).
    #[arg(long, env = "CDNSYNC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow a plain-http endpoint that is not on this machine.
    #[arg(long, env = "CDNSYNC_ALLOW_HTTP")]
    pub allow_http: bool,

    /// CloudFront distribution to invalidate after the release goes live (repeatable).
    #[arg(
        long = "distribution-id",
        env = "CDNSYNC_DISTRIBUTION_ID",
        value_name = "ID",
        value_delimiter = ','
    )]
    pub distribution_ids: Vec<String>,

    /// CloudFront endpoint (an emulator); default: AWS (or AWS_ENDPOINT_URL_CLOUDFRONT).
    #[arg(
        long,
        env = "CDNSYNC_CDN_ENDPOINT_URL",
        value_name = "URL",
        hide = true
    )]
    pub cdn_endpoint_url: Option<String>,

    /// Reverse-proxy cache (Varnish, nginx…) to purge the changed paths on, e.g. http://varnish:6081 (repeatable).
    #[arg(
        long = "purge-url",
        env = "CDNSYNC_PURGE_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub purge_urls: Vec<String>,

    /// PURGE each path (default) or BAN with a path regex (wildcards, query variants).
    #[arg(long, env = "CDNSYNC_PURGE_METHOD", value_enum, ignore_case = true)]
    pub purge_method: Option<crate::cdn::http_purge::PurgeMethod>,

    /// Host header of purges: the host the cache serves the site under (default: the purge URL's).
    #[arg(long, env = "CDNSYNC_PURGE_HOST", value_name = "HOST")]
    pub purge_host: Option<String>,

    /// Parallel purge requests per cache (default 8).
    #[arg(long, env = "CDNSYNC_PURGE_CONCURRENCY", value_name = "N")]
    pub purge_concurrency: Option<usize>,

    /// Attempts per purged path on connection errors and 5xx (default 3).
    #[arg(long, env = "CDNSYNC_PURGE_ATTEMPTS", value_name = "N")]
    pub purge_attempts: Option<u32>,

    /// Over this many paths, invalidations collapse into `dir/*` wildcards (default 15).
    #[arg(long, env = "CDNSYNC_MAX_INVALIDATION_PATHS", value_name = "N")]
    pub max_invalidation_paths: Option<usize>,

    /// Wait until the invalidation has completed.
    #[arg(long, env = "CDNSYNC_WAIT")]
    pub wait: bool,

    /// Longest --wait (default 10m).
    #[arg(long, env = "CDNSYNC_WAIT_TIMEOUT", value_name = "DURATION")]
    pub wait_timeout: Option<String>,

    /// Wait up to this long for another run's lock (e.g. 10m) instead of failing.
    #[arg(long, env = "CDNSYNC_WAIT_LOCK", value_name = "DURATION")]
    pub wait_lock: Option<String>,

    /// How long a lock stays valid without being refreshed (default 15m).
    #[arg(long, env = "CDNSYNC_LOCK_TTL", value_name = "DURATION", hide = true)]
    pub lock_ttl: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The build directory to publish.
    pub dir: PathBuf,

    #[command(flatten)]
    pub remote: TargetArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Do not garbage-collect old assets after publishing.
    #[arg(long, env = "CDNSYNC_NO_GC")]
    pub no_gc: bool,

    /// A note recorded with the release (shown by `cdnsync releases`).
    #[arg(long, short, env = "CDNSYNC_MESSAGE")]
    pub message: Option<String>,

    /// Compute and print the plan; write nothing.
    #[arg(long, env = "CDNSYNC_DRY_RUN")]
    pub dry_run: bool,

    /// Report format: human, json (same as --json) or markdown.
    #[arg(long, env = "CDNSYNC_FORMAT", value_enum, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,

    /// Parallel requests (default 32).
    #[arg(long, env = "CDNSYNC_CONCURRENCY", value_name = "N")]
    pub concurrency: Option<usize>,

    /// Most objects one publish may delete (default 256); over it, none are deleted.
    #[arg(long, env = "CDNSYNC_MAX_DELETE", value_name = "N")]
    pub max_delete: Option<usize>,

    /// Precompression of text types.
    #[arg(long, env = "CDNSYNC_COMPRESS", value_enum, ignore_case = true)]
    pub compress: Option<CompressArg>,

    /// Allow publishing an empty directory over a live site (deletes it).
    #[arg(long, env = "CDNSYNC_ALLOW_EMPTY")]
    pub allow_empty: bool,

    /// Publish files matching this glob although they are on the secret
    /// deny-list (repeatable; e.g. `.well-known/*.pem`).
    #[arg(
        long,
        env = "CDNSYNC_INCLUDE_DENIED",
        value_name = "GLOB",
        value_delimiter = ','
    )]
    pub include_denied: Vec<String>,

    /// Do not give assets content-addressed names or rewrite references.
    #[arg(long, env = "CDNSYNC_NO_FINGERPRINT")]
    pub no_fingerprint: bool,

    /// Do not also publish renamed assets under their original paths (only
    /// for sites where no script builds an asset URL at run time).
    #[arg(long, env = "CDNSYNC_NO_ORIGINAL_COPIES")]
    pub no_original_copies: bool,

    /// No edge routing: no CloudFront Function, no redirects or headers
    /// from `_redirects` / `_headers`; `serve` answers exact keys only.
    #[arg(long, env = "CDNSYNC_NO_ROUTING")]
    pub no_routing: bool,

    /// Fail (writing nothing) when a page, stylesheet or script references a missing file.
    #[arg(long, env = "CDNSYNC_STRICT")]
    pub strict: bool,

    /// URL path the site is served under, for root-relative references (default /).
    #[arg(long, env = "CDNSYNC_BASE_PATH", value_name = "PATH")]
    pub base_path: Option<String>,

    /// Hex characters of the content hash in asset names (8-64, default 12).
    #[arg(long, env = "CDNSYNC_HASH_LENGTH", value_name = "N")]
    pub hash_length: Option<usize>,

    /// Also write the asset manifest (logical path → published key, size, hash, SRI) here.
    #[arg(long, env = "CDNSYNC_MANIFEST_OUT", value_name = "PATH")]
    pub manifest_out: Option<PathBuf>,

    /// Files of at least this many bytes are uploaded in parts (default 64 MiB).
    #[arg(
        long,
        env = "CDNSYNC_MULTIPART_THRESHOLD",
        value_name = "BYTES",
        hide = true
    )]
    pub multipart_threshold: Option<u64>,

    /// Part size for multipart uploads (default 16 MiB, at least 5 MiB).
    #[arg(long, env = "CDNSYNC_PART_SIZE", value_name = "BYTES", hide = true)]
    pub part_size: Option<usize>,
}
