//! Applies a [`Plan`] in the order that keeps the live site whole: phase 1
//! uploads (content-addressed objects and stored bodies), phase 2 switches
//! stable names live (non-entries before pages), phase 3 records the
//! release and `current`, phase 4 invalidates, then deletes — and deletes
//! only when everything before succeeded. The moving of objects is the
//! transfer engine's ([`crate::transfer::Runner`]); this is the order.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::headers::META_HASH;
use crate::plan::{Desired, Plan, SwitchFrom, Upload};
use crate::progress::Phase;
use crate::release::{self, FORMAT, Release, ReleaseFile};
use crate::rules::FileClass;
use crate::store::{PutOptions, StoreError};
use crate::transfer::{Runner, Uploaded, headers_of};
use crate::warning::Warning;

/// What a publish records and notifies besides its objects.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Extra internal objects (key, JSON body) written with the release
    /// record, before `current` (the asset manifest).
    pub extra_objects: Vec<(String, Bytes)>,
    /// Recorded in the release manifest.
    pub commit: Option<String>,
    pub message: Option<String>,
    /// Phase 4: CDN invalidation of changed stable-name paths.
    pub cdn: Option<crate::cdn::CdnOptions>,
    /// Phase 4, first: the routing the edge must run (also checked on a
    /// no-op, so a routing update that failed is made by the next run).
    pub edge: Option<crate::cdn::EdgeRouting>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Objects now live (PUT or switched), by relative path.
    pub uploaded: BTreeMap<String, Uploaded>,
    /// Bodies stored under `.cdnsync/objects/` in this run.
    pub bodies_stored: usize,
    pub bytes_sent: u64,
    pub deleted: usize,
    pub warnings: Vec<crate::warning::Warning>,
    pub upload_ms: u64,
    pub switch_ms: u64,
    /// First to last live copy of the switch phase.
    pub switch_window_ms: u64,
    pub record_ms: u64,
    pub invalidate_ms: u64,
    pub delete_ms: u64,
    pub invalidations: Vec<crate::cdn::Invalidation>,
    /// Invalidations or routing updates that failed (the release is live
    /// regardless).
    pub cdn_failures: Vec<String>,
    /// What each CDN did with the routing.
    pub routing: Vec<crate::cdn::RoutingApplied>,
}

