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

/// What one pass over the remote reads: the live release record and one
/// paginated listing of the prefix. Needs no local input, so it runs while
/// the build directory is scanned.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub release: Option<Release>,
    pub listed: Vec<crate::store::ListEntry>,
    /// The listing covered the whole prefix, stored bodies included.
    pub whole_prefix: bool,
}

impl Fetched {
    /// Every listed key, relative to the prefix (what garbage collection
    /// needs, without listing again).
    pub fn relative_keys(&self, prefix: &str) -> HashSet<String> {
        let lp = list_prefix(prefix);
        self.listed
            .iter()
            .map(|e| e.key[lp.len()..].to_string())
            .collect()
    }
}

/// Keys per listing page (the S3 maximum).
const PAGE: usize = 1000;
/// Listing ranges read at once.
const LIST_PARALLELISM: usize = 8;

/// Read the live release record, then list the prefix: for a big site in
/// parallel ranges split at every 1,000th key the record names (one page
/// each when the bucket holds what the record says), else page by page.
pub async fn fetch(store: &dyn Store, prefix: &str) -> Result<Fetched> {
    let lp = list_prefix(prefix);
    let release = release::read_current(store, prefix).await?;
    // Without a release record (a first or interrupted-first publish) the
    // whole prefix is listed: bodies stored by an interrupted run count.
    let ranged = store.pages_natively() && release.is_some();
    let listed = if ranged {
        // The site's keys only: cdnsync's own subtree (stored bodies,
        // release records) is skipped; which bodies exist comes from the
        // release record, and a body is HEADed before it is copied live.
        let splits: Vec<String> = match &release {
            Some(r) if r.files.len() >= 2 * PAGE => {
                let mut keys: Vec<String> = r.files.keys().map(|k| format!("{lp}{k}")).collect();
                keys.sort();
                keys.into_iter().skip(PAGE - 1).step_by(PAGE).collect()
            }
            _ => Vec::new(),
        };
        // Stored bodies are not listed: the record names those of the live
        // release, and the few others a publish wants are asked for by
        // name ([`resolve`]).
        list_ranges(store, &lp, None, &splits, true).await?
    } else {
        store.list(&lp).await?
    };
    Ok(Fetched {
        release,
        listed,
        whole_prefix: !ranged,
    })
}

/// List `(None, s0], (s0, s1], …, (sk, end)` concurrently and concatenate
/// (the ranges are disjoint and in order, so the result is sorted).
async fn list_ranges(
    store: &dyn Store,
    lp: &str,
    start: Option<String>,
    splits: &[String],
    skip_meta: bool,
) -> Result<Vec<crate::store::ListEntry>> {
    use futures::TryStreamExt;
    let futs = (0..=splits.len()).map(|i| {
        let after = match i.checked_sub(1) {
            Some(j) => Some(splits[j].clone()),
            None => start.clone(),
        };
        list_range(store, lp, after, splits.get(i).cloned(), skip_meta)
    });
    let parts: Vec<Vec<crate::store::ListEntry>> = futures::stream::iter(futs)
        .buffered(LIST_PARALLELISM)
        .try_collect()
        .await?;
    Ok(parts.into_iter().flatten().collect())
}

/// The keys in `(after, end]` (`end` `None`: to the end of the prefix),
/// jumping over cdnsync's own subtree `<prefix>/.cdnsync/…` if `skip_meta`.
async fn list_range(
    store: &dyn Store,
    lp: &str,
    after: Option<String>,
    end: Option<String>,
    skip_meta: bool,
) -> Result<Vec<crate::store::ListEntry>> {
    let skip = skip_meta.then(|| format!("{lp}{META_DIR}/"));
    let skip_after = skip.as_ref().map(|s| format!("{s}\u{10FFFF}"));
    let mut out = Vec::new();
    let mut start = after;
    'pages: loop {
        let page = store.list_page(lp, start.as_deref(), PAGE).await?;
        let full = page.len() == PAGE;
        let last = page.last().map(|e| e.key.clone());
        for e in page {
            if end.as_ref().is_some_and(|end| e.key > *end) {
                return Ok(out);
            }
            if let (Some(skip), Some(skip_after)) = (&skip, &skip_after)
                && e.key.starts_with(skip)
            {
                if end.as_ref().is_some_and(|end| end < skip_after) {
                    return Ok(out);
                }
                start = Some(skip_after.clone());
                continue 'pages;
            }
            out.push(e);
        }
        match last {
            Some(l) if full && end.as_ref().is_none_or(|end| l < *end) => start = Some(l),
            _ => return Ok(out),
        }
    }
}

/// Load the remote state. `local` is the set of relative paths about to be
/// published: only those can need a HEAD.
pub async fn load(
    store: &dyn Store,
    prefix: &str,
    local: &HashSet<&str>,
    concurrency: usize,
) -> Result<RemoteState> {
    let f = fetch(store, prefix).await?;
    resolve(store, prefix, f, local, &HashSet::new(), concurrency).await
}

