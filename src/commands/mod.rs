//! One module per subcommand; each is a short script of pipeline stages.

use std::sync::Arc;

use crate::clock::Clock;
use crate::execute::Cancel;
use crate::progress::ProgressMode;

pub mod publish;
pub mod serve;

/// What every command gets from `main`: injected clock, progress style and
/// the Ctrl-C flag.
#[derive(Clone)]
pub struct Context {
    pub clock: Arc<dyn Clock>,
    pub progress: ProgressMode,
    pub cancel: Cancel,
}
