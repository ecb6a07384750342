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

/// Exchanges two paths (`renameat2(RENAME_EXCHANGE)`, atomic): both must exist.
///
/// A filesystem without the flag (ZFS before 2.2 answers EINVAL) gets three plain
/// renames instead — `b` aside to `<a>.cairn-xchg`, `a` to `b`, the aside to `a` — undone
/// step by step if one fails. Not atomic there: a crash in between leaves `b`'s old
/// content at the aside name, never lost.
pub fn rename_exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    match nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        a,
        nix::fcntl::AT_FDCWD,
        b,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    ) {
        Err(nix::errno::Errno::EINVAL) if renameat2_unsupported(a) => {}
        other => return other.map_err(std::io::Error::from),
    }
    exchange_by_renames(a, b)
}

/// [`rename_exchange`] without `RENAME_EXCHANGE`: three renames, undone on failure.
fn exchange_by_renames(a: &Path, b: &Path) -> std::io::Result<()> {
    let mut aside = a.as_os_str().to_os_string();
    aside.push(".cairn-xchg");
    let aside = std::path::PathBuf::from(aside);
    rename_noreplace(b, &aside)?;
    if let Err(e) = rename_noreplace(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(e);
    }
    if let Err(e) = rename_noreplace(&aside, a) {
        let _ = std::fs::rename(b, a);
        let _ = std::fs::rename(&aside, b);
        return Err(e);
    }
    Ok(())
}

/// Renames `from` to `to`, failing with EEXIST instead of replacing (`RENAME_NOREPLACE`).
/// Where the filesystem lacks the flag (ZFS before 2.2), checks that `to` does not exist
/// and renames: cairn's locks keep others from creating `to` in between.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    match nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        from,
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    ) {
        Err(nix::errno::Errno::EINVAL) if renameat2_unsupported(from) => {}
        other => return other.map_err(std::io::Error::from),
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
    }
    std::fs::rename(from, to)
}

/// True when the filesystem holding `path` takes no `renameat2` flags: ZFS before 2.2
/// answers EINVAL to every flag. Anything else keeps its EINVAL (a directory moved into
/// itself, ...).
fn renameat2_unsupported(path: &Path) -> bool {
    const ZFS_SUPER_MAGIC: i64 = 0x2fc12fc1;
    let dir = path.parent().unwrap_or(path);
    nix::sys::statfs::statfs(dir).is_ok_and(|s| s.filesystem_type().0 as i64 == ZFS_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_by_renames_swaps_and_undoes_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, "file a").unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("inner"), "in b").unwrap();
        exchange_by_renames(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("inner")).unwrap(), "in b");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "file a");
        // Same result as the atomic exchange, which this filesystem has.
        rename_exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "file a");
        // A missing side: an error, and the other side where it was.
        let missing = d.path().join("missing");
        assert!(exchange_by_renames(&missing, &b).is_err());
        assert_eq!(std::fs::read_to_string(b.join("inner")).unwrap(), "in b");
        assert!(!d.path().join("missing.cairn-xchg").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }
}
