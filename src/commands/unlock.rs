//! `cdnsync unlock --to TARGET [--force]`: show who holds the target's lock,
//! or remove a stale one.

use serde::Serialize;

use crate::commands::Context;
use crate::config::UnlockConfig;
use crate::error::Result;
use crate::output::{Render, View};

/// The lock's state, and whether it was removed.
#[derive(Debug, Clone, Serialize)]
pub struct UnlockReport {
    pub target: String,
    /// Who held the lock (`None`: not locked, or unreadable and removed).
    pub holder: Option<String>,
    /// When the holder last refreshed it.
    pub refreshed: Option<String>,
    pub removed: bool,
}

pub async fn run(cfg: &UnlockConfig, ctx: &Context) -> Result<UnlockReport> {
    let (store, prefix) = ctx.open_checked(&cfg.remote).await?;
    let held = crate::lock::unlock(store.as_ref(), &prefix, cfg.force).await?;
    Ok(UnlockReport {
        target: cfg.remote.target.display(),
        holder: held.as_ref().map(super::super::lock::LockInfo::describe),
        refreshed: held.map(|h| crate::redact::printable(&h.refreshed)),
        removed: cfg.force,
    })
}

impl Render for UnlockReport {
    fn human(&self, _: &View) -> String {
        match (&self.holder, self.removed) {
            (Some(h), true) => format!("removed the lock held by {h}\n"),
            (Some(h), false) => format!(
                "locked by {h} (refreshed {}); pass --force to remove it\n",
                self.refreshed.as_deref().unwrap_or("-")
            ),
            (None, true) => "removed the lock\n".into(),
            (None, false) => "not locked\n".into(),
        }
    }

    fn essential(&self) -> bool {
        true
    }
}
