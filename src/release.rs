//! Release manifests: one JSON document per publish under
//! `<prefix>/.cdnsync/releases/<id>.json`, and `<prefix>/.cdnsync/current`
//! naming the live one (written last).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::rules::FileClass;
use crate::store::{PutOptions, Sse, Store, join_key};

pub use crate::keys::{META_DIR, key_problem};

/// Manifest format written by this version. A higher number in the bucket
/// means a newer cdnsync wrote it; we refuse rather than misread it.
pub const FORMAT: u32 = 1;

/// The most `current` can hold (a release id and a newline).
pub const CURRENT_MAX: u64 = 4 * 1024;
/// The most a release record can hold: about 2 million files. Bigger is
/// not a record cdnsync wrote, and is not read.
pub const RECORD_MAX: u64 = 1 << 30;
/// S3's limit on an object's size.
const OBJECT_MAX: u64 = 5 << 40;

/// A release id as cdnsync writes them: 1–128 characters of `A-Za-z0-9._-`,
/// not `.` or `..`.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_hex(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A header value read back: one line, bounded.
fn header_ok(v: &str) -> bool {
    v.len() <= 1024 && !v.chars().any(char::is_control)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFile {
    /// blake3 of the uncompressed content (64 hex).
    pub hash: String,
    /// Uncompressed size.
    pub size: u64,
    /// Size as stored (after compression).
    pub stored_size: u64,
    /// Digest of the header settings (see `headers::HeaderSettings::digest`).
    pub headers: String,
    pub class: FileClass,
    pub content_type: String,
    pub cache_control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// No longer part of the site, but possibly still in the bucket (its
    /// deletion was planned, capped by `--max-delete`, or failed). Kept so
    /// a later publish still knows cdnsync owns the key and deletes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// For stable-name files: the stored body under `.cdnsync/`
    /// (`objects/<hash>[.gz]`), from which a rollback restores the live key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// For the original URL of a renamed asset: the path (relative to the
    /// prefix) of the content-addressed object it is a copy of, from which
    /// a rollback restores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub format: u32,
    pub id: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub tool: String,
    #[serde(default)]
    pub previous: Option<String>,
    /// Source commit, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `--message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The release this one rolled back to, for rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// Path relative to the prefix → what was published there.
    pub files: BTreeMap<String, ReleaseFile>,
    /// Edge routing of this release (`None`: routing off, or an older
    /// cdnsync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::routing::RoutingRecord>,
}

/// A unique release id that sorts by time (to the millisecond; runs on one
/// target are serialized by the lock): `20261126T134403.123Z-1a2b3c4d`.
pub fn new_release_id(clock: &dyn Clock) -> String {
    let now = clock.now();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond(),
        clock.random_u32()
    )
}

pub fn created_now(clock: &dyn Clock) -> String {
    clock.now().format(&Rfc3339).expect("format time")
}

pub fn meta_prefix(prefix: &str) -> String {
    join_key(prefix, META_DIR)
}

pub fn release_key(prefix: &str, id: &str) -> String {
    format!("{}/releases/{id}.json", meta_prefix(prefix))
}

/// Name (under `.cdnsync/`) of the stored body of a stable-name file: its
/// content hash, `.gz` when stored gzip-encoded by setting.
pub fn body_name(hash: &str, compress: bool) -> String {
    if compress {
        format!("objects/{hash}.gz")
    } else {
        format!("objects/{hash}")
    }
}

/// Full key of a stored body.
pub fn body_key(prefix: &str, name: &str) -> String {
    format!("{}/{name}", meta_prefix(prefix))
}

/// `cdnsync-manifest.json` of a release (logical path → published key).
pub fn asset_manifest_key(prefix: &str, id: &str) -> String {
    format!(
        "{}/releases/{id}.cdnsync-manifest.json",
        meta_prefix(prefix)
    )
}

pub fn current_key(prefix: &str) -> String {
    format!("{}/current", meta_prefix(prefix))
}

