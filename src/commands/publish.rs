//! `cdnsync publish DIR --to TARGET` (and `plan`, its dry run): scan → remote
//! state → plan → execute → report.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;
use std::time::Instant;

use crate::commands::Context;
use crate::config::PublishConfig;
use crate::error::{Error, Result};
use crate::execute::{self, ExecOptions};
use crate::fingerprint::{self, FingerprintOptions};
use crate::github::{self, GithubEnv};
use crate::graph::GraphOptions;
use crate::output::{Render, View};
use crate::plan::{self, PlanOptions};
use crate::release;
use crate::remote;
use crate::report::Report;
use crate::routing::{self, Routing};
use crate::scan;
use crate::store::Store;
use crate::target::Target;
use crate::transfer::TransferOptions;
use crate::warning::Warning;
use std::io::Write;

/// A local target must not be inside the directory being published (it
/// would publish itself) nor contain it.
fn check_local_target(cfg: &PublishConfig) -> Result<()> {
    if let Target::Local { path } = &cfg.remote.target {
        let abs = |p: &std::path::Path| {
            std::path::absolute(p)
                .map(|a| a.canonicalize().unwrap_or(a))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let (t, d) = (abs(path), abs(&cfg.site.dir));
        if t.starts_with(&d) || d.starts_with(&t) {
            return Err(Error::Usage(format!(
                "target {} and directory {} overlap; publish into a directory outside the build directory",
                path.display(),
                cfg.site.dir.display()
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
    let inv = scan::scan(&cfg.site.dir, &cfg.site.rules)?;
    let scan_ms = t0.elapsed().as_millis() as u64;
    tracing::info!(
        files = inv.files.len(),
        bytes = inv.total_bytes(),
        scan_ms,
        "scanned {}",
        cfg.site.dir.display()
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
    if !cfg.site.fingerprint {
        return Ok((None, 0));
    }
    let gopts = GraphOptions {
        base_path: cfg.site.base_path.clone(),
    };
    let fopts = FingerprintOptions {
        hash_length: cfg.site.hash_length,
    };
    let (fp, g) = fingerprint::fingerprint_site(inv, &cfg.site.rules, &gopts, &fopts)?;
    if cfg.site.strict
        && let Some(m) = g.missing.first()
    {
        return Err(Error::input(
            cfg.site.dir.join(&m.file),
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

/// A publish's (or plan's) report, and the directory it came from (to
/// point annotations at files).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Published {
    pub report: Report,
    #[serde(skip)]
    pub dir: PathBuf,
}

pub async fn run(cfg: &PublishConfig, ctx: &Context) -> Result<Published> {
    Ok(Published {
        report: run_report(cfg, ctx).await?,
        dir: cfg.site.dir.clone(),
    })
}

/// `--compress auto` settled against the CDN: a copy of the config storing
/// text uncompressed when every CloudFront behaviour serving the bucket
/// compresses (the edge then negotiates brotli or gzip with each viewer);
/// `None`: keep gzip (no CDN, Varnish, local targets, an edge that does
/// not compress). Read-only. A distribution that does not exist stops the
/// run before anything is written; one that may not be read, or a passing
/// failure, keeps gzip, with a warning.
async fn compression_stage(cfg: &PublishConfig) -> Result<(Option<PublishConfig>, Vec<Warning>)> {
    use crate::cdn::CdnError;
    if cfg.site.compress != crate::cli::CompressArg::Auto
        || !matches!(cfg.remote.target, Target::S3 { .. })
        || cfg.remote.distribution_ids.is_empty()
    {
        return Ok((None, Vec::new()));
    }
    let Some(cdn) = crate::connect::cdn_options(&cfg.remote).await? else {
        return Ok((None, Vec::new()));
    };
    for c in &cdn.cdns {
        match c.compresses(&cdn.bucket).await {
            Ok(Some(true)) => {}
            Ok(_) => return Ok((None, Vec::new())),
            // A wrong id is a mistake to stop at; a passing failure or a
            // key without cloudfront:GetDistributionConfig keeps gzip.
            Err(e @ (CdnError::NotFound(_) | CdnError::Setup(_))) => {
                return Err(Error::Usage(format!(
                    "--compress auto: cannot tell whether {} compresses: {e}; check the distribution id, or choose --compress gzip or none",
                    c.name()
                )));
            }
            Err(e) => return Ok((None, vec![Warning::CompressionUnsettled(e.to_string())])),
        }
    }
    tracing::info!("--compress auto: the CDN compresses, text is stored uncompressed");
    let mut settled = cfg.clone();
    settled.site.rules.defaults.edge_compresses = true;
    Ok((Some(settled), Vec::new()))
}

async fn run_report(cfg: &PublishConfig, ctx: &Context) -> Result<Report> {
    let t0 = Instant::now();
    check_local_target(cfg)?;
    let (settled, compress_warnings) = compression_stage(cfg).await?;
    let cfg = settled.as_ref().unwrap_or(cfg);
    // Input errors before any request: scanning finds them all (and, with
    // --strict, so does fingerprinting), so a bad build directory writes
    // nothing, not even the lock.
    let (inv, scan_ms) = tokio::task::block_in_place(|| scan_stage(cfg))?;
    let (routing, routing_warnings) = routing_stage(cfg, &inv)?;
    let early_fp = if cfg.site.strict {
        Some(tokio::task::block_in_place(|| {
            fingerprint_stage(cfg, &inv)
        })?)
    } else {
        None
    };
    let (store_arc, prefix) = ctx.open_store(&cfg.remote).await?;
    if !(cfg.dry_run && matches!(cfg.remote.target, Target::Local { .. })) {
        store_arc.check().await?;
    }
    let store = store_arc.as_ref();
    let prefix = prefix.as_str();
    // One writer at a time: the remote state is read under the lock (a
    // plan made without it could be overtaken by a gc or a failed run that
    // changes objects but not `current`), while the site is fingerprinted.
    let dry_run = cfg.dry_run;
    let (mut fp, fingerprint_ms, remote_ms, report) = ctx
        .locked(
            &store_arc,
            prefix,
            &cfg.remote,
            "publish",
            dry_run,
            async || {
                let t1 = Instant::now();
                let (mut fp, fingerprint_ms, fetched) =
                    read_and_fingerprint(cfg, &store_arc, prefix, &inv, early_fp).await?;
                let listed = fetched.relative_keys(prefix);
                let site = Site {
                    inv: &inv,
                    fp: &fp,
                    routing: routing.as_ref(),
                };
                let plan = plan_stage(cfg, ctx, store, prefix, &site, fetched).await?;
                let remote_ms = t1.elapsed().as_millis() as u64;
                let manifest = manifest_stage(cfg, prefix, &inv, &plan, &mut fp)?;
                let report = if dry_run {
                    let mut r = Report::from_plan(&plan, &cfg.remote.target.display());
                    let wire = tokio::task::block_in_place(|| {
                        crate::transfer::measure(&plan, cfg.transfer.multipart_threshold)
                    })?;
                    r.apply_wire(&wire);
                    r
                } else {
                    apply_and_collect(cfg, ctx, store, prefix, &plan, manifest, listed).await?
                };
                Ok((fp, fingerprint_ms, remote_ms, report))
            },
        )
        .await?;
    let mut report = report;
    report.warnings.extend(routing_warnings);
    report.warnings.extend(compress_warnings);
    if let Some((f, missing)) = &mut fp {
        use crate::warning::Warning;
        report.fingerprint = Some(f.stats.clone());
        report.decisions = std::mem::take(&mut f.decisions);
        report.warnings.extend(f.warnings.iter().cloned());
        report
            .warnings
            .extend(missing.iter().map(|m| Warning::MissingReference {
                file: m.file.clone(),
                line: m.line,
                url: m.url.clone(),
            }));
        report.missing_references = missing.clone();
    }
    report.timings.scan_ms = scan_ms;
    report.timings.fingerprint_ms = fingerprint_ms;
    report.timings.remote_ms = remote_ms;
    report.timings.total_ms = t0.elapsed().as_millis() as u64;
    Ok(report)
}

/// Read the remote state (a spawned task) while fingerprinting the site.
async fn read_and_fingerprint(
    cfg: &PublishConfig,
    store: &std::sync::Arc<dyn Store>,
    prefix: &str,
    inv: &crate::scan::Inventory,
    early_fp: Option<(Fp, u64)>,
) -> Result<(Fp, u64, remote::Fetched)> {
    let t1 = Instant::now();
    let remote = {
        let (store, prefix) = (store.clone(), prefix.to_string());
        tokio::spawn(async move {
            let r = remote::fetch(store.as_ref(), &prefix).await;
            (r, Instant::now())
        })
    };
    let fp = match early_fp {
        Some(done) => Ok(done),
        None => tokio::task::block_in_place(|| fingerprint_stage(cfg, inv)),
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
        .map_err(|e| Error::Internal(format!("remote read task failed: {e}")))?;
    let fetched = fetched?;
    tracing::info!(
        listed = fetched.listed.len(),
        ms = fetched_at.duration_since(t1).as_millis() as u64,
        "read the remote state"
    );
    Ok((fp, fingerprint_ms, fetched))
}

/// Apply the plan and, when it changed something, collect what older
/// releases no longer need; the stored bodies gc needs besides the listing
/// read are listed while the release is applied.
async fn apply_and_collect(
    cfg: &PublishConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    plan: &plan::Plan,
    manifest: Option<bytes::Bytes>,
    listed: HashSet<String>,
) -> Result<Report> {
    let gc_runs = cfg.gc.is_some() && !plan.noop && plan.previous_release.is_some();
    let (r, bodies) = futures::join!(
        apply_stage(cfg, ctx, store, prefix, plan, manifest),
        async {
            match gc_runs {
                true => Some(remote::list_bodies(store, prefix).await),
                false => None,
            }
        }
    );
    let mut r = r?;
    if let Some(bodies) = bodies {
        gc_stage(cfg, ctx, store, prefix, plan, listed, bodies, &mut r).await;
    }
    Ok(r)
}

/// What to publish, against what the target holds: the plan, checked
/// (nothing is written unless the new release behaves like the build
/// directory).
async fn plan_stage(
    cfg: &PublishConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    site_read: &Site<'_>,
    fetched: remote::Fetched,
) -> Result<plan::Plan> {
    let Site { inv, fp, routing } = *site_read;
    let fingerprinted = fp.as_ref().map(|(f, _)| f);
    let site = &cfg.site;
    let desired = plan::desired(
        inv,
        &site.rules,
        fingerprinted,
        prefix,
        &cfg.remote.sse,
        site.original_copies,
    )?;
    let local: HashSet<&str> = desired.iter().map(|d| d.rel.as_str()).collect();
    let (routing, code, shadowed) = match routing {
        Some(r) => {
            let (record, code, shadowed) = routing_record(r, &local)?;
            (Some(record), Some(code), shadowed)
        }
        None => (None, None, Vec::new()),
    };
    let bodies: HashSet<String> = desired
        .iter()
        .filter(|d| d.is_stable() && d.copy_of.is_none())
        .map(plan::Desired::body_name)
        .collect();
    let concurrency = cfg.transfer.concurrency;
    let state = remote::resolve(store, prefix, fetched, &local, &bodies, concurrency).await?;
    drop(local);
    let id = release::new_release_id(ctx.clock.as_ref());
    let popts = PlanOptions {
        prefix: prefix.to_string(),
        sse: cfg.remote.sse.clone(),
        max_delete: cfg.transfer.max_delete,
        allow_empty: site.allow_empty,
        routing,
    };
    let mut plan = plan::plan(&id, desired, inv, &state, &popts)?;
    plan.routing_code = code;
    plan.warnings.extend(
        shadowed
            .into_iter()
            .map(|r| crate::warning::Warning::RedirectShadowed { from: r.from }),
    );
    if !plan.noop {
        let graph = GraphOptions {
            base_path: site.base_path.clone(),
        };
        let input = crate::check::CheckInput {
            inv,
            fp: fingerprinted,
            missing: fp.as_ref().map(|(_, m)| m.as_slice()).unwrap_or(&[]),
            original_copies: site.original_copies,
            graph: &graph,
        };
        tokio::task::block_in_place(|| crate::check::check(&plan, &input))?;
    }
    Ok(plan)
}

/// What the site read before the lock gives the planner.
#[derive(Clone, Copy)]
struct Site<'a> {
    inv: &'a crate::scan::Inventory,
    fp: &'a Fp,
    routing: Option<&'a Routing>,
}

/// The release's routing: `cdnsync.toml`'s with the site's `_redirects` /
/// `_headers` rules; `None` when routing is off (those files are then
/// ignored, with a warning). Read before any request: a bad rule writes
/// nothing.
fn routing_stage(
    cfg: &PublishConfig,
    inv: &scan::Inventory,
) -> Result<(Option<Routing>, Vec<Warning>)> {
    let found: Vec<&str> = inv
        .skipped
        .iter()
        .filter(|s| s.skip == crate::rules::Skip::Routing)
        .map(|s| s.rel.as_str())
        .collect();
    let Some(config) = &cfg.site.routing else {
        let w = found
            .iter()
            .map(|f| Warning::RoutingFileIgnored {
                file: (*f).to_string(),
            })
            .collect();
        return Ok((None, w));
    };
    let files = routing::read_site_files(&cfg.site.dir, &found)?;
    let keys: HashSet<&str> = inv.files.iter().map(|f| f.rel.as_str()).collect();
    let r = routing::for_site(config, files, |k| keys.contains(k)).map_err(Error::Usage)?;
    Ok((Some(r), Vec::new()))
}

/// The routing record of a release with these keys and its functions
/// (exact redirects a file answers dropped, returned); an error when the
/// functions cannot fit CloudFront's limit.
fn routing_record(
    r: &Routing,
    keys: &HashSet<&str>,
) -> Result<(
    routing::RoutingRecord,
    routing::function::Compiled,
    Vec<routing::Redirect>,
)> {
    let mut r = r.clone();
    let sorted: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
    let shadowed = r.shadowed(&sorted);
    let list: Vec<&str> = sorted.into_iter().collect();
    let c =
        routing::function::compile(&r, &list).map_err(|e| Error::Usage(format!("routing: {e}")))?;
    Ok((c.record(&r), c, shadowed))
}

/// The asset manifest (with SRI), only when it is written: with a release
/// that changes something, or to `--manifest-out`.
fn manifest_stage(
    cfg: &PublishConfig,
    prefix: &str,
    inv: &crate::scan::Inventory,
    plan: &plan::Plan,
    fp: &mut Fp,
) -> Result<Option<bytes::Bytes>> {
    let manifest = match fp.as_mut() {
        Some((f, _)) if !plan.noop || cfg.manifest_out.is_some() => {
            tokio::task::block_in_place(|| f.compute_integrity(inv))?;
            Some(f.asset_manifest(&plan.release, prefix, &cfg.site.base_path))
        }
        _ => None,
    };
    let Some(m) = manifest else { return Ok(None) };
    let body = serde_json::to_vec_pretty(&m)
        .map_err(|e| Error::Internal(format!("cannot serialize the asset manifest: {e}")))?;
    if let Some(path) = &cfg.manifest_out {
        std::fs::write(path, &body).map_err(|e| Error::io(path, e))?;
    }
    Ok((!plan.noop).then(|| bytes::Bytes::from(body)))
}

/// Execute the plan through the transfer engine; the report, with the URL
/// the site is served at.
async fn apply_stage(
    cfg: &PublishConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    plan: &plan::Plan,
    manifest: Option<bytes::Bytes>,
) -> Result<Report> {
    let cdn = crate::connect::cdn_options(&cfg.remote).await?;
    let edge = match (&plan.routing, &plan.routing_code) {
        (Some(rec), Some(code)) => Some(routing::edge_of(code, &rec.settings, prefix)),
        _ => None,
    };
    let eopts = ExecOptions {
        edge,
        commit: cfg.commit.clone(),
        message: cfg.message.clone(),
        cdn: cdn.clone(),
        extra_objects: manifest
            .map(|m| (release::asset_manifest_key(prefix, &plan.release), m))
            .into_iter()
            .collect(),
    };
    let topts = TransferOptions {
        concurrency: cfg.transfer.concurrency,
        progress: ctx.progress,
        multipart_threshold: cfg.transfer.multipart_threshold,
        part_size: cfg.transfer.part_size,
        ..TransferOptions::new(prefix, cfg.remote.sse.clone())
    };
    let rn = ctx.runner(store, topts);
    let out = execute::execute(plan, &rn, ctx.clock.as_ref(), &eopts).await?;
    let mut r = Report::from_outcome(plan, &out, &cfg.remote.target.display());
    r.url = match &cdn {
        Some(c) => crate::cdn::site_url(c, prefix).await,
        None => None,
    }
    .or_else(|| Some(cfg.remote.target.url()));
    Ok(r)
}

/// Collect what old releases no longer need, when this release changed
/// something (the first release of a target has nothing older to collect).
/// A failure is a warning: the release is live.
#[allow(clippy::too_many_arguments)]
async fn gc_stage(
    cfg: &PublishConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    plan: &plan::Plan,
    mut listed: HashSet<String>,
    bodies: Result<HashSet<String>>,
    r: &mut Report,
) {
    use crate::warning::Warning;
    let Some(g) = &cfg.gc else { return };
    if ctx.cancel.is_cancelled() {
        return;
    }
    let t_gc = Instant::now();
    // The listing read before the publish, less what it deleted, plus the
    // stored bodies; what it uploaded belongs to the new release, never
    // collected.
    for d in &plan.deletes {
        listed.remove(&d.rel);
    }
    let gr = match bodies {
        Ok(b) => {
            listed.extend(b);
            crate::gc::run_listed(store, prefix, ctx.clock.now(), g, false, Some(listed)).await
        }
        Err(e) => Err(e),
    };
    r.timings.gc_ms = t_gc.elapsed().as_millis() as u64;
    match gr {
        Ok(gr) => {
            r.gc_deleted = gr.deleted;
            r.warnings.extend(gr.warnings);
            r.warnings
                .extend(gr.plan.blocked.map(Warning::DeletesBlocked));
        }
        Err(e) => r.warnings.push(Warning::GcFailed(e.to_string())),
    }
}

impl Render for Published {
    fn human(&self, view: &View) -> String {
        if view.grouped {
            self.report.human_grouped(view.max_lines)
        } else {
            self.report.human(view.max_lines)
        }
    }

    fn markdown(&self) -> String {
        self.report.markdown(200)
    }

    fn warnings(&self) -> Vec<String> {
        self.report
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Annotations (file and line for missing references), the job summary
    /// and the step outputs.
    fn github(&self, g: &GithubEnv, out: &mut dyn Write) {
        github_annotations(&self.report, &self.dir, out);
        if let Err(e) = g.write_summary(&self.report.markdown(50)) {
            eprintln!("warning: cannot write the job summary: {e}");
        }
        let r = &self.report;
        let invalidations: Vec<&str> = r.invalidations.iter().map(|i| i.id.as_str()).collect();
        let outputs = [
            ("release", r.release.clone()),
            (
                "previous-release",
                r.previous_release.clone().unwrap_or_default(),
            ),
            ("uploaded", r.uploaded.to_string()),
            ("deleted", r.deleted.to_string()),
            ("noop", r.noop.to_string()),
            ("invalidation-id", invalidations.join(",")),
            ("url", r.url.clone().unwrap_or_default()),
        ];
        if let Err(e) = g.write_outputs(&outputs) {
            eprintln!("warning: cannot write the step outputs: {e}");
        }
    }

    fn outcome(&self) -> Result<()> {
        crate::commands::rollback::cdn_outcome(&self.report.release, &self.report.cdn_failures)
    }
}

/// At most 50 annotations: missing references at their file and line,
/// then the other warnings, then how many more there were.
fn github_annotations(report: &Report, dir: &std::path::Path, out: &mut dyn Write) {
    const MAX_ANNOTATIONS: usize = 50;
    let missing = report.missing_references.iter().map(|m| {
        github::warning(
            Some(&github::annotation_path(dir, &m.file)),
            Some(m.line),
            &format!("reference to missing file `{}`", m.url),
        )
    });
    let others = report
        .warnings
        .iter()
        .filter(|w| !matches!(w, crate::warning::Warning::MissingReference { .. }))
        .map(|w| github::warning(None, None, &w.to_string()));
    let all: Vec<String> = missing.chain(others).collect();
    for a in all.iter().take(MAX_ANNOTATIONS) {
        let _ = writeln!(out, "{a}");
    }
    if all.len() > MAX_ANNOTATIONS {
        let more = format!(
            "… and {} more warnings (see the job summary or --json)",
            all.len() - MAX_ANNOTATIONS
        );
        let _ = writeln!(out, "{}", github::warning(None, None, &more));
    }
}
