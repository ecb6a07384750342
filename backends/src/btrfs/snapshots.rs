//! Snapshots: read-only subvolume snapshots at `snapshots/<vol>/<snap>`, and restore.

use std::path::{Path, PathBuf};

use super::pool::make_dir;
use super::volumes::exists_as;
use super::{subvol, BtrfsBackend};
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::{rename_exchange, rename_noreplace};
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{DeleteAction, SnapshotInfo};

impl BtrfsBackend {
    /// The snapshot's read-only subvolume, or `NotFound`.
    pub(super) fn snapshot_path(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<PathBuf> {
        self.require_pool()?;
        let path = self.layout.snapshot(volume, snap);
        if is_snapshot(&path) {
            Ok(path)
        } else {
            Err(Self::snapshot_not_found(volume, snap))
        }
    }

    pub(super) fn snapshot_info(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        let path = self.layout.snapshot(volume, snap);
        Ok(SnapshotInfo {
            volume: volume.clone(),
            name: snap.clone(),
            created_at: subvol::created_at(&path)?,
        })
    }

    pub(super) fn do_create_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        let vol = self.volume_path(volume)?;
        make_dir(&self.layout.snapshots(volume))?;
        let dst = self.layout.snapshot(volume, snap);
        if dst.exists() {
            return Err(Error::exists(Kind::Snapshot, format!("{volume}/{snap}")));
        }
        // One ioctl, in its final place: after a crash it exists whole or not at all.
        subvol::snapshot(&vol, &dst, true)
            .map_err(|e| exists_as(e, Kind::Snapshot, format!("{volume}/{snap}")))?;
        self.snapshot_info(volume, snap)
    }

    pub(super) fn do_list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        self.volume_path(volume)?;
        let dir = self.layout.snapshots(volume);
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read directory", &dir, e)),
        };
        for entry in entries {
            let entry = entry.ctx("read directory", &dir)?;
            let Some(Ok(name)) = entry.file_name().to_str().map(str::parse::<SnapshotName>) else {
                continue;
            };
            // Writable subvolumes here are receives in progress (or interrupted): skip.
            if is_snapshot(&entry.path()) {
                out.push(self.snapshot_info(volume, &name)?);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(out)
    }

    pub(super) fn do_delete_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<DeleteAction> {
        self.require_pool()?;
        let path = self.layout.snapshot(volume, snap);
        if !subvol::is_subvolume(&path) {
            return Ok(DeleteAction::Identity);
        }
        // In place (a read-only subvolume cannot be moved to `.tmp/`); one ioctl.
        subvol::delete(&path)?;
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        let src = self.snapshot_path(volume, from)?;
        let dst = self.layout.snapshot(volume, to);
        // Same directory, so the kernel allows it for a read-only subvolume; otime stays.
        rename_noreplace(&src, &dst).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::exists(Kind::Snapshot, format!("{volume}/{to}"))
            }
            _ => Error::io("rename snapshot", &src, e),
        })
    }

    pub(super) fn do_restore_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<()> {
        let vol = self.volume_path(volume)?;
        let src = self.snapshot_path(volume, snap)?;
        let tmp = self.layout.tmp_path(&format!("restore-{volume}"));
        Revert::new().run(|rv| {
            subvol::snapshot(&src, &tmp, false)?;
            let t = tmp.clone();
            rv.add("delete restore copy", move || subvol::delete(&t));
            // The one step the caller sees: old and new live state trade places.
            rename_exchange(&tmp, &vol).ctx("swap in restored state of", &vol)?;
            Ok(())
        })?;
        // `tmp` now holds the old live state; a failure here leaves it to mount_pool.
        if let Err(e) = subvol::delete(&tmp) {
            tracing::warn!(path = %tmp.display(), error = %e, "could not delete the replaced live state; mount_pool will");
        }
        Ok(())
    }

    /// Deletes writable subvolumes in a `snapshots/<vol>/` directory: receives that
    /// never finished (a finished receive is read-only).
    pub(super) fn delete_partial_receives(&self, dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).ctx("read directory", dir)? {
            let path = entry.ctx("read directory", dir)?.path();
            if subvol::is_subvolume(&path) && !subvol::is_ro(&path)? {
                tracing::info!(path = %path.display(), "deleting an unfinished receive");
                subvol::delete(&path)?;
            }
        }
        Ok(())
    }
}

/// A read-only subvolume: what a finished snapshot is.
fn is_snapshot(path: &Path) -> bool {
    subvol::is_subvolume(path) && subvol::is_ro(path).unwrap_or(false)
}
