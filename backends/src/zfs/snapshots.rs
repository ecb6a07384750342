//! Snapshots: ZFS snapshots of the datasets in a volume's container (`live` and history),
//! and restore to any of them (the design is in the module docs of `zfs`).

use std::path::PathBuf;

use super::cli::{self, says};
use super::naming;
use super::parse::SnapRow;
use super::pool::unmount_dir;
use super::volumes::{now_ns, ts};
use super::ZfsBackend;
use crate::error::{Error, IoContext, Kind, Result};
use crate::mounts;
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{DeleteAction, SnapshotInfo};

/// One snapshot of a volume, where it is.
pub(super) struct SnapEntry {
    pub info: SnapshotInfo,
    /// `<dataset>@<component>`.
    pub full: String,
    pub row: SnapRow,
}

impl ZfsBackend {
    /// The volume's snapshots, oldest first; `NotFound` if the volume does not exist.
    pub(super) fn snapshots_of(&self, v: &VolumeName) -> Result<Vec<SnapEntry>> {
        self.live(v)?;
        let mut out: Vec<SnapEntry> = cli::snapshots(&self.ds.container(v))?
            .into_iter()
            .filter(|r| !r.defer_destroy)
            .filter_map(|row| {
                let name: SnapshotName =
                    naming::name_of(&row.component, row.cairn_name.as_deref())?
                        .parse()
                        .ok()?;
                let ns = row
                    .created_at_ns
                    .map(|n| n as i128)
                    .unwrap_or(row.creation as i128 * 1_000_000_000);
                Some(SnapEntry {
                    info: SnapshotInfo {
                        volume: v.clone(),
                        name,
                        created_at: ts(ns),
                    },
                    full: format!("{}@{}", row.dataset, row.component),
                    row,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.info.created_at, a.row.createtxg).cmp(&(b.info.created_at, b.row.createtxg))
        });
        Ok(out)
    }

    pub(super) fn find_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<SnapEntry> {
        self.snapshots_of(v)?
            .into_iter()
            .find(|e| &e.info.name == s)
            .ok_or_else(|| Self::snapshot_not_found(v, s))
    }

    pub(super) fn do_create_snapshot(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        self.require_pool()?;
        let live = self.live(v)?;
        let taken = self.snapshots_of(v)?.into_iter().any(|e| &e.info.name == s);
        let obj = format!("{v}/{s}");
        if taken {
            return Err(Error::exists(Kind::Snapshot, obj));
        }
        let ns = now_ns();
        // Name and time are set in the same transaction as the snapshot.
        cli::zfs(&[
            "snapshot",
            "-o",
            &format!("cairn:created_at={ns}"),
            "-o",
            &format!("cairn:name={s}"),
            &format!("{live}@{}", naming::snap_component(s)),
        ])
        .map_err(|e| cli::typed(e, "create snapshot", Kind::Snapshot, &obj))?;
        Ok(SnapshotInfo {
            volume: v.clone(),
            name: s.clone(),
            created_at: ts(ns),
        })
    }

    pub(super) fn do_delete_snapshot(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
    ) -> Result<DeleteAction> {
        self.require_pool()?;
        let e = match self.find_snapshot(v, s) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Ok(DeleteAction::Identity),
            Err(e) => return Err(e),
        };
        unmount_dir(&self.snapshot_mount(v, s))?;
        cli::destroy_snapshot(&e.full)?;
        self.repair_container(&self.ds.container(v))?;
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_snapshot(
        &self,
        v: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        self.require_pool()?;
        let snaps = self.snapshots_of(v)?;
        let e = snaps
            .iter()
            .find(|e| &e.info.name == from)
            .ok_or_else(|| Self::snapshot_not_found(v, from))?;
        if snaps.iter().any(|e| &e.info.name == to) {
            return Err(Error::exists(Kind::Snapshot, format!("{v}/{to}")));
        }
        unmount_dir(&self.snapshot_mount(v, from))?;
        let new = format!("{}@{}", e.row.dataset, naming::snap_component(to));
        cli::rename(&e.full, &new).map_err(|err| {
            cli::typed(err, "rename snapshot", Kind::Snapshot, &format!("{v}/{to}"))
        })?;
        cli::set(&new, "cairn:name", to.as_str())
    }

    pub(super) fn do_restore_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<()> {
        self.require_pool()?;
        let e = self.find_snapshot(v, s)?;
        let container = self.ds.container(v);
        let live = self.ds.live(v);
        self.unmount_everything_of(v)?;
        let new = format!("{container}/new.{}", naming::fresh_id());
        let history = format!("{container}/h.{}", naming::fresh_id());
        Revert::new().run(|rv| {
            cli::zfs(&["clone", &e.full, &new])
                .map_err(|err| cli::typed(err, "restore", Kind::Volume, v.as_str()))?;
            let n = new.clone();
            rv.add("destroy restore clone", move || {
                cli::zfs(&["destroy", &n]).map(drop)
            });
            // `s` and older snapshots move to the new dataset; the old one keeps newer ones.
            cli::zfs(&["promote", &new])?;
            let old = e.row.dataset.clone();
            rv.add("undo promote", move || {
                cli::zfs(&["promote", &old]).map(drop)
            });
            cli::rename(&live, &history)?;
            let (l, h) = (live.clone(), history.clone());
            rv.add("rename live back", move || cli::rename(&h, &l));
            cli::rename(&new, &live)?;
            Ok(())
        })?;
        // The replaced live state is kept only if snapshots remain in it.
        if let Err(err) = self.repair_container(&container) {
            tracing::warn!(volume = %v, error = %err, "could not drop empty history after restore");
        }
        Ok(())
    }

    pub(super) fn do_mount_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<PathBuf> {
        self.require_pool()?;
        let e = self.find_snapshot(v, s)?;
        let path = self.snapshot_mount(v, s);
        if let Some(m) = mounts::mount_at(&path)? {
            if m.source == e.full {
                return Ok(path);
            }
            unmount_dir(&path)?;
        }
        std::fs::create_dir_all(&path).ctx("create mount point", &path)?;
        mounts::mount(e.full.as_ref(), &path, Some("zfs"), Some("ro")).map_err(|err| {
            if says(&err, "does not exist") {
                Self::snapshot_not_found(v, s)
            } else {
                err
            }
        })?;
        Ok(path)
    }
}
