//! Volumes: thin LVs with ext4, created, cloned (writable thin snapshots), renamed,
//! mounted, measured and listed.

use std::path::{Path, PathBuf};

use super::parse::Lv;
use super::{cli, created_at, naming, now_ns, LvmBackend};
use crate::cmd::MKFS_EXT4;
use crate::error::{Error, IoContext, Kind, Result};
use crate::mounts;
use crate::names::VolumeName;
use crate::revert::Revert;
use crate::types::{CloneSource, CreateAction, DeleteAction, Usage, VolumeInfo};

/// Mount options of a live volume: the inode tables are not zeroed in the background
/// (a thin LV reads unprovisioned blocks as zeros), so no pool space goes to it.
const VOLUME_MOUNT_OPTIONS: &str = "noinit_itable";

impl LvmBackend {
    /// True when the report holds an incomplete leftover of ours called `name`.
    pub(super) fn is_leftover(&self, all: &[Lv], name: &str) -> bool {
        all.iter()
            .any(|l| l.name == name && self.is_ours(l) && l.has_tag(naming::TAG_INCOMPLETE))
    }

    /// Removes an incomplete leftover of ours called `name` (as of the report `all`), so a
    /// new object can take it.
    pub(super) fn clear_leftover(&self, all: &[Lv], name: &str) -> Result<()> {
        if self.is_leftover(all, name) {
            tracing::info!(lv = name, "removing an unfinished object in the way");
            self.remove_lvs(&[name.to_string()])?;
        }
        Ok(())
    }

    /// Drops the incomplete tag: the last step of building an LV.
    pub(super) fn complete(&self, lv: &str) -> Result<()> {
        cli::lvm(&[
            "lvchange",
            "--deltag",
            naming::TAG_INCOMPLETE,
            &self.lv_path(lv),
        ])?;
        Ok(())
    }

    /// Mounts `lv` at `at` unless something is mounted there.
    pub(super) fn mount_lv(&self, lv: &Lv, at: &Path, options: &str) -> Result<()> {
        if mounts::mount_at(at)?.is_some() {
            return Ok(());
        }
        self.activate(lv)?;
        std::fs::create_dir_all(at).ctx("create mount point", at)?;
        mounts::mount(&self.dev(&lv.name), at, Some("ext4"), Some(options))
    }

