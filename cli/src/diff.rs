//! `cairn diff` and `cairn restore --path`: what changed between two states of a
//! container, and putting chosen paths back. The work is the storage layer's
//! (`cairn_backends::diff`); here are the container's names, locks and the safety
//! snapshot (taken as [`crate::timetravel`] takes it for every restore).

use std::collections::BTreeMap;

use cairn_backends::diff::{self, DiffSide, TreeDiff, TreePath};
use cairn_backends::SnapshotName;

use crate::containers::{get, open_locked, storage, Result};
use crate::names::ContainerName;
use crate::pools::Pool;
use crate::snapshots::require;
use crate::state::{LockKind, LockMode, SnapshotMeta, Store, ORIGIN_MANUAL};
use crate::timetravel;

/// The changes from snapshot `from` to `to` (another snapshot, or the live state).
pub fn diff(
    store: &Store,
    name: &ContainerName,
    from: &SnapshotName,
    to: Option<&SnapshotName>,
) -> Result<TreeDiff> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let _lock = store.lock(LockKind::Container, name.as_str(), LockMode::Shared)?;
    require(&pool, name, from)?;
    if let Some(to) = to {
        require(&pool, name, to)?;
    }
    let to = to.map_or(DiffSide::Live, DiffSide::Snapshot);
    let d = pool
        .backend
        .diff(&name.volume(), DiffSide::Snapshot(from), to)
        .map_err(storage(name, "diff"))?;
    tracing::debug!(method = ?d.method, hashed = d.hashed, changes = d.changes.len(), "diff");
    Ok(d)
}

/// Parses `--path` values: absolute, as inside the container.
pub fn parse_paths(name: &ContainerName, paths: &[String]) -> Result<Vec<TreePath>> {
    paths
        .iter()
        .map(|p| p.parse::<TreePath>().map_err(storage(name, "restore")))
        .collect()
}

/// What `restore --path` did.
#[derive(Debug, Clone)]
pub struct PartialRestore {
    pub safety_snapshot: SnapshotName,
    pub stats: diff::RestoreStats,
}

/// Restores only `paths` from `snap` into the container's live state, after taking a
/// safety snapshot of the live state the way every restore does
/// ([`timetravel::SAFETY_PREFIX`], [`timetravel::SAFETY_LABEL`]). Bad paths are refused
/// before anything is taken or changed.
pub fn restore_paths(
    store: &mut Store,
    name: &ContainerName,
    snap: &SnapshotName,
    paths: &[TreePath],
    now: &jiff::Zoned,
) -> timetravel::Result<PartialRestore> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    require(&pool, name, snap)?;
    let existing = timetravel::entries(store, &pool, name)?;
    let vol = name.volume();
    let snap_root = pool
        .backend
        .mount_snapshot(&vol, snap)
        .map_err(storage(name, "mount snapshot"))?;
    let result = (|| {
        let live = pool
            .backend
            .mount_volume(&vol)
            .map_err(storage(name, "mount"))?;
        diff::check_restore_paths(&snap_root, &live, paths).map_err(storage(name, "restore"))?;
        let safety = timetravel::dated_name(timetravel::SAFETY_PREFIX, now.timestamp(), |n| {
            existing.iter().any(|e| e.name.as_str() == n)
        });
        let labels = BTreeMap::from([(
            timetravel::SAFETY_LABEL.0.to_string(),
            timetravel::SAFETY_LABEL.1.to_string(),
        )]);
        let meta = SnapshotMeta {
            origin: ORIGIN_MANUAL.into(),
            taken_at: Some(now.timestamp()),
            ..SnapshotMeta::default()
        };
        timetravel::take(store, &pool, name, &safety, &meta, &labels)?;
        let stats = diff::restore_paths(&snap_root, &live, paths)
            .map_err(storage(name, "restore paths"))?;
        Ok(PartialRestore {
            safety_snapshot: safety,
            stats,
        })
    })();
    if let Err(e) = pool.backend.unmount_snapshot(&vol, snap) {
        tracing::warn!(container = %name, snapshot = %snap, error = %e, "unmounting the snapshot failed");
    }
    result
}
