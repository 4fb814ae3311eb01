//! Time and randomness are injected so planning and release ids are
//! reproducible in tests.

use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
    /// 32 bits of randomness for release ids.
    fn random_u32(&self) -> u32;
}

/// The real clock: system time, randomness from the time, pid and a counter.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn random_u32(&self) -> u32 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = blake3::Hasher::new();
        h.update(
            &OffsetDateTime::now_utc()
                .unix_timestamp_nanos()
                .to_le_bytes(),
        );
        h.update(&std::process::id().to_le_bytes());
        h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let b = h.finalize();
        u32::from_le_bytes(b.as_bytes()[..4].try_into().unwrap())
    }
}

/// A fixed clock for tests.
pub struct FixedClock {
    pub now: OffsetDateTime,
    pub random: u32,
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.now
    }
    fn random_u32(&self) -> u32 {
        self.random
    }
}
