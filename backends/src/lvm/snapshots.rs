//! Snapshots: read-only thin snapshots, listed by their tags, mounted `ro,noload`, and
//! restore by swapping in a writable thin snapshot of the chosen one.

use std::path::PathBuf;

use super::parse::Lv;
use super::{cli, created_at, naming, now_ns, LvmBackend};
use crate::error::{Error, Kind, Result};
use crate::mounts;
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{DeleteAction, SnapshotInfo};

impl LvmBackend {
    pub(super) fn info_of(&self, volume: &VolumeName, lv: &Lv) -> Option<SnapshotInfo> {
        let name = lv.snapshot_name()?;
        // A snapshot is read-only once finished (a receive writes a writable one first).
        (lv.name == self.snap_lv(volume, &name) && lv.read_only()).then(|| SnapshotInfo {
            volume: volume.clone(),
            created_at: created_at(lv),
            name,
        })
    }

    pub(super) fn do_create_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let vol = self.find_volume(&lvs, volume)?;
        let object = format!("{volume}/{snap}");
        if self.find_snapshot(&lvs, volume, snap).is_ok() {
            return Err(Error::exists(Kind::Snapshot, &object));
        }
        self.check_fill(&all, "create snapshot", &object)?;
        let lv = self.snap_lv(volume, snap);
        let ns = now_ns();
        // One lvcreate: read-only, skipped at activation, tagged, in one metadata commit.
        // LVM suspends the origin for it, which freezes a mounted filesystem.
        let mut args = vec![
            "lvcreate".to_string(),
            "-q".into(),
            "-s".into(),
            "-n".into(),
            lv.clone(),
            "--setactivationskip".into(),
            "y".into(),
            "-p".into(),
            "r".into(),
        ];
        args.extend(self.tag_args(volume, Some(snap), ns, false));
        args.push(self.lv_path(&vol.name));
        cli::lvm(&args).map_err(|e| cli::typed(e, "create snapshot", Kind::Snapshot, &object))?;
        Ok(SnapshotInfo {
            volume: volume.clone(),
            name: snap.clone(),
            created_at: jiff::Timestamp::from_nanosecond(ns).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        })
    }

    pub(super) fn do_list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        let lvs = self.live_lvs()?;
        self.find_volume(&lvs, volume)?;
        Ok(self.snapshots_in(&lvs, volume))
    }

    /// The snapshots of `volume` among the complete LVs `live`, oldest first.
    pub(super) fn snapshots_in(&self, live: &[Lv], volume: &VolumeName) -> Vec<SnapshotInfo> {
        let enc = naming::encode(volume.as_str());
        let mut out: Vec<SnapshotInfo> = live
            .iter()
            .filter(|l| l.tag_value(naming::KEY_VOLUME) == Some(&enc))
            .filter_map(|l| self.info_of(volume, l))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        out
    }

    pub(super) fn do_delete_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<DeleteAction> {
        self.unmount_snapshot_dir(volume, snap)?;
        let all = self.pool_report()?;
        match self.find_snapshot(&self.live(&all), volume, snap) {
            Ok(lv) => {
                // lvremove -f takes an active LV too: no deactivation first.
                self.remove_lvs(&[lv.name])?;
                Ok(DeleteAction::Deleted)
            }
            Err(_) => {
                self.deactivate_snapshot(&all, volume, snap)?;
                Ok(DeleteAction::Identity)
            }
        }
    }

    pub(super) fn do_rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let lv = self.find_snapshot(&lvs, volume, from)?;
        if self.find_snapshot(&lvs, volume, to).is_ok() {
            return Err(Error::exists(Kind::Snapshot, format!("{volume}/{to}")));
        }
        self.unmount_snapshot_in(&all, volume, from)?;
        self.rename_lvs(
            &[(lv.name, self.snap_lv(volume, to))],
            &naming::tag(naming::KEY_SNAPSHOT, from.as_str()),
            &naming::tag(naming::KEY_SNAPSHOT, to.as_str()),
        )
    }

    pub(super) fn do_restore_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<()> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let vol = self.find_volume(&lvs, volume)?;
        let src = self.find_snapshot(&lvs, volume, snap)?;
        self.check_fill(&all, "restore snapshot", &format!("{volume}/{snap}"))?;
        mounts::unmount(&self.vol_mnt(volume)).map_err(|e| Error::Busy {
            op: "restore snapshot",
            object: volume.to_string(),
            reason: format!("its filesystem cannot be unmounted: {e}"),
        })?;
        let (new, old) = (self.restore_lv("n", volume), self.restore_lv("o", volume));
        self.remove_lvs(&self.restore_stale(&all, &new, &old))?;
        let ns = created_at(&vol).as_nanosecond();
        Revert::new().run(|rv| {
            let mut args = vec![
                "lvcreate".to_string(),
                "-q".into(),
                "-s".into(),
                "-n".into(),
                new.clone(),
                "--setactivationskip".into(),
                "n".into(),
                "-p".into(),
                "rw".into(),
            ];
            args.extend(self.tag_args(volume, None, ns, true));
            args.push(self.lv_path(&src.name));
            cli::lvm(&args)
                .map_err(|e| cli::typed(e, "restore snapshot", Kind::Volume, volume.as_str()))?;
            let n = new.clone();
            rv.add("remove restore copy", move || self.remove_lvs(&[n]));
            cli::lvm(&["lvrename", "-q", &self.vg, &vol.name, &old])?;
            let (o, v) = (old.clone(), vol.name.clone());
            rv.add("rename the volume back", move || {
                cli::lvm(&["lvrename", "-q", &self.vg, &o, &v]).map(drop)
            });
            cli::lvm(&["lvrename", "-q", &self.vg, &new, &vol.name])?;
            let (n, v) = (new.clone(), vol.name.clone());
            rv.add("rename the restore copy back", move || {
                cli::lvm(&["lvrename", "-q", &self.vg, &v, &n]).map(drop)
            });
            self.complete(&vol.name)
        })?;
        // The old live state; if this fails, mount_pool removes it.
        if let Err(e) = self.remove_lvs(std::slice::from_ref(&old)) {
            tracing::warn!(lv = %old, error = %e, "could not remove the replaced live state; mount_pool will");
        }
        Ok(())
    }

    pub(super) fn do_mount_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<PathBuf> {
        let lv = self.find_snapshot(&self.live_lvs()?, volume, snap)?;
        let at = self.snap_mnt(volume, snap);
        // ro on a read-only LV; noload: no journal replay (the snapshot was taken of a
        // frozen, possibly mounted filesystem).
        self.mount_lv(&lv, &at, "ro,noload")?;
        Ok(at)
    }

    /// Leftovers of an earlier restore that mount_pool has not seen yet: the new LV `new`,
    /// and the old LV `old` if incomplete.
    pub(super) fn restore_stale(&self, all: &[Lv], new: &str, old: &str) -> Vec<String> {
        all.iter()
            .filter(|l| self.is_ours(l))
            .filter(|l| l.name == new || (l.name == old && l.has_tag(naming::TAG_INCOMPLETE)))
            .map(|l| l.name.clone())
            .collect()
    }

    pub(super) fn do_unmount_snapshot(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<()> {
        self.unmount_snapshot_dir(volume, snap)?;
        // An LV without a device node is inactive: nothing to ask LVM. Else only this LV.
        let name = self.snap_lv(volume, snap);
        if self.vg.is_empty() || !self.dev(&name).exists() {
            return Ok(());
        }
        let one: Vec<Lv> = cli::lv(&self.vg, &name)?.into_iter().collect();
        self.deactivate_snapshot(&one, volume, snap)
    }

    /// Unmounts the snapshot and deactivates its LV, as of the report `all`.
    pub(super) fn unmount_snapshot_in(
        &self,
        all: &[Lv],
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<()> {
        self.unmount_snapshot_dir(volume, snap)?;
        self.deactivate_snapshot(all, volume, snap)
    }

    fn unmount_snapshot_dir(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        let at = self.snap_mnt(volume, snap);
        mounts::unmount(&at)?;
        let _ = std::fs::remove_dir(&at);
        Ok(())
    }

    /// Back to inactive, as snapshots are made, if the report shows our LV active.
    fn deactivate_snapshot(
        &self,
        all: &[Lv],
        volume: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<()> {
        if let Ok(lv) = self.find_snapshot(&self.ours(all), volume, snap) {
            if lv.active {
                cli::lvm(&["lvchange", "-q", "-an", &self.lv_path(&lv.name)])?;
            }
        }
        Ok(())
    }
}
