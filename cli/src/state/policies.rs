//! Time-travel state: per-snapshot metadata (who took it, expiry, hold), policies, the
//! last run of each container's policy, and the log of every deletion by pruning.
//!
//! The storage stays the source of truth for which snapshots exist; a metadata row for a
//! snapshot that no longer exists is ignored and dropped with the snapshot by cairn.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use super::error::{Error, Result};
use super::Store;

/// Who took a snapshot.
pub const ORIGIN_MANUAL: &str = "manual";
pub const ORIGIN_POLICY: &str = "policy";

/// What the database records about one snapshot beyond its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// `manual` or `policy`.
    pub origin: String,
    /// The time on cairn's clock when cairn took it (differs from the storage's own
    /// creation time only under `CAIRN_NOW`).
    pub taken_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// `Some(reason)` (possibly empty) when held.
    pub hold: Option<String>,
    pub held_at: Option<Timestamp>,
}

/// A stored policy; texts are the canonical forms `cairn-snapshots` prints. `policy
/// show/list` print it as it is (`--format json`: these fields).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyRecord {
    /// A container name, or `*` for every container without its own policy.
    pub target: String,
    pub schedule: Option<String>,
    pub keep: String,
    pub grid: Option<String>,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
    pub updated_at: Timestamp,
}

/// One deletion by pruning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PruneLogEntry {
    pub at: Timestamp,
    pub container: String,
    pub snapshot: String,
    pub created_at: Timestamp,
    pub rule: String,
}

fn ts(what: &str, s: Option<String>) -> Result<Option<Timestamp>> {
    s.map(|s| s.parse().map_err(|e| Error::corrupt(what.to_string(), e)))
        .transpose()
}

impl Store {
    /// Every snapshot's metadata of a container, by snapshot name.
    pub fn snapshot_metas(&self, container: &str) -> Result<HashMap<String, SnapshotMeta>> {
        let op = || format!("read snapshot metadata of {container}");
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT snapshot, origin, taken_at, expires_at, hold_reason, held_at, held
                 FROM snapshot_meta WHERE container = ?1",
            )
            .map_err(|e| Error::db(op(), e))?;
        let rows = stmt
            .query_map([container], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(|e| Error::db(op(), e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (snap, origin, taken, expires, reason, held_at, held) =
                row.map_err(|e| Error::db(op(), e))?;
            let what = format!("snapshot {snap} of container {container}");
            out.insert(
                snap,
                SnapshotMeta {
                    origin,
                    taken_at: ts(&what, taken)?,
                    expires_at: ts(&what, expires)?,
                    hold: held.then(|| reason.unwrap_or_default()),
                    held_at: ts(&what, held_at)?,
                },
            );
        }
        Ok(out)
    }

    /// One snapshot's metadata (the default, a manual snapshot, when none is recorded).
    pub fn snapshot_meta(&self, container: &str, snap: &str) -> Result<SnapshotMeta> {
        Ok(self
            .snapshot_metas(container)?
            .remove(snap)
            .unwrap_or_else(|| SnapshotMeta {
                origin: ORIGIN_MANUAL.into(),
                ..SnapshotMeta::default()
            }))
    }

    /// Records a snapshot's metadata, replacing what was there.
    pub fn set_snapshot_meta(&self, container: &str, snap: &str, m: &SnapshotMeta) -> Result<()> {
        let t = |t: Option<Timestamp>| t.map(|t| t.to_string());
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO snapshot_meta
                 (container, snapshot, origin, taken_at, expires_at, held, hold_reason, held_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    container,
                    snap,
                    m.origin,
                    t(m.taken_at),
                    t(m.expires_at),
                    m.hold.is_some(),
                    m.hold,
                    t(m.held_at)
                ],
            )
            .map_err(|e| Error::db(format!("record snapshot {snap} of {container}"), e))?;
        Ok(())
    }

