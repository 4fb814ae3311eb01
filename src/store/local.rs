//! A local directory as a store: object bytes at `<root>/<key>` and every
//! header in a JSON sidecar under `<root>/.cdnsync-store/meta/`, so a local
//! target behaves like the bucket (and `serve` can replay the headers).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{CompletedPart, ListEntry, ObjectMeta, PutOptions, Store, StoreError, StoreResult};

/// Directory (under the root) holding sidecars, temp files and uploads.
pub const STORE_DIR: &str = ".cdnsync-store";

/// A store in a local directory: each object a file, its headers in a
/// sidecar under `.cdnsync-store/`.
pub struct LocalStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Sidecar {
    content_type: String,
    cache_control: String,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    content_disposition: Option<String>,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    sse: Option<String>,
    #[serde(default)]
    sse_kms_key_id: Option<String>,
}

impl Sidecar {
    fn from_opts(o: &PutOptions) -> Self {
        Sidecar {
            content_type: o.content_type.clone(),
            cache_control: o.cache_control.clone(),
            content_encoding: o.content_encoding.clone(),
            content_disposition: o.content_disposition.clone(),
            metadata: o.metadata.clone(),
            sse: o.sse.header_value().map(str::to_string),
            sse_kms_key_id: match &o.sse {
                super::Sse::Kms { key_id, .. } => key_id.clone(),
                _ => None,
            },
        }
    }
}

fn other(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Other {
        key: key.to_string(),
        message: e.to_string(),
    }
}

fn join_err(key: &str, e: tokio::task::JoinError) -> StoreError {
    other(key, format!("internal task failed: {e}"))
}

impl LocalStore {
    /// The store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Filesystem path for a key, refusing keys that cannot map safely and
    /// symlinks inside the target (a symlinked folder would make a publish
    /// write, and `serve` read, outside it).
    pub fn object_path(&self, key: &str) -> StoreResult<PathBuf> {
        validate_key(key)?;
        let path = self.root.join(key);
        let mut at = self.root.clone();
        for seg in key.split('/') {
            at.push(seg);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(other(
                        key,
                        format!(
                            "{} is a symbolic link inside the local target; cdnsync never follows one there",
                            at.display()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(path)
    }

    pub(crate) fn sidecar_path(&self, key: &str) -> PathBuf {
        self.root
            .join(STORE_DIR)
            .join("meta")
            .join(format!("{key}.json"))
    }

    fn tmp_path(&self) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        self.root.join(STORE_DIR).join("tmp").join(format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The headers of an object cdnsync published here: `None` for a file
    /// without a sidecar (not published), anything that is not a regular
    /// file, or a path through a symlink. What `serve` serves.
    pub fn read_published_meta(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let Ok(path) = self.object_path(key) else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {}
            _ => return Ok(None),
        }
        if !self.sidecar_path(key).is_file() {
            return Ok(None);
        }
        self.read_meta(key)
    }

    /// Read an object's headers (used by `serve`).
    pub fn read_meta(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        let path = self.object_path(key)?;
        let md = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(other(key, e)),
        };
        let sidecar: Option<Sidecar> = match std::fs::read(self.sidecar_path(key)) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| other(key, format!("corrupt sidecar: {e}")))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(other(key, e)),
        };
        Ok(Some(match sidecar {
            Some(s) => ObjectMeta {
                size: md.len(),
                content_type: Some(s.content_type),
                cache_control: Some(s.cache_control),
                content_encoding: s.content_encoding,
                content_disposition: s.content_disposition,
                metadata: s.metadata,
                sse: s.sse,
                sse_kms_key_id: s.sse_kms_key_id,
                checksum_crc32: None,
            },
            None => ObjectMeta {
                size: md.len(),
                ..Default::default()
            },
        }))
    }

    fn write_tmp(&self, body: &[u8]) -> std::io::Result<PathBuf> {
        let tmp = self.tmp_path();
        std::fs::create_dir_all(tmp.parent().unwrap())?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_data()?;
        Ok(tmp)
    }

    fn put_blocking(&self, key: &str, body: &[u8], opts: &PutOptions) -> StoreResult<()> {
        let dest = self.object_path(key)?;
        let side = self.sidecar_path(key);
        let io = |e: std::io::Error| other(key, e);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                other(
                    key,
                    format!("cannot create directory {}: {e}", parent.display()),
                )
            })?;
        }
        std::fs::create_dir_all(side.parent().unwrap()).map_err(io)?;
        let sidecar = serde_json::to_vec_pretty(&Sidecar::from_opts(opts)).expect("serialize");
        let data_tmp = self.write_tmp(body).map_err(io)?;
        if opts.if_none_match {
            // hard_link fails if the destination exists: an atomic create.
            let r = std::fs::hard_link(&data_tmp, &dest);
            let _ = std::fs::remove_file(&data_tmp);
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(StoreError::Precondition { key: key.into() });
                }
                Err(e) => return Err(io(e)),
            }
            let side_tmp = self.write_tmp(&sidecar).map_err(io)?;
            std::fs::rename(&side_tmp, &side).map_err(io)?;
        } else {
            let side_tmp = self.write_tmp(&sidecar).map_err(io)?;
            std::fs::rename(&side_tmp, &side).map_err(io)?;
            std::fs::rename(&data_tmp, &dest).map_err(|e| {
                let _ = std::fs::remove_file(&data_tmp);
                io(e)
            })?;
        }
        Ok(())
    }

    fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join(STORE_DIR).join("uploads").join(upload_id)
    }
}

