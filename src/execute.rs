//! Applies a [`Plan`] to a store: uploads (assets, then entries) with bounded
//! concurrency, bounded memory, retries and integrity checks; then the
//! release manifest and `current`; then deletes — and deletes only when
//! everything before succeeded.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::compress;
use crate::error::{Error, Result};
use crate::headers::{META_HASH, META_HEADERS};
use crate::plan::{Desired, Plan, SwitchFrom, Upload};
use crate::progress::{Phase, ProgressMode};
use crate::release::{self, FORMAT, Release, ReleaseFile};
use crate::rules::FileClass;
use crate::store::{CompletedPart, PutOptions, Sse, Store, StoreError};

/// A shared stop flag, set by Ctrl-C: no new work is started once set.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub prefix: String,
    pub sse: Sse,
    pub concurrency: usize,
    /// Files of this size and more go multipart (and are not compressed).
    pub multipart_threshold: u64,
    pub part_size: usize,
    /// Upper bound on file bytes held in memory by in-flight uploads.
    pub memory_budget: usize,
    /// Attempts per object on transient errors (on top of the SDK's own).
    pub attempts: u32,
    pub retry_base: Duration,
    pub progress: ProgressMode,
    /// Extra internal objects (key, JSON body) written with the release
    /// record, before `current` (the asset manifest).
    pub extra_objects: Vec<(String, Bytes)>,
    /// Recorded in the release manifest.
    pub commit: Option<String>,
    pub message: Option<String>,
    /// Phase 4: CDN invalidation of changed stable-name paths.
    pub cdn: Option<crate::cdn::CdnOptions>,
}

/// Multipart defaults and S3's minimum part size.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
pub const PART_SIZE: usize = 16 * 1024 * 1024;
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// `--multipart-threshold` / `--part-size` with their defaults, never below
/// S3's 5 MiB minimum part.
pub fn transfer_sizes(threshold: Option<u64>, part: Option<usize>) -> (u64, usize) {
    (
        threshold
            .unwrap_or(MULTIPART_THRESHOLD)
            .max(MIN_PART_SIZE as u64),
        part.unwrap_or(PART_SIZE).max(MIN_PART_SIZE),
    )
}

impl ExecOptions {
    pub fn new(prefix: &str, sse: Sse) -> Self {
        ExecOptions {
            prefix: prefix.to_string(),
            sse,
            concurrency: 32,
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            memory_budget: 32 * 1024 * 1024,
            attempts: 3,
            retry_base: Duration::from_millis(500),
            progress: ProgressMode::Quiet,
            extra_objects: Vec::new(),
            commit: None,
            message: None,
            cdn: None,
        }
    }
}

/// What one upload produced.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    pub key: String,
    pub stored_size: u64,
    pub content_encoding: Option<String>,
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
    /// Invalidations that failed (the release is live regardless).
    pub cdn_failures: Vec<String>,
}

