//! `cdnsync gc --to TARGET [--keep N] [--grace DURATION]`: collect
//! content-addressed objects no kept release needs, after a grace period.

use crate::commands::Context;
use crate::commands::publish::open_store;
use crate::config::TargetConfig;
use crate::error::Result;
use crate::gc::{self, GcOptions, GcReport};
use crate::lock;

pub async fn run(
    cfg: &TargetConfig,
    ctx: &Context,
    opts: &GcOptions,
    dry_run: bool,
) -> Result<GcReport> {
    let (store, prefix) = open_store(cfg).await?;
    store.check().await?;
    let held = if dry_run {
        None
    } else {
        Some(
            lock::acquire(
                store.clone(),
                &prefix,
                &cfg.sse,
                ctx.clock.clone(),
                &ctx.lock_options(cfg.wait_lock, cfg.lock_ttl, "gc"),
            )
            .await?,
        )
    };
    let r = gc::run(store.as_ref(), &prefix, ctx.clock.now(), opts, dry_run).await;
    if let Some(l) = held {
        l.release().await;
    }
    r
}
