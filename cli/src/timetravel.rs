//! Restore by time, safety snapshots, holds and expiry: the container-level side of
//! `cairn-snapshots`. The storage says which snapshots exist and when they were made;
//! the database adds who took them, their expiry and holds ([`crate::state::SnapshotMeta`]).
//!
//! Every restore first takes a **safety snapshot** of the live state (unless told not
//! to), named `pre-restore-<UTC time>` and labelled `cairn.safety=restore`, the same
//! convention `restore --path` follows, so a restore can itself be undone. It is a manual
//! snapshot: no policy prunes it.

use std::collections::BTreeMap;

use cairn_backends::{SnapshotInfo, SnapshotName};
use cairn_snapshots::TimeExpr;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Serialize;

use crate::containers::{self, open_locked, storage};
use crate::names::ContainerName;
use crate::pools::{self, Pool};
use crate::state::{self, SnapshotMeta, Store, ORIGIN_MANUAL};

/// The label a safety snapshot carries.
pub const SAFETY_LABEL: (&str, &str) = ("cairn.safety", "restore");
/// The prefix of safety snapshot names.
pub const SAFETY_PREFIX: &str = "pre-restore-";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {container}: {source}")]
    Time {
        container: String,
        #[source]
        source: cairn_snapshots::Error,
    },
    #[error("container {container}: snapshot {snapshot}: {problem}")]
    Snapshot {
        container: String,
        snapshot: String,
        problem: String,
    },
    #[error(transparent)]
    Container(#[from] containers::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Pool(#[from] pools::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn time_err(name: &ContainerName) -> impl FnOnce(cairn_snapshots::Error) -> Error + '_ {
    move |source| Error::Time {
        container: name.to_string(),
        source,
    }
}

/// A snapshot with what the database knows of it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: SnapshotName,
    /// The storage's creation time, or cairn's clock at taking under `CAIRN_NOW`.
    pub created_at: Timestamp,
    pub meta: SnapshotMeta,
}

/// When a snapshot counts as taken: the storage's time, unless the clock is simulated
/// and cairn recorded its own.
pub fn time_of(info: &SnapshotInfo, meta: &SnapshotMeta) -> Timestamp {
    match meta.taken_at {
        Some(t) if crate::clock::simulated() => t,
        _ => info.created_at,
    }
}

/// The container's snapshots with their metadata, oldest first.
pub fn entries(store: &Store, pool: &Pool, name: &ContainerName) -> Result<Vec<Entry>> {
    let infos = pool
        .backend
        .list_snapshots(&name.volume())
        .map_err(storage(name, "list snapshots"))?;
    let mut metas = store.snapshot_metas(name.as_str())?;
    let mut out: Vec<Entry> = infos
        .into_iter()
        .map(|info| {
            let meta = metas
                .remove(info.name.as_str())
                .unwrap_or_else(|| SnapshotMeta {
                    origin: ORIGIN_MANUAL.into(),
                    ..SnapshotMeta::default()
                });
            Entry {
                created_at: time_of(&info, &meta),
                name: info.name,
                meta,
            }
        })
        .collect();
    out.sort_by_key(|e| e.created_at);
    Ok(out)
}

/// A free name `<prefix><UTC time>[-N]` for a snapshot taken at `at`; `taken` says
/// whether a name is in use.
pub fn dated_name(prefix: &str, at: Timestamp, taken: impl Fn(&str) -> bool) -> SnapshotName {
    let base = format!("{prefix}{}", at.strftime("%Y%m%dT%H%M%SZ"));
    let mut candidate = base.clone();
    let mut n = 1;
    while taken(&candidate) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate.parse().expect("a valid snapshot name")
}

/// Takes a snapshot and records it; the caller holds the container's lock.
pub fn take(
    store: &mut Store,
    pool: &Pool,
    name: &ContainerName,
    snap: &SnapshotName,
    meta: &SnapshotMeta,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    pool.backend
        .create_snapshot(&name.volume(), snap)
        .map_err(storage(name, "snapshot"))?;
    if !labels.is_empty() {
        store.set_snapshot_labels(name.as_str(), snap.as_str(), labels)?;
    }
    store.set_snapshot_meta(name.as_str(), snap.as_str(), meta)?;
    Ok(())
}

/// What a restore goes back to: a snapshot by name, or the one a time names.
#[derive(Debug, Clone)]
pub enum Target {
    Snapshot(SnapshotName),
    Time(TimeExpr),
}

/// What a restore did, or would do with `--dry-run`.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub container: String,
    /// The time the expression named (absent for `@-N` and plain snapshot names).
    pub target_time: Option<Timestamp>,
    pub snapshot: String,
    pub snapshot_created_at: Timestamp,
    /// The safety snapshot taken (or that would be taken) first.
    pub safety_snapshot: Option<String>,
    pub dry_run: bool,
}

impl RestoreReport {
    pub(crate) fn new(
        name: &ContainerName,
        chosen: &Entry,
        target_time: Option<Timestamp>,
        safety: Option<&SnapshotName>,
        dry_run: bool,
    ) -> RestoreReport {
        RestoreReport {
            container: name.to_string(),
            target_time,
            snapshot: chosen.name.to_string(),
            snapshot_created_at: chosen.created_at,
            safety_snapshot: safety.map(|s| s.to_string()),
            dry_run,
        }
    }
}

