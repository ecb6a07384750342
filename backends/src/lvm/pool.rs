//! Pool operations: create (on a device, a loop file, or an existing thin pool), mount
//! (with the clean-up of interrupted work), unmount, delete, usage.

use std::path::{Path, PathBuf};

use super::parse::Lv;
use super::{cli, naming, LvmBackend, DRIVER};
use crate::backend::PoolSource;
use crate::cmd::{DMSETUP, LVM, THIN_CHECK};
use crate::error::{Error, IoContext, Kind, Result};
use crate::loopdev;
use crate::mounts;
use crate::names::{SnapshotName, VolumeName};
use crate::probe;
use crate::revert::Revert;
use crate::types::{CreateAction, DeleteAction, Usage};

/// What `mount_pool` does with the leftovers of interrupted work.
#[derive(Debug, Default, PartialEq)]
pub(super) struct LeftoverPlan {
    /// LVs tagged incomplete: removed.
    pub incomplete: Vec<String>,
    /// The old LVs of finished restores: removed.
    pub replaced: Vec<String>,
    /// The old LVs of unfinished restores, renamed back to the volume's LV: (from, to).
    pub rename_back: Vec<(String, String)>,
    /// LVs of an interrupted rename that cannot be finished, renamed back to the name
    /// their tags give: (from, to).
    pub undo_rename: Vec<(String, String)>,
    /// LVs of an interrupted rename that already have their new name: the name tag
    /// swapped to match it.
    pub retag: Vec<Retag>,
}

/// One LV whose name tag (`cairn-v=` or `cairn-s=`) `mount_pool` swaps.
#[derive(Debug, PartialEq)]
pub(super) struct Retag {
    pub lv: String,
    pub deltag: String,
    pub addtag: String,
}

/// An LV of ours, complete, with the volume (and snapshot) its tags name.
struct Tagged<'a> {
    lv: &'a Lv,
    volume: VolumeName,
    snapshot: Option<SnapshotName>,
}

/// The volume and snapshot an LV's tags name, if they decode to valid names.
fn tagged(lv: &Lv) -> Option<Tagged<'_>> {
    let volume = lv.volume_name()?;
    let snapshot = if lv.is_snapshot() {
        Some(lv.snapshot_name()?)
    } else {
        None
    };
    Some(Tagged {
        lv,
        volume,
        snapshot,
    })
}

impl LvmBackend {
    /// The tools and kernel support every pool operation needs.
    fn require_lvm(&self) -> Result<()> {
        LVM.resolve()?;
        THIN_CHECK.resolve()?;
        cli::require_dm_thin()
    }

    fn vg_is_ours(&self, tags: &[String]) -> bool {
        tags.iter().any(|t| t == naming::TAG) && tags.contains(&self.pool_tag)
    }

    /// `Some(true)`: our VG exists; `Some(false)`: a VG of that name that is not ours.
    fn own_vg_state(&self) -> Result<Option<bool>> {
        Ok(cli::vg(&self.vg)?.map(|vg| self.vg_is_ours(&vg.tags)))
    }

    fn not_ours(&self, op: &'static str) -> Error {
        self.invalid(
            op,
            format!(
                "volume group {} exists but was not made by cairn for this pool; it is left alone",
                self.vg
            ),
        )
    }

    fn make_dirs(&self) -> Result<()> {
        for d in [
            self.mnt_root().join("volumes"),
            self.mnt_root().join("snapshots"),
        ] {
            std::fs::create_dir_all(&d).ctx("create directory", &d)?;
        }
        Ok(())
    }

