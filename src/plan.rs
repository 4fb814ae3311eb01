//! The pure heart of a publish: from the local files (with their rules) and
//! the remote state, decide what to upload, what is unchanged and what to
//! delete. A [`Plan`] is data: `--dry-run` prints it, the executor applies it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::fingerprint::{Fingerprinted, Splice};
use crate::headers::HeaderSettings;
use crate::release::ReleaseFile;
use crate::remote::{RemoteObject, RemoteState};
use crate::rules::{FileClass, Rules, detect_hashed};
use crate::scan::{Inventory, Skipped};
use crate::store::{Sse, join_key};

/// S3's limit on key length, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// One file as it should be published.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    /// Path relative to the prefix as published (renamed for assets).
    pub rel: String,
    /// Path in the build directory.
    pub logical: String,
    pub key: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub class: FileClass,
    /// Size of the published (uncompressed) bytes.
    pub size: u64,
    /// blake3 of the published (uncompressed) bytes.
    pub hash: String,
    /// blake3 of the file on disk (differs from `hash` when rewritten).
    #[serde(skip)]
    pub source_hash: String,
    /// Edits from the file on disk to the published bytes.
    #[serde(skip)]
    pub splices: Arc<Vec<Splice>>,
    pub headers: HeaderSettings,
    /// Digest of `headers` + SSE, stored as `x-amz-meta-cdnsync-headers`.
    pub digest: String,
    /// For the original-URL copy of a renamed asset: the published path of
    /// the content-addressed object it copies (same bytes, revalidating
    /// headers), so a URL built at run time still resolves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
}

/// Why an object is uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not in the bucket.
    New,
    /// In the bucket with other content.
    Content,
    /// Same content, other headers (or encryption).
    Headers,
    /// In the bucket without cdnsync metadata (written by another tool).
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    #[serde(flatten)]
    pub object: Desired,
    pub reason: Reason,
    /// Stable-name files go live by a server-side copy (phase 2); `None`
    /// for content-addressed files, PUT directly in phase 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchFrom>,
}

impl Upload {
    /// Its stored body, when it goes live from one.
    pub fn body(&self) -> Option<&Body> {
        match &self.switch {
            Some(SwitchFrom::Body(b)) => Some(b),
            _ => None,
        }
    }

    /// Created with `If-None-Match: *`, never overwritten: a
    /// content-addressed name that is new.
    pub fn creates_only(&self) -> bool {
        self.object.class == FileClass::Asset && self.reason == Reason::New
    }

    /// A stored body that phase 1 must upload first.
    pub fn body_to_store(&self) -> bool {
        self.body().is_some_and(|b| !b.exists)
    }
}

/// What a stable-name file is copied live from in the switch.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum SwitchFrom {
    /// Its stored body under `.cdnsync/objects/`.
    Body(Body),
    /// The content-addressed object at this path (an asset's original URL
    /// is a copy of its fingerprinted object).
    Object { rel: String },
}

/// The stored body of a stable-name file.
#[derive(Debug, Clone, Serialize)]
pub struct Body {
    /// `objects/<hash>[.gz]` under `.cdnsync/`.
    pub name: String,
    /// Already in the bucket: nothing to upload for it.
    pub exists: bool,
}

/// Bodies above this size go straight to the live key (CopyObject stops at 5 GiB).
pub const MAX_SWITCH_SIZE: u64 = 5 * 1024 * 1024 * 1024;

impl Desired {
    /// Whether this file keeps a stable URL (so its body is stored under
    /// `.cdnsync/objects/` and switched live by a copy).
    pub fn is_stable(&self) -> bool {
        matches!(self.class, FileClass::Entry | FileClass::Plain) && self.size <= MAX_SWITCH_SIZE
    }

    pub fn body_name(&self) -> String {
        crate::release::body_name(&self.hash, self.headers.compress)
    }
}

