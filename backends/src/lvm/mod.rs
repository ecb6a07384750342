//! The LVM thin driver: a pool is a thin pool in a volume group, a volume a thin LV with
//! an ext4 filesystem, a snapshot a read-only thin snapshot of it.
//!
//! ## On the storage
//! - **Pool.** For `Device` and `LoopFile` sources cairn makes the VG
//!   (`cairn_<pool>_<hash of state_dir>`, see [`naming::vg_name`]) and a thin pool
//!   `thinpool` in it, created with `--errorwhenfull y` (a full pool fails writes at once
//!   instead of queueing them) and zeroing on. For `Existing { name: "vg/thinpool" }` the
//!   thin pool is used as is: cairn only adds its tags to it and makes its LVs beside the
//!   others, with a per-pool name prefix. Autoextend is LVM's job: set
//!   `activation/thin_pool_autoextend_threshold` (e.g. 80) and `..._percent` in
//!   `lvm.conf` with dmeventd running; cairn refuses snapshots, clones and new volumes
//!   when the pool's data or metadata is 95% full (`NoSpace`).
//! - **Ownership.** Everything cairn makes carries the tag `cairn` and
//!   `cairn-pool=<pool>-<hash of state_dir>`; a VG or LV without them is never changed
//!   or deleted. The state directory's hash (in the tag and in the LV name prefix) keeps
//!   two pools of the same name on one existing thin pool apart.
//! - **Volumes** are thin LVs `v-<name>` as large as the thin pool, ext4 (lazy inode table
//!   init: thin LVs read unprovisioned blocks as zeros), mounted at
//!   `<state_dir>/mnt/volumes/<vol>`. **Snapshots** are thin snapshots `s-<vol>-<snap>`
//!   made read-only (`-p r`) and skipped at activation in the same `lvcreate`; mounted
//!   on demand `ro,noload` at `<state_dir>/mnt/snapshots/<vol>/<snap>`. Real names and
//!   creation times (ns) are LV tags ([`naming`]): the storage is the source of truth.
//!
//! ## Atomicity
//! - A snapshot is one `lvcreate` (one metadata commit): whole or absent after a crash.
//! - Volumes, clones and restores are built under the tag `cairn-incomplete`, removed as
//!   the last step; listings skip such LVs and `mount_pool` deletes them.
//! - Restore makes a writable snapshot of the chosen snapshot (`n-<vol>`, incomplete),
//!   renames the volume to `o-<vol>` and the new LV to `v-<vol>`, drops the tag, removes
//!   `o-<vol>`. `mount_pool` finishes or undoes an interrupted one: an `o-<vol>` is
//!   removed when `v-<vol>` exists, else renamed back.
//! - Renaming a volume renames its LVs one `lvrename` at a time (LVM has no multi-LV
//!   rename), then swaps their `cairn-v` tag in one `lvchange`; a failure renames back
//!   what was done. A crash in between leaves LVs whose name and tags disagree (hidden
//!   from listings): `mount_pool` retags them to the name their LV names give, or renames
//!   them back where it cannot tell (hashed names), the volume and its snapshots alike.
//! - A process killed while LVM had a device suspended leaves it suspended; `mount_pool`
//!   resumes suspended devices of the VG.
//!
//! ## LVM calls
//! Every `lvm` command costs a start-up (0.3–1.5 s under qemu TCG), so an operation takes
//! one `lvs` report of the VG and passes it down: lookups, the ownership and fill checks,
//! the leftovers to clear and the listings are pure functions over `&[Lv]` (tested in
//! `tests.rs`). Calls whose result is known are skipped: an LV without a device node is
//! inactive, and a volume mounted from its own device node exists. With `CAIRN_LOG=debug`
//! each operation's commands are logged inside the span `lvm{op=...}`.
//!
//! ## Native send
//! Streams carry only the blocks the thin pool's metadata says a snapshot maps, or that
//! changed since a base snapshot (`thin_dump`/`thin_delta` on a reserved metadata
//! snapshot); format in [`stream`], the procedure and the receive side in [`send`].

mod cli;
mod naming;
mod parse;
mod pool;
mod send;
mod snapshots;
mod stream;
#[cfg(test)]
mod tests;
mod volumes;

use std::io::{Read, Write};
use std::path::PathBuf;

use crate::backend::{Backend, PoolSource, PoolSpec};
use crate::error::{Error, Kind, Result};
use crate::names::{SnapshotName, VolumeName};
use crate::types::{
    Capabilities, CloneSource, CreateAction, DeleteAction, DriverInfo, SendStats, SnapshotInfo,
    Usage, VolumeInfo,
};

