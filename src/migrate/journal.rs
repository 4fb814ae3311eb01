//! The state journal of a migration: files already migrated (key hash,
//! size, mtime), appended as files finish, so a rerun skips them without a
//! request.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The state journal: one line per migrated file,
/// `key-hash size mtime-ns content-hash`, appended as files finish.
/// Keys are stored as 64-bit hashes so a million entries stay small.
pub(super) struct Journal {
    done: std::collections::HashMap<u64, (u64, i128)>,
    out: Option<std::io::BufWriter<std::fs::File>>,
    pending: usize,
}

fn key_id(key: &str) -> u64 {
    u64::from_le_bytes(
        blake3::hash(key.as_bytes()).as_bytes()[..8]
            .try_into()
            .expect("8 bytes"),
    )
}

impl Journal {
    pub(super) fn open(path: &Path) -> Result<Journal> {
        let mut done = std::collections::HashMap::new();
        // Line by line: a million-entry journal is never held as one string.
        if let Ok(f) = std::fs::File::open(path) {
            use std::io::BufRead;
            for line in std::io::BufReader::new(f)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let mut f = line.split(' ');
                if let (Some(k), Some(s), Some(m)) = (f.next(), f.next(), f.next())
                    && let (Ok(k), Ok(s), Ok(m)) =
                        (u64::from_str_radix(k, 16), s.parse(), m.parse())
                {
                    done.insert(k, (s, m));
                }
            }
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Journal {
            done,
            out: Some(std::io::BufWriter::new(f)),
            pending: 0,
        })
    }

    /// Already migrated, and the file is as it was then.
    pub(super) fn is_done(&self, key: &str, size: u64, mtime: i128) -> bool {
        self.done.get(&key_id(key)) == Some(&(size, mtime))
    }

    pub(super) fn record(&mut self, key: &str, size: u64, mtime: i128, hash: &str) {
        if let Some(w) = self.out.as_mut() {
            let _ = writeln!(
                w,
                "{:016x} {size} {mtime} {}",
                key_id(key),
                &hash[..hash.len().min(16)]
            );
            self.pending += 1;
            if self.pending >= 256 {
                let _ = w.flush();
                self.pending = 0;
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(w) = self.out.as_mut() {
            let _ = w.flush();
        }
    }
}

/// Default journal location: the user's cache dir, one file per source + target.
pub fn default_state_path(src: &Path, target: &str) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let abs = std::path::absolute(src).unwrap_or_else(|_| src.to_path_buf());
    let id = blake3::hash(format!("{}\n{target}", abs.display()).as_bytes()).to_hex();
    Some(
        base.join("cdnsync")
            .join("migrate")
            .join(format!("{}.journal", &id[..24])),
    )
}
