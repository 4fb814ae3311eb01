//! Settings of the commands that act on a target without a build directory:
//! each embeds the one [`TargetConfig`] and adds its own flags, validated.

use std::path::PathBuf;

use crate::cli::{GcArgs, MigrateArgs, RetentionArgs, RollbackArgs, UnlockArgs};
use crate::error::{Error, Result};
use crate::migrate::Mode;

use super::publish::check_concurrency;
use super::{Loaded, TargetConfig};

/// `--keep` / `--grace` over the file's `keep` / `grace` over 5 / 7 days.
pub fn gc_options(
    r: &RetentionArgs,
    loaded: &Loaded,
    max_delete: usize,
) -> Result<crate::gc::GcOptions> {
    let grace = match &r.grace {
        Some(g) => super::duration_flag("--grace", g)?,
        None => loaded
            .file
            .grace
            .unwrap_or(std::time::Duration::from_secs(7 * 86400)),
    };
    Ok(crate::gc::GcOptions {
        keep: r.keep.or(loaded.file.keep).unwrap_or(5).max(1),
        grace,
        max_delete,
    })
}

/// `cdnsync gc`.
#[derive(Debug)]
pub struct GcConfig {
    pub remote: TargetConfig,
    pub gc: crate::gc::GcOptions,
    pub dry_run: bool,
}

impl GcConfig {
    pub fn resolve(args: &GcArgs, loaded: &Loaded) -> Result<GcConfig> {
        let max_delete = args.max_delete.or(loaded.file.max_delete).unwrap_or(256);
        Ok(GcConfig {
            remote: TargetConfig::resolve(&args.remote, loaded)?,
            gc: gc_options(&args.retention, loaded, max_delete)?,
            dry_run: args.dry_run,
        })
    }
}

/// `cdnsync rollback [ID]`.
#[derive(Debug)]
pub struct RollbackConfig {
    pub remote: TargetConfig,
    /// The release to make live (default: the one before the live one).
    pub id: Option<String>,
    pub dry_run: bool,
}

impl RollbackConfig {
    pub fn resolve(args: &RollbackArgs, loaded: &Loaded) -> Result<RollbackConfig> {
        Ok(RollbackConfig {
            remote: TargetConfig::resolve(&args.remote, loaded)?,
            id: args.id.clone(),
            dry_run: args.dry_run,
        })
    }
}

/// `cdnsync unlock [--force]`.
#[derive(Debug)]
pub struct UnlockConfig {
    pub remote: TargetConfig,
    pub force: bool,
}

impl UnlockConfig {
    pub fn resolve(args: &UnlockArgs, loaded: &Loaded) -> Result<UnlockConfig> {
        Ok(UnlockConfig {
            remote: TargetConfig::resolve(&args.remote, loaded)?,
            force: args.force,
        })
    }
}

/// `cdnsync migrate SRC`.
#[derive(Debug)]
pub struct MigrateConfig {
    pub remote: TargetConfig,
    pub src: PathBuf,
    pub mode: Mode,
    /// The state journal; `None` with --no-state or when none can be placed.
    pub state: Option<PathBuf>,
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub cache_control: String,
    pub inline: bool,
    pub include_denied: Vec<String>,
    /// `I/N`: only files whose key hash falls in shard I of N.
    pub shard: Option<(u64, u64)>,
    pub dry_run: bool,
    pub base_url: Option<String>,
    pub cdn_url: Option<String>,
    pub map_dir: PathBuf,
    /// Where the report of failures is written.
    pub report: PathBuf,
    pub multipart_threshold: u64,
    pub part_size: usize,
}

impl MigrateConfig {
    pub fn resolve(args: &MigrateArgs, loaded: &Loaded) -> Result<MigrateConfig> {
        let remote = TargetConfig::resolve(&args.remote, loaded)?;
        if args.base_url.is_some() != args.cdn_url.is_some() {
            return Err(Error::Usage("--base-url and --cdn-url go together".into()));
        }
        for u in [&args.base_url, &args.cdn_url].into_iter().flatten() {
            url::Url::parse(u).map_err(|e| Error::Usage(format!("invalid URL `{u}`: {e}")))?;
        }
        let shard = args
            .shard
            .as_deref()
            .map(crate::migrate::parse_shard)
            .transpose()
            .map_err(Error::Usage)?;
        let concurrency = check_concurrency(args.concurrency.unwrap_or(32))?;
        let mode = if args.verify {
            Mode::Verify
        } else if args.delete_source {
            Mode::DeleteSource
        } else {
            Mode::Migrate
        };
        let state = if args.no_state {
            None
        } else {
            args.state
                .clone()
                .or_else(|| crate::migrate::default_state_path(&args.src, &remote.target.display()))
        };
        let (multipart_threshold, part_size) =
            crate::transfer::transfer_sizes(args.multipart_threshold, args.part_size);
        Ok(MigrateConfig {
            remote,
            src: args.src.clone(),
            mode,
            state,
            rate: args.rate,
            concurrency,
            cache_control: args.cache_control.clone(),
            inline: args.inline,
            include_denied: args.include_denied.clone(),
            shard,
            dry_run: args.dry_run,
            base_url: args.base_url.clone(),
            cdn_url: args.cdn_url.clone(),
            map_dir: args.map_dir.clone().unwrap_or_else(|| ".".into()),
            report: args
                .report
                .clone()
                .unwrap_or_else(|| "cdnsync-migrate-report.json".into()),
            multipart_threshold,
            part_size,
        })
    }
}

/// `cdnsync doctor`.
#[derive(Debug)]
pub struct DoctorConfig {
    pub remote: TargetConfig,
    /// cdnsync's own precompression (`compress`), which changes what the
    /// CDN's compression setting should be.
    pub compress: crate::cli::CompressArg,
}

impl DoctorConfig {
    pub fn resolve(args: &crate::cli::TargetArgs, loaded: &Loaded) -> Result<DoctorConfig> {
        Ok(DoctorConfig {
            remote: TargetConfig::resolve(args, loaded)?,
            compress: super::publish::compress(None, loaded),
        })
    }
}
