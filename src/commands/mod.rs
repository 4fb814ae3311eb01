//! One module per subcommand; each is a short script of pipeline stages.

use std::sync::Arc;

use crate::clock::Clock;
use crate::execute::Cancel;
use crate::progress::ProgressMode;

pub mod doctor;
pub mod gc;
pub mod publish;
pub mod releases;
pub mod rollback;
pub mod serve;

/// What every command gets from `main`: injected clock, progress style and
/// the Ctrl-C flag.
#[derive(Clone)]
pub struct Context {
    pub clock: Arc<dyn Clock>,
    pub progress: ProgressMode,
    pub cancel: Cancel,
    /// Who holds locks taken by this run: `user@host pid N`.
    pub holder: String,
}

impl Context {
    /// Run `f` holding the target's lock (no lock for dry runs); the lock is
    /// released afterwards, on success and on handled errors alike.
    pub async fn locked<T>(
        &self,
        store: &Arc<dyn crate::store::Store>,
        prefix: &str,
        cfg: &crate::config::TargetConfig,
        command: &str,
        dry_run: bool,
        f: impl AsyncFnOnce() -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let held = if dry_run {
            None
        } else {
            let opts = self.lock_options(cfg.wait_lock, cfg.lock_ttl, command);
            Some(
                crate::lock::acquire(store.clone(), prefix, &cfg.sse, self.clock.clone(), &opts)
                    .await?,
            )
        };
        let r = f().await;
        if let Some(l) = held {
            l.release().await;
        }
        r
    }

    pub fn lock_options(
        &self,
        wait: Option<std::time::Duration>,
        ttl: std::time::Duration,
        command: &str,
    ) -> crate::lock::LockOptions {
        crate::lock::LockOptions {
            ttl,
            wait,
            holder: self.holder.clone(),
            command: command.to_string(),
            poll: std::time::Duration::from_secs(2),
        }
    }
}
