//! Garbage collection of content-addressed objects (fingerprinted and
//! bundler-hashed files, stored bodies under `.cdnsync/objects/`): an object
//! goes once no kept release references it *and* the first release that
//! stopped referencing it is older than the grace period — so cached pages
//! and open tabs keep loading what they reference. Only keys listed in a
//! release manifest are ever candidates: what cdnsync did not write is never
//! touched. Planning is pure; [`run`] applies it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Result;
use crate::release::{self, META_DIR, Release};
use crate::rules::FileClass;
use crate::store::{Store, join_key};

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Newest releases whose objects are always kept (default 5).
    pub keep: usize,
    /// How long an object stays after the first release that dropped it.
    pub grace: Duration,
    pub max_delete: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcPlan {
    /// Keys (relative to the prefix) to delete.
    pub delete: Vec<String>,
    /// Release manifests no longer needed (older than the kept ones, with
    /// nothing of theirs left in grace).
    pub drop_releases: Vec<String>,
    /// Unreferenced but still inside the grace period.
    pub in_grace: usize,
    pub kept_releases: Vec<String>,
    /// Set when `max_delete` stopped the collection.
    pub blocked: Option<String>,
}

/// Keys a release needs to stay restorable: content-addressed files and
/// stored bodies (relative to the prefix).
fn collectable(r: &Release) -> impl Iterator<Item = String> + '_ {
    r.files
        .values()
        .zip(r.files.keys())
        .filter(|(f, _)| !f.stale)
        .flat_map(|(f, rel)| {
            let ca = matches!(f.class, FileClass::Asset | FileClass::Hashed).then(|| rel.clone());
            let body = f.body.as_ref().map(|b| format!("{META_DIR}/{b}"));
            ca.into_iter().chain(body)
        })
}

/// Every key a release lists, whatever its class, with the stored bodies
/// and copy sources it names: none of these may go while it is kept.
fn listed_by(r: &Release) -> impl Iterator<Item = String> + '_ {
    r.files.iter().flat_map(|(rel, f)| {
        std::iter::once(rel.clone())
            .chain(f.body.as_ref().map(|b| format!("{META_DIR}/{b}")))
            .chain(f.copy_of.clone())
    })
}

