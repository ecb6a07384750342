//! Pool operations: mount, unmount, delete, usage, and the helpers `create` shares.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::{subvol, BtrfsBackend};
use crate::backend::PoolSource;
use crate::error::{Error, IoContext, Kind, Result};
use crate::loopdev;
use crate::mounts::{self, FsKind};
use crate::probe::probe;
use crate::revert::Revert;
use crate::types::{DeleteAction, Usage};

/// Creates `path` (mode 0700) if missing; returns whether it did.
pub(super) fn make_dir(path: &Path) -> Result<bool> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create directory", path, e)),
    }
}

/// Removes `dir` if it exists and is empty; a directory with content is left alone.
pub(super) fn remove_empty_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()), // still a mount point
        Err(e) => Err(Error::io("remove directory", dir, e)),
    }
}

fn fs_name(kind: FsKind) -> String {
    match kind {
        FsKind::Btrfs => "btrfs".into(),
        FsKind::Xfs => "xfs".into(),
        FsKind::Ext4 => "ext4".into(),
        FsKind::Tmpfs => "tmpfs".into(),
        FsKind::Other(magic) => format!("a filesystem with magic {magic:#x}"),
    }
}

impl BtrfsBackend {
    pub(super) fn invalid(&self, op: &'static str, reason: String) -> Error {
        Error::Invalid {
            op,
            object: self.spec.name.to_string(),
            reason,
        }
    }

    /// Fails unless `path` is on btrfs.
    pub(super) fn check_btrfs(&self, op: &'static str, path: &Path) -> Result<()> {
        let kind = mounts::fs_type_of(path)?;
        if kind == FsKind::Btrfs {
            return Ok(());
        }
        Err(self.invalid(
            op,
            format!(
                "{} is not on a btrfs filesystem (it is {})",
                path.display(),
                fs_name(kind)
            ),
        ))
    }

    pub(super) fn attach(&self, file: &Path, rv: &mut Revert<'_>) -> Result<std::path::PathBuf> {
        let was_attached = loopdev::find(file)?.is_some();
        let dev = loopdev::attach(file)?;
        if !was_attached {
            let f = file.to_path_buf();
            rv.add("detach loop device", move || loopdev::detach(&f));
        }
        Ok(dev)
    }

    /// Mounts `dev` at the mount point (unless mounted already) and says whether it holds
    /// our pool. Registers the unmount if it mounted.
    pub(super) fn mount_fs(&self, dev: &Path, rv: &mut Revert<'_>) -> Result<bool> {
        let mnt = self.mount_point();
        if mounts::mount_at(&mnt)?.is_none() {
            make_dir(&mnt)?;
            mounts::mount(dev, &mnt, Some("btrfs"), None)?;
            rv.add("unmount pool", move || mounts::unmount(&mnt));
        }
        Ok(self.layout.marker().exists())
    }

    pub(super) fn do_mount_pool(&self) -> Result<()> {
        // Nothing to undo on failure: mounting twice is harmless and mount_pool is retried.
        let mut rv = Revert::new();
        match &self.spec.source {
            PoolSource::StateDir | PoolSource::Existing { .. } => {
                return Err(state_dir_refused(self))
            }
            PoolSource::Directory { path } => self.check_btrfs("mount pool", path)?,
            PoolSource::Device { path, .. } => {
                self.mount_fs(path, &mut rv)?;
            }
            PoolSource::LoopFile { path, .. } => {
                if !path.exists() {
                    return Err(Error::not_found(Kind::Pool, &self.spec.name));
                }
                let dev = self.attach(path, &mut rv)?;
                self.mount_fs(&dev, &mut rv)?;
            }
        }
        if !self.layout.marker().exists() {
            return Err(rv.fail(self.invalid(
                "mount pool",
                format!("{} holds no cairn pool", self.layout.root.display()),
            )));
        }
        rv.success();
        self.clean_leftovers()
    }

