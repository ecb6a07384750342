//! The paths worth comparing when a driver can name what changed (btrfs: the paths a
//! `btrfs send --no-data -p` stream touches, read in [`crate::btrfs`]), for
//! [`super::compare_paths`]. It skips names present in neither tree (a stream's
//! temporary orphan names) and expands directories present on one side only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Paths to compare: path relative to the subvolume root → whether to compare the whole
/// subtree under it (not only the entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    pub paths: BTreeMap<PathBuf, bool>,
    /// Paths named by a command that can change which inode a path holds or its data
    /// (create, link, unlink, rename, write, clone, truncate, update-extent...).
    pub touched: BTreeSet<PathBuf>,
    /// Whether anything was renamed (then no path's inode can be vouched for).
    pub renames: bool,
}

impl Candidates {
    pub fn add(&mut self, path: PathBuf, subtree: bool) {
        *self.paths.entry(path).or_insert(false) |= subtree;
    }

    /// Whether the file at `path` kept its inode and data: it was only named by metadata
    /// changes (utimes, chown, chmod, xattrs) and nothing was renamed, so every name is
    /// the path in both trees.
    pub fn data_unchanged(&self, path: &Path) -> bool {
        !self.renames && self.paths.contains_key(path) && !self.touched.contains(path)
    }
}
