//! `cdnsync rollback --to TARGET [ID]`: make an earlier release live again
//! without local files or uploads — every stable-name key is restored by a
//! server-side copy of its stored body, keys the release did not have are
//! removed, and the result is recorded as a new release.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use serde::Serialize;

use crate::commands::{Context, open_store};
use crate::config::{RollbackConfig, TargetConfig};
use crate::error::{Error, Result};
use crate::headers::{META_HASH, META_HEADERS};
use crate::output::{Render, View};
use crate::release::{self, FORMAT, Release, ReleaseFile};
use crate::rules::FileClass;
use crate::store::{PutOptions, Sse, Store, join_key};

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
}

fn is_stable(f: &ReleaseFile) -> bool {
    matches!(f.class, FileClass::Entry | FileClass::Plain)
        && (f.body.is_some() || f.copy_of.is_some())
}

fn put_options(f: &ReleaseFile, sse: &Sse) -> PutOptions {
    let mut metadata = BTreeMap::new();
    metadata.insert(META_HASH.to_string(), f.hash.clone());
    metadata.insert(META_HEADERS.to_string(), f.headers.clone());
    PutOptions {
        content_type: f.content_type.clone(),
        cache_control: f.cache_control.clone(),
        content_encoding: f.content_encoding.clone(),
        content_disposition: f.content_disposition.clone(),
        metadata,
        sse: sse.clone(),
        if_none_match: false,
        if_match: None,
    }
}

pub async fn run(cfg: &RollbackConfig, ctx: &Context) -> Result<RollbackReport> {
    let (store, prefix) = open_store(&cfg.remote).await?;
    store.check().await?;
    let (id, dry_run) = (cfg.id.as_deref(), cfg.dry_run);
    ctx.locked(
        &store,
        &prefix,
        &cfg.remote,
        "rollback",
        dry_run,
        async || rollback_locked(&cfg.remote, ctx, store.as_ref(), &prefix, id, dry_run).await,
    )
    .await
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

async fn rollback_locked(
    cfg: &TargetConfig,
    ctx: &Context,
    store: &dyn Store,
    prefix: &str,
    id: Option<&str>,
    dry_run: bool,
) -> Result<RollbackReport> {
    let current = release::read_current(store, prefix).await?.ok_or_else(|| {
        Error::Usage(format!(
            "nothing has been published to {} yet",
            cfg.target.display()
        ))
    })?;
    let target_id = match id {
        Some(i) => i.to_string(),
        // The release that was live before this one.
        None => match &current.previous {
            Some(p) => p.clone(),
            None => {
                let ids = release::list_ids(store, prefix).await?;
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
        },
    };
    if target_id == current.id {
        return Err(Error::Usage(format!("release {target_id} is already live")));
    }
    let target = release::read(store, prefix, &target_id).await?;

    // Everything the target release needs must still be in the bucket
    // before anything live changes.
    let listed: HashSet<String> = crate::remote::list_relative(store, prefix).await?;
    let meta = format!("{}/", release::META_DIR);
    let mut missing = Vec::new();
    for (rel, f) in target.files.iter().filter(|(_, f)| !f.stale) {
        match (&f.body, &f.copy_of) {
            (Some(b), _) if !listed.contains(&format!("{meta}{b}")) => {
                missing.push(format!("{rel} (stored body {b})"))
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
    if !missing.is_empty() {
        return Err(Error::Manifest {
            key: release::release_key(prefix, &target_id),
            reason: format!(
                "cannot roll back: {} object(s) it needs are gone (e.g. {}); nothing was changed",
                missing.len(),
                missing[0]
            ),
        });
    }

    let same = |rel: &str, f: &ReleaseFile| {
        current
            .files
            .get(rel)
            .is_some_and(|c| !c.stale && c.hash == f.hash && c.headers == f.headers)
            && listed.contains(rel)
    };
    // Non-entry stable files first, pages last (as in a publish).
    let mut restore: Vec<(&String, &ReleaseFile)> = target
        .files
        .iter()
        .filter(|(rel, f)| !f.stale && is_stable(f) && !same(rel, f))
        .collect();
    restore.sort_by_key(|(rel, f)| (f.class == FileClass::Entry, (*rel).clone()));
    let unchanged = target.files.values().filter(|f| !f.stale).count() - restore.len();
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
    let new_id = release::new_release_id(ctx.clock.as_ref());
    let mut report = RollbackReport {
        release: new_id.clone(),
        rolled_back_to: target_id.clone(),
        previous_release: current.id.clone(),
        dry_run,
        restored: restore.iter().map(|(r, _)| join_key(prefix, r)).collect(),
        deleted: remove.iter().map(|r| join_key(prefix, r)).collect(),
        unchanged,
        warnings: Vec::new(),
        invalidations: Vec::new(),
        cdn_failures: Vec::new(),
    };
    if dry_run {
        return Ok(report);
    }

    for wave in [FileClass::Plain, FileClass::Entry] {
        let jobs: Vec<_> = restore.iter().filter(|(_, f)| f.class == wave).collect();
        let results: Vec<Result<()>> =
            futures::stream::iter(jobs.into_iter().map(|(rel, f)| async move {
                let src = match (&f.body, &f.copy_of) {
                    (Some(b), _) => release::body_key(prefix, b),
                    (None, Some(c)) => join_key(prefix, c),
                    (None, None) => unreachable!("stable files have a body or copy a file"),
                };
                store
                    .copy(&src, &join_key(prefix, rel), &put_options(f, &cfg.sse))
                    .await
                    .map_err(Error::from)
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            return Err(e);
        }
    }

    // Record: the target's files under a new id, then `current`.
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
    let rec = Release {
        format: FORMAT,
        id: new_id,
        created: release::created_now(ctx.clock.as_ref()),
        tool: format!("cdnsync {}", env!("CARGO_PKG_VERSION")),
        previous: Some(current.id.clone()),
        commit: target.commit.clone(),
        message: Some(format!("rollback to {target_id}")),
        rollback_of: Some(target_id),
        files,
    };
    release::write(store, prefix, &rec, &cfg.sse).await?;

    let keys: Vec<String> = remove.iter().map(|r| join_key(prefix, r)).collect();
    if !keys.is_empty() {
        for (k, e) in store.delete_many(&keys).await? {
            report.warnings.push(crate::warning::Warning::DeleteFailed {
                key: k.to_string(),
                error: e.to_string(),
            });
        }
    }
    // Exactly the paths that changed.
    if let Some(cdn) = crate::connect::cdn_options(cfg).await? {
        let changed: Vec<String> = report
            .restored
            .iter()
            .chain(&report.deleted)
            .cloned()
            .collect();
        let (inv, failed) = crate::cdn::invalidate_all(&cdn, &changed, &report.release).await;
        report.invalidations = inv;
        report.cdn_failures = failed;
    }
    Ok(report)
}
