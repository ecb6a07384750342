//! The exact tree copy: what the dir driver snapshots, clones and restores with, and what
//! the CLI uses to copy a volume between pools. Driver-independent.
//!
//! "Exact" means: numeric owners, modes with setuid/setgid/sticky, atime and mtime to the
//! nanosecond (a directory's times are set after its children are written), every
//! extended attribute (ACLs included), device nodes, fifos, sockets, symlinks, hard links
//! kept as hard links (`(dev, ino)` of the source mapped to the first copy), and sparse
//! files kept sparse. File data is reflinked where the filesystem can ([`CopyMode`]).
//!
//! The walk is descriptor-based: every name is resolved with `*at()` calls relative to
//! an open directory and never followed, so a symlink swapped in by a running container
//! cannot lead the copy outside the source tree. On any error the partial destination is
//! removed before the error is returned; ENOSPC surfaces as [`Error::NoSpace`].

mod file;
pub(crate) mod meta;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
pub use file::{ficlone, reflink_supported};
use meta::Node;

/// How file data is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMode {
    /// Reflink when the filesystem can, else copy (keeping holes).
    Auto,
    /// Reflink or fail (EOPNOTSUPP / EXDEV) — for callers that promised no extra space.
    Reflink,
    /// Always copy the data, never share extents.
    Full,
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    /// Device nodes, fifos and sockets.
    pub specials: u64,
    /// Names made as hard links to an inode copied earlier in the walk.
    pub hardlinks: u64,
    /// Apparent size of the regular files copied.
    pub bytes: u64,
    /// Regular files whose data was reflinked rather than copied.
    pub reflinked: u64,
}

/// Copies the tree at `src` (a directory) to `dst`, which must not exist. Not atomic:
/// callers build into a temporary path and rename. On error nothing is left at `dst`.
pub fn copy_tree(src: &Path, dst: &Path, mode: CopyMode) -> Result<CopyStats> {
    let src_root = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(src)
        .ctx("open copy source", src)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dst)
        .ctx("create copy destination", dst)?;
    let result = (|| {
        let dst_root: OwnedFd = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dst)
            .ctx("open copy destination", dst)?
            .into();
        let st = meta::fstat(src_root.as_fd()).ctx("stat", src)?;
        let xattrs = meta::read_xattrs(Node::Fd(src_root.as_fd())).ctx("read xattrs of", src)?;
        let mut w = Walker {
            src,
            dst,
            mode,
            reflink: file::Reflink::Try,
            stats: CopyStats::default(),
            links: HashMap::new(),
            dst_root: dst_root.try_clone().ctx("dup", dst)?,
            link_prefix: PathBuf::new(),
        };
        let dir = nix::dir::Dir::from_fd(OwnedFd::from(src_root)).ctx("read directory", src)?;
        w.copy_dir(dir, dst_root.as_raw_fd(), &mut PathBuf::new())?;
        // The destination's parent may carry a default ACL the new root inherited.
        let node = Node::Fd(dst_root.as_fd());
        meta::drop_extra_xattrs(node, &xattrs).ctx("clear inherited xattrs of", dst)?;
        meta::apply(node, &st, &xattrs).map_err(|(op, e)| Error::io(op, dst, e))?;
        w.stats.dirs += 1;
        Ok(w.stats)
    })();
    if result.is_err() {
        if let Err(e) = remove_tree(dst) {
            tracing::error!(path = %dst.display(), error = %e, "removing a partial copy failed");
        }
    }
    result
}

struct Walker<'a> {
    src: &'a Path,
    dst: &'a Path,
    mode: CopyMode,
    reflink: file::Reflink,
    stats: CopyStats,
    /// Source `(dev, ino)` of multiply-linked inodes → destination path relative to `dst`.
    links: HashMap<(u64, u64), CString>,
    dst_root: OwnedFd,
    /// Where `rel` lies under `dst_root` (empty for a whole-tree copy).
    link_prefix: PathBuf,
}