/// One unit of work of a phase.
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
    store: &dyn Store,
    clock: &dyn Clock,
    opts: &ExecOptions,
    cancel: &Cancel,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    if plan.noop {
        return Ok(out);
    }
    let t0 = Instant::now();
    let mem = Semaphore::new(opts.memory_budget.div_ceil(1024));

    // Phase 1.
    let mut phase1: Vec<Job> = Vec::new();
    // Pages with the same bytes share one stored body: stored once.
    let mut bodies = std::collections::HashSet::new();
    for u in &plan.uploads {
        if u.switch.is_none() {
            phase1.push(Job::Put(u));
        } else if u.body_to_store() && bodies.insert(u.object.body_name()) {
            phase1.push(Job::Body(&u.object));
        }
    }
    for d in &plan.bodies_missing {
        if bodies.insert(d.body_name()) {
            phase1.push(Job::Body(d));
        }
    }
    let bytes: u64 = phase1.iter().map(|j| j.object().size).sum();
    let phase = Phase::new(opts.progress, "upload", phase1.len() as u64, bytes);
    let mut encodings: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
    let runner = Runner {
        store,
        opts,
        cancel,
        mem: &mem,
    };
    let r = runner
        .run(phase1, &phase, &mut out, &mut encodings, plan.uploads.len())
        .await;
    phase.finish();
    r?;
    out.upload_ms = t0.elapsed().as_millis() as u64;

    // Phase 2: the switch. Non-entry stable files (and the original-URL
    // copies of renamed assets) first, pages last.
    let t1 = Instant::now();
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
        encodings.insert(
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
    let phase = Phase::new(opts.progress, "switch", n_switch as u64, 0);
    let mut first_copy: Option<Instant> = None;
    for wave in [plain, entries] {
        if wave.is_empty() {
            continue;
        }
        first_copy.get_or_insert_with(Instant::now);
        let jobs = wave.into_iter().map(Job::Switch).collect();
        if let Err(e) = runner
            .run(jobs, &phase, &mut out, &mut encodings, n_switch)
            .await
        {
            phase.finish();
            return Err(e);
        }
    }
    phase.finish();
    out.switch_window_ms = first_copy
        .map(|f| f.elapsed().as_millis() as u64)
        .unwrap_or(0);
    out.switch_ms = t1.elapsed().as_millis() as u64;

    // Phase 3: the release record, written after every object it lists exists.
    let t2 = Instant::now();
    let mut release = build_release(plan, &out, clock);
    release.commit = opts.commit.clone();
    release.message = opts.message.clone();
    for (key, body) in &opts.extra_objects {
        store
            .put(
                key,
                body.clone(),
                &PutOptions::internal("application/json", &opts.sse),
            )
            .await?;
    }
    release::write(store, &opts.prefix, &release, &opts.sse).await?;
    out.record_ms = t2.elapsed().as_millis() as u64;

    // Phase 4: invalidate what changed or went away under a stable name —
    // never new keys, never content-addressed ones.
    if let Some(cdn) = &opts.cdn {
        let t = Instant::now();
        let mut keys: Vec<String> = plan
            .uploads
            .iter()
            .filter(|u| u.switch.is_some() && u.reason != crate::plan::Reason::New)
            .map(|u| u.object.key.clone())
            .collect();
        keys.extend(plan.deletes.iter().map(|d| d.key.clone()));
        let (inv, failed) = crate::cdn::invalidate_all(cdn, &keys, &plan.release).await;
        out.invalidations = inv;
        out.cdn_failures = failed;
        out.invalidate_ms = t.elapsed().as_millis() as u64;
    }

    // Deletes: only now, and only what the plan allowed.
    let t3 = Instant::now();
    if !plan.deletes.is_empty() && !cancel.is_cancelled() {
        let keys: Vec<String> = plan.deletes.iter().map(|d| d.key.clone()).collect();
        match store.delete_many(&keys).await {
            Ok(failed) => {
                out.deleted = keys.len() - failed.len();
                for (k, e) in failed {
                    out.warnings.push(crate::warning::Warning::DeleteFailed {
                        key: k.to_string(),
                        error: e.to_string(),
                    });
                }
            }
            Err(e) => out
                .warnings
                .push(crate::warning::Warning::DeletesFailed(e.to_string())),
        }
    }
    out.delete_ms = t3.elapsed().as_millis() as u64;
    Ok(out)
}

/// What a job produced.
enum Done {
    Live(Uploaded),
    Body {
        name: String,
        stored_size: u64,
        encoding: Option<String>,
    },
}

/// What every job of a run shares.
struct Runner<'a> {
    store: &'a dyn Store,
    opts: &'a ExecOptions,
    cancel: &'a Cancel,
    mem: &'a Semaphore,
}

impl Runner<'_> {
    /// Run one phase's jobs with bounded concurrency; one error for the
    /// phase if any job failed or the run was interrupted.
    async fn run(
        &self,
        jobs: Vec<Job<'_>>,
        phase: &Phase,
        out: &mut Outcome,
        encodings: &mut BTreeMap<String, (u64, Option<String>)>,
        total: usize,
    ) -> Result<()> {
        let failures = run_jobs(jobs, self, phase, out, encodings).await;
        if let Some(e) = summarize(failures, total) {
            return Err(e);
        }
        if self.cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        Ok(())
    }
}

