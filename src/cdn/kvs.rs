//! The CloudFront KeyValueStore holding the exact redirects a function
//! cannot: one store per distribution (`cdnsync-<id>`), created once, and
//! filled before the function that reads it is published. Keys carry the
//! version of the function reading them, so the live function's keys stay
//! until the next publish and a failed update leaves the old routing whole.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudfrontkeyvaluestore::types::{DeleteKeyRequestListItem, PutKeyRequestListItem};

use super::cloudfront::CloudFront;
use super::{CdnError, KvsEntries};

/// Most keys one UpdateKeys call may put and delete.
const BATCH: usize = 50;

/// How long a new store may take to become ready.
const READY_WAIT: Duration = Duration::from_secs(120);

/// The version a key belongs to (the part before its first `/`).
fn version_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(v, _)| v)
}

/// The version the live request function reads (its `V=` constant), if it
/// reads a store.
pub fn version_in(code: &str) -> Option<String> {
    let at = code.find("V=\"")? + 3;
    let end = code[at..].find('"')?;
    let v = &code[at..at + end];
    v.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| v.to_string())
}

/// The key listing the versions written, oldest first.
pub const VERSIONS_KEY: &str = "cdnsync-versions";

/// Versions a store keeps: the new one, the live one and the one before
/// it, so an edge still running an older function (a function takes
/// minutes to reach every edge) keeps finding its keys. Each version may
/// use a third of the store.
pub const VERSIONS_KEPT: usize = 3;

/// The versions a store says were written (its own record, read back:
/// anything malformed counts as none).
fn versions_written(have: &BTreeMap<String, String>) -> Vec<String> {
    let Some(raw) = have.get(VERSIONS_KEY) else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_str::<Vec<String>>(raw) else {
        return Vec::new();
    };
    let valid =
        |v: &String| (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit());
    if list.len() > 16 || !list.iter().all(valid) {
        return Vec::new();
    }
    list
}

/// What must change in a store holding `have` to hold `want`, keeping the
/// `live` function's version and the newest others up to
/// [`VERSIONS_KEPT`]: (puts, deletes), the version record put last.
pub fn diff(
    have: &BTreeMap<String, String>,
    want: &KvsEntries,
    live: Option<&str>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut order = versions_written(have);
    if let Some(l) = live
        && !order.iter().any(|v| v == l)
    {
        order.push(l.to_string());
    }
    order.retain(|v| *v != want.version);
    order.push(want.version.clone());
    let newest: Vec<&String> = order.iter().rev().take(VERSIONS_KEPT).collect();
    let keep = |v: &str| newest.iter().any(|n| n.as_str() == v) || Some(v) == live;
    let order: Vec<String> = order.iter().filter(|v| keep(v)).cloned().collect();
    let deletes = have
        .keys()
        .filter(|k| k.as_str() != VERSIONS_KEY && !keep(version_of(k)))
        .cloned()
        .collect();
    let mut puts: Vec<(String, String)> = want
        .entries
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let record = serde_json::to_string(&order).expect("strings serialize");
    if have.get(VERSIONS_KEY) != Some(&record) {
        puts.push((VERSIONS_KEY.to_string(), record));
    }
    (puts, deletes)
}

impl CloudFront {
    fn kvs_name(&self) -> String {
        format!("cdnsync-{}", self.id())
    }

