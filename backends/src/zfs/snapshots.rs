//! Snapshots: ZFS snapshots of the datasets in a volume's container (`live` and history),
//! and restore to any of them (the design is in the module docs of `zfs`).

use std::path::PathBuf;

use super::cli::{self, says, Destroyed};
use super::naming;
use super::parse::{Listing, SnapRow};
use super::pool::{contents, unmount_dir};
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

/// A volume as one listing of its container shows it.
pub(super) struct Vol {
    pub container: String,
    pub live: String,
    /// The container and everything in it.
    pub listing: Listing,
}

/// The snapshots of volume `v` in its listing, oldest first (hidden ones and those
/// waiting for deferred destruction left out).
pub(super) fn snapshots_in(v: &VolumeName, vol: &Vol) -> Vec<SnapEntry> {
    let mut out: Vec<SnapEntry> = contents(&vol.container, &vol.listing)
        .1
        .into_iter()
        .filter(|r| !r.defer_destroy)
        .filter_map(|row| {
            let name: SnapshotName = naming::name_of(&row.component, row.cairn_name.as_deref())?
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
    out
}

/// Snapshot `s` of volume `v` in its listing, or `NotFound`.
pub(super) fn find_in(v: &VolumeName, vol: &Vol, s: &SnapshotName) -> Result<SnapEntry> {
    snapshots_in(v, vol)
        .into_iter()
        .find(|e| &e.info.name == s)
        .ok_or_else(|| ZfsBackend::snapshot_not_found(v, s))
}

impl ZfsBackend {
    /// One `zfs list` of the volume's container and everything in it, which also checks
    /// the pool is ours ([`Self::list_ours`]); `NotFound` unless the volume's live
    /// dataset is in it.
    pub(super) fn volume(&self, v: &VolumeName) -> Result<Vol> {
        let container = self.ds.container(v);
        let live = self.ds.live(v);
        match self.list_ours(&container, None)? {
            Some(listing) if listing.filesystems.iter().any(|r| r.name == live) => Ok(Vol {
                container,
                live,
                listing,
            }),
            _ => Err(Error::not_found(Kind::Volume, v)),
        }
    }

    /// The volume's snapshots, oldest first; `NotFound` if the volume does not exist.
    pub(super) fn snapshots_of(&self, v: &VolumeName) -> Result<Vec<SnapEntry>> {
        Ok(snapshots_in(v, &self.volume(v)?))
    }

    pub(super) fn find_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<SnapEntry> {
        find_in(v, &self.volume(v)?, s)
    }

    pub(super) fn do_create_snapshot(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        let vol = self.volume(v)?;
        let obj = format!("{v}/{s}");
        // `zfs snapshot` refuses only a name taken in `live`; history datasets hold
        // snapshots of the volume too.
        if snapshots_in(v, &vol).iter().any(|e| &e.info.name == s) {
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
            &format!("{}@{}", vol.live, naming::snap_component(s)),
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
        let mut vol = match self.volume(v) {
            Ok(vol) => vol,
            Err(e) if e.is_not_found() => return Ok(DeleteAction::Identity),
            Err(e) => return Err(e),
        };
        let Ok(e) = find_in(v, &vol, s) else {
            return Ok(DeleteAction::Identity);
        };
        unmount_dir(&self.snapshot_mount(v, s))?;
        // The listing as it is now, for the clean-up: no second `zfs list`. A snapshot
        // ZFS keeps (hidden, destroy deferred) still counts for its dataset, and its old
        // row plans the same repairs as the hidden one would (`repair_plan` drops only
        // hidden rows not deferred; a listed name is never hidden), so its row stays.
        if cli::destroy_snapshot(&e.full)? == Destroyed::Now {
            vol.listing
                .snapshots
                .retain(|r| !(r.dataset == e.row.dataset && r.component == e.row.component));
        }
        self.repair_container(&vol.container, &vol.listing)?;
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_snapshot(
        &self,
        v: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
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
        let repaired = cli::list(&container, None)
            .and_then(|l| self.repair_container(&container, &l.unwrap_or_default()));
        if let Err(err) = repaired {
            tracing::warn!(volume = %v, error = %err, "could not drop empty history after restore");
        }
        Ok(())
    }

    pub(super) fn do_mount_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<PathBuf> {
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