    /// pvcreate + vgcreate + the thin pool on `dev`, each undone on failure.
    fn make_vg(&self, dev: &Path, force: bool, rv: &mut Revert<'_>) -> Result<()> {
        let mut pv = cli::argv(["pvcreate", "-q"]);
        if force {
            pv.extend(cli::argv(["-ff", "-y"]));
        }
        pv.push(dev.into());
        cli::lvm(&pv)?;
        let d = dev.to_path_buf();
        rv.add("pvremove", move || {
            cli::lvm(&[
                "pvremove".as_ref(),
                "-q".as_ref(),
                "-y".as_ref(),
                d.as_os_str(),
            ])
            .map(drop)
        });
        let mut vg = cli::argv([
            "vgcreate",
            "-q",
            "--addtag",
            naming::TAG,
            "--addtag",
            &self.pool_tag,
            &self.vg,
        ]);
        vg.push(dev.into());
        cli::lvm(&vg)?;
        let name = self.vg.clone();
        rv.add("vgremove", move || {
            cli::lvm(&["vgremove", "-q", "-f", &name]).map(drop)
        });
        // 90% of the VG: room for the metadata LV and its spare.
        cli::lvm(&[
            "lvcreate",
            "-q",
            "--type",
            "thin-pool",
            "-l",
            "90%FREE",
            "-Zy",
            "-n",
            &self.thin_pool,
            "--addtag",
            naming::TAG,
            "--addtag",
            &self.pool_tag,
            &self.vg,
        ])?;
        // A full pool fails writes at once instead of queueing them (lvcreate refuses
        // this option for thin pools).
        cli::lvm(&[
            "lvchange",
            "-q",
            "--errorwhenfull",
            "y",
            &self.lv_path(&self.thin_pool),
        ])?;
        Ok(())
    }

    pub(super) fn do_create_pool(&self) -> Result<CreateAction<()>> {
        const OP: &str = "create pool";
        self.check_source(OP)?;
        self.require_lvm()?;
        let action = Revert::new().run(|rv| match &self.spec.source {
            PoolSource::Existing { name } => {
                let lvs = cli::lvs(&self.vg)?;
                let tp = lvs
                    .iter()
                    .find(|l| l.name == self.thin_pool)
                    .ok_or_else(|| Error::not_found(Kind::Pool, name))?;
                if !tp.is_thin_pool() {
                    return Err(self.invalid(OP, format!("{name} is not a thin pool")));
                }
                if self.is_ours(tp) {
                    return Ok(CreateAction::Identity);
                }
                cli::lvm(&[
                    "lvchange",
                    "--addtag",
                    naming::TAG,
                    "--addtag",
                    &self.pool_tag,
                    name,
                ])?;
                Ok(CreateAction::Created(()))
            }
            PoolSource::Device { path, force } => match self.own_vg_state()? {
                Some(true) => Ok(CreateAction::Identity),
                Some(false) => Err(self.not_ours(OP)),
                None => {
                    probe::refuse_unless_forced(path, *force, DRIVER)?;
                    self.make_vg(path, *force, rv)?;
                    Ok(CreateAction::Created(()))
                }
            },
            PoolSource::LoopFile { path, size } => {
                if path.exists() {
                    let attached = loopdev::find(path)?.is_some();
                    loopdev::attach(path)?;
                    return match self.own_vg_state()? {
                        Some(true) => Ok(CreateAction::Identity),
                        _ => {
                            if !attached {
                                loopdev::detach(path)?;
                            }
                            Err(self.invalid(
                                OP,
                                format!(
                                    "{} exists and holds no cairn pool; refusing to overwrite it",
                                    path.display()
                                ),
                            ))
                        }
                    };
                }
                if self.own_vg_state()?.is_some() {
                    return Err(self.not_ours(OP));
                }
                loopdev::create_file(path, size.0)?;
                let p = path.clone();
                rv.add("remove loop file", move || {
                    std::fs::remove_file(&p).ctx("remove loop file", &p)
                });
                let dev = loopdev::attach(path)?;
                let p = path.clone();
                rv.add("detach loop device", move || loopdev::detach(&p));
                self.make_vg(&dev, false, rv)?;
                Ok(CreateAction::Created(()))
            }
            PoolSource::StateDir | PoolSource::Directory { .. } => unreachable!("checked"),
        })?;
        if !action.is_created() {
            self.do_mount_pool()?;
        }
        self.make_dirs()?;
        Ok(action)
    }