pub use cli::require_dm_thin;
use parse::Lv;

pub(crate) const DRIVER: &str = "lvm";

/// Refuse snapshots, clones and new volumes above this fill level of the thin pool.
const FULL_PERCENT: f64 = 95.0;

/// One LVM thin pool.
pub struct LvmBackend {
    spec: PoolSpec,
    /// The VG and thin pool (empty for sources this driver refuses).
    vg: String,
    thin_pool: String,
    /// The VG was made by cairn (`Device`/`LoopFile`), not given (`Existing`).
    owned: bool,
    /// Prefix of our LV names (empty in a VG of our own).
    prefix: String,
    /// `cairn-pool=<pool>-<state dir hash>` ([`naming::pool_tag`]).
    pool_tag: String,
}

impl LvmBackend {
    /// Binds the driver to `spec`; touches nothing.
    pub fn new(spec: PoolSpec) -> Self {
        let pool_tag = naming::pool_tag(spec.name.as_str(), &spec.state_dir);
        let (vg, thin_pool, owned, prefix) = match &spec.source {
            PoolSource::Device { .. } | PoolSource::LoopFile { .. } => (
                naming::vg_name(spec.name.as_str(), &spec.state_dir),
                "thinpool".to_string(),
                true,
                String::new(),
            ),
            PoolSource::Existing { name } => {
                let (vg, tp) = name.split_once('/').unwrap_or(("", ""));
                (
                    vg.to_string(),
                    tp.to_string(),
                    false,
                    naming::lv_prefix(spec.name.as_str(), &spec.state_dir),
                )
            }
            PoolSource::StateDir | PoolSource::Directory { .. } => {
                (String::new(), String::new(), false, String::new())
            }
        };
        LvmBackend {
            spec,
            vg,
            thin_pool,
            owned,
            prefix,
            pool_tag,
        }
    }

