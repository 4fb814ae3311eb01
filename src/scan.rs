//! Walks the build directory into an [`Inventory`]: deterministic order,
//! deny-list applied, symlinks never followed out of the root, loops
//! detected, and every file hashed with blake3 on all cores, streamed.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::rules::{Rules, Skip};
use crate::walk::{Odd, Refused};
use crate::warning::Warning;

/// One file to publish.
#[derive(Debug, Clone, Serialize)]
pub struct LocalFile {
    /// Path relative to the root, `/`-separated, UTF-8.
    pub rel: String,
    #[serde(skip)]
    pub path: PathBuf,
    pub size: u64,
    /// blake3 of the content, 64 lowercase hex characters.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub rel: String,
    #[serde(flatten)]
    pub skip: Skip,
}

#[derive(Debug, Default, Serialize)]
pub struct Inventory {
    #[serde(skip)]
    pub root: PathBuf,
    /// Sorted by `rel`.
    pub files: Vec<LocalFile>,
    pub skipped: Vec<Skipped>,
    /// Non-fatal notes (special files skipped, …).
    pub warnings: Vec<crate::warning::Warning>,
}

impl Inventory {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Walk and hash `root`.
pub fn scan(root: &Path, rules: &Rules) -> Result<Inventory> {
    let md = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(root, "directory not found"),
        _ => Error::io(root, e),
    })?;
    if !md.is_dir() {
        return Err(Error::input(root, "not a directory"));
    }
    root.canonicalize().map_err(|e| Error::io(root, e))?;

    let mut inv = Inventory {
        root: root.to_path_buf(),
        ..Default::default()
    };
    let mut pending: Vec<(String, PathBuf)> = Vec::new();
    for item in crate::walk::walk(root, rules, true) {
        let found = match item {
            Ok(f) => f,
            Err(Refused {
                odd: Odd::NotAFile,
                rel: Some(rel),
                ..
            }) => {
                inv.warnings.push(Warning::NotAFile { file: rel });
                continue;
            }
            Err(r) => {
                inv.skipped.extend(refused(root, r)?);
                continue;
            }
        };
        let rel = found.rel;
        if crate::routing::SITE_FILES.contains(&rel.as_str()) {
            inv.skipped.push(Skipped {
                rel,
                skip: Skip::Routing,
            });
            continue;
        }
        if let Some(skip) = rules.skip(&rel) {
            inv.skipped.push(Skipped { rel, skip });
            continue;
        }
        if !unicode_normalization::is_nfc(&rel) {
            inv.warnings.push(Warning::NotNfc { file: rel.clone() });
        }
        pending.push((rel, found.entry.into_path()));
    }
    inv.skipped.sort_by(|a, b| a.rel.cmp(&b.rel));

    let hashed: Vec<Result<LocalFile>> = pending
        .into_par_iter()
        .map(|(rel, path)| {
            let (size, hash) = hash_file(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::input(
                    &path,
                    "file disappeared while the directory was being scanned",
                ),
                _ => Error::io(&path, e),
            })?;
            Ok(LocalFile {
                rel,
                path,
                size,
                hash: hash.to_hex().to_string(),
            })
        })
        .collect();
    for f in hashed {
        inv.files.push(f?);
    }
    inv.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(inv)
}

/// Publish's policy for what the walk refuses: a name that cannot be a key,
/// a link out of the root, an unreadable entry stop the run (before any
/// request); a denied link is skipped.
fn refused(root: &Path, r: Refused) -> Result<Option<Skipped>> {
    let path = r.path;
    Err(match r.odd {
        Odd::Unreadable(e) => walk_error(root, e),
        Odd::NotUtf8 => Error::input(
            path,
            "file name is not valid UTF-8, so it cannot be an S3 key; rename it or move it out of the directory",
        ),
        Odd::Control(c) => Error::input(
            path,
            format!(
                "file name contains the control character U+{:04X}; rename it",
                c as u32
            ),
        ),
        Odd::Backslash => Error::input(
            path,
            "file name contains a backslash, which browsers turn into `/` in URLs, so it could never be requested; rename it",
        ),
        Odd::LinkOutside { target } => Error::input(
            path,
            format!(
                "symlink points outside the directory being published (to {}); cdnsync never follows links out of the root",
                target.display()
            ),
        ),
        Odd::Denied { pattern } => {
            return Ok(r.rel.map(|rel| Skipped {
                rel,
                skip: Skip::Denied { pattern },
            }));
        }
        Odd::NotAFile => return Ok(None),
    })
}

