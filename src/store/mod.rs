//! The narrow object-store interface every backend implements (S3, a local
//! directory, memory), with typed errors so callers can tell a retryable
//! failure from a denied one.

#![warn(missing_docs)]

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

pub mod local;
#[cfg(any(test, feature = "dev-tools"))]
pub mod memory;
pub mod s3;

/// Server-side encryption requested for every write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Sse {
    /// Only for S3-compatible stores that reject the header (`--sse none`).
    None,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS, with an optional key id (else the bucket's / AWS managed key).
    Kms {
        /// Key id, ARN or alias (`--sse-kms-key-id`).
        key_id: Option<String>,
        /// S3 Bucket Keys (fewer KMS calls).
        bucket_key: bool,
    },
}

impl Sse {
    /// What the header digest records of the encryption (a change of
    /// encryption re-uploads).
    pub fn digest_part(&self) -> String {
        match self {
            Sse::None => "none".into(),
            Sse::Aes256 => "AES256".into(),
            Sse::Kms { key_id, bucket_key } => {
                format!("aws:kms:{}:{}", key_id.as_deref().unwrap_or(""), bucket_key)
            }
        }
    }

    /// The `x-amz-server-side-encryption` value.
    pub fn header_value(&self) -> Option<&'static str> {
        match self {
            Sse::None => None,
            Sse::Aes256 => Some("AES256"),
            Sse::Kms { .. } => Some("aws:kms"),
        }
    }
}

/// Everything a PUT (or a metadata-replacing COPY) sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutOptions {
    /// `Content-Type`.
    pub content_type: String,
    /// `Cache-Control`.
    pub cache_control: String,
    /// `Content-Encoding` (`gzip` when stored compressed).
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// Server-side encryption requested.
    pub sse: Sse,
    /// Create only: fail with [`StoreError::Precondition`] if the key exists
    /// (`If-None-Match: *`).
    pub if_none_match: bool,
    /// Overwrite only the version read: fail with
    /// [`StoreError::Precondition`] unless the object's tag (from
    /// [`Store::get_tagged`]) still matches (`If-Match`).
    pub if_match: Option<String>,
}

impl PutOptions {
    /// Plain options for small internal objects (manifests, `current`).
    pub fn internal(content_type: &str, sse: &Sse) -> Self {
        PutOptions {
            content_type: content_type.to_string(),
            cache_control: "no-store".into(),
            content_encoding: None,
            content_disposition: None,
            metadata: BTreeMap::new(),
            sse: sse.clone(),
            if_none_match: false,
            if_match: None,
        }
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// The full key.
    pub key: String,
    /// Stored size in bytes.
    pub size: u64,
}

/// What HEAD returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ObjectMeta {
    /// Stored size in bytes.
    pub size: u64,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// User metadata, keys without the `x-amz-meta-` prefix.
    pub metadata: BTreeMap<String, String>,
    /// `x-amz-server-side-encryption` as the store reports it.
    pub sse: Option<String>,
    /// The KMS key the store reports, for SSE-KMS.
    pub sse_kms_key_id: Option<String>,
    /// The store's own CRC32 of the stored bytes (base64, big-endian), when
    /// it keeps one; `…-N` for a multipart composite.
    pub checksum_crc32: Option<String>,
}

/// One finished part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number, from 1.
    pub number: i32,
    /// The part's ETag, as completing the upload needs it.
    pub etag: String,
    /// The part's CRC32, when the store computed one.
    pub checksum_crc32: Option<String>,
}

