//! What changed between two states of a volume, and putting chosen paths back
//! (`cairn diff`, `cairn restore --path`).
//!
//! ## The answer
//! A [`TreeDiff`] lists every path that was added, modified or deleted, in tree order
//! (component-wise, the root `/` first), with its type and what changed. A directory added
//! or deleted lists every path under it too. Paths are shown as inside the container
//! (`/etc/hostname`); bytes that are not UTF-8 are written `\xNN`, a backslash `\\`, as in
//! [`crate::manifest`].
//!
//! ## How it is computed
//! - [`walk`] — any driver: both trees are walked together, directory by directory, with
//!   `*at()` calls that never follow symlinks. Per path it compares type, permission bits,
//!   owner, mtime (ns), xattrs, the link count, symlink targets and device numbers. File
//!   content counts as changed when sizes differ; when sizes are equal it is *unsure* (an
//!   equal mtime proves nothing: the dir driver's reflinked copies keep it, and writes can
//!   set it back), so it asks the filesystem whether both files map the very same extents
//!   (`FIEMAP`, after flushing dirty pages): shared extents are the same bytes. Only what
//!   that cannot prove is read and hashed ([`crate::manifest`]'s content hash: blake3
//!   of the file's blocks, holes skipped without being read).
//! - btrfs overrides [`crate::Backend::diff`]: `btrfs send --no-data -p` walks only the
//!   b-tree nodes the two subvolumes do not share, and names each path it touches; those
//!   paths (and subtrees, for renamed or one-sided directories) are the [`Candidates`]
//!   worth comparing, and the same comparison as the walk runs on those alone
//!   ([`compare_paths`]). A stream names an inode by one of its paths, so when a changed
//!   file has other hard-link names (which changed with it) the trees are walked instead,
//!   as they are when the stream cannot be read. So both paths give the same answer.
//!
//! ## Partial restore
//! [`restore_paths`] copies chosen paths of a snapshot over the live state (snapper's
//! `undochange`) with the exact copy engine ([`crate::copy`]); see its contract.

mod candidates;
mod compare;
mod extents;
mod path;
mod restore;
#[cfg(test)]
pub(crate) mod tests;
mod walk;

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::backend::Backend;
use crate::error::Result;
use crate::names::{SnapshotName, VolumeName};

pub use candidates::Candidates;
pub use path::TreePath;
pub use restore::{check_restore_paths, restore_paths, RestoreStats};
pub use walk::{compare_paths, walk};

/// One side of a diff: a snapshot of the volume, or its live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffSide<'a> {
    Snapshot(&'a SnapshotName),
    Live,
}

impl std::fmt::Display for DiffSide<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffSide::Snapshot(s) => write!(f, "snapshot {s}"),
            DiffSide::Live => f.write_str("the live state"),
        }
    }
}

/// The type of an entry, as `cairn diff` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Device,
    Fifo,
    Socket,
}

impl EntryType {
    /// From `st_mode`.
    pub fn of_mode(mode: u32) -> EntryType {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => EntryType::Dir,
            libc::S_IFLNK => EntryType::Symlink,
            libc::S_IFCHR | libc::S_IFBLK => EntryType::Device,
            libc::S_IFIFO => EntryType::Fifo,
            libc::S_IFSOCK => EntryType::Socket,
            _ => EntryType::File,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Device => "device",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
        }
    }
}

/// Added, modified or deleted (from the first tree to the second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Added,
    Modified,
    Deleted,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Modified => "modified",
            Status::Deleted => "deleted",
        }
    }
}

/// What differs in a modified path. `Content` covers a file's bytes, a symlink's target
/// and a device's number (and char vs block); `Links` is the hard-link count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum What {
    Type,
    Content,
    Mode,
    Owner,
    Mtime,
    Xattrs,
    Links,
}

impl What {
    pub fn as_str(&self) -> &'static str {
        match self {
            What::Type => "type",
            What::Content => "content",
            What::Mode => "mode",
            What::Owner => "owner",
            What::Mtime => "mtime",
            What::Xattrs => "xattrs",
            What::Links => "links",
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Relative to the volume's root (the root itself is empty); shown as `/...`.
    #[serde(serialize_with = "ser_path")]
    pub path: PathBuf,
    pub status: Status,
    /// The type in the second tree (in the first for a deleted path).
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// The type in the first tree, when the type changed.
    pub old_type: Option<EntryType>,
    /// What differs, for a modified path (in this order); empty otherwise.
    pub changes: Vec<What>,
}

impl Change {
    /// The path as inside the container: `/etc/hostname`, `/` for the root.
    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

fn ser_path<S: Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&display_path(p))
}

/// `/` followed by the escaped relative path ([`crate::manifest`]'s escaping).
pub fn display_path(rel: &Path) -> String {
    format!("/{}", crate::manifest::escape(rel.as_os_str()))
}

/// How a diff was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// [`walk`] over both trees.
    Walk,
    /// `btrfs send --no-data -p` names the candidates; only they are compared.
    BtrfsSend,
}

/// The differences between two trees, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDiff {
    pub changes: Vec<Change>,
    pub method: Method,
    /// Files whose content was read and hashed because nothing cheaper could tell.
    pub hashed: u64,
}

/// The generic diff of a volume's two states: mounts them, walks both, and unmounts the
/// snapshot views it mounted — not those that were mounted already (the caller's), and
/// also when mounting the second side or the walk fails. What [`Backend::diff`] does
/// unless a driver has a faster way.
///
/// Whether a view was mounted already is read from the mount table (the drivers that use
/// this present a snapshot view as a mount point at the path `mount_snapshot` returns).
pub fn walk_backend<B: Backend + ?Sized>(
    b: &B,
    volume: &VolumeName,
    from: DiffSide<'_>,
    to: DiffSide<'_>,
) -> Result<TreeDiff> {
    let a = Mounted::side(b, volume, from)?;
    let z = Mounted::side(b, volume, to)?;
    walk(&a.path, &z.path)
}

/// One side of [`walk_backend`], mounted; a snapshot view this mounted is unmounted on
/// drop.
struct Mounted<'a, B: Backend + ?Sized> {
    b: &'a B,
    volume: &'a VolumeName,
    /// The snapshot to unmount on drop: one whose view this mounted.
    ours: Option<&'a SnapshotName>,
    path: PathBuf,
}

impl<'a, B: Backend + ?Sized> Mounted<'a, B> {
    fn side(b: &'a B, volume: &'a VolumeName, side: DiffSide<'a>) -> Result<Self> {
        let (ours, path) = match side {
            DiffSide::Live => (None, b.mount_volume(volume)?),
            DiffSide::Snapshot(s) => {
                let before = crate::mounts::mounts()?;
                let path = b.mount_snapshot(volume, s)?;
                let already = before.iter().any(|m| m.mount_point == path);
                ((!already).then_some(s), path)
            }
        };
        Ok(Mounted {
            b,
            volume,
            ours,
            path,
        })
    }
}

impl<B: Backend + ?Sized> Drop for Mounted<'_, B> {
    fn drop(&mut self) {
        if let Some(s) = self.ours {
            if let Err(e) = self.b.unmount_snapshot(self.volume, s) {
                tracing::warn!(volume = %self.volume, snapshot = %s, error = %e, "unmounting a snapshot after diff failed");
            }
        }
    }
}
