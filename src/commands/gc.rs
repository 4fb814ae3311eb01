//! `cdnsync gc --to TARGET [--keep N] [--grace DURATION]`: collect
//! content-addressed objects no kept release needs, after a grace period.

use crate::commands::Context;
use crate::config::GcConfig;
use crate::error::Result;
use crate::gc::{self, GcReport};
use crate::output::{Render, View};

pub async fn run(cfg: &GcConfig, ctx: &Context) -> Result<GcReport> {
    let (store, prefix) = ctx.open_checked(&cfg.remote).await?;
    ctx.locked(
        &store,
        &prefix,
        &cfg.remote,
        "gc",
        cfg.dry_run,
        async || {
            gc::run(
                store.as_ref(),
                &prefix,
                ctx.clock.now(),
                &cfg.gc,
                cfg.dry_run,
            )
            .await
        },
    )
    .await
}

impl Render for GcReport {
    fn human(&self, _: &View) -> String {
        let verb = if self.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let n = if self.dry_run {
            self.plan.delete.len()
        } else {
            self.deleted
        };
        format!(
            "gc: {verb} {n} objects and {} old release records; {} kept in their grace period; kept releases: {}\n",
            self.plan.drop_releases.len(),
            self.plan.in_grace,
            self.plan.kept_releases.join(", ")
        )
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(ToString::to_string)
            .chain(self.plan.blocked.clone())
            .collect()
    }
}