async fn run_jobs(
    jobs: Vec<Job<'_>>,
    rn: &Runner<'_>,
    phase: &Phase,
    out: &mut Outcome,
    encodings: &mut BTreeMap<String, (u64, Option<String>)>,
) -> Vec<Error> {
    let Runner {
        store,
        opts,
        cancel,
        mem,
    } = *rn;
    let mut failures = Vec::new();
    let known = &*encodings;
    let mut done_bodies: Vec<(String, u64, Option<String>)> = Vec::new();
    {
        let mut results = futures::stream::iter(jobs.iter().map(|j| async move {
            if cancel.is_cancelled() {
                return (j, Err(Error::Interrupted));
            }
            let r = match j {
                Job::Put(u) => upload_with_retry(u, store, opts, cancel, mem, phase)
                    .await
                    .map(Done::Live),
                Job::Body(d) => store_body(d, store, opts, cancel, mem, phase).await,
                Job::Switch(u) => switch(u, store, opts, cancel, known, mem, phase)
                    .await
                    .map(Done::Live),
            };
            (j, r)
        }))
        .buffer_unordered(opts.concurrency.max(1));
        while let Some((j, r)) = results.next().await {
            match r {
                Ok(Done::Live(up)) => {
                    phase.object_done();
                    if !matches!(j, Job::Switch(_)) {
                        out.bytes_sent += up.stored_size;
                        done_bodies.push((
                            object_slot(&j.object().rel),
                            up.stored_size,
                            up.content_encoding.clone(),
                        ));
                    }
                    out.uploaded.insert(j.object().rel.clone(), up);
                }
                Ok(Done::Body {
                    name,
                    stored_size,
                    encoding,
                }) => {
                    phase.object_done();
                    out.bytes_sent += stored_size;
                    out.bodies_stored += 1;
                    done_bodies.push((name, stored_size, encoding));
                }
                Err(Error::Interrupted) => {}
                Err(e) => {
                    if matches!(&e, Error::Store(s) if s.is_fatal()) {
                        // No other object will fare better: stop scheduling.
                        cancel.cancel();
                    }
                    failures.push(e);
                }
            }
        }
    }
    for (name, size, enc) in done_bodies {
        encodings.insert(name, (size, enc));
    }
    failures
}

/// Phase 1 for a stable-name file: its body under `.cdnsync/objects/`,
/// content-addressed, created only if absent.
async fn store_body(
    d: &Desired,
    store: &dyn Store,
    opts: &ExecOptions,
    cancel: &Cancel,
    mem: &Semaphore,
    phase: &Phase,
) -> Result<Done> {
    let name = d.body_name();
    let key = release::body_key(&opts.prefix, &name);
    let mut as_body = d.clone();
    as_body.key = key.clone();
    // A stored body is content-addressed like an asset: created with
    // `If-None-Match: *`, never overwritten.
    as_body.class = FileClass::Asset;
    let up = Upload {
        object: as_body,
        reason: crate::plan::Reason::New,
        switch: None,
    };
    let r = upload_with_retry(&up, store, opts, cancel, mem, phase).await?;
    Ok(Done::Body {
        name,
        stored_size: r.stored_size,
        encoding: r.content_encoding,
    })
}

/// Where the size and encoding of a content-addressed object of the site
/// are kept among the stored bodies' (`/` cannot start a body name).
fn object_slot(rel: &str) -> String {
    format!("/{rel}")
}

