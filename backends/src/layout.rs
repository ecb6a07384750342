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
//! so a crash mid-way leaves nothing there that looks real. [`rename_exchange`] and
//! [`rename_noreplace`] are atomic or fail (ZFS before 2.2 has no `renameat2` flags);
//! their emulated forms ([`rename_exchange_or_emulate`], [`rename_noreplace_or_emulate`])
//! are for callers that accept a non-atomic rename there, never for these.

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

/// Exchanges two paths atomically (`renameat2(RENAME_EXCHANGE)`): both must exist.
/// A filesystem without the flag (ZFS before 2.2) answers an error (EINVAL): callers
/// that rely on the exchange being atomic get nothing less.
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

/// Renames `from` to `to` atomically, failing with EEXIST instead of replacing
/// (`renameat2(RENAME_NOREPLACE)`). A filesystem without the flag (ZFS before 2.2)
/// answers an error (EINVAL).
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

/// What [`rename_exchange_or_emulate`] names the aside copy of `b`: `<b>.cairn-xchg`,
/// in `b`'s own directory.
const EXCHANGE_ASIDE_SUFFIX: &str = ".cairn-xchg";

/// [`rename_exchange`], or — only where the filesystem takes no `renameat2` flags (ZFS
/// before 2.2) — three plain renames: `b` aside to `<b>.cairn-xchg` beside it, `a` to
/// `b`, the aside to `a`; undone step by step if one fails. **Not atomic** there: a crash
/// between the renames leaves `b` missing or already replaced, and its old content at
/// `<b>.cairn-xchg`, in `b`'s own directory (never one that cairn empties), not lost. An
/// aside left by such a crash makes later exchanges of `b` fail (`AlreadyExists`, with an
/// error that names the aside and says to move it away) until someone moves it. Opt-in,
/// for callers that accept per-path non-atomicity (`diff::restore_paths`); nothing that
/// builds objects under `.tmp/`, which `mount_pool` empties, may use it.
pub fn rename_exchange_or_emulate(a: &Path, b: &Path) -> std::io::Result<()> {
    match rename_exchange(a, b) {
        Err(e) if is_einval(&e) && renameat2_flags_unsupported(b) => {
            tracing::debug!(a = %a.display(), b = %b.display(), "no RENAME_EXCHANGE here: three renames");
            exchange_by_renames(a, b, noreplace_by_check)
        }
        other => other,
    }
}

/// [`rename_noreplace`], or — only where the filesystem takes no `renameat2` flags — a
/// check that `to` does not exist, then a plain rename: cairn's locks keep others from
/// creating `to` in between. Opt-in, like [`rename_exchange_or_emulate`].
pub fn rename_noreplace_or_emulate(from: &Path, to: &Path) -> std::io::Result<()> {
    match rename_noreplace(from, to) {
        Err(e) if is_einval(&e) && renameat2_flags_unsupported(to) => noreplace_by_check(from, to),
        other => other,
    }
}

fn is_einval(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// A rename that fails with EEXIST when `to` exists (checked first, then renamed).
fn noreplace_by_check(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
    }
    std::fs::rename(from, to)
}

/// Where [`rename_exchange_or_emulate`] puts `b` aside: `<b>.cairn-xchg`.
fn aside_of(b: &Path) -> PathBuf {
    let mut aside = b.as_os_str().to_os_string();
    aside.push(EXCHANGE_ASIDE_SUFFIX);
    PathBuf::from(aside)
}

