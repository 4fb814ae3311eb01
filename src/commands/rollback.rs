//! `cdnsync rollback --to TARGET [ID]`: make an earlier release live again
//! without local files or uploads — every stable-name key is restored by a
//! server-side copy of its stored body, keys the release did not have are
//! removed, and the result is recorded as a new release. Planned by a pure
//! function ([`plan`]), carried out by the transfer engine.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::commands::Context;
use crate::config::{RollbackConfig, TargetConfig};
use crate::error::{Error, Result};
use crate::output::{Render, View};
use crate::release::{self, FORMAT, Release, ReleaseFile};
use crate::rules::FileClass;
use crate::store::{Store, join_key};
use crate::transfer::{ObjectHeaders, Runner, TransferOptions};
use crate::warning::Warning;

#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The new release recording the rollback.
    pub release: String,
    pub rolled_back_to: String,
    pub previous_release: String,
    pub dry_run: bool,
    /// Keys copied back from their stored bodies.
    pub restored: Vec<String>,
    /// Keys of the rolled-back-from release that the target did not have.
    pub deleted: Vec<String>,
    pub unchanged: usize,
    pub warnings: Vec<crate::warning::Warning>,
    pub invalidations: Vec<crate::cdn::Invalidation>,
    pub cdn_failures: Vec<String>,
    /// The edge routing restored with the pages (what each CDN did).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<crate::cdn::RoutingApplied>,
}

/// One live key restored by a server-side copy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restore {
    /// Path relative to the prefix.
    pub rel: String,
    /// What it is copied from, relative to the prefix: a stored body
    /// (`.cdnsync/objects/…`) or the content-addressed object an original
    /// URL copies.
    pub from: String,
    pub file: ReleaseFile,
}

/// What a rollback does, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlan {
    pub to: String,
    pub from: String,
    /// Non-entry stable files first, pages last (as in a publish).
    pub restore: Vec<Restore>,
    /// Stable-name keys of the live release the target does not have.
    pub remove: Vec<String>,
    pub unchanged: usize,
    /// The source commit of the release rolled back to.
    pub commit: Option<String>,
    /// The files of the release recording the rollback (removed keys
    /// listed as stale, so a later publish still owns them).
    pub files: BTreeMap<String, ReleaseFile>,
    /// The target's edge routing, restored with its pages.
    pub routing: Option<crate::routing::RoutingRecord>,
}

/// A file restored by copying: a stable name with a stored body, or an
/// original-URL copy.
fn is_stable(f: &ReleaseFile) -> bool {
    matches!(f.class, FileClass::Entry | FileClass::Plain)
        && (f.body.is_some() || f.copy_of.is_some())
}

fn headers(f: &ReleaseFile) -> ObjectHeaders<'_> {
    ObjectHeaders {
        hash: &f.hash,
        digest: &f.headers,
        content_type: &f.content_type,
        cache_control: &f.cache_control,
        content_encoding: f.content_encoding.as_deref(),
        content_disposition: f.content_disposition.as_deref(),
    }
}

/// Which release to roll back to: `id`, else the one live before the
/// current one (its `previous`, else the recorded one before it in `ids`).
pub fn pick_target(current: &Release, id: Option<&str>, ids: &[String]) -> Result<String> {
    let target = match (id, &current.previous) {
        (Some(i), _) => i.to_string(),
        (None, Some(p)) => p.clone(),
        (None, None) => {
            let pos = ids
                .iter()
                .position(|i| *i == current.id)
                .unwrap_or(ids.len());
            ids[..pos].last().cloned().ok_or_else(|| {
                Error::Usage(format!(
                    "release {} is the oldest recorded: there is nothing to roll back to",
                    current.id
                ))
            })?
        }
    };
    if target == current.id {
        return Err(Error::Usage(format!("release {target} is already live")));
    }
    Ok(target)
}

/// What each file of `target` needs in the bucket, and is missing from
/// `listed` (keys relative to the prefix).
fn missing(target: &Release, listed: &HashSet<String>) -> Vec<String> {
    let meta = format!("{}/", release::META_DIR);
    let mut missing = Vec::new();
    for (rel, f) in target.files.iter().filter(|(_, f)| !f.stale) {
        match (&f.body, &f.copy_of) {
            (Some(b), _) if !listed.contains(&format!("{meta}{b}")) => {
                missing.push(format!("{rel} (stored body {b})"));
            }
            (None, Some(c)) if !listed.contains(c) => missing.push(format!("{rel} (copy of {c})")),
            (None, None) if !listed.contains(rel) => missing.push(rel.clone()),
            _ => {}
        }
        if f.body.is_none()
            && f.copy_of.is_none()
            && matches!(f.class, FileClass::Entry | FileClass::Plain)
        {
            missing.push(format!("{rel} (published before cdnsync stored bodies)"));
        }
    }
    missing
}

