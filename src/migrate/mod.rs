//! `cdnsync migrate`: move user uploads off a web server into encrypted S3.
//! Keys keep the relative path (NFC-normalised); the local walk and the
//! remote listing are merged as two key-sorted streams, in bounded batches,
//! so memory does not grow with the number of files; each upload is
//! verified; reruns upload only what is missing or changed; `--shard I/N`
//! splits a tree across machines with no coordinator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::headers::{HeaderSettings, META_HASH, META_HEADERS};
use crate::plan::Desired;
use crate::progress::{Phase, ProgressMode};
use crate::remote::list_prefix;
use crate::rules::FileClass;
use crate::store::join_key;
use crate::transfer::Runner;

/// Files walked and decided per batch (bounds memory).
mod journal;
mod local;
mod march;
mod policy;
mod urlmap;

pub use journal::default_state_path;
pub use policy::{bad_name, headers_for, parse_shard, safe_inline, shard_of};

use journal::Journal;
use local::{Local, hash_beneath, verify_bytes, walk};
use march::{Have, Held, RemoteCursor, Seek, Step, Verdict, step, verdict, worth_a_head};
use urlmap::UrlMap;

const BATCH: usize = 1000;

/// What a run does with each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Upload what is missing or changed, verify each upload.
    Migrate,
    /// Upload nothing: re-check every file against its remote copy.
    Verify,
    /// Upload nothing: delete each local file whose remote copy is verified
    /// identical (and that did not change while being checked).
    DeleteSource,
}

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub mode: Mode,
    /// The state journal (`--state`): files already migrated, by key,
    /// size and mtime. With a journal the listing is skipped: unknown
    /// files are checked with HEAD.
    pub state: Option<PathBuf>,
    /// At most this many files per second (`--rate`).
    pub rate: Option<f64>,
    pub cache_control: String,
    /// Serve every type inline, not only the allow-listed ones (`--inline`).
    pub inline: bool,
    /// Globs of deny-listed files to migrate anyway (`--include-denied`).
    pub include_denied: Vec<String>,
    /// The source directory (files are read and deleted beneath it).
    pub src_root: PathBuf,
    /// `I/N`: only files whose key hash falls in shard I of N.
    pub shard: Option<(u64, u64)>,
    pub dry_run: bool,
    /// Old and new URL bases for the URL map (both or neither).
    pub base_url: Option<String>,
    pub cdn_url: Option<String>,
    /// Where `url-map.csv` and `nginx-redirects.conf` are written.
    pub map_dir: PathBuf,
}

/// A file that was not migrated, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    pub target: String,
    pub dry_run: bool,
    /// Files in this shard.
    pub files: usize,
    pub uploaded: usize,
    pub unchanged: usize,
    pub bytes_uploaded: u64,
    /// Names S3 or CloudFront handle badly, special files: reported, not migrated.
    pub skipped: Vec<Problem>,
    /// Files that failed (unreadable, changed while read, upload or verify errors).
    pub failed: Vec<Problem>,
    pub mode: Option<Mode>,
    /// `--verify`: files whose remote copy matches.
    pub verified: usize,
    /// `--verify` / `--delete-source`: missing or different remote copies.
    pub mismatches: Vec<Problem>,
    /// `--delete-source`: local files deleted.
    pub deleted_local: usize,
    pub url_map: Option<String>,
    pub nginx_map: Option<String>,
    pub elapsed_ms: u64,
}

enum Done {
    Uploaded(u64),
    Unchanged,
    Verified,
    Mismatch(String),
    DeletedLocal,
}