/// One unit of work of a phase.
#[derive(Clone, Copy)]
enum Job<'a> {
    /// Phase 1: a content-addressed object, PUT to its live key.
    Put(&'a Upload),
    /// Phase 1: the body of a stable-name file, PUT to `.cdnsync/objects/`.
    Body(&'a Desired),
    /// Phase 2: a stable-name file goes live by copying its stored body.
    Switch(&'a Upload),
}

impl Job<'_> {
    fn object(&self) -> &Desired {
        match self {
            Job::Put(u) | Job::Switch(u) => &u.object,
            Job::Body(d) => d,
        }
    }
}

/// Sizes and encodings of stored bodies (by body name) and of
/// content-addressed objects (by [`object_slot`]) known so far.
type Known = BTreeMap<String, (u64, Option<String>)>;

/// Apply `plan`, in the order that keeps the live site whole:
/// (1) content-addressed objects and the bodies of stable-name files into
/// `.cdnsync/objects/`, (2) the switch: each changed stable-name file
/// copied live from its body, non-entries before entries, (3) the asset
/// manifest, the release record, then `current`, (5) deletes. A failure
/// or Ctrl-C before (2) leaves the live site untouched; during (2) each key
/// is old or new. On any failure no release is recorded and nothing is
/// deleted.
pub async fn execute(
    plan: &Plan,
    rn: &Runner<'_>,
    clock: &dyn Clock,
    opts: &ExecOptions,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    if plan.noop {
        edge_phase(rn, opts, &mut out).await;
        return Ok(out);
    }
    let mut known = Known::new();
    let t0 = Instant::now();
    upload_phase(plan, rn, &mut out, &mut known).await?;
    out.upload_ms = t0.elapsed().as_millis() as u64;
    let t1 = Instant::now();
    switch_phase(plan, rn, &mut out, &mut known).await?;
    out.switch_ms = t1.elapsed().as_millis() as u64;

    // Phase 3: the release record, written after every object it lists exists.
    let t2 = Instant::now();
    let (store, sse) = (rn.store, &rn.opts.sse);
    let mut release = build_release(plan, &out, clock);
    release.commit = opts.commit.clone();
    release.message = opts.message.clone();
    for (key, body) in &opts.extra_objects {
        let o = PutOptions::internal("application/json", sse);
        store.put(key, body.clone(), &o).await?;
    }
    release::write(store, &rn.opts.prefix, &release, sse).await?;
    out.record_ms = t2.elapsed().as_millis() as u64;

    // Phase 4: invalidate what changed or went away under a stable name —
    // never new keys, never content-addressed ones.
    edge_phase(rn, opts, &mut out).await;
    if let Some(cdn) = &opts.cdn {
        let t = Instant::now();
        let mut keys: Vec<String> = plan
            .uploads
            .iter()
            .filter(|u| u.switch.is_some() && u.reason != crate::plan::Reason::New)
            .map(|u| u.object.key.clone())
            .collect();
        keys.extend(plan.deletes.iter().map(|d| d.key.clone()));
        let stop = || rn.cancel.is_cancelled();
        let (inv, failed) =
            crate::invalidate::all(cdn, &keys, &plan.release, &rn.retry, &stop).await;
        out.invalidations = inv;
        out.cdn_failures.extend(failed);
        out.invalidate_ms += t.elapsed().as_millis() as u64;
    }

    // Deletes: only now, and only what the plan allowed.
    let t3 = Instant::now();
    if !plan.deletes.is_empty() && !rn.cancel.is_cancelled() {
        let keys: Vec<String> = plan.deletes.iter().map(|d| d.key.clone()).collect();
        // Failures are warnings: the release record lists the keys as
        // stale, so the next run deletes them.
        match rn.store.delete_many(&keys).await {
            Ok(failed) => {
                out.deleted = keys.len() - failed.len();
                out.warnings.extend(failed.into_iter().map(Warning::from));
            }
            Err(e) => out.warnings.push(Warning::DeletesFailed(e.to_string())),
        }
    }
    out.delete_ms = t3.elapsed().as_millis() as u64;
    Ok(out)
}

/// The edge runs the release's routing, or none of cdnsync's when the
/// release has none (idempotent: a CDN changes only what differs).
async fn edge_phase(rn: &Runner<'_>, opts: &ExecOptions, out: &mut Outcome) {
    let Some(cdn) = &opts.cdn else {
        return;
    };
    let t = Instant::now();
    let stop = || rn.cancel.is_cancelled();
    let (done, failed) =
        crate::invalidate::routing(cdn, &rn.opts.prefix, opts.edge.as_ref(), &rn.retry, &stop)
            .await;
    out.routing = done;
    out.cdn_failures.extend(failed);
    out.invalidate_ms += t.elapsed().as_millis() as u64;
}

/// Phase 1: content-addressed objects and the bodies of stable-name files
/// (pages with the same bytes share one stored body: stored once).
async fn upload_phase(
    plan: &Plan,
    rn: &Runner<'_>,
    out: &mut Outcome,
    known: &mut Known,
) -> Result<()> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    for u in &plan.uploads {
        if u.switch.is_none() {
            jobs.push(Job::Put(u));
        } else if u.body_to_store() && bodies.insert(u.object.body_name()) {
            jobs.push(Job::Body(&u.object));
        }
    }
    for d in &plan.bodies_missing {
        if bodies.insert(d.body_name()) {
            jobs.push(Job::Body(d));
        }
    }
    let bytes: u64 = jobs.iter().map(|j| j.object().size).sum();
    let phase = Phase::new(rn.opts.progress, "upload", jobs.len() as u64, bytes);
    let r = run_phase(rn, jobs, &phase, out, known, plan.uploads.len()).await;
    phase.finish();
    r
}