/// Keys must be relative paths with no empty, `.` or `..` segments and must
/// not reach into the store's own folder.
fn validate_key(key: &str) -> StoreResult<()> {
    let bad = |why: &str| StoreError::Other {
        key: key.to_string(),
        message: format!("cannot be stored in a local directory: {why}"),
    };
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
        return Err(bad("empty segment"));
    }
    if key.contains('\0') || key.contains('\\') {
        return Err(bad("contains NUL or backslash"));
    }
    for seg in key.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(bad("empty, `.` or `..` segment"));
        }
    }
    if key == STORE_DIR || key.starts_with(&format!("{STORE_DIR}/")) {
        return Err(bad("reserved for the store's metadata"));
    }
    Ok(())
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn check(&self) -> StoreResult<()> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || match std::fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(other(
                &root.display().to_string(),
                "target exists and is not a directory",
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&root)
                .map_err(|e| {
                    other(
                        &root.display().to_string(),
                        format!("cannot create target directory: {e}"),
                    )
                }),
            Err(e) => Err(other(&root.display().to_string(), e)),
        })
        .await
        .map_err(|e| join_err("", e))?
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ListEntry>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if !root.exists() {
                return Ok(out);
            }
            let walker = walkdir::WalkDir::new(&root)
                .follow_links(false)
                .into_iter()
                .filter_entry(|e| !(e.depth() == 1 && e.file_name() == STORE_DIR));
            for ent in walker {
                let ent = ent.map_err(|e| other(&prefix, e))?;
                if !ent.file_type().is_file() {
                    continue;
                }
                let rel = ent.path().strip_prefix(&root).unwrap();
                let Some(key) = rel.to_str() else { continue };
                let key = key.replace(std::path::MAIN_SEPARATOR, "/");
                if !key.starts_with(&prefix) {
                    continue;
                }
                let size = ent.metadata().map_err(|e| other(&key, e))?.len();
                out.push(ListEntry { key, size });
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| join_err("", e))?
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        self.read_meta(key)
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Bytes> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.object_path(key)?;
        let mut f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| other(key, e))?;
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| other(key, e))?;
        let mut b = Vec::new();
        f.take(len)
            .read_to_end(&mut b)
            .await
            .map_err(|e| other(key, e))?;
        Ok(b.into())
    }

    async fn get(&self, key: &str, max: u64) -> StoreResult<Option<Bytes>> {
        use tokio::io::AsyncReadExt;
        let path = self.object_path(key)?;
        let f = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(other(key, e)),
        };
        let size = f.metadata().await.map_err(|e| other(key, e))?.len();
        if size > max {
            return Err(StoreError::TooLarge {
                key: key.into(),
                size,
                max,
            });
        }
        let mut b = Vec::with_capacity(size as usize);
        f.take(max.saturating_add(1))
            .read_to_end(&mut b)
            .await
            .map_err(|e| other(key, e))?;
        if b.len() as u64 > max {
            return Err(StoreError::TooLarge {
                key: key.into(),
                size: b.len() as u64,
                max,
            });
        }
        Ok(Some(b.into()))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> StoreResult<()> {
        let this = LocalStore::new(self.root.clone());
        let key2 = key.to_string();
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || this.put_blocking(&key2, &body, &opts))
            .await
            .map_err(|e| join_err(key, e))?
    }

    async fn copy(&self, src: &str, dst: &str, opts: &PutOptions) -> StoreResult<()> {
        let body = self
            .get(src, u64::MAX)
            .await?
            .ok_or_else(|| StoreError::NotFound { key: src.into() })?;
        self.put(dst, body, opts).await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut failed = Vec::new();
        for key in keys {
            let path = match self.object_path(key) {
                Ok(p) => p,
                Err(e) => {
                    failed.push((key.clone(), e));
                    continue;
                }
            };
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed.push((key.clone(), other(key, e)));
                    continue;
                }
            }
            let _ = std::fs::remove_file(self.sidecar_path(key));
            // Remove directories left empty, up to the root.
            let mut dir = path.parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == self.root || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
        Ok(failed)
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        validate_key(key)?;
        let id = format!(
            "{}-{}",
            std::process::id(),
            &blake3::hash(format!("{key}{:?}", std::time::SystemTime::now()).as_bytes()).to_hex()
                [..16]
        );
        let dir = self.upload_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| other(key, e))?;
        let o = serde_json::to_vec(&(key, Sidecar::from_opts(opts), opts.if_none_match)).unwrap();
        std::fs::write(dir.join("upload.json"), o).map_err(|e| other(key, e))?;
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> StoreResult<CompletedPart> {
        let dir = self.upload_dir(upload_id);
        if !dir.is_dir() {
            return Err(StoreError::NotFound { key: key.into() });
        }
        let etag = blake3::hash(&body).to_hex()[..32].to_string();
        tokio::fs::write(dir.join(format!("part-{number:05}")), &body)
            .await
            .map_err(|e| other(key, e))?;
        Ok(CompletedPart {
            number,
            etag,
            checksum_crc32: None,
        })
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        let dir = self.upload_dir(upload_id);
        let this = LocalStore::new(self.root.clone());
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let raw = std::fs::read(dir.join("upload.json")).map_err(|e| other(&key, e))?;
            let (_, sidecar, if_none_match): (String, Sidecar, bool) =
                serde_json::from_slice(&raw).map_err(|e| other(&key, e))?;
            let dest = this.object_path(&key)?;
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).map_err(|e| other(&key, e))?;
            }
            let tmp = this.tmp_path();
            std::fs::create_dir_all(tmp.parent().unwrap()).map_err(|e| other(&key, e))?;
            {
                let mut out = std::fs::File::create(&tmp).map_err(|e| other(&key, e))?;
                for p in &parts {
                    let mut f = std::fs::File::open(dir.join(format!("part-{:05}", p.number)))
                        .map_err(|e| other(&key, format!("part {}: {e}", p.number)))?;
                    std::io::copy(&mut f, &mut out).map_err(|e| other(&key, e))?;
                }
                out.sync_data().map_err(|e| other(&key, e))?;
            }
            let side = this.sidecar_path(&key);
            std::fs::create_dir_all(side.parent().unwrap()).map_err(|e| other(&key, e))?;
            if if_none_match {
                let r = std::fs::hard_link(&tmp, &dest);
                let _ = std::fs::remove_file(&tmp);
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(StoreError::Precondition { key });
                    }
                    Err(e) => return Err(other(&key, e)),
                }
                std::fs::write(&side, serde_json::to_vec_pretty(&sidecar).unwrap())
                    .map_err(|e| other(&key, e))?;
            } else {
                std::fs::write(&side, serde_json::to_vec_pretty(&sidecar).unwrap())
                    .map_err(|e| other(&key, e))?;
                std::fs::rename(&tmp, &dest).map_err(|e| other(&key, e))?;
            }
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        })
        .await
        .map_err(|e| join_err("", e))?
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> StoreResult<()> {
        let _ = std::fs::remove_dir_all(self.upload_dir(upload_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalStore::new(d.path().join("target"));
        super::super::conformance::run(&s, "conf").await;
    }

    #[test]
    fn rejects_unsafe_keys() {
        for k in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "./a",
            "a/",
            ".cdnsync-store/meta/x",
            "a\\b",
        ] {
            assert!(validate_key(k).is_err(), "{k}");
        }
        assert!(validate_key("a b/c+d%20é.html").is_ok());
    }
}
