//! Volumes: one container dataset each, its live state in `<container>/live`.

use std::path::PathBuf;

use super::cli::{self, says};
use super::naming::{self, HIDDEN};
use super::parse::Listing;
use super::pool::{child_of, pool_usage, unmount_dir};
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
    /// The volume's live dataset, or `NotFound`: one `zfs list` of it alone, which also
    /// checks the pool is ours ([`Self::list_ours`]).
    pub(super) fn live(&self, v: &VolumeName) -> Result<String> {
        let live = self.ds.live(v);
        match self.list_ours(&live, Some(0))? {
            Some(_) => Ok(live),
            None => Err(Error::not_found(Kind::Volume, v)),
        }
    }

    /// `volumes/` and the containers in it: one `zfs list`, the pool's marker checked.
    pub(super) fn containers(&self) -> Result<Listing> {
        Ok(self
            .list_ours(&self.ds.volumes(), Some(1))?
            .unwrap_or_default())
    }

    /// Volumes (name, created_at ns) from the containers in a listing of `volumes/`,
    /// sorted.
    pub(super) fn volume_rows(&self, containers: &Listing) -> Vec<(String, i128)> {
        let volumes = self.ds.volumes();
        let mut out = Vec::new();
        for c in &containers.filesystems {
            let Some(comp) = child_of(&volumes, &c.name) else {
                continue;
            };
            if let Some(name) = naming::name_of(comp, c.cairn_name.as_deref()) {
                let ns = c
                    .created_at_ns
                    .map(|n| n as i128)
                    .unwrap_or(c.creation as i128 * 1_000_000_000);
                out.push((name, ns));
            }
        }
        out.sort();
        out
    }

    /// Whether a listing of `volumes/` holds the container of `v`.
    fn has_container(&self, containers: &Listing, v: &VolumeName) -> bool {
        let c = self.ds.container(v);
        containers.filesystems.iter().any(|r| r.name == c)
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
        if self.has_container(&self.containers()?, v) {
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
        // A volume is cloned from a hidden snapshot of its live state, made below and
        // destroyed with the clone (deferred destroy at the end). No look-ups beyond the
        // one listing that finds the origin (and checks the pool is ours): `zfs snapshot`
        // refuses a missing volume (`NotFound`), the final rename a taken name
        // (`AlreadyExists`), and what was made is then undone.
        let origin = match src {
            CloneSource::Snapshot(v, s) => self.find_snapshot(v, s)?.full,
            CloneSource::Volume(v) => {
                format!("{}@{HIDDEN}clone.{}", self.live(v)?, naming::fresh_id())
            }
        };
        Revert::new().run(|rv| {
            if let CloneSource::Volume(v) = src {
                cli::zfs(&["snapshot", &origin])
                    .map_err(|e| cli::typed(e, "clone volume", Kind::Volume, v.as_str()))?;
                let h = origin.clone();
                rv.add("destroy clone origin", move || cli::destroy_deferred(&h));
            }
            let tmp = self.tmp_container("clone volume", dst, rv)?;
            cli::zfs(&["clone", &origin, &format!("{tmp}/live")])
                .map_err(|e| cli::typed(e, "clone volume", Kind::Volume, dst.as_str()))?;
            self.place(&tmp, dst)
        })?;
        if let CloneSource::Volume(_) = src {
            // Already hidden and now the clone's origin: marked, it goes when the clone
            // goes.
            cli::destroy_deferred(&origin)?;
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
        let container = self.ds.container(v);
        if self.list_ours(&container, Some(0))?.is_none() {
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
        let containers = self.containers()?;
        if !self.has_container(&containers, from) {
            return Err(Error::not_found(Kind::Volume, from));
        }
        // Checked before anything is unmounted: a refused rename changes nothing.
        if self.has_container(&containers, to) {
            return Err(Error::exists(Kind::Volume, to));
        }
        let dst = self.ds.container(to);
        self.unmount_everything_of(from)?;
        cli::rename(&self.ds.container(from), &dst)
            .map_err(|e| cli::typed(e, "rename volume", Kind::Volume, to.as_str()))?;
        cli::set(&dst, "cairn:volume", to.as_str())
    }

    pub(super) fn do_mount_volume(&self, v: &VolumeName) -> Result<PathBuf> {
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
        let live = self.ds.live(v);
        let rows = self
            .space_ours(&[&self.ds.root, &live])?
            .ok_or_else(|| Error::not_found(Kind::Volume, v))?;
        let (Some(root), Some(live)) = (
            rows.iter().find(|r| r.name == self.ds.root),
            rows.iter().find(|r| r.name == live),
        ) else {
            return Err(Error::not_found(Kind::Volume, v));
        };
        Ok(Usage {
            used: live.referenced,
            ..pool_usage(root)
        })
    }

    pub(super) fn do_list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        Ok(self
            .volume_rows(&self.containers()?)
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