impl Release {
    /// Check everything a command may act on, as untrusted input. The
    /// first problem found, naming the path it concerns.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !valid_id(&self.id) {
            return Err("its id is not a release id".into());
        }
        for (what, id) in [
            ("previous", &self.previous),
            ("rollback_of", &self.rollback_of),
        ] {
            if id.as_deref().is_some_and(|i| !valid_id(i)) {
                return Err(format!("`{what}` is not a release id"));
            }
        }
        if time::OffsetDateTime::parse(&self.created, &Rfc3339).is_err() {
            return Err("`created` is not an RFC 3339 time".into());
        }
        if self.message.as_ref().is_some_and(|m| m.len() > 64 * 1024)
            || self.commit.as_ref().is_some_and(|c| c.len() > 1024)
            || self.tool.len() > 1024
        {
            return Err("a message, commit or tool name is too long".into());
        }
        if let Some(r) = &self.routing {
            r.settings.validate().map_err(|e| format!("routing: {e}"))?;
            if !is_hex(&r.digest, 32..=64) {
                return Err("routing: its digest is not hex".into());
            }
        }
        for (rel, f) in &self.files {
            let bad = |why: &str| Err(format!("`{}`: {why}", crate::redact::printable(rel)));
            if let Some(p) = key_problem(rel) {
                return bad(p);
            }
            if !is_hex(&f.hash, 64..=64) {
                return bad("its hash is not 64 hex characters");
            }
            if !is_hex(&f.headers, 1..=64) {
                return bad("its header digest is not hex");
            }
            if f.size > OBJECT_MAX || f.stored_size > OBJECT_MAX {
                return bad("its size is over S3's 5 TiB limit");
            }
            let headers = [
                Some(&f.content_type),
                Some(&f.cache_control),
                f.content_encoding.as_ref(),
                f.content_disposition.as_ref(),
            ];
            if !headers.into_iter().flatten().all(|h| header_ok(h)) {
                return bad("a header value has control characters or is too long");
            }
            if let Some(b) = &f.body {
                let name = b
                    .strip_prefix("objects/")
                    .map(|n| n.strip_suffix(".gz").unwrap_or(n));
                if !name.is_some_and(|n| is_hex(n, 64..=64)) {
                    return bad("its stored body is not `objects/<hash>[.gz]`");
                }
            }
            if let Some(c) = &f.copy_of {
                if let Some(p) = key_problem(c) {
                    return bad(&format!("it copies {p}"));
                }
                if !self.files.contains_key(c) {
                    return bad("it copies a file the release does not list");
                }
            }
        }
        Ok(())
    }
}

/// Parse a manifest, refusing corrupt ones, ones from a newer format, and
/// ones a command must not act on (see [`Release::validate`]).
pub fn parse(key: &str, body: &[u8]) -> Result<Release> {
    let bad = |reason: String| Error::Manifest {
        key: key.to_string(),
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("not valid JSON ({e})")))?;
    let format = v
        .get("format")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| bad("no `format` field; it was not written by cdnsync".into()))?;
    if format > FORMAT as u64 {
        return Err(bad(format!(
            "written by a newer cdnsync (manifest format {format}, this version reads {FORMAT}); upgrade cdnsync"
        )));
    }
    let r: Release =
        serde_json::from_value(v).map_err(|e| bad(format!("invalid manifest ({e})")))?;
    r.validate()
        .map_err(|e| bad(format!("invalid, nothing acted on it: {e}")))?;
    Ok(r)
}

/// How to get past a live release record that cannot be read: without
/// `current` the next publish adopts the objects as they are (nothing is
/// deleted), and the other releases stay listed for rollback.
fn recover_hint(ckey: &str) -> String {
    format!(
        "nothing was changed. To recover, restore it from versioning, or delete `{ckey}`: the next publish then adopts the live objects as they are"
    )
}

/// The live release, if any: reads `current`, then that release's manifest.
pub async fn read_current(store: &dyn Store, prefix: &str) -> Result<Option<Release>> {
    let ckey = current_key(prefix);
    let Some(body) = store.get(&ckey, CURRENT_MAX).await? else {
        return Ok(None);
    };
    let id = std::str::from_utf8(&body)
        .map(str::trim)
        .ok()
        .filter(|s| valid_id(s))
        .ok_or_else(|| Error::Manifest {
            key: ckey.clone(),
            reason: format!("does not contain a release id; {}", recover_hint(&ckey)),
        })?
        .to_string();
    let rkey = release_key(prefix, &id);
    let Some(body) = store.get(&rkey, RECORD_MAX).await? else {
        return Err(Error::Manifest {
            key: rkey,
            reason: format!(
                "`{ckey}` names release {id}, but its manifest is missing; {}",
                recover_hint(&ckey)
            ),
        });
    };
    let r = parse(&rkey, &body).map_err(|e| match e {
        Error::Manifest { key, reason } if !reason.contains("newer cdnsync") => Error::Manifest {
            key,
            reason: format!("{reason}; {}", recover_hint(&ckey)),
        },
        e => e,
    })?;
    if r.id != id {
        return Err(Error::Manifest {
            key: rkey,
            reason: format!("contains release {} instead of {id}", r.id),
        });
    }
    Ok(Some(r))
}

