//! Pool operations of the dir driver: laying out the data root (and, for a loop-file
//! pool, the xfs filesystem under it), mounting, usage and deletion.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::{exists, write_synced, DirBackend, DRIVER};
use crate::backend::PoolSource;
use crate::cmd::MKFS_XFS;
use crate::copy::remove_tree;
use crate::error::{Error, IoContext, Kind, Result};
use crate::revert::Revert;
use crate::types::{CreateAction, DeleteAction, Usage};
use crate::{loopdev, mounts};

/// What the marker holds, so another driver's pool with the same layout is refused.
const MARKER_TEXT: &str = "{\"driver\":\"dir\"}\n";

/// Creates `path` (and missing parents) with `mode`; an existing directory gets `mode`.
fn dir_with_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .ctx("create directory", path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ctx("chmod", path)
}

fn is_empty_dir(path: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(path)
        .ctx("read directory", path)?
        .next()
        .is_none())
}

impl DirBackend {
    fn not_supported_source(&self) -> Result<()> {
        match self.spec.source {
            PoolSource::Device { .. } => Err(Error::NotSupported {
                driver: DRIVER,
                op: "formatting a block device (use a directory or a loop file)",
            }),
            PoolSource::Existing { .. } => Err(Error::NotSupported {
                driver: DRIVER,
                op: "an existing volume group or zpool as a pool (use a directory)",
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a marker written by another driver.
    fn check_marker(&self) -> Result<()> {
        let m = self.layout.marker();
        let text = std::fs::read_to_string(&m).ctx("read pool marker", &m)?;
        let driver = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("driver")?.as_str().map(str::to_owned));
        match driver {
            Some(d) if d != DRIVER => Err(Error::Invalid {
                op: "open pool",
                object: self.layout.root.display().to_string(),
                reason: format!("it is a {d} pool, not a dir pool"),
            }),
            _ => Ok(()),
        }
    }

    /// Makes the fixed directories (repairing modes) and `views/`.
    fn ensure_layout(&self) -> Result<()> {
        dir_with_mode(&self.layout.volumes(), 0o711)?;
        dir_with_mode(&self.layout.snapshots_root(), 0o700)?;
        dir_with_mode(&self.layout.tmp(), 0o700)?;
        dir_with_mode(&self.spec.state_dir.join("views"), 0o700)
    }

    pub(super) fn do_create_pool(&self) -> Result<CreateAction<()>> {
        self.not_supported_source()?;
        let mut rv = Revert::new();
        if let PoolSource::LoopFile { path, size } = &self.spec.source {
            if !exists(path) {
                loopdev::create_file(path, size.0)?;
                rv.add("remove loop file", move || remove_tree(path));
                let dev = loopdev::attach(path)?;
                rv.add("detach loop file", move || loopdev::detach(path));
                MKFS_XFS.run(&[
                    std::ffi::OsStr::new("-q"),
                    "-m".as_ref(),
                    "reflink=1".as_ref(),
                    dev.as_os_str(),
                ])?;
            }
            self.mount_source()?;
            rv.add("unmount pool", || self.unmount_source());
        }
        let root = &self.layout.root;
        if self.layout.marker().is_file() {
            self.check_marker()?;
            self.ensure_layout()?;
            rv.success();
            self.cow_clone();
            return Ok(CreateAction::Identity);
        }
        if exists(root) && !(root.is_dir() && is_empty_dir(root)?) {
            return Err(rv.fail(Error::Invalid {
                op: "create pool",
                object: root.display().to_string(),
                reason: "it is not empty and not a cairn pool; choose an empty or new directory"
                    .into(),
            }));
        }
        let result = (|| {
            if !exists(root) {
                dir_with_mode(root, 0o711)?;
                rv.add("remove pool directory", move || remove_tree(root));
            } else {
                rv.add("empty pool directory", move || {
                    for p in [self.layout.marker(), self.layout.volumes()] {
                        remove_tree(&p)?;
                    }
                    remove_tree(&self.layout.snapshots_root())?;
                    remove_tree(&self.layout.tmp())
                });
            }
            let state_existed = exists(&self.spec.state_dir);
            dir_with_mode(&self.spec.state_dir, 0o711)?;
            if !state_existed {
                rv.add("remove state directory", || {
                    remove_tree(&self.spec.state_dir)
                });
            }
            self.ensure_layout()?;
            write_synced(&self.layout.marker(), MARKER_TEXT.as_bytes())
        })();
        match result {
            Ok(()) => {
                rv.success();
                self.cow_clone();
                Ok(CreateAction::Created(()))
            }
            Err(e) => Err(rv.fail(e)),
        }
    }

    pub(super) fn do_mount_pool(&self) -> Result<()> {
        self.not_supported_source()?;
        self.mount_source()?;
        self.check_pool()?;
        self.check_marker()?;
        self.ensure_layout()?;
        // Leftovers of interrupted operations.
        let tmp = self.layout.tmp();
        for entry in std::fs::read_dir(&tmp).ctx("read directory", &tmp)? {
            let p = entry.ctx("read directory", &tmp)?.path();
            tracing::info!(path = %p.display(), "removing leftover of an interrupted operation");
            remove_tree(&p)?;
        }
        self.cow_clone();
        Ok(())
    }

    pub(super) fn do_unmount_pool(&self) -> Result<()> {
        self.not_supported_source()?;
        if exists(&self.spec.state_dir) {
            let views = self.state_dir_abs()?.join("views");
            self.unmount_under(&views)?;
        }
        self.unmount_source()
    }

    pub(super) fn do_delete_pool(&self) -> Result<DeleteAction> {
        self.not_supported_source()?;
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            if !exists(path) && !exists(&self.spec.state_dir) {
                return Ok(DeleteAction::Identity);
            }
            if exists(path) {
                self.mount_source()?;
            }
        }
        let has_layout = self.layout.marker().is_file();
        if !has_layout && !exists(&self.spec.state_dir) {
            return Ok(DeleteAction::Identity);
        }
        if has_layout {
            self.check_marker()?;
            let vols = self.layout.volumes();
            if vols.is_dir() && !is_empty_dir(&vols)? {
                return Err(Error::Busy {
                    op: "delete pool",
                    object: self.spec.name.to_string(),
                    reason: "it still holds volumes; delete them first".into(),
                });
            }
        }
        self.do_unmount_pool()?;
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            remove_tree(path)?;
        } else if let PoolSource::Directory { path } = &self.spec.source {
            for p in [
                self.layout.snapshots_root(),
                self.layout.volumes(),
                self.layout.tmp(),
            ] {
                remove_tree(&p)?;
            }
            remove_tree(&self.layout.marker())?;
            if path.starts_with(&self.spec.state_dir) {
                return Ok(DeleteAction::Deleted); // keep the user's directory
            }
        }
        remove_tree(&self.spec.state_dir)?;
        Ok(DeleteAction::Deleted)
    }

    /// Space of the filesystem holding the data root.
    pub(super) fn fs_usage(&self) -> Result<Usage> {
        let root = &self.layout.root;
        let st = nix::sys::statvfs::statvfs(root).ctx("statvfs", root)?;
        let frag = st.fragment_size() as u64;
        let total = st.blocks() as u64 * frag;
        Ok(Usage {
            total,
            used: (st.blocks() - st.blocks_free()) as u64 * frag,
            free: st.blocks_available() as u64 * frag,
        })
    }

    /// Loop-file pools: attaches the file and mounts it at `state_dir/mnt`. Idempotent.
    fn mount_source(&self) -> Result<()> {
        let PoolSource::LoopFile { path, .. } = &self.spec.source else {
            return Ok(());
        };
        if !exists(path) {
            return Err(Error::not_found(Kind::Pool, &self.spec.name));
        }
        dir_with_mode(&self.layout.root, 0o711)?;
        let mnt = self.state_dir_abs()?.join("mnt");
        if mounts::mount_at(&mnt)?.is_none() {
            let dev = loopdev::attach(path)?;
            mounts::mount(&dev, &mnt, Some("xfs"), None)?;
        }
        Ok(())
    }

    /// Loop-file pools: unmounts `state_dir/mnt` and detaches the file. Idempotent.
    fn unmount_source(&self) -> Result<()> {
        let PoolSource::LoopFile { path, .. } = &self.spec.source else {
            return Ok(());
        };
        if exists(&self.spec.state_dir) {
            mounts::unmount(&self.state_dir_abs()?.join("mnt"))?;
        }
        loopdev::detach(path)
    }

    /// Unmounts every mount at or below `dir` (absolute), deepest first.
    pub(super) fn unmount_under(&self, dir: &Path) -> Result<()> {
        let mut points: Vec<_> = mounts::mounts()?
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(dir))
            .collect();
        points.sort();
        points.dedup();
        for p in points.iter().rev() {
            while mounts::mount_at(p)?.is_some() {
                crate::cmd::UMOUNT.run(&[p])?;
            }
        }
        Ok(())
    }
}
