//! The publish lock: `<prefix>/.cdnsync/lock`, created with
//! `If-None-Match: *` so exactly one publish, rollback or gc runs against a
//! target at a time. A lock past its TTL can be taken over (by overwriting
//! exactly the expired version, `If-Match`); a running holder refreshes it;
//! `cdnsync unlock --force` removes it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::release::meta_prefix;
use crate::store::{PutOptions, Sse, Store, StoreError};

pub fn lock_key(prefix: &str) -> String {
    format!("{}/lock", meta_prefix(prefix))
}

/// What the lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Unique per run.
    pub id: String,
    /// `user@host pid N`.
    pub holder: String,
    pub command: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339: refreshed while the holder runs.
    pub refreshed: String,
    pub ttl_secs: u64,
}

impl LockInfo {
    fn expires(&self) -> Option<OffsetDateTime> {
        let t = OffsetDateTime::parse(&self.refreshed, &Rfc3339).ok()?;
        // A forged TTL must not overflow the date: one past the year 9999
        // counts as unreadable, like a garbled time (taken over).
        t.checked_add(time::Duration::seconds(
            i64::try_from(self.ttl_secs).unwrap_or(i64::MAX),
        ))
    }

    pub fn describe(&self) -> String {
        use crate::redact::printable;
        let short = |s: &str| printable(&s.chars().take(200).collect::<String>());
        format!(
            "{} ({}, started {})",
            short(&self.holder),
            short(&self.command),
            short(&self.started)
        )
    }
}

#[derive(Debug, Clone)]
pub struct LockOptions {
    pub ttl: Duration,
    /// Wait up to this long for a held lock instead of failing at once.
    pub wait: Option<Duration>,
    /// Who we are (`user@host pid N`), read at start-up.
    pub holder: String,
    pub command: String,
    pub poll: Duration,
}

/// A held lock. Call [`Lock::release`] when done; a background task keeps
/// it fresh until then.
pub struct Lock {
    store: Arc<dyn Store>,
    key: String,
    id: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

fn now_str(clock: &dyn Clock) -> String {
    clock.now().format(&Rfc3339).expect("format time")
}

/// The most a lock can hold.
const LOCK_MAX: u64 = 64 * 1024;

async fn read(store: &dyn Store, key: &str) -> Result<Option<LockInfo>> {
    Ok(read_tagged(store, key).await?.map(|(l, _)| l))
}

/// The lock and the tag of the version read, for a conditional overwrite.
async fn read_tagged(store: &dyn Store, key: &str) -> Result<Option<(LockInfo, Option<String>)>> {
    match store.get_tagged(key, LOCK_MAX).await? {
        None => Ok(None),
        Some((b, tag)) => Ok(Some((
            serde_json::from_slice(&b).map_err(|e| Error::Manifest {
                key: key.to_string(),
                reason: format!(
                    "lock is not valid JSON ({e}); remove it with `cdnsync unlock --force`"
                ),
            })?,
            tag,
        ))),
    }
}

/// Take the lock of `prefix`, waiting or taking over an expired one.
pub async fn acquire(
    store: Arc<dyn Store>,
    prefix: &str,
    sse: &Sse,
    clock: Arc<dyn Clock>,
    opts: &LockOptions,
) -> Result<Lock> {
    let key = lock_key(prefix);
    let id = format!("{:08x}{:08x}", clock.random_u32(), clock.random_u32());
    let start = tokio::time::Instant::now();
    let info = || LockInfo {
        id: id.clone(),
        holder: opts.holder.clone(),
        command: opts.command.clone(),
        started: now_str(clock.as_ref()),
        refreshed: now_str(clock.as_ref()),
        ttl_secs: opts.ttl.as_secs(),
    };
    let body =
        |info: &LockInfo| Bytes::from(serde_json::to_vec_pretty(info).expect("serialize lock"));
    // Either a create (`If-None-Match: *`) or the overwrite of one expired
    // version (`If-Match: <its tag>`): a precondition failure means another
    // run got there first.
    let mut attempt = PutOptions {
        if_none_match: true,
        ..PutOptions::internal("application/json", sse)
    };
    loop {
        let mine = info();
        let mut ours = match store.put(&key, body(&mine), &attempt).await {
            Ok(()) => true,
            Err(StoreError::Precondition { .. }) => false,
            // The version to overwrite was removed meanwhile (S3 answers an
            // If-Match on a missing key with 404): start again.
            Err(StoreError::NotFound { .. }) if attempt.if_match.is_some() => false,
            Err(e) => return Err(e.into()),
        };
        attempt.if_none_match = true;
        attempt.if_match = None;
        let held = if ours {
            None
        } else {
            read_tagged(store.as_ref(), &key).await?
        };
        // A PUT whose answer was lost is retried by the SDK and then fails
        // its precondition against our own lock: that lock is ours.
        if held.as_ref().is_some_and(|(h, _)| h.id == id) {
            ours = true;
        }
        if ours {
            let heartbeat = tokio::spawn(heartbeat(
                store.clone(),
                key.clone(),
                mine,
                sse.clone(),
                clock.clone(),
                opts.ttl,
            ));
            return Ok(Lock {
                store,
                key,
                id,
                heartbeat,
            });
        }
        match held {
            // Released between our attempt and the read: try again.
            None => continue,
            Some((h, tag)) if h.expires().is_none_or(|t| t <= clock.now()) => {
                tracing::warn!("taking over an expired lock held by {}", h.describe());
                match tag {
                    // Overwrite exactly the expired version: of two runs
                    // taking it over at once, one wins.
                    Some(tag) => {
                        attempt.if_none_match = false;
                        attempt.if_match = Some(tag);
                    }
                    // A store without conditional overwrites.
                    None => {
                        store.delete_many(std::slice::from_ref(&key)).await?;
                    }
                }
                continue;
            }
            Some((h, _)) => {
                let waited = start.elapsed();
                match opts.wait {
                    Some(w) if waited < w => {
                        tracing::info!("waiting for the lock held by {}", h.describe());
                        tokio::time::sleep(opts.poll.min(w - waited)).await;
                    }
                    _ => {
                        return Err(Error::Locked {
                            key: key.clone(),
                            holder: h.describe(),
                        });
                    }
                }
            }
        }
    }
}

/// Refresh `refreshed` every third of the TTL, as long as the lock is ours
/// (the refresh overwrites only the version it read).
async fn heartbeat(
    store: Arc<dyn Store>,
    key: String,
    mut info: LockInfo,
    sse: Sse,
    clock: Arc<dyn Clock>,
    ttl: Duration,
) {
    let every = (ttl / 3).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let tag = match read_tagged(store.as_ref(), &key).await {
            Ok(Some((h, tag))) if h.id == info.id => tag,
            _ => return,
        };
        info.refreshed = now_str(clock.as_ref());
        let body = Bytes::from(serde_json::to_vec_pretty(&info).expect("serialize lock"));
        let popts = PutOptions {
            if_match: tag,
            ..PutOptions::internal("application/json", &sse)
        };
        let _ = store.put(&key, body, &popts).await;
    }
}

