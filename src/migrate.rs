//! `cdnsync migrate`: move user uploads off a web server into encrypted S3.
//! Keys keep the relative path (NFC-normalised); the local walk and the
//! remote listing are merged as two key-sorted streams, in bounded batches,
//! so memory does not grow with the number of files; each upload is
//! verified; reruns upload only what is missing or changed; `--shard I/N`
//! splits a tree across machines with no coordinator.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::error::{Error, Result};
use crate::headers::{HeaderSettings, META_HASH, META_HEADERS};
use crate::mime;
use crate::plan::Desired;
use crate::progress::{Phase, ProgressMode};
use crate::remote::list_prefix;
use crate::rules::FileClass;
use crate::store::{ListEntry, Store, join_key};
use crate::transfer::Runner;

/// Files walked and decided per batch (bounds memory).
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

/// Which shard a key belongs to: blake3 of the key, first 8 bytes, mod N.
pub fn shard_of(key: &str, n: u64) -> u64 {
    let h = blake3::hash(key.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % n.max(1)
}

/// Parse `I/N`.
pub fn parse_shard(s: &str) -> std::result::Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("invalid shard `{s}`: expected I/N, e.g. 0/4"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("invalid shard index in `{s}`"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("invalid shard count in `{s}`"))?;
    if n == 0 || i >= n {
        return Err(format!("invalid shard `{s}`: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// Why a relative path cannot be a key (reported, never silently changed).
pub fn bad_name(rel: &str) -> Option<&'static str> {
    if rel.chars().any(|c| c.is_control()) {
        Some("control character in the name")
    } else if rel.contains('\\') {
        Some("backslash in the name")
    } else if rel.len() > crate::plan::MAX_KEY_BYTES {
        Some("name longer than S3's 1,024-byte key limit")
    } else {
        None
    }
}

/// Whether a browser may show a type inline without running anything from
/// it: an allow-list (images but SVG, audio, video, fonts, PDF, plain text
/// and CSV). Everything else — HTML, XHTML, SVG, any XML (`*/xml`,
/// `*+xml`: Chromium runs XHTML-namespace scripts in any XML document),
/// JavaScript, unknown types — is served as an attachment.
pub fn safe_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.ends_with("+xml") || essence.ends_with("/xml") {
        return false;
    }
    let (top, _) = essence.split_once('/').unwrap_or((&essence, ""));
    matches!(top, "image" | "audio" | "video" | "font")
        || matches!(
            essence.as_str(),
            "application/pdf" | "text/plain" | "text/csv" | "application/font-woff"
        )
}

/// Headers of a migrated file: the web type table, `attachment` for every
/// type not safe inline (unless `--inline`), no precompression.
pub fn headers_for(rel: &str, cache_control: &str, inline: bool) -> HeaderSettings {
    let content_type = mime::content_type(rel);
    let attachment = !inline && !safe_inline(&content_type);
    HeaderSettings {
        content_type,
        cache_control: cache_control.to_string(),
        content_disposition: attachment.then(|| "attachment".to_string()),
        compress: false,
    }
}

/// One walked file.
struct Local {
    key_rel: String,
    /// The path below the source as on disk (before NFC).
    rel_fs: PathBuf,
    path: PathBuf,
    size: u64,
    mtime: i128,
}

/// Walk `src` in key order (names compared as keys: a directory sorts as
/// `name/`), streaming; bad names and special files go to `skipped`.
fn walk<'a>(
    src: &'a Path,
    rules: &'a crate::rules::Rules,
) -> impl Iterator<Item = std::result::Result<Local, Problem>> + 'a {
    let key_name = |e: &walkdir::DirEntry| {
        let mut n: String = e.file_name().to_string_lossy().nfc().collect();
        if e.file_type().is_dir() {
            n.push('/');
        }
        n
    };
    let canon = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    let canon_links = canon.clone();
    walkdir::WalkDir::new(src)
        .follow_links(true)
        .sort_by(move |a, b| key_name(a).cmp(&key_name(b)))
        .into_iter()
        .filter_entry(move |e| {
            // Never follow a link out of the source tree.
            !e.path_is_symlink()
                || e.path().canonicalize().is_ok_and(|t| t.starts_with(&canon))
        })
        .filter_map(move |e| {
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    let path = err
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    return Some(Err(Problem {
                        path,
                        reason: format!("cannot read: {err}"),
                    }));
                }
            };
            if e.depth() == 0 || e.file_type().is_dir() {
                return None;
            }
            let rel_path = e.path().strip_prefix(src).ok()?;
            let shown = rel_path.display().to_string();
            if !e.file_type().is_file() {
                return Some(Err(Problem {
                    path: shown,
                    reason: "not a regular file (socket, FIFO or device)".into(),
                }));
            }
            let Some(rel) = rel_path.to_str() else {
                return Some(Err(Problem {
                    path: shown,
                    reason: "name is not valid UTF-8".into(),
                }));
            };
            let rel: String = rel.replace(std::path::MAIN_SEPARATOR, "/").nfc().collect();
            if let Some(why) = bad_name(&rel) {
                return Some(Err(Problem {
                    path: shown,
                    reason: why.into(),
                }));
            }
            // The secret deny-list, on the name and on a link's target.
            let target = e
                .path_is_symlink()
                .then(|| e.path().canonicalize().ok())
                .flatten()
                .and_then(|t| t.strip_prefix(&canon_links).ok().map(|r| r.to_string_lossy().replace('\\', "/")));
            for name in std::iter::once(rel.clone()).chain(target) {
                if let Some(crate::rules::Skip::Denied { pattern }) = rules.skip(&name)
                    && !rules.explicitly_included(&rel)
                {
                    return Some(Err(Problem {
                        path: shown,
                        reason: format!(
                            "on the secret deny-list (`{pattern}`{}); --include-denied GLOB migrates it",
                            if name == rel { String::new() } else { format!(", link target {name}") }
                        ),
                    }));
                }
            }
            let (size, mtime) = match e.metadata() {
                Ok(m) => (m.len(), mtime_ns(&m)),
                Err(err) => {
                    return Some(Err(Problem {
                        path: shown,
                        reason: format!("cannot read: {err}"),
                    }));
                }
            };
            Some(Ok(Local {
                key_rel: rel,
                rel_fs: rel_path.to_path_buf(),
                path: e.path().to_path_buf(),
                size,
                mtime,
            }))
        })
}