/// Turn a fetch into the remote state: objects the release record vouches
/// for (same stored size) take its hash and headers; listed objects it
/// does not know and that are about to be published are HEADed; of the
/// stored bodies the publish wants (`bodies_wanted`, names
/// `objects/<hash>[.gz]`), those the record does not name are looked up (a
/// body stored by an older release, before a rollback, is never sent
/// again). A no-op asks nothing beyond the fetch.
pub async fn resolve(
    store: &dyn Store,
    prefix: &str,
    fetched: Fetched,
    local: &HashSet<&str>,
    bodies_wanted: &HashSet<String>,
    concurrency: usize,
) -> Result<RemoteState> {
    let Fetched {
        release,
        listed,
        whole_prefix,
    } = fetched;
    let lp = list_prefix(prefix);
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
    // Bodies the live release names exist (stored before it went live; gc
    // keeps them while the release is kept). The listing may not cover
    // `.cdnsync/`.
    if let Some(r) = &release {
        bodies.extend(r.files.values().filter_map(|f| f.body.clone()));
    }
    // A listing of the whole prefix saw every stored body already.
    if !whole_prefix {
        let unknown: Vec<&String> = bodies_wanted
            .iter()
            .filter(|b| !bodies.contains(*b))
            .collect();
        bodies.extend(stored_bodies(store, prefix, &unknown, concurrency).await?);
    }
    Ok(RemoteState {
        release,
        objects,
        heads,
        bodies,
    })
}

/// Every stored body under `.cdnsync/objects/`, as keys relative to the
/// prefix (`.cdnsync/objects/<hash>[.gz]`): one request for up to 1,000,
/// else the rest in parallel ranges (body names are hex hashes: 16 evenly
/// filled ranges).
pub async fn list_bodies(store: &dyn Store, prefix: &str) -> Result<HashSet<String>> {
    let lp = list_prefix(prefix);
    let dir = format!("{lp}{META_DIR}/objects/");
    let first = store.list_page(&dir, None, PAGE).await?;
    let mut listed = first;
    if listed.len() == PAGE && store.pages_natively() {
        let after = listed.last().map(|e| e.key.clone()).unwrap_or_default();
        let splits: Vec<String> = "0123456789abcde"
            .chars()
            .map(|c| format!("{dir}{c}\u{10FFFF}"))
            .filter(|s| *s > after)
            .collect();
        listed.extend(list_ranges(store, &dir, Some(after), &splits, false).await?);
    } else if listed.len() == PAGE {
        listed = store.list(&dir).await?;
    }
    Ok(listed
        .into_iter()
        .map(|e| e.key[lp.len()..].to_string())
        .collect())
}

/// Which of the stored bodies `names` exist: HEAD each, or, for many, one
/// listing of the bodies' folder.
async fn stored_bodies(
    store: &dyn Store,
    prefix: &str,
    names: &[&String],
    concurrency: usize,
) -> Result<Vec<String>> {
    // Body names are relative to `.cdnsync/`, listed keys to the prefix.
    let meta = format!("{META_DIR}/");
    if names.len() > PAGE {
        let listed = list_bodies(store, prefix).await?;
        return Ok(names
            .iter()
            .filter(|n| listed.contains(&format!("{meta}{n}")))
            .map(|n| (*n).clone())
            .collect());
    }
    let dir = format!("{}{meta}", list_prefix(prefix));
    let dir = &dir;
    let mut found = Vec::new();
    let mut heads = futures::stream::iter(
        names
            .iter()
            .map(|n| async move { (n, store.head(&format!("{dir}{n}")).await) }),
    )
    .buffer_unordered(concurrency.max(1));
    while let Some((n, m)) = heads.next().await {
        if m?.is_some() {
            found.push((*n).clone());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PutOptions;
    use crate::store::memory::MemoryStore;

    /// Ranged listing returns exactly the plain listing, whatever the split
    /// points (present, absent, crowded ranges over a page).
    #[tokio::test]
    async fn ranged_listing_equals_the_plain_listing() {
        let s = MemoryStore::new();
        let mut keys: Vec<String> = (0..2600)
            .map(|i| format!("p/k{:05}", i * 7 % 2600))
            .collect();
        keys.extend((0..30).map(|i| format!("p/.cdnsync/objects/{i:03}")));
        keys.push("other/x".into());
        for k in &keys {
            s.put(
                k,
                bytes::Bytes::from_static(b"x"),
                &PutOptions::internal("text/plain", &crate::store::Sse::None),
            )
            .await
            .unwrap();
        }
        let plain: Vec<_> = s
            .list("p/")
            .await
            .unwrap()
            .into_iter()
            .filter(|e| !e.key.starts_with("p/.cdnsync/"))
            .collect();
        for splits in [
            vec![],
            vec!["p/k00999".to_string(), "p/k01999".to_string()],
            vec![
                "p/a".to_string(),
                "p/k00500x".to_string(),
                "p/zzz".to_string(),
            ],
            vec!["p/k02599".to_string()],
        ] {
            let r = list_ranges(&s, "p/", None, &splits, true).await.unwrap();
            assert_eq!(
                r.iter().map(|e| &e.key).collect::<Vec<_>>(),
                plain.iter().map(|e| &e.key).collect::<Vec<_>>(),
                "splits {splits:?}"
            );
        }
    }
}
