//! The directory layout shared by the directory-based drivers (dir, btrfs):
//!
//! ```text
//! <root>/volumes/<volume>             the live state of each volume
//! <root>/snapshots/<volume>/<snap>    its snapshots (mode 0700: root only)
//! <root>/.tmp/                        objects being built; renamed into place when whole,
//!                                     emptied by mount_pool (leftovers of a crash)
//! <root>/.cairn-pool                  marker: this directory is a cairn pool
//! ```
//! Objects appear in `volumes/` or `snapshots/` only by an atomic rename from `.tmp/`,
//! so a crash mid-way leaves nothing there that looks real.

use std::path::{Path, PathBuf};

use crate::names::{SnapshotName, VolumeName};

pub const MARKER: &str = ".cairn-pool";

#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER)
    }
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    pub fn volume(&self, v: &VolumeName) -> PathBuf {
        self.volumes().join(v)
    }
    pub fn snapshots_root(&self) -> PathBuf {
        self.root.join("snapshots")
    }
    pub fn snapshots(&self, v: &VolumeName) -> PathBuf {
        self.snapshots_root().join(v)
    }
    pub fn snapshot(&self, v: &VolumeName, s: &SnapshotName) -> PathBuf {
        self.snapshots(v).join(s)
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join(".tmp")
    }
    /// A fresh, unused path under `.tmp/` for building `what`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.tmp()
            .join(format!("{what}.{}.{n}", std::process::id()))
    }
}

/// Atomically exchanges two paths (`renameat2(RENAME_EXCHANGE)`): both must exist.
pub fn rename_exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        a,
        nix::fcntl::AT_FDCWD,
        b,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(std::io::Error::from)
}

/// Renames `from` to `to`, failing with EEXIST instead of replacing (`RENAME_NOREPLACE`).
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        from,
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(std::io::Error::from)
}