/// An object already published as wanted.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    #[serde(flatten)]
    pub object: Desired,
    pub stored_size: u64,
    pub content_encoding: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Delete {
    pub rel: String,
    pub key: String,
    pub size: u64,
    /// What the previous release recorded for it.
    #[serde(skip)]
    pub previous: ReleaseFile,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub release: String,
    pub previous_release: Option<String>,
    /// Assets before entries: uploaded in this order.
    pub uploads: Vec<Upload>,
    pub unchanged: Vec<Kept>,
    /// Live and unchanged, but without a stored body (published by an older
    /// cdnsync): the body is stored so the release can be rolled back to.
    pub bodies_missing: Vec<Desired>,
    /// Keys of the previous release no longer published (capped by
    /// `max_delete`: over it, this is empty and `delete_blocked` says why).
    pub deletes: Vec<Delete>,
    pub delete_blocked: Option<String>,
    /// Deletions held back by `max_delete`: recorded as stale in the new
    /// release so a later publish deletes them.
    #[serde(skip)]
    pub retained: Vec<Delete>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<crate::warning::Warning>,
    /// Nothing to do: the live release already is exactly this site. No
    /// new release is recorded (a no-op publish writes nothing).
    pub noop: bool,
    /// The edge routing the release records.
    pub routing: Option<crate::routing::RoutingRecord>,
    /// It differs from the live release's.
    pub routing_changed: bool,
    /// The functions generated for `routing` (once per publish: the report
    /// and the edge use these).
    #[serde(skip)]
    pub routing_code: Option<crate::routing::function::Compiled>,
}

impl Plan {
    /// Stored bodies phase 1 uploads: one per distinct body (pages with
    /// the same bytes share one).
    pub fn bodies_to_store(&self) -> usize {
        self.uploads
            .iter()
            .filter(|u| u.body_to_store())
            .map(|u| u.object.body_name())
            .chain(self.bodies_missing.iter().map(Desired::body_name))
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    pub fn upload_bytes(&self) -> u64 {
        self.uploads.iter().map(|u| u.object.size).sum()
    }

    /// Every object of the new release, in key order.
    pub fn published(&self) -> impl Iterator<Item = &Desired> {
        self.uploads
            .iter()
            .map(|u| &u.object)
            .chain(self.unchanged.iter().map(|k| &k.object))
    }
}

/// Settings for planning.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub prefix: String,
    pub sse: Sse,
    pub max_delete: usize,
    pub allow_empty: bool,
    /// The new release's edge routing (`None`: routing off).
    pub routing: Option<crate::routing::RoutingRecord>,
}

/// Every local file with its class, key, headers and digest; with
/// fingerprinting, under its published name and with its final hash.
pub fn desired(
    inv: &Inventory,
    rules: &Rules,
    fp: Option<&Fingerprinted>,
    prefix: &str,
    sse: &Sse,
    original_copies: bool,
) -> Result<Vec<Desired>> {
    let hashed = detect_hashed(inv.files.iter().map(|f| f.rel.as_str()));
    let mut out = Vec::with_capacity(inv.files.len());
    for f in &inv.files {
        let o = fp.and_then(|fp| fp.outputs.get(&f.rel));
        let published = o
            .map(|o| o.published.clone())
            .unwrap_or_else(|| f.rel.clone());
        let key = join_key(prefix, &published);
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::input(
                &f.path,
                format!(
                    "key would be {} bytes, over S3's {MAX_KEY_BYTES}-byte limit; shorten the path or the prefix",
                    key.len()
                ),
            ));
        }
        let renamed = o.is_some_and(|o| o.renamed);
        let (class, headers) = rules.settings_as(&f.rel, hashed.contains(&f.rel), renamed);
        let digest = headers.digest(sse);
        let d = Desired {
            rel: published,
            logical: f.rel.clone(),
            key,
            path: f.path.clone(),
            class,
            size: o.map(|o| o.size).unwrap_or(f.size),
            hash: o.map(|o| o.hash.clone()).unwrap_or_else(|| f.hash.clone()),
            source_hash: f.hash.clone(),
            splices: o.map(|o| o.splices.clone()).unwrap_or_default(),
            headers,
            digest,
            copy_of: None,
        };
        if renamed && original_copies {
            out.push(original_copy(&d, rules, prefix, sse));
        }
        out.push(d);
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// The original-URL copy of a renamed asset: under its path in the build
/// directory, the same final bytes, and the headers the file would have had
/// without a content hash (never `immutable`: its content changes under
/// the same URL).
fn original_copy(asset: &Desired, rules: &Rules, prefix: &str, sse: &Sse) -> Desired {
    let (class, mut headers) = rules.settings_as(&asset.logical, false, false);
    let class = match class {
        FileClass::Entry => FileClass::Entry,
        _ => FileClass::Plain,
    };
    if headers.cache_control.contains("immutable") {
        headers.cache_control = match class {
            FileClass::Entry => rules.defaults.entry_cache_control.clone(),
            _ => rules.defaults.plain_cache_control.clone(),
        };
    }
    let digest = headers.digest(sse);
    Desired {
        rel: asset.logical.clone(),
        logical: asset.logical.clone(),
        key: join_key(prefix, &asset.logical),
        path: asset.path.clone(),
        class,
        size: asset.size,
        hash: asset.hash.clone(),
        source_hash: asset.source_hash.clone(),
        splices: asset.splices.clone(),
        headers,
        digest,
        copy_of: Some(asset.rel.clone()),
    }
}

