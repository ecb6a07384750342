//! Snapshots of the dir driver: `snapshots/<vol>/<snap>/{meta.json,tree/}`, built in
//! `.tmp/` and renamed into place when whole; read-only views are bind mounts under
//! `state_dir/views/<vol>/<snap>`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{exists, sync_dir, write_synced, DirBackend};
use crate::copy::{copy_tree, remove_tree, set_times_like, CopyMode};
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::{rename_exchange, rename_noreplace};
use crate::mounts;
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{DeleteAction, SnapshotInfo};

const META: &str = "meta.json";
const TREE: &str = "tree";

/// The content of `meta.json`.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotMeta {
    created_at: Timestamp,
}

/// The creation time from `<dir>/meta.json`; `None` when missing or invalid (not a
/// snapshot: listings ignore it).
fn read_meta(dir: &Path) -> Option<Timestamp> {
    let text = std::fs::read_to_string(dir.join(META)).ok()?;
    let meta: SnapshotMeta = serde_json::from_str(&text).ok()?;
    dir.join(TREE).is_dir().then_some(meta.created_at)
}

fn snap_id(v: &VolumeName, s: &SnapshotName) -> String {
    format!("{v}@{s}")
}

impl DirBackend {
    /// The `tree/` of an existing snapshot, or `NotFound` (volume first).
    pub(super) fn snapshot_tree(&self, v: &VolumeName, s: &SnapshotName) -> Result<PathBuf> {
        self.volume_path(v)?;
        let dir = self.layout.snapshot(v, s);
        match read_meta(&dir) {
            Some(_) => Ok(dir.join(TREE)),
            None => Err(Error::not_found(Kind::Snapshot, snap_id(v, s))),
        }
    }

    fn view_path(&self, v: &VolumeName, s: &SnapshotName) -> Result<PathBuf> {
        Ok(self.state_dir_abs()?.join("views").join(v).join(s))
    }

