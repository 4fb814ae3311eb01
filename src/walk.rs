//! The one directory walker, shared by `publish` (scan) and `migrate`:
//! entries in key order (a directory sorts as `name/`), symlinks followed
//! only inside the root, the secret deny-list applied to names and to link
//! targets. Every entry that cannot be a file to take is reported with why
//! ([`Odd`]); each caller's policy decides whether that stops the run
//! (publish), or is a line of the report (migrate).

use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

use crate::rules::{Rules, Skip};

/// A regular file to take.
pub struct Found {
    /// Path below the root, `/`-separated, as on disk (not normalized).
    pub rel: String,
    pub entry: walkdir::DirEntry,
}

impl Found {
    /// The path below the root as on disk.
    pub fn rel_fs<'a>(&'a self, root: &Path) -> &'a Path {
        self.entry
            .path()
            .strip_prefix(root)
            .unwrap_or(self.entry.path())
    }
}

/// Why an entry is not a file to take.
#[derive(Debug)]
pub enum Odd {
    /// The walk could not read it (a symlink loop, a broken link, a file
    /// gone, no permission).
    Unreadable(walkdir::Error),
    NotUtf8,
    Control(char),
    /// Browsers turn `\` into `/` in URLs: it could never be requested.
    Backslash,
    /// A socket, FIFO or device.
    NotAFile,
    /// On the secret deny-list (by its name, or its link target's).
    Denied {
        pattern: String,
    },
    /// A symlink leading out of the root: never followed.
    LinkOutside {
        target: PathBuf,
    },
}

/// An entry refused, with why.
#[derive(Debug)]
pub struct Refused {
    pub path: PathBuf,
    /// Path below the root, when it is one.
    pub rel: Option<String>,
    pub odd: Odd,
}

/// Walk `root`. `prune`: directories the rules exclude (`.git/`…) are not
/// entered at all (publish); otherwise each file in them is refused as
/// denied (migrate reports every file it leaves behind).
pub fn walk<'a>(root: &'a Path, rules: &'a Rules, prune: bool) -> Walk<'a> {
    Walk {
        it: walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by(key_order)
            .into_iter(),
        canon: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
        root,
        rules,
        prune,
    }
}

/// Siblings in key order: names compared as keys (NFC), a directory as
/// `name/`. ASCII names (nearly all) are compared without allocating.
fn key_order(a: &walkdir::DirEntry, b: &walkdir::DirEntry) -> std::cmp::Ordering {
    let (na, nb) = (
        a.file_name().as_encoded_bytes(),
        b.file_name().as_encoded_bytes(),
    );
    let (da, db) = (a.file_type().is_dir(), b.file_type().is_dir());
    if na.is_ascii() && nb.is_ascii() {
        let slash = |d: bool| if d { &b"/"[..] } else { &b""[..] };
        return na.iter().chain(slash(da)).cmp(nb.iter().chain(slash(db)));
    }
    let key = |e: &walkdir::DirEntry, dir: bool| {
        let mut n: String = e.file_name().to_string_lossy().nfc().collect();
        if dir {
            n.push('/');
        }
        n
    };
    key(a, da).cmp(&key(b, db))
}

pub struct Walk<'a> {
    it: walkdir::IntoIter,
    root: &'a Path,
    canon: PathBuf,
    rules: &'a Rules,
    prune: bool,
}

impl Iterator for Walk<'_> {
    type Item = Result<Found, Refused>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let e = match self.it.next()? {
                Ok(e) => e,
                Err(err) => {
                    let path = err.path().unwrap_or(self.root).to_path_buf();
                    return Some(Err(Refused {
                        rel: rel_str(self.root, &path),
                        path,
                        odd: Odd::Unreadable(err),
                    }));
                }
            };
            if e.depth() == 0 {
                continue;
            }
            let rel = rel_str(self.root, e.path());
            let refuse = |odd| {
                Some(Err(Refused {
                    path: e.path().to_path_buf(),
                    rel: rel.clone(),
                    odd,
                }))
            };
            if e.path_is_symlink()
                && let Some(odd) = self.link_problem(&e, rel.as_deref())
            {
                if e.file_type().is_dir() {
                    self.it.skip_current_dir();
                }
                return refuse(odd);
            }
            if e.file_type().is_dir() {
                if self.prune && rel.as_deref().is_some_and(|r| self.rules.skip_dir(r)) {
                    self.it.skip_current_dir();
                }
                continue;
            }
            let Some(rel) = rel.clone() else {
                return refuse(Odd::NotUtf8);
            };
            if let Some(c) = rel.chars().find(|c| c.is_control()) {
                return refuse(Odd::Control(c));
            }
            if rel.contains('\\') {
                return refuse(Odd::Backslash);
            }
            if !e.file_type().is_file() {
                return refuse(Odd::NotAFile);
            }
            return Some(Ok(Found { rel, entry: e }));
        }
    }
}

impl Walk<'_> {
    /// A link out of the root, or to a denied target (`env.txt -> .env`:
    /// the secret would be published under the link's name).
    fn link_problem(&self, e: &walkdir::DirEntry, rel: Option<&str>) -> Option<Odd> {
        // Broken links are reported by the walk itself.
        let t = e.path().canonicalize().ok()?;
        if !t.starts_with(&self.canon) {
            return Some(Odd::LinkOutside { target: t });
        }
        let (link, target) = (rel?, rel_str(&self.canon, &t)?);
        let denied = if e.file_type().is_dir() {
            self.rules.skip(&format!("{target}/x"))
        } else {
            self.rules.skip(&target)
        };
        match denied {
            Some(Skip::Denied { pattern }) if !self.rules.explicitly_included(link) => {
                Some(Odd::Denied {
                    pattern: format!("{pattern} (the link's target, {target})"),
                })
            }
            _ => None,
        }
    }
}

/// `p` below `root`, `/`-separated; `None` when not UTF-8 (or not below).
pub fn rel_str(root: &Path, p: &Path) -> Option<String> {
    let rel = p.strip_prefix(root).ok()?;
    let mut out = String::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(c.as_os_str().to_str()?);
    }
    Some(out)
}