/// Plan the rollback from the live release `current` to `target`, given
/// the keys in the bucket (relative to the prefix). Refused, naming what is
/// gone, when anything the target needs is not there: nothing changes then.
pub fn plan(
    current: &Release,
    target: &Release,
    listed: &HashSet<String>,
) -> std::result::Result<RollbackPlan, Vec<String>> {
    let missing = missing(target, listed);
    if !missing.is_empty() {
        return Err(missing);
    }
    let same = |rel: &str, f: &ReleaseFile| {
        current
            .files
            .get(rel)
            .is_some_and(|c| !c.stale && c.hash == f.hash && c.headers == f.headers)
            && listed.contains(rel)
    };
    let mut restore: Vec<Restore> = target
        .files
        .iter()
        .filter(|(rel, f)| !f.stale && is_stable(f) && !same(rel, f))
        .map(|(rel, f)| Restore {
            rel: rel.clone(),
            from: match (&f.body, &f.copy_of) {
                (Some(b), _) => format!("{}/{b}", release::META_DIR),
                (None, Some(c)) => c.clone(),
                (None, None) => unreachable!("is_stable: a body or a copy source"),
            },
            file: f.clone(),
        })
        .collect();
    restore.sort_by(|a, b| {
        (a.file.class == FileClass::Entry, &a.rel).cmp(&(b.file.class == FileClass::Entry, &b.rel))
    });
    let live = target.files.values().filter(|f| !f.stale).count();
    let remove: Vec<String> = current
        .files
        .iter()
        .filter(|(rel, f)| {
            !f.stale
                && matches!(f.class, FileClass::Entry | FileClass::Plain)
                && target.files.get(*rel).is_none_or(|t| t.stale)
                && listed.contains(*rel)
        })
        .map(|(rel, _)| rel.clone())
        .collect();
    let mut files: BTreeMap<String, ReleaseFile> = target
        .files
        .iter()
        .filter(|(_, f)| !f.stale)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for rel in &remove {
        let mut f = current.files[rel].clone();
        f.stale = true;
        files.insert(rel.clone(), f);
    }
    Ok(RollbackPlan {
        to: target.id.clone(),
        from: current.id.clone(),
        unchanged: live - restore.len(),
        commit: target.commit.clone(),
        restore,
        remove,
        files,
        routing: target.routing.clone(),
    })
}

pub async fn run(cfg: &RollbackConfig, ctx: &Context) -> Result<RollbackReport> {
    let (store, prefix) = ctx.open_checked(&cfg.remote).await?;
    ctx.locked(
        &store,
        &prefix,
        &cfg.remote,
        "rollback",
        cfg.dry_run,
        async || {
            let p = read_and_plan(&cfg.remote, store.as_ref(), &prefix, cfg.id.as_deref()).await?;
            let mut report = RollbackReport {
                release: release::new_release_id(ctx.clock.as_ref()),
                rolled_back_to: p.to.clone(),
                previous_release: p.from.clone(),
                dry_run: cfg.dry_run,
                restored: p
                    .restore
                    .iter()
                    .map(|r| join_key(&prefix, &r.rel))
                    .collect(),
                deleted: p.remove.iter().map(|r| join_key(&prefix, r)).collect(),
                unchanged: p.unchanged,
                warnings: Vec::new(),
                invalidations: Vec::new(),
                cdn_failures: Vec::new(),
                routing: Vec::new(),
            };
            if !cfg.dry_run {
                let topts = TransferOptions::new(&prefix, cfg.remote.sse.clone());
                let rn = ctx.runner(store.as_ref(), topts);
                apply(&p, &rn, ctx, &mut report).await?;
                notify(&cfg.remote, &p, &rn, &mut report).await?;
            }
            Ok(report)
        },
    )
    .await
}

