//! Volumes: one container dataset each, its live state in `<container>/live`.

use std::path::PathBuf;

use super::cli::{self, says};
use super::naming::{self, HIDDEN};
use super::pool::unmount_dir;
use super::ZfsBackend;
use crate::error::{Error, IoContext, Kind, Result};
use crate::mounts;
use crate::names::VolumeName;
use crate::revert::Revert;
use crate::types::{CloneSource, CreateAction, DeleteAction, Usage, VolumeInfo};

/// Nanoseconds since the epoch, now.
pub(super) fn now_ns() -> i128 {
    jiff::Timestamp::now().as_nanosecond()
}

pub(super) fn ts(ns: i128) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(ns).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

impl ZfsBackend {
    /// The volume's live dataset, or `NotFound`.
    pub(super) fn live(&self, v: &VolumeName) -> Result<String> {
        let live = self.ds.live(v);
        if cli::exists(&live)? {
            Ok(live)
        } else {
            Err(Error::not_found(Kind::Volume, v))
        }
    }

    /// Volumes (name, created_at ns) from the containers under `volumes/`, sorted.
    pub(super) fn volume_rows(&self) -> Result<Vec<(String, i128)>> {
        let mut out = Vec::new();
        for c in cli::children(&self.ds.volumes(), 1)? {
            let comp = c.name.rsplit('/').next().unwrap_or_default();
            if let Some(name) = naming::name_of(comp, c.cairn_name.as_deref()) {
                let ns = c
                    .created_at_ns
                    .map(|n| n as i128)
                    .unwrap_or(c.creation as i128 * 1_000_000_000);
                out.push((name, ns));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Makes `tmp/<id>` (a container with the volume's properties) and registers its
    /// destruction; the caller fills `<it>/live` and renames it into place.
    pub(super) fn tmp_container<'a>(
        &'a self,
        op: &'static str,
        v: &VolumeName,
        rv: &mut Revert<'a>,
    ) -> Result<String> {
        let tmp = format!("{}/{}", self.ds.tmp(), naming::fresh_id());
        let created = now_ns().to_string();
        cli::create(
            &tmp,
            &[
                ("cairn:volume", v.as_str()),
                ("cairn:volume_created_at", &created),
            ],
        )
        .map_err(|e| cli::typed(e, op, Kind::Volume, v.as_str()))?;
        let t = tmp.clone();
        rv.add("destroy unfinished volume", move || {
            match cli::zfs(&["destroy", "-r", &t]) {
                Err(e) if !says(&e, "does not exist") => Err(e),
                _ => Ok(()),
            }
        });
        Ok(tmp)
    }

    /// The one step that makes a volume appear: renames a filled `tmp/<id>` into place.
    fn place(&self, tmp: &str, v: &VolumeName) -> Result<()> {
        cli::rename(tmp, &self.ds.container(v))
            .map_err(|e| cli::typed(e, "create volume", Kind::Volume, v.as_str()))
    }

    pub(super) fn do_create_volume(&self, v: &VolumeName) -> Result<CreateAction<()>> {
        self.require_pool()?;
        if cli::exists(&self.ds.container(v))? {
            let p = self.do_mount_volume(v)?;
            let empty = std::fs::read_dir(&p)
                .ctx("read volume", &p)?
                .next()
                .is_none();
            return if empty {
                Ok(CreateAction::Identity)
            } else {
                Err(Error::exists(Kind::Volume, v))
            };
        }
        Revert::new().run(|rv| {
            let tmp = self.tmp_container("create volume", v, rv)?;
            cli::create(&format!("{tmp}/live"), &[])
                .map_err(|e| cli::typed(e, "create volume", Kind::Volume, v.as_str()))?;
            self.place(&tmp, v)?;
            Ok(CreateAction::Created(()))
        })
    }

    pub(super) fn do_clone_volume(&self, src: CloneSource<'_>, dst: &VolumeName) -> Result<()> {
        self.require_pool()?;
        // A volume is cloned from a hidden snapshot of its live state, made below and
        // destroyed with the clone (deferred destroy at the end).
        let origin = match src {
            CloneSource::Snapshot(v, s) => self.find_snapshot(v, s)?.full,
            CloneSource::Volume(v) => {
                format!("{}@{HIDDEN}clone.{}", self.live(v)?, naming::fresh_id())
            }
        };
        if cli::exists(&self.ds.container(dst))? {
            return Err(Error::exists(Kind::Volume, dst));
        }
        Revert::new().run(|rv| {
            if let CloneSource::Volume(v) = src {
                cli::zfs(&["snapshot", &origin])
                    .map_err(|e| cli::typed(e, "clone volume", Kind::Volume, v.as_str()))?;
                let h = origin.clone();
                rv.add("destroy clone origin", move || cli::destroy_snapshot(&h));
            }
            let tmp = self.tmp_container("clone volume", dst, rv)?;
            cli::zfs(&["clone", &origin, &format!("{tmp}/live")])
                .map_err(|e| cli::typed(e, "clone volume", Kind::Volume, dst.as_str()))?;
            self.place(&tmp, dst)
        })?;
        if let CloneSource::Volume(_) = src {
            // It has a clone now: marked, it goes when the clone goes.
            cli::destroy_snapshot(&origin)?;
        }
        Ok(())
    }

    /// Unmounts the volume's live state and every snapshot view of it.
    pub(super) fn unmount_everything_of(&self, v: &VolumeName) -> Result<()> {
        let views = self
            .spec
            .state_dir
            .join("snapshots")
            .join(naming::encode(v.as_str()));
        let mut dirs: Vec<PathBuf> = mounts::mounts()?
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&views))
            .collect();
        dirs.push(self.volume_mount(v));
        for d in dirs {
            unmount_dir(&d).map_err(|e| match e {
                Error::Command(f) if f.stderr.contains("busy") => Error::Busy {
                    op: "unmount",
                    object: d.display().to_string(),
                    reason: format!("volume {v} is in use"),
                },
                e => e,
            })?;
        }
        let _ = std::fs::remove_dir(&views);
        Ok(())
    }

    pub(super) fn do_delete_volume(&self, v: &VolumeName) -> Result<DeleteAction> {
        self.require_pool()?;
        let container = self.ds.container(v);
        if !cli::exists(&container)? {
            return Ok(DeleteAction::Identity);
        }
        self.unmount_everything_of(v)?;
        // Out of sight in one step, then destroyed (now, or once its clones are gone).
        let doomed = format!("{}/{}", self.ds.deleted(), naming::fresh_id());
        cli::rename(&container, &doomed)?;
        self.collect_deleted()?;
        Ok(DeleteAction::Deleted)
    }

    pub(super) fn do_rename_volume(&self, from: &VolumeName, to: &VolumeName) -> Result<()> {
        self.require_pool()?;
        self.live(from)?;
        let dst = self.ds.container(to);
        if cli::exists(&dst)? {
            return Err(Error::exists(Kind::Volume, to));
        }
        self.unmount_everything_of(from)?;
        cli::rename(&self.ds.container(from), &dst)
            .map_err(|e| cli::typed(e, "rename volume", Kind::Volume, to.as_str()))?;
        cli::set(&dst, "cairn:volume", to.as_str())
    }

    pub(super) fn do_mount_volume(&self, v: &VolumeName) -> Result<PathBuf> {
        self.require_pool()?;
        let live = self.live(v)?;
        let path = self.volume_mount(v);
        if let Some(m) = mounts::mount_at(&path)? {
            if m.source == live {
                return Ok(path);
            }
            unmount_dir(&path)?;
        }
        std::fs::create_dir_all(&path).ctx("create mount point", &path)?;
        mounts::mount(live.as_ref(), &path, Some("zfs"), None)?;
        Ok(path)
    }

    pub(super) fn do_volume_usage(&self, v: &VolumeName) -> Result<Usage> {
        self.require_pool()?;
        let live = self.live(v)?;
        let pool = self.do_pool_usage()?;
        let (_, _, referenced) = cli::space(&live)?;
        Ok(Usage {
            used: referenced,
            ..pool
        })
    }

    pub(super) fn do_list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        self.require_pool()?;
        Ok(self
            .volume_rows()?
            .into_iter()
            .filter_map(|(n, ns)| {
                Some(VolumeInfo {
                    name: n.parse().ok()?,
                    created_at: ts(ns),
                })
            })
            .collect())
    }
}