/// The remote side of the march: listing pages consumed in key order.
struct RemoteCursor<'a> {
    store: &'a dyn Store,
    prefix: String,
    page: VecDeque<ListEntry>,
    after: Option<String>,
    done: bool,
}

impl RemoteCursor<'_> {
    /// The listed size of `key`, advancing past smaller keys.
    async fn size_of(&mut self, key: &str) -> Result<Option<u64>> {
        loop {
            if self.page.is_empty() && !self.done {
                let p = self
                    .store
                    .list_page(&self.prefix, self.after.as_deref(), BATCH)
                    .await?;
                self.done = p.len() < BATCH;
                self.after = p.last().map(|e| e.key.clone()).or(self.after.take());
                self.page.extend(p);
            }
            match self.page.front() {
                None => return Ok(None),
                Some(e) if e.key.as_str() < key => {
                    self.page.pop_front();
                }
                Some(e) if e.key == key => return Ok(self.page.pop_front().map(|e| e.size)),
                Some(_) => return Ok(None),
            }
        }
    }
}

enum Done {
    Uploaded(u64),
    Unchanged,
    Verified,
    Mismatch(String),
    DeletedLocal,
}

/// The state journal: one line per migrated file,
/// `key-hash size mtime-ns content-hash`, appended as files finish.
/// Keys are stored as 64-bit hashes so a million entries stay small.
struct Journal {
    done: std::collections::HashMap<u64, (u64, i128)>,
    out: Option<std::io::BufWriter<std::fs::File>>,
    pending: usize,
}

fn key_id(key: &str) -> u64 {
    u64::from_le_bytes(
        blake3::hash(key.as_bytes()).as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    )
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(-1)
}

impl Journal {
    fn open(path: &Path) -> Result<Journal> {
        let mut done = std::collections::HashMap::new();
        // Line by line: a million-entry journal is never held as one string.
        if let Ok(f) = std::fs::File::open(path) {
            use std::io::BufRead;
            for line in std::io::BufReader::new(f)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let mut f = line.split(' ');
                if let (Some(k), Some(s), Some(m)) = (f.next(), f.next(), f.next())
                    && let (Ok(k), Ok(s), Ok(m)) =
                        (u64::from_str_radix(k, 16), s.parse(), m.parse())
                {
                    done.insert(k, (s, m));
                }
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Journal {
            done,
            out: Some(std::io::BufWriter::new(f)),
            pending: 0,
        })
    }