/// Read the live and the target release and the bucket's keys; plan.
async fn read_and_plan(
    cfg: &TargetConfig,
    store: &dyn Store,
    prefix: &str,
    id: Option<&str>,
) -> Result<RollbackPlan> {
    let current = release::read_current(store, prefix).await?.ok_or_else(|| {
        Error::Usage(format!(
            "nothing has been published to {} yet",
            cfg.target.display()
        ))
    })?;
    let ids = match (id, &current.previous) {
        (None, None) => release::list_ids(store, prefix).await?,
        _ => Vec::new(),
    };
    let target_id = pick_target(&current, id, &ids)?;
    let target = release::read(store, prefix, &target_id).await?;
    // Everything the target release needs must still be in the bucket
    // before anything live changes.
    let listed: HashSet<String> = crate::remote::list_relative(store, prefix).await?;
    plan(&current, &target, &listed).map_err(|missing| Error::Manifest {
        key: release::release_key(prefix, &target_id),
        reason: format!(
            "cannot roll back: {} object(s) it needs are gone (e.g. {}); nothing was changed",
            missing.len(),
            missing[0]
        ),
    })
}

/// Copy back (non-entries, then pages), record, then delete.
async fn apply(
    p: &RollbackPlan,
    rn: &Runner<'_>,
    ctx: &Context,
    report: &mut RollbackReport,
) -> Result<()> {
    let prefix = rn.opts.prefix.clone();
    for wave in [false, true] {
        let jobs = p
            .restore
            .iter()
            .filter(|r| (r.file.class == FileClass::Entry) == wave);
        let results = rn
            .each(jobs, |r| {
                let prefix = &prefix;
                async move {
                    let (src, dst) = (join_key(prefix, &r.from), join_key(prefix, &r.rel));
                    rn.copy(&src, &dst, &headers(&r.file)).await
                }
            })
            .await;
        if let Some(e) = results.into_iter().find_map(|(_, r)| r.err()) {
            return Err(e);
        }
    }
    // Record: the target's files under a new id, then `current`.
    let rec = Release {
        format: FORMAT,
        id: report.release.clone(),
        created: release::created_now(ctx.clock.as_ref()),
        tool: format!("cdnsync {}", env!("CARGO_PKG_VERSION")),
        previous: Some(p.from.clone()),
        commit: p.commit.clone(),
        message: Some(format!("rollback to {}", p.to)),
        rollback_of: Some(p.to.clone()),
        files: p.files.clone(),
        routing: p.routing.clone(),
    };
    release::write(rn.store, &prefix, &rec, &rn.opts.sse).await?;
    // Keys the rolled-back-to release does not have: a delete that fails
    // as a whole fails the rollback (they would stay live); per-key
    // failures are warnings.
    if !report.deleted.is_empty() {
        let failed = rn.store.delete_many(&report.deleted).await?;
        report
            .warnings
            .extend(failed.into_iter().map(Warning::from));
    }
    Ok(())
}

/// The target's routing back on the edge, then exactly the paths that
/// changed invalidated, on every CDN.
async fn notify(
    cfg: &TargetConfig,
    p: &RollbackPlan,
    rn: &Runner<'_>,
    report: &mut RollbackReport,
) -> Result<()> {
    if let Some(cdn) = crate::connect::cdn_options(cfg).await? {
        let stop = || rn.cancel.is_cancelled();
        // The target's routing, or none of cdnsync's when it has none.
        let edge = match &p.routing {
            Some(rec) => {
                let keys = crate::release::live_keys(&p.files);
                crate::routing::edge(rec, &keys, &rn.opts.prefix).map(Some)
            }
            None => Ok(None),
        };
        match edge {
            Ok(edge) => {
                let (done, failed) = crate::invalidate::routing(
                    &cdn,
                    &rn.opts.prefix,
                    edge.as_ref(),
                    &rn.retry,
                    &stop,
                )
                .await;
                report.routing = done;
                report.cdn_failures.extend(failed);
            }
            Err(e) => report
                .cdn_failures
                .push(format!("routing not restored: {e}")),
        }
        let changed: Vec<String> = report
            .restored
            .iter()
            .chain(&report.deleted)
            .cloned()
            .collect();
        let (inv, failed) =
            crate::invalidate::all(&cdn, &changed, &report.release, &rn.retry, &stop).await;
        report.invalidations = inv;
        report.cdn_failures.extend(failed);
    }
    Ok(())
}

impl Render for RollbackReport {
    fn human(&self, _: &View) -> String {
        let verb = if self.dry_run {
            "Would roll back"
        } else {
            "Rolled back"
        };
        format!(
            "{verb} {} to {}: {} restored, {} removed, {} unchanged (new release {})\n",
            self.previous_release,
            self.rolled_back_to,
            self.restored.len(),
            self.deleted.len(),
            self.unchanged,
            self.release
        )
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.iter().map(ToString::to_string).collect()
    }

    fn outcome(&self) -> Result<()> {
        cdn_outcome(&self.release, &self.cdn_failures)
    }
}