/// Phase 2: the switch. Non-entry stable files (and the original-URL
/// copies of renamed assets) first, pages last.
async fn switch_phase(
    plan: &Plan,
    rn: &Runner<'_>,
    out: &mut Outcome,
    known: &mut Known,
) -> Result<()> {
    // Copies of content-addressed objects this run did not upload: their
    // stored size and encoding are known from the remote state.
    let sources: std::collections::HashSet<&str> = plan
        .uploads
        .iter()
        .filter_map(|u| match &u.switch {
            Some(SwitchFrom::Object { rel }) => Some(rel.as_str()),
            _ => None,
        })
        .collect();
    for k in plan
        .unchanged
        .iter()
        .filter(|k| sources.contains(k.object.rel.as_str()))
    {
        known.insert(
            object_slot(&k.object.rel),
            (k.stored_size, k.content_encoding.clone()),
        );
    }
    let (plain, entries): (Vec<&Upload>, Vec<&Upload>) = plan
        .uploads
        .iter()
        .filter(|u| u.switch.is_some())
        .partition(|u| u.object.class != FileClass::Entry);
    let n_switch = plain.len() + entries.len();
    let phase = Phase::new(rn.opts.progress, "switch", n_switch as u64, 0);
    let mut first_copy: Option<Instant> = None;
    for wave in [plain, entries] {
        if wave.is_empty() {
            continue;
        }
        first_copy.get_or_insert_with(Instant::now);
        let jobs = wave.into_iter().map(Job::Switch).collect();
        if let Err(e) = run_phase(rn, jobs, &phase, out, known, n_switch).await {
            phase.finish();
            return Err(e);
        }
    }
    phase.finish();
    out.switch_window_ms = first_copy
        .map(|f| f.elapsed().as_millis() as u64)
        .unwrap_or(0);
    Ok(())
}