    /// Already migrated, and the file is as it was then.
    fn is_done(&self, key: &str, size: u64, mtime: i128) -> bool {
        self.done.get(&key_id(key)) == Some(&(size, mtime))
    }

    fn record(&mut self, key: &str, size: u64, mtime: i128, hash: &str) {
        if let Some(w) = self.out.as_mut() {
            let _ = writeln!(
                w,
                "{:016x} {size} {mtime} {}",
                key_id(key),
                &hash[..hash.len().min(16)]
            );
            self.pending += 1;
            if self.pending >= 256 {
                let _ = w.flush();
                self.pending = 0;
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(w) = self.out.as_mut() {
            let _ = w.flush();
        }
    }
}

/// Default journal location: the user's cache dir, one file per source + target.
pub fn default_state_path(src: &Path, target: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let abs = std::path::absolute(src).unwrap_or_else(|_| src.to_path_buf());
    let id = blake3::hash(format!("{}\n{target}", abs.display()).as_bytes()).to_hex();
    Some(
        base.join("cdnsync")
            .join("migrate")
            .join(format!("{}.journal", &id[..24])),
    )
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

/// Percent-encode a key for a URL path (segments kept).
fn url_path(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Migrate `src` into `store` under `opts.prefix`.
pub async fn run(src: &Path, rn: &Runner<'_>, opts: &MigrateOptions) -> Result<MigrateReport> {
    let (store, cancel, prefix) = (rn.store, &rn.cancel, rn.opts.prefix.as_str());
    let t0 = Instant::now();
    let md = std::fs::metadata(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(src, "directory not found"),
        _ => Error::io(src, e),
    })?;
    if !md.is_dir() {
        return Err(Error::input(src, "not a directory"));
    }
    // The publish deny-list applies: secrets never leave the server unless
    // asked for by name.
    let include: Vec<crate::rules::RuleSpec> = opts
        .include_denied
        .iter()
        .map(|g| crate::rules::RuleSpec {
            glob: g.clone(),
            include: Some(true),
            ..Default::default()
        })
        .collect();
    let rules = crate::rules::Rules::new(&include, crate::rules::Defaults::default())
        .map_err(|e| Error::Usage(format!("--include-denied: {e}")))?;
    let mut report = MigrateReport {
        dry_run: opts.dry_run,
        mode: Some(opts.mode),
        ..Default::default()
    };
    let mut journal = match (&opts.state, opts.mode, opts.dry_run) {
        (Some(p), Mode::Migrate, false) => Some(Journal::open(p)?),
        _ => None,
    };
    let pace = opts.rate.filter(|r| *r > 0.0).map(|r| Pace {
        every: std::time::Duration::from_secs_f64(1.0 / r),
        next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
    });
    // Totals for progress (rate, ETA): a metadata-only pass over the tree.
    let (total_files, total_bytes) = if rn.opts.progress == ProgressMode::Quiet {
        (0, 0)
    } else {
        walk(src, &rules)
            .filter_map(|f| f.ok())
            .filter(|f| opts.shard.is_none_or(|(i, n)| shard_of(&f.key_rel, n) == i))
            .fold((0u64, 0u64), |(n, b), f| (n + 1, b + f.size))
    };
    let phase = Phase::new(rn.opts.progress, "migrate", total_files, total_bytes);
    let mut cursor = RemoteCursor {
        store,
        prefix: list_prefix(prefix),
        page: VecDeque::new(),
        after: None,
        done: false,
    };
    let mut map = match (&opts.base_url, &opts.cdn_url) {
        (Some(_), Some(_)) if !opts.dry_run && opts.mode == Mode::Migrate => {
            std::fs::create_dir_all(&opts.map_dir).map_err(|e| Error::io(&opts.map_dir, e))?;
            let csv = opts.map_dir.join("url-map.csv");
            let nginx = opts.map_dir.join("nginx-redirects.conf");
            let mut c = std::fs::File::create(&csv).map_err(|e| Error::io(&csv, e))?;
            let mut n = std::fs::File::create(&nginx).map_err(|e| Error::io(&nginx, e))?;
            writeln!(c, "old_url,new_url,size,blake3").map_err(|e| Error::io(&csv, e))?;
            writeln!(n, "# cdnsync migrate: old upload URLs -> CDN (include in the http block; see README)\nmap $request_uri $cdnsync_new_url {{\n    default \"\";")
                .map_err(|e| Error::io(&nginx, e))?;
            report.url_map = Some(csv.display().to_string());
            report.nginx_map = Some(nginx.display().to_string());
            Some((c, n))
        }
        _ => None,
    };
    let base_url = opts
        .base_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let cdn_url = opts
        .cdn_url
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    let old_path_prefix = url::Url::parse(&format!("{base_url}/"))
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| "/".into());

    let mut files = walk(src, &rules).peekable();
    while files.peek().is_some() && !cancel.is_cancelled() {
        // One batch: decide against the listing, then work concurrently.
        let mut batch: Vec<(Local, Option<Option<u64>>)> = Vec::new();
        while batch.len() < BATCH {
            let Some(f) = files.next() else { break };
            match f {
                Err(p) => report.skipped.push(p),
                Ok(f) => {
                    if let Some((i, n)) = opts.shard
                        && shard_of(&f.key_rel, n) != i
                    {
                        continue;
                    }
                    let key = join_key(prefix, &f.key_rel);
                    if opts.mode == Mode::Migrate
                        && let Some(j) = &journal
                        && j.is_done(&key, f.size, f.mtime)
                    {
                        // Migrated before and unchanged since: no request at all.
                        phase.object_done();
                        report.files += 1;
                        report.unchanged += 1;
                        continue;
                    }
                    // With a journal the listing is skipped: HEAD tells.
                    let remote = if journal.is_some() {
                        None
                    } else {
                        Some(cursor.size_of(&key).await?)
                    };
                    batch.push((f, remote));
                }
            }
        }
        report.files += batch.len();
        let results: Vec<(String, u64, i128, FileResult)> =
            futures::stream::iter(batch.into_iter().map(|(f, remote)| {
                let phase = &phase;
                let pace = &pace;
                async move {
                    if let Some(p) = pace {
                        p.wait().await;
                    }
                    let r = migrate_one(&f, remote, rn, opts, phase).await;
                    (f.key_rel, f.size, f.mtime, r)
                }
            }))
            .buffered(rn.opts.concurrency.max(1))
            .collect()
            .await;
        for (rel, size, mtime, r) in results {
            phase.object_done();
            match r {
                Ok((done, hash)) => {
                    if matches!(done, Done::Uploaded(_) | Done::Unchanged)
                        && let Some(j) = journal.as_mut()
                    {
                        j.record(&join_key(prefix, &rel), size, mtime, &hash);
                    }
                    match done {
                        Done::Uploaded(n) => {
                            report.uploaded += 1;
                            report.bytes_uploaded += n;
                        }
                        Done::Unchanged => report.unchanged += 1,
                        Done::Verified => report.verified += 1,
                        Done::DeletedLocal => report.deleted_local += 1,
                        Done::Mismatch(why) => {
                            report.mismatches.push(Problem {
                                path: rel.clone(),
                                reason: why,
                            });
                            continue;
                        }
                    }
                    if let Some((c, n)) = map.as_mut() {
                        let old = format!("{base_url}/{}", url_path(&rel));
                        let new = format!("{cdn_url}/{}", url_path(&join_key(prefix, &rel)));
                        let _ =
                            writeln!(c, "{},{},{size},{hash}", csv_field(&old), csv_field(&new));
                        let _ = writeln!(
                            n,
                            "    \"{}{}\" \"{}\";",
                            old_path_prefix,
                            url_path(&rel),
                            new
                        );
                    }
                }
                Err(reason) => report.failed.push(Problem { path: rel, reason }),
            }
        }
    }
    if let Some((_, n)) = map.as_mut() {
        let _ = writeln!(
            n,
            "}}\n# in the server block serving the old uploads:\n# if ($cdnsync_new_url) {{ return 301 $cdnsync_new_url; }}"
        );
    }
    phase.finish();
    report.target = store.describe();
    report.elapsed_ms = t0.elapsed().as_millis() as u64;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    Ok(report)
}

/// Decide, upload and verify one file. `Err` is a per-file failure message.
async fn migrate_one(
    f: &Local,
    // `None`: not listed (journal mode), ask with HEAD; `Some(None)`: absent.
    remote_size: Option<Option<u64>>,
    rn: &Runner<'_>,
    opts: &MigrateOptions,
    phase: &Phase,
) -> FileResult {
    let (store, sse, prefix) = (rn.store, &rn.opts.sse, rn.opts.prefix.as_str());
    // Read through the tree as walked, never through a symlink swapped in
    // since: the hash, CRC32 and identity of exactly the bytes checked.
    let (src, rel_fs, path) = (opts.src_root.clone(), f.rel_fs.clone(), f.path.clone());
    let read = tokio::task::spawn_blocking(move || hash_beneath(&src, &rel_fs, &path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read: {e}"))?;
    let (size, hash) = (read.size, read.hash.clone());
    let headers = headers_for(&f.key_rel, &opts.cache_control, opts.inline);
    let digest = headers.digest(sse);
    let key = join_key(prefix, &f.key_rel);
    if opts.mode != Mode::Migrate {
        // Check the remote copy: size and content hash.
        let m = store.head(&key).await.map_err(|e| e.to_string())?;
        let why = match &m {
            None => Some("missing in the bucket".to_string()),
            Some(m) if m.size != size => Some(format!(
                "size differs (remote {} bytes, local {size})",
                m.size
            )),
            Some(m) if m.metadata.get(META_HASH) != Some(&hash) => {
                Some("content differs (blake3)".to_string())
            }
            // The metadata can be written by anyone who can write the
            // bucket: the bytes themselves are checked.
            Some(m) => verify_bytes(store, &key, m, &read).await.err(),
        };
        if let Some(why) = why {
            return Ok((Done::Mismatch(why), hash));
        }
        if opts.mode == Mode::Verify || opts.dry_run {
            return Ok((Done::Verified, hash));
        }
        // Delete only the very file that was verified, still unchanged,
        // reached without following a symlink.
        let (src, rel_fs, id) = (opts.src_root.clone(), read.rel_fs.clone(), read.id);
        tokio::task::spawn_blocking(move || crate::beneath::unlink(&src, &rel_fs, id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("not deleted: {e}"))?;
        return Ok((Done::DeletedLocal, hash));
    }
    if remote_size.is_none_or(|r| r == Some(size))
        && let Some(m) = store.head(&key).await.map_err(|e| e.to_string())?
        && m.metadata.get(META_HASH) == Some(&hash)
        && m.metadata.get(META_HEADERS) == Some(&digest)
    {
        return Ok((Done::Unchanged, hash));
    }
    if opts.dry_run {
        return Ok((Done::Uploaded(size), hash));
    }
    let object = Desired {
        rel: f.key_rel.clone(),
        logical: f.key_rel.clone(),
        key: key.clone(),
        path: f.path.clone(),
        class: FileClass::Plain,
        size,
        hash: hash.clone(),
        source_hash: hash.clone(),
        splices: Default::default(),
        headers,
        digest,
        copy_of: None,
    };
    let done = rn
        .upload(&object, false, phase)
        .await
        .map_err(|e| e.to_string())?;
    // Verify what the server holds: size and content hash.
    let m = store
        .head(&key)
        .await
        .map_err(|e| format!("verify: {e}"))?
        .ok_or_else(|| "verify: object missing after upload".to_string())?;
    if m.size != size || m.metadata.get(META_HASH) != Some(&hash) {
        return Err(format!(
            "verify: server holds {} bytes / hash {:?}, expected {size} / {hash}",
            m.size,
            m.metadata.get(META_HASH)
        ));
    }
    Ok((Done::Uploaded(done.stored_size), hash))
}

/// What reading a file to migrate found.
struct Read {
    size: u64,
    hash: String,
    /// CRC32 as S3 reports it (base64 of the big-endian value).
    crc32: String,
    id: crate::beneath::FileId,
    /// The path read, relative to the source root (through links resolved
    /// inside the root).
    rel_fs: PathBuf,
}

/// Hash a file below `src` without following a symlink that appeared since
/// the walk; a file the walk reached through a link inside the tree is read
/// at its real place (still inside the tree).
fn hash_beneath(src: &Path, rel_fs: &Path, path: &Path) -> std::io::Result<Read> {
    use std::io::Read as _;
    let (mut file, rel) = match crate::beneath::open(src, rel_fs) {
        Ok(f) => (f, rel_fs.to_path_buf()),
        Err(_) => {
            let canon_src = src.canonicalize()?;
            let real = path.canonicalize()?;
            let rel = real
                .strip_prefix(&canon_src)
                .map_err(|_| std::io::Error::other("leads outside the source directory"))?
                .to_path_buf();
            (crate::beneath::open(&canon_src, &rel)?, rel)
        }
    };
    let id = crate::beneath::id_of(&file)?;
    let mut h = blake3::Hasher::new();
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        crc.update(&buf[..n]);
        size += n as u64;
    }
    use base64::Engine;
    Ok(Read {
        size,
        hash: h.finalize().to_hex().to_string(),
        crc32: base64::engine::general_purpose::STANDARD.encode(crc.finalize().to_be_bytes()),
        id,
        rel_fs: rel,
    })
}

/// Check the bytes a store holds are the local ones: by the store's own
/// full-object CRC32 when it has one, else by reading them back in ranges
/// and hashing them (multipart objects, stores without checksums).
async fn verify_bytes(
    store: &dyn Store,
    key: &str,
    m: &crate::store::ObjectMeta,
    local: &Read,
) -> std::result::Result<(), String> {
    if let Some(c) = &m.checksum_crc32
        && !c.contains('-')
    {
        return if *c == local.crc32 {
            Ok(())
        } else {
            Err("content differs (the store's CRC32)".into())
        };
    }
    const RANGE: u64 = 8 << 20;
    let mut h = blake3::Hasher::new();
    let mut at = 0;
    while at < local.size {
        let b = store
            .read_range(key, at, RANGE.min(local.size - at))
            .await
            .map_err(|e| format!("cannot read back: {e}"))?;
        if b.is_empty() {
            break;
        }
        h.update(&b);
        at += b.len() as u64;
    }
    if at == local.size && h.finalize().to_hex().as_str() == local.hash {
        Ok(())
    } else {
        Err("content differs (read back and hashed)".into())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_keys() {
        let keys: Vec<String> = (0..1000).map(|i| format!("u/{i}.jpg")).collect();
        let mut counts = [0; 4];
        for k in &keys {
            counts[shard_of(k, 4) as usize] += 1;
        }
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(
            parse_shard("4/4").is_err() && parse_shard("x").is_err() && parse_shard("1/0").is_err()
        );
    }

    #[test]
    fn names_and_headers() {
        assert!(bad_name("a\u{7}b.jpg").is_some());
        assert!(bad_name("a\\b.jpg").is_some());
        assert!(bad_name("a b+c%.jpg").is_none());
        let h = headers_for("x/page.html", "public, max-age=86400", false);
        assert_eq!(h.content_disposition.as_deref(), Some("attachment"));
        assert!(!h.compress);
        assert_eq!(
            headers_for("x/a.svg", "c", false)
                .content_disposition
                .as_deref(),
            Some("attachment")
        );
        assert_eq!(headers_for("x/a.jpg", "c", false).content_disposition, None);
        assert_eq!(
            headers_for("x/page.html", "c", true).content_disposition,
            None,
            "--inline"
        );
        // Anything a browser may run or render as a document is an attachment.
        for f in [
            "feed.rss", "atom.xml", "a.xhtml", "m.mml", "x.rdf", "app.js", "a.mjs", "a.xsl",
            "a.wasm", "noext", "a.php", "a.htm",
        ] {
            assert_eq!(
                headers_for(f, "c", false).content_disposition.as_deref(),
                Some("attachment"),
                "{f}"
            );
        }
        for t in [
            "application/atom+xml",
            "application/rss+xml; charset=utf-8",
            "text/xml",
            "image/svg+xml",
        ] {
            assert!(!safe_inline(t), "{t}");
        }
        for f in [
            "a.png", "a.webp", "a.mp4", "a.mp3", "a.pdf", "a.txt", "a.woff2", "a.csv",
        ] {
            assert_eq!(headers_for(f, "c", false).content_disposition, None, "{f}");
        }
    }

    #[test]
    fn urls_are_encoded() {
        assert_eq!(url_path("2024/a b+c%é.jpg"), "2024/a%20b%2Bc%25%C3%A9.jpg");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
