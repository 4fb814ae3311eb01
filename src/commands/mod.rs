//! One module per subcommand; each is a short script of pipeline stages.

use std::sync::Arc;

use crate::clock::Clock;
use crate::execute::Cancel;
use crate::progress::ProgressMode;

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
