//! `cdnsync publish DIR --to TARGET` (and `plan`, its dry run): scan → remote
//! state → plan → execute → report.

use std::collections::HashSet;
use std::time::Instant;

use crate::commands::Context;
use std::sync::Arc;

use crate::config::{PublishConfig, TargetConfig};
use crate::error::{Error, Result};
use crate::execute::{self, ExecOptions};
use crate::fingerprint::{self, FingerprintOptions};
use crate::graph::GraphOptions;
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
pub async fn open_store(cfg: &TargetConfig) -> Result<(Arc<dyn Store>, String)> {
    match &cfg.target {
        Target::Local { path } => Ok((Arc::new(LocalStore::new(path.clone())), String::new())),
        Target::S3 { bucket, prefix } => {
            let s = S3Store::connect(S3Options {
                bucket: bucket.clone(),
                region: cfg.region.clone(),
                endpoint_url: cfg.endpoint_url.clone(),
                allow_http: cfg.allow_http,
                ..Default::default()
            })
            .await?;
            Ok((Arc::new(s), prefix.clone()))
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

    // Scanning is blocking, CPU-heavy work (rayon): run it on this worker
    // thread, with the runtime told so.
    let inv = tokio::task::block_in_place(|| scan::scan(&cfg.dir, &cfg.rules))?;
    let scan_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        files = inv.files.len(),
        bytes = inv.total_bytes(),
        scan_ms,
        "scanned {}",
        cfg.dir.display()
    );

    // References and content-addressed names (CPU-bound, parallel).
    let t_fp = Instant::now();
    let fp = if cfg.fingerprint {
        let gopts = GraphOptions {
            base_path: cfg.base_path.clone(),
        };
        let fopts = FingerprintOptions {
            hash_length: cfg.hash_length,
        };
        let (fp, g) = tokio::task::block_in_place(|| {
            fingerprint::fingerprint_site(&inv, &cfg.rules, &gopts, &fopts)
        })?;
        // --strict: fail before anything is written.
        if cfg.strict
            && let Some(m) = g.missing.first()
        {
            return Err(Error::input(
                cfg.dir.join(&m.file),
                format!(
                    "line {}: reference to missing file `{}` ({} missing in all; --strict)",
                    m.line,
                    m.url,
                    g.missing.len()
                ),
            ));
        }
        Some((fp, g.missing))
    } else {
        None
    };
    let fingerprint_ms = t_fp.elapsed().as_millis() as u64;

    let t1 = Instant::now();
    let (store_arc, prefix) = open_store(cfg.target_config()).await?;
    let store: &dyn Store = store_arc.as_ref();
    if !(cfg.dry_run && matches!(cfg.target, Target::Local { .. })) {
        store.check().await?;
    }
    // One writer at a time: the remote state is read under the lock.
    ctx.locked(
        &store_arc,
        &prefix,
        cfg.target_config(),
        "publish",
        cfg.dry_run,
        async || {
            publish_locked(
                cfg,
                ctx,
                store,
                &prefix,
                inv,
                fp,
                scan_ms,
                fingerprint_ms,
                t0,
                t1,
            )
            .await
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn publish_locked(
    cfg: &PublishConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    inv: crate::scan::Inventory,
    fp: Option<(
        crate::fingerprint::Fingerprinted,
        Vec<crate::graph::Missing>,
    )>,
    scan_ms: u64,
    fingerprint_ms: u64,
    t0: Instant,
    t1: Instant,
) -> Result<Report> {
    let prefix = prefix.to_string();
    let desired = plan::desired(
        &inv,
        &cfg.rules,
        fp.as_ref().map(|(f, _)| f),
        &prefix,
        &cfg.sse,
    )?;
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

    let manifest = fp
        .as_ref()
        .map(|(f, _)| f.asset_manifest(&plan.release, &prefix, &cfg.base_path));
    if let (Some(m), Some(path)) = (&manifest, &cfg.manifest_out) {
        let body = serde_json::to_vec_pretty(m).expect("serialize manifest");
        std::fs::write(path, body).map_err(|e| Error::io(path, e))?;
    }

    let mut report = if cfg.dry_run {
        Report::from_plan(&plan, &target)
    } else {
        let mut eopts = ExecOptions::new(&prefix, cfg.sse.clone());
        eopts.commit = cfg.commit.clone();
        eopts.cdn = crate::cdn::options_for(cfg.target_config()).await?;
        let cdn = eopts.cdn.clone();
        eopts.message = cfg.message.clone();
        if let Some(m) = &manifest
            && !plan.noop
        {
            eopts.extra_objects.push((
                release::asset_manifest_key(&prefix, &plan.release),
                bytes::Bytes::from(serde_json::to_vec_pretty(m).expect("serialize manifest")),
            ));
        }
        eopts.concurrency = cfg.concurrency;
        eopts.progress = ctx.progress;
        eopts.multipart_threshold = cfg.multipart_threshold;
        eopts.part_size = cfg.part_size;
        let out = execute::execute(&plan, store, ctx.clock.as_ref(), &eopts, &ctx.cancel).await?;
        let mut r = Report::from_outcome(&plan, &out, &target);
        r.url = match &cdn {
            Some(c) => crate::cdn::site_url(c, &prefix).await,
            None => None,
        }
        .or_else(|| Some(cfg.target.url()));
        // Collect what old releases no longer need, when this one changed something.
        if let Some(g) = &cfg.gc
            && !plan.noop
            && !ctx.cancel.is_cancelled()
        {
            let t_gc = Instant::now();
            let gr = crate::gc::run(store, &prefix, ctx.clock.now(), g, false).await;
            r.timings.gc_ms = t_gc.elapsed().as_millis() as u64;
            match gr {
                Ok(gr) => {
                    r.gc_deleted = gr.deleted;
                    r.warnings.extend(gr.warnings);
                    r.warnings.extend(gr.plan.blocked);
                }
                Err(e) => r.warnings.push(format!("garbage collection failed: {e}")),
            }
        }
        r
    };
    if let Some((f, missing)) = &fp {
        report.fingerprint = Some(f.stats.clone());
        report.warnings.extend(f.warnings.iter().cloned());
        report.warnings.extend(missing.iter().map(|m| {
            format!(
                "{}:{}: reference to missing file `{}`",
                m.file, m.line, m.url
            )
        }));
        report.missing_references = missing.clone();
    }
    report.timings.scan_ms = scan_ms;
    report.timings.fingerprint_ms = fingerprint_ms;
    report.timings.remote_ms = remote_ms;
    report.timings.total_ms = t0.elapsed().as_millis() as u64;
    Ok(report)
}
