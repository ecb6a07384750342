//! A container's snapshots: read-only snapshots of its volume. Names and creation times
//! come from the storage; labels (`--label k=v`) are kept in the database.

use std::collections::BTreeMap;

use cairn_backends::{SnapshotInfo, SnapshotName};
use jiff::Timestamp;
use serde::Serialize;

use crate::containers::{get, open_locked, storage, Error, Result};
use crate::names::{self, ContainerName};
use crate::pools::Pool;
use crate::state::Store;

/// Default snapshot names, like LXD's `snapshots.pattern` `snap%d`.
pub const DEFAULT_PATTERN: &str = "snap";

/// One snapshot as `snapshot list` and `info` print it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotView {
    pub name: String,
    pub created_at: Timestamp,
    pub labels: BTreeMap<String, String>,
    /// `manual`, or `policy` for the snapshots a policy took (and may prune).
    pub origin: String,
    /// When pruning deletes it (`snapshot create --expires`).
    pub expires_at: Option<Timestamp>,
    /// Held snapshots are never pruned nor deleted.
    pub held: bool,
    pub hold_reason: Option<String>,
}

/// Parses `k=v` labels; keys follow the name rule.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?}: expected KEY=VALUE"))?;
    names::check("label", k, 200).map_err(|e| e.to_string())?;
    Ok((k.to_string(), v.to_string()))
}

/// The next free default name: `snap<N>` with N one more than the highest in use.
pub fn next_name(existing: &[SnapshotInfo]) -> SnapshotName {
    let next = existing
        .iter()
        .filter_map(|s| {
            s.name
                .as_str()
                .strip_prefix(DEFAULT_PATTERN)?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map_or(0, |n| n + 1);
    format!("{DEFAULT_PATTERN}{next}")
        .parse()
        .expect("a valid snapshot name")
}

fn list_raw(pool: &Pool, name: &ContainerName) -> Result<Vec<SnapshotInfo>> {
    pool.backend
        .list_snapshots(&name.volume())
        .map_err(storage(name, "list snapshots"))
}

/// Fails with `SnapshotNotFound` unless the container has the snapshot.
pub fn require(pool: &Pool, name: &ContainerName, snap: &SnapshotName) -> Result<SnapshotInfo> {
    list_raw(pool, name)?
        .into_iter()
        .find(|s| &s.name == snap)
        .ok_or_else(|| Error::SnapshotNotFound {
            container: name.to_string(),
            snapshot: snap.to_string(),
        })
}

fn view(store: &Store, name: &ContainerName, s: SnapshotInfo) -> Result<SnapshotView> {
    let meta = store.snapshot_meta(name.as_str(), s.name.as_str())?;
    Ok(SnapshotView {
        labels: store.snapshot_labels(name.as_str(), s.name.as_str())?,
        name: s.name.to_string(),
        created_at: crate::timetravel::time_of(&s, &meta),
        origin: meta.origin,
        expires_at: meta.expires_at,
        held: meta.hold.is_some(),
        hold_reason: meta.hold.filter(|r| !r.is_empty()),
    })
}

/// The container's snapshots, oldest first.
pub fn views(store: &Store, pool: &Pool, name: &ContainerName) -> Result<Vec<SnapshotView>> {
    list_raw(pool, name)?
        .into_iter()
        .map(|s| view(store, name, s))
        .collect()
}

pub fn list(store: &Store, name: &ContainerName) -> Result<Vec<SnapshotView>> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    views(store, &pool, name)
}

pub fn show(store: &Store, name: &ContainerName, snap: &SnapshotName) -> Result<SnapshotView> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let info = require(&pool, name, snap)?;
    view(store, name, info)
}

/// Takes a snapshot (named `snap<N>` when no name is given) and records its labels,
/// the time on cairn's clock and its expiry.
pub fn create(
    store: &mut Store,
    name: &ContainerName,
    snap: Option<SnapshotName>,
    labels: &BTreeMap<String, String>,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Result<SnapshotView> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let existing = list_raw(&pool, name)?;
    let snap = snap.unwrap_or_else(|| next_name(&existing));
    if existing.iter().any(|s| s.name == snap) {
        return Err(Error::SnapshotExists {
            container: name.to_string(),
            snapshot: snap.to_string(),
        });
    }
    let info = pool
        .backend
        .create_snapshot(&name.volume(), &snap)
        .map_err(storage(name, "snapshot"))?;
    store.set_snapshot_labels(name.as_str(), snap.as_str(), labels)?;
    let meta = crate::state::SnapshotMeta {
        origin: crate::state::ORIGIN_MANUAL.into(),
        taken_at: Some(now),
        expires_at,
        ..Default::default()
    };
    store.set_snapshot_meta(name.as_str(), snap.as_str(), &meta)?;
    view(store, name, info)
}

pub fn delete(store: &mut Store, name: &ContainerName, snap: &SnapshotName) -> Result<()> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    require(&pool, name, snap)?;
    if let Some(reason) = store.snapshot_meta(name.as_str(), snap.as_str())?.hold {
        return Err(Error::snapshot_held(name, snap, &reason));
    }
    pool.backend
        .delete_snapshot(&name.volume(), snap)
        .map_err(storage(name, "delete snapshot"))?;
    store.set_snapshot_labels(name.as_str(), snap.as_str(), &BTreeMap::new())?;
    store.delete_snapshot_meta(name.as_str(), snap.as_str())?;
    Ok(())
}

pub fn rename(
    store: &Store,
    name: &ContainerName,
    from: &SnapshotName,
    to: &SnapshotName,
) -> Result<()> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let existing = list_raw(&pool, name)?;
    if !existing.iter().any(|s| &s.name == from) {
        return Err(Error::SnapshotNotFound {
            container: name.to_string(),
            snapshot: from.to_string(),
        });
    }
    if existing.iter().any(|s| &s.name == to) {
        return Err(Error::SnapshotExists {
            container: name.to_string(),
            snapshot: to.to_string(),
        });
    }
    pool.backend
        .rename_snapshot(&name.volume(), from, to)
        .map_err(storage(name, "rename snapshot"))?;
    store.rename_snapshot_labels(name.as_str(), from.as_str(), to.as_str())?;
    store.rename_snapshot_meta(name.as_str(), from.as_str(), to.as_str())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> SnapshotInfo {
        SnapshotInfo {
            volume: "ct-a".parse().unwrap(),
            name: name.parse().unwrap(),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn default_names_count_up_past_the_highest() {
        assert_eq!(next_name(&[]).as_str(), "snap0");
        assert_eq!(next_name(&[info("snap0"), info("x")]).as_str(), "snap1");
        assert_eq!(
            next_name(&[info("snap4"), info("snap1"), info("snapx")]).as_str(),
            "snap5"
        );
    }

    #[test]
    fn labels_parse() {
        assert_eq!(parse_label("k=v=w").unwrap(), ("k".into(), "v=w".into()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
    }
}
