//! Pool operations: create (zpool on a device or file, or a dataset in an existing
//! zpool), import/export, delete, usage, and the clean-up `mount_pool` does.

use std::ffi::OsString;
use std::path::Path;

use super::cli::{self, says};
use super::naming::{self, HIDDEN};
use super::parse::{Listing, SnapRow, SpaceRow};
use super::{ZfsBackend, DRIVER, MANAGED};
use crate::backend::PoolSource;
use crate::error::{Error, IoContext, Kind, Result};
use crate::revert::Revert;
use crate::types::{CreateAction, DeleteAction, Usage};
use crate::{loopdev, mounts, probe};

/// Unmounts whatever is mounted at `dir` (retrying while busy for up to 5 s) and
/// removes the empty directory. Idempotent.
pub(super) fn unmount_dir(dir: &Path) -> Result<()> {
    mounts::unmount_retrying(dir, std::time::Duration::from_secs(5))?;
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTEMPTY)
                || e.raw_os_error() == Some(libc::EBUSY) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::io("remove mount point", dir, e)),
    }
}

fn remove_empty_dir(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}

impl ZfsBackend {
    /// Whether `ds` is marked ours: `Some(true)`, marked for another pool or not at all:
    /// `Some(false)`, absent: `None`.
    fn owned(&self, ds: &str) -> Result<Option<bool>> {
        match cli::get_local(ds, MANAGED) {
            Ok((value, local)) => Ok(Some(
                local && value.as_deref() == Some(self.spec.name.as_str()),
            )),
            Err(e) if says(&e, "does not exist") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn not_ours(&self, op: &'static str, what: &str) -> Error {
        self.invalid(
            op,
            format!(
                "{what} exists and was not made by cairn for this pool (no {MANAGED}={}): \
                 refusing to touch it",
                self.spec.name
            ),
        )
    }

    /// A directory or the state directory given to the zfs driver: says what works.
    pub(super) fn wrong_source(&self, op: &'static str) -> Error {
        self.invalid(
            op,
            "the zfs driver needs a block device (--source /dev/DISK), a file vdev \
             (--source FILE --size 10G) or a dataset of an imported zpool \
             (--source POOL/DATASET), not a directory"
                .into(),
        )
    }

    /// Fails for sources this driver cannot use, before any zfs command runs (so the
    /// user learns what source to pass even where zfs is missing).
    fn check_source(&self, op: &'static str) -> Result<()> {
        match &self.spec.source {
            PoolSource::StateDir | PoolSource::Directory { .. } => Err(self.wrong_source(op)),
            _ => Ok(()),
        }
    }

    /// Fails unless the root dataset is there and ours: `zfs get`, which tells a value set
    /// on the root from one it inherits. Pool operations (create, mount, delete) and
    /// operations whose own listing finds nothing use it; the others check the marker
    /// their listing carries ([`Self::list_ours`]).
    pub(super) fn require_pool(&self) -> Result<()> {
        match self.owned(&self.ds.root)? {
            Some(true) => Ok(()),
            Some(false) => Err(self.not_ours("use pool", &format!("dataset {}", self.ds.root))),
            None => Err(self.invalid(
                "use pool",
                format!(
                    "dataset {} does not exist (create or mount the pool first)",
                    self.ds.root
                ),
            )),
        }
    }

    /// Fails unless `managed`, the `cairn:managed` a listing shows for a dataset of the
    /// pool, is this pool's name.
    fn check_marker(&self, managed: Option<&str>) -> Result<()> {
        if managed == Some(self.spec.name.as_str()) {
            Ok(())
        } else {
            Err(self.not_ours("use pool", &format!("dataset {}", self.ds.root)))
        }
    }

    /// [`cli::list`] of `ds`, a dataset at or below the root, that proves the pool ours in
    /// the same process: the `cairn:managed` ZFS shows for `ds` is the root's (set there
    /// by cairn, inherited by everything below it) and must be this pool's name; a root
    /// without it, or marked for another pool, shows none or another. `None` if `ds` does
    /// not exist, once [`Self::require_pool`] has found the root there and ours.
    pub(super) fn list_ours(&self, ds: &str, depth: Option<u32>) -> Result<Option<Listing>> {
        match cli::list(ds, depth)? {
            None => {
                self.require_pool()?;
                Ok(None)
            }
            Some(l) => {
                let seen = l.filesystems.iter().find(|r| r.name == ds);
                self.check_marker(seen.and_then(|r| r.managed.as_deref()))?;
                Ok(Some(l))
            }
        }
    }

    /// [`cli::space`] of `datasets` after a `zpool sync` (the figures are then current),
    /// each row's marker checked as [`Self::list_ours`] does. `None` if one of them does
    /// not exist (the root being there and ours).
    pub(super) fn space_ours(&self, datasets: &[&str]) -> Result<Option<Vec<SpaceRow>>> {
        if let Err(e) = cli::zpool_sync(&self.zpool) {
            // No zpool: say it as the other operations do.
            self.require_pool()?;
            return Err(e);
        }
        match cli::space(datasets)? {
            None => {
                self.require_pool()?;
                Ok(None)
            }
            Some(rows) => {
                for r in &rows {
                    self.check_marker(r.managed.as_deref())?;
                }
                Ok(Some(rows))
            }
        }
    }

    pub(super) fn do_create_pool(&self) -> Result<CreateAction<()>> {
        self.check_source("create pool")?;
        cli::check_available()?;
        Revert::new().run(|rv| self.create_inner(rv))
    }

    fn create_inner<'a>(&'a self, rv: &mut Revert<'a>) -> Result<CreateAction<()>> {
        let dir = self.spec.state_dir.clone();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).ctx("create state directory", &dir)?;
            rv.add("remove state directory", move || {
                remove_empty_dir(&dir);
                Ok(())
            });
        }
        match &self.spec.source {
            PoolSource::StateDir | PoolSource::Directory { .. } => {
                Err(self.wrong_source("create pool"))
            }
            PoolSource::Existing { name } => {
                if name.is_empty() || name.contains('@') || name.starts_with('/') {
                    return Err(self.invalid(
                        "create pool",
                        format!("{name:?} is not a dataset name like tank/cairn"),
                    ));
                }
                if !cli::zpool_imported(&self.zpool)? {
                    return Err(self.invalid(
                        "create pool",
                        format!(
                            "zpool {} is not imported (zpool import it first)",
                            self.zpool
                        ),
                    ));
                }
                match self.owned(&self.ds.root)? {
                    Some(true) => return Ok(CreateAction::Identity),
                    Some(false) => {
                        return Err(self.not_ours("create pool", &format!("dataset {name}")))
                    }
                    None => {}
                }
                self.make_root(true, rv)?;
                Ok(CreateAction::Created(()))
            }
            PoolSource::Device { path, force } => {
                if let Some(a) = self.existing_zpool(path)? {
                    return Ok(a);
                }
                probe::refuse_unless_forced(path, *force, DRIVER)?;
                self.zpool_create(path, *force, rv)?;
                self.make_root(false, rv)?;
                Ok(CreateAction::Created(()))
            }
            PoolSource::LoopFile { path, size } => {
                if path.exists() {
                    if let Some(a) = self.existing_zpool(path)? {
                        return Ok(a);
                    }
                    return Err(self.invalid(
                        "create pool",
                        format!(
                            "{} already exists and is not this cairn zfs pool; refusing to overwrite it",
                            path.display()
                        ),
                    ));
                }
                let path = std::path::absolute(path).ctx("resolve loop file", path)?;
                loopdev::create_file(&path, size.0)?;
                let f = path.clone();
                rv.add("remove loop file", move || {
                    std::fs::remove_file(&f).ctx("remove loop file", &f)
                });
                self.zpool_create(&path, false, rv)?;
                self.make_root(false, rv)?;
                Ok(CreateAction::Created(()))
            }
        }
    }

    /// Our zpool already there (imported, or importable from `vdev`): `Identity`;
    /// someone else's: an error; none: `None`.
    fn existing_zpool(&self, vdev: &Path) -> Result<Option<CreateAction<()>>> {
        if !cli::zpool_imported(&self.zpool)? && !self.import("create pool", vdev)? {
            return Ok(None);
        }
        if self.owned(&self.zpool)? != Some(true) {
            return Err(self.not_ours("create pool", &format!("zpool {}", self.zpool)));
        }
        if self.owned(&self.ds.root)? != Some(true) {
            return Err(self.not_ours("create pool", &format!("dataset {}", self.ds.root)));
        }
        Ok(Some(CreateAction::Identity))
    }

    /// `zpool import` of our zpool from `vdev`: `false` if `vdev` holds no zpool of that
    /// name. Any other failure (a pool last used by another system, a missing or damaged
    /// device...) is an error with zpool's own words: the zpool may well be there.
    fn import(&self, op: &'static str, vdev: &Path) -> Result<bool> {
        let args: Vec<OsString> = vec![
            "import".into(),
            "-o".into(),
            "cachefile=none".into(),
            "-d".into(),
            vdev.into(),
            self.zpool.clone().into(),
        ];
        import_outcome(cli::zpool(&args)).map_err(|e| match cli::stderr_of(&e) {
            Some(stderr) => self.invalid(
                op,
                format!(
                    "importing zpool {} from {} failed: {} (only \"no such pool\" is taken \
                     for a zpool that is not there)",
                    self.zpool,
                    vdev.display(),
                    stderr.trim()
                ),
            ),
            None => e,
        })
    }

    fn zpool_create<'a>(&'a self, vdev: &Path, force: bool, rv: &mut Revert<'a>) -> Result<()> {
        let managed = format!("{MANAGED}={}", self.spec.name);
        let mut args: Vec<OsString> = vec!["create".into()];
        if force {
            args.push("-f".into());
        }
        for o in ["ashift=12", "cachefile=none"] {
            args.extend(["-o".into(), o.into()]);
        }
        for o in ["mountpoint=legacy", "canmount=off", &managed] {
            args.extend(["-O".into(), o.into()]);
        }
        args.extend([self.zpool.clone().into(), vdev.into()]);
        cli::zpool(&args).map_err(|e| {
            if says(&e, "already exists") || says(&e, "in use") {
                self.invalid(
                    "create pool",
                    cli::stderr_of(&e).unwrap_or_default().trim().to_string(),
                )
            } else {
                e
            }
        })?;
        let z = self.zpool.clone();
        rv.add("destroy zpool", move || {
            cli::zpool(&["destroy", "-f", &z]).map(drop)
        });
        Ok(())
    }

    /// The root dataset (with its marker, set in the same `zfs create`) and its layout.
    fn make_root<'a>(&'a self, parents: bool, rv: &mut Revert<'a>) -> Result<()> {
        let managed = format!("{MANAGED}={}", self.spec.name);
        let mut args: Vec<&str> = vec!["create"];
        if parents {
            args.push("-p");
        }
        for o in [
            "mountpoint=legacy",
            "canmount=off",
            "acltype=posixacl",
            "xattr=sa",
            "atime=off",
            &managed,
        ] {
            args.extend(["-o", o]);
        }
        args.push(&self.ds.root);
        cli::zfs(&args)?;
        let root = self.ds.root.clone();
        rv.add("destroy root dataset", move || {
            cli::zfs(&["destroy", "-r", &root]).map(drop)
        });
        for ds in [self.ds.volumes(), self.ds.tmp(), self.ds.deleted()] {
            cli::create(&ds, &[])?;
        }
        Ok(())
    }

    pub(super) fn do_mount_pool(&self) -> Result<()> {
        self.check_source("mount pool")?;
        cli::check_available()?;
        match &self.spec.source {
            PoolSource::Device { path, .. } | PoolSource::LoopFile { path, .. } => {
                if !path.exists() {
                    return Err(Error::not_found(Kind::Pool, &self.spec.name));
                }
                if !cli::zpool_imported(&self.zpool)? && !self.import("mount pool", path)? {
                    return Err(Error::not_found(Kind::Pool, &self.spec.name));
                }
                if self.owned(&self.zpool)? != Some(true) {
                    return Err(self.not_ours("mount pool", &format!("zpool {}", self.zpool)));
                }
            }
            PoolSource::Existing { .. } => {}
            PoolSource::StateDir | PoolSource::Directory { .. } => {
                return Err(self.wrong_source("mount pool"))
            }
        }
        self.require_pool()?;
        self.clean_leftovers()
    }

    /// Volumes half built (`tmp/`), restores cut between their renames, empty history,
    /// hidden snapshots nothing needs, and deleted volumes whose clones are gone.
    fn clean_leftovers(&self) -> Result<()> {
        for t in cli::children(&self.ds.tmp(), 1)? {
            tracing::info!(dataset = %t.name, "destroying a volume that was never finished");
            cli::zfs(&["destroy", "-r", &t.name])?;
        }
        // Every container and what is in it: one listing.
        let volumes = self.ds.volumes();
        let all = cli::list(&volumes, None)?.unwrap_or_default();
        for c in &all.filesystems {
            if child_of(&volumes, &c.name).is_some() {
                self.repair_container(&c.name, &all)?;
            }
        }
        self.collect_deleted()
    }

    /// Rolls an interrupted restore forward and drops what is no longer needed in one
    /// volume container (see [`repair_plan`]), as `listing` (of the container, or of
    /// everything above it) shows it.
    pub(super) fn repair_container(&self, container: &str, listing: &Listing) -> Result<()> {
        let (kids, snaps) = contents(container, listing);
        for step in repair_plan(container, &kids, &snaps) {
            match step {
                Repair::RollForward { new, live } => {
                    tracing::info!(dataset = %new, "finishing an interrupted restore");
                    cli::rename(&new, &live)?;
                }
                Repair::DropHidden(full) => cli::destroy_deferred(&full)?,
                Repair::DropEmpty(ds) => match cli::zfs(&["destroy", &ds]) {
                    Ok(_) => {}
                    Err(e) if says(&e, "does not exist") => {}
                    Err(e) => {
                        tracing::warn!(dataset = %ds, error = %e, "could not drop empty history")
                    }
                },
                Repair::ToHistory(new) => {
                    let h = format!("{container}/h.{}", naming::fresh_id());
                    cli::rename(&new, &h)?;
                }
            }
        }
        Ok(())
    }

    /// Destroys the deleted volumes nothing depends on any more; for the others, marks
    /// their snapshots for deferred destruction.
    pub(super) fn collect_deleted(&self) -> Result<()> {
        for d in cli::children(&self.ds.deleted(), 1)? {
            match cli::zfs(&["destroy", "-r", &d.name]) {
                Ok(_) => {}
                Err(e) if says(&e, "dependent clones") || says(&e, "busy") => {
                    for s in cli::snapshots(&d.name)? {
                        if !s.defer_destroy {
                            let full = format!("{}@{}", s.dataset, s.component);
                            let _ = cli::zfs(&["destroy", "-d", &full]);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Unmounts every view and volume of this pool under the state directory.
    fn unmount_all(&self) -> Result<()> {
        let mut mine: Vec<_> = mounts::mounts()?
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(&self.spec.state_dir))
            .collect();
        mine.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mine {
            unmount_dir(&m)?;
        }
        Ok(())
    }

    pub(super) fn do_unmount_pool(&self) -> Result<()> {
        self.unmount_all()?;
        if matches!(
            self.spec.source,
            PoolSource::Device { .. } | PoolSource::LoopFile { .. }
        ) && zfs_present()
            && cli::zpool_imported(&self.zpool)?
        {
            if self.owned(&self.zpool)? != Some(true) {
                return Err(self.not_ours("unmount pool", &format!("zpool {}", self.zpool)));
            }
            cli::zpool(&["export", &self.zpool])?;
        }
        Ok(())
    }

    pub(super) fn do_delete_pool(&self) -> Result<DeleteAction> {
        self.check_source("delete pool")?;
        cli::check_available()?;
        let present = match &self.spec.source {
            PoolSource::Device { path, .. } | PoolSource::LoopFile { path, .. } => {
                if cli::zpool_imported(&self.zpool)?
                    || (path.exists() && self.import("delete pool", path)?)
                {
                    if self.owned(&self.zpool)? != Some(true) {
                        return Err(self.not_ours("delete pool", &format!("zpool {}", self.zpool)));
                    }
                    true
                } else {
                    false
                }
            }
            PoolSource::Existing { .. } => match self.owned(&self.ds.root)? {
                Some(true) => true,
                Some(false) => {
                    return Err(self.not_ours("delete pool", &format!("dataset {}", self.ds.root)))
                }
                None => false,
            },
            PoolSource::StateDir | PoolSource::Directory { .. } => {
                return Err(self.wrong_source("delete pool"))
            }
        };
        if present {
            let vols =
                self.volume_rows(&cli::list(&self.ds.volumes(), Some(1))?.unwrap_or_default());
            if !vols.is_empty() {
                let names: Vec<String> = vols.into_iter().map(|(n, _)| n).collect();
                return Err(Error::Busy {
                    op: "delete pool",
                    object: self.spec.name.to_string(),
                    reason: format!(
                        "it still holds volumes ({}): delete them first",
                        names.join(", ")
                    ),
                });
            }
            self.unmount_all()?;
            match &self.spec.source {
                PoolSource::Existing { .. } => {
                    self.collect_deleted()?;
                    cli::zfs(&["destroy", "-r", &self.ds.root])?;
                }
                _ => {
                    cli::zpool(&["destroy", &self.zpool])?;
                }
            }
        }
        if let PoolSource::LoopFile { path, .. } = &self.spec.source {
            if path.exists() && present {
                std::fs::remove_file(path).ctx("remove loop file", path)?;
            }
        }
        for d in ["volumes", "snapshots"] {
            let p = self.spec.state_dir.join(d);
            if p.is_dir() {
                for e in std::fs::read_dir(&p).ctx("read directory", &p)?.flatten() {
                    remove_empty_dir(&e.path());
                }
            }
            remove_empty_dir(&p);
        }
        remove_empty_dir(&self.spec.state_dir);
        Ok(if present {
            DeleteAction::Deleted
        } else {
            DeleteAction::Identity
        })
    }

    /// Used and available bytes of the root dataset, after the pending writes are synced.
    pub(super) fn do_pool_usage(&self) -> Result<Usage> {
        let rows = self.space_ours(&[&self.ds.root])?;
        let root = rows
            .as_deref()
            .and_then(|r| r.first())
            .ok_or_else(|| Error::not_found(Kind::Pool, &self.spec.name))?;
        Ok(pool_usage(root))
    }
}

/// The pool's figures from its root dataset's row.
pub(super) fn pool_usage(root: &SpaceRow) -> Usage {
    Usage {
        total: root.used + root.available,
        used: root.used,
        free: root.available,
    }
}

/// The filesystems right below `container` and the snapshots in it, from a listing of it
/// or of something above it.
pub(super) fn contents(container: &str, listing: &Listing) -> (Vec<String>, Vec<SnapRow>) {
    let kids = listing
        .filesystems
        .iter()
        .filter(|r| child_of(container, &r.name).is_some())
        .map(|r| r.name.clone())
        .collect();
    let inside = |ds: &str| {
        ds == container
            || ds
                .strip_prefix(container)
                .is_some_and(|r| r.starts_with('/'))
    };
    let snaps = listing
        .snapshots
        .iter()
        .filter(|s| inside(&s.dataset))
        .cloned()
        .collect();
    (kids, snaps)
}

/// The component of `ds` if it is a filesystem right below `parent`.
pub(super) fn child_of<'a>(parent: &str, ds: &'a str) -> Option<&'a str> {
    ds.strip_prefix(parent)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|c| !c.is_empty() && !c.contains('/') && !c.contains('@'))
}

/// What a `zpool import` run says: imported (`true`), or no zpool of that name on the
/// device (`false`, zpool's "no such pool"); every other failure is passed on.
pub(super) fn import_outcome(run: Result<String>) -> Result<bool> {
    match run {
        Ok(_) => Ok(true),
        Err(e) if says(&e, "no such pool") => Ok(false),
        Err(e) => Err(e),
    }
}

/// One step of [`repair_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Repair {
    /// The container has no `live`: an interrupted restore's `new.*` takes its place.
    RollForward { new: String, live: String },
    /// A hidden snapshot not marked for deferred destruction: a leftover, destroyed.
    DropHidden(String),
    /// A history (`h.*`) or restore (`new.*`) dataset without snapshots: destroyed.
    DropEmpty(String),
    /// A `new.*` beside `live` (a restore interrupted before its swap) that holds
    /// snapshots: renamed to a fresh `h.*`.
    ToHistory(String),
}