    pub fn delete_snapshot_meta(&self, container: &str, snap: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM snapshot_meta WHERE container = ?1 AND snapshot = ?2",
                params![container, snap],
            )
            .map_err(|e| Error::db(format!("forget snapshot {snap} of {container}"), e))?;
        Ok(())
    }

    pub fn rename_snapshot_meta(&self, container: &str, from: &str, to: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE snapshot_meta SET snapshot = ?3 WHERE container = ?1 AND snapshot = ?2",
                params![container, from, to],
            )
            .map_err(|e| Error::db(format!("rename snapshot {from} of {container}"), e))?;
        Ok(())
    }

    /// All policies, `*` first, then by container name.
    pub fn policies(&self) -> Result<Vec<PolicyRecord>> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT target, schedule, keep, grid, pre_hook, post_hook, updated_at
                 FROM policies ORDER BY target <> '*', target",
            )
            .map_err(|e| Error::db("list policies", e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| Error::db("list policies", e))?;
        rows.map(|r| {
            let (target, schedule, keep, grid, pre_hook, post_hook, updated_at) =
                r.map_err(|e| Error::db("list policies", e))?;
            let updated_at = updated_at
                .parse()
                .map_err(|e| Error::corrupt(format!("policy {target}"), e))?;
            Ok(PolicyRecord {
                target,
                schedule,
                keep,
                grid,
                pre_hook,
                post_hook,
                updated_at,
            })
        })
        .collect()
    }

    pub fn policy(&self, target: &str) -> Result<Option<PolicyRecord>> {
        Ok(self.policies()?.into_iter().find(|p| p.target == target))
    }

    pub fn set_policy(&self, p: &PolicyRecord) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO policies
                 (target, schedule, keep, grid, pre_hook, post_hook, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.target,
                    p.schedule,
                    p.keep,
                    p.grid,
                    p.pre_hook,
                    p.post_hook,
                    p.updated_at.to_string()
                ],
            )
            .map_err(|e| Error::db(format!("store policy {}", p.target), e))?;
        Ok(())
    }

    /// Removes a policy; false when there was none.
    pub fn delete_policy(&self, target: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM policies WHERE target = ?1", [target])
            .map_err(|e| Error::db(format!("remove policy {target}"), e))?;
        Ok(n > 0)
    }

    pub fn last_policy_run(&self, container: &str) -> Result<Option<Timestamp>> {
        let raw: Option<String> = self
            .conn()
            .query_row(
                "SELECT last_run FROM policy_runs WHERE container = ?1",
                [container],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(format!("read last policy run of {container}"), e))?;
        ts(&format!("last policy run of {container}"), raw)
    }

    pub fn set_last_policy_run(&self, container: &str, at: Timestamp) -> Result<()> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO policy_runs (container, last_run) VALUES (?1, ?2)",
                params![container, at.to_string()],
            )
            .map_err(|e| Error::db(format!("record policy run of {container}"), e))?;
        Ok(())
    }

    pub fn log_prune(&self, e: &PruneLogEntry) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO prune_log (at, container, snapshot, created_at, rule)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    e.at.to_string(),
                    e.container,
                    e.snapshot,
                    e.created_at.to_string(),
                    e.rule
                ],
            )
            .map_err(|err| Error::db(format!("log pruning of {}", e.snapshot), err))?;
        Ok(())
    }

    /// The prune log, oldest first; of one container when given.
    pub fn prune_log(&self, container: Option<&str>) -> Result<Vec<PruneLogEntry>> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT at, container, snapshot, created_at, rule FROM prune_log
                 WHERE ?1 IS NULL OR container = ?1 ORDER BY id",
            )
            .map_err(|e| Error::db("read prune log", e))?;
        let rows = stmt
            .query_map([container], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| Error::db("read prune log", e))?;
        rows.map(|r| {
            let (at, container, snapshot, created_at, rule) =
                r.map_err(|e| Error::db("read prune log", e))?;
            let bad = |e| Error::corrupt("prune log", e);
            Ok(PruneLogEntry {
                at: at.parse().map_err(bad)?,
                container,
                snapshot,
                created_at: created_at.parse().map_err(bad)?,
                rule,
            })
        })
        .collect()
    }
}