/// Run one phase's jobs; one error for the phase if any job failed or the
/// run was interrupted.
async fn run_phase(
    rn: &Runner<'_>,
    jobs: Vec<Job<'_>>,
    phase: &Phase,
    out: &mut Outcome,
    known: &mut Known,
    total: usize,
) -> Result<()> {
    let results = {
        let known = &*known;
        rn.each(jobs, |j| async move {
            match j {
                Job::Put(u) => rn.upload(&u.object, u.creates_only(), phase).await,
                Job::Body(d) => rn.store_body(d, phase).await,
                Job::Switch(u) => switch(rn, u, known, phase).await,
            }
        })
        .await
    };
    let mut failures = Vec::new();
    for (j, r) in results {
        match r {
            Ok(up) => {
                phase.object_done();
                if matches!(j, Job::Switch(_)) {
                    out.uploaded.insert(j.object().rel.clone(), up);
                    continue;
                }
                out.bytes_sent += up.stored_size;
                let entry = (up.stored_size, up.content_encoding.clone());
                match j {
                    Job::Body(d) => {
                        out.bodies_stored += 1;
                        known.insert(d.body_name(), entry);
                    }
                    _ => {
                        known.insert(object_slot(&j.object().rel), entry);
                        out.uploaded.insert(j.object().rel.clone(), up);
                    }
                }
            }
            Err(Error::Interrupted) => {}
            Err(e) => failures.push(e),
        }
    }
    if let Some(e) = summarize(failures, total) {
        return Err(e);
    }
    if rn.cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// Where the size and encoding of a content-addressed object of the site
/// are kept among the stored bodies' (`/` cannot start a body name).
fn object_slot(rel: &str) -> String {
    format!("/{rel}")
}

/// Phase 2: copy the stored body (or, for the original URL of a renamed
/// asset, its content-addressed object) to the live key with the file's
/// headers.
async fn switch(rn: &Runner<'_>, u: &Upload, known: &Known, phase: &Phase) -> Result<Uploaded> {
    let o = &u.object;
    let (src, slot) = match &u.switch {
        Some(SwitchFrom::Object { rel }) => (
            crate::store::join_key(&rn.opts.prefix, rel),
            object_slot(rel),
        ),
        _ => (
            release::body_key(&rn.opts.prefix, &o.body_name()),
            o.body_name(),
        ),
    };
    let (stored_size, encoding) = match known.get(&slot) {
        Some((size, enc)) => (*size, enc.clone()),
        None => match rn.store.head(&src).await? {
            Some(m) if m.metadata.get(META_HASH).map(String::as_str) == Some(o.hash.as_str()) => {
                (m.size, m.content_encoding)
            }
            Some(_) if matches!(u.switch, Some(SwitchFrom::Body(_))) => {
                return Err(Error::Store(StoreError::Other {
                    key: src,
                    message: "stored body does not carry the expected content hash".into(),
                }));
            }
            // The release record names the body, but it is gone (deleted by
            // hand?): store it again from the local file, then switch.
            None if matches!(u.switch, Some(SwitchFrom::Body(_))) => {
                let up = rn.store_body(o, phase).await?;
                (up.stored_size, up.content_encoding)
            }
            _ => {
                return Err(Error::Store(StoreError::Other {
                    key: src,
                    message:
                        "the content-addressed object an original URL copies is missing or differs"
                            .into(),
                }));
            }
        },
    };
    rn.copy(&src, &o.key, &headers_of(o, encoding.as_deref()))
        .await?;
    Ok(Uploaded {
        key: o.key.clone(),
        stored_size,
        content_encoding: encoding,
    })
}

/// One error for the whole run: the first fatal one (access denied,
/// bucket missing, wrong region), else the first local-input one, else a
/// count of transfer failures.
fn summarize(mut failures: Vec<Error>, total: usize) -> Option<Error> {
    if failures.is_empty() {
        return None;
    }
    if let Some(i) = failures
        .iter()
        .position(|e| matches!(e, Error::Store(s) if s.is_fatal()))
    {
        return Some(failures.swap_remove(i));
    }
    if let Some(i) = failures.iter().position(|e| {
        matches!(
            e,
            Error::FileChanged { .. } | Error::Io { .. } | Error::Input { .. }
        )
    }) {
        return Some(failures.swap_remove(i));
    }
    Some(Error::Transfer {
        failed: failures.len(),
        total,
        first: failures[0].to_string(),
    })
}

/// The manifest of the release this plan produces.
pub fn build_release(plan: &Plan, out: &Outcome, clock: &dyn Clock) -> Release {
    let mut files = BTreeMap::new();
    let file = |d: &Desired, stored_size: u64, enc: Option<String>| ReleaseFile {
        hash: d.hash.clone(),
        size: d.size,
        stored_size,
        headers: d.digest.clone(),
        class: d.class,
        content_type: d.headers.content_type.clone(),
        cache_control: d.headers.cache_control.clone(),
        content_encoding: enc,
        content_disposition: d.headers.content_disposition.clone(),
        stale: false,
        body: (d.is_stable() && d.copy_of.is_none()).then(|| d.body_name()),
        copy_of: d.copy_of.clone(),
    };
    for u in &plan.uploads {
        let up = out.uploaded.get(&u.object.rel);
        let (size, enc) = up
            .map(|x| (x.stored_size, x.content_encoding.clone()))
            .unwrap_or((u.object.size, None));
        files.insert(u.object.rel.clone(), file(&u.object, size, enc));
    }
    for k in &plan.unchanged {
        files.insert(
            k.object.rel.clone(),
            file(&k.object, k.stored_size, k.content_encoding.clone()),
        );
    }
    // Keys leaving the site stay listed (as stale) until a later publish
    // sees them gone: if this run's deletes fail or were held back, the
    // next one still knows to delete them.
    for d in plan.deletes.iter().chain(&plan.retained) {
        let mut f = d.previous.clone();
        f.stale = true;
        files.insert(d.rel.clone(), f);
    }
    Release {
        format: FORMAT,
        id: plan.release.clone(),
        created: release::created_now(clock),
        tool: format!("cdnsync {}", env!("CARGO_PKG_VERSION")),
        previous: plan.previous_release.clone(),
        commit: None,
        message: None,
        rollback_of: None,
        files,
        routing: plan.routing.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::clock::SystemClock;
    use crate::plan::{self, PlanOptions};
    use crate::release::read_current;
    use crate::remote;
    use crate::retry::Retry;
    use crate::rules::{Defaults, Rules};
    use crate::scan;
    use crate::store::Sse;
    use crate::store::memory::MemoryStore;
    use crate::transfer::{Cancel, RetryingStore, TransferOptions};

    fn site(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, b) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
        d
    }

    fn opts() -> TransferOptions {
        TransferOptions {
            concurrency: 2,
            ..TransferOptions::new("", Sse::Aes256)
        }
    }

    /// Execute through the engine as a command does: the store's calls
    /// retried (quickly), the run cancellable.
    async fn exec(
        p: &Plan,
        store: &Arc<MemoryStore>,
        o: &TransferOptions,
        cancel: Cancel,
    ) -> Result<Outcome> {
        let retry = Retry::new(3, Duration::from_millis(1), Arc::new(|| 0));
        let retrying = RetryingStore::new(store.clone(), retry.clone(), cancel.clone());
        let rn = Runner::new(&retrying, o.clone(), cancel, retry);
        execute(p, &rn, &SystemClock, &ExecOptions::default()).await
    }

    async fn make_plan(store: &MemoryStore, dir: &std::path::Path) -> Plan {
        let rules = Rules::new(&[], Defaults::default()).unwrap();
        let inv = scan::scan(dir, &rules).unwrap();
        let desired = plan::desired(&inv, &rules, None, "", &Sse::Aes256, true).unwrap();
        let local: HashSet<&str> = desired.iter().map(|d| d.rel.as_str()).collect();
        let state = remote::load(store, "", &local, 4).await.unwrap();
        let id = release::new_release_id(&SystemClock);
        let popts = PlanOptions {
            prefix: String::new(),
            sse: Sse::Aes256,
            max_delete: 256,
            allow_empty: false,
            routing: None,
        };
        plan::plan(&id, desired, &inv, &state, &popts).unwrap()
    }

    async fn publish(
        store: &Arc<MemoryStore>,
        dir: &std::path::Path,
        o: &TransferOptions,
    ) -> Result<Outcome> {
        let p = make_plan(store, dir).await;
        exec(&p, store, o, Cancel::new()).await
    }

    #[tokio::test]
    async fn transient_errors_are_retried() {
        let d = site(&[("index.html", b"<p>x</p>"), ("a.css", b"a{}")]);
        let store = Arc::new(MemoryStore::new());
        let n = Arc::new(AtomicU32::new(0));
        let n2 = n.clone();
        store.fail_when(move |op, key| {
            (op == "copy" && key == "a.css" && n2.fetch_add(1, Ordering::SeqCst) < 2).then(|| {
                StoreError::Transient {
                    key: key.into(),
                    message: "503 SlowDown".into(),
                }
            })
        });
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.uploaded.len(), 2);
        assert_eq!(n.load(Ordering::SeqCst), 3, "two failures then success");
        assert_eq!(store.object("a.css").unwrap().body.as_ref(), b"a{}");
        // Stable-name files went through their stored bodies.
        assert_eq!(out.bodies_stored, 2);
        assert_eq!(store.op_count("copy"), 4);
        let body = crate::release::body_key(
            "",
            &crate::release::body_name(&blake3::hash(b"a{}").to_hex(), true),
        );
        assert_eq!(store.object(&body).unwrap().body.as_ref(), b"a{}");
    }

    #[tokio::test]
    async fn failed_switch_of_a_plain_file_holds_pages_back() {
        let d = site(&[("index.html", b"<p>v1</p>"), ("a.css", b"a{}")]);
        let store = Arc::new(MemoryStore::new());
        publish(&store, d.path(), &opts()).await.unwrap();
        std::fs::write(d.path().join("index.html"), b"<p>v2</p>").unwrap();
        std::fs::write(d.path().join("a.css"), b"a{color:red}").unwrap();
        store.fail_when(|op, key| {
            (op == "copy" && key == "a.css").then(|| StoreError::Transient {
                key: key.into(),
                message: "reset".into(),
            })
        });
        let e = publish(&store, d.path(), &opts()).await.unwrap_err();
        assert!(matches!(e, Error::Transfer { .. }), "{e}");
        assert_eq!(
            store.object("index.html").unwrap().body.as_ref(),
            b"<p>v1</p>",
            "page not switched"
        );
        // Bodies of the new versions are stored; the rerun only switches.
        store.clear_failures();
        store.reset_counts();
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.bodies_stored, 0);
        assert_eq!(store.op_count("copy"), 2);
        assert_eq!(
            store.object("index.html").unwrap().body.as_ref(),
            b"<p>v2</p>"
        );
    }

    #[tokio::test]
    async fn failed_asset_records_nothing_deletes_nothing_and_holds_pages_back() {
        let d = site(&[
            ("index.html", b"<p>v1</p>"),
            ("a.css", b"a{}"),
            ("old.html", b"old"),
        ]);
        let store = Arc::new(MemoryStore::new());
        publish(&store, d.path(), &opts()).await.unwrap();
        let live = read_current(store.as_ref(), "").await.unwrap().unwrap().id;

        std::fs::write(d.path().join("index.html"), b"<p>v2</p>").unwrap();
        std::fs::write(d.path().join("a.css"), b"a{color:red}").unwrap();
        std::fs::remove_file(d.path().join("old.html")).unwrap();
        // Every body upload of phase 1 fails.
        store.fail_when(|op, key| {
            (op == "put" && key.starts_with(".cdnsync/objects/")).then(|| StoreError::Transient {
                key: key.into(),
                message: "reset".into(),
            })
        });
        let e = publish(&store, d.path(), &opts()).await.unwrap_err();
        assert!(matches!(e, Error::Transfer { .. }), "{e}");
        assert_eq!(
            store.op_count("copy"),
            3,
            "no switch after a failed phase 1 (the copies are the first publish's)"
        );
        assert_eq!(
            read_current(store.as_ref(), "").await.unwrap().unwrap().id,
            live
        );
        assert!(store.object("old.html").is_some(), "nothing deleted");
        assert_eq!(
            store.object("index.html").unwrap().body.as_ref().len(),
            9,
            "page not switched"
        );

        // The next clean run converges.
        store.clear_failures();
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.deleted, 1);
        assert!(store.object("old.html").is_none());
    }

    #[tokio::test]
    async fn access_denied_stops_scheduling() {
        let files: Vec<(String, Vec<u8>)> = (0..50)
            .map(|i| (format!("p{i}.css"), vec![b'x'; 10]))
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_slice()))
            .collect();
        let d = site(&refs);
        let store = Arc::new(MemoryStore::new());
        store.fail_when(|op, key| {
            (op == "put").then(|| StoreError::Denied {
                key: key.into(),
                message: "AccessDenied".into(),
            })
        });
        let e = publish(&store, d.path(), &opts()).await.unwrap_err();
        assert!(matches!(&e, Error::Store(StoreError::Denied { .. })), "{e}");
        assert!(
            store.op_count("put") <= 4,
            "kept going after a fatal error: {}",
            store.op_count("put")
        );
    }

    #[tokio::test]
    async fn multipart_with_parts_as_big_as_the_memory_budget_completes() {
        // The default budget holds two default parts: reading a third must
        // wait for an upload to finish, not deadlock against it.
        let big: Vec<u8> = (0..(23 * 1024 * 1024 + 1))
            .map(|i| (i % 251) as u8)
            .collect();
        let d = site(&[("v.bin", &big)]);
        for budget in [5, 10, 12] {
            let store = Arc::new(MemoryStore::new());
            let mut o = opts();
            o.multipart_threshold = 6 * 1024 * 1024;
            o.part_size = 5 * 1024 * 1024;
            o.memory_budget = budget * 1024 * 1024;
            let done = tokio::time::timeout(Duration::from_secs(30), publish(&store, d.path(), &o))
                .await
                .expect("multipart upload deadlocked");
            done.unwrap();
            assert_eq!(store.object("v.bin").unwrap().body.as_ref(), &big[..]);
            assert_eq!(store.op_count("upload_part"), 5, "budget {budget} MiB");
        }
    }

    #[tokio::test]
    async fn multipart_from_disk_and_change_detection() {
        let big: Vec<u8> = (0..(12 * 1024 * 1024 + 5))
            .map(|i| (i % 241) as u8)
            .collect();
        let d = site(&[("index.html", b"<p>x</p>"), ("v.bin", &big)]);
        let store = Arc::new(MemoryStore::new());
        let mut o = opts();
        o.multipart_threshold = 6 * 1024 * 1024;
        o.part_size = 5 * 1024 * 1024;
        publish(&store, d.path(), &o).await.unwrap();
        assert_eq!(store.object("v.bin").unwrap().body.as_ref(), &big[..]);
        assert_eq!(store.op_count("upload_part"), 3);

        // A file rewritten between scan and upload fails the run, cleanly.
        let mut big2 = big.clone();
        big2[0] ^= 1;
        std::fs::write(d.path().join("v.bin"), &big2).unwrap();
        let p = make_plan(&store, d.path()).await;
        big2[1] ^= 1;
        std::fs::write(d.path().join("v.bin"), &big2).unwrap();
        let e = exec(&p, &store, &o, Cancel::new()).await.unwrap_err();
        assert!(matches!(e, Error::FileChanged { .. }), "{e}");
        assert_eq!(
            store.object("v.bin").unwrap().body.as_ref(),
            &big[..],
            "old object intact"
        );
        assert_eq!(store.op_count("abort_multipart"), 1);

        std::fs::write(d.path().join("index.html"), b"<p>changed</p>").unwrap();
        let p = make_plan(&store, d.path()).await;
        std::fs::write(d.path().join("index.html"), b"<p>changed again</p>").unwrap();
        let e = exec(&p, &store, &o, Cancel::new()).await.unwrap_err();
        assert!(matches!(e, Error::FileChanged { .. }), "{e}");
    }

    #[tokio::test]
    async fn failed_deletes_are_warnings_and_remembered() {
        let d = site(&[("index.html", b"<p>x</p>"), ("old.html", b"o")]);
        let store = Arc::new(MemoryStore::new());
        publish(&store, d.path(), &opts()).await.unwrap();
        std::fs::remove_file(d.path().join("old.html")).unwrap();
        store.fail_when(|op, key| {
            (op == "delete").then(|| StoreError::Transient {
                key: key.into(),
                message: "503".into(),
            })
        });
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.deleted, 0);
        assert!(
            out.warnings[0]
                .to_string()
                .contains("could not delete old.html"),
            "{:?}",
            out.warnings
        );
        let rel = read_current(store.as_ref(), "").await.unwrap().unwrap();
        assert!(rel.files["old.html"].stale);
        store.clear_failures();
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.deleted, 1);
        assert!(store.object("old.html").is_none());
    }

    #[tokio::test]
    async fn cancelled_run_records_nothing() {
        let d = site(&[("index.html", b"<p>x</p>"), ("a.css", b"a{}")]);
        let store = Arc::new(MemoryStore::new());
        let p = make_plan(&store, d.path()).await;
        let c = Cancel::new();
        c.cancel();
        let e = exec(&p, &store, &opts(), c).await.unwrap_err();
        assert!(matches!(e, Error::Interrupted));
        assert!(store.keys().is_empty());
    }
}