    pub(super) fn do_mount_pool(&self) -> Result<()> {
        const OP: &str = "mount pool";
        self.check_source(OP)?;
        self.require_lvm()?;
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            if !path.exists() {
                return Err(Error::not_found(Kind::Pool, &self.spec.name));
            }
            loopdev::attach(path)?;
        }
        if self.owned && self.own_vg_state()? != Some(true) {
            return Err(self.invalid(OP, format!("volume group {} holds no cairn pool", self.vg)));
        }
        self.resume_suspended()?;
        let lvs = cli::lvs(&self.vg)?;
        let tp = self.thin_pool_lv(&lvs)?;
        if !self.is_ours(&tp) {
            return Err(self.invalid(OP, format!("{}/{} is not ours", self.vg, self.thin_pool)));
        }
        if !tp.active {
            cli::lvm(&["lvchange", "-ay", &self.lv_path(&self.thin_pool)])?;
        }
        self.make_dirs()?;
        self.clean_leftovers(&lvs)
    }

    /// Resumes devices of the VG that a killed LVM command left suspended (their I/O
    /// would hang forever).
    fn resume_suspended(&self) -> Result<()> {
        let prefix = naming::dm_name(&self.vg, "");
        let out = match DMSETUP.run(&[
            "info",
            "-c",
            "--noheadings",
            "-o",
            "name,suspended",
            "--separator",
            ":",
        ]) {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(error = %e, "dmsetup info failed; not checking for suspended devices");
                return Ok(());
            }
        };
        for line in out.lines() {
            if let Some((name, state)) = line.rsplit_once(':') {
                if name.starts_with(&prefix) && state.trim() == "Suspended" {
                    tracing::warn!(device = name, "resuming a device left suspended");
                    DMSETUP.run(&["resume", name])?;
                }
            }
        }
        Ok(())
    }

    /// What `mount_pool` does with the leftovers of interrupted work in the report `all`:
    /// LVs of ours tagged incomplete are removed; a restore's old LV (`o-<vol>`) is removed
    /// too when the volume exists (the restore was done), else renamed back (undone); LVs
    /// of an interrupted rename are retagged or renamed back ([`Self::rename_leftovers`]).
    pub(super) fn leftover_plan(&self, all: &[Lv]) -> LeftoverPlan {
        let lvs = self.ours(all);
        let doomed: Vec<String> = lvs
            .iter()
            .filter(|l| l.has_tag(naming::TAG_INCOMPLETE))
            .map(|l| l.name.clone())
            .collect();
        let mut plan = LeftoverPlan {
            incomplete: doomed.clone(),
            ..LeftoverPlan::default()
        };
        for lv in lvs.iter().filter(|l| !doomed.contains(&l.name)) {
            let Some(v) = lv.volume_name() else {
                continue;
            };
            if lv.is_snapshot() || lv.name != self.restore_lv("o", &v) {
                continue;
            }
            let vol = self.vol_lv(&v);
            if lvs
                .iter()
                .any(|l| l.name == vol && !doomed.contains(&l.name))
            {
                plan.replaced.push(lv.name.clone());
            } else {
                plan.rename_back.push((lv.name.clone(), vol));
            }
        }
        let settled: Vec<&Lv> = lvs
            .iter()
            .filter(|l| !doomed.contains(&l.name) && !l.is_thin_pool())
            .collect();
        // Names an LV may be renamed back to: none that stays in the VG.
        let taken: Vec<&str> = all
            .iter()
            .filter(|l| !doomed.contains(&l.name))
            .map(|l| l.name.as_str())
            .collect();
        (plan.undo_rename, plan.retag) = self.rename_leftovers(&settled, &taken);
        plan
    }

    /// The LV name for volume `v`, or for its snapshot `s`.
    fn lv_for(&self, v: &VolumeName, s: Option<&SnapshotName>) -> String {
        match s {
            Some(s) => self.snap_lv(v, s),
            None => self.vol_lv(v),
        }
    }

    /// The volume and snapshot an LV name of ours spells out, when it is not hashed.
    fn names_in(&self, lv_name: &str) -> Option<(VolumeName, Option<SnapshotName>)> {
        let rest = lv_name.strip_prefix(self.prefix.as_str())?;
        let (kind, parts) = rest.split_once('-')?;
        let decode = |p: &str| naming::decode(p)?.parse().ok();
        let names = match kind {
            "v" => (decode(parts)?, None),
            "s" => {
                let (v, s) = parts.split_once('-')?;
                (decode(v)?, Some(naming::decode(s)?.parse().ok()?))
            }
            _ => return None,
        };
        (self.lv_for(&names.0, names.1.as_ref()) == lv_name).then_some(names)
    }

    /// LVs whose name and tags disagree: a rename renames every LV first (one `lvrename`
    /// each), then swaps their tag in one `lvchange` that commits one LV after the other,
    /// so a crash leaves some LVs renamed but not retagged. Among `settled` (our complete
    /// LVs, thin pool left out), each such LV is settled so that a volume and its snapshots
    /// end under one name:
    /// 1. Another LV already carries the new volume name in its tags (the retag had begun):
    ///    retag this one to it.
    /// 2. LVs that still agree with the old volume name exist (the renames had not all
    ///    run): rename this one back, unless it is a snapshot rename (same volume, a new
    ///    snapshot name the LV name spells out): retag it.
    /// 3. Every LV of the volume was renamed, none retagged: retag them all to the volume
    ///    name their LV names spell out, or rename them all back when a name is hashed.
    ///
    /// Renames back whose target is `taken` are left out (the LV stays hidden, as it was).
    fn rename_leftovers(
        &self,
        settled: &[&Lv],
        taken: &[&str],
    ) -> (Vec<(String, String)>, Vec<Retag>) {
        let mut agree: Vec<Tagged<'_>> = Vec::new();
        let mut moved: Vec<Tagged<'_>> = Vec::new();
        for t in settled.iter().filter_map(|l| tagged(l)) {
            let restore = [
                self.restore_lv("o", &t.volume),
                self.restore_lv("n", &t.volume),
            ];
            if t.lv.name == self.lv_for(&t.volume, t.snapshot.as_ref()) {
                agree.push(t);
            } else if t.snapshot.is_some() || !restore.contains(&t.lv.name) {
                moved.push(t);
            }
        }
        let (mut undo, mut retag) = (Vec::new(), Vec::new());
        let mut back = |t: &Tagged<'_>| {
            let to = self.lv_for(&t.volume, t.snapshot.as_ref());
            if taken.contains(&to.as_str()) {
                tracing::warn!(lv = %t.lv.name, to = %to, "cannot undo an interrupted rename: the name is taken");
            } else {
                undo.push((t.lv.name.clone(), to));
            }
        };
        let volume_tag = |v: &VolumeName| naming::tag(naming::KEY_VOLUME, v.as_str());
        let mut whole_volume: Vec<&Tagged<'_>> = Vec::new();
        for t in &moved {
            let s = t.snapshot.as_ref();
            // 1. The new volume name is in another LV's tags.
            if let Some(w) = agree
                .iter()
                .map(|a| &a.volume)
                .find(|w| **w != t.volume && self.lv_for(w, s) == t.lv.name)
            {
                retag.push(Retag {
                    lv: t.lv.name.clone(),
                    deltag: volume_tag(&t.volume),
                    addtag: volume_tag(w),
                });
            } else if agree.iter().any(|a| a.volume == t.volume) {
                // 2. The volume is still there under its old name.
                match (s, self.names_in(&t.lv.name)) {
                    (Some(old), Some((v, Some(new)))) if v == t.volume && new != *old => retag
                        .push(Retag {
                            lv: t.lv.name.clone(),
                            deltag: naming::tag(naming::KEY_SNAPSHOT, old.as_str()),
                            addtag: naming::tag(naming::KEY_SNAPSHOT, new.as_str()),
                        }),
                    _ => back(t),
                }
            } else {
                whole_volume.push(t);
            }
        }
        // 3. One decision per old volume name, for all its LVs.
        let mut olds: Vec<&VolumeName> = whole_volume.iter().map(|t| &t.volume).collect();
        olds.sort();
        olds.dedup();
        for old in olds {
            let group: Vec<&&Tagged<'_>> =
                whole_volume.iter().filter(|t| t.volume == *old).collect();
            let new = group
                .iter()
                .filter_map(|t| self.names_in(&t.lv.name))
                .map(|(w, _)| w)
                .find(|w| {
                    w != old
                        && group
                            .iter()
                            .all(|t| self.lv_for(w, t.snapshot.as_ref()) == t.lv.name)
                });
            for t in group {
                match &new {
                    Some(w) => retag.push(Retag {
                        lv: t.lv.name.clone(),
                        deltag: volume_tag(old),
                        addtag: volume_tag(w),
                    }),
                    None => back(t),
                }
            }
        }
        (undo, retag)
    }

    /// Deletes LVs of interrupted operations and finishes or undoes interrupted restores,
    /// as of the report `all`: one `lvremove`, then the renames (after it, so that an
    /// incomplete `v-<vol>` is gone before `o-<vol>` takes its name back).
    fn clean_leftovers(&self, all: &[Lv]) -> Result<()> {
        let plan = self.leftover_plan(all);
        for name in &plan.incomplete {
            tracing::info!(lv = %name, "removing the leftover of an interrupted operation");
        }
        for name in &plan.replaced {
            tracing::info!(lv = %name, "removing the old live state of a finished restore");
        }
        let mut doomed = plan.incomplete;
        doomed.extend(plan.replaced);
        self.remove_lvs(&doomed)?;
        for (from, to) in &plan.rename_back {
            tracing::info!(lv = %from, to = %to, "undoing an interrupted restore");
            cli::lvm(&["lvrename", &self.vg, from, to])?;
        }
        for (from, to) in &plan.undo_rename {
            tracing::info!(lv = %from, to = %to, "undoing an interrupted rename");
            cli::lvm(&["lvrename", "-q", &self.vg, from, to])?;
        }
        // One lvchange per tag swap: a volume rename's LVs all share theirs.
        let mut swaps: Vec<(&str, &str, Vec<String>)> = Vec::new();
        for r in &plan.retag {
            tracing::info!(lv = %r.lv, tag = %r.addtag, "finishing an interrupted rename");
            match swaps
                .iter_mut()
                .find(|(d, a, _)| *d == r.deltag && *a == r.addtag)
            {
                Some((_, _, lvs)) => lvs.push(r.lv.clone()),
                None => swaps.push((&r.deltag, &r.addtag, vec![r.lv.clone()])),
            }
        }
        for (deltag, addtag, lvs) in swaps {
            self.retag(&lvs, deltag, addtag)?;
        }
        Ok(())
    }

    /// Unmounts everything under `<state_dir>/mnt`, deepest first.
    fn unmount_all(&self) -> Result<()> {
        let root = self.mnt_root();
        let mut points: Vec<PathBuf> = mounts::mounts()?
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&root) && *p != root)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        points.dedup();
        for p in points {
            mounts::unmount(&p)?;
        }
        Ok(())
    }

    pub(super) fn do_unmount_pool(&self) -> Result<()> {
        self.check_source("unmount pool")?;
        self.unmount_all()?;
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            if !path.exists() || loopdev::find(path)?.is_none() {
                return Ok(());
            }
        }
        if self.owned {
            if self.own_vg_state()? == Some(true) {
                cli::lvm(&["vgchange", "-q", "-an", &self.vg])?;
            }
        } else {
            let active: Vec<String> = self
                .our_lvs()?
                .into_iter()
                .filter(|l| l.active && !l.is_thin_pool())
                .map(|l| self.lv_path(&l.name))
                .collect();
            if !active.is_empty() {
                let mut args = vec!["lvchange".to_string(), "-an".to_string()];
                args.extend(active);
                cli::lvm(&args)?;
            }
        }
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            loopdev::detach(path)?;
        }
        Ok(())
    }

    pub(super) fn do_delete_pool(&self) -> Result<DeleteAction> {
        const OP: &str = "delete pool";
        self.check_source(OP)?;
        // The report the Existing check takes is the one the rest of the operation reads.
        let mut report = None;
        let present = match &self.spec.source {
            PoolSource::LoopFile { path, .. } => {
                if !path.exists() {
                    false
                } else {
                    self.do_mount_pool()?; // refuses a file that is not ours
                    true
                }
            }
            PoolSource::Existing { .. } => {
                let all = cli::lvs(&self.vg)?;
                let present = all
                    .iter()
                    .any(|l| l.name == self.thin_pool && self.is_ours(l));
                report = Some(all);
                present
            }
            _ => match self.own_vg_state()? {
                Some(true) => true,
                Some(false) => return Err(self.not_ours(OP)),
                None => false,
            },
        };
        if !present {
            return Ok(DeleteAction::Identity);
        }
        let all = match report {
            Some(all) => {
                self.check_pool(&all)?;
                all
            }
            None => self.pool_report()?,
        };
        let vols = self.volumes_in(&self.live(&all));
        if !vols.is_empty() {
            let names: Vec<String> = vols.iter().map(|v| v.name.to_string()).collect();
            return Err(Error::Busy {
                op: OP,
                object: self.spec.name.to_string(),
                reason: format!(
                    "it still holds volumes ({}): delete them first",
                    names.join(", ")
                ),
            });
        }
        self.unmount_all()?;
        let rest: Vec<String> = self
            .ours(&all)
            .into_iter()
            .filter(|l| !l.is_thin_pool())
            .map(|l| l.name)
            .collect();
        self.remove_lvs(&rest)?;
        match &self.spec.source {
            PoolSource::Existing { name } => {
                cli::lvm(&[
                    "lvchange",
                    "--deltag",
                    naming::TAG,
                    "--deltag",
                    &self.pool_tag,
                    name,
                ])?;
            }
            PoolSource::Device { .. } | PoolSource::LoopFile { .. } => {
                let pvs = cli::pvs_of(&self.vg)?;
                cli::lvm(&["vgremove", "-q", "-f", &self.vg])?;
                if !pvs.is_empty() {
                    let mut args = cli::argv(["pvremove", "-q", "-y"]);
                    args.extend(pvs.into_iter().map(|pv| pv.name.into()));
                    cli::lvm(&args)?;
                }
                if let PoolSource::LoopFile { path, .. } = &self.spec.source {
                    loopdev::detach(path)?;
                    std::fs::remove_file(path).ctx("remove loop file", path)?;
                }
            }
            PoolSource::StateDir | PoolSource::Directory { .. } => unreachable!("checked"),
        }
        for d in [
            self.mnt_root().join("volumes"),
            self.mnt_root().join("snapshots"),
            self.mnt_root(),
        ] {
            let _ = std::fs::remove_dir(&d);
        }
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_pool_usage(&self) -> Result<Usage> {
        self.usage_in(&cli::lvs(&self.vg)?)
    }

    /// The thin pool's usage as of the report `all`.
    pub(super) fn usage_in(&self, all: &[Lv]) -> Result<Usage> {
        let tp = self.thin_pool_lv(all)?;
        let used = (tp.size as f64 * tp.data_percent.unwrap_or(0.0) / 100.0) as u64;
        Ok(Usage {
            total: tp.size,
            used,
            free: tp.size.saturating_sub(used),
        })
    }
}