/// The exchange as three renames done by `step` (a rename that does not replace), undone
/// (with plain renames) if one fails.
fn exchange_by_renames(
    a: &Path,
    b: &Path,
    mut step: impl FnMut(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let aside = aside_of(b);
    step(b, &aside).map_err(|e| {
        if e.raw_os_error() != Some(libc::EEXIST) {
            return e;
        }
        std::io::Error::new(
            e.kind(),
            format!(
                "{} already exists: left by an interrupted restore, it holds an earlier {}: move it away and retry",
                aside.display(),
                b.display()
            ),
        )
    })?;
    let undo = |e: std::io::Error, moves: &[(&Path, &Path)]| -> std::io::Error {
        for (from, to) in moves {
            if let Err(u) = std::fs::rename(from, to) {
                return std::io::Error::new(
                    e.kind(),
                    format!(
                        "{e}; undoing the exchange failed too ({} to {}: {u}): the old content of {} is at {}",
                        from.display(),
                        to.display(),
                        b.display(),
                        aside.display()
                    ),
                );
            }
        }
        e
    };
    if let Err(e) = step(a, b) {
        return Err(undo(e, &[(&aside, b)]));
    }
    if let Err(e) = step(&aside, a) {
        return Err(undo(e, &[(b, a), (&aside, b)]));
    }
    Ok(())
}

/// True when the filesystem holding `path` (its parent directory: `path` may not exist)
/// takes no `renameat2` flags: ZFS before 2.2 answers EINVAL to every flag. Anything else
/// keeps its EINVAL (a directory moved into itself, ...).
fn renameat2_flags_unsupported(path: &Path) -> bool {
    let dir = path.parent().unwrap_or(path);
    crate::mounts::fs_type_of(dir).is_ok_and(|k| k.is_zfs())
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
        exchange_by_renames(&a, &b, noreplace_by_check).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("inner")).unwrap(), "in b");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "file a");
        // Same result as the atomic exchange, which this filesystem has.
        rename_exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "file a");
        // A missing side: an error, and the other side where it was.
        let missing = d.path().join("missing");
        assert!(exchange_by_renames(&missing, &b, noreplace_by_check).is_err());
        assert_eq!(std::fs::read_to_string(b.join("inner")).unwrap(), "in b");
        assert!(!d.path().join("b.cairn-xchg").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
        // Where the filesystem has the flags, the opt-in forms are the atomic ones.
        rename_exchange_or_emulate(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "file a");
        let e = rename_noreplace_or_emulate(&a, &b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    }

    /// The aside is beside `b`, under `b`'s name; a failed last rename is undone, and an
    /// old aside is never overwritten.
    #[test]
    fn exchange_by_renames_puts_b_aside_beside_it_and_undoes_a_failed_last_step() {
        let d = tempfile::tempdir().unwrap();
        let (stage, live) = (d.path().join("stage"), d.path().join("live"));
        std::fs::create_dir(&stage).unwrap();
        std::fs::create_dir(&live).unwrap();
        let (a, b) = (stage.join("etc"), live.join("etc"));
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "old").unwrap();
        let aside = live.join("etc.cairn-xchg");
        let mut seen = Vec::new();
        let mut calls = 0;
        let e = exchange_by_renames(&a, &b, |from: &Path, to: &Path| {
            calls += 1;
            seen.push((from.to_path_buf(), to.to_path_buf()));
            if calls == 3 {
                // b's old content is aside, beside b; a's is in place.
                assert_eq!(std::fs::read_to_string(&aside).unwrap(), "old");
                assert_eq!(std::fs::read_to_string(&b).unwrap(), "new");
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            }
            noreplace_by_check(from, to)
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        assert_eq!(seen[0], (b.clone(), aside.clone()));
        assert_eq!(seen[2], (aside.clone(), a.clone()));
        // Undone: both as they were, no aside left.
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
        assert!(!aside.exists());
        // An aside left by a crash is kept: the exchange refuses to run over it.
        std::fs::write(&aside, "left by a crash").unwrap();
        let e = exchange_by_renames(&a, &b, noreplace_by_check).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            e.to_string(),
            format!(
                "{} already exists: left by an interrupted restore, \
                 it holds an earlier {}: move it away and retry",
                aside.display(),
                b.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&aside).unwrap(), "left by a crash");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
    }

    #[test]
    fn renameat2_flags_are_supported_here() {
        let d = tempfile::tempdir().unwrap();
        assert!(!renameat2_flags_unsupported(&d.path().join("x")));
    }
}
