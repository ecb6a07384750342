//! `cairn diff` and `cairn restore --path`: what changed between two states of a
//! container, and putting chosen paths back. The work is the storage layer's
//! (`cairn_backends::diff`); here are the container's names, locks and the safety
//! snapshot (taken as [`crate::timetravel`] takes it for every restore).

use cairn_backends::diff::{self, DiffSide, TreeDiff, TreePath};
use cairn_backends::SnapshotName;
use serde::Serialize;

use crate::containers::{get, open_locked, storage, Error, Result};
use crate::names::ContainerName;
use crate::pools::Pool;
use crate::state::{LockKind, LockMode, Store};
use crate::timetravel::{self, RestoreReport, Target};

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
    let have = pool
        .backend
        .list_snapshots(&name.volume())
        .map_err(storage(name, "list snapshots"))?;
    for snap in std::iter::once(from).chain(to) {
        if !have.iter().any(|s| &s.name == snap) {
            return Err(Error::SnapshotNotFound {
                container: name.to_string(),
                snapshot: snap.to_string(),
            });
        }
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

/// What `restore --path` did, or would do with `--dry-run`: a restore's report, the
/// paths, and how many were put back and removed (null in a dry run).
#[derive(Debug, Serialize)]
pub struct PathsReport {
    #[serde(flatten)]
    pub restore: RestoreReport,
    /// As inside the container.
    pub paths: Vec<String>,
    pub restored: Option<u64>,
    pub removed: Option<u64>,
}

/// Restores only `paths` from the snapshot `target` names into the container's live
/// state, after taking a safety snapshot of the live state the way every restore does
/// ([`timetravel::take_safety`]). The snapshot is chosen under the container's lock, from
/// one listing, and bad paths are refused before anything is taken or changed. With
/// `dry_run`, every check is made and nothing is taken or copied.
pub fn restore_paths(
    store: &mut Store,
    name: &ContainerName,
    target: &Target,
    paths: &[TreePath],
    now: &jiff::Zoned,
    dry_run: bool,
) -> timetravel::Result<PathsReport> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let existing = timetravel::entries(store, &pool, name)?;
    let (chosen, target_time) = timetravel::pick(name, &existing, target, now)?;
    let snap = &chosen.name;
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
        let safety = timetravel::safety_name(now, &existing);
        let stats = if dry_run {
            None
        } else {
            timetravel::take_safety(store, &pool, name, &safety, now)?;
            Some(
                diff::restore_paths(&snap_root, &live, paths)
                    .map_err(storage(name, "restore paths"))?,
            )
        };
        Ok(PathsReport {
            restore: RestoreReport::new(name, &chosen, target_time, Some(&safety), dry_run),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            restored: stats.as_ref().map(|s| s.restored),
            removed: stats.as_ref().map(|s| s.removed),
        })
    })();
    if let Err(e) = pool.backend.unmount_snapshot(&vol, snap) {
        tracing::warn!(container = %name, snapshot = %snap, error = %e, "unmounting the snapshot failed");
    }
    result
}
