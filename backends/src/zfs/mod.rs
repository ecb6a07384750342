//! The ZFS driver: volumes are datasets, snapshots ZFS snapshots, clones `zfs clone`.
//!
//! ## Pools
//! - `Device` / `LoopFile`: cairn creates a zpool on the device (refused if `blkid -p`
//!   finds anything on it, unless `force`) or on the file itself (a file vdev: no loop
//!   device). The zpool is named `cairn-<pool>-<hash of the state dir>` (pools of the
//!   same name in different state directories never collide) and made with
//!   `cachefile=none`: nothing imports it behind cairn's back; `mount_pool` imports it
//!   (`zpool import -d <device or file>`), `unmount_pool` exports it. The pool's root
//!   dataset is `<zpool>/cairn`.
//! - `Existing { name }`: the root dataset is `name` inside a zpool that exists and is
//!   imported; cairn creates it (with missing parents) and deletes only it.
//!
//! A zpool or root dataset is ours when its `cairn:managed` user property is set locally
//! to the pool's name. One that exists without it is never touched: create, mount and
//! delete refuse it (`zfs get`, which tells a local value from an inherited one). The
//! other operations read the property in the one `zfs list` they make anyway (every
//! dataset below the root shows the root's value) and refuse to go on unless it is the
//! pool's name; unmounting a volume or snapshot touches only a mount point under the
//! state directory and checks nothing.
//!
//! ## Commands
//! Under qemu TCG a `zfs` process costs 0.2–3 s, so an operation makes one listing
//! (`zfs list -H -p -t filesystem,snapshot -o` [`parse::LIST_COLS`] of the volume's
//! container, of its live dataset or of `volumes/`) and leaves the rest to the command
//! that does the work: `zfs snapshot`, `clone` and `rename` refuse what is missing or
//! taken, typed by [`cli::typed`]. With `CAIRN_LOG=debug` every command is logged inside
//! a `zfs{op=...}` span.
//!
//! ## Datasets
//! See [`naming::Datasets`]: every volume is a container dataset holding `live` and
//! any number of history datasets. `mountpoint=legacy` is set on the root and inherited,
//! so ZFS never mounts anything itself; cairn mounts `live` at
//! `<state_dir>/volumes/<vol>` and a snapshot (read-only: ZFS mounts snapshots
//! read-only, EROFS even for root) at `<state_dir>/snapshots/<vol>/<snap>` with
//! `mount -t zfs`. The root also sets `acltype=posixacl` and `xattr=sa` (container
//! images carry ACLs and xattrs). Names map 1:1 to ZFS components ([`naming`]); user
//! properties inherit in ZFS, so snapshots carry `cairn:name`/`cairn:created_at` and
//! containers `cairn:volume`/`cairn:volume_created_at` — different names, so a snapshot
//! never shows its container's values.
//!
//! ## Times
//! `cairn:created_at` (nanoseconds) is set atomically with the snapshot
//! (`zfs snapshot -o`); a snapshot without it (received) falls back to ZFS's `creation`
//! (seconds). Ties are broken by `createtxg`.
//!
//! ## Restore to any snapshot, keeping newer ones
//! The snapshots of a volume are those of every dataset in its container. Restoring
//! snapshot `s` (in dataset `D`, `live` or a history dataset):
//! 1. `zfs clone D@s <vol>/new.<id>`, then `zfs promote` it: `s` and the snapshots before
//!    it move to the new dataset, `D` becomes its clone and keeps the newer ones;
//! 2. `zfs rename <vol>/live <vol>/h.<id>`, `zfs rename <vol>/new.<id> <vol>/live`;
//! 3. a history dataset left without snapshots is destroyed (restoring the newest
//!    snapshot therefore leaves no history at all).
//!
//! Newer snapshots stay in the history datasets: listed, mountable, restorable, cloneable.
//! A crash between the two renames leaves a container without `live` and a `new.*`:
//! `mount_pool` renames it into place (rolls forward). A crash before leaves a `new.*`
//! that `mount_pool` turns into history (or destroys, if it holds no snapshots).
//!
//! ## Deleting what clones depend on
//! ZFS cannot destroy a snapshot that has clones. Such a snapshot is renamed to a hidden
//! `:t` name and marked for deferred destruction (`zfs destroy -d`): it disappears from
//! listings at once and from the disk when its last clone goes. A deleted volume whose
//! snapshots have clones is moved to `<root>/deleted/` and destroyed by a later
//! `delete_volume`, `mount_pool` or `delete_pool` once its clones are gone (what Incus
//! does too); its space is held until then. Clones are never promoted behind the user's
//! back and never broken.
//!
//! ## Why the CLI and not libzetta
//! libzetta 0.5 links `libzfs_core`/`libnvpair` through `libzetta-zfs-core-sys` (the
//! headers and libraries must be installed to build, and this build host has no ZFS),
//! its `zfs` side shells out to the CLI anyway and parses human-readable output, and it
//! has no holds. The CLI with `-H -p` output parsed by the pure functions in [`parse`]
//! does all of it.

mod cli;
mod naming;
mod parse;
mod pool;
mod send;
mod snapshots;
mod volumes;

#[cfg(test)]
mod tests;

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::backend::{Backend, PoolSource, PoolSpec};
use crate::error::{Error, Kind, Result};
use crate::names::{SnapshotName, VolumeName};
use crate::types::{
    Capabilities, CloneSource, CreateAction, DeleteAction, DriverInfo, SendStats, SnapshotInfo,
    Usage, VolumeInfo,
};
use naming::Datasets;

