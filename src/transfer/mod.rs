//! The one transfer engine: a [`Runner`] owns the store (retrying through
//! [`RetryingStore`]), the cancellation flag, the memory budget and the
//! concurrency, and moves objects — whole or multipart uploads from disk,
//! content-addressed bodies, server-side copies — for publish, rollback and
//! migrate alike. What to move, and in which order, is the callers' plan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::headers::{META_HASH, META_HEADERS};
use crate::plan::Desired;
use crate::progress::{Phase, ProgressMode};
use crate::retry::Retry;
use crate::store::{PutOptions, Sse, Store, StoreError};

mod encode;
mod multipart;
mod retrying;

pub use encode::{Wire, encode_blocking, measure};
pub use retrying::RetryingStore;

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

/// How a runner transfers.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// The target's key prefix (stored bodies live under it).
    pub prefix: String,
    pub sse: Sse,
    pub concurrency: usize,
    /// Files of this size and more go multipart (and are not compressed).
    pub multipart_threshold: u64,
    pub part_size: usize,
    /// Upper bound on file bytes held in memory by in-flight uploads.
    pub memory_budget: usize,
    pub progress: ProgressMode,
}

impl TransferOptions {
    pub fn new(prefix: &str, sse: Sse) -> Self {
        TransferOptions {
            prefix: prefix.to_string(),
            sse,
            concurrency: 32,
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
            memory_budget: 32 * 1024 * 1024,
            progress: ProgressMode::Quiet,
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

/// The headers of a live object: its type and caching, plus cdnsync's
/// metadata (content hash, header digest) that later runs compare.
#[derive(Debug, Clone, Copy)]
pub struct ObjectHeaders<'a> {
    pub hash: &'a str,
    pub digest: &'a str,
    pub content_type: &'a str,
    pub cache_control: &'a str,
    pub content_encoding: Option<&'a str>,
    pub content_disposition: Option<&'a str>,
}

impl ObjectHeaders<'_> {
    /// The one place S3 write options of a site object are built.
    pub fn put_options(&self, sse: &Sse, if_none_match: bool) -> PutOptions {
        let mut metadata = BTreeMap::new();
        metadata.insert(META_HASH.to_string(), self.hash.to_string());
        metadata.insert(META_HEADERS.to_string(), self.digest.to_string());
        PutOptions {
            content_type: self.content_type.to_string(),
            cache_control: self.cache_control.to_string(),
            content_encoding: self.content_encoding.map(str::to_string),
            content_disposition: self.content_disposition.map(str::to_string),
            metadata,
            sse: sse.clone(),
            if_none_match,
            if_match: None,
        }
    }
}

/// The headers a planned object is written with.
pub fn headers_of<'a>(o: &'a Desired, encoding: Option<&'a str>) -> ObjectHeaders<'a> {
    ObjectHeaders {
        hash: &o.hash,
        digest: &o.digest,
        content_type: &o.headers.content_type,
        cache_control: &o.headers.cache_control,
        content_encoding: encoding,
        content_disposition: o.headers.content_disposition.as_deref(),
    }
}

/// The transfer engine of one run.
pub struct Runner<'a> {
    pub store: &'a dyn Store,
    pub opts: TransferOptions,
    pub cancel: Cancel,
    mem: Semaphore,
    /// For waits that are not store calls (a local store's metadata
    /// appearing after its bytes).
    pub(crate) retry: Retry,
}

impl<'a> Runner<'a> {
    /// `store` should retry on its own ([`RetryingStore`]); `retry` paces
    /// the runner's other waits.
    pub fn new(store: &'a dyn Store, opts: TransferOptions, cancel: Cancel, retry: Retry) -> Self {
        let mem = Semaphore::new(opts.memory_budget.div_ceil(1024));
        Runner {
            store,
            opts,
            cancel,
            mem,
            retry,
        }
    }

    /// Memory units (KiB) of the whole budget.
    fn mem_units(&self) -> usize {
        self.opts.memory_budget.div_ceil(1024).max(1)
    }