    fn invalid(&self, op: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            op,
            object: self.spec.name.to_string(),
            reason: reason.into(),
        }
    }

    /// Fails for sources this driver cannot use.
    fn check_source(&self, op: &'static str) -> Result<()> {
        match &self.spec.source {
            PoolSource::StateDir | PoolSource::Directory { .. } => Err(self.invalid(
                op,
                "the lvm driver needs a block device, a loop file or an existing thin pool (vg/thinpool)",
            )),
            PoolSource::Existing { name } if self.vg.is_empty() || self.thin_pool.is_empty() => {
                Err(self.invalid(
                    op,
                    format!("{name:?} is not an LVM thin pool name of the form vg/thinpool"),
                ))
            }
            _ => Ok(()),
        }
    }

    fn lv_path(&self, lv: &str) -> String {
        format!("{}/{}", self.vg, lv)
    }

    /// The device node of one of our LVs.
    fn dev(&self, lv: &str) -> PathBuf {
        PathBuf::from("/dev/mapper").join(naming::dm_name(&self.vg, lv))
    }

    fn vol_lv(&self, v: &VolumeName) -> String {
        naming::lv_name(&self.vg, &self.prefix, "v", &[v.as_str()])
    }

    fn snap_lv(&self, v: &VolumeName, s: &SnapshotName) -> String {
        naming::lv_name(&self.vg, &self.prefix, "s", &[v.as_str(), s.as_str()])
    }

    /// Names of a restore's new (`n`) and old (`o`) LVs.
    fn restore_lv(&self, kind: &str, v: &VolumeName) -> String {
        naming::lv_name(&self.vg, &self.prefix, kind, &[v.as_str()])
    }

    fn mnt_root(&self) -> PathBuf {
        self.spec.state_dir.join("mnt")
    }

    fn vol_mnt(&self, v: &VolumeName) -> PathBuf {
        self.mnt_root().join("volumes").join(v)
    }

    fn snap_mnt(&self, v: &VolumeName, s: &SnapshotName) -> PathBuf {
        self.mnt_root().join("snapshots").join(v).join(s)
    }

    fn is_ours(&self, lv: &Lv) -> bool {
        lv.has_tag(naming::TAG) && lv.has_tag(&self.pool_tag)
    }

    /// Every LV of the VG: one `lvs` call (empty when the VG does not exist). An operation
    /// takes it once and passes it down; the helpers that take `&[Lv]` only read it.
    fn report(&self) -> Result<Vec<Lv>> {
        if self.vg.is_empty() {
            return Ok(Vec::new());
        }
        cli::lvs(&self.vg)
    }

    /// Our LVs in a report (the thin pool included for a VG of our own).
    fn ours(&self, all: &[Lv]) -> Vec<Lv> {
        all.iter().filter(|l| self.is_ours(l)).cloned().collect()
    }

    /// Our LVs in the VG (one `lvs` call).
    fn our_lvs(&self) -> Result<Vec<Lv>> {
        Ok(self.ours(&self.report()?))
    }

    /// The thin pool, or an error saying the pool is not there.
    fn thin_pool_lv(&self, lvs: &[Lv]) -> Result<Lv> {
        lvs.iter()
            .find(|l| l.name == self.thin_pool && l.is_thin_pool())
            .cloned()
            .ok_or_else(|| self.no_pool())
    }

    fn no_pool(&self) -> Error {
        self.invalid(
            "use pool",
            format!(
                "no cairn thin pool {}/{} (create or mount the pool first)",
                self.vg, self.thin_pool
            ),
        )
    }

    /// Fails unless the report holds our thin pool.
    fn check_pool(&self, all: &[Lv]) -> Result<()> {
        let tp = all.iter().find(|l| l.name == self.thin_pool);
        if tp.is_some_and(|l| l.is_thin_pool() && self.is_ours(l)) {
            Ok(())
        } else {
            Err(self.no_pool())
        }
    }

    /// The report of a pool in use (one `lvs` call), failing unless our thin pool is there.
    fn pool_report(&self) -> Result<Vec<Lv>> {
        self.check_source("use pool")?;
        let all = cli::lvs(&self.vg)?;
        self.check_pool(&all)?;
        Ok(all)
    }

    /// Our complete LVs in a report, the thin pool left out: what objects are looked up in.
    fn live(&self, all: &[Lv]) -> Vec<Lv> {
        all.iter()
            .filter(|l| self.is_ours(l) && !l.has_tag(naming::TAG_INCOMPLETE) && !l.is_thin_pool())
            .cloned()
            .collect()
    }

    /// Our complete LVs, failing unless the pool is there (one `lvs` call).
    fn live_lvs(&self) -> Result<Vec<Lv>> {
        Ok(self.live(&self.pool_report()?))
    }

    /// The volume's LV, or `NotFound`: an LV of ours whose tags name the volume and whose
    /// LV name is the volume's.
    fn find_volume(&self, lvs: &[Lv], v: &VolumeName) -> Result<Lv> {
        let name = self.vol_lv(v);
        lvs.iter()
            .find(|l| l.name == name && !l.is_snapshot())
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Volume, v))
    }

    fn find_snapshot(&self, lvs: &[Lv], v: &VolumeName, s: &SnapshotName) -> Result<Lv> {
        let name = self.snap_lv(v, s);
        lvs.iter()
            .find(|l| l.name == name && l.is_snapshot())
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Snapshot, format!("{v}/{s}")))
    }

    /// The `--addtag` arguments for a new LV of volume `v` (and snapshot `s`).
    fn tag_args(
        &self,
        v: &VolumeName,
        s: Option<&SnapshotName>,
        ns: i128,
        incomplete: bool,
    ) -> Vec<String> {
        let mut tags = vec![
            naming::TAG.to_string(),
            self.pool_tag.clone(),
            naming::tag(naming::KEY_VOLUME, v.as_str()),
            format!("{}={ns}", naming::KEY_TIME),
        ];
        if let Some(s) = s {
            tags.push(naming::tag(naming::KEY_SNAPSHOT, s.as_str()));
        }
        if incomplete {
            tags.push(naming::TAG_INCOMPLETE.to_string());
        }
        tags.into_iter()
            .flat_map(|t| ["--addtag".to_string(), t])
            .collect()
    }

    /// Refuses with `NoSpace` when the thin pool in the report is nearly full.
    fn check_fill(&self, all: &[Lv], op: &'static str, object: &str) -> Result<()> {
        let tp = self.thin_pool_lv(all)?;
        let data = tp.data_percent.unwrap_or(0.0);
        let meta = tp.metadata_percent.unwrap_or(0.0);
        if data >= FULL_PERCENT || meta >= FULL_PERCENT {
            tracing::warn!(data, meta, pool = %self.spec.name, "thin pool nearly full");
            return Err(Error::NoSpace {
                op,
                object: format!(
                    "{object} (thin pool {}/{} is {data:.1}% full, metadata {meta:.1}%)",
                    self.vg, self.thin_pool
                ),
            });
        }
        Ok(())
    }

    /// Activates an LV (ignoring the skip flag) unless it is active.
    fn activate(&self, lv: &Lv) -> Result<()> {
        if !lv.active {
            cli::lvm(&["lvchange", "-ay", "-K", &self.lv_path(&lv.name)])?;
        }
        Ok(())
    }

    fn remove_lvs(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["lvremove".to_string(), "-f".to_string()];
        args.extend(names.iter().map(|n| self.lv_path(n)));
        cli::lvm(&args)?;
        Ok(())
    }
}

