//! The local side of a migration: the source tree walked with the shared
//! walker under migrate's policy, each file read (hashed, CRC32) beneath the
//! source without following a link swapped in since, and the bytes a store
//! holds checked against it.

use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use super::Problem;
use super::policy::bad_name;
use crate::store::Store;
use crate::walk::Odd;

/// One walked file.
pub(super) struct Local {
    pub(super) key_rel: String,
    /// The path below the source as on disk (before NFC).
    pub(super) rel_fs: PathBuf,
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) mtime: i128,
}

/// Walk `src` in key order with the shared walker, streaming. Migrate's
/// policy: nothing stops the run; every file left behind (odd names,
/// special files, secrets, links out of the tree, unreadable entries) is a
/// line of the report.
pub(super) fn walk<'a>(
    src: &'a Path,
    rules: &'a crate::rules::Rules,
) -> impl Iterator<Item = std::result::Result<Local, Problem>> + 'a {
    crate::walk::walk(src, rules, false).map(move |item| {
        let found = item.map_err(|r| Problem {
            path: r
                .path
                .strip_prefix(src)
                .unwrap_or(&r.path)
                .display()
                .to_string(),
            reason: match r.odd {
                Odd::Unreadable(e) => format!("cannot read: {e}"),
                Odd::NotUtf8 => "name is not valid UTF-8".into(),
                Odd::Control(_) => "control character in the name".into(),
                Odd::Backslash => "backslash in the name".into(),
                Odd::NotAFile => "not a regular file (socket, FIFO or device)".into(),
                Odd::LinkOutside { .. } => "symlink leading outside the source directory".into(),
                Odd::Denied { pattern } => {
                    format!(
                        "on the secret deny-list (`{pattern}`); --include-denied GLOB migrates it"
                    )
                }
            },
        })?;
        let rel_fs = found.rel_fs(src).to_path_buf();
        let problem = |reason: String| Problem {
            path: rel_fs.display().to_string(),
            reason,
        };
        // Keys are NFC: the same name typed anywhere finds the object.
        let rel: String = found.rel.nfc().collect();
        if let Some(why) = bad_name(&rel) {
            return Err(problem(why.into()));
        }
        if let Some(crate::rules::Skip::Denied { pattern }) = rules.skip(&rel)
            && !rules.explicitly_included(&rel)
        {
            return Err(problem(format!(
                "on the secret deny-list (`{pattern}`); --include-denied GLOB migrates it"
            )));
        }
        let m = found
            .entry
            .metadata()
            .map_err(|e| problem(format!("cannot read: {e}")))?;
        Ok(Local {
            key_rel: rel,
            rel_fs,
            path: found.entry.into_path(),
            size: m.len(),
            mtime: mtime_ns(&m),
        })
    })
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(-1)
}

/// What reading a file to migrate found.
pub(super) struct Read {
    pub(super) size: u64,
    pub(super) hash: String,
    /// CRC32 as S3 reports it (base64 of the big-endian value).
    pub(super) crc32: String,
    pub(super) id: crate::beneath::FileId,
    /// The path read, relative to the source root (through links resolved
    /// inside the root).
    pub(super) rel_fs: PathBuf,
}

/// Hash a file below `src` without following a symlink that appeared since
/// the walk; a file the walk reached through a link inside the tree is read
/// at its real place (still inside the tree).
pub(super) fn hash_beneath(src: &Path, rel_fs: &Path, path: &Path) -> std::io::Result<Read> {
    use std::io::Read as _;
    let (mut file, rel) = match crate::beneath::open(src, rel_fs) {
        Ok(f) => (f, rel_fs.to_path_buf()),
        Err(_) => {
            let canon_src = src.canonicalize()?;
            let real = path.canonicalize()?;
            let rel = real
                .strip_prefix(&canon_src)
                .map_err(|_| std::io::Error::other("leads outside the source directory"))?
                .to_path_buf();
            (crate::beneath::open(&canon_src, &rel)?, rel)
        }
    };
    let id = crate::beneath::id_of(&file)?;
    let mut h = blake3::Hasher::new();
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        crc.update(&buf[..n]);
        size += n as u64;
    }
    use base64::Engine;
    Ok(Read {
        size,
        hash: h.finalize().to_hex().to_string(),
        crc32: base64::engine::general_purpose::STANDARD.encode(crc.finalize().to_be_bytes()),
        id,
        rel_fs: rel,
    })
}

/// Check the bytes a store holds are the local ones: by the store's own
/// full-object CRC32 when it has one, else by reading them back in ranges
/// and hashing them (multipart objects, stores without checksums).
pub(super) async fn verify_bytes(
    store: &dyn Store,
    key: &str,
    m: &crate::store::ObjectMeta,
    local: &Read,
) -> std::result::Result<(), String> {
    if let Some(c) = &m.checksum_crc32
        && !c.contains('-')
    {
        return if *c == local.crc32 {
            Ok(())
        } else {
            Err("content differs (the store's CRC32)".into())
        };
    }
    const RANGE: u64 = 8 << 20;
    let mut h = blake3::Hasher::new();
    let mut at = 0;
    while at < local.size {
        let b = store
            .read_range(key, at, RANGE.min(local.size - at))
            .await
            .map_err(|e| format!("cannot read back: {e}"))?;
        if b.is_empty() {
            break;
        }
        h.update(&b);
        at += b.len() as u64;
    }
    if at == local.size && h.finalize().to_hex().as_str() == local.hash {
        Ok(())
    } else {
        Err("content differs (read back and hashed)".into())
    }
}