/// Whether gc may ever delete a key (relative to the prefix): a site key
/// (never inside `.cdnsync/`), or a stored body under `.cdnsync/objects/`.
fn deletable(k: &str) -> bool {
    match k.strip_prefix(&format!("{META_DIR}/objects/")) {
        Some(name) => {
            let hex = name.strip_suffix(".gz").unwrap_or(name);
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => release::key_problem(k).is_none(),
    }
}

fn created(r: &Release) -> OffsetDateTime {
    OffsetDateTime::parse(&r.created, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Decide what to collect. `releases` oldest first; `live` the current id;
/// `listed` the keys present (relative to the prefix).
pub fn plan(
    releases: &[Release],
    live: Option<&str>,
    listed: &HashSet<String>,
    now: OffsetDateTime,
    opts: &GcOptions,
) -> GcPlan {
    let n = releases.len();
    let kept_from = n.saturating_sub(opts.keep.max(1));
    let mut kept: Vec<&Release> = releases[kept_from..].iter().collect();
    if let Some(l) = live
        && !kept.iter().any(|r| r.id == l)
        && let Some(r) = releases.iter().find(|r| r.id == l)
    {
        kept.push(r);
    }
    let kept_ids: HashSet<&str> = kept.iter().map(|r| r.id.as_str()).collect();
    // Everything a kept release lists stays, whatever its class in any
    // other record.
    let needed: HashSet<String> = kept.iter().flat_map(|r| listed_by(r)).collect();

    // For every key: the index of the last release referencing it.
    let mut last_ref: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in releases.iter().enumerate() {
        for k in collectable(r) {
            last_ref.insert(k, i);
        }
    }
    let mut out = GcPlan {
        kept_releases: kept.iter().map(|r| r.id.clone()).collect(),
        ..Default::default()
    };
    let mut grace_releases: HashSet<usize> = HashSet::new();
    for (k, &i) in &last_ref {
        if needed.contains(k) || !listed.contains(k) || !deletable(k) {
            continue;
        }
        // Dropped by the release after the last one that had it.
        let dropped_at = releases.get(i + 1).map(created).unwrap_or(now);
        if now - dropped_at >= opts.grace {
            out.delete.push(k.clone());
        } else {
            out.in_grace += 1;
            grace_releases.insert(i);
        }
    }
    // Old manifests go once none of their objects is waiting out its grace.
    let oldest_grace = grace_releases.iter().min().copied().unwrap_or(usize::MAX);
    out.drop_releases = releases
        .iter()
        .enumerate()
        .filter(|(i, r)| !kept_ids.contains(r.id.as_str()) && *i < oldest_grace && *i < kept_from)
        .map(|(_, r)| r.id.clone())
        .collect();
    if out.delete.len() > opts.max_delete {
        out.blocked = Some(format!(
            "garbage collection would delete {} objects, more than --max-delete {}; nothing was collected",
            out.delete.len(),
            opts.max_delete
        ));
        out.delete.clear();
        out.drop_releases.clear();
    }
    out
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    #[serde(flatten)]
    pub plan: GcPlan,
    pub deleted: usize,
    pub dry_run: bool,
    pub warnings: Vec<crate::warning::Warning>,
}

/// Load every release, plan, and (unless `dry_run`) delete. The caller
/// holds the lock.
pub async fn run(
    store: &dyn Store,
    prefix: &str,
    now: OffsetDateTime,
    opts: &GcOptions,
    dry_run: bool,
) -> Result<GcReport> {
    run_listed(store, prefix, now, opts, dry_run, None).await
}

/// [`run`], with the prefix's keys (relative) when the caller listed them
/// already under the same lock (a publish): no second listing.
pub async fn run_listed(
    store: &dyn Store,
    prefix: &str,
    now: OffsetDateTime,
    opts: &GcOptions,
    dry_run: bool,
    listed: Option<HashSet<String>>,
) -> Result<GcReport> {
    use futures::StreamExt;
    let ids = release::list_ids(store, prefix).await?;
    // Release records are small: read them 16 at a time, in id order.
    let releases: Vec<Release> = futures::stream::iter(ids.iter())
        .map(|id| release::read(store, prefix, id))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let live = release::current_id(store, prefix).await?;
    let listed: HashSet<String> = match listed {
        Some(l) => l,
        None => crate::remote::list_relative(store, prefix).await?,
    };
    let p = plan(&releases, live.as_deref(), &listed, now, opts);
    let mut report = GcReport {
        plan: p,
        dry_run,
        ..Default::default()
    };
    if dry_run || report.plan.delete.is_empty() && report.plan.drop_releases.is_empty() {
        return Ok(report);
    }
    let keys: Vec<String> = report
        .plan
        .delete
        .iter()
        .map(|k| join_key(prefix, k))
        .collect();
    let failed = store.delete_many(&keys).await?;
    report.deleted = keys.len() - failed.len();
    let all_deleted = failed.is_empty();
    report
        .warnings
        .extend(failed.into_iter().map(crate::warning::Warning::from));
    if all_deleted {
        // Manifests last: only once their objects are gone.
        let mut mk = Vec::new();
        for id in &report.plan.drop_releases {
            mk.push(release::release_key(prefix, id));
            mk.push(release::asset_manifest_key(prefix, id));
        }
        let failed = store.delete_many(&mk).await?;
        report
            .warnings
            .extend(failed.into_iter().map(crate::warning::Warning::from));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{FORMAT, ReleaseFile};
    use time::macros::datetime;

    fn file(class: FileClass, body: Option<&str>) -> ReleaseFile {
        ReleaseFile {
            hash: "h".into(),
            size: 1,
            stored_size: 1,
            headers: "d".into(),
            class,
            content_type: "t".into(),
            cache_control: "c".into(),
            content_encoding: None,
            content_disposition: None,
            stale: false,
            body: body.map(str::to_string),
            copy_of: None,
        }
    }

    /// Release `i` created on day `day`, with an index page (body b{i}) and
    /// the given assets.
    fn rel(i: u32, day: u8, assets: &[&str]) -> Release {
        let mut files = BTreeMap::new();
        files.insert(
            "index.html".to_string(),
            file(FileClass::Entry, Some(&format!("objects/{i:064x}"))),
        );
        for a in assets {
            files.insert(a.to_string(), file(FileClass::Asset, None));
        }
        Release {
            format: FORMAT,
            id: format!("r{i}"),
            created: format!("2026-11-{day:02}T00:00:00Z"),
            tool: "t".into(),
            previous: None,
            commit: None,
            message: None,
            rollback_of: None,
            files,
            routing: None,
        }
    }

    fn listed(keys: &[&str]) -> HashSet<String> {
        keys.iter().map(std::string::ToString::to_string).collect()
    }

    /// The stored body of release `i`'s index page.
    fn body(i: u32) -> String {
        format!(".cdnsync/objects/{i:064x}")
    }

    #[test]
    fn keeps_what_kept_releases_and_the_grace_period_need() {
        let rs = vec![
            rel(1, 1, &["a.1.css", "old.1.js"]),
            rel(2, 2, &["a.1.css"]),  // old.1.js dropped on day 2
            rel(3, 20, &["a.2.css"]), // a.1.css dropped on day 20
            rel(4, 21, &["a.2.css", "x.1.js"]),
        ];
        let all = listed(&[
            "a.1.css",
            "old.1.js",
            "a.2.css",
            "x.1.js",
            "untracked.txt",
            &body(1),
            &body(2),
            &body(3),
            &body(4),
        ]);
        let opts = GcOptions {
            keep: 2,
            grace: Duration::from_secs(7 * 86400),
            max_delete: 100,
        };
        let p = plan(
            &rs,
            Some("r4"),
            &all,
            datetime!(2026-11-22 00:00:00 UTC),
            &opts,
        );
        // old.1.js: dropped day 2 (> 7 days ago) → delete; bodies of r1, r2 likewise
        // (dropped on days 2 and 20: b2 is in grace). a.1.css: dropped day 20 → grace.
        let mut d = p.delete.clone();
        d.sort();
        assert_eq!(d, [body(1), "old.1.js".to_string()]);
        assert_eq!(p.in_grace, 2);
        assert_eq!(p.kept_releases, ["r3", "r4"]);
        // r1's objects are gone, r2 still has a.1.css and b2 in grace.
        assert_eq!(p.drop_releases, ["r1"]);

        // A week later everything unreferenced goes.
        let p = plan(
            &rs,
            Some("r4"),
            &all,
            datetime!(2026-12-30 00:00:00 UTC),
            &opts,
        );
        assert_eq!(p.delete.len(), 4);
        assert_eq!(p.in_grace, 0);
        assert_eq!(p.drop_releases, ["r1", "r2"]);
        // Never the untracked key, never what kept releases use.
        assert!(
            !p.delete
                .iter()
                .any(|k| k == "untracked.txt" || k == "a.2.css" || k == "x.1.js")
        );
    }

    #[test]
    fn live_release_is_always_kept_and_max_delete_blocks() {
        let rs = vec![
            rel(1, 1, &["a.css"]),
            rel(2, 2, &["b.css"]),
            rel(3, 3, &["c.css"]),
        ];
        let all = listed(&["a.css", "b.css", "c.css"]);
        let opts = GcOptions {
            keep: 1,
            grace: Duration::ZERO,
            max_delete: 100,
        };
        // Rolled back to r1: r1 stays whole.
        let p = plan(
            &rs,
            Some("r1"),
            &all,
            datetime!(2026-12-01 00:00:00 UTC),
            &opts,
        );
        assert_eq!(p.delete, ["b.css"]);
        let opts = GcOptions {
            max_delete: 0,
            ..opts
        };
        let p = plan(
            &rs,
            Some("r3"),
            &all,
            datetime!(2026-12-01 00:00:00 UTC),
            &opts,
        );
        assert!(p.delete.is_empty() && p.blocked.is_some());
    }

    #[test]
    fn never_deletes_what_a_kept_release_lists_whatever_its_class() {
        // r1 had the module as bundler output (content-addressed); r2 made
        // it an entry (a rule), so r2 still serves it under the same key.
        let mut r1 = rel(1, 1, &["js/app-B4x9Tz2k.js"]);
        r1.files.get_mut("js/app-B4x9Tz2k.js").unwrap().class = FileClass::Hashed;
        let mut r2 = rel(2, 2, &[]);
        r2.files.insert(
            "js/app-B4x9Tz2k.js".into(),
            file(FileClass::Entry, Some(&format!("objects/{:064x}", 99))),
        );
        // A forged older record calling the live page and cdnsync's own
        // keys assets.
        let mut r0 = rel(0, 1, &["index.html"]);
        r0.id = "r0".into();
        let all = listed(&[
            "js/app-B4x9Tz2k.js",
            "index.html",
            ".cdnsync/current",
            ".cdnsync/lock",
            &body(1),
        ]);
        let opts = GcOptions {
            keep: 1,
            grace: Duration::ZERO,
            max_delete: 100,
        };
        let p = plan(
            &[r0, r1, r2],
            Some("r2"),
            &all,
            datetime!(2026-12-30 00:00:00 UTC),
            &opts,
        );
        assert!(!p.delete.iter().any(|k| k == "js/app-B4x9Tz2k.js"), "{p:?}");
        assert!(!p.delete.iter().any(|k| k == "index.html"), "{p:?}");
        assert_eq!(p.delete, [body(1)], "only r1's own body goes");
        for k in [
            ".cdnsync/current",
            ".cdnsync/lock",
            "../x",
            "/abs",
            ".cdnsync/releases/r.json",
        ] {
            assert!(!deletable(k), "{k}");
        }
        assert!(deletable(&body(7)) && deletable("img/a.1.png"));
    }
}