/// Phase 2: copy the stored body (or, for the original URL of a renamed
/// asset, its content-addressed object) to the live key with the file's
/// headers.
async fn switch(
    u: &Upload,
    store: &dyn Store,
    opts: &ExecOptions,
    cancel: &Cancel,
    known: &BTreeMap<String, (u64, Option<String>)>,
    mem: &Semaphore,
    phase: &Phase,
) -> Result<Uploaded> {
    let o = &u.object;
    if let Some(SwitchFrom::Object { rel }) = &u.switch {
        let src = crate::store::join_key(&opts.prefix, rel);
        let (stored_size, encoding) = match known.get(&object_slot(rel)) {
            Some((size, enc)) => (*size, enc.clone()),
            None => {
                let m = retry(opts, cancel, || store.head(&src))
                    .await?
                    .filter(|m| m.metadata.get(META_HASH).map(String::as_str) == Some(o.hash.as_str()))
                    .ok_or_else(|| {
                        Error::Store(StoreError::Other {
                            key: src.clone(),
                            message: "the content-addressed object an original URL copies is missing or differs".into(),
                        })
                    })?;
                (m.size, m.content_encoding)
            }
        };
        let popts = put_options(o, encoding.as_deref(), &opts.sse, false);
        retry(opts, cancel, || store.copy(&src, &o.key, &popts)).await?;
        return Ok(Uploaded {
            key: o.key.clone(),
            stored_size,
            content_encoding: encoding,
        });
    }
    let name = o.body_name();
    let body_key = release::body_key(&opts.prefix, &name);
    let (stored_size, encoding) = match known.get(&name) {
        Some((size, enc)) => (*size, enc.clone()),
        None => match retry(opts, cancel, || store.head(&body_key)).await? {
            Some(m) => {
                if m.metadata.get(META_HASH).map(String::as_str) != Some(o.hash.as_str()) {
                    return Err(Error::Store(StoreError::Other {
                        key: body_key,
                        message: "stored body does not carry the expected content hash".into(),
                    }));
                }
                (m.size, m.content_encoding)
            }
            // The release record names it, but it is gone (deleted by hand?):
            // store it again from the local file, then switch.
            None => match store_body(o, store, opts, cancel, mem, phase).await? {
                Done::Body {
                    stored_size,
                    encoding,
                    ..
                } => (stored_size, encoding),
                _ => unreachable!("store_body returns a body"),
            },
        },
    };
    let popts = put_options(o, encoding.as_deref(), &opts.sse, false);
    retry(opts, cancel, || store.copy(&body_key, &o.key, &popts)).await?;
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

fn put_options(o: &Desired, encoding: Option<&str>, sse: &Sse, if_none_match: bool) -> PutOptions {
    let mut metadata = BTreeMap::new();
    metadata.insert(META_HASH.to_string(), o.hash.clone());
    metadata.insert(META_HEADERS.to_string(), o.digest.clone());
    PutOptions {
        content_type: o.headers.content_type.clone(),
        cache_control: o.headers.cache_control.clone(),
        content_encoding: encoding.map(str::to_string),
        content_disposition: o.headers.content_disposition.clone(),
        metadata,
        sse: sse.clone(),
        if_none_match,
        if_match: None,
    }
}

/// Retry a store call on transient errors with exponential backoff.
async fn retry<T, F, Fut>(
    opts: &ExecOptions,
    cancel: &Cancel,
    mut f: F,
) -> std::result::Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f().await {
            Err(e) if e.is_transient() && attempt < opts.attempts && !cancel.is_cancelled() => {
                let delay = opts.retry_base * 2u32.pow(attempt - 1);
                tracing::warn!("retrying in {delay:?}: {e}");
                tokio::time::sleep(delay).await;
            }
            r => return r,
        }
    }
}

