//! CDN cache invalidation after a release goes live: one narrow trait,
//! CloudFront as the backend, and the shared driver that turns changed keys
//! into minimal, encoded, idempotent invalidations.

#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

pub mod cloudfront;
pub mod http_purge;
pub mod paths;

/// Why an invalidation failed; the first field names the CDN.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CdnError {
    /// Credentials lack the permission.
    #[error("{0}: access denied: {1}")]
    Denied(String, String),
    /// No such distribution.
    #[error("distribution {0} not found")]
    NotFound(String),
    /// CloudFront's limit of invalidations in progress.
    #[error("{0}: too many invalidations in progress")]
    TooMany(String),
    /// `--wait` gave up: (CDN, timeout, invalidation id).
    #[error("{0}: timed out after {1:?} waiting for invalidation {2}")]
    Timeout(String, Duration, String),
    /// Anything else.
    #[error("{0}: {1}")]
    Other(String, String),
    /// A failure that may pass: the request may be sent again.
    #[error("{0}: {1}")]
    Transient(String, String),
    /// The backend cannot be set up as configured.
    #[error("{0}")]
    Setup(String),
}

/// One invalidation sent.
#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    /// The CDN (distribution id, cache URL).
    pub distribution: String,
    /// The invalidation's id.
    pub id: String,
    /// Paths sent (encoded).
    pub paths: Vec<String>,
    /// Makes a resend of the same batch idempotent.
    pub caller_reference: String,
    /// `InProgress`, `Completed`, `Purged`.
    pub status: String,
}

impl CdnError {
    /// Worth sending again (after a while).
    pub fn is_transient(&self) -> bool {
        matches!(self, CdnError::TooMany(_) | CdnError::Transient(..))
    }
}

/// How often a backend's invalidation may be tried, and how far apart
/// (the caller's retry policy does the waiting, with jitter).
#[derive(Debug, Clone, Copy)]
pub struct RetryHint {
    /// Calls in all.
    pub attempts: u32,
    /// Delay before the first retry.
    pub base: Duration,
}

/// A cache in front of the site whose entries can be dropped.
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
    /// Attempts and base delay for a transient failure of [`Cdn::invalidate`].
    fn retry_hint(&self) -> RetryHint {
        RetryHint {
            attempts: 1,
            base: Duration::ZERO,
        }
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
    /// Every CDN to notify.
    pub cdns: Vec<Arc<dyn Cdn>>,
    /// The bucket the keys live in (to find the distribution's origin).
    pub bucket: String,
    /// Above this many paths, batch into `dir/*` wildcards.
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
