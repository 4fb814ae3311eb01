//! `cdnsync publish DIR --to TARGET` (and `plan`, its dry run): scan → remote
//! state → plan → execute → report.

use std::collections::HashSet;
use std::time::Instant;

use crate::commands::Context;
use crate::config::PublishConfig;
use crate::error::{Error, Result};
use crate::execute::{self, ExecOptions};
use crate::plan::{self, PlanOptions};
use crate::release;
use crate::remote;
use crate::report::Report;
use crate::scan;
use crate::store::Store;
use crate::store::local::LocalStore;
use crate::store::s3::{S3Options, S3Store};
use crate::target::Target;

/// Open the target's store; returns it with the key prefix.
pub async fn open_store(cfg: &PublishConfig) -> Result<(Box<dyn Store>, String)> {
    match &cfg.target {
        Target::Local { path } => Ok((Box::new(LocalStore::new(path.clone())), String::new())),
        Target::S3 { bucket, prefix } => {
            let s = S3Store::connect(S3Options {
                bucket: bucket.clone(),
                region: cfg.region.clone(),
                endpoint_url: cfg.endpoint_url.clone(),
                allow_http: cfg.allow_http,
                ..Default::default()
            })
            .await?;
            Ok((Box::new(s), prefix.clone()))
        }
    }
}

/// A local target must not be inside the directory being published (it
/// would publish itself) nor contain it.
fn check_local_target(cfg: &PublishConfig) -> Result<()> {
    if let Target::Local { path } = &cfg.target {
        let abs = |p: &std::path::Path| {
            std::path::absolute(p)
                .map(|a| a.canonicalize().unwrap_or(a))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let (t, d) = (abs(path), abs(&cfg.dir));
        if t.starts_with(&d) || d.starts_with(&t) {
            return Err(Error::Usage(format!(
                "target {} and directory {} overlap; publish into a directory outside the build directory",
                path.display(),
                cfg.dir.display()
            )));
        }
    }
    Ok(())
}

pub async fn run(cfg: &PublishConfig, ctx: &Context) -> Result<Report> {
    let t0 = Instant::now();
    check_local_target(cfg)?;

    let dir = cfg.dir.clone();
    let rules_dir = dir.clone();
    // Scanning is blocking, CPU-heavy work (rayon); keep it off the runtime.
    let inv = {
        let cfg_rules = &cfg.rules;
        // Rules are not 'static; scan on this thread inside block_in_place.
        tokio::task::block_in_place(|| scan::scan(&rules_dir, cfg_rules))?
    };
    let scan_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        files = inv.files.len(),
        bytes = inv.total_bytes(),
        scan_ms,
        "scanned {}",
        dir.display()
    );

    let t1 = Instant::now();
    let (store, prefix) = open_store(cfg).await?;
    let store: &dyn Store = store.as_ref();
    if !(cfg.dry_run && matches!(cfg.target, Target::Local { .. })) {
        store.check().await?;
    }
    let desired = plan::desired(&inv, &cfg.rules, &prefix, &cfg.sse)?;
    let local: HashSet<&str> = desired.iter().map(|d| d.rel.as_str()).collect();
    let state = remote::load(store, &prefix, &local, cfg.concurrency).await?;
    drop(local);
    let remote_ms = t1.elapsed().as_millis() as u64;

    let id = release::new_release_id(ctx.clock.as_ref());
    let popts = PlanOptions {
        prefix: prefix.clone(),
        sse: cfg.sse.clone(),
        max_delete: cfg.max_delete,
        allow_empty: cfg.allow_empty,
    };
    let plan = plan::plan(&id, desired, &inv, &state, &popts)?;
    let target = cfg.target.display();

    let mut report = if cfg.dry_run {
        Report::from_plan(&plan, &target)
    } else {
        let mut eopts = ExecOptions::new(&prefix, cfg.sse.clone());
        eopts.concurrency = cfg.concurrency;
        eopts.progress = ctx.progress;
        eopts.multipart_threshold = cfg.multipart_threshold;
        eopts.part_size = cfg.part_size;
        let out = execute::execute(&plan, store, ctx.clock.as_ref(), &eopts, &ctx.cancel).await?;
        Report::from_outcome(&plan, &out, &target)
    };
    report.timings.scan_ms = scan_ms;
    report.timings.remote_ms = remote_ms;
    report.timings.total_ms = t0.elapsed().as_millis() as u64;
    Ok(report)
}