/// The release is live, but a CDN failed to drop what it cached: exit 8.
pub(crate) fn cdn_outcome(release: &str, failures: &[String]) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::CdnIncomplete {
        release: release.to_string(),
        reason: failures.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(hash: &str, class: FileClass, body: bool) -> ReleaseFile {
        ReleaseFile {
            hash: hash.repeat(64)[..64].to_string(),
            size: 1,
            stored_size: 1,
            headers: "h".into(),
            class,
            content_type: "text/html".into(),
            cache_control: "no-cache".into(),
            content_encoding: None,
            content_disposition: None,
            stale: false,
            body: body.then(|| format!("objects/{}", &hash.repeat(64)[..64])),
            copy_of: None,
        }
    }

    fn rel(id: &str, previous: Option<&str>, files: &[(&str, ReleaseFile)]) -> Release {
        Release {
            format: FORMAT,
            id: id.into(),
            created: "2026-12-03T00:00:00Z".into(),
            tool: "t".into(),
            previous: previous.map(str::to_string),
            commit: None,
            message: None,
            rollback_of: None,
            files: files
                .iter()
                .map(|(k, f)| (k.to_string(), f.clone()))
                .collect(),
            routing: None,
        }
    }

    fn listed(r: &[&Release]) -> HashSet<String> {
        let mut l = HashSet::new();
        for r in r {
            for (k, f) in &r.files {
                l.insert(k.clone());
                if let Some(b) = &f.body {
                    l.insert(format!(".cdnsync/{b}"));
                }
            }
        }
        l
    }

    #[test]
    fn changed_stable_files_are_restored_pages_last_and_new_ones_removed() {
        let old = rel(
            "r1",
            None,
            &[
                ("index.html", file("a", FileClass::Entry, true)),
                ("app.css", file("b", FileClass::Plain, true)),
                ("same.txt", file("c", FileClass::Plain, true)),
                ("js/app.1234abcd.js", file("d", FileClass::Asset, false)),
            ],
        );
        let new = rel(
            "r2",
            Some("r1"),
            &[
                ("index.html", file("e", FileClass::Entry, true)),
                ("app.css", file("f", FileClass::Plain, true)),
                ("same.txt", file("c", FileClass::Plain, true)),
                ("new.html", file("g", FileClass::Entry, true)),
            ],
        );
        let p = plan(&new, &old, &listed(&[&old, &new])).unwrap();
        let order: Vec<&str> = p.restore.iter().map(|r| r.rel.as_str()).collect();
        assert_eq!(order, ["app.css", "index.html"], "non-entries first");
        assert_eq!(
            p.restore[0].from,
            format!(".cdnsync/objects/{}", "b".repeat(64))
        );
        assert_eq!(p.remove, ["new.html"]);
        assert_eq!(p.unchanged, 2, "same.txt and the asset");
        assert!(
            p.files["new.html"].stale,
            "kept as stale: a later publish owns it"
        );
        assert_eq!((p.to.as_str(), p.from.as_str()), ("r1", "r2"));
    }

    #[test]
    fn refused_naming_what_is_gone_before_anything_changes() {
        let old = rel(
            "r1",
            None,
            &[
                ("index.html", file("a", FileClass::Entry, true)),
                ("legacy.html", file("b", FileClass::Entry, false)),
            ],
        );
        let new = rel(
            "r2",
            Some("r1"),
            &[("index.html", file("c", FileClass::Entry, true))],
        );
        let mut l = listed(&[&old, &new]);
        l.remove(&format!(".cdnsync/objects/{}", "a".repeat(64)));
        let missing = plan(&new, &old, &l).unwrap_err();
        assert!(
            missing
                .iter()
                .any(|m| m.starts_with("index.html (stored body")),
            "{missing:?}"
        );
        assert!(
            missing
                .iter()
                .any(|m| m.contains("before cdnsync stored bodies")),
            "{missing:?}"
        );
    }

    #[test]
    fn the_target_is_the_one_asked_for_else_the_one_before() {
        let cur = rel("r3", Some("r2"), &[]);
        let ids = ["r1".to_string(), "r2".into(), "r3".into()];
        assert_eq!(pick_target(&cur, None, &ids).unwrap(), "r2");
        assert_eq!(pick_target(&cur, Some("r1"), &ids).unwrap(), "r1");
        assert!(pick_target(&cur, Some("r3"), &ids).is_err(), "already live");
        let first = rel("r1", None, &[]);
        assert!(
            pick_target(&first, None, &ids[..1]).is_err(),
            "nothing older"
        );
        let adopted = rel("r3", None, &[]);
        assert_eq!(pick_target(&adopted, None, &ids).unwrap(), "r2");
    }
}