/// Why a store call failed, typed so callers can tell a retryable failure
/// from a fatal one.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[allow(missing_docs)] // the fields are the key / bucket / message shown
pub enum StoreError {
    /// The key does not exist (where it must).
    #[error("{key}: not found")]
    NotFound { key: String },
    /// A conditional write found the object changed or present.
    #[error("{key}: already exists (If-None-Match precondition failed)")]
    Precondition { key: String },
    /// The bucket does not exist, or these credentials cannot see it.
    #[error("bucket `{bucket}` does not exist (or is not visible with these credentials)")]
    NoSuchBucket { bucket: String },
    /// Credentials rejected or access denied.
    #[error("access denied{}: {message}", if key.is_empty() { String::new() } else { format!(" on `{key}`") })]
    Denied { key: String, message: String },
    #[error("bucket `{bucket}` is in another region{}; pass --region {}", region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(), region.as_deref().unwrap_or("<its region>"))]
    /// The bucket is in another region than the client's.
    WrongRegion {
        bucket: String,
        region: Option<String>,
    },
    /// A failure that may pass (throttling, 5xx, a broken connection).
    #[error("{}: temporary failure: {message}", if key.is_empty() { "listing" } else { key.as_str() })]
    Transient { key: String, message: String },
    /// No connection to the store could be made at all (refused, DNS,
    /// timeout) before anything was written.
    #[error("cannot connect to {endpoint}: {message}; nothing was written")]
    Unreachable { endpoint: String, message: String },
    /// Anything else.
    #[error("{}: {message}", if key.is_empty() { "listing" } else { key.as_str() })]
    Other { key: String, message: String },
    /// An object read back is larger than any valid one can be.
    #[error("{key}: {size} bytes, more than the {max} a valid one can hold; not read")]
    TooLarge { key: String, size: u64, max: u64 },
}

impl StoreError {
    /// Worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }

    /// Errors that no retry or other key will fix: stop the whole run.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StoreError::Denied { .. }
                | StoreError::NoSuchBucket { .. }
                | StoreError::WrongRegion { .. }
                | StoreError::Unreachable { .. }
        )
    }
}

/// A store call's result.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// The storage interface. Keys are full keys (prefix included), without a
/// leading slash.
#[async_trait]
pub trait Store: Send + Sync {
    /// Human-readable location, e.g. `s3://bucket` or a directory.
    fn describe(&self) -> String;

    /// Check the store is reachable and writable in principle (bucket
    /// exists, credentials accepted). Cheap: one request at most.
    async fn check(&self) -> StoreResult<()>;

    /// Every object under `prefix` (all pages), sorted by key.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<ListEntry>>;

    /// Whether [`Store::list_page`] costs one request per page (so ranges of
    /// a big listing can be read in parallel); the default pages by
    /// listing everything.
    fn pages_natively(&self) -> bool {
        false
    }

    /// One page of the listing: at most `max` keys under `prefix` sorted
    /// after `start_after` — for walking huge prefixes in bounded memory.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<Vec<ListEntry>> {
        Ok(self
            .list(prefix)
            .await?
            .into_iter()
            .filter(|e| start_after.is_none_or(|s| e.key.as_str() > s))
            .take(max)
            .collect())
    }

    /// Metadata of one object, `None` if absent.
    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>>;

    /// Whole body of a (small) object, `None` if absent;
    /// [`StoreError::TooLarge`] when it holds more than `max` bytes (what is
    /// read back from a bucket is untrusted: its size is bounded).
    async fn get(&self, key: &str, max: u64) -> StoreResult<Option<Bytes>>;

    /// Like [`Store::get`], with a tag of the version read (the ETag) for a
    /// later [`PutOptions::if_match`]; `None` when the backend cannot do
    /// conditional overwrites.
    async fn get_tagged(
        &self,
        key: &str,
        max: u64,
    ) -> StoreResult<Option<(Bytes, Option<String>)>> {
        Ok(self.get(key, max).await?.map(|b| (b, None)))
    }

    /// `len` bytes of an object from `offset` (fewer at its end): for
    /// checking what a store holds without reading it whole.
    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Bytes>;

    /// Write a whole object from memory.
    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> StoreResult<()>;

    /// Server-side copy with the given headers replacing the source's.
    async fn copy(&self, src: &str, dst: &str, opts: &PutOptions) -> StoreResult<()>;

    /// Delete keys (batched by the backend); per-key failures are returned.
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>>;

    /// Start a multipart upload; returns its id.
    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String>;

    /// Upload one part (numbered from 1).
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> StoreResult<CompletedPart>;

    /// Finish a multipart upload from its parts (in order).
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()>;

    /// Abandon a multipart upload and its parts.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()>;
}

/// Join a prefix and a relative path into a key.
pub fn join_key(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}/{rel}")
    }
}

/// The behaviour every backend must show; run by unit tests (memory, local)
/// and integration tests (S3 servers).
#[cfg(any(test, feature = "dev-tools"))]
pub mod conformance;
