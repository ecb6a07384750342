//! `create_pool` on each kind of source: a directory on btrfs, a device, a loop file.
//! Every step registers its undo, so a failure leaves nothing behind.

use std::path::Path;

use super::pool::{make_dir, remove_empty_dir, state_dir_refused};
use super::BtrfsBackend;
use super::DRIVER;
use crate::backend::PoolSource;
use crate::cmd::{BTRFS, LOSETUP, MKFS_BTRFS};
use crate::error::{IoContext, Result};
use crate::probe;
use crate::revert::Revert;
use crate::types::CreateAction;
use crate::{loopdev, mounts, Bytes};

impl BtrfsBackend {
    pub(super) fn do_create_pool(&self) -> Result<CreateAction<()>> {
        BTRFS.resolve()?; // a missing tool surfaces before anything is made
        let mut rv = Revert::new();
        let action = match &self.spec.source {
            PoolSource::StateDir | PoolSource::Existing { .. } => {
                return Err(state_dir_refused(self))
            }
            PoolSource::Directory { path } => self.create_on_directory(path, &mut rv),
            PoolSource::Device { path, force } => self.create_on_device(path, *force, &mut rv),
            PoolSource::LoopFile { path, size } => self.create_on_loop_file(path, *size, &mut rv),
        };
        let action = match action {
            Ok(a) => a,
            Err(e) => return Err(rv.fail(e)),
        };
        if action.is_created() {
            if let Err(e) = self.make_layout(&mut rv) {
                return Err(rv.fail(e));
            }
        }
        rv.success();
        Ok(action)
    }

    /// Creates the state directory, registering its removal.
    fn make_state_dir(&self, rv: &mut Revert<'_>) -> Result<()> {
        let dir = self.spec.state_dir.clone();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).ctx("create state directory", &dir)?;
            let mnt = self.mount_point();
            // Never recursive: if an unmount failed, the pool's data is still below.
            rv.add("remove state directory", move || {
                remove_empty_dir(&mnt)?;
                remove_empty_dir(&dir)
            });
        }
        Ok(())
    }

    fn create_on_directory(&self, path: &Path, rv: &mut Revert<'_>) -> Result<CreateAction<()>> {
        const OP: &str = "create pool";
        if !path.exists() {
            let parent = path
                .ancestors()
                .find(|p| p.exists())
                .unwrap_or(Path::new("/"));
            self.check_btrfs(OP, parent)?;
            std::fs::create_dir_all(path).ctx("create pool directory", path)?;
            let p = path.to_path_buf();
            rv.add("remove pool directory", move || remove_empty_dir(&p));
        }
        self.check_btrfs(OP, path)?;
        if self.layout.marker().exists() {
            return Ok(CreateAction::Identity);
        }
        let mut entries = std::fs::read_dir(path).ctx("read pool directory", path)?;
        if entries.next().is_some() {
            return Err(self.invalid(
                OP,
                format!(
                    "{} is not empty and is not a cairn pool; use an empty directory",
                    path.display()
                ),
            ));
        }
        self.make_state_dir(rv)?;
        Ok(CreateAction::Created(()))
    }

    fn create_on_device(
        &self,
        dev: &Path,
        force: bool,
        rv: &mut Revert<'_>,
    ) -> Result<CreateAction<()>> {
        MKFS_BTRFS.resolve()?;
        if mounts::mount_at(&self.mount_point())?.is_some() && self.layout.marker().exists() {
            return Ok(CreateAction::Identity);
        }
        self.make_state_dir(rv)?;
        if let Some(sig) = probe::probe(dev)? {
            if sig.fs_type.as_deref() == Some("btrfs") {
                if self.mount_fs(dev, rv)? {
                    return Ok(CreateAction::Identity);
                }
                mounts::unmount(&self.mount_point())?; // not ours: mkfs needs it unmounted
            }
            if !force {
                return Err(probe::refusal(dev, &sig, DRIVER));
            }
        }
        self.mkfs(dev)?;
        self.mount_fs(dev, rv)?;
        Ok(CreateAction::Created(()))
    }

    fn create_on_loop_file(
        &self,
        file: &Path,
        size: Bytes,
        rv: &mut Revert<'_>,
    ) -> Result<CreateAction<()>> {
        MKFS_BTRFS.resolve()?;
        LOSETUP.resolve()?;
        self.make_state_dir(rv)?;
        if file.exists() {
            // Ours from an earlier create_pool? Then this is `Identity`.
            if let Some(sig) = probe::probe(file)? {
                if sig.fs_type.as_deref() == Some("btrfs") {
                    let dev = self.attach(file, rv)?;
                    if self.mount_fs(&dev, rv)? {
                        return Ok(CreateAction::Identity);
                    }
                }
            }
            return Err(self.invalid(
                "create pool",
                format!(
                    "{} already exists and is not a cairn btrfs pool; refusing to overwrite it",
                    file.display()
                ),
            ));
        }
        loopdev::create_file(file, size.0)?;
        let f = file.to_path_buf();
        rv.add("remove loop file", move || {
            std::fs::remove_file(&f).ctx("remove loop file", &f)
        });
        let dev = self.attach(file, rv)?;
        self.mkfs(&dev)?;
        self.mount_fs(&dev, rv)?;
        Ok(CreateAction::Created(()))
    }

    fn mkfs(&self, dev: &Path) -> Result<()> {
        let label = format!("cairn-{}", self.spec.name);
        let label: String = label.chars().take(255).collect();
        MKFS_BTRFS.run(&[
            "-f".as_ref(),
            "-L".as_ref(),
            label.as_ref(),
            dev.as_os_str(),
        ])?;
        Ok(())
    }

    /// `volumes/`, `snapshots/`, `.tmp/`, then the marker (last: it says "whole").
    fn make_layout(&self, rv: &mut Revert<'_>) -> Result<()> {
        let l = &self.layout;
        for dir in [l.volumes(), l.snapshots_root(), l.tmp()] {
            if make_dir(&dir)? {
                rv.add("remove pool layout", move || {
                    std::fs::remove_dir(&dir).ctx("remove directory", &dir)
                });
            }
        }
        let marker = l.marker();
        let body = format!(
            "{{\"driver\":\"{DRIVER}\",\"pool\":{:?}}}\n",
            self.spec.name.as_str()
        );
        std::fs::write(&marker, body).ctx("write pool marker", &marker)?;
        rv.add("remove pool marker", move || {
            std::fs::remove_file(&marker).ctx("remove pool marker", &marker)
        });
        Ok(())
    }
}
