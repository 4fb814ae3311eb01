//! `cdnsync gc --to TARGET [--keep N] [--grace DURATION]`: collect
//! content-addressed objects no kept release needs, after a grace period.

use crate::commands::Context;
use crate::commands::publish::open_store;
use crate::config::TargetConfig;
use crate::error::Result;
use crate::gc::{self, GcOptions, GcReport};

pub async fn run(
    cfg: &TargetConfig,
    ctx: &Context,
    opts: &GcOptions,
    dry_run: bool,
) -> Result<GcReport> {
    let (store, prefix) = open_store(cfg).await?;
    store.check().await?;
    ctx.locked(&store, &prefix, cfg, "gc", dry_run, async || {
        gc::run(store.as_ref(), &prefix, ctx.clock.now(), opts, dry_run).await
    })
    .await
}
