//! # cairn-backends: the storage layer
//!
//! One trait, [`Backend`], and one driver per storage technology: `dir` (plain
//! directories, reflinks where the filesystem has them), `btrfs` (subvolumes), and later
//! `lvm-thin` and `zfs`. A driver manages **pools**, **volumes** in a pool and read-only
//! **snapshots** of a volume; it never knows what a container is.
//!
//! ## What a reader must know
//! - **One value per pool.** [`open`] binds a driver to a [`PoolSpec`]; the caller stores
//!   the spec (the CLI keeps it in its database). Drivers keep no other configuration.
//! - **The storage is the source of truth.** Snapshot creation times live in the storage
//!   (btrfs subvolume `otime`, the dir driver's per-snapshot `meta.json`), never only in a
//!   caller's database.
//! - **Atomic appearance.** Directory-based drivers build new objects under `<pool>/.tmp/`
//!   and rename them into place when whole ([`layout`]); `mount_pool` clears `.tmp/`. So a
//!   crash or `kill -9` mid-way leaves no half object that a listing would return.
//! - **Idempotence is in the types.** Creates return [`CreateAction`], deletes
//!   [`DeleteAction`]; `Identity` means "already so, nothing changed".
//! - **Rollback.** Multi-step operations register undos in a [`revert::Revert`]; a failure
//!   runs them, and an undo that fails too is reported beside the original error.
//! - **Locking.** None here. The caller serialises operations on one object; operations
//!   on different volumes of a pool may run at the same time.
//! - **External tools** run only through [`cmd`], which names the missing package, logs the
//!   argv and returns stderr on failure. Parsers of their output are pure functions tested
//!   on captured output under `tests/fixtures/`.
//! - **Names** are parsed once into [`PoolName`], [`VolumeName`], [`SnapshotName`].
//! - **Capabilities** ([`Capabilities`]) say what a driver can do; what it cannot do
//!   returns [`Error::NotSupported`].
//! - **Diff** ([`Backend::diff`], [`diff`]) walks both trees unless the driver has a
//!   faster way (btrfs: `send --no-data`); both give the same answer.
//!
//! ## Tests
//! `tests/conformance/` is one suite run against every driver: unit tests run anywhere,
//! `loop_*` tests need root and loop devices, `vm_*` tests boot a kernel (see `vm-tests/`).

pub mod backend;
pub mod btrfs;
pub mod cmd;
pub mod copy;
pub mod diff;
pub mod dir;
pub mod error;
pub mod layout;
pub mod loopdev;
pub mod lvm;
pub mod manifest;
pub mod mounts;
pub mod names;
pub mod probe;
pub mod revert;
pub mod testing;
pub mod types;
pub mod zfs;

pub use backend::{open, Backend, DriverKind, PoolSource, PoolSpec};
pub use error::{Error, Kind, Result};
pub use names::{PoolName, SnapshotName, VolumeName};
pub use types::{
    Bytes, Capabilities, CloneSource, CreateAction, DeleteAction, DriverInfo, SendStats,
    SnapshotInfo, Usage, VolumeInfo,
};
