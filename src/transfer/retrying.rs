//! Every store call of a run retried the same way: a decorator over any
//! [`Store`] that retries transient failures with the one policy
//! ([`Retry`]) and stops retrying once the run is cancelled. Backends never
//! retry on their own (beyond the AWS SDK's counted attempts).

use async_trait::async_trait;
use bytes::Bytes;

use super::Cancel;
use crate::retry::Retry;
use crate::store::{
    CompletedPart, ListEntry, ObjectMeta, PutOptions, Store, StoreError, StoreResult,
};

/// A store whose calls are retried on transient errors.
pub struct RetryingStore<S: ?Sized> {
    retry: Retry,
    cancel: Cancel,
    inner: std::sync::Arc<S>,
}

impl<S: Store + ?Sized> RetryingStore<S> {
    pub fn new(inner: std::sync::Arc<S>, retry: Retry, cancel: Cancel) -> Self {
        RetryingStore {
            retry,
            cancel,
            inner,
        }
    }

    async fn run<T, F, Fut>(&self, what: &str, op: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        self.retry
            .run(
                what,
                StoreError::is_transient,
                || self.cancel.is_cancelled(),
                op,
            )
            .await
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for RetryingStore<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// Not retried: the first request says whether the store answers at all.
    async fn check(&self) -> StoreResult<()> {
        self.inner.check().await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ListEntry>> {
        self.run(prefix, || self.inner.list(prefix)).await
    }

    fn pages_natively(&self) -> bool {
        self.inner.pages_natively()
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<Vec<ListEntry>> {
        self.run(prefix, || self.inner.list_page(prefix, start_after, max))
            .await
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        self.run(key, || self.inner.head(key)).await
    }

    async fn get(&self, key: &str, max: u64) -> StoreResult<Option<Bytes>> {
        self.run(key, || self.inner.get(key, max)).await
    }

    async fn get_tagged(
        &self,
        key: &str,
        max: u64,
    ) -> StoreResult<Option<(Bytes, Option<String>)>> {
        self.run(key, || self.inner.get_tagged(key, max)).await
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Bytes> {
        self.run(key, || self.inner.read_range(key, offset, len))
            .await
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> StoreResult<()> {
        self.run(key, || self.inner.put(key, body.clone(), opts))
            .await
    }

    async fn copy(&self, src: &str, dst: &str, opts: &PutOptions) -> StoreResult<()> {
        self.run(dst, || self.inner.copy(src, dst, opts)).await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.run("delete", || self.inner.delete_many(keys)).await
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        self.run(key, || self.inner.create_multipart(key, opts))
            .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> StoreResult<CompletedPart> {
        self.run(key, || {
            self.inner.upload_part(key, upload_id, number, body.clone())
        })
        .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        self.run(key, || {
            self.inner.complete_multipart(key, upload_id, parts.clone())
        })
        .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.run(key, || self.inner.abort_multipart(key, upload_id))
            .await
    }
}
