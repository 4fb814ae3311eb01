//! In-memory store for unit tests, with hooks to inject failures the real
//! servers cannot be made to produce on demand.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{CompletedPart, ListEntry, ObjectMeta, PutOptions, Store, StoreError, StoreResult};

#[derive(Debug, Clone)]
/// One object held in memory.
pub struct MemObject {
    /// The bytes.
    pub body: Bytes,
    /// What HEAD answers.
    pub meta: ObjectMeta,
}

/// The in-memory store's ETag: a hash of the body.
fn etag(body: &[u8]) -> String {
    format!("\"{}\"", &blake3::hash(body).to_hex()[..32])
}

type FailHook = Box<dyn Fn(&str, &str) -> Option<StoreError> + Send + Sync>;

#[derive(Default)]
struct Inner {
    objects: BTreeMap<String, MemObject>,
    uploads: BTreeMap<String, (String, PutOptions, BTreeMap<i32, Bytes>)>,
    next_upload: u64,
    /// Count of requests by operation name.
    ops: BTreeMap<&'static str, u64>,
}

#[derive(Default)]
/// A store in memory, with hooks to inject failures (tests only).
pub struct MemoryStore {
    inner: Mutex<Inner>,
    fail: Mutex<Option<FailHook>>,
}

fn meta_from(opts: &PutOptions, size: u64) -> ObjectMeta {
    ObjectMeta {
        size,
        content_type: Some(opts.content_type.clone()),
        cache_control: Some(opts.cache_control.clone()),
        content_encoding: opts.content_encoding.clone(),
        content_disposition: opts.content_disposition.clone(),
        metadata: opts.metadata.clone(),
        sse: opts.sse.header_value().map(str::to_string),
        sse_kms_key_id: match &opts.sse {
            super::Sse::Kms { key_id, .. } => key_id.clone(),
            _ => None,
        },
        checksum_crc32: None,
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail operations for which `hook(op, key)` returns an error. `op` is
    /// one of `list head get put copy delete create_multipart upload_part
    /// complete_multipart abort_multipart`.
    pub fn fail_when(
        &self,
        hook: impl Fn(&str, &str) -> Option<StoreError> + Send + Sync + 'static,
    ) {
        *self.fail.lock().unwrap() = Some(Box::new(hook));
    }

    /// Stop injecting failures.
    pub fn clear_failures(&self) {
        *self.fail.lock().unwrap() = None;
    }

    /// The object at `key`.
    pub fn object(&self, key: &str) -> Option<MemObject> {
        self.inner.lock().unwrap().objects.get(key).cloned()
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.inner.lock().unwrap().objects.keys().cloned().collect()
    }

    /// How many calls of `op` (`put`, `copy`…) were made.
    pub fn op_count(&self, op: &str) -> u64 {
        self.inner.lock().unwrap().ops.get(op).copied().unwrap_or(0)
    }

    /// Forget the call counts.
    pub fn reset_counts(&self) {
        self.inner.lock().unwrap().ops.clear();
    }

    fn enter(&self, op: &'static str, key: &str) -> StoreResult<()> {
        *self.inner.lock().unwrap().ops.entry(op).or_insert(0) += 1;
        if let Some(h) = self.fail.lock().unwrap().as_ref()
            && let Some(e) = h(op, key)
        {
            return Err(e);
        }
        Ok(())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> String {
        "memory://".into()
    }

    async fn check(&self) -> StoreResult<()> {
        self.enter("check", "")
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ListEntry>> {
        self.enter("list", prefix)?;
        let g = self.inner.lock().unwrap();
        Ok(g.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, o)| ListEntry {
                key: k.clone(),
                size: o.meta.size,
            })
            .collect())
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        self.enter("head", key)?;
        Ok(self
            .inner
            .lock()
            .unwrap()
            .objects
            .get(key)
            .map(|o| o.meta.clone()))
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Bytes> {
        self.enter("get", key)?;
        let g = self.inner.lock().unwrap();
        let o = g
            .objects
            .get(key)
            .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
        let start = (offset as usize).min(o.body.len());
        let end = start.saturating_add(len as usize).min(o.body.len());
        Ok(o.body.slice(start..end))
    }

    async fn get(&self, key: &str, max: u64) -> StoreResult<Option<Bytes>> {
        Ok(self.get_tagged(key, max).await?.map(|(b, _)| b))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> StoreResult<()> {
        self.enter("put", key)?;
        let mut g = self.inner.lock().unwrap();
        if opts.if_none_match && g.objects.contains_key(key) {
            return Err(StoreError::Precondition { key: key.into() });
        }
        if let Some(want) = &opts.if_match
            && g.objects.get(key).map(|o| etag(&o.body)).as_ref() != Some(want)
        {
            return Err(StoreError::Precondition { key: key.into() });
        }
        let meta = meta_from(opts, body.len() as u64);
        g.objects.insert(key.to_string(), MemObject { body, meta });
        Ok(())
    }

    async fn get_tagged(
        &self,
        key: &str,
        max: u64,
    ) -> StoreResult<Option<(Bytes, Option<String>)>> {
        self.enter("get", key)?;
        let g = self.inner.lock().unwrap();
        match g.objects.get(key) {
            Some(o) if o.body.len() as u64 > max => Err(StoreError::TooLarge {
                key: key.into(),
                size: o.body.len() as u64,
                max,
            }),
            o => Ok(o.map(|o| (o.body.clone(), Some(etag(&o.body))))),
        }
    }

    async fn copy(&self, src: &str, dst: &str, opts: &PutOptions) -> StoreResult<()> {
        self.enter("copy", dst)?;
        let mut g = self.inner.lock().unwrap();
        let body = g
            .objects
            .get(src)
            .ok_or_else(|| StoreError::NotFound { key: src.into() })?
            .body
            .clone();
        let meta = meta_from(opts, body.len() as u64);
        g.objects.insert(dst.to_string(), MemObject { body, meta });
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut failed = Vec::new();
        for k in keys {
            if let Err(e) = self.enter("delete", k) {
                failed.push((k.clone(), e));
                continue;
            }
            self.inner.lock().unwrap().objects.remove(k);
        }
        Ok(failed)
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        self.enter("create_multipart", key)?;
        let mut g = self.inner.lock().unwrap();
        g.next_upload += 1;
        let id = format!("mem-upload-{}", g.next_upload);
        g.uploads
            .insert(id.clone(), (key.to_string(), opts.clone(), BTreeMap::new()));
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> StoreResult<CompletedPart> {
        self.enter("upload_part", key)?;
        let mut g = self.inner.lock().unwrap();
        let up = g
            .uploads
            .get_mut(upload_id)
            .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
        let etag = blake3::hash(&body).to_hex()[..32].to_string();
        up.2.insert(number, body);
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
        self.enter("complete_multipart", key)?;
        let mut g = self.inner.lock().unwrap();
        let (k, opts, stored) = g
            .uploads
            .remove(upload_id)
            .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
        let mut body = Vec::new();
        for p in &parts {
            let b = stored.get(&p.number).ok_or_else(|| StoreError::Other {
                key: key.into(),
                message: format!("part {} was not uploaded", p.number),
            })?;
            body.extend_from_slice(b);
        }
        if opts.if_none_match && g.objects.contains_key(&k) {
            return Err(StoreError::Precondition { key: k });
        }
        let meta = meta_from(&opts, body.len() as u64);
        g.objects.insert(
            k,
            MemObject {
                body: body.into(),
                meta,
            },
        );
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.enter("abort_multipart", key)?;
        self.inner.lock().unwrap().uploads.remove(upload_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let s = super::MemoryStore::new();
        super::super::conformance::run(&s, "conf").await;
    }
}