    /// Deletes what interrupted operations left: everything in `.tmp/`, and writable
    /// subvolumes in `snapshots/<vol>/` (receives that never finished).
    fn clean_leftovers(&self) -> Result<()> {
        let tmp = self.layout.tmp();
        make_dir(&tmp)?;
        for entry in std::fs::read_dir(&tmp).ctx("read directory", &tmp)? {
            let path = entry.ctx("read directory", &tmp)?.path();
            tracing::info!(path = %path.display(), "removing leftover of an interrupted operation");
            subvol::remove_tree(&path)?;
        }
        let root = self.layout.snapshots_root();
        for vol in std::fs::read_dir(&root).ctx("read directory", &root)? {
            let vol = vol.ctx("read directory", &root)?.path();
            if vol.is_dir() {
                self.delete_partial_receives(&vol)?;
            }
        }
        Ok(())
    }

    pub(super) fn do_unmount_pool(&self) -> Result<()> {
        match &self.spec.source {
            PoolSource::StateDir | PoolSource::Existing { .. } => Err(state_dir_refused(self)),
            PoolSource::Directory { .. } => Ok(()),
            PoolSource::Device { .. } => unmount_retrying(&self.mount_point()),
            PoolSource::LoopFile { path, .. } => {
                unmount_retrying(&self.mount_point())?;
                loopdev::detach(path)
            }
        }
    }

    pub(super) fn do_delete_pool(&self) -> Result<DeleteAction> {
        let present = match &self.spec.source {
            PoolSource::StateDir | PoolSource::Existing { .. } => {
                return Err(state_dir_refused(self))
            }
            PoolSource::Directory { .. } => self.layout.marker().exists(),
            PoolSource::Device { path, .. } => {
                if self.layout.marker().exists() {
                    true
                } else if probe(path)?.and_then(|s| s.fs_type).as_deref() == Some("btrfs") {
                    let mut rv = Revert::new();
                    let ours = self.mount_fs(path, &mut rv)?;
                    if ours {
                        rv.success();
                    } // else dropping `rv` unmounts it again
                    ours
                } else {
                    false
                }
            }
            PoolSource::LoopFile { path, .. } => {
                // A loop file that is there but not ours is an error, never deleted.
                path.exists() && {
                    self.do_mount_pool()?;
                    true
                }
            }
        };
        if present {
            let vols = self.volume_names()?;
            if !vols.is_empty() {
                return Err(Error::Busy {
                    op: "delete pool",
                    object: self.spec.name.to_string(),
                    reason: format!(
                        "it still holds volumes ({}): delete them first",
                        vols.join(", ")
                    ),
                });
            }
            let l = &self.layout;
            subvol::remove_tree(&l.tmp())?;
            subvol::remove_tree(&l.snapshots_root())?;
            subvol::remove_tree(&l.volumes())?;
            std::fs::remove_file(l.marker()).ctx("remove pool marker", l.marker())?;
        }
        match &self.spec.source {
            PoolSource::LoopFile { path, .. } => {
                self.do_unmount_pool()?;
                if path.exists() {
                    std::fs::remove_file(path).ctx("remove loop file", path)?;
                }
            }
            PoolSource::Device { .. } => self.do_unmount_pool()?,
            _ => {}
        }
        remove_empty_dir(&self.mount_point())?;
        remove_empty_dir(&self.spec.state_dir)?;
        Ok(if present {
            DeleteAction::Deleted
        } else {
            DeleteAction::Identity
        })
    }

    /// statvfs of the pool's filesystem.
    pub(super) fn fs_usage(&self) -> Result<Usage> {
        let root = &self.layout.root;
        let st = nix::sys::statvfs::statvfs(root).ctx("statvfs", root)?;
        let frsize = st.fragment_size() as u64;
        let total = st.blocks() as u64 * frsize;
        let used = (st.blocks() as u64 - st.blocks_free() as u64) * frsize;
        Ok(Usage {
            total,
            used,
            free: st.blocks_available() as u64 * frsize,
        })
    }
}

/// Unmounts, retrying for up to 10 s while the kernel says "target is busy": a child we
/// spawned (`btrfs send`, another thread's `btrfs receive`) may briefly hold a directory
/// fd that libbtrfsutil opened without `O_CLOEXEC` on another thread.
fn unmount_retrying(mnt: &Path) -> Result<()> {
    mounts::unmount_retrying(mnt, std::time::Duration::from_secs(10))
}

pub(super) fn state_dir_refused(b: &BtrfsBackend) -> Error {
    b.invalid(
        "create pool",
        "the btrfs driver needs --source: a btrfs mount, a device, or a loop file with --size"
            .into(),
    )
}
