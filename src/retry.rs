//! The one retry policy: exponential backoff with jitter (randomness
//! injected), and a total attempt budget that counts the AWS SDK's own
//! attempts, so a failing request is tried a bounded number of times in all.
//! Every retry in cdnsync goes through [`Retry::run`]: the store decorator
//! (`transfer::RetryingStore`) and the CDN driver (`invalidate`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Attempts the AWS SDK makes per request before cdnsync sees an error.
pub const SDK_ATTEMPTS: u32 = 3;

/// Tries of one store operation in all, the SDK's included: cdnsync retries
/// a failed call `STORE_BUDGET / SDK_ATTEMPTS - 1` times.
pub const STORE_BUDGET: u32 = 9;

/// A source of uniformly distributed `u32`s (the clock's, in production;
/// fixed in tests).
pub type Random = Arc<dyn Fn() -> u32 + Send + Sync>;

/// How often, and how far apart, an operation is tried.
#[derive(Clone)]
pub struct Retry {
    /// Calls in all (1: no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub base: Duration,
    /// Longest delay between two calls.
    pub cap: Duration,
    random: Random,
}

impl std::fmt::Debug for Retry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retry")
            .field("attempts", &self.attempts)
            .field("base", &self.base)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Retry {
    pub fn new(attempts: u32, base: Duration, random: Random) -> Retry {
        Retry {
            attempts: attempts.max(1),
            base,
            cap: Duration::from_secs(20),
            random,
        }
    }

    /// Store operations: the budget less what the SDK spends per call.
    pub fn store(random: Random) -> Retry {
        Retry::new(
            (STORE_BUDGET / SDK_ATTEMPTS).max(1),
            Duration::from_millis(500),
            random,
        )
    }

    /// Longest delay between two calls set to `cap`.
    pub fn capped(mut self, cap: Duration) -> Retry {
        self.cap = cap;
        self
    }

    /// The same randomness with other attempts and base delay.
    pub fn with(&self, attempts: u32, base: Duration) -> Retry {
        Retry {
            attempts: attempts.max(1),
            base,
            cap: self.cap,
            random: self.random.clone(),
        }
    }

    /// The delay before retry `n` (1 for the first): "equal jitter" — half
    /// of the exponential delay fixed, half random — so retries of many
    /// failed requests spread out and never hammer the server in step.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.cap);
        let half = exp / 2;
        half + half.mul_f64(f64::from((self.random)()) / f64::from(u32::MAX))
    }

    /// Call `op` until it succeeds, fails with an error `retryable` rejects,
    /// `stop` says so, or the attempts are spent; returns the last result.
    pub async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        retryable: impl Fn(&E) -> bool,
        stop: impl Fn() -> bool,
        mut op: F,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut n = 1;
        loop {
            match op().await {
                Err(e) if n < self.attempts && retryable(&e) && !stop() => {
                    let d = self.delay(n);
                    tracing::warn!("{what}: {e}; retrying in {d:?}");
                    tokio::time::sleep(d).await;
                    n += 1;
                }
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fixed(v: u32) -> Random {
        Arc::new(move || v)
    }

    #[test]
    fn delays_grow_exponentially_with_half_of_each_random_and_a_cap() {
        let low = Retry::new(5, Duration::from_millis(100), fixed(0));
        let high = Retry::new(5, Duration::from_millis(100), fixed(u32::MAX));
        for (n, exp) in [(1, 100), (2, 200), (3, 400), (4, 800)] {
            assert_eq!(low.delay(n), Duration::from_millis(exp / 2), "{n}");
            assert_eq!(high.delay(n), Duration::from_millis(exp), "{n}");
        }
        assert_eq!(high.delay(30), Duration::from_secs(20));
        assert_eq!(low.delay(30), Duration::from_secs(10));
    }

    #[test]
    fn the_budget_counts_the_sdk_attempts() {
        let r = Retry::store(fixed(0));
        assert_eq!(r.attempts * SDK_ATTEMPTS, STORE_BUDGET);
        assert!(r.attempts >= 2, "at least one retry of a failed call");
    }

    #[tokio::test]
    async fn retries_what_is_retryable_until_the_attempts_are_spent() {
        let r = Retry::new(3, Duration::from_millis(2), fixed(0));
        let calls = AtomicU32::new(0);
        let out: Result<(), String> = r
            .run(
                "op",
                |_| true,
                || false,
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err("busy".to_string())
                },
            )
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let out = r
            .run(
                "op",
                |_: &String| true,
                || false,
                || async {
                    match calls.fetch_add(1, Ordering::SeqCst) {
                        0 => Err("busy".to_string()),
                        _ => Ok(7),
                    }
                },
            )
            .await;
        assert_eq!(out, Ok(7));

        // Not retryable, or stopped: one call.
        for (retryable, stop) in [(false, false), (true, true)] {
            let calls = AtomicU32::new(0);
            let _: Result<(), String> = r
                .run(
                    "op",
                    |_| retryable,
                    || stop,
                    || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Err("denied".to_string())
                    },
                )
                .await;
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
    }
}
