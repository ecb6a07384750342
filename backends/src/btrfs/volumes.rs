//! Volumes: one writable subvolume each at `volumes/<vol>`, with `snapshots/<vol>/`.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::pool::make_dir;
use super::{subvol, BtrfsBackend};
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::rename_noreplace;
use crate::names::VolumeName;
use crate::revert::Revert;
use crate::types::{CloneSource, CreateAction, DeleteAction, Usage, VolumeInfo};

impl BtrfsBackend {
    /// The volume's subvolume, or `NotFound`.
    pub(super) fn volume_path(&self, name: &VolumeName) -> Result<PathBuf> {
        self.require_pool()?;
        let path = self.layout.volume(name);
        if subvol::is_subvolume(&path) {
            Ok(path)
        } else {
            Err(Error::not_found(Kind::Volume, name))
        }
    }

    /// Makes `snapshots/<vol>/` if missing, registering its removal.
    fn make_snapshots_dir(&self, name: &VolumeName, rv: &mut Revert<'_>) -> Result<()> {
        let dir = self.layout.snapshots(name);
        if make_dir(&dir)? {
            rv.add("remove snapshots directory", move || {
                std::fs::remove_dir(&dir).ctx("remove directory", &dir)
            });
        }
        Ok(())
    }

    pub(super) fn do_create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        self.require_pool()?;
        let path = self.layout.volume(name);
        if path.exists() {
            let empty = subvol::is_subvolume(&path)
                && std::fs::read_dir(&path)
                    .ctx("read volume", &path)?
                    .next()
                    .is_none();
            return if empty {
                Ok(CreateAction::Identity)
            } else {
                Err(Error::exists(Kind::Volume, name))
            };
        }
        Revert::new().run(|rv| {
            self.make_snapshots_dir(name, rv)?;
            subvol::create(&path).map_err(|e| exists_as(e, Kind::Volume, name))?;
            Ok(CreateAction::Created(()))
        })
    }

    pub(super) fn do_clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        let from = match src {
            CloneSource::Volume(v) => self.volume_path(v)?,
            CloneSource::Snapshot(v, s) => self.snapshot_path(v, s)?,
        };
        let to = self.layout.volume(dst);
        if to.exists() {
            return Err(Error::exists(Kind::Volume, dst));
        }
        Revert::new().run(|rv| {
            self.make_snapshots_dir(dst, rv)?;
            // One ioctl, made in place: an interrupted clone leaves no `dst`.
            subvol::snapshot(&from, &to, false).map_err(|e| exists_as(e, Kind::Volume, dst))
        })
    }

    pub(super) fn do_delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        self.require_pool()?;
        let vol = self.layout.volume(name);
        let snaps = self.layout.snapshots(name);
        let (has_vol, has_snaps) = (vol.exists(), snaps.exists());
        if !has_vol && !has_snaps {
            return Ok(DeleteAction::Identity);
        }
        // Out of sight first (snapshots, then the volume: never a volume without its
        // snapshots' directory in between), then delete; `.tmp/` leftovers are cleaned
        // by mount_pool if we crash.
        let mut doomed = Vec::new();
        for (present, path, what) in [(has_snaps, snaps, "snapshots"), (has_vol, vol, "volume")] {
            if present {
                let tmp = self.layout.tmp_path(&format!("deleted-{what}-{name}"));
                std::fs::rename(&path, &tmp).ctx("move aside for deletion", &path)?;
                doomed.push(tmp);
            }
        }
        for path in doomed {
            subvol::remove_tree(&path)?;
        }
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        let src = self.volume_path(from)?;
        let dst = self.layout.volume(to);
        let (src_snaps, dst_snaps) = (self.layout.snapshots(from), self.layout.snapshots(to));
        if dst.exists() || dst_snaps.exists() {
            return Err(Error::exists(Kind::Volume, to));
        }
        Revert::new().run(|rv| {
            rename_noreplace(&src, &dst).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::exists(Kind::Volume, to),
                _ => Error::io("rename volume", &src, e),
            })?;
            let (s, d) = (src.clone(), dst.clone());
            rv.add("rename volume back", move || {
                rename_noreplace(&d, &s).ctx("rename volume back", &d)
            });
            if src_snaps.exists() {
                rename_noreplace(&src_snaps, &dst_snaps)
                    .ctx("rename snapshots directory", &src_snaps)?;
            }
            Ok(())
        })
    }

    pub(super) fn do_volume_usage(&self, name: &VolumeName) -> Result<Usage> {
        let path = self.volume_path(name)?;
        let used = allocated_bytes(&path)?;
        Ok(Usage {
            used,
            ..self.fs_usage()?
        })
    }

    /// Names of the entries of `volumes/` (valid names only), sorted.
    pub(super) fn volume_names(&self) -> Result<Vec<String>> {
        let dir = self.layout.volumes();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx("read directory", &dir)? {
            let entry = entry.ctx("read directory", &dir)?;
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    pub(super) fn do_list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        self.require_pool()?;
        let mut out = Vec::new();
        for n in self.volume_names()? {
            let Ok(name) = n.parse::<VolumeName>() else {
                continue;
            };
            let path = self.layout.volume(&name);
            if subvol::is_subvolume(&path) {
                let created_at = subvol::created_at(&path)?;
                out.push(VolumeInfo { name, created_at });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Maps "exists" from a subvolume call to `AlreadyExists` for the named object.
pub(super) fn exists_as(e: Error, kind: Kind, name: impl std::fmt::Display) -> Error {
    if subvol::is_exists(&e) {
        Error::exists(kind, name)
    } else {
        e
    }
}

/// Bytes allocated to the files under `root` (st_blocks * 512, each inode once;
/// symlinks not followed).
pub(super) fn allocated_bytes(root: &Path) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).ctx("stat", &path)?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).ctx("read directory", &path)? {
                stack.push(entry.ctx("read directory", &path)?.path());
            }
        }
    }
    Ok(total)
}