/// The snapshot `target` names among the container's snapshots `list` (oldest first),
/// and the time it named.
pub fn pick(
    name: &ContainerName,
    list: &[Entry],
    target: &Target,
    now: &Zoned,
) -> Result<(Entry, Option<Timestamp>)> {
    match target {
        Target::Snapshot(snap) => {
            let e = list.iter().find(|e| &e.name == snap).ok_or_else(|| {
                containers::Error::SnapshotNotFound {
                    container: name.to_string(),
                    snapshot: snap.to_string(),
                }
            })?;
            Ok((e.clone(), None))
        }
        Target::Time(to) => {
            let created: Vec<Timestamp> = list.iter().map(|e| e.created_at).collect();
            let i = to
                .resolve(&created, |i| list[i].name.as_str(), now)
                .map_err(time_err(name))?;
            Ok((list[i].clone(), to.instant(now).map_err(time_err(name))?))
        }
    }
}

/// The name of the safety snapshot a restore at `now` takes: free among `list`.
pub fn safety_name(now: &Zoned, list: &[Entry]) -> SnapshotName {
    dated_name(SAFETY_PREFIX, now.timestamp(), |n| {
        list.iter().any(|e| e.name.as_str() == n)
    })
}

/// Takes the safety snapshot `snap` of the live state: a manual snapshot labelled
/// [`SAFETY_LABEL`], dated `now`. The caller holds the container's lock.
pub fn take_safety(
    store: &mut Store,
    pool: &Pool,
    name: &ContainerName,
    snap: &SnapshotName,
    now: &Zoned,
) -> Result<()> {
    let labels = BTreeMap::from([(SAFETY_LABEL.0.to_string(), SAFETY_LABEL.1.to_string())]);
    let meta = SnapshotMeta {
        origin: ORIGIN_MANUAL.into(),
        taken_at: Some(now.timestamp()),
        ..SnapshotMeta::default()
    };
    take(store, pool, name, snap, &meta, &labels)
}

/// Restores the container to the snapshot `target` names. With `safety`, takes a safety
/// snapshot of the live state first; with `dry_run`, changes nothing and reports what
/// would happen. All under the container's lock, so the snapshot chosen is the one
/// restored.
pub fn restore(
    store: &mut Store,
    name: &ContainerName,
    target: &Target,
    now: &Zoned,
    safety: bool,
    dry_run: bool,
) -> Result<RestoreReport> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let list = entries(store, &pool, name)?;
    let (chosen, target_time) = pick(name, &list, target, now)?;
    let safety = safety.then(|| safety_name(now, &list));
    let report = RestoreReport::new(name, &chosen, target_time, safety.as_ref(), dry_run);
    if dry_run {
        return Ok(report);
    }
    if let Some(s) = &safety {
        take_safety(store, &pool, name, s, now)?;
    }
    pool.backend
        .restore_snapshot(&name.volume(), &chosen.name)
        .map_err(storage(name, "restore"))?;
    Ok(report)
}

fn require_entry(
    store: &Store,
    pool: &Pool,
    name: &ContainerName,
    snap: &SnapshotName,
) -> Result<Entry> {
    entries(store, pool, name)?
        .into_iter()
        .find(|e| &e.name == snap)
        .ok_or_else(|| {
            containers::Error::SnapshotNotFound {
                container: name.to_string(),
                snapshot: snap.to_string(),
            }
            .into()
        })
}

/// Holds a snapshot: no pruning deletes it, and `snapshot delete` refuses until it is
/// released. Holding again replaces the reason.
pub fn hold(
    store: &Store,
    name: &ContainerName,
    snap: &SnapshotName,
    reason: &str,
    now: &Zoned,
) -> Result<()> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let mut meta = require_entry(store, &pool, name, snap)?.meta;
    meta.hold = Some(reason.to_string());
    meta.held_at = Some(now.timestamp());
    store.set_snapshot_meta(name.as_str(), snap.as_str(), &meta)?;
    Ok(())
}

/// Releases a hold; an error when the snapshot is not held.
pub fn release(store: &Store, name: &ContainerName, snap: &SnapshotName) -> Result<()> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let mut meta = require_entry(store, &pool, name, snap)?.meta;
    if meta.hold.is_none() {
        return Err(Error::Snapshot {
            container: name.to_string(),
            snapshot: snap.to_string(),
            problem: "is not held".into(),
        });
    }
    meta.hold = None;
    meta.held_at = None;
    store.set_snapshot_meta(name.as_str(), snap.as_str(), &meta)?;
    Ok(())
}

/// The expiry time of a snapshot taken at `now` with `--expires <duration>`; the caller
/// names the container and the flag.
pub fn expiry(expires: &str, now: &Zoned) -> cairn_snapshots::Result<Timestamp> {
    let d: SignedDuration = cairn_snapshots::parse_positive_duration(expires)?;
    now.timestamp()
        .checked_add(d)
        .map_err(|e| cairn_snapshots::Error::Duration {
            input: expires.to_string(),
            problem: e.to_string(),
        })
}
