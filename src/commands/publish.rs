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
use crate::store::s3::S3Store;
use crate::target::Target;

/// Open the target's store; returns it with the key prefix.
pub async fn open_store(cfg: &TargetConfig) -> Result<(Arc<dyn Store>, String)> {
    match &cfg.target {
        Target::Local { path } => Ok((Arc::new(LocalStore::new(path.clone())), String::new())),
        Target::S3 { bucket, prefix } => {
            let s = S3Store::connect(cfg.s3_options(bucket)).await?;
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

/// Scan and hash the build directory (blocking, CPU-bound, on all cores).
/// Every input error (missing or unreadable files, symlink loops and
/// escapes, names that cannot be keys) surfaces here, before any request
/// that writes.
fn scan_stage(cfg: &PublishConfig) -> Result<(crate::scan::Inventory, u64)> {
    let t0 = Instant::now();
    let inv = scan::scan(&cfg.dir, &cfg.rules)?;
    let scan_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        files = inv.files.len(),
        bytes = inv.total_bytes(),
        scan_ms,
        "scanned {}",
        cfg.dir.display()
    );
    Ok((inv, scan_ms))
}

type Fp = Option<(
    crate::fingerprint::Fingerprinted,
    Vec<crate::graph::Missing>,
)>;

/// Reference graph and content-addressed names (blocking, CPU-bound);
/// `--strict` fails here.
fn fingerprint_stage(cfg: &PublishConfig, inv: &crate::scan::Inventory) -> Result<(Fp, u64)> {
    let t_fp = Instant::now();
    if !cfg.fingerprint {
        return Ok((None, 0));
    }
    let gopts = GraphOptions {
        base_path: cfg.base_path.clone(),
    };
    let fopts = FingerprintOptions {
        hash_length: cfg.hash_length,
    };
    let (fp, g) = fingerprint::fingerprint_site(inv, &cfg.rules, &gopts, &fopts)?;
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
    Ok((Some((fp, g.missing)), t_fp.elapsed().as_millis() as u64))
}

pub async fn run(cfg: &PublishConfig, ctx: &Context) -> Result<Report> {
    let t0 = Instant::now();
    check_local_target(cfg)?;
    // Input errors before any request: scanning finds them all (and, with
    // --strict, so does fingerprinting), so a bad build directory writes
    // nothing, not even the lock.
    let (inv, scan_ms) = tokio::task::block_in_place(|| scan_stage(cfg))?;
    let early_fp = if cfg.strict {
        Some(tokio::task::block_in_place(|| {
            fingerprint_stage(cfg, &inv)
        })?)
    } else {
        None
    };

    let (store_arc, prefix) = open_store(cfg.target_config()).await?;
    if !(cfg.dry_run && matches!(cfg.target, Target::Local { .. })) {
        store_arc.check().await?;
    }
    // One writer at a time: the remote state is read under the lock, while
    // the site is fingerprinted.
    ctx.locked(
        &store_arc,
        &prefix,
        cfg.target_config(),
        "publish",
        cfg.dry_run,
        async || {
            let t1 = Instant::now();
            let remote = {
                let (store, prefix) = (store_arc.clone(), prefix.clone());
                tokio::spawn(async move {
                    let r = remote::fetch(store.as_ref(), &prefix).await;
                    (r, Instant::now())
                })
            };
            let fp = match early_fp {
                Some(done) => Ok(done),
                None => tokio::task::block_in_place(|| fingerprint_stage(cfg, &inv)),
            };
            let (fp, fingerprint_ms) = match fp {
                Ok(f) => f,
                Err(e) => {
                    remote.abort();
                    return Err(e);
                }
            };
            let (fetched, fetched_at) = remote
                .await
                .map_err(|e| Error::Usage(format!("remote read task failed: {e}")))?;
            let fetched = fetched?;
            tracing::info!(
                listed = fetched.listed.len(),
                ms = fetched_at.duration_since(t1).as_millis() as u64,
                "read the remote state"
            );
            publish_locked(
                cfg,
                ctx,
                store_arc.as_ref(),
                &prefix,
                inv,
                fp,
                fetched,
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
    fp: Fp,
    fetched: remote::Fetched,
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
        cfg.original_copies,
    )?;
    let local: HashSet<&str> = desired.iter().map(|d| d.rel.as_str()).collect();
    // What garbage collection will need after the publish: no second listing.
    let listed = fetched.relative_keys(&prefix);
    let state = remote::resolve(store, &prefix, fetched, &local, cfg.concurrency).await?;
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
    // Nothing is written unless the new release behaves like the build
    // directory.
    if !plan.noop {
        let gopts = GraphOptions {
            base_path: cfg.base_path.clone(),
        };
        tokio::task::block_in_place(|| {
            crate::check::check(
                &plan,
                &crate::check::CheckInput {
                    inv: &inv,
                    fp: fp.as_ref().map(|(f, _)| f),
                    missing: fp.as_ref().map(|(_, m)| m.as_slice()).unwrap_or(&[]),
                    original_copies: cfg.original_copies,
                    graph: &gopts,
                },
            )
        })?;
    }
    let target = cfg.target.display();

    // The asset manifest (with SRI) only when it is written.
    let mut fp = fp;
    let manifest = match fp.as_mut() {
        Some((f, _)) if !plan.noop || cfg.manifest_out.is_some() => {
            tokio::task::block_in_place(|| f.compute_integrity(&inv))?;
            Some(f.asset_manifest(&plan.release, &prefix, &cfg.base_path))
        }
        _ => None,
    };
    if let (Some(m), Some(path)) = (&manifest, &cfg.manifest_out) {
        let body = serde_json::to_vec_pretty(m).expect("serialize manifest");
        std::fs::write(path, body).map_err(|e| Error::io(path, e))?;
    }

    let mut report = if cfg.dry_run {
        let mut r = Report::from_plan(&plan, &target);
        let wire =
            tokio::task::block_in_place(|| execute::measure(&plan, cfg.multipart_threshold))?;
        r.apply_wire(&wire);
        r
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
        // (The first release of a target has nothing older to collect.)
        if let Some(g) = &cfg.gc
            && !plan.noop
            && plan.previous_release.is_some()
            && !ctx.cancel.is_cancelled()
        {
            let t_gc = Instant::now();
            // The listing read before the publish, less what it deleted;
            // what it uploaded belongs to the new release, never collected.
            let mut listed = listed;
            for d in &plan.deletes {
                listed.remove(&d.rel);
            }
            // The read listed the site and the stored bodies: all gc needs.
            let gr = crate::gc::run_listed(store, &prefix, ctx.clock.now(), g, false, Some(listed))
                .await;
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
    if let Some((f, missing)) = &mut fp {
        report.fingerprint = Some(f.stats.clone());
        report.decisions = std::mem::take(&mut f.decisions);
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
