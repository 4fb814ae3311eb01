//! The march of a migration (rclone's shape): the local walk and the remote
//! listing, both in key order, advanced side by side. The decisions are pure
//! functions of what each side holds — where a key stands in the listing,
//! whether a file needs a request at all, and what its remote copy means —
//! and the I/O around them (paging the listing, HEAD, upload) is the
//! caller's.

use std::collections::VecDeque;

use super::Mode;
use crate::error::Result;
use crate::store::{ListEntry, Store};

/// Where a key stands in the part of the listing read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seek {
    /// Listed, with this size.
    Listed(u64),
    /// Not in the listing.
    Absent,
    /// The listing read so far ends before the key: read the next page.
    More,
}

/// Advance the sorted `page` to `key`, dropping smaller keys (never asked
/// for again: the walk is in key order too). `exhausted`: no further pages.
pub(super) fn seek(page: &mut VecDeque<ListEntry>, key: &str, exhausted: bool) -> Seek {
    while let Some(e) = page.front() {
        match e.key.as_str().cmp(key) {
            std::cmp::Ordering::Less => {
                page.pop_front();
            }
            std::cmp::Ordering::Equal => {
                return page
                    .pop_front()
                    .map_or(Seek::Absent, |e| Seek::Listed(e.size));
            }
            std::cmp::Ordering::Greater => return Seek::Absent,
        }
    }
    if exhausted { Seek::Absent } else { Seek::More }
}

/// Before reading a file: whether it needs any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Another machine's shard (`--shard I/N`).
    OtherShard,
    /// Migrated before (the journal) and unchanged since: no request.
    Journaled,
    /// Read it and compare with its remote copy.
    Compare,
}

pub(super) fn step(in_shard: bool, mode: Mode, journaled: bool) -> Step {
    match (in_shard, mode, journaled) {
        (false, _, _) => Step::OtherShard,
        (true, Mode::Migrate, true) => Step::Journaled,
        _ => Step::Compare,
    }
}

/// Migrate mode: a HEAD is worth it only when the listing did not rule the
/// object out — not listed at all (journal mode: `None`), or listed at the
/// local size.
pub(super) fn worth_a_head(listed: Option<Seek>, size: u64) -> bool {
    match listed {
        None => true,
        Some(Seek::Listed(s)) => s == size,
        Some(_) => false,
    }
}

/// A remote copy as a HEAD saw it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Held<'a> {
    pub size: u64,
    pub hash: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// The local file as read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Have<'a> {
    pub size: u64,
    pub hash: &'a str,
    pub digest: &'a str,
}

/// What the remote copy means for the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Same bytes and headers: nothing to send.
    Unchanged,
    /// Missing or different: upload.
    Upload,
    /// (verify / delete-source) the remote copy is missing or differs.
    Mismatch(String),
    /// (verify / delete-source) the metadata matches: check the bytes
    /// themselves (metadata can be written by anyone who can write the
    /// bucket).
    CheckBytes,
}

pub(super) fn verdict(mode: Mode, have: Have<'_>, held: Option<Held<'_>>) -> Verdict {
    if mode == Mode::Migrate {
        return match held {
            Some(h) if h.hash == Some(have.hash) && h.digest == Some(have.digest) => {
                Verdict::Unchanged
            }
            _ => Verdict::Upload,
        };
    }
    match held {
        None => Verdict::Mismatch("missing in the bucket".into()),
        Some(h) if h.size != have.size => Verdict::Mismatch(format!(
            "size differs (remote {} bytes, local {})",
            h.size, have.size
        )),
        Some(h) if h.hash != Some(have.hash) => {
            Verdict::Mismatch("content differs (blake3)".into())
        }
        Some(_) => Verdict::CheckBytes,
    }
}

/// The remote side of the march: listing pages read as the walk needs them
/// (bounded memory for millions of keys).
pub(super) struct RemoteCursor<'a> {
    store: &'a dyn Store,
    prefix: String,
    page: VecDeque<ListEntry>,
    after: Option<String>,
    done: bool,
    page_size: usize,
}