/// Ids of every recorded release, oldest first (ids sort by time).
pub async fn list_ids(store: &dyn Store, prefix: &str) -> Result<Vec<String>> {
    let dir = format!("{}/releases/", meta_prefix(prefix));
    let mut ids: Vec<String> = store
        .list(&dir)
        .await?
        .into_iter()
        .filter_map(|e| {
            let name = e.key.strip_prefix(&dir)?;
            let id = name.strip_suffix(".json")?;
            (!id.ends_with(".cdnsync-manifest") && !id.contains('/')).then(|| id.to_string())
        })
        .collect();
    ids.sort();
    Ok(ids)
}

/// One release's manifest.
pub async fn read(store: &dyn Store, prefix: &str, id: &str) -> Result<Release> {
    let key = release_key(prefix, id);
    if !valid_id(id) {
        return Err(Error::Usage(format!(
            "`{}` is not a release id (see `cdnsync releases`)",
            crate::redact::printable(id)
        )));
    }
    let body = store
        .get(&key, RECORD_MAX)
        .await?
        .ok_or_else(|| Error::Manifest {
            key: key.clone(),
            reason: format!("release {id} does not exist (see `cdnsync releases`)"),
        })?;
    parse(&key, &body)
}

/// The id `current` names, if any.
/// The id `current` names, if any; an error when it holds anything but a
/// release id.
pub async fn current_id(store: &dyn Store, prefix: &str) -> Result<Option<String>> {
    let ckey = current_key(prefix);
    let Some(b) = store.get(&ckey, CURRENT_MAX).await? else {
        return Ok(None);
    };
    let id = std::str::from_utf8(&b).map(str::trim).unwrap_or("");
    if !valid_id(id) {
        return Err(Error::Manifest {
            key: ckey.clone(),
            reason: format!("does not contain a release id; {}", recover_hint(&ckey)),
        });
    }
    Ok(Some(id.to_string()))
}

/// Record a release: the manifest first, then `current`.
pub async fn write(store: &dyn Store, prefix: &str, release: &Release, sse: &Sse) -> Result<()> {
    let body = serde_json::to_vec_pretty(release).expect("serialize release");
    store
        .put(
            &release_key(prefix, &release.id),
            Bytes::from(body),
            &PutOptions::internal("application/json", sse),
        )
        .await?;
    store
        .put(
            &current_key(prefix),
            Bytes::from(format!("{}\n", release.id)),
            &PutOptions::internal("text/plain; charset=utf-8", sse),
        )
        .await?;
    Ok(())
}

