//! Volumes of the dir driver: directories under `volumes/`, created and cloned in `.tmp/`
//! and renamed into place when whole.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::{exists, DirBackend};
use crate::copy::{copy_tree, remove_tree, set_times_like, CopyMode};
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::rename_noreplace;
use crate::names::VolumeName;
use crate::revert::Revert;
use crate::types::{CloneSource, CreateAction, DeleteAction, VolumeInfo};

fn is_eexist(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST) || e.raw_os_error() == Some(libc::ENOTEMPTY)
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// The volume directory's birth time (statx), or its mtime where the filesystem has none.
fn created_at(path: &Path) -> Result<Timestamp> {
    let c = CString::new(path.as_os_str().as_bytes()).expect("paths have no NUL");
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let mask = libc::STATX_BTIME | libc::STATX_MTIME;
    // SAFETY: valid C string and out pointer.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, mask, stx.as_mut_ptr()) };
    if r < 0 {
        return Err(Error::io("stat", path, std::io::Error::last_os_error()));
    }
    // SAFETY: statx succeeded.
    let stx = unsafe { stx.assume_init() };
    let t = if stx.stx_mask & libc::STATX_BTIME != 0 {
        stx.stx_btime
    } else {
        stx.stx_mtime
    };
    Timestamp::new(t.tv_sec, t.tv_nsec as i32).map_err(|e| Error::Invalid {
        op: "read creation time of",
        object: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl DirBackend {
    /// The path of an existing volume, or `NotFound`.
    pub(super) fn volume_path(&self, name: &VolumeName) -> Result<PathBuf> {
        self.check_pool()?;
        let p = self.layout.volume(name);
        if p.is_dir() {
            Ok(p)
        } else {
            Err(Error::not_found(Kind::Volume, name))
        }
    }

    /// Refuses to touch a tree something is mounted in (deleting would descend into it).
    pub(super) fn refuse_mounts_in(&self, op: &'static str, path: &Path) -> Result<()> {
        let abs = path.canonicalize().ctx("resolve", path)?;
        if let Some(m) = crate::mounts::mounts()?
            .into_iter()
            .find(|m| m.mount_point.starts_with(&abs))
        {
            return Err(Error::Busy {
                op,
                object: path.display().to_string(),
                reason: format!(
                    "{} is mounted there; unmount it first",
                    m.mount_point.display()
                ),
            });
        }
        Ok(())
    }

    /// Moves `path` into `.tmp/` (one atomic step) and deletes it there.
    pub(super) fn discard(&self, path: &Path, what: &str) -> Result<()> {
        let tmp = self.layout.tmp_path(what);
        std::fs::rename(path, &tmp).ctx("move aside", path)?;
        remove_tree(&tmp)
    }

    pub(super) fn do_create_volume(&self, name: &VolumeName) -> Result<CreateAction<()>> {
        self.check_pool()?;
        let dst = self.layout.volume(name);
        let existing = || {
            if is_empty_dir(&dst) {
                Ok(CreateAction::Identity)
            } else {
                Err(Error::exists(Kind::Volume, name))
            }
        };
        if exists(&dst) {
            return existing();
        }
        // Snapshots left by a delete_volume interrupted half-way belong to no volume.
        let stale = self.layout.snapshots(name);
        if exists(&stale) {
            self.discard(&stale, "stale-snapshots")?;
        }
        let tmp = self.layout.tmp_path("volume");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&tmp)
            .ctx("create", &tmp)?;
        match rename_noreplace(&tmp, &dst) {
            Ok(()) => Ok(CreateAction::Created(())),
            Err(e) => {
                remove_tree(&tmp)?;
                if is_eexist(&e) {
                    existing()
                } else {
                    Err(Error::io("create volume", &dst, e))
                }
            }
        }
    }

    /// Copies `src` into a fresh `.tmp/` path and renames it to `dst`; `AlreadyExists`
    /// (as `exists`) if `dst` appears meanwhile. Nothing is left behind on failure.
    pub(super) fn copy_into_place(&self, src: &Path, dst: &Path, exists_err: Error) -> Result<()> {
        let tmp = self.layout.tmp_path("clone");
        copy_tree(src, &tmp, CopyMode::Auto)?;
        let times = tmp.symlink_metadata().ctx("stat", &tmp)?;
        match rename_noreplace(&tmp, dst) {
            Ok(()) => set_times_like(dst, &times),
            Err(e) => {
                remove_tree(&tmp)?;
                Err(if is_eexist(&e) {
                    exists_err
                } else {
                    Error::io("rename into place", dst, e)
                })
            }
        }
    }

    pub(super) fn do_clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        let from = match src {
            CloneSource::Volume(v) => self.volume_path(v)?,
            CloneSource::Snapshot(v, s) => self.snapshot_tree(v, s)?,
        };
        let to = self.layout.volume(dst);
        if exists(&to) {
            return Err(Error::exists(Kind::Volume, dst));
        }
        self.copy_into_place(&from, &to, Error::exists(Kind::Volume, dst))
    }

    pub(super) fn do_delete_volume(&self, name: &VolumeName) -> Result<DeleteAction> {
        self.check_pool()?;
        let vol = self.layout.volume(name);
        let snaps = self.layout.snapshots(name);
        if !exists(&vol) && !exists(&snaps) {
            return Ok(DeleteAction::Identity);
        }
        self.unmount_views_of(name)?;
        if exists(&vol) {
            self.refuse_mounts_in("delete volume", &vol)?;
        }
        // Snapshots first: a crash in between leaves a volume without snapshots, never
        // snapshots that a new volume of the same name would inherit.
        if exists(&snaps) {
            self.discard(&snaps, "deleted-snapshots")?;
        }
        if exists(&vol) {
            self.discard(&vol, "deleted-volume")?;
        }
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        let src = self.volume_path(from)?;
        let dst = self.layout.volume(to);
        if exists(&dst) {
            return Err(Error::exists(Kind::Volume, to));
        }
        self.unmount_views_of(from)?;
        let (snaps_from, snaps_to) = (self.layout.snapshots(from), self.layout.snapshots(to));
        Revert::new().run(|rv| {
            rename_noreplace(&src, &dst).map_err(|e| match is_eexist(&e) {
                true => Error::exists(Kind::Volume, to),
                false => Error::io("rename volume", &src, e),
            })?;
            rv.add("rename volume back", || {
                rename_noreplace(&dst, &src).ctx("rename volume back", &dst)
            });
            if exists(&snaps_from) {
                rename_noreplace(&snaps_from, &snaps_to).map_err(|e| match is_eexist(&e) {
                    true => Error::exists(Kind::Volume, to),
                    false => Error::io("rename snapshots of", &snaps_from, e),
                })?;
            }
            Ok(())
        })
    }

    pub(super) fn do_list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        self.check_pool()?;
        let dir = self.layout.volumes();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx("read directory", &dir)? {
            let entry = entry.ctx("read directory", &dir)?;
            let Some(name) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            out.push(VolumeInfo {
                created_at: created_at(&entry.path())?,
                name,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
