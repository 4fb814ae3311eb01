//! After a release goes live: drop what the CDNs cached under the stable
//! names that changed or went away — minimal, encoded, idempotent batches
//! per CDN, transient failures retried with the one policy. Failures are
//! reported, never fatal: the release is already live.

use crate::cdn::{CdnError, CdnOptions, EdgeRouting, Invalidation, RoutingApplied, paths};
use crate::retry::Retry;

/// Invalidate `keys` (full keys of changed or deleted stable-name objects)
/// on every CDN; returns what was sent and what failed. Once `stop` says
/// so (Ctrl-C), nothing is retried.
pub async fn all(
    opts: &CdnOptions,
    keys: &[String],
    release: &str,
    retry: &Retry,
    stop: &dyn Fn() -> bool,
) -> (Vec<Invalidation>, Vec<String>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    if keys.is_empty() {
        return (done, failed);
    }
    for cdn in &opts.cdns {
        let hint = cdn.retry_hint();
        // A backend's own schedule (CloudFront's "too many in progress"
        // clears over a minute): not capped at the store's 20 s.
        let retry = retry
            .with(hint.attempts, hint.base)
            .capped(std::time::Duration::from_secs(120));
        let r = async {
            let origin = cdn.origin_path(&opts.bucket).await?;
            let batch = cdn.batch(keys, &origin, opts.max_paths);
            if batch.is_empty() {
                return Ok(None);
            }
            let cr = paths::caller_reference(release, &batch);
            let mut inv = retry
                .run(cdn.name(), CdnError::is_transient, stop, || {
                    cdn.invalidate(&batch, &cr)
                })
                .await?;
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

/// Make every CDN run `edge` (CloudFront: its functions and error
/// responses), before invalidating. What each did, and what failed: a
/// failure leaves the previous routing live and is reported like a failed
/// invalidation.
pub async fn routing(
    opts: &CdnOptions,
    prefix: &str,
    edge: Option<&EdgeRouting>,
    retry: &Retry,
    stop: &dyn Fn() -> bool,
) -> (Vec<RoutingApplied>, Vec<String>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for cdn in &opts.cdns {
        let r = retry
            .run(cdn.name(), CdnError::is_transient, stop, || {
                cdn.apply_routing(&opts.bucket, prefix, edge)
            })
            .await;
        match r {
            Ok(Some(a)) => done.push(a),
            Ok(None) => {}
            Err(e) if edge.is_some() => failed.push(format!(
                "routing not updated (the previous routing stays live): {e}"
            )),
            Err(e) => failed.push(format!(
                "cdnsync's routing functions not removed (they stay live): {e}"
            )),
        }
    }
    (done, failed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::cdn::{Cdn, RetryHint};

    /// Answers "too many in progress" `busy` times, then accepts.
    struct Busy {
        busy: u32,
        calls: AtomicU32,
        error: CdnError,
    }

    #[async_trait]
    impl Cdn for Busy {
        fn name(&self) -> &str {
            "d"
        }
        async fn origin_path(&self, _: &str) -> Result<String, CdnError> {
            Ok(String::new())
        }
        async fn invalidate(&self, paths: &[String], cr: &str) -> Result<Invalidation, CdnError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.busy {
                return Err(self.error.clone());
            }
            Ok(Invalidation {
                distribution: "d".into(),
                id: "I1".into(),
                paths: paths.to_vec(),
                caller_reference: cr.into(),
                status: "InProgress".into(),
            })
        }
        async fn wait(&self, _: &str, _: Duration) -> Result<String, CdnError> {
            Ok("Completed".into())
        }
        fn retry_hint(&self) -> RetryHint {
            RetryHint {
                attempts: 3,
                base: Duration::from_millis(1),
            }
        }
    }

    async fn run(busy: u32, error: CdnError) -> (usize, usize, u32) {
        let cdn = Arc::new(Busy {
            busy,
            calls: AtomicU32::new(0),
            error,
        });
        let opts = CdnOptions {
            cdns: vec![cdn.clone()],
            bucket: "b".into(),
            max_paths: 15,
            wait: None,
        };
        let retry = Retry::new(1, Duration::ZERO, Arc::new(|| 0));
        let (done, failed) = all(&opts, &["index.html".into()], "r1", &retry, &|| false).await;
        (done.len(), failed.len(), cdn.calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn transient_failures_are_retried_as_the_backend_hints_then_given_up() {
        assert_eq!(run(2, CdnError::TooMany("d".into())).await, (1, 0, 3));
        assert_eq!(run(5, CdnError::TooMany("d".into())).await, (0, 1, 3));
        assert_eq!(
            run(1, CdnError::Transient("d".into(), "503".into())).await,
            (1, 0, 2)
        );
        // Other errors are not retried.
        assert_eq!(
            run(5, CdnError::Denied("d".into(), "x".into())).await,
            (0, 1, 1)
        );
    }
}
