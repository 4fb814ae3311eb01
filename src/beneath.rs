//! Open and unlink files *beneath* a root directory without following any
//! symlink on the way (`openat` / `unlinkat` with `O_NOFOLLOW`, one path
//! component at a time), so a directory swapped for a symlink while a slow
//! run is going can never make cdnsync read or delete outside the root.

use std::io;
use std::path::Path;

/// Identity and state of a file: device, inode (Unix), size and
/// modification time, to tell "the file that was verified" from whatever
/// sits at its path later, or the same file changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime_ns: i128,
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

#[cfg(unix)]
mod imp {
    use std::ffi::CString;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path};

    use super::FileId;

    fn cstr(s: &std::ffi::OsStr) -> io::Result<CString> {
        CString::new(s.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
    }

    fn open_at(dir: Option<&OwnedFd>, name: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
        let base = dir.map_or(libc::AT_FDCWD, std::os::fd::AsRawFd::as_raw_fd);
        // SAFETY: a valid C string and directory fd; the result is checked.
        let fd = unsafe { libc::openat(base, name.as_ptr(), flags | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by openat and is owned here.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory holding `rel` (opened component by component, no
    /// symlink followed) and the file's own name.
    fn parent(root: &Path, rel: &Path) -> io::Result<(OwnedFd, CString)> {
        let mut dir = open_at(
            None,
            &cstr(root.as_os_str())?,
            libc::O_RDONLY | libc::O_DIRECTORY,
        )?;
        let mut parts = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => parts.push(n),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "bad path segment",
                    ));
                }
            }
        }
        let name = parts
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?;
        for p in parts {
            dir = open_at(
                Some(&dir),
                &cstr(p)?,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            )?;
        }
        Ok((dir, cstr(name)?))
    }

    pub(super) fn id_of(f: &File) -> io::Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let m = f.metadata()?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: super::mtime_ns(&m),
        })
    }

    pub(super) fn open(root: &Path, rel: &Path) -> io::Result<File> {
        let (dir, name) = parent(root, rel)?;
        let fd = open_at(Some(&dir), &name, libc::O_RDONLY | libc::O_NOFOLLOW)?;
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(f)
    }

    pub(super) fn unlink(root: &Path, rel: &Path, expect: FileId) -> io::Result<()> {
        let (dir, name) = parent(root, rel)?;
        // What is there now must be the very file that was verified.
        let f = File::from(open_at(
            Some(&dir),
            &name,
            libc::O_RDONLY | libc::O_NOFOLLOW,
        )?);
        if id_of(&f)? != expect {
            return Err(io::Error::other(
                "changed or replaced since it was verified; not deleted",
            ));
        }
        // SAFETY: valid directory fd and C string; the result is checked.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
    use std::fs::File;
    use std::io;
    use std::path::Path;

    use super::FileId;

    pub fn id_of(f: &File) -> io::Result<FileId> {
        let m = f.metadata()?;
        Ok(FileId {
            dev: 0,
            ino: 0,
            len: m.len(),
            mtime_ns: super::mtime_ns(&m),
        })
    }

    fn checked(root: &Path, rel: &Path) -> io::Result<std::path::PathBuf> {
        let mut at = root.to_path_buf();
        for p in rel.components() {
            at.push(p);
            if std::fs::symlink_metadata(&at)?.file_type().is_symlink() {
                return Err(io::Error::other("a symlink on the way"));
            }
        }
        Ok(at)
    }

    pub fn open(root: &Path, rel: &Path) -> io::Result<File> {
        File::open(checked(root, rel)?)
    }

    pub fn unlink(root: &Path, rel: &Path, expect: FileId) -> io::Result<()> {
        let p = checked(root, rel)?;
        if id_of(&File::open(&p)?)? != expect {
            return Err(io::Error::other(
                "changed or replaced since it was verified; not deleted",
            ));
        }
        std::fs::remove_file(p)
    }
}

/// Open `root/rel` for reading without following a symlink anywhere below
/// `root`; only a regular file.
pub fn open(root: &Path, rel: &Path) -> io::Result<std::fs::File> {
    imp::open(root, rel)
}

/// The identity of an open file.
pub fn id_of(f: &std::fs::File) -> io::Result<FileId> {
    imp::id_of(f)
}

/// Delete `root/rel` without following a symlink below `root`, and only
/// if it still is the file `expect` identifies.
pub fn unlink(root: &Path, rel: &Path, expect: FileId) -> io::Result<()> {
    imp::unlink(root, rel, expect)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn never_through_a_symlink_and_only_the_verified_file() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("src");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join(Path::new("a/f.txt")), "in").unwrap();
        std::fs::write(outside.join("f.txt"), "out").unwrap();
        let f = open(&root, Path::new("a/f.txt")).unwrap();
        let id = id_of(&f).unwrap();
        drop(f);
        // The directory is swapped for a link out of the root.
        std::fs::rename(root.join("a"), d.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a")).unwrap();
        assert!(open(&root, Path::new("a/f.txt")).is_err());
        assert!(unlink(&root, Path::new("a/f.txt"), id).is_err());
        assert!(outside.join("f.txt").exists(), "deleted outside the root");
        // Back in place, but another file at the path: refused.
        std::fs::remove_file(root.join("a")).unwrap();
        std::fs::rename(d.path().join("moved"), root.join("a")).unwrap();
        std::fs::remove_file(root.join(Path::new("a/f.txt"))).unwrap();
        std::fs::write(root.join(Path::new("a/f.txt")), "new").unwrap();
        let now = id_of(&open(&root, Path::new("a/f.txt")).unwrap()).unwrap();
        if now != id {
            assert!(unlink(&root, Path::new("a/f.txt"), id).is_err());
        }
        unlink(&root, Path::new("a/f.txt"), now).unwrap();
        assert!(!root.join(Path::new("a/f.txt")).exists());
        // A link as the file itself is never opened.
        std::os::unix::fs::symlink(outside.join("f.txt"), root.join(Path::new("l.txt"))).unwrap();
        assert!(open(&root, Path::new("l.txt")).is_err());
    }
}