/// A debug span around one driver operation: with `CAIRN_LOG=debug` every command it
/// runs is logged inside `lvm{op=...}`, so the LVM calls of each operation can be counted.
fn op_span(op: &'static str) -> tracing::span::EnteredSpan {
    tracing::debug_span!("lvm", op).entered()
}

fn now_ns() -> i128 {
    jiff::Timestamp::now().as_nanosecond()
}

/// The creation time stored in an LV's tag.
fn created_at(lv: &Lv) -> jiff::Timestamp {
    lv.tag_value(naming::KEY_TIME)
        .and_then(|t| t.parse::<i128>().ok())
        .and_then(|ns| jiff::Timestamp::from_nanosecond(ns).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl Backend for LvmBackend {
    fn info(&self) -> DriverInfo {
        DriverInfo {
            name: DRIVER,
            capabilities: Capabilities {
                cow_clone: true,
                constant_time_snapshot: true,
                native_send: true,
                incremental_send: true,
                restore_any_snapshot: true,
                block_based: true,
                immutable_snapshots: true,
            },
        }
    }

    fn spec(&self) -> &PoolSpec {
        &self.spec
    }

    fn create_pool(&self) -> Result<CreateAction<()>> {
        let _op = op_span("create_pool");
        self.do_create_pool()
    }

    fn mount_pool(&self) -> Result<()> {
        let _op = op_span("mount_pool");
        self.do_mount_pool()
    }

    fn unmount_pool(&self) -> Result<()> {
        let _op = op_span("unmount_pool");
        self.do_unmount_pool()
    }

    fn delete_pool(&self) -> Result<DeleteAction> {
        let _op = op_span("delete_pool");
        self.do_delete_pool()
    }

    fn pool_usage(&self) -> Result<Usage> {
        let _op = op_span("pool_usage");
        self.do_pool_usage()
    }

    fn create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        let _op = op_span("create_volume");
        self.do_create_volume(name)
    }

    fn clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        let _op = op_span("clone_volume");
        self.do_clone_volume(src, dst)
    }

    fn delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        let _op = op_span("delete_volume");
        self.do_delete_volume(name)
    }

    fn rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        let _op = op_span("rename_volume");
        self.do_rename_volume(from, to)
    }

    fn mount_volume(&self, name: &VolumeName) -> Result<PathBuf> {
        let _op = op_span("mount_volume");
        self.do_mount_volume(name)
    }

    fn unmount_volume(&self, name: &VolumeName) -> Result<()> {
        let _op = op_span("unmount_volume");
        crate::mounts::unmount(&self.vol_mnt(name))
    }

    fn volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        let _op = op_span("volume_usage");
        self.do_volume_usage(name)
    }

    fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        let _op = op_span("list_volumes");
        self.do_list_volumes()
    }

    fn create_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<SnapshotInfo> {
        let _op = op_span("create_snapshot");
        self.do_create_snapshot(volume, snap)
    }

    fn list_snapshots(&self, volume: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        let _op = op_span("list_snapshots");
        self.do_list_snapshots(volume)
    }

    fn delete_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<DeleteAction> {
        let _op = op_span("delete_snapshot");
        self.do_delete_snapshot(volume, snap)
    }

    fn rename_snapshot(
        &self,
        volume: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        let _op = op_span("rename_snapshot");
        self.do_rename_snapshot(volume, from, to)
    }

    fn restore_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        let _op = op_span("restore_snapshot");
        self.do_restore_snapshot(volume, snap)
    }

    fn mount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<PathBuf> {
        let _op = op_span("mount_snapshot");
        self.do_mount_snapshot(volume, snap)
    }

    fn unmount_snapshot(&self, volume: &VolumeName, snap: &SnapshotName) -> Result<()> {
        let _op = op_span("unmount_snapshot");
        self.do_unmount_snapshot(volume, snap)
    }

    fn send(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        let _op = op_span("send");
        self.do_send(volume, snap, base, out)
    }

    fn receive(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        let _op = op_span("receive");
        self.do_receive(volume, snap, input)
    }
}