/// Spaces file operations `1/rate` seconds apart (`--rate`).
struct Pace {
    every: std::time::Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    async fn wait(&self) {
        let slot = {
            let mut n = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = (*n).max(now);
            *n = slot + self.every;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A file's outcome: done (with its hash) or a failure message.
type FileResult = std::result::Result<(Done, String), String>;

/// Migrate `src` into the runner's store under its prefix.
pub async fn run(src: &Path, rn: &Runner<'_>, opts: &MigrateOptions) -> Result<MigrateReport> {
    let t0 = Instant::now();
    let md = std::fs::metadata(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(src, "directory not found"),
        _ => Error::io(src, e),
    })?;
    if !md.is_dir() {
        return Err(Error::input(src, "not a directory"));
    }
    let rules = rules(opts)?;
    let mut m = Migration {
        rn,
        opts,
        prefix: rn.opts.prefix.clone(),
        report: MigrateReport {
            dry_run: opts.dry_run,
            mode: Some(opts.mode),
            ..Default::default()
        },
        journal: match (&opts.state, opts.mode, opts.dry_run) {
            (Some(p), Mode::Migrate, false) => Some(Journal::open(p)?),
            _ => None,
        },
        map: None,
        phase: progress(src, &rules, rn, opts),
        pace: opts.rate.filter(|r| *r > 0.0).map(|r| Pace {
            every: std::time::Duration::from_secs_f64(1.0 / r),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }),
    };
    if let (Some(base), Some(cdn)) = (&opts.base_url, &opts.cdn_url)
        && !opts.dry_run
        && opts.mode == Mode::Migrate
    {
        let map = UrlMap::create(&opts.map_dir, base, cdn)?;
        m.report.url_map = Some(map.csv_path.display().to_string());
        m.report.nginx_map = Some(map.nginx_path.display().to_string());
        m.map = Some(map);
    }
    let mut cursor = RemoteCursor::new(rn.store, list_prefix(&m.prefix), BATCH);
    let mut files = walk(src, &rules).peekable();
    while files.peek().is_some() && !rn.cancel.is_cancelled() {
        let batch = m.next_batch(&mut files, &mut cursor).await?;
        m.work(batch).await;
    }
    if let Some(map) = m.map.take() {
        map.finish();
    }
    m.phase.finish();
    let mut report = m.report;
    report.target = rn.store.describe();
    report.elapsed_ms = t0.elapsed().as_millis() as u64;
    if rn.cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    Ok(report)
}

/// The publish deny-list applies: secrets never leave the server unless
/// asked for by name (`--include-denied`).
fn rules(opts: &MigrateOptions) -> Result<crate::rules::Rules> {
    let include: Vec<crate::rules::RuleSpec> = opts
        .include_denied
        .iter()
        .map(|g| crate::rules::RuleSpec {
            glob: g.clone(),
            include: Some(true),
            ..Default::default()
        })
        .collect();
    crate::rules::Rules::new(&include, crate::rules::Defaults::default())
        .map_err(|e| Error::Usage(format!("--include-denied: {e}")))
}

/// The progress bar, with totals (rate, ETA) from a metadata-only pass
/// over the tree when anyone watches.
fn progress(
    src: &Path,
    rules: &crate::rules::Rules,
    rn: &Runner<'_>,
    opts: &MigrateOptions,
) -> Phase {
    let (files, bytes) = if rn.opts.progress == ProgressMode::Quiet {
        (0, 0)
    } else {
        walk(src, rules)
            .filter_map(std::result::Result::ok)
            .filter(|f| opts.shard.is_none_or(|(i, n)| shard_of(&f.key_rel, n) == i))
            .fold((0u64, 0u64), |(n, b), f| (n + 1, b + f.size))
    };
    Phase::new(rn.opts.progress, "migrate", files, bytes)
}

/// One migration under way.
struct Migration<'a, 'r> {
    rn: &'a Runner<'r>,
    opts: &'a MigrateOptions,
    prefix: String,
    report: MigrateReport,
    journal: Option<Journal>,
    map: Option<UrlMap>,
    phase: Phase,
    /// `--rate`: one schedule for the whole run.
    pace: Option<Pace>,
}

impl Migration<'_, '_> {
    /// Up to [`BATCH`] files that need work, each with where it stands in
    /// the listing (`None`: not listed, the journal is used instead).
    async fn next_batch(
        &mut self,
        files: &mut impl Iterator<Item = std::result::Result<Local, Problem>>,
        cursor: &mut RemoteCursor<'_>,
    ) -> Result<Vec<(Local, Option<Seek>)>> {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            let f = match files.next() {
                None => break,
                Some(Err(p)) => {
                    self.report.skipped.push(p);
                    continue;
                }
                Some(Ok(f)) => f,
            };
            let key = join_key(&self.prefix, &f.key_rel);
            let in_shard = self
                .opts
                .shard
                .is_none_or(|(i, n)| shard_of(&f.key_rel, n) == i);
            let journaled = self
                .journal
                .as_ref()
                .is_some_and(|j| j.is_done(&key, f.size, f.mtime));
            match step(in_shard, self.opts.mode, journaled) {
                Step::OtherShard => {}
                Step::Journaled => {
                    // Migrated before and unchanged since: no request at all.
                    self.phase.object_done();
                    self.report.files += 1;
                    self.report.unchanged += 1;
                }
                Step::Compare => {
                    // With a journal the listing is skipped: HEAD tells.
                    let listed = match self.journal {
                        Some(_) => None,
                        None => Some(cursor.seek(&key).await?),
                    };
                    batch.push((f, listed));
                }
            }
        }
        Ok(batch)
    }

    /// Work a batch concurrently (paced by `--rate`), then record it.
    async fn work(&mut self, batch: Vec<(Local, Option<Seek>)>) {
        self.report.files += batch.len();
        let (rn, opts, phase, pace) = (self.rn, self.opts, &self.phase, &self.pace);
        let results: Vec<(String, u64, i128, FileResult)> =
            futures::stream::iter(batch.into_iter().map(|(f, listed)| async move {
                if let Some(p) = pace {
                    p.wait().await;
                }
                let r = migrate_one(&f, listed, rn, opts, phase).await;
                (f.key_rel, f.size, f.mtime, r)
            }))
            .buffered(rn.opts.concurrency.max(1))
            .collect()
            .await;
        for (rel, size, mtime, r) in results {
            self.phase.object_done();
            self.record(rel, size, mtime, r);
        }
    }

    fn record(&mut self, rel: String, size: u64, mtime: i128, r: FileResult) {
        let (done, hash) = match r {
            Ok(x) => x,
            Err(reason) => {
                self.report.failed.push(Problem { path: rel, reason });
                return;
            }
        };
        if matches!(done, Done::Uploaded(_) | Done::Unchanged)
            && let Some(j) = self.journal.as_mut()
        {
            j.record(&join_key(&self.prefix, &rel), size, mtime, &hash);
        }
        let r = &mut self.report;
        match done {
            Done::Uploaded(n) => {
                r.uploaded += 1;
                r.bytes_uploaded += n;
            }
            Done::Unchanged => r.unchanged += 1,
            Done::Verified => r.verified += 1,
            Done::DeletedLocal => r.deleted_local += 1,
            Done::Mismatch(why) => {
                r.mismatches.push(Problem {
                    path: rel,
                    reason: why,
                });
                return;
            }
        }
        if let Some(map) = self.map.as_mut() {
            map.add(&self.prefix, &rel, size, &hash);
        }
    }
}

/// Read one file, ask about its remote copy as the march says, and act on
/// the verdict: upload (then verify), check the bytes, delete the local
/// file. `Err` is a per-file failure message.
async fn migrate_one(
    f: &Local,
    listed: Option<Seek>,
    rn: &Runner<'_>,
    opts: &MigrateOptions,
    phase: &Phase,
) -> FileResult {
    let store = rn.store;
    // Read through the tree as walked, never through a symlink swapped in
    // since: the hash, CRC32 and identity of exactly the bytes checked.
    let (src, rel_fs, path) = (opts.src_root.clone(), f.rel_fs.clone(), f.path.clone());
    let read = tokio::task::spawn_blocking(move || hash_beneath(&src, &rel_fs, &path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read: {e}"))?;
    let hash = read.hash.clone();
    let headers = headers_for(&f.key_rel, &opts.cache_control, opts.inline);
    let digest = headers.digest(&rn.opts.sse);
    let key = join_key(&rn.opts.prefix, &f.key_rel);
    let asks = opts.mode != Mode::Migrate || worth_a_head(listed, read.size);
    let meta = if asks {
        store.head(&key).await.map_err(|e| e.to_string())?
    } else {
        None
    };
    let held = meta.as_ref().map(|m| Held {
        size: m.size,
        hash: m.metadata.get(META_HASH).map(String::as_str),
        digest: m.metadata.get(META_HEADERS).map(String::as_str),
    });
    let have = Have {
        size: read.size,
        hash: &hash,
        digest: &digest,
    };
    let done = match verdict(opts.mode, have, held) {
        Verdict::Unchanged => Done::Unchanged,
        Verdict::Mismatch(why) => Done::Mismatch(why),
        Verdict::Upload if opts.dry_run => Done::Uploaded(read.size),
        Verdict::Upload => upload(f, &key, headers, digest, &read, rn, phase).await?,
        Verdict::CheckBytes => {
            let m = meta.as_ref().ok_or("no metadata")?;
            match verify_bytes(store, &key, m, &read).await {
                Err(why) => Done::Mismatch(why),
                Ok(()) if opts.mode == Mode::Verify || opts.dry_run => Done::Verified,
                // Delete only the very file that was verified, still
                // unchanged, reached without following a symlink.
                Ok(()) => {
                    let (src, rel_fs, id) = (opts.src_root.clone(), read.rel_fs.clone(), read.id);
                    tokio::task::spawn_blocking(move || crate::beneath::unlink(&src, &rel_fs, id))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| format!("not deleted: {e}"))?;
                    Done::DeletedLocal
                }
            }
        }
    };
    Ok((done, hash))
}

/// Upload through the engine, then check what the server holds: size and
/// content hash.
async fn upload(
    f: &Local,
    key: &str,
    headers: HeaderSettings,
    digest: String,
    read: &local::Read,
    rn: &Runner<'_>,
    phase: &Phase,
) -> std::result::Result<Done, String> {
    let object = Desired {
        rel: f.key_rel.clone(),
        logical: f.key_rel.clone(),
        key: key.to_string(),
        path: f.path.clone(),
        class: FileClass::Plain,
        size: read.size,
        hash: read.hash.clone(),
        source_hash: read.hash.clone(),
        splices: Default::default(),
        headers,
        digest,
        copy_of: None,
    };
    let done = rn
        .upload(&object, false, phase)
        .await
        .map_err(|e| e.to_string())?;
    let m = rn
        .store
        .head(key)
        .await
        .map_err(|e| format!("verify: {e}"))?
        .ok_or_else(|| "verify: object missing after upload".to_string())?;
    if m.size != read.size || m.metadata.get(META_HASH) != Some(&read.hash) {
        return Err(format!(
            "verify: server holds {} bytes / hash {:?}, expected {} / {}",
            m.size,
            m.metadata.get(META_HASH),
            read.size,
            read.hash
        ));
    }
    Ok(Done::Uploaded(done.stored_size))
}

/// Counts of a report by reason, for the summary.
pub fn summary(r: &MigrateReport) -> String {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &r.skipped {
        *reasons.entry(p.reason.as_str()).or_default() += 1;
    }
    if r.mode == Some(Mode::Verify) || r.mode == Some(Mode::DeleteSource) {
        let mut s = format!(
            "{} {}: {} files, {} verified identical, {} deleted locally, {} mismatched, {} failed in {:.2} s\n",
            if r.mode == Some(Mode::Verify) {
                "verify"
            } else {
                "delete-source"
            },
            r.target,
            r.files,
            r.verified + r.deleted_local,
            r.deleted_local,
            r.mismatches.len(),
            r.failed.len(),
            r.elapsed_ms as f64 / 1000.0
        );
        for m in r.mismatches.iter().take(20) {
            s.push_str(&format!("  mismatch: {}: {}\n", m.path, m.reason));
        }
        return s;
    }
    let verb = if r.dry_run {
        "would upload"
    } else {
        "uploaded"
    };
    let mut s = format!(
        "migrate to {}: {} files, {verb} {} ({}), {} unchanged, {} skipped, {} failed in {:.2} s\n",
        r.target,
        r.files,
        r.uploaded,
        crate::progress::human_bytes(r.bytes_uploaded),
        r.unchanged,
        r.skipped.len(),
        r.failed.len(),
        r.elapsed_ms as f64 / 1000.0
    );
    for (why, n) in reasons {
        s.push_str(&format!("  skipped {n}: {why}\n"));
    }
    if let Some(m) = &r.url_map {
        s.push_str(&format!("  URL map: {m}\n"));
    }
    s
}