    /// The ARN of cdnsync's store for this distribution, created (and
    /// waited for) when missing.
    pub(super) async fn ensure_kvs(&self) -> Result<String, CdnError> {
        let name = self.kvs_name();
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            let found = match self
                .client()
                .describe_key_value_store()
                .name(&name)
                .send()
                .await
            {
                Ok(o) => o.key_value_store,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(aws_sdk_cloudfront::operation::describe_key_value_store::DescribeKeyValueStoreError::is_entity_not_found) =>
                {
                    None
                }
                Err(e) => return Err(self.err(e)),
            };
            let store = match found {
                Some(s) => s,
                None => self
                    .client()
                    .create_key_value_store()
                    .name(&name)
                    .comment(format!(
                        "cdnsync: redirects of distribution {} too many for its function",
                        self.id()
                    ))
                    .send()
                    .await
                    .map_err(|e| self.err(e))?
                    .key_value_store
                    .ok_or_else(|| CdnError::Other(self.id().into(), "no store created".into()))?,
            };
            if store.status.as_deref().is_none_or(|s| s == "READY") {
                return Ok(store.arn);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CdnError::Transient(
                    self.id().into(),
                    format!("key value store {name} is still {:?}", store.status),
                ));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Make the store hold `want` (and the versions kept, `keep` the live
    /// function's); whether anything changed.
    pub(super) async fn sync_kvs(
        &self,
        arn: &str,
        want: &KvsEntries,
        keep: Option<&str>,
    ) -> Result<bool, CdnError> {
        let kvs = self.kvs_client();
        let mut etag = kvs
            .describe_key_value_store()
            .kvs_arn(arn)
            .send()
            .await
            .map_err(|e| self.err(e))?
            .e_tag;
        let mut have = BTreeMap::new();
        let mut token = None;
        loop {
            let page = kvs
                .list_keys()
                .kvs_arn(arn)
                .max_results(50)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            for item in page.items.unwrap_or_default() {
                have.insert(item.key, item.value);
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let (puts, deletes) = diff(&have, want, keep);
        if puts.is_empty() && deletes.is_empty() {
            return Ok(false);
        }
        // Versions no function reads go first: they free room for the new.
        let ops: Vec<Result<String, (String, String)>> = deletes
            .into_iter()
            .map(Ok)
            .chain(puts.into_iter().map(Err))
            .collect();
        for chunk in ops.chunks(BATCH) {
            let mut call = kvs.update_keys().kvs_arn(arn).if_match(&etag);
            for op in chunk {
                call = match op {
                    Ok(key) => call.deletes(
                        DeleteKeyRequestListItem::builder()
                            .key(key)
                            .build()
                            .map_err(|e| CdnError::Other(self.id().into(), e.to_string()))?,
                    ),
                    Err((key, value)) => call.puts(
                        PutKeyRequestListItem::builder()
                            .key(key)
                            .value(value)
                            .build()
                            .map_err(|e| CdnError::Other(self.id().into(), e.to_string()))?,
                    ),
                };
            }
            etag = call.send().await.map_err(|e| self.err(e))?.e_tag;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(version: &str, keys: &[(&str, &str)]) -> KvsEntries {
        KvsEntries {
            version: version.into(),
            entries: keys
                .iter()
                .map(|(k, v)| (format!("{version}{k}"), v.to_string()))
                .collect(),
        }
    }

    fn store(keys: &[(&str, &str)]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_new_the_live_and_the_one_before_stay() {
        let have = store(&[
            ("aaa/old", "[\"/x\",301]"),
            ("bbb/old", "[\"/x\",301]"),
            ("ccc/same", "[\"/s\",301]"),
            (VERSIONS_KEY, "[\"aaa\",\"bbb\",\"ccc\"]"),
        ]);
        let want = entries(
            "ddd",
            &[("/same", "[\"/s\",301]"), ("/new", "[\"/n\",302]")],
        );
        let (puts, deletes) = diff(&have, &want, Some("ccc"));
        // aaa is three versions back: gone; bbb (before the live ccc) stays.
        assert_eq!(deletes, ["aaa/old"]);
        assert_eq!(
            puts,
            [
                ("ddd/new".to_string(), "[\"/n\",302]".to_string()),
                ("ddd/same".to_string(), "[\"/s\",301]".to_string()),
                (
                    VERSIONS_KEY.to_string(),
                    "[\"bbb\",\"ccc\",\"ddd\"]".to_string()
                ),
            ]
        );
        // The live version stays whatever the record says.
        let (_, deletes) = diff(&have, &want, Some("aaa"));
        assert!(
            !deletes.iter().any(|d| d.starts_with("aaa/")),
            "{deletes:?}"
        );
        // Nothing to do twice.
        let mut after = have.clone();
        for (k, v) in &puts {
            after.insert(k.clone(), v.clone());
        }
        for d in &deletes {
            after.remove(d);
        }
        let (puts, _) = diff(&after, &want, Some("ccc"));
        assert!(puts.is_empty(), "{puts:?}");
    }

    #[test]
    fn a_malformed_record_deletes_nothing_live() {
        for bad in ["not json", "[1,2]", "[\"../x\"]", "{}"] {
            let have = store(&[("aaa/x", "v"), ("bbb/y", "v"), (VERSIONS_KEY, bad)]);
            let (_, deletes) = diff(&have, &entries("ccc", &[]), Some("bbb"));
            assert_eq!(deletes, ["aaa/x"], "{bad}");
        }
    }

    #[test]
    fn the_version_a_function_reads() {
        assert_eq!(
            version_in("import cf from 'cloudfront';\nvar K=cf.kvs(),V=\"0a1b2c\";\n").as_deref(),
            Some("0a1b2c")
        );
        assert_eq!(version_in("var T={};var B='';"), None);
        assert_eq!(version_in("V=\"not hex\""), None);
    }
}
