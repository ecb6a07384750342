//! The trait every storage driver implements, and how a caller gets one.
//!
//! A `Backend` value is one pool opened through one driver (as in Incus, a driver
//! instance is per pool). It knows pools, volumes and snapshots, never containers.
//! It holds no lock: callers serialise operations on the same object (the CLI takes a
//! lock per object); operations on different volumes may run concurrently.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::names::{PoolName, SnapshotName, VolumeName};
use crate::types::{
    Bytes, CloneSource, CreateAction, DeleteAction, DriverInfo, SendStats, SnapshotInfo, Usage,
    VolumeInfo,
};

/// Which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriverKind {
    Dir,
    Btrfs,
    LvmThin,
    Zfs,
}

impl DriverKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DriverKind::Dir => "dir",
            DriverKind::Btrfs => "btrfs",
            DriverKind::LvmThin => "lvm",
            DriverKind::Zfs => "zfs",
        }
    }
}

impl std::str::FromStr for DriverKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dir" => Ok(DriverKind::Dir),
            "btrfs" => Ok(DriverKind::Btrfs),
            "lvm" | "lvm-thin" => Ok(DriverKind::LvmThin),
            "zfs" => Ok(DriverKind::Zfs),
            other => Err(Error::Invalid {
                op: "choose driver",
                object: format!("{other:?}"),
                reason: "unknown driver: use dir, btrfs, lvm or zfs".into(),
            }),
        }
    }
}

impl std::fmt::Display for DriverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a pool's storage comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PoolSource {
    /// Inside the pool's state directory (the dir driver's default: no extra disk).
    StateDir,
    /// An existing directory or mounted filesystem; the pool keeps its data under it.
    Directory { path: PathBuf },
    /// A block device the driver formats (refused if it holds a filesystem unless `force`).
    Device { path: PathBuf, force: bool },
    /// A sparse file of `size` the driver creates, attaches to a loop device and formats;
    /// re-attached by `mount_pool` after a reboot.
    LoopFile { path: PathBuf, size: Bytes },
    /// Storage the driver did not make and never deletes: an LVM thin pool (`vg/thinpool`)
    /// or a ZFS dataset that becomes the pool's root (`tank/cairn`). Drivers without such
    /// a notion refuse it.
    Existing { name: String },
}

/// Everything a driver needs to open a pool. The caller persists it; the driver keeps
/// no configuration of its own beyond what it stores inside the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub name: PoolName,
    pub source: PoolSource,
    /// A directory the driver owns for this pool: mount points, and the data itself for
    /// `PoolSource::StateDir`. Created by `create_pool`.
    pub state_dir: PathBuf,
}

/// One storage driver bound to one pool. Every method's contract is stated on it;
/// "idempotent" means calling it again after success returns `Identity` or the same
/// value and changes nothing.
pub trait Backend: Send + Sync {
    /// The driver's name and capabilities.
    fn info(&self) -> DriverInfo;

    /// The spec this pool was opened with.
    fn spec(&self) -> &PoolSpec;

    // ---- pools ----

    /// Creates the pool's storage as the spec says (formatting a device or loop file,
    /// laying out directories) and mounts it. Idempotent: a pool that already exists
    /// with our layout is `Identity`. Refuses a source that holds something else.
    /// On failure, whatever it made is removed again.
    fn create_pool(&self) -> Result<CreateAction<()>>;

    /// Makes an existing pool usable (re-attaches its loop file, mounts it) and removes
    /// leftovers of interrupted operations. Idempotent.
    fn mount_pool(&self) -> Result<()>;

    /// Unmounts the pool (and detaches its loop device). Idempotent. Volumes stay.
    fn unmount_pool(&self) -> Result<()>;

    /// Deletes the pool: refuses while it holds volumes (`Busy`). Removes what
    /// `create_pool` made (for a loop file, the file). Idempotent.
    fn delete_pool(&self) -> Result<DeleteAction>;

    /// Total, used and free bytes of the pool's storage.
    fn pool_usage(&self) -> Result<Usage>;

    // ---- volumes ----

    /// Creates an empty volume. Idempotent if an empty volume of that name exists;
    /// `AlreadyExists` if it exists with content.
    fn create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>>;