    /// Removes every read-only view of the volume's snapshots.
    pub(super) fn unmount_views_of(&self, v: &VolumeName) -> Result<()> {
        if !exists(&self.spec.state_dir) {
            return Ok(());
        }
        let dir = self.state_dir_abs()?.join("views").join(v);
        self.unmount_under(&dir)?;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path()); // only empty mount points
            }
        }
        let _ = std::fs::remove_dir(&dir);
        Ok(())
    }

    pub(super) fn do_create_snapshot(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
    ) -> Result<SnapshotInfo> {
        let src = self.volume_path(v)?;
        let dst = self.layout.snapshot(v, s);
        if exists(&dst) {
            return Err(Error::exists(Kind::Snapshot, snap_id(v, s)));
        }
        let created_at = Timestamp::now();
        let tmp = self.layout.tmp_path("snapshot");
        Revert::new().run(|rv| {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&tmp)
                .ctx("create", &tmp)?;
            rv.add("remove partial snapshot", || remove_tree(&tmp));
            copy_tree(&src, &tmp.join(TREE), CopyMode::Auto)?;
            let meta = serde_json::to_string(&SnapshotMeta { created_at })
                .expect("a timestamp serialises");
            write_synced(&tmp.join(META), meta.as_bytes())?;
            sync_dir(&tmp)?;
            let parent = self.layout.snapshots(v);
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(&parent)
                .ctx("create", &parent)?;
            rename_noreplace(&tmp, &dst).map_err(|e| match e.raw_os_error() {
                Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
                    Error::exists(Kind::Snapshot, snap_id(v, s))
                }
                _ => Error::io("rename snapshot into place", &dst, e),
            })?;
            sync_dir(&parent)?;
            Ok(SnapshotInfo {
                volume: v.clone(),
                name: s.clone(),
                created_at,
            })
        })
    }

    pub(super) fn do_list_snapshots(&self, v: &VolumeName) -> Result<Vec<SnapshotInfo>> {
        self.volume_path(v)?;
        let dir = self.layout.snapshots(v);
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.ctx("read directory", &dir)?,
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.ctx("read directory", &dir)?;
            let Some(name) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(created_at) = read_meta(&entry.path()) {
                out.push(SnapshotInfo {
                    volume: v.clone(),
                    name,
                    created_at,
                });
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(out)
    }

    pub(super) fn do_delete_snapshot(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
    ) -> Result<DeleteAction> {
        self.check_pool()?;
        let dir = self.layout.snapshot(v, s);
        if !exists(&dir) {
            return Ok(DeleteAction::Identity);
        }
        self.do_unmount_snapshot(v, s)?;
        self.discard(&dir, "deleted-snapshot")?;
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_snapshot(
        &self,
        v: &VolumeName,
        from: &SnapshotName,
        to: &SnapshotName,
    ) -> Result<()> {
        self.snapshot_tree(v, from)?;
        let (src, dst) = (self.layout.snapshot(v, from), self.layout.snapshot(v, to));
        if exists(&dst) {
            return Err(Error::exists(Kind::Snapshot, snap_id(v, to)));
        }
        self.do_unmount_snapshot(v, from)?;
        rename_noreplace(&src, &dst).map_err(|e| match e.raw_os_error() {
            Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
                Error::exists(Kind::Snapshot, snap_id(v, to))
            }
            _ => Error::io("rename snapshot", &src, e),
        })
    }

    pub(super) fn do_restore_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<()> {
        let tree = self.snapshot_tree(v, s)?;
        let vol = self.layout.volume(v);
        self.refuse_mounts_in("restore volume", &vol)?;
        let tmp = self.layout.tmp_path("restore");
        copy_tree(&tree, &tmp, CopyMode::Auto)?;
        let times = match tmp.symlink_metadata() {
            Ok(m) => m,
            Err(e) => {
                remove_tree(&tmp)?;
                return Err(Error::io("stat", &tmp, e));
            }
        };
        if let Err(e) = rename_exchange(&tmp, &vol) {
            remove_tree(&tmp)?;
            return Err(Error::io("swap in restored state of", &vol, e));
        }
        set_times_like(&vol, &times)?;
        // `tmp` now holds the old live state; a failure here only leaves .tmp/ garbage.
        if let Err(e) = remove_tree(&tmp) {
            tracing::warn!(error = %e, "removing the replaced live state failed; mount_pool will");
        }
        Ok(())
    }

    pub(super) fn do_mount_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<PathBuf> {
        let tree = self.snapshot_tree(v, s)?;
        let view = self.view_path(v, s)?;
        if mounts::mount_at(&view)?.is_some() {
            return Ok(view);
        }
        let views = self.state_dir_abs()?.join("views");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&view)
            .ctx("create", &view)?;
        Revert::new()
            .run(|rv| {
                mounts::mount(&tree, &view, None, Some("bind"))?;
                rv.add("unmount view", || mounts::unmount(&view));
                crate::cmd::MOUNT.run(&[
                    "-o".as_ref(),
                    "remount,bind,ro".as_ref(),
                    view.as_os_str(),
                ])?;
                Ok(())
            })
            .inspect_err(|_| {
                let _ = std::fs::remove_dir(&view);
                let _ = std::fs::remove_dir(view.parent().unwrap_or(&views));
            })?;
        Ok(view)
    }

    pub(super) fn do_unmount_snapshot(&self, v: &VolumeName, s: &SnapshotName) -> Result<()> {
        if !exists(&self.spec.state_dir) {
            return Ok(());
        }
        let view = self.view_path(v, s)?;
        while mounts::mount_at(&view)?.is_some() {
            crate::cmd::UMOUNT.run(&[&view])?;
        }
        let _ = std::fs::remove_dir(&view);
        if let Some(parent) = view.parent() {
            let _ = std::fs::remove_dir(parent); // only when empty
        }
        Ok(())
    }
}