pub(crate) async fn upload_with_retry(
    u: &Upload,
    store: &dyn Store,
    opts: &ExecOptions,
    cancel: &Cancel,
    mem: &Semaphore,
    phase: &Phase,
) -> Result<Uploaded> {
    let o = &u.object;
    if o.size >= opts.multipart_threshold && o.splices.is_empty() {
        return upload_multipart(o, store, opts, cancel, mem, phase).await;
    }
    let units = (o.size as usize).div_ceil(1024).clamp(1, mem_units(opts));
    let _permit = mem
        .acquire_many(units as u32)
        .await
        .expect("semaphore open");
    let (body, encoding) = read_and_encode(o).await?;
    let stored_size = body.len() as u64;
    // A content-addressed name that is new is created, never overwritten.
    let create_only = o.class == FileClass::Asset && u.reason == crate::plan::Reason::New;
    let popts = put_options(o, encoding, &opts.sse, create_only);
    match retry(opts, cancel, || store.put(&o.key, body.clone(), &popts)).await {
        Ok(()) => {}
        Err(StoreError::Precondition { .. }) => {
            // Created meanwhile (an earlier attempt, a concurrent run): fine
            // when it is the same content. A store whose metadata appears a
            // moment after the bytes (a local directory) gets a few looks.
            let mut seen = None;
            for attempt in 0..4 {
                seen = store
                    .head(&o.key)
                    .await?
                    .and_then(|m| m.metadata.get(META_HASH).cloned());
                if seen.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            if seen.as_deref() != Some(o.hash.as_str()) {
                return Err(Error::Store(StoreError::Other {
                    key: o.key.clone(),
                    message: "a different object already exists under this content-addressed name"
                        .into(),
                }));
            }
        }
        Err(e) => return Err(e.into()),
    }
    phase.add_bytes(o.size);
    Ok(Uploaded {
        key: o.key.clone(),
        stored_size,
        content_encoding: encoding.map(str::to_string),
    })
}

fn mem_units(opts: &ExecOptions) -> usize {
    opts.memory_budget.div_ceil(1024).max(1)
}

/// Read a whole (small) file, check it is what was scanned, apply its
/// reference rewrites, and gzip it if its settings say so and that saves
/// enough: the bytes a PUT sends, and their encoding. Blocking.
pub fn encode_blocking(o: &Desired) -> Result<(Bytes, Option<&'static str>)> {
    let path = &o.path;
    let compress = o.headers.compress && o.size <= compress::MAX_COMPRESS_SIZE;
    let mut data = std::fs::read(path).map_err(|e| read_error(path, e))?;
    if blake3::hash(&data).to_hex().as_str() != o.source_hash {
        return Err(Error::FileChanged { path: path.clone() });
    }
    if !o.splices.is_empty() {
        data = crate::fingerprint::apply(&data, &o.splices);
        if blake3::hash(&data).to_hex().as_str() != o.hash {
            return Err(Error::Internal(format!(
                "rewritten {} does not match its planned hash",
                path.display()
            )));
        }
    }
    if compress && let Some(gz) = compress::gzip_if_worth_it(&data) {
        return Ok((Bytes::from(gz), Some("gzip")));
    }
    Ok((Bytes::from(data), None))
}

async fn read_and_encode(o: &Desired) -> Result<(Bytes, Option<&'static str>)> {
    let o = o.clone();
    tokio::task::spawn_blocking(move || encode_blocking(&o))
        .await
        .map_err(|e| Error::Internal(format!("task failed: {e}")))?
}

/// What phase 1 of a plan sends, measured without sending it (for a dry
/// run): per report key (the live key, also for a page whose body is
/// stored), the bytes on the wire and their encoding, and the total.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub by_key: BTreeMap<String, (u64, Option<String>)>,
    pub bytes: u64,
}

/// Measure [`Wire`] for `plan` (reads and compresses on all cores).
pub fn measure(plan: &Plan, multipart_threshold: u64) -> Result<Wire> {
    use rayon::prelude::*;
    let mut jobs: Vec<&Desired> = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    for u in &plan.uploads {
        if u.switch.is_none() || (u.body_to_store() && bodies.insert(u.object.body_name())) {
            jobs.push(&u.object);
        }
    }
    jobs.extend(
        plan.bodies_missing
            .iter()
            .filter(|d| bodies.insert(d.body_name())),
    );
    let sized: Vec<(String, u64, Option<String>)> = jobs
        .par_iter()
        .map(|o| {
            if o.size >= multipart_threshold && o.splices.is_empty() {
                return Ok((o.key.clone(), o.size, None));
            }
            let (b, enc) = encode_blocking(o)?;
            Ok((o.key.clone(), b.len() as u64, enc.map(str::to_string)))
        })
        .collect::<Result<_>>()?;
    let mut w = Wire::default();
    let mut by_rel: HashMap<&str, Option<String>> = jobs
        .iter()
        .zip(&sized)
        .map(|(o, (_, _, enc))| (o.rel.as_str(), enc.clone()))
        .collect();
    by_rel.extend(
        plan.unchanged
            .iter()
            .map(|k| (k.object.rel.as_str(), k.content_encoding.clone())),
    );
    for (k, n, enc) in sized {
        w.bytes += n;
        w.by_key.insert(k, (n, enc));
    }
    // An original-URL copy carries its source's bytes, encoding included.
    for u in &plan.uploads {
        if let Some(SwitchFrom::Object { rel }) = &u.switch
            && let Some(enc) = by_rel.get(rel.as_str())
        {
            w.by_key.insert(u.object.key.clone(), (0, enc.clone()));
        }
    }
    Ok(w)
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::FileChanged {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(path, e)
    }
}

