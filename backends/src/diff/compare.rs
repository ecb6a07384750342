//! Comparing one path's two inodes: metadata from `stat`, then xattrs, then content
//! (symlink target, device number, or file bytes: size, shared extents, hash).

use std::collections::HashMap;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, RawFd};

use super::{extents, EntryType, What};
use crate::copy::meta::{self, Node, Xattr};
use crate::manifest;

/// Where one side's inode is: its directory and name, or (for a tree's root) an open fd.
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Name(RawFd, &'a CStr),
    Root(RawFd),
}

impl At<'_> {
    fn node(&self) -> Node<'_> {
        match *self {
            At::Name(dir, name) => Node::At(dir, name),
            // SAFETY: the fd is open for the lifetime of this value (held by the walker).
            At::Root(fd) => Node::Fd(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }),
        }
    }
}

/// The metadata differences `stat` alone shows, in [`What`] order (content aside).
pub(crate) fn meta_changes(a: &libc::stat64, b: &libc::stat64) -> Vec<What> {
    let (ta, tb) = (a.st_mode & libc::S_IFMT, b.st_mode & libc::S_IFMT);
    if EntryType::of_mode(ta) != EntryType::of_mode(tb) {
        return vec![What::Type];
    }
    let mut out = Vec::new();
    let content = match EntryType::of_mode(ta) {
        EntryType::File => a.st_size != b.st_size,
        EntryType::Device => ta != tb || a.st_rdev != b.st_rdev,
        _ => false,
    };
    if content {
        out.push(What::Content);
    }
    if a.st_mode & 0o7777 != b.st_mode & 0o7777 && ta != libc::S_IFLNK {
        out.push(What::Mode);
    }
    if (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid) {
        out.push(What::Owner);
    }
    if (a.st_mtime, a.st_mtime_nsec) != (b.st_mtime, b.st_mtime_nsec) {
        out.push(What::Mtime);
    }
    // A directory's link count is its subdirectory count on some filesystems, 1 on btrfs.
    if ta != libc::S_IFDIR && a.st_nlink != b.st_nlink {
        out.push(What::Links);
    }
    out
}

/// Compares inodes; counts what it had to read.
#[derive(Default)]
pub(crate) struct Comparer {
    /// Pairs of files whose content was read and hashed.
    pub hashed: u64,
    /// Content verdicts of multiply-linked inode pairs, so each pair is decided once.
    seen: HashMap<(u64, u64, u64, u64), bool>,
}

fn sorted_xattrs(node: Node<'_>) -> io::Result<Vec<Xattr>> {
    let mut x = meta::read_xattrs(node)?;
    x.sort();
    Ok(x)
}

impl Comparer {
    /// Every difference between the two inodes (`a`, `b` are their `stat`), in [`What`]
    /// order. Errors carry the side ("read xattrs of", ...) for the caller to name.
    /// `data_same`: the caller knows the content is unchanged (btrfs send said so).
    pub(crate) fn changes(
        &mut self,
        a: At<'_>,
        sa: &libc::stat64,
        b: At<'_>,
        sb: &libc::stat64,
        data_same: bool,
    ) -> Result<Vec<What>, (&'static str, bool, io::Error)> {
        let mut out = meta_changes(sa, sb);
        if out == [What::Type] {
            return Ok(out);
        }
        let xa = sorted_xattrs(a.node()).map_err(|e| ("read xattrs of", false, e))?;
        let xb = sorted_xattrs(b.node()).map_err(|e| ("read xattrs of", true, e))?;
        if xa != xb {
            out.push(What::Xattrs);
        }
        let kind = EntryType::of_mode(sa.st_mode);
        let differs = match kind {
            EntryType::Symlink => {
                let ta = readlink(a).map_err(|e| ("read link", false, e))?;
                let tb = readlink(b).map_err(|e| ("read link", true, e))?;
                ta != tb
            }
            EntryType::File if sa.st_size == sb.st_size && sa.st_size > 0 && !data_same => {
                !self.same_content(a, sa, b, sb)?
            }
            _ => false,
        };
        if differs {
            out.push(What::Content);
        }
        out.sort();
        Ok(out)
    }

    /// Same bytes? The same inode, then shared extents, then blake3 of both.
    fn same_content(
        &mut self,
        a: At<'_>,
        sa: &libc::stat64,
        b: At<'_>,
        sb: &libc::stat64,
    ) -> Result<bool, (&'static str, bool, io::Error)> {
        if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino) {
            return Ok(true);
        }
        let key = (sa.st_dev, sa.st_ino, sb.st_dev, sb.st_ino);
        let linked = sa.st_nlink > 1 || sb.st_nlink > 1;
        if linked {
            if let Some(v) = self.seen.get(&key) {
                return Ok(*v);
            }
        }
        let fa = open(a).map_err(|e| ("open", false, e))?;
        let fb = open(b).map_err(|e| ("open", true, e))?;
        let same =
            if extents::shared(fa.as_fd(), fb.as_fd()).map_err(|e| ("map extents of", false, e))? {
                true
            } else {
                self.hashed += 1;
                let ha = hash(fa, sa).map_err(|e| ("read to hash", false, e))?;
                let hb = hash(fb, sb).map_err(|e| ("read to hash", true, e))?;
                ha == hb
            };
        if linked {
            self.seen.insert(key, same);
        }
        Ok(same)
    }
}

fn readlink(at: At<'_>) -> io::Result<std::ffi::CString> {
    match at {
        At::Name(dir, name) => meta::readlink_at(dir, name),
        At::Root(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

fn open(at: At<'_>) -> io::Result<std::os::fd::OwnedFd> {
    match at {
        At::Name(dir, name) => meta::open_read_at(dir, name, 0),
        At::Root(_) => Err(io::Error::from_raw_os_error(libc::EISDIR)),
    }
}

/// The manifest's content hash ([`manifest::hash_fd`]) of the open file whose `stat` is
/// `st`: holes are not read.
pub(super) fn hash(fd: std::os::fd::OwnedFd, st: &libc::stat64) -> io::Result<blake3::Hash> {
    let f = std::fs::File::from(fd);
    manifest::hash_fd(&f, st.st_size as u64, st.st_blocks as u64)
}