impl Walker<'_> {
    fn src_err(&self, op: &'static str, rel: &Path, e: io::Error) -> Error {
        Error::io(op, self.src.join(rel), e)
    }
    fn dst_err(&self, op: &'static str, rel: &Path, e: io::Error) -> Error {
        Error::io(op, self.dst.join(rel), e)
    }

    /// Copies the entries of `src` into the directory `dst` (`rel` is their path).
    fn copy_dir(&mut self, mut src: nix::dir::Dir, dst: RawFd, rel: &mut PathBuf) -> Result<()> {
        let mut names = Vec::new();
        for entry in src.iter() {
            let entry = entry.map_err(|e| self.src_err("read directory", rel, e.into()))?;
            let name = entry.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
        }
        for name in names {
            rel.push(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let r = self.copy_entry(src.as_raw_fd(), dst, &name, rel);
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        sdir: RawFd,
        ddir: RawFd,
        name: &CStr,
        rel: &mut PathBuf,
    ) -> Result<()> {
        let mut st = meta::stat_at(sdir, name).map_err(|e| self.src_err("stat", rel, e))?;
        let kind = st.st_mode & libc::S_IFMT;
        let key = (st.st_dev, st.st_ino);
        if kind != libc::S_IFDIR && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                meta::link_at(self.dst_root.as_raw_fd(), first, ddir, name)
                    .map_err(|e| self.dst_err("hard link", rel, e))?;
                self.stats.hardlinks += 1;
                return Ok(());
            }
        }
        match kind {
            libc::S_IFDIR => {
                let fd = meta::open_read_at(sdir, name, libc::O_DIRECTORY)
                    .map_err(|e| self.src_err("open", rel, e))?;
                st = meta::fstat(fd.as_fd()).map_err(|e| self.src_err("stat", rel, e))?;
                let xattrs = meta::read_xattrs(Node::Fd(fd.as_fd()))
                    .map_err(|e| self.src_err("read xattrs of", rel, e))?;
                meta::mkdir_at(ddir, name, 0o700).map_err(|e| self.dst_err("create", rel, e))?;
                let out = meta::open_at(ddir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(|e| self.dst_err("open", rel, e))?;
                let dir = nix::dir::Dir::from_fd(fd)
                    .map_err(|e| self.src_err("read directory", rel, e.into()))?;
                self.copy_dir(dir, out.as_raw_fd(), rel)?;
                meta::apply(Node::Fd(out.as_fd()), &st, &xattrs)
                    .map_err(|(op, e)| self.dst_err(op, rel, e))?;
                self.stats.dirs += 1;
            }
            libc::S_IFREG => {
                let fd =
                    meta::open_read_at(sdir, name, 0).map_err(|e| self.src_err("open", rel, e))?;
                st = meta::fstat(fd.as_fd()).map_err(|e| self.src_err("stat", rel, e))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    let e = io::Error::other("changed type during the copy; retry");
                    return Err(self.src_err("copy", rel, e));
                }
                let xattrs = meta::read_xattrs(Node::Fd(fd.as_fd()))
                    .map_err(|e| self.src_err("read xattrs of", rel, e))?;
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
                let out = meta::open_at(ddir, name, flags, 0o600)
                    .map_err(|e| self.dst_err("create", rel, e))?;
                let size = st.st_size as u64;
                let how =
                    file::copy_data(fd.as_fd(), out.as_fd(), size, self.mode, &mut self.reflink)
                        .map_err(|e| self.dst_err("copy data to", rel, e))?;
                meta::apply(Node::Fd(out.as_fd()), &st, &xattrs)
                    .map_err(|(op, e)| self.dst_err(op, rel, e))?;
                self.stats.files += 1;
                self.stats.bytes += size;
                self.stats.reflinked += u64::from(how == file::Copied::Reflinked);
            }
            _ => {
                let xattrs = meta::read_xattrs(Node::At(sdir, name))
                    .map_err(|e| self.src_err("read xattrs of", rel, e))?;
                if kind == libc::S_IFLNK {
                    let target = meta::readlink_at(sdir, name)
                        .map_err(|e| self.src_err("read link", rel, e))?;
                    meta::symlink_at(&target, ddir, name)
                        .map_err(|e| self.dst_err("create symlink", rel, e))?;
                    self.stats.symlinks += 1;
                } else {
                    meta::mknod_at(ddir, name, kind | 0o600, st.st_rdev)
                        .map_err(|e| self.dst_err("create node", rel, e))?;
                    self.stats.specials += 1;
                }
                meta::apply(Node::At(ddir, name), &st, &xattrs)
                    .map_err(|(op, e)| self.dst_err(op, rel, e))?;
            }
        }
        if kind != libc::S_IFDIR && st.st_nlink > 1 {
            let path = meta::cstr(self.link_prefix.join(&*rel).as_os_str())
                .map_err(|e| self.dst_err("hard link", rel, e))?;
            self.links.insert((st.st_dev, st.st_ino), path);
        }
        Ok(())
    }
}

/// Exact copies of single entries of one tree into directories of another, hard links
/// shared among everything one copier copies (a name linked to an inode copied earlier
/// becomes a hard link to that copy). For `cairn restore --path`.
pub struct EntryCopier {
    dst_root: OwnedFd,
    dst_root_path: PathBuf,
    mode: CopyMode,
    reflink: file::Reflink,
    links: HashMap<(u64, u64), CString>,
    stats: CopyStats,
}