    /// Creates `dst` as a writable copy of `src` (copy-on-write where the driver can).
    /// `AlreadyExists` if `dst` exists. Atomic: an interrupted clone leaves no `dst`.
    fn clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()>;

    /// Deletes a volume and all its snapshots. Idempotent (`Identity` if absent).
    fn delete_volume(&self, name: &VolumeName) -> Result<DeleteAction>;

    /// Renames a volume, its snapshots following. `NotFound` / `AlreadyExists`.
    fn rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()>;

    /// Makes the volume's files reachable and returns the path of its root. Idempotent.
    fn mount_volume(&self, name: &VolumeName) -> Result<PathBuf>;

    /// Undoes `mount_volume`. Idempotent.
    fn unmount_volume(&self, name: &VolumeName) -> Result<()>;

    /// Space used by the volume's live state (not its snapshots).
    fn volume_usage(&self, name: &VolumeName) -> Result<Usage>;

    /// All volumes of the pool, sorted by name.
    fn list_volumes(&self) -> Result<Vec<VolumeInfo>>;

    // ---- snapshots ----

    /// Takes a read-only snapshot of the volume's live state. `AlreadyExists` if the
    /// name is taken. Atomic: after a crash the snapshot either exists whole or not at all.
    fn create_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<SnapshotInfo>;

    /// The volume's snapshots, oldest first, with their creation time as stored by the
    /// storage. `NotFound` if the volume does not exist.
    fn list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>>;

    /// Deletes one snapshot. Idempotent. Clones made from it stay usable.
    fn delete_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<DeleteAction>;

    /// Renames a snapshot; its creation time is kept.
    fn rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()>;

    /// Replaces the volume's live state with the snapshot's, keeping every snapshot
    /// (newer ones included). Atomic from the caller's view: on failure the live state is
    /// the old one. The volume must not be in use.
    fn restore_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()>;

    /// A read-only view of the snapshot's files, and the path of its root. Writing there
    /// fails even for root. Idempotent.
    fn mount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<PathBuf>;

    /// Undoes `mount_snapshot`. Idempotent.
    fn unmount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()>;

    /// What changed from `from` to `to` (a snapshot or the live state) of the volume:
    /// every added, modified and deleted path, in tree order ([`crate::diff`]). Read-only.
    /// The default walks both trees ([`crate::diff::walk`]); drivers with a cheaper
    /// source of the same answer override it. Snapshot views it mounts are unmounted
    /// again (`mount_snapshot` again to keep using one). `NotFound` for a missing snapshot.
    fn diff(
        &self,
        volume: &VolumeName,
        from: crate::diff::DiffSide<'_>,
        to: crate::diff::DiffSide<'_>,
    ) -> Result<crate::diff::TreeDiff> {
        crate::diff::walk_backend(self, volume, from, to)
    }

    // ---- native send/receive ----

    /// Writes a driver-native stream of `snap` to `out`: full, or incremental against
    /// `base` (an older snapshot of the same volume that the receiver already has).
    /// `NotSupported` when `info().capabilities.native_send` is false.
    fn send(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats>;

    /// Reads a stream written by `send` of the same driver and stores it as snapshot
    /// `snap` of `volume`. If the volume does not exist it is created with the snapshot's
    /// content as its live state. For an incremental stream the base must be present.
    /// Atomic: a failed or interrupted receive leaves no snapshot behind.
    fn receive(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo>;
}

/// Opens a pool through the named driver. Does not touch the storage: call
/// `create_pool` or `mount_pool` next.
pub fn open(driver: DriverKind, spec: PoolSpec) -> Result<Box<dyn Backend>> {
    match driver {
        DriverKind::Dir => Ok(Box::new(crate::dir::DirBackend::new(spec))),
        DriverKind::Btrfs => Ok(Box::new(crate::btrfs::BtrfsBackend::new(spec))),
        DriverKind::LvmThin => Ok(Box::new(crate::lvm::LvmBackend::new(spec))),
        DriverKind::Zfs => Ok(Box::new(crate::zfs::ZfsBackend::new(spec))),
    }
}
