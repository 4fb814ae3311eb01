//! The one retry policy: exponential backoff with jitter (randomness
//! injected), and a total attempt budget that counts the AWS SDK's own
//! attempts, so a failing request is tried a bounded number of times in all.

/// Attempts the AWS SDK makes per request before cdnsync sees an error.
pub const SDK_ATTEMPTS: u32 = 5;