/// Multipart upload from disk: parts read one at a time (hashing as they
/// are read), at most 4 parts of a file in flight, aborted on any error.
async fn upload_multipart(
    o: &Desired,
    store: &dyn Store,
    opts: &ExecOptions,
    cancel: &Cancel,
    mem: &Semaphore,
    phase: &Phase,
) -> Result<Uploaded> {
    let popts = put_options(o, None, &opts.sse, false);
    let upload_id = retry(opts, cancel, || store.create_multipart(&o.key, &popts)).await?;
    let r = multipart_body(o, store, opts, cancel, mem, phase, &upload_id).await;
    match r {
        Ok(parts) => {
            let done = retry(opts, cancel, || {
                store.complete_multipart(&o.key, &upload_id, parts.clone())
            })
            .await;
            if let Err(e) = done {
                let _ = store.abort_multipart(&o.key, &upload_id).await;
                return Err(e.into());
            }
            Ok(Uploaded {
                key: o.key.clone(),
                stored_size: o.size,
                content_encoding: None,
            })
        }
        Err(e) => {
            if let Err(ae) = store.abort_multipart(&o.key, &upload_id).await {
                tracing::warn!("could not abort multipart upload of {}: {ae}", o.key);
            }
            Err(e)
        }
    }
}

async fn multipart_body(
    o: &Desired,
    store: &dyn Store,
    opts: &ExecOptions,
    cancel: &Cancel,
    mem: &Semaphore,
    phase: &Phase,
    upload_id: &str,
) -> Result<Vec<CompletedPart>> {
    let part_size = opts.part_size.max(MIN_PART_SIZE);
    let path = o.path.clone();
    let file = std::fs::File::open(&path).map_err(|e| read_error(&path, e))?;
    let file = Arc::new(file);
    let units = part_size.div_ceil(1024).min(mem_units(opts)) as u32;
    // blake3 of what was read, and how much: checked against the plan at the end.
    let read_so_far = std::sync::Mutex::new((blake3::Hasher::new(), 0u64));
    // Parts are read one after another (each once its memory is granted)
    // and uploaded up to 4 at a time. `buffer_unordered` drives the
    // uploads while the next read waits for memory, so a budget smaller
    // than 4 parts slows the upload down instead of deadlocking it.
    let reads = futures::stream::unfold((0u64, 0i32, false), |(offset, number, done)| {
        let (f, p, read_so_far) = (file.clone(), path.clone(), &read_so_far);
        async move {
            if done {
                return None;
            }
            if cancel.is_cancelled() {
                return Some((Err(Error::Interrupted), (offset, number, true)));
            }
            let permit = mem.acquire_many(units).await.expect("semaphore open");
            let read = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; part_size];
                let mut n = 0;
                while n < part_size {
                    let k = f
                        .read_at(&mut buf[n..], offset + n as u64)
                        .map_err(|e| Error::io(&p, e))?;
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                buf.truncate(n);
                Ok(buf)
            })
            .await
            .map_err(|e| Error::Internal(format!("task failed: {e}")))
            .and_then(|r| r);
            let buf = match read {
                Ok(b) => b,
                Err(e) => return Some((Err(e), (offset, number, true))),
            };
            if buf.is_empty() && number > 0 {
                return None;
            }
            let last = buf.len() < part_size;
            {
                let mut r = read_so_far.lock().expect("hasher lock");
                r.0.update(&buf);
                r.1 += buf.len() as u64;
            }
            let next = (offset + buf.len() as u64, number + 1, last);
            Some((Ok((permit, number + 1, Bytes::from(buf))), next))
        }
    });
    let mut uploads = std::pin::pin!(
        reads
            .map(|item: Result<_>| async move {
                let (permit, n, body): (_, i32, Bytes) = item?;
                let _permit = permit;
                let len = body.len() as u64;
                let part = retry(opts, cancel, || {
                    store.upload_part(&o.key, upload_id, n, body.clone())
                })
                .await?;
                phase.add_bytes(len);
                Ok::<_, Error>(part)
            })
            .buffer_unordered(4)
    );
    let mut parts: Vec<CompletedPart> = Vec::new();
    while let Some(p) = uploads.next().await {
        parts.push(p?);
    }
    let (hasher, offset) = {
        let r = read_so_far.lock().expect("hasher lock");
        (r.0.clone(), r.1)
    };
    if offset != o.size || hasher.finalize().to_hex().as_str() != o.source_hash {
        return Err(Error::FileChanged { path: path.clone() });
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
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
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::clock::SystemClock;
    use crate::plan::{self, PlanOptions};
    use crate::release::read_current;
    use crate::remote;
    use crate::rules::{Defaults, Rules};
    use crate::scan;
    use crate::store::memory::MemoryStore;

    fn site(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, b) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b).unwrap();
        }
        d
    }

    fn opts() -> ExecOptions {
        let mut o = ExecOptions::new("", Sse::Aes256);
        o.retry_base = Duration::from_millis(1);
        o.concurrency = 2;
        o
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
        };
        plan::plan(&id, desired, &inv, &state, &popts).unwrap()
    }

    async fn publish(
        store: &MemoryStore,
        dir: &std::path::Path,
        o: &ExecOptions,
    ) -> Result<Outcome> {
        let p = make_plan(store, dir).await;
        execute(&p, store, &SystemClock, o, &Cancel::new()).await
    }

    #[tokio::test]
    async fn transient_errors_are_retried() {
        let d = site(&[("index.html", b"<p>x</p>"), ("a.css", b"a{}")]);
        let store = MemoryStore::new();
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
        let store = MemoryStore::new();
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
        let store = MemoryStore::new();
        publish(&store, d.path(), &opts()).await.unwrap();
        let live = read_current(&store, "").await.unwrap().unwrap().id;

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
        assert_eq!(read_current(&store, "").await.unwrap().unwrap().id, live);
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
        let store = MemoryStore::new();
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
            let store = MemoryStore::new();
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
        let store = MemoryStore::new();
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
        let e = execute(&p, &store, &SystemClock, &o, &Cancel::new())
            .await
            .unwrap_err();
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
        let e = execute(&p, &store, &SystemClock, &o, &Cancel::new())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::FileChanged { .. }), "{e}");
    }

    #[tokio::test]
    async fn failed_deletes_are_warnings_and_remembered() {
        let d = site(&[("index.html", b"<p>x</p>"), ("old.html", b"o")]);
        let store = MemoryStore::new();
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
        let rel = read_current(&store, "").await.unwrap().unwrap();
        assert!(rel.files["old.html"].stale);
        store.clear_failures();
        let out = publish(&store, d.path(), &opts()).await.unwrap();
        assert_eq!(out.deleted, 1);
        assert!(store.object("old.html").is_none());
    }

    #[tokio::test]
    async fn cancelled_run_records_nothing() {
        let d = site(&[("index.html", b"<p>x</p>"), ("a.css", b"a{}")]);
        let store = MemoryStore::new();
        let p = make_plan(&store, d.path()).await;
        let c = Cancel::new();
        c.cancel();
        let e = execute(&p, &store, &SystemClock, &opts(), &c)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Interrupted));
        assert!(store.keys().is_empty());
    }
}