    /// Run `f` over `items`, at most `concurrency` at a time, in completion
    /// order; once cancelled (or after a fatal store error), what has not
    /// started yields [`Error::Interrupted`].
    pub async fn each<'b, T, R, F, Fut>(
        &self,
        items: impl IntoIterator<Item = T>,
        f: F,
    ) -> Vec<(T, Result<R>)>
    where
        T: Clone + 'b,
        F: Fn(T) -> Fut,
        Fut: std::future::Future<Output = Result<R>>,
    {
        let f = &f;
        futures::stream::iter(items.into_iter().map(|t| async move {
            if self.cancel.is_cancelled() {
                return (t, Err(Error::Interrupted));
            }
            let r = f(t.clone()).await;
            if let Err(Error::Store(e)) = &r
                && e.is_fatal()
            {
                // Access denied, no bucket, wrong region: no other item
                // will fare better. Stop scheduling.
                self.cancel.cancel();
            }
            (t, r)
        }))
        .buffer_unordered(self.opts.concurrency.max(1))
        .collect()
        .await
    }

    /// Upload a local file (rewritten and compressed as planned) to
    /// `o.key`; `create_only`: with `If-None-Match: *` (a content-addressed
    /// name), where an existing object with the same content is success.
    pub async fn upload(&self, o: &Desired, create_only: bool, phase: &Phase) -> Result<Uploaded> {
        if o.size >= self.opts.multipart_threshold && o.splices.is_empty() {
            return multipart::upload(self, o, phase).await;
        }
        let units = (o.size as usize).div_ceil(1024).clamp(1, self.mem_units());
        let _permit = self
            .mem
            .acquire_many(units as u32)
            .await
            .map_err(|e| Error::Internal(format!("memory budget: {e}")))?;
        let (body, encoding) = encode::read_and_encode(o).await?;
        let stored_size = body.len() as u64;
        let popts = headers_of(o, encoding).put_options(&self.opts.sse, create_only);
        match self.store.put(&o.key, body, &popts).await {
            Ok(()) => {}
            Err(StoreError::Precondition { .. }) => self.same_content_exists(o).await?,
            Err(e) => return Err(e.into()),
        }
        phase.add_bytes(o.size);
        Ok(Uploaded {
            key: o.key.clone(),
            stored_size,
            content_encoding: encoding.map(str::to_string),
        })
    }

    /// A create-only PUT found the name taken (an earlier attempt, a
    /// concurrent run): fine when it holds the same content. A store whose
    /// metadata appears a moment after the bytes (a local directory) gets a
    /// few looks.
    async fn same_content_exists(&self, o: &Desired) -> Result<()> {
        let look = self.retry.with(4, Duration::from_millis(40));
        let not_yet = |e: &Error| matches!(e, Error::Internal(_));
        let seen = look
            .run(
                "content-addressed name taken",
                not_yet,
                || false,
                || async {
                    self.store
                        .head(&o.key)
                        .await?
                        .and_then(|m| m.metadata.get(META_HASH).cloned())
                        .ok_or_else(|| Error::Internal("no content hash yet".into()))
                },
            )
            .await;
        match seen {
            Ok(h) if h == o.hash => return Ok(()),
            Err(e) if !not_yet(&e) => return Err(e),
            _ => {}
        }
        Err(Error::Store(StoreError::Other {
            key: o.key.clone(),
            message: "a different object already exists under this content-addressed name".into(),
        }))
    }

    /// Store the body of a stable-name file under `.cdnsync/objects/`,
    /// content-addressed, created only if absent.
    pub async fn store_body(&self, d: &Desired, phase: &Phase) -> Result<Uploaded> {
        let mut as_body = d.clone();
        as_body.key = crate::release::body_key(&self.opts.prefix, &d.body_name());
        self.upload(&as_body, true, phase).await
    }

    /// Server-side copy of `src` to `dst` with `headers` replacing the
    /// source's.
    pub async fn copy(&self, src: &str, dst: &str, headers: &ObjectHeaders<'_>) -> Result<()> {
        let popts = headers.put_options(&self.opts.sse, false);
        Ok(self.store.copy(src, dst, &popts).await?)
    }
}