impl EntryCopier {
    /// A copier into the tree at `dst_root`.
    pub fn new(dst_root: &Path, mode: CopyMode) -> Result<EntryCopier> {
        let fd: OwnedFd = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(dst_root)
            .ctx("open copy destination", dst_root)?
            .into();
        Ok(EntryCopier {
            dst_root: fd,
            dst_root_path: dst_root.to_path_buf(),
            mode,
            reflink: file::Reflink::Try,
            links: HashMap::new(),
            stats: CopyStats::default(),
        })
    }

    /// Copies the entry `name` of the directory `src_dir` (not following it), whole, into
    /// the directory `dst_dir`, which is `dst_rel` under the destination root and must not
    /// hold `name`. Not atomic: on error the partial entry is left for the caller, who
    /// copies into a directory of its own and removes it.
    pub fn copy(
        &mut self,
        src_dir: &Path,
        name: &std::ffi::OsStr,
        dst_dir: &Path,
        dst_rel: &Path,
    ) -> Result<()> {
        let open_dir = |p: &Path, op| -> Result<OwnedFd> {
            Ok(std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(p)
                .ctx(op, p)?
                .into())
        };
        let sdir = open_dir(src_dir, "open copy source")?;
        let ddir = open_dir(dst_dir, "open copy destination")?;
        let cname = meta::cstr(name).ctx("copy", src_dir.join(name))?;
        let mut w = Walker {
            src: src_dir,
            dst: dst_dir,
            mode: self.mode,
            reflink: self.reflink,
            stats: CopyStats::default(),
            links: std::mem::take(&mut self.links),
            dst_root: self.dst_root.try_clone().ctx("dup", &self.dst_root_path)?,
            link_prefix: dst_rel.to_path_buf(),
        };
        let mut rel = PathBuf::from(name);
        let r = w.copy_entry(sdir.as_raw_fd(), ddir.as_raw_fd(), &cname, &mut rel);
        self.links = w.links;
        self.reflink = w.reflink;
        let s = w.stats;
        self.stats.dirs += s.dirs;
        self.stats.files += s.files;
        self.stats.symlinks += s.symlinks;
        self.stats.specials += s.specials;
        self.stats.hardlinks += s.hardlinks;
        self.stats.bytes += s.bytes;
        self.stats.reflinked += s.reflinked;
        r
    }

    /// What the copier has copied so far.
    pub fn stats(&self) -> CopyStats {
        self.stats
    }
}

/// Puts back the atime/mtime that `like` records on `path` (not following it). A copy
/// root renamed into another directory needs it: xfs updates a directory's mtime when a
/// rename changes its `..`.
pub fn set_times_like(path: &Path, like: &std::fs::Metadata) -> Result<()> {
    let c = meta::cstr(path.as_os_str()).ctx("set times of", path)?;
    let times = [
        libc::timespec {
            tv_sec: like.atime(),
            tv_nsec: like.atime_nsec(),
        },
        libc::timespec {
            tv_sec: like.mtime(),
            tv_nsec: like.mtime_nsec(),
        },
    ];
    // SAFETY: valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(Error::io("set times of", path, io::Error::last_os_error()));
    }
    Ok(())
}

/// Deletes a tree without following symlinks. If plain deletion fails (an immutable or
/// append-only flag, a directory without write permission) it clears those and retries.
/// Idempotent: a missing path is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("delete", path, e)),
        Ok(m) if !m.is_dir() => return std::fs::remove_file(path).ctx("delete", path),
        Ok(_) => {}
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "unlocking tree to delete it");
            unlock(path);
            match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("delete", path, e)),
                _ => Ok(()),
            }
        }
    }
}

const FS_IMMUTABLE_FL: libc::c_int = 0x10;
const FS_APPEND_FL: libc::c_int = 0x20;

/// Best effort: clears immutable/append-only flags and makes directories writable.
fn unlock(path: &Path) {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !(m.is_dir() || m.is_file()) {
        return;
    }
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW;
    if let Ok(f) = std::fs::File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        let mut fl: libc::c_int = 0;
        // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int.
        unsafe {
            if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut fl) == 0
                && fl & (FS_IMMUTABLE_FL | FS_APPEND_FL) != 0
            {
                fl &= !(FS_IMMUTABLE_FL | FS_APPEND_FL);
                libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &fl);
            }
        }
    }
    if m.is_dir() {
        let mode = m.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o700));
        }
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                unlock(&e.path());
            }
        }
    }
}

/// Bytes allocated to the tree (`st_blocks * 512`, hard-linked inodes counted once,
/// shared extents counted in full). Entries vanishing during the walk are skipped.
pub fn disk_usage(path: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound && p != path => continue,
            Err(e) => return Err(Error::io("measure", p, e)),
        };
        if m.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(entries) => stack.extend(entries.flatten().map(|e| e.path())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("measure", p, e)),
            }
        } else if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total += m.blocks() * 512;
    }
    Ok(total)
}