pub(crate) const DRIVER: &str = "zfs";

/// The user property that marks a zpool or root dataset as cairn's (value: pool name).
pub(crate) const MANAGED: &str = "cairn:managed";

/// A debug span around one driver operation: with `CAIRN_LOG=debug` every command it
/// runs is logged inside `zfs{op=...}`, so the `zfs`/`zpool` calls of each operation can
/// be counted.
fn op_span(op: &'static str) -> tracing::span::EnteredSpan {
    tracing::debug_span!("zfs", op).entered()
}

/// One ZFS pool.
pub struct ZfsBackend {
    spec: PoolSpec,
    ds: Datasets,
    /// The zpool holding the root dataset.
    zpool: String,
}

impl ZfsBackend {
    /// Binds the driver to `spec`; touches nothing.
    pub fn new(spec: PoolSpec) -> Self {
        let (zpool, root) = match &spec.source {
            PoolSource::Existing { name } => {
                let name = name.trim_end_matches('/').to_string();
                let zpool = name.split('/').next().unwrap_or_default().to_string();
                (zpool, name)
            }
            _ => {
                let z = naming::zpool_name(spec.name.as_str(), &spec.state_dir);
                let root = format!("{z}/cairn");
                (z, root)
            }
        };
        ZfsBackend {
            spec,
            ds: Datasets { root },
            zpool,
        }
    }

    fn invalid(&self, op: &'static str, reason: String) -> Error {
        Error::Invalid {
            op,
            object: self.spec.name.to_string(),
            reason,
        }
    }

    fn snapshot_not_found(volume: &VolumeName, snap: &SnapshotName) -> Error {
        Error::not_found(Kind::Snapshot, format!("{volume}/{snap}"))
    }

    /// Where the live state of a volume is mounted.
    fn volume_mount(&self, v: &VolumeName) -> PathBuf {
        self.spec
            .state_dir
            .join("volumes")
            .join(naming::encode(v.as_str()))
    }

    /// Where a snapshot's read-only view is mounted.
    fn snapshot_mount(&self, v: &VolumeName, s: &SnapshotName) -> PathBuf {
        self.spec
            .state_dir
            .join("snapshots")
            .join(naming::encode(v.as_str()))
            .join(naming::encode(s.as_str()))
    }
}

impl Backend for ZfsBackend {
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
        let _op = op_span("create_pool");
        self.do_create_pool()
    }

    fn mount_pool(&self) -> Result<()> {
        let _op = op_span("mount_pool");
        self.do_mount_pool()
    }

    fn unmount_pool(&self) -> Result<()> {
        let _op = op_span("unmount_pool");
        self.do_unmount_pool()
    }

    fn delete_pool(&self) -> Result<DeleteAction> {
        let _op = op_span("delete_pool");
        self.do_delete_pool()
    }

    fn pool_usage(&self) -> Result<Usage> {
        let _op = op_span("pool_usage");
        self.do_pool_usage()
    }

    fn create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        let _op = op_span("create_volume");
        self.do_create_volume(name)
    }

    fn clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        let _op = op_span("clone_volume");
        self.do_clone_volume(src, dst)
    }

    fn delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        let _op = op_span("delete_volume");
        self.do_delete_volume(name)
    }

    fn rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        let _op = op_span("rename_volume");
        self.do_rename_volume(from, to)
    }

    fn mount_volume(&self, name: &VolumeName) -> Result<PathBuf> {
        let _op = op_span("mount_volume");
        self.do_mount_volume(name)
    }

    /// Touches no dataset (only a mount point under the state directory): no ownership
    /// check, no `zfs` process.
    fn unmount_volume(&self, name: &VolumeName) -> Result<()> {
        let _op = op_span("unmount_volume");
        pool::unmount_dir(&self.volume_mount(name))
    }

    fn volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        let _op = op_span("volume_usage");
        self.do_volume_usage(name)
    }

    fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        let _op = op_span("list_volumes");
        self.do_list_volumes()
    }

    fn create_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<SnapshotInfo> {
        let _op = op_span("create_snapshot");
        self.do_create_snapshot(volume, snap)
    }

    fn list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        let _op = op_span("list_snapshots");
        Ok(self
            .snapshots_of(volume)?
            .into_iter()
            .map(|s| s.info)
            .collect())
    }

    fn delete_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<DeleteAction> {
        let _op = op_span("delete_snapshot");
        self.do_delete_snapshot(volume, snap)
    }

    fn rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        let _op = op_span("rename_snapshot");
        self.do_rename_snapshot(volume, from, to)
    }

    fn restore_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        let _op = op_span("restore_snapshot");
        self.do_restore_snapshot(volume, snap)
    }

    fn mount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<PathBuf> {
        let _op = op_span("mount_snapshot");
        self.do_mount_snapshot(volume, snap)
    }

    /// Like `unmount_volume`: a mount point under the state directory, nothing else.
    fn unmount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        let _op = op_span("unmount_snapshot");
        pool::unmount_dir(&self.snapshot_mount(volume, snap))
    }

    fn send(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        let _op = op_span("send");
        self.do_send(volume, snap, base, out)
    }

    fn receive(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        let _op = op_span("receive");
        self.do_receive(volume, snap, input)
    }
}