impl Lock {
    /// Remove the lock if it is still ours.
    pub async fn release(self) {
        self.heartbeat.abort();
        match read(self.store.as_ref(), &self.key).await {
            Ok(Some(h)) if h.id == self.id => {
                if let Err(e) = self
                    .store
                    .delete_many(std::slice::from_ref(&self.key))
                    .await
                {
                    tracing::warn!("could not release the lock {}: {e}", self.key);
                }
            }
            _ => tracing::warn!("the lock {} was taken over before we released it", self.key),
        }
    }
}

/// `cdnsync unlock`: show the lock; with `force`, remove it.
pub async fn unlock(store: &dyn Store, prefix: &str, force: bool) -> Result<Option<LockInfo>> {
    let key = lock_key(prefix);
    let held = read(store, &key)
        .await
        .or_else(|e| if force { Ok(None) } else { Err(e) })?;
    if force {
        store.delete_many(std::slice::from_ref(&key)).await?;
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::memory::MemoryStore;
    use time::macros::datetime;

    fn opts(wait: Option<Duration>) -> LockOptions {
        LockOptions {
            ttl: Duration::from_secs(600),
            wait,
            holder: "ci@runner pid 1".into(),
            command: "publish".into(),
            poll: Duration::from_millis(10),
        }
    }

    fn clock(min: u8) -> Arc<dyn Clock> {
        Arc::new(FixedClock {
            now: datetime!(2026-11-26 10:00:00 UTC) + Duration::from_secs(min as u64 * 60),
            random: min as u32,
        })
    }

    #[tokio::test]
    async fn a_lost_answer_to_our_own_lock_put_still_gives_us_the_lock() {
        let s: Arc<dyn Store> = Arc::new(MemoryStore::new());
        // As if our first PUT was applied but its answer lost: the retried
        // PUT fails its precondition against a lock that carries our id.
        let id = format!("{:08x}{:08x}", 3u32, 3u32);
        let body = format!(
            r#"{{"id":"{id}","holder":"me","command":"publish","started":"2026-11-26T10:03:00Z","refreshed":"2026-11-26T10:03:00Z","ttl_secs":600}}"#
        );
        s.put(
            &lock_key("p"),
            Bytes::from(body),
            &PutOptions::internal("application/json", &Sse::Aes256),
        )
        .await
        .unwrap();
        let l = acquire(s.clone(), "p", &Sse::Aes256, clock(3), &opts(None))
            .await
            .expect("our own lock");
        l.release().await;
        assert!(s.get(&lock_key("p"), u64::MAX).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn one_holder_at_a_time_then_release() {
        let s: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = acquire(s.clone(), "p", &Sse::Aes256, clock(0), &opts(None))
            .await
            .unwrap();
        let e = acquire(s.clone(), "p", &Sse::Aes256, clock(1), &opts(None))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, Error::Locked { .. }));
        assert!(e.to_string().contains("ci@runner pid 1 (publish"), "{e}");
        // Waiting gives up after the wait too.
        let e = acquire(
            s.clone(),
            "p",
            &Sse::Aes256,
            clock(1),
            &opts(Some(Duration::from_millis(50))),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(e, Error::Locked { .. }));
        a.release().await;
        let b = acquire(s.clone(), "p", &Sse::Aes256, clock(2), &opts(None))
            .await
            .unwrap();
        b.release().await;
        assert!(s.get("p/.cdnsync/lock", u64::MAX).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn expired_locks_are_taken_over_and_force_unlock() {
        let s: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = acquire(s.clone(), "", &Sse::Aes256, clock(0), &opts(None))
            .await
            .unwrap();
        a.heartbeat.abort(); // the holder died
        // 11 minutes later the 10-minute TTL has passed.
        let b = acquire(s.clone(), "", &Sse::Aes256, clock(11), &opts(None))
            .await
            .unwrap();
        let held = unlock(s.as_ref(), "", false).await.unwrap().unwrap();
        assert_eq!(held.id, b.id);
        unlock(s.as_ref(), "", true).await.unwrap();
        assert!(s.get(".cdnsync/lock", u64::MAX).await.unwrap().is_none());
        b.release().await; // already gone: only a warning
    }
}
