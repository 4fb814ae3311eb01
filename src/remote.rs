//! Reads what is live: the current release manifest plus one paginated
//! listing, and HEAD requests only for listed objects the manifest cannot
//! vouch for (a bucket filled by another tool, or an interrupted run).

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::headers::{META_HASH, META_HEADERS};
use crate::release::{self, META_DIR, Release};
use crate::store::Store;

/// What cdnsync knows about one remote object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteObject {
    /// Stored size (after compression), from the listing.
    pub size: u64,
    /// `x-amz-meta-cdnsync-hash`, if the object carries it.
    pub hash: Option<String>,
    /// `x-amz-meta-cdnsync-headers`, if the object carries it.
    pub headers: Option<String>,
    /// `Content-Encoding`, where known.
    pub content_encoding: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteState {
    /// The live release, if cdnsync published here before.
    pub release: Option<Release>,
    /// Listed objects under the prefix (outside `.cdnsync/`), by path
    /// relative to the prefix.
    pub objects: BTreeMap<String, RemoteObject>,
    /// How many HEAD requests were needed.
    pub heads: usize,
    /// Names (`objects/<hash>[.gz]`) of the stored bodies under `.cdnsync/`.
    pub bodies: std::collections::HashSet<String>,
}

/// Where relative paths start under a prefix.
pub fn list_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    }
}

/// Every key under the prefix, relative to it.
pub async fn list_relative(
    store: &dyn Store,
    prefix: &str,
) -> Result<std::collections::HashSet<String>> {
    let lp = list_prefix(prefix);
    Ok(store
        .list(&lp)
        .await?
        .into_iter()
        .map(|e| e.key[lp.len()..].to_string())
        .collect())
}

/// Load the remote state. `local` is the set of relative paths about to be
/// published: only those can need a HEAD.
pub async fn load(
    store: &dyn Store,
    prefix: &str,
    local: &HashSet<&str>,
    concurrency: usize,
) -> Result<RemoteState> {
    let release = release::read_current(store, prefix).await?;
    let lp = list_prefix(prefix);
    let listed = store.list(&lp).await?;
    let meta_dir = format!("{META_DIR}/");

    let mut objects = BTreeMap::new();
    let mut bodies = std::collections::HashSet::new();
    let mut to_head = Vec::new();
    for e in listed {
        let rel = e.key[lp.len()..].to_string();
        if let Some(name) = rel.strip_prefix(&meta_dir) {
            if name.starts_with("objects/") {
                bodies.insert(name.to_string());
            }
            continue;
        }
        if rel.is_empty() {
            continue;
        }
        let from_manifest = release
            .as_ref()
            .and_then(|r| r.files.get(&rel))
            .filter(|f| f.stored_size == e.size);
        match from_manifest {
            Some(f) => {
                objects.insert(
                    rel,
                    RemoteObject {
                        size: e.size,
                        hash: Some(f.hash.clone()),
                        headers: Some(f.headers.clone()),
                        content_encoding: f.content_encoding.clone(),
                    },
                );
            }
            None => {
                if local.contains(rel.as_str()) {
                    to_head.push((rel, e.key));
                } else {
                    objects.insert(
                        rel,
                        RemoteObject {
                            size: e.size,
                            hash: None,
                            headers: None,
                            content_encoding: None,
                        },
                    );
                }
            }
        }
    }

    let heads = to_head.len();
    let mut results = futures::stream::iter(to_head.into_iter().map(|(rel, key)| async move {
        let m = store.head(&key).await;
        (rel, m)
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some((rel, m)) = results.next().await {
        // Listed then gone: treat as absent (it will be uploaded).
        if let Some(m) = m? {
            objects.insert(
                rel,
                RemoteObject {
                    size: m.size,
                    hash: m.metadata.get(META_HASH).cloned(),
                    headers: m.metadata.get(META_HEADERS).cloned(),
                    content_encoding: m.content_encoding,
                },
            );
        }
    }
    Ok(RemoteState {
        release,
        objects,
        heads,
        bodies,
    })
}
