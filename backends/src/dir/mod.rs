//! The dir driver: the embedded default. Works on any filesystem and needs no extra disk.
//!
//! Volumes are directories, snapshots are exact copies ([`crate::copy`]) made with
//! reflinks where the filesystem has them (btrfs, xfs) and full sparse-aware copies
//! elsewhere. On-disk, under the pool's data root ([`crate::layout`]):
//!
//! ```text
//! volumes/<vol>/                       live state
//! snapshots/<vol>/<snap>/meta.json     {"created_at": "<RFC 3339, ns>"}: no valid meta, no snapshot
//! snapshots/<vol>/<snap>/tree/         the copy (snapshots/ is 0700: root only)
//! .tmp/                                objects being built; emptied by mount_pool
//! ```
//! and under the state directory `views/<vol>/<snap>`, the read-only bind mounts made by
//! `mount_snapshot`, and `mnt/`, the mount point of a loop-file pool (xfs, reflink=1).
//!
//! The data root is `state_dir/data` for [`PoolSource::StateDir`], the given directory for
//! [`PoolSource::Directory`] and `state_dir/mnt` for [`PoolSource::LoopFile`]; the driver
//! does not format devices.

mod pool;
mod snapshots;
#[cfg(test)]
mod tests;
mod volumes;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::backend::{Backend, PoolSource, PoolSpec};
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::Layout;
use crate::names::{SnapshotName, VolumeName};
use crate::types::*;

const DRIVER: &str = "dir";

/// The dir driver bound to one pool.
pub struct DirBackend {
    spec: PoolSpec,
    layout: Layout,
    /// Whether the pool's filesystem can reflink; probed once by create/mount_pool.
    reflink: OnceLock<bool>,
}

impl DirBackend {
    pub fn new(spec: PoolSpec) -> Self {
        let root = match &spec.source {
            PoolSource::Directory { path } => path.clone(),
            PoolSource::LoopFile { .. } => spec.state_dir.join("mnt"),
            PoolSource::StateDir | PoolSource::Device { .. } | PoolSource::Existing { .. } => {
                spec.state_dir.join("data")
            }
        };
        DirBackend {
            layout: Layout::new(root),
            spec,
            reflink: OnceLock::new(),
        }
    }

    fn cow_clone(&self) -> bool {
        if let Some(v) = self.reflink.get() {
            return *v;
        }
        if !self.layout.tmp().is_dir() {
            return false; // no pool yet: do not cache
        }
        *self.reflink.get_or_init(|| {
            crate::copy::reflink_supported(&self.layout.tmp()).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reflink probe failed; assuming full copies");
                false
            })
        })
    }

    /// `NotFound` unless the pool's layout is there (created and, for a loop file, mounted).
    fn check_pool(&self) -> Result<()> {
        if self.layout.marker().is_file() {
            Ok(())
        } else {
            Err(Error::not_found(Kind::Pool, &self.spec.name))
        }
    }

    /// The state directory, absolute and with symlinks resolved (mountinfo's form).
    fn state_dir_abs(&self) -> Result<PathBuf> {
        let s = &self.spec.state_dir;
        s.canonicalize().ctx("resolve state directory", s)
    }
}

/// Whether anything (even a dangling symlink) is at `p`.
fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

/// Writes `data` to `path` and fsyncs it.
fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).ctx("create", path)?;
    f.write_all(data).ctx("write", path)?;
    f.sync_all().ctx("sync", path)
}

/// fsyncs a directory (after renaming into it).
fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .ctx("sync", path)
}

impl Backend for DirBackend {
    fn info(&self) -> DriverInfo {
        DriverInfo {
            name: DRIVER,
            capabilities: Capabilities {
                cow_clone: self.cow_clone(),
                constant_time_snapshot: false,
                native_send: false,
                incremental_send: false,
                restore_any_snapshot: true,
                block_based: false,
                immutable_snapshots: false,
            },
        }
    }
    fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    fn create_pool(&self) -> Result<CreateAction<()>> {
        self.do_create_pool()
    }
    fn mount_pool(&self) -> Result<()> {
        self.do_mount_pool()
    }
    fn unmount_pool(&self) -> Result<()> {
        self.do_unmount_pool()
    }
    fn delete_pool(&self) -> Result<DeleteAction> {
        self.do_delete_pool()
    }
    fn pool_usage(&self) -> Result<Usage> {
        self.check_pool()?;
        self.fs_usage()
    }

    fn create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        self.do_create_volume(name)
    }
    fn clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        self.do_clone_volume(src, dst)
    }
    fn delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        self.do_delete_volume(name)
    }
    fn rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        self.do_rename_volume(from, to)
    }
    fn mount_volume(&self, name: &VolumeName) -> Result<PathBuf> {
        self.volume_path(name)
    }
    fn unmount_volume(&self, name: &VolumeName) -> Result<()> {
        self.volume_path(name).map(drop)
    }
    fn volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        let path = self.volume_path(name)?;
        let used = crate::copy::disk_usage(&path)?;
        Ok(Usage {
            used,
            ..self.fs_usage()?
        })
    }
    fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        self.do_list_volumes()
    }

    fn create_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<SnapshotInfo> {
        self.do_create_snapshot(volume, snap)
    }
    fn list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        self.do_list_snapshots(volume)
    }
    fn delete_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<DeleteAction> {
        self.do_delete_snapshot(volume, snap)
    }
    fn rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        self.do_rename_snapshot(volume, from, to)
    }
    fn restore_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        self.do_restore_snapshot(volume, snap)
    }
    fn mount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<PathBuf> {
        self.do_mount_snapshot(volume, snap)
    }
    fn unmount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        self.do_unmount_snapshot(volume, snap)
    }

    fn send(
        &self,
        _volume: &VolumeName,
        _snap: &SnapshotName,
        _base: Option<&SnapshotName>,
        _out: &mut dyn Write,
    ) -> Result<SendStats> {
        Err(Error::NotSupported {
            driver: DRIVER,
            op: "native send",
        })
    }
    fn receive(
        &self,
        _volume: &VolumeName,
        _snap: &SnapshotName,
        _input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        Err(Error::NotSupported {
            driver: DRIVER,
            op: "native send",
        })
    }
}
