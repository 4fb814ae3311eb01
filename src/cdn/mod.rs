//! CDN cache invalidation after a release goes live: one narrow trait,
//! CloudFront as the backend, and the shared driver that turns changed keys
//! into minimal, encoded, idempotent invalidations.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub mod cloudfront;
pub mod http_purge;
pub mod paths;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CdnError {
    #[error("{0}: access denied: {1}")]
    Denied(String, String),
    #[error("distribution {0} not found")]
    NotFound(String),
    #[error("{0}: too many invalidations in progress")]
    TooMany(String),
    #[error("{0}: timed out after {1:?} waiting for invalidation {2}")]
    Timeout(String, Duration, String),
    #[error("{0}: {1}")]
    Other(String, String),
    /// The backend cannot be set up as configured.
    #[error("{0}")]
    Setup(String),
}

/// One invalidation sent.
#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    pub distribution: String,
    pub id: String,
    pub paths: Vec<String>,
    pub caller_reference: String,
    pub status: String,
}

#[async_trait]
pub trait Cdn: Send + Sync {
    /// The distribution id (for reports).
    fn name(&self) -> &str;
    /// The path prefix of the origin serving `bucket` (stripped from keys).
    async fn origin_path(&self, bucket: &str) -> Result<String, CdnError>;
    /// Create an invalidation (already-encoded paths); idempotent per
    /// caller reference.
    async fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<Invalidation, CdnError>;
    /// Poll until the invalidation completed; returns its final status.
    async fn wait(&self, id: &str, timeout: Duration) -> Result<String, CdnError>;
    /// The paths to send for `keys` (encoded, relative to `origin_path`);
    /// by default minimised into `dir/*` wildcards above `max_paths`.
    fn batch(&self, keys: &[String], origin_path: &str, max_paths: usize) -> Vec<String> {
        paths::batch(keys, origin_path, max_paths)
    }
    /// The host name viewers use (first alias, else the CDN's own name).
    async fn domain(&self) -> Result<Option<String>, CdnError> {
        Ok(None)
    }
}

/// The URL the published site is served at through the first CDN: its host
/// plus the part of the key prefix the origin path does not cover.
pub async fn site_url(opts: &CdnOptions, prefix: &str) -> Option<String> {
    let cdn = opts.cdns.first()?;
    let host = cdn.domain().await.ok()??;
    let origin = cdn.origin_path(&opts.bucket).await.unwrap_or_default();
    let p = prefix.trim_matches('/');
    let rest = p
        .strip_prefix(origin.trim_matches('/'))
        .unwrap_or(p)
        .trim_matches('/');
    Some(if rest.is_empty() {
        format!("https://{host}/")
    } else {
        format!("https://{host}/{rest}/")
    })
}

/// How to invalidate after a change.
#[derive(Clone)]
pub struct CdnOptions {
    pub cdns: Vec<Arc<dyn Cdn>>,
    /// The bucket the keys live in (to find the distribution's origin).
    pub bucket: String,
    pub max_paths: usize,
    /// `--wait`: poll until completed, up to this long.
    pub wait: Option<Duration>,
}

impl std::fmt::Debug for CdnOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdnOptions")
            .field(
                "cdns",
                &self
                    .cdns
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("max_paths", &self.max_paths)
            .field("wait", &self.wait)
            .finish()
    }
}

/// Invalidate `keys` (full keys of changed or deleted stable-name objects)
/// on every distribution. Failures are returned, never fatal: the release
/// is already live.
pub async fn invalidate_all(
    opts: &CdnOptions,
    keys: &[String],
    release: &str,
) -> (Vec<Invalidation>, Vec<String>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    if keys.is_empty() {
        return (done, failed);
    }
    for cdn in &opts.cdns {
        let r = async {
            let origin = cdn.origin_path(&opts.bucket).await?;
            let batch = cdn.batch(keys, &origin, opts.max_paths);
            if batch.is_empty() {
                return Ok(None);
            }
            let cr = paths::caller_reference(release, &batch);
            let mut inv = cdn.invalidate(&batch, &cr).await?;
            if let Some(t) = opts.wait {
                inv.status = cdn.wait(&inv.id, t).await?;
            }
            Ok::<_, CdnError>(Some(inv))
        }
        .await;
        match r {
            Ok(Some(i)) => done.push(i),
            Ok(None) => {}
            Err(e) => failed.push(e.to_string()),
        }
    }
    (done, failed)
}

/// Retry `f` while it reports [`CdnError::TooMany`], with exponential
/// backoff from `base`, at most `attempts` times.
pub async fn retry_too_many<T, F, Fut>(
    attempts: u32,
    base: Duration,
    mut f: F,
) -> Result<T, CdnError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CdnError>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match f().await {
            Err(CdnError::TooMany(d)) if n < attempts => {
                let delay = base * 2u32.pow(n - 1);
                tracing::warn!("{d}: too many invalidations in progress; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn too_many_in_progress_is_retried_then_given_up() {
        let n = AtomicU32::new(0);
        let r = retry_too_many(5, Duration::from_millis(1), || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(CdnError::TooMany("d".into()))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(n.load(Ordering::SeqCst), 3);
        let r: Result<(), _> = retry_too_many(3, Duration::from_millis(1), || async {
            Err(CdnError::TooMany("d".into()))
        })
        .await;
        assert_eq!(r, Err(CdnError::TooMany("d".into())));
        let m = AtomicU32::new(0);
        let r: Result<(), _> = retry_too_many(3, Duration::from_millis(1), || async {
            m.fetch_add(1, Ordering::SeqCst);
            Err(CdnError::Denied("d".into(), "x".into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(m.load(Ordering::SeqCst), 1, "other errors are not retried");
    }
}
