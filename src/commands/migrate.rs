//! `cdnsync migrate SRC --to TARGET`: move existing files (user uploads) off
//! a web server into the target, resumable and verifiable. The work is in
//! [`crate::migrate`]; this is its command: open, run, write the report of
//! failures.

use std::path::PathBuf;

use serde::Serialize;

use crate::commands::Context;
use crate::config::MigrateConfig;
use crate::error::{Error, Result};
use crate::migrate::{MigrateOptions, MigrateReport};
use crate::output::{Render, View};
use crate::transfer::TransferOptions;

/// A migration's report, and where its failures were written.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Migrated {
    pub report: MigrateReport,
    /// Written when something failed or did not verify.
    #[serde(skip)]
    pub failures_at: Option<PathBuf>,
}

pub async fn run(cfg: &MigrateConfig, ctx: &Context) -> Result<Migrated> {
    let (store, prefix) = ctx.open_checked(&cfg.remote).await?;
    let opts = MigrateOptions {
        state: cfg.state.clone(),
        mode: cfg.mode,
        rate: cfg.rate,
        cache_control: cfg.cache_control.clone(),
        inline: cfg.inline,
        include_denied: cfg.include_denied.clone(),
        src_root: cfg.src.clone(),
        shard: cfg.shard,
        dry_run: cfg.dry_run,
        base_url: cfg.base_url.clone(),
        cdn_url: cfg.cdn_url.clone(),
        map_dir: cfg.map_dir.clone(),
    };
    let topts = TransferOptions {
        concurrency: cfg.concurrency,
        progress: ctx.progress,
        multipart_threshold: cfg.multipart_threshold,
        part_size: cfg.part_size,
        ..TransferOptions::new(&prefix, cfg.remote.sse.clone())
    };
    let rn = ctx.runner(store.as_ref(), topts);
    let report = crate::migrate::run(&cfg.src, &rn, &opts).await?;
    let failures_at = if report.failed.is_empty() && report.mismatches.is_empty() {
        None
    } else {
        let body = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Internal(format!("cannot serialize the report: {e}")))?;
        std::fs::write(&cfg.report, body).map_err(|e| Error::io(&cfg.report, e))?;
        Some(cfg.report.clone())
    };
    Ok(Migrated {
        report,
        failures_at,
    })
}

impl Render for Migrated {
    fn human(&self, _: &View) -> String {
        crate::migrate::summary(&self.report)
    }

    fn outcome(&self) -> Result<()> {
        match &self.failures_at {
            Some(path) => Err(Error::MigrateIncomplete {
                failed: self.report.failed.len() + self.report.mismatches.len(),
                report: path.display().to_string(),
            }),
            None => Ok(()),
        }
    }
}