fn walk_error(root: &Path, e: walkdir::Error) -> Error {
    let path = e.path().unwrap_or(root).to_path_buf();
    if let Some(anc) = e.loop_ancestor() {
        return Error::input(
            path,
            format!("symlink loop: it leads back to {}", anc.display()),
        );
    }
    match e.into_io_error() {
        Some(io) if io.kind() == std::io::ErrorKind::NotFound => {
            Error::input(path, "broken symlink or file disappeared during the scan")
        }
        Some(io) => Error::io(path, io),
        None => Error::input(path, "cannot walk"),
    }
}

const SMALL_BUF: usize = 256 * 1024;
const BIG_BUF: usize = 8 * 1024 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Size and blake3 of a file, read in bounded chunks. Files of 16 MiB and
/// more are hashed with blake3's own multi-threading as well.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, blake3::Hash)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let big = len >= 16 * 1024 * 1024;
    BUF.with(|b| {
        let mut buf = b.borrow_mut();
        let want = if big { BIG_BUF } else { SMALL_BUF };
        if buf.len() != want {
            buf.resize(want, 0);
        }
        let mut h = blake3::Hasher::new();
        let mut total = 0u64;
        loop {
            let n = read_full(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            if big {
                h.update_rayon(&buf[..n]);
            } else {
                h.update(&buf[..n]);
            }
            total += n as u64;
        }
        Ok((total, h.finalize()))
    })
}

/// Fill `buf` as far as the file allows.
pub fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Defaults;
    use std::fs;

    fn rules() -> Rules {
        Rules::new(&[], Defaults::default()).unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("css")).unwrap();
        fs::create_dir_all(r.join(".git")).unwrap();
        fs::write(r.join("index.html"), "<h1>hi</h1>").unwrap();
        fs::write(r.join("css/site.css"), "body{}").unwrap();
        fs::write(r.join(".git/config"), "x").unwrap();
        fs::write(r.join(".env"), "SECRET=1").unwrap();
        fs::write(r.join("a b+c%.txt"), "odd").unwrap();
        d
    }

    #[test]
    fn walks_sorted_skips_denied_and_hashes() {
        let d = tree();
        let inv = scan(d.path(), &rules()).unwrap();
        let rels: Vec<&str> = inv.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a b+c%.txt", "css/site.css", "index.html"]);
        assert_eq!(
            inv.files[2].hash,
            blake3::hash(b"<h1>hi</h1>").to_hex().to_string()
        );
        assert_eq!(inv.files[2].size, 11);
        let skipped: Vec<&str> = inv.skipped.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(skipped, [".env"]); // .git pruned as a whole directory
    }

    #[test]
    fn big_files_hash_like_small_ones() {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(20 * 1024 * 1024 + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        fs::write(d.path().join("big.bin"), &data).unwrap();
        let (n, h) = hash_file(&d.path().join("big.bin")).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(h, blake3::hash(&data));
    }

    #[test]
    fn errors_name_the_path() {
        let d = tempfile::tempdir().unwrap();
        let e = scan(&d.path().join("nope"), &rules()).unwrap_err();
        assert!(e.to_string().contains("directory not found"), "{e}");
        fs::write(d.path().join("f"), "x").unwrap();
        let e = scan(&d.path().join("f"), &rules()).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_ok_outside_and_loops_refused() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.txt"), "s").unwrap();

        let d = tree();
        symlink(d.path().join("css"), d.path().join("styles")).unwrap();
        let inv = scan(d.path(), &rules()).unwrap();
        assert!(inv.files.iter().any(|f| f.rel == "styles/site.css"));

        symlink(outside.path().join("secret.txt"), d.path().join("leak.txt")).unwrap();
        let e = scan(d.path(), &rules()).unwrap_err();
        assert!(e.to_string().contains("outside the directory"), "{e}");
        assert!(e.to_string().contains("leak.txt"), "{e}");

        let d = tree();
        symlink(d.path(), d.path().join("css/loop")).unwrap();
        let e = scan(d.path(), &rules()).unwrap_err();
        assert!(e.to_string().contains("symlink loop"), "{e}");

        let d = tree();
        symlink(d.path().join("nope"), d.path().join("dangling")).unwrap();
        let e = scan(d.path(), &rules()).unwrap_err();
        assert!(e.to_string().contains("broken symlink"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_a_clear_error() {
        use std::os::unix::ffi::OsStrExt;
        let d = tree();
        let name = std::ffi::OsStr::from_bytes(b"bad\xff.txt");
        fs::write(d.path().join(name), "x").unwrap();
        let e = scan(d.path(), &rules()).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    }
}