/// The one place equality is decided. A remote object matches when it
/// carries cdnsync's metadata and both the content hash (blake3 of the
/// uncompressed bytes) and the header digest equal the local ones.
/// Modification times and ETags are never used: mtimes change on every
/// checkout, and ETags are not content hashes under SSE-KMS or multipart.
pub fn needs_upload(local: &Desired, remote: Option<&RemoteObject>) -> Option<Reason> {
    let Some(r) = remote else {
        return Some(Reason::New);
    };
    match (&r.hash, &r.headers) {
        (None, _) => Some(Reason::Unknown),
        (Some(h), _) if *h != local.hash => Some(Reason::Content),
        (Some(_), Some(d)) if *d == local.digest => None,
        (Some(_), _) => Some(Reason::Headers),
    }
}

/// Build the plan.
pub fn plan(
    release_id: &str,
    desired: Vec<Desired>,
    inv: &Inventory,
    remote: &RemoteState,
    opts: &PlanOptions,
) -> Result<Plan> {
    let prev_files = remote.release.as_ref().map(|r| &r.files);
    if desired.is_empty() && !opts.allow_empty && prev_files.is_some_and(|f| !f.is_empty()) {
        return Err(Error::input(
            &inv.root,
            "is empty (after exclusions); publishing it would delete the live site. Pass --allow-empty if that is intended",
        ));
    }
    let Compared {
        uploads,
        unchanged,
        bodies_missing,
    } = compare(desired, remote);
    let local: HashSet<&str> = uploads
        .iter()
        .map(|u| u.object.rel.as_str())
        .chain(unchanged.iter().map(|k| k.object.rel.as_str()))
        .collect();
    let mut deletes = deletes(prev_files, &local, remote, &opts.prefix);
    drop(local);
    let mut delete_blocked = None;
    let mut retained = Vec::new();
    if deletes.len() > opts.max_delete {
        delete_blocked = Some(format!(
            "{} objects would be deleted, more than --max-delete {}; nothing was deleted (raise --max-delete to allow it)",
            deletes.len(),
            opts.max_delete
        ));
        retained = std::mem::take(&mut deletes);
    }
    // A no-op when nothing moves and the live release lists exactly these
    // files with these hashes and headers.
    let routing_changed = remote.release.as_ref().map(|r| &r.routing) != Some(&opts.routing);
    let noop = uploads.is_empty()
        && !routing_changed
        && bodies_missing.is_empty()
        && deletes.is_empty()
        && delete_blocked.is_none()
        && prev_files.is_some_and(|files| lists_exactly(files, &unchanged));
    let release = match (&remote.release, noop) {
        (Some(r), true) => r.id.clone(),
        _ => release_id.to_string(),
    };
    let mut warnings = inv.warnings.clone();
    if let Some(b) = &delete_blocked {
        warnings.push(crate::warning::Warning::DeletesBlocked(b.clone()));
    }
    Ok(Plan {
        release,
        noop,
        routing: opts.routing.clone(),
        routing_changed,
        routing_code: None,
        previous_release: remote.release.as_ref().map(|r| r.id.clone()),
        uploads,
        unchanged,
        bodies_missing,
        deletes,
        delete_blocked,
        retained,
        skipped: inv.skipped.clone(),
        warnings,
    })
}

/// Every desired object against the remote state.
struct Compared {
    /// Assets first, entries last, each group in key order.
    uploads: Vec<Upload>,
    unchanged: Vec<Kept>,
    /// Unchanged stable-name files whose stored body is gone.
    bodies_missing: Vec<Desired>,
}

fn compare(desired: Vec<Desired>, remote: &RemoteState) -> Compared {
    let mut c = Compared {
        uploads: Vec::new(),
        unchanged: Vec::new(),
        bodies_missing: Vec::new(),
    };
    for d in desired {
        let r = remote.objects.get(&d.rel);
        let switch = match &d.copy_of {
            Some(rel) => Some(SwitchFrom::Object { rel: rel.clone() }),
            None => d.is_stable().then(|| {
                let name = d.body_name();
                SwitchFrom::Body(Body {
                    exists: remote.bodies.contains(&name),
                    name,
                })
            }),
        };
        match (needs_upload(&d, r), r) {
            (None, Some(r)) => {
                if matches!(&switch, Some(SwitchFrom::Body(b)) if !b.exists) {
                    c.bodies_missing.push(d.clone());
                }
                c.unchanged.push(Kept {
                    stored_size: r.size,
                    content_encoding: r.content_encoding.clone(),
                    object: d,
                });
            }
            (reason, _) => c.uploads.push(Upload {
                object: d,
                reason: reason.unwrap_or(Reason::New),
                switch,
            }),
        }
    }
    c.uploads.sort_by(|a, b| {
        (a.object.class == FileClass::Entry, &a.object.key)
            .cmp(&(b.object.class == FileClass::Entry, &b.object.key))
    });
    c
}

