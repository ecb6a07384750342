//! The btrfs driver: volumes are subvolumes, snapshots read-only subvolume snapshots.
//!
//! ## On disk
//! The pool root is a btrfs filesystem (or a directory on one) laid out as [`Layout`]
//! says: `volumes/<vol>` is a subvolume, `snapshots/<vol>/<snap>` a read-only snapshot
//! of it, `.tmp/` holds objects on their way in or out, `.cairn-pool` marks the root.
//! For `Device` and `LoopFile` sources the filesystem is mounted at `<state_dir>/mnt`.
//!
//! ## Atomicity
//! - Creating a subvolume or a snapshot is one ioctl, so both are made in their final
//!   place: after a crash they exist whole or not at all. Clones too.
//! - Deleting a volume first moves its snapshots directory and then the volume into
//!   `.tmp/` (two renames), then deletes them there; `mount_pool` empties `.tmp/`.
//! - Restore makes a writable snapshot in `.tmp/` and swaps it with the volume by
//!   `renameat2(RENAME_EXCHANGE)`.
//! - The kernel refuses to move a read-only subvolume to another directory (EROFS: its
//!   `..` would change), so `btrfs receive` writes straight into `snapshots/<vol>/` and the
//!   result is renamed within that directory. A subvolume being received is writable
//!   until `btrfs receive` finishes, so listings skip writable subvolumes there and
//!   `mount_pool` deletes them as leftovers of an interrupted receive.
//! - Snapshot creation times are the subvolumes' `otime` (nanoseconds), read back from
//!   btrfs: the storage is the source of truth.

mod create;
mod diff;
mod pool;
mod send;
mod snapshots;
mod stream;
mod subvol;
mod volumes;

#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::backend::{Backend, PoolSource, PoolSpec};
use crate::error::{Error, Kind, Result};
use crate::layout::Layout;
use crate::names::{SnapshotName, VolumeName};
use crate::types::{
    Capabilities, CloneSource, CreateAction, DeleteAction, DriverInfo, SendStats, SnapshotInfo,
    Usage, VolumeInfo,
};

pub(crate) const DRIVER: &str = "btrfs";

/// One btrfs pool.
pub struct BtrfsBackend {
    spec: PoolSpec,
    layout: Layout,
}

impl BtrfsBackend {
    /// Binds the driver to `spec`; touches nothing.
    pub fn new(spec: PoolSpec) -> Self {
        let root = match &spec.source {
            PoolSource::Directory { path } => path.clone(),
            _ => spec.state_dir.join("mnt"),
        };
        BtrfsBackend {
            spec,
            layout: Layout::new(root),
        }
    }

    /// Where `Device` and `LoopFile` pools are mounted.
    fn mount_point(&self) -> PathBuf {
        self.spec.state_dir.join("mnt")
    }

    /// Fails unless the pool is there and mounted (its marker is visible).
    fn require_pool(&self) -> Result<()> {
        if self.layout.marker().exists() {
            Ok(())
        } else {
            Err(Error::Invalid {
                op: "use pool",
                object: self.spec.name.to_string(),
                reason: format!(
                    "no cairn pool is mounted at {} (create or mount the pool first)",
                    self.layout.root.display()
                ),
            })
        }
    }

    /// The error for a snapshot that does not exist.
    fn snapshot_not_found(volume: &VolumeName, snap: &SnapshotName) -> Error {
        Error::not_found(Kind::Snapshot, format!("{volume}/{snap}"))
    }
}

impl Backend for BtrfsBackend {
    fn info(&self) -> DriverInfo {
        DriverInfo {
            name: DRIVER,
            capabilities: Capabilities {
                cow_clone: true,
                constant_time_snapshot: true,
                native_send: true,
                incremental_send: true,
                restore_any_snapshot: true,
                block_based: false,
                immutable_snapshots: true,
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
        self.require_pool()?;
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

    fn unmount_volume(&self, _name: &VolumeName) -> Result<()> {
        Ok(()) // a subvolume is reachable as long as the pool is mounted
    }

    fn volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        self.do_volume_usage(name)
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
        // The read-only subvolume itself: the kernel refuses writes (EROFS), even root's.
        self.snapshot_path(volume, snap)
    }

    fn unmount_snapshot(&self, _volume: &VolumeName, _snap: &SnapshotName) -> Result<()> {
        Ok(())
    }

    fn diff(
        &self,
        volume: &VolumeName,
        from: crate::diff::DiffSide<'_>,
        to: crate::diff::DiffSide<'_>,
    ) -> Result<crate::diff::TreeDiff> {
        self.do_diff(volume, from, to)
    }

    fn send(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        self.do_send(volume, snap, base, out)
    }

    fn receive(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        self.do_receive(volume, snap, input)
    }
}