    pub(super) fn do_create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        if let Ok(lv) = self.find_volume(&lvs, name) {
            let at = self.vol_mnt(name);
            let was_mounted = mounts::mount_at(&at)?.is_some();
            self.mount_lv(&lv, &at, VOLUME_MOUNT_OPTIONS)?;
            let empty = std::fs::read_dir(&at)
                .ctx("read volume", &at)?
                .next()
                .is_none();
            if !was_mounted {
                mounts::unmount(&at)?;
            }
            return if empty {
                Ok(CreateAction::Identity)
            } else {
                Err(Error::exists(Kind::Volume, name))
            };
        }
        let lv = self.vol_lv(name);
        self.clear_leftover(&all, &lv)?;
        self.check_fill(&all, "create volume", name.as_str())?;
        let size = self.thin_pool_lv(&all)?.size;
        Revert::new().run(|rv| {
            let mut args = vec![
                "lvcreate".to_string(),
                "-q".into(),
                "-T".into(),
                self.lv_path(&self.thin_pool),
                "-V".into(),
                format!("{size}b"),
                "-n".into(),
                lv.clone(),
                "--setactivationskip".into(),
                "n".into(),
            ];
            args.extend(self.tag_args(name, None, now_ns(), true));
            cli::lvm(&args)
                .map_err(|e| cli::typed(e, "create volume", Kind::Volume, name.as_str()))?;
            let l = lv.clone();
            rv.add("remove new volume", move || self.remove_lvs(&[l]));
            let dev = self.dev(&lv);
            MKFS_EXT4.run(&[
                "-q".as_ref(),
                "-F".as_ref(),
                "-E".as_ref(),
                "lazy_itable_init=1,lazy_journal_init=1,nodiscard".as_ref(),
                dev.as_os_str(),
            ])?;
            // An empty volume is an empty directory: no lost+found (e2fsck remakes it).
            let at = self.vol_mnt(name);
            std::fs::create_dir_all(&at).ctx("create mount point", &at)?;
            mounts::mount(&dev, &at, Some("ext4"), Some(VOLUME_MOUNT_OPTIONS))?;
            let lf = at.join("lost+found");
            let r = std::fs::remove_dir(&lf).ctx("remove", &lf);
            mounts::unmount(&at)?;
            r?;
            self.complete(&lv)?;
            Ok(CreateAction::Created(()))
        })
    }

    pub(super) fn do_clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let from = match src {
            CloneSource::Volume(v) => self.find_volume(&lvs, v)?,
            CloneSource::Snapshot(v, s) => self.find_snapshot(&lvs, v, s)?,
        };
        if self.find_volume(&lvs, dst).is_ok() {
            return Err(Error::exists(Kind::Volume, dst));
        }
        let lv = self.vol_lv(dst);
        self.clear_leftover(&all, &lv)?;
        self.check_fill(&all, "clone volume", dst.as_str())?;
        Revert::new().run(|rv| {
            // One lvcreate, tagged incomplete until the end: a crash leaves nothing listed.
            let mut args = vec![
                "lvcreate".to_string(),
                "-q".into(),
                "-s".into(),
                "-n".into(),
                lv.clone(),
                "--setactivationskip".into(),
                "n".into(),
                "-p".into(),
                "rw".into(),
            ];
            args.extend(self.tag_args(dst, None, now_ns(), true));
            args.push(self.lv_path(&from.name));
            cli::lvm(&args)
                .map_err(|e| cli::typed(e, "clone volume", Kind::Volume, dst.as_str()))?;
            let l = lv.clone();
            rv.add("remove clone", move || self.remove_lvs(&[l]));
            self.complete(&lv)
        })
    }

    pub(super) fn do_delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        self.check_source("delete volume")?;
        let enc = naming::encode(name.as_str());
        let ours: Vec<Lv> = self
            .our_lvs()?
            .into_iter()
            .filter(|l| !l.is_thin_pool() && l.tag_value(naming::KEY_VOLUME) == Some(&enc))
            .collect();
        mounts::unmount(&self.vol_mnt(name))?;
        let snaps_dir = self.mnt_root().join("snapshots").join(name);
        if snaps_dir.is_dir() {
            for e in std::fs::read_dir(&snaps_dir).ctx("read directory", &snaps_dir)? {
                let p = e.ctx("read directory", &snaps_dir)?.path();
                mounts::unmount(&p)?;
                let _ = std::fs::remove_dir(&p);
            }
            let _ = std::fs::remove_dir(&snaps_dir);
        }
        if ours.is_empty() {
            return Ok(DeleteAction::Identity);
        }
        // Snapshots first: a crash in between leaves the volume, never orphans.
        let (snaps, vols): (Vec<Lv>, Vec<Lv>) = ours.into_iter().partition(|l| l.is_snapshot());
        self.remove_lvs(&snaps.into_iter().map(|l| l.name).collect::<Vec<_>>())?;
        self.remove_lvs(&vols.into_iter().map(|l| l.name).collect::<Vec<_>>())?;
        let _ = std::fs::remove_dir(self.vol_mnt(name));
        Ok(DeleteAction::Deleted)
    }

    /// Renames LVs (`from`, `to`), one `lvrename` each (LVM renames one LV per call), then
    /// swaps the name tag `deltag` for `addtag` on all of them in one `lvchange`. A failure
    /// undoes the retag and the renames.
    pub(super) fn rename_lvs(
        &self,
        moves: &[(String, String)],
        deltag: &str,
        addtag: &str,
    ) -> Result<()> {
        Revert::new().run(|rv| {
            for (from, to) in moves {
                cli::lvm(&["lvrename", "-q", &self.vg, from, to])?;
                let (f, t) = (from.clone(), to.clone());
                rv.add("rename back", move || {
                    cli::lvm(&["lvrename", "-q", &self.vg, &t, &f]).map(drop)
                });
            }
            let renamed: Vec<String> = moves.iter().map(|(_, to)| to.clone()).collect();
            // Runs before the renames back. LVM applies each LV's tag changes in one
            // metadata commit, one LV after the other, and takes removing a missing tag or
            // adding a present one as done: so this undoes a retag that failed half-way.
            let (r, d, a) = (renamed.clone(), deltag.to_string(), addtag.to_string());
            rv.add("retag back", move || self.retag(&r, &a, &d));
            self.retag(&renamed, deltag, addtag)
        })
    }

    /// One `lvchange` swapping the tag `deltag` for `addtag` on every LV in `lvs`.
    pub(super) fn retag(&self, lvs: &[String], deltag: &str, addtag: &str) -> Result<()> {
        if lvs.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = ["lvchange", "-q", "--deltag", deltag, "--addtag", addtag]
            .map(String::from)
            .to_vec();
        args.extend(lvs.iter().map(|l| self.lv_path(l)));
        cli::lvm(&args).map(drop)
    }

    pub(super) fn do_rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let vol = self.find_volume(&lvs, from)?;
        let enc_to = naming::encode(to.as_str());
        if self.find_volume(&lvs, to).is_ok()
            || lvs
                .iter()
                .any(|l| l.tag_value(naming::KEY_VOLUME) == Some(&enc_to))
        {
            return Err(Error::exists(Kind::Volume, to));
        }
        let snaps = self.snapshots_in(&lvs, from);
        mounts::unmount(&self.vol_mnt(from))?;
        for s in &snaps {
            self.unmount_snapshot_in(&all, from, &s.name)?;
        }
        let (old_tag, new_tag) = (
            naming::tag(naming::KEY_VOLUME, from.as_str()),
            naming::tag(naming::KEY_VOLUME, to.as_str()),
        );
        let mut moves: Vec<(String, String)> = snaps
            .iter()
            .map(|s| (self.snap_lv(from, &s.name), self.snap_lv(to, &s.name)))
            .collect();
        moves.push((vol.name.clone(), self.vol_lv(to)));
        self.rename_lvs(&moves, &old_tag, &new_tag)
    }

    /// True when `m` is the volume's LV `lv` mounted by [`Self::mount_lv`]: its device
    /// node is the source. Such an LV exists and is ours (`mount_lv` checked it), and
    /// nothing renames or removes it while mounted (rename, restore and delete unmount
    /// first; LVM refuses to remove an open LV).
    pub(super) fn is_mounted_from(&self, m: &mounts::MountEntry, lv: &str) -> bool {
        Path::new(&m.source) == self.dev(lv)
    }

    pub(super) fn do_mount_volume(&self, name: &VolumeName) -> Result<PathBuf> {
        let at = self.vol_mnt(name);
        // Mounted already from the volume's own device: nothing to ask LVM.
        if mounts::mount_at(&at)?.is_some_and(|m| self.is_mounted_from(&m, &self.vol_lv(name))) {
            return Ok(at);
        }
        let lv = self.find_volume(&self.live_lvs()?, name)?;
        self.mount_lv(&lv, &at, VOLUME_MOUNT_OPTIONS)?;
        Ok(at)
    }

    /// `used` and `total` from the volume's filesystem; `free` the smaller of the
    /// filesystem's and the thin pool's free space.
    pub(super) fn do_volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        let at = self.vol_mnt(name);
        let all = self.pool_report()?;
        let lv = self.find_volume(&self.live(&all), name)?;
        let was_mounted = mounts::mount_at(&at)?.is_some();
        self.mount_lv(&lv, &at, VOLUME_MOUNT_OPTIONS)?;
        let st = nix::sys::statvfs::statvfs(&at).ctx("statvfs", &at);
        if !was_mounted {
            mounts::unmount(&at)?;
        }
        let st = st?;
        let frsize = st.fragment_size() as u64;
        let total = st.blocks() as u64 * frsize;
        let used = total.saturating_sub(st.blocks_free() as u64 * frsize);
        let fs_free = st.blocks_available() as u64 * frsize;
        let pool_free = self.usage_in(&all)?.free;
        Ok(Usage {
            total,
            used,
            free: fs_free.min(pool_free),
        })
    }

    pub(super) fn do_list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        Ok(self.volumes_in(&self.live_lvs()?))
    }

    /// The volumes among the complete LVs `live`, sorted by name.
    pub(super) fn volumes_in(&self, live: &[Lv]) -> Vec<VolumeInfo> {
        let mut out = Vec::new();
        for lv in live {
            if lv.is_snapshot() {
                continue;
            }
            let Some(name) = lv.volume_name() else {
                continue;
            };
            // Only the LV that has the volume's name (not a restore's old or new one).
            if lv.name == self.vol_lv(&name) {
                out.push(VolumeInfo {
                    created_at: created_at(lv),
                    name,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