impl<'a> RemoteCursor<'a> {
    pub(super) fn new(store: &'a dyn Store, prefix: String, page_size: usize) -> Self {
        RemoteCursor {
            store,
            prefix,
            page: VecDeque::new(),
            after: None,
            done: false,
            page_size,
        }
    }

    /// Where `key` stands in the listing (never [`Seek::More`]).
    pub(super) async fn seek(&mut self, key: &str) -> Result<Seek> {
        loop {
            match seek(&mut self.page, key, self.done) {
                Seek::More => {
                    let p = self
                        .store
                        .list_page(&self.prefix, self.after.as_deref(), self.page_size)
                        .await?;
                    self.done = p.len() < self.page_size;
                    self.after = p.last().map(|e| e.key.clone()).or(self.after.take());
                    self.page.extend(p);
                }
                s => return Ok(s),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(keys: &[(&str, u64)]) -> VecDeque<ListEntry> {
        keys.iter()
            .map(|(k, s)| ListEntry {
                key: k.to_string(),
                size: *s,
            })
            .collect()
    }

    #[test]
    fn seeking_walks_the_listing_once_in_key_order() {
        let mut p = page(&[("a", 1), ("b", 2), ("d", 4)]);
        let table = [
            ("a", false, Seek::Listed(1)),
            ("c", false, Seek::Absent),
            ("d", false, Seek::Listed(4)),
            ("e", false, Seek::More),
            ("e", true, Seek::Absent),
        ];
        for (key, exhausted, want) in table {
            assert_eq!(seek(&mut p, key, exhausted), want, "{key}");
        }
        assert!(p.is_empty());
    }

    #[test]
    fn steps_before_reading() {
        let table = [
            (false, Mode::Migrate, true, Step::OtherShard),
            (true, Mode::Migrate, true, Step::Journaled),
            (true, Mode::Migrate, false, Step::Compare),
            (true, Mode::Verify, true, Step::Compare),
            (true, Mode::DeleteSource, true, Step::Compare),
        ];
        for (in_shard, mode, journaled, want) in table {
            assert_eq!(
                step(in_shard, mode, journaled),
                want,
                "{in_shard} {mode:?} {journaled}"
            );
        }
    }

    #[test]
    fn a_head_only_when_the_listing_did_not_decide() {
        assert!(worth_a_head(None, 5), "journal mode: no listing");
        assert!(worth_a_head(Some(Seek::Listed(5)), 5));
        assert!(
            !worth_a_head(Some(Seek::Listed(6)), 5),
            "other size: upload"
        );
        assert!(!worth_a_head(Some(Seek::Absent), 5), "absent: upload");
    }

    #[test]
    fn verdicts() {
        let have = Have {
            size: 5,
            hash: "h",
            digest: "d",
        };
        let held = |size, hash, digest| Some(Held { size, hash, digest });
        let mismatch = |s: &str| Verdict::Mismatch(s.into());
        let table = [
            (Mode::Migrate, None, Verdict::Upload),
            (
                Mode::Migrate,
                held(5, Some("h"), Some("d")),
                Verdict::Unchanged,
            ),
            (
                Mode::Migrate,
                held(5, Some("h"), Some("other headers")),
                Verdict::Upload,
            ),
            (
                Mode::Migrate,
                held(5, Some("x"), Some("d")),
                Verdict::Upload,
            ),
            (Mode::Migrate, held(5, None, None), Verdict::Upload),
            (Mode::Verify, None, mismatch("missing in the bucket")),
            (
                Mode::Verify,
                held(6, Some("h"), Some("d")),
                mismatch("size differs (remote 6 bytes, local 5)"),
            ),
            (
                Mode::Verify,
                held(5, Some("x"), Some("d")),
                mismatch("content differs (blake3)"),
            ),
            (
                Mode::Verify,
                held(5, Some("h"), Some("other headers")),
                Verdict::CheckBytes,
            ),
            (
                Mode::DeleteSource,
                held(5, Some("h"), Some("d")),
                Verdict::CheckBytes,
            ),
            (Mode::DeleteSource, None, mismatch("missing in the bucket")),
        ];
        for (mode, h, want) in table {
            assert_eq!(verdict(mode, have, h), want, "{mode:?} {h:?}");
        }
    }
}