/// Only keys cdnsync published (in the previous release) and still listed
/// are deleted; anything else under the prefix is left alone, and so are
/// content-addressed assets of earlier releases (cached pages and open tabs
/// still load them; garbage collection with a grace period removes them).
fn deletes(
    prev_files: Option<&std::collections::BTreeMap<String, ReleaseFile>>,
    local: &HashSet<&str>,
    remote: &RemoteState,
    prefix: &str,
) -> Vec<Delete> {
    let Some(files) = prev_files else {
        return Vec::new();
    };
    files
        .iter()
        .filter(|(rel, f)| {
            !local.contains(rel.as_str())
                && !matches!(f.class, FileClass::Asset | FileClass::Hashed)
        })
        .filter_map(|(rel, f)| {
            remote.objects.get(rel).map(|o| Delete {
                rel: rel.clone(),
                key: join_key(prefix, rel),
                size: o.size,
                previous: f.clone(),
            })
        })
        .collect()
}

/// The live release lists exactly the unchanged files, with their hashes,
/// headers and classes.
fn lists_exactly(
    files: &std::collections::BTreeMap<String, ReleaseFile>,
    unchanged: &[Kept],
) -> bool {
    files.values().filter(|f| !f.stale).count() == unchanged.len()
        && unchanged.iter().all(|k| {
            files.get(&k.object.rel).is_some_and(|f| {
                !f.stale
                    && f.hash == k.object.hash
                    && f.headers == k.object.digest
                    && f.class == k.object.class
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{FORMAT, Release, ReleaseFile};
    use crate::rules::Defaults;
    use crate::scan::LocalFile;
    use std::collections::BTreeMap;

    fn inv(files: &[(&str, &str)]) -> Inventory {
        Inventory {
            root: "/site".into(),
            files: files
                .iter()
                .map(|(rel, body)| LocalFile {
                    rel: rel.to_string(),
                    path: format!("/site/{rel}").into(),
                    size: body.len() as u64,
                    hash: blake3::hash(body.as_bytes()).to_hex().to_string(),
                })
                .collect(),
            skipped: vec![],
            warnings: vec![],
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            prefix: "p".into(),
            sse: Sse::Aes256,
            max_delete: 256,
            allow_empty: false,
            routing: None,
        }
    }

    fn rules() -> Rules {
        Rules::new(&[], Defaults::default()).unwrap()
    }

    /// The remote state a successful publish of `i` leaves behind.
    fn published(i: &Inventory) -> RemoteState {
        let d = desired(i, &rules(), None, "p", &Sse::Aes256, true).unwrap();
        let mut files = BTreeMap::new();
        let mut objects = BTreeMap::new();
        for x in d {
            files.insert(
                x.rel.clone(),
                ReleaseFile {
                    hash: x.hash.clone(),
                    size: x.size,
                    stored_size: x.size,
                    headers: x.digest.clone(),
                    class: x.class,
                    content_type: x.headers.content_type.clone(),
                    cache_control: x.headers.cache_control.clone(),
                    content_encoding: None,
                    content_disposition: None,
                    stale: false,
                    body: None,
                    copy_of: None,
                },
            );
            objects.insert(
                x.rel.clone(),
                RemoteObject {
                    size: x.size,
                    hash: Some(x.hash),
                    headers: Some(x.digest),
                    content_encoding: None,
                },
            );
        }
        let bodies = desired(i, &rules(), None, "p", &Sse::Aes256, true)
            .unwrap()
            .iter()
            .filter(|d| d.is_stable())
            .map(super::Desired::body_name)
            .collect();
        RemoteState {
            release: Some(Release {
                format: FORMAT,
                id: "r1".into(),
                created: "2026-11-26T00:00:00Z".into(),
                tool: "t".into(),
                previous: None,
                commit: None,
                message: None,
                rollback_of: None,
                files,
                routing: None,
            }),
            objects,
            heads: 0,
            bodies,
        }
    }

    fn run(i: &Inventory, r: &RemoteState, o: &PlanOptions) -> Plan {
        let d = desired(i, &rules(), None, &o.prefix, &o.sse, true).unwrap();
        plan("r2", d, i, r, o).unwrap()
    }

    #[test]
    fn cold_publish_uploads_everything_assets_first() {
        let i = inv(&[
            ("index.html", "<p>"),
            ("css/a.css", "a{}"),
            ("about/index.html", "x"),
        ]);
        let p = run(&i, &RemoteState::default(), &opts());
        assert!(!p.noop);
        let keys: Vec<&str> = p.uploads.iter().map(|u| u.object.key.as_str()).collect();
        assert_eq!(keys, ["p/css/a.css", "p/about/index.html", "p/index.html"]);
        assert!(p.uploads.iter().all(|u| u.reason == Reason::New));
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn republish_is_a_no_op() {
        let i = inv(&[("index.html", "<p>"), ("css/a.css", "a{}")]);
        let p = run(&i, &published(&i), &opts());
        assert!(p.uploads.is_empty());
        assert_eq!(p.unchanged.len(), 2);
        assert_eq!(p.previous_release.as_deref(), Some("r1"));
        assert!(p.noop);
        assert_eq!(p.release, "r1", "a no-op keeps the live release");
        // A live release without one of the files is not a no-op.
        let mut r = published(&i);
        r.release.as_mut().unwrap().files.remove("css/a.css");
        let p = run(&i, &r, &opts());
        assert!(!p.noop);
        assert_eq!(p.release, "r2");
    }

    #[test]
    fn change_header_and_delete_detection() {
        let before = inv(&[
            ("index.html", "<p>"),
            ("css/a.css", "a{}"),
            ("old.html", "o"),
        ]);
        let remote = published(&before);
        let after = inv(&[("index.html", "<p>changed"), ("css/a.css", "a{}")]);
        let p = run(&after, &remote, &opts());
        assert_eq!(p.uploads.len(), 1);
        assert_eq!(p.uploads[0].object.rel, "index.html");
        assert_eq!(p.uploads[0].reason, Reason::Content);
        assert_eq!(p.deletes.len(), 1);
        assert_eq!(p.deletes[0].key, "p/old.html");

        // Other encryption → every object re-uploaded for its headers.
        let mut o = opts();
        o.sse = Sse::Kms {
            key_id: None,
            bucket_key: true,
        };
        let p = run(&before, &remote, &o);
        assert_eq!(p.uploads.len(), 3);
        assert!(p.uploads.iter().all(|u| u.reason == Reason::Headers));
    }

    #[test]
    fn objects_without_metadata_are_reuploaded_and_foreign_keys_never_deleted() {
        let i = inv(&[("index.html", "<p>")]);
        let mut remote = RemoteState::default();
        for k in ["index.html", "other-tool.txt"] {
            remote.objects.insert(
                k.into(),
                RemoteObject {
                    size: 3,
                    hash: None,
                    headers: None,
                    content_encoding: None,
                },
            );
        }
        let p = run(&i, &remote, &opts());
        assert_eq!(p.uploads[0].reason, Reason::Unknown);
        assert!(p.deletes.is_empty());
    }

    #[test]
    fn max_delete_blocks_all_deletes() {
        let before = inv(&[("a.html", "a"), ("b.html", "b"), ("c.html", "c")]);
        let remote = published(&before);
        let after = inv(&[("a.html", "a")]);
        let mut o = opts();
        o.max_delete = 1;
        let p = run(&after, &remote, &o);
        assert!(p.deletes.is_empty());
        assert!(
            p.delete_blocked
                .as_deref()
                .unwrap()
                .contains("--max-delete 1")
        );
        assert_eq!(p.retained.len(), 2, "held-back deletions are remembered");
        o.max_delete = 2;
        assert_eq!(run(&after, &remote, &o).deletes.len(), 2);
    }

    #[test]
    fn empty_dir_refused_over_a_live_site() {
        let before = inv(&[("a.html", "a")]);
        let remote = published(&before);
        let empty = inv(&[]);
        let d = desired(&empty, &rules(), None, "p", &Sse::Aes256, true).unwrap();
        let e = plan("r2", d, &empty, &remote, &opts()).unwrap_err();
        assert!(e.to_string().contains("--allow-empty"), "{e}");
        let mut o = opts();
        o.allow_empty = true;
        assert_eq!(run(&empty, &remote, &o).deletes.len(), 1);
    }

    #[test]
    fn overlong_keys_are_refused() {
        let long = format!("{}.html", "a".repeat(1100));
        let i = inv(&[(long.as_str(), "x")]);
        let e = desired(&i, &rules(), None, "p", &Sse::Aes256, true).unwrap_err();
        assert!(e.to_string().contains("1024-byte limit"), "{e}");
    }
}