/// The kind of a dataset right below a volume container, from its component alone: a
/// volume's own name (say `new.web`) or a root dataset under `tank/new.x` is never
/// taken for one of the driver's datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    Live,
    History,
    Restore,
    Other,
}

fn child_kind(container: &str, ds: &str) -> Child {
    let Some(comp) = child_of(container, ds) else {
        return Child::Other;
    };
    if comp == "live" {
        Child::Live
    } else if comp.starts_with("h.") {
        Child::History
    } else if comp.starts_with("new.") {
        Child::Restore
    } else {
        Child::Other
    }
}

/// What `repair_container` does with one volume container, given the filesystems right
/// below it (`children`, full names) and every snapshot in it: a restore cut between its
/// renames is rolled forward (the first `new.*` becomes `live`), hidden snapshots nothing
/// waits on are destroyed, history and restore datasets without snapshots are
/// destroyed, and a `new.*` that holds snapshots beside `live` becomes history. Only
/// the component right below `container` decides what a dataset is. Pure.
pub(super) fn repair_plan(
    container: &str,
    children: &[String],
    snapshots: &[SnapRow],
) -> Vec<Repair> {
    let live = format!("{container}/live");
    let mut plan = Vec::new();
    let has_live = children
        .iter()
        .any(|k| child_kind(container, k) == Child::Live);
    let rolled = if has_live {
        None
    } else {
        children
            .iter()
            .find(|k| child_kind(container, k) == Child::Restore)
    };
    if let Some(new) = rolled {
        plan.push(Repair::RollForward {
            new: new.clone(),
            live: live.clone(),
        });
    }
    // Where a snapshot's dataset is once the roll-forward is done.
    let now_in = |ds: &str| -> String {
        match rolled {
            Some(new) if ds == new => live.clone(),
            _ => ds.to_string(),
        }
    };
    for s in snapshots {
        if s.component.starts_with(HIDDEN) && !s.defer_destroy {
            plan.push(Repair::DropHidden(format!(
                "{}@{}",
                now_in(&s.dataset),
                s.component
            )));
        }
    }
    for k in children {
        if Some(k) == rolled {
            continue;
        }
        let kind = child_kind(container, k);
        if !matches!(kind, Child::History | Child::Restore) {
            continue;
        }
        let has_snaps = snapshots.iter().any(|s| &s.dataset == k);
        if !has_snaps {
            plan.push(Repair::DropEmpty(k.clone()));
        } else if kind == Child::Restore {
            plan.push(Repair::ToHistory(k.clone()));
        }
    }
    plan
}

/// Whether the zfs tools are there at all (unmount_pool must work without them).
fn zfs_present() -> bool {
    cli::check_available().is_ok()
}