/// The keys a release serves (its stale entries left out): what routing
/// is generated from.
pub fn live_keys(files: &BTreeMap<String, ReleaseFile>) -> Vec<&str> {
    files
        .iter()
        .filter(|(_, f)| !f.stale)
        .map(|(k, _)| k.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::memory::MemoryStore;
    use time::macros::datetime;

    fn clock() -> FixedClock {
        FixedClock {
            now: datetime!(2026-11-26 13:44:03 UTC),
            random: 0x1a2b3c4d,
        }
    }

    fn release(id: &str) -> Release {
        let mut files = BTreeMap::new();
        files.insert(
            "index.html".into(),
            ReleaseFile {
                hash: "ab".repeat(32),
                size: 10,
                stored_size: 10,
                headers: "0123456789abcdef".into(),
                class: FileClass::Entry,
                content_type: "text/html; charset=utf-8".into(),
                cache_control: "public, max-age=0, must-revalidate".into(),
                content_encoding: None,
                content_disposition: None,
                stale: false,
                body: None,
                copy_of: None,
            },
        );
        Release {
            format: FORMAT,
            id: id.into(),
            created: created_now(&clock()),
            tool: "cdnsync test".into(),
            previous: None,
            commit: None,
            message: None,
            rollback_of: None,
            files,
            routing: None,
        }
    }

    #[test]
    fn ids_sort_by_time() {
        assert_eq!(new_release_id(&clock()), "20261126T134403.000Z-1a2b3c4d");
        assert_eq!(created_now(&clock()), "2026-11-26T13:44:03Z");
    }

    #[tokio::test]
    async fn write_then_read_current() {
        let s = MemoryStore::new();
        assert_eq!(read_current(&s, "site").await.unwrap(), None);
        let r = release("20261126T134403.000Z-1a2b3c4d");
        write(&s, "site", &r, &Sse::Aes256).await.unwrap();
        assert_eq!(read_current(&s, "site").await.unwrap(), Some(r));
        assert!(s.object("site/.cdnsync/current").is_some());
        assert!(
            s.object("site/.cdnsync/releases/20261126T134403.000Z-1a2b3c4d.json")
                .is_some()
        );
    }

    #[test]
    fn refuses_corrupt_and_newer_manifests() {
        let e = parse("k", b"{not json").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let e = parse("k", br#"{"format": 99, "id": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("newer cdnsync"), "{e}");
        let e = parse("k", br#"{"id": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("not written by cdnsync"), "{e}");
    }

    #[tokio::test]
    async fn current_pointing_at_missing_manifest_is_an_error() {
        let s = MemoryStore::new();
        s.put(
            "p/.cdnsync/current",
            Bytes::from_static(b"abc\n"),
            &PutOptions::internal("text/plain", &Sse::Aes256),
        )
        .await
        .unwrap();
        let e = read_current(&s, "p").await.unwrap_err();
        assert!(e.to_string().contains("manifest is missing"), "{e}");
    }

    /// A record a command must not act on is refused, naming the problem.
    #[test]
    fn records_that_name_keys_outside_the_site_are_refused() {
        let ok = release("r1");
        ok.validate().unwrap();
        let bad = |f: &dyn Fn(&mut Release)| {
            let mut r = release("r1");
            f(&mut r);
            let body = serde_json::to_vec(&r).unwrap();
            parse("p/.cdnsync/releases/r1.json", &body)
                .unwrap_err()
                .to_string()
        };
        let file = |r: &mut Release, key: &str| {
            let f = r.files.values().next().unwrap().clone();
            r.files.insert(key.into(), f);
        };
        for key in [
            ".cdnsync/current",
            ".cdnsync/releases/x.json",
            "../outside.html",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\b",
            "a\u{1b}[31m",
            "",
        ] {
            let e = bad(&|r| file(r, key));
            assert!(
                e.contains("p/.cdnsync/releases/r1.json") && e.contains("invalid"),
                "{key}: {e}"
            );
        }
        type Mutation = Box<dyn Fn(&mut Release)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "hash",
                Box::new(|r: &mut Release| {
                    r.files.get_mut("index.html").unwrap().hash = "zz".into();
                }),
            ),
            (
                "body",
                Box::new(|r: &mut Release| {
                    r.files.get_mut("index.html").unwrap().body = Some("../../current".into());
                }),
            ),
            (
                "copy",
                Box::new(|r: &mut Release| {
                    r.files.get_mut("index.html").unwrap().copy_of = Some(".cdnsync/lock".into());
                }),
            ),
            (
                "size",
                Box::new(|r: &mut Release| r.files.get_mut("index.html").unwrap().size = u64::MAX),
            ),
            (
                "header",
                Box::new(|r: &mut Release| {
                    r.files.get_mut("index.html").unwrap().cache_control =
                        "a\r\nSet-Cookie: x".into();
                }),
            ),
            ("id", Box::new(|r: &mut Release| r.id = "../x".into())),
            (
                "created",
                Box::new(|r: &mut Release| r.created = "yesterday".into()),
            ),
            (
                "previous",
                Box::new(|r: &mut Release| r.previous = Some("a/b".into())),
            ),
        ];
        for (what, f) in cases {
            let e = bad(&*f);
            assert!(e.contains("invalid"), "{what}: {e}");
        }
    }

    #[tokio::test]
    async fn oversized_current_and_records_are_not_read() {
        let s = MemoryStore::new();
        s.put(
            "p/.cdnsync/current",
            Bytes::from(vec![b'a'; CURRENT_MAX as usize + 1]),
            &PutOptions::internal("text/plain", &Sse::Aes256),
        )
        .await
        .unwrap();
        let e = read_current(&s, "p").await.unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Remote);
        assert!(e.to_string().contains("not read"), "{e}");
        assert!(current_id(&s, "p").await.is_err());
    }
}
