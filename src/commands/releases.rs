//! `cdnsync releases --to TARGET`: the recorded releases, oldest first,
//! with the live one marked.

use futures::StreamExt;
use serde::Serialize;

use crate::commands::publish::open_store;
use crate::config::TargetConfig;
use crate::error::Result;
use crate::release;

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    pub id: String,
    pub created: String,
    pub files: usize,
    pub bytes: u64,
    pub commit: Option<String>,
    pub message: Option<String>,
    pub rollback_of: Option<String>,
    pub live: bool,
}

pub async fn run(cfg: &TargetConfig) -> Result<Vec<ReleaseSummary>> {
    let (store, prefix) = open_store(cfg).await?;
    let store = store.as_ref();
    store.check().await?;
    let ids = release::list_ids(store, &prefix).await?;
    let live = release::current_id(store, &prefix).await?;
    let mut out: Vec<ReleaseSummary> = futures::stream::iter(ids.iter().map(|id| {
        let prefix = prefix.clone();
        async move { release::read(store, &prefix, id).await }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?
    .into_iter()
    .map(|r| {
        let files = r.files.values().filter(|f| !f.stale);
        ReleaseSummary {
            live: live.as_deref() == Some(r.id.as_str()),
            files: files.clone().count(),
            bytes: files.map(|f| f.size).sum(),
            id: r.id,
            created: r.created,
            commit: r.commit,
            message: r.message,
            rollback_of: r.rollback_of,
        }
    })
    .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A table for humans.
pub fn human(list: &[ReleaseSummary]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if list.is_empty() {
        s.push_str("no releases recorded\n");
    }
    for r in list {
        let _ = writeln!(
            s,
            "{} {}  {}  {:>6} files  {:>10}  {}{}{}",
            if r.live { "*" } else { " " },
            r.id,
            r.created,
            r.files,
            crate::progress::human_bytes(r.bytes),
            r.commit
                .as_deref()
                .map(|c| &c[..c.len().min(12)])
                .unwrap_or("-"),
            r.message
                .as_deref()
                .map(|m| format!("  {m}"))
                .unwrap_or_default(),
            r.rollback_of
                .as_deref()
                .map(|o| format!("  (rollback to {o})"))
                .unwrap_or_default(),
        );
    }
    s
}
