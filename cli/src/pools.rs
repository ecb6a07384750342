//! Storage pools: creating, opening (mounting again after a reboot), deleting, and the
//! **default** pool (dir driver, inside the state directory) made by the first command
//! that needs a pool when none named `default` exists.

use std::path::{Path, PathBuf};

use cairn_backends::{Backend, Bytes, DriverKind, PoolName, PoolSource, PoolSpec};
use jiff::Timestamp;

use crate::names::{self, NameError};
use crate::state::{self, LockKind, LockMode, ObjectLock, PoolRecord, Store};

pub const DEFAULT_POOL: &str = "default";

/// Size of the loop file made for a pool given no `--source` by a driver that needs one.
pub const DEFAULT_LOOP_SIZE: Bytes = Bytes(10 << 30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("pool {0}: does not exist")]
    NotFound(String),
    #[error("pool {0}: already exists")]
    Exists(String),
    #[error("pool {name}: in use by {users}")]
    InUse { name: String, users: String },
    #[error("pool {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("pool {name}: {source}")]
    Storage {
        name: String,
        #[source]
        source: Box<cairn_backends::Error>,
    },
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Name(#[from] NameError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn storage(name: &impl ToString) -> impl FnOnce(cairn_backends::Error) -> Error + '_ {
    move |source| Error::Storage {
        name: name.to_string(),
        source: Box::new(source),
    }
}

/// An open pool, held in use (a shared lock) until dropped.
pub struct Pool {
    pub record: PoolRecord,
    pub backend: Box<dyn Backend>,
    _lock: ObjectLock,
}

impl Pool {
    pub fn name(&self) -> &str {
        self.record.name.as_str()
    }

    /// Opens the named pool, or the default one (creating it if missing). Mounts the pool
    /// first if it was not mounted since the machine booted.
    pub fn open(store: &Store, name: Option<&str>) -> Result<Pool> {
        let name: PoolName = names::parse("pool", name.unwrap_or(DEFAULT_POOL))?;
        let record = match store.pool(name.as_str())? {
            Some(r) => r,
            None if name.as_str() == DEFAULT_POOL => {
                // Another process may create it first: that is success too.
                match create(store, &name, DriverKind::Dir, None, None) {
                    Ok(r) => r,
                    Err(Error::Exists(_)) => store
                        .pool(name.as_str())?
                        .ok_or_else(|| Error::NotFound(name.to_string()))?,
                    Err(e) => return Err(e),
                }
            }
            None => return Err(Error::NotFound(name.to_string())),
        };
        let boot = state::boot_id();
        if record.mounted_boot.as_deref() != Some(boot.as_str()) {
            let _x = store.lock(LockKind::Pool, name.as_str(), LockMode::Exclusive)?;
            let record = store
                .pool(name.as_str())?
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            if record.mounted_boot.as_deref() != Some(boot.as_str()) {
                let backend = cairn_backends::open(record.driver, record.spec.clone())
                    .map_err(storage(&name))?;
                backend.mount_pool().map_err(storage(&name))?;
                store.set_pool_mounted(name.as_str(), &boot)?;
            }
        }
        let lock = store.lock(LockKind::Pool, name.as_str(), LockMode::Shared)?;
        // Re-read under the lock: the pool may have been deleted meanwhile.
        let record = store
            .pool(name.as_str())?
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let backend =
            cairn_backends::open(record.driver, record.spec.clone()).map_err(storage(&name))?;
        Ok(Pool {
            record,
            backend,
            _lock: lock,
        })
    }
}

/// Mounts a pool again while no other `cairn` uses it (an exclusive lock), which also
/// makes the driver remove leftovers of interrupted operations.
pub fn remount(store: &Store, name: &str) -> Result<()> {
    let _lock = store.lock(LockKind::Pool, name, LockMode::Exclusive)?;
    let record = store
        .pool(name)?
        .ok_or_else(|| Error::NotFound(name.to_string()))?;
    let backend =
        cairn_backends::open(record.driver, record.spec.clone()).map_err(storage(&name))?;
    backend.mount_pool().map_err(storage(&name))?;
    store.set_pool_mounted(name, &state::boot_id())?;
    Ok(())
}

/// What is at a `--source` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    Directory,
    BlockDevice,
    File,
}

pub fn path_kind(path: &Path) -> PathKind {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Err(_) => PathKind::Missing,
        Ok(m) if m.is_dir() => PathKind::Directory,
        Ok(m) if m.file_type().is_block_device() => PathKind::BlockDevice,
        Ok(_) => PathKind::File,
    }
}

/// Chooses the pool source from the flags: no `--source` is the state dir for `dir` and
/// a loop file in the state dir for the others; `--size` makes a loop file; a directory
/// is used as is; a block device is formatted; for lvm and zfs a relative name that is
/// no file (`vg/thinpool`, `tank/cairn`) is an existing thin pool or zpool dataset.
pub fn choose_source(
    driver: DriverKind,
    source: Option<(&Path, PathKind)>,
    size: Option<Bytes>,
    default_loop: PathBuf,
) -> std::result::Result<PoolSource, String> {
    match (source, size) {
        // `vg/thinpool` or `tank/cairn`: an existing volume group or zpool dataset.
        (Some((p, PathKind::Missing)), None)
            if matches!(driver, DriverKind::LvmThin | DriverKind::Zfs) && p.is_relative() =>
        {
            Ok(PoolSource::Existing {
                name: p.to_string_lossy().into_owned(),
            })
        }
        (None, None) if driver == DriverKind::Dir => Ok(PoolSource::StateDir),
        (None, size) => Ok(PoolSource::LoopFile {
            path: default_loop,
            size: size.unwrap_or(DEFAULT_LOOP_SIZE),
        }),
        (Some((p, PathKind::Missing | PathKind::File)), Some(size)) => Ok(PoolSource::LoopFile {
            path: p.to_path_buf(),
            size,
        }),
        (Some((p, kind)), Some(_)) => Err(format!(
            "--size makes a loop file, but {} is a {}",
            p.display(),
            if kind == PathKind::Directory {
                "directory"
            } else {
                "block device"
            }
        )),
        (Some((p, PathKind::Directory)), None) => Ok(PoolSource::Directory {
            path: p.to_path_buf(),
        }),
        (Some((p, PathKind::BlockDevice)), None) => Ok(PoolSource::Device {
            path: p.to_path_buf(),
            force: false,
        }),
        (Some((p, PathKind::Missing)), None) => Err(format!(
            "{} does not exist: create the directory, or add --size to make a loop file there",
            p.display()
        )),
        (Some((p, PathKind::File)), None) => Err(format!(
            "{} is a regular file: add --size to use it as a loop file",
            p.display()
        )),
    }
}

/// The `--source` as the spec stores it, which must not depend on the working directory:
/// made absolute, except a relative name that is no file given to lvm or zfs without
/// `--size` (`vg0/thin`, `tank/cairn`), which names an existing thin pool or dataset.
fn stored_source(driver: DriverKind, p: &Path, kind: PathKind, size: Option<Bytes>) -> PathBuf {
    let names_existing = matches!(driver, DriverKind::LvmThin | DriverKind::Zfs)
        && kind == PathKind::Missing
        && size.is_none()
        && p.is_relative();
    if names_existing {
        p.to_path_buf()
    } else {
        std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Creates a pool: its storage first, then its record (a failed record removes the
/// storage again).
pub fn create(
    store: &Store,
    name: &PoolName,
    driver: DriverKind,
    source: Option<&Path>,
    size: Option<Bytes>,
) -> Result<PoolRecord> {
    let _lock = store.lock(LockKind::Pool, name.as_str(), LockMode::Exclusive)?;
    if store.pool(name.as_str())?.is_some() {
        return Err(Error::Exists(name.to_string()));
    }
    let source = source.map(|p| stored_source(driver, p, path_kind(p), size));
    let source = source.as_deref();
    let default_loop = store.dir().join("disks").join(format!("{name}.img"));
    let source = choose_source(
        driver,
        source.map(|p| (p, path_kind(p))),
        size,
        default_loop,
    )
    .map_err(|reason| Error::Invalid {
        name: name.to_string(),
        reason,
    })?;
    if let PoolSource::LoopFile { path, .. } = &source {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Invalid {
                name: name.to_string(),
                reason: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
    }
    let spec = PoolSpec {
        name: name.clone(),
        source,
        state_dir: store.pool_state_dir(name.as_str()),
    };
    let backend = cairn_backends::open(driver, spec.clone()).map_err(storage(name))?;
    backend.create_pool().map_err(storage(name))?;
    let record = PoolRecord {
        name: name.clone(),
        driver,
        spec,
        created_at: Timestamp::now(),
        mounted_boot: Some(state::boot_id()),
    };
    if let Err(e) = store.insert_pool(&record) {
        let _ = backend.delete_pool();
        return Err(e.into());
    }
    Ok(record)
}

/// Deletes a pool that holds no containers and no images.
pub fn delete(store: &Store, name: &str) -> Result<()> {
    let _lock = store.lock(LockKind::Pool, name, LockMode::Exclusive)?;
    let record = store
        .pool(name)?
        .ok_or_else(|| Error::NotFound(name.to_string()))?;
    let (containers, images) = store.pool_users(name)?;
    if !containers.is_empty() || !images.is_empty() {
        let mut users = Vec::new();
        if !containers.is_empty() {
            users.push(format!("container(s) {}", containers.join(", ")));
        }
        if !images.is_empty() {
            let short: Vec<_> = images.iter().map(|f| &f[..12]).collect();
            users.push(format!(
                "image(s) {} (image delete removes them)",
                short.join(", ")
            ));
        }
        return Err(Error::InUse {
            name: name.to_string(),
            users: users.join(" and "),
        });
    }
    let backend =
        cairn_backends::open(record.driver, record.spec.clone()).map_err(storage(&name))?;
    backend.delete_pool().map_err(storage(&name))?;
    store.delete_pool_record(name)?;
    Ok(())
}

/// A pool's record, driver capabilities and space.
pub struct PoolDetails {
    pub record: PoolRecord,
    pub info: cairn_backends::DriverInfo,
    pub usage: Option<cairn_backends::Usage>,
    pub containers: Vec<String>,
    pub images: Vec<String>,
}

pub fn show(store: &Store, name: &str) -> Result<PoolDetails> {
    let name: PoolName = names::parse("pool", name)?;
    if store.pool(name.as_str())?.is_none() {
        return Err(Error::NotFound(name.to_string()));
    }
    let pool = Pool::open(store, Some(name.as_str()))?;
    let (containers, images) = store.pool_users(name.as_str())?;
    Ok(PoolDetails {
        info: pool.backend.info(),
        usage: pool.backend.pool_usage().ok(),
        record: pool.record,
        containers,
        images,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_sources_are_stored_absolute_unless_they_name_a_thin_pool_or_dataset() {
        let cwd = std::env::current_dir().unwrap();
        let gig = Some(Bytes(1 << 30));
        let rel = Path::new("fast.img");
        // A loop file to make, for any driver: relative to where cairn runs.
        for d in [
            DriverKind::Btrfs,
            DriverKind::Dir,
            DriverKind::LvmThin,
            DriverKind::Zfs,
        ] {
            assert_eq!(
                stored_source(d, rel, PathKind::Missing, gig),
                cwd.join("fast.img"),
                "{d:?}"
            );
        }
        // Existing files and directories, and missing names for btrfs and dir.
        for (d, kind) in [
            (DriverKind::Btrfs, PathKind::File),
            (DriverKind::Btrfs, PathKind::Missing),
            (DriverKind::Dir, PathKind::Directory),
            (DriverKind::Dir, PathKind::Missing),
            (DriverKind::Zfs, PathKind::BlockDevice),
            (DriverKind::LvmThin, PathKind::File),
        ] {
            assert_eq!(
                stored_source(d, rel, kind, None),
                cwd.join("fast.img"),
                "{d:?} {kind:?}"
            );
        }
        // lvm and zfs without --size: a relative name that is no file is a thin pool or
        // dataset, kept as given.
        for (d, n) in [
            (DriverKind::LvmThin, "vg0/thin"),
            (DriverKind::Zfs, "tank/cairn"),
        ] {
            assert_eq!(
                stored_source(d, Path::new(n), PathKind::Missing, None),
                PathBuf::from(n)
            );
        }
        // Absolute paths stay as they are.
        let abs = Path::new("/srv/pool.img");
        assert_eq!(
            stored_source(DriverKind::Zfs, abs, PathKind::Missing, None),
            abs
        );
    }

    #[test]
    fn sources_follow_the_flags() {
        let lp = PathBuf::from("/s/disks/p.img");
        let choose = |d, s, z| choose_source(d, s, z, lp.clone());
        assert_eq!(
            choose(DriverKind::Dir, None, None),
            Ok(PoolSource::StateDir)
        );
        assert_eq!(
            choose(DriverKind::Btrfs, None, None),
            Ok(PoolSource::LoopFile {
                path: lp.clone(),
                size: DEFAULT_LOOP_SIZE
            })
        );
        let f = Path::new("/x/pool.img");
        assert_eq!(
            choose(
                DriverKind::Btrfs,
                Some((f, PathKind::Missing)),
                Some(Bytes(1 << 30))
            ),
            Ok(PoolSource::LoopFile {
                path: f.into(),
                size: Bytes(1 << 30)
            })
        );
        assert_eq!(
            choose(DriverKind::Dir, Some((f, PathKind::Directory)), None),
            Ok(PoolSource::Directory { path: f.into() })
        );
        assert_eq!(
            choose(DriverKind::Btrfs, Some((f, PathKind::BlockDevice)), None),
            Ok(PoolSource::Device {
                path: f.into(),
                force: false
            })
        );
        assert!(choose(DriverKind::Dir, Some((f, PathKind::Missing)), None).is_err());
        // lvm and zfs take an existing thin pool or dataset by name.
        for (d, n) in [
            (DriverKind::LvmThin, "vg0/thin"),
            (DriverKind::Zfs, "tank/cairn"),
        ] {
            assert_eq!(
                choose(d, Some((Path::new(n), PathKind::Missing)), None),
                Ok(PoolSource::Existing { name: n.into() })
            );
        }
        let missing_abs = Path::new("/no/such/disk");
        assert!(choose(
            DriverKind::Zfs,
            Some((missing_abs, PathKind::Missing)),
            None
        )
        .is_err());
        assert!(choose(
            DriverKind::Btrfs,
            Some((Path::new("vg0/thin"), PathKind::Missing)),
            None
        )
        .is_err());
        assert!(choose(
            DriverKind::Dir,
            Some((f, PathKind::Directory)),
            Some(Bytes(1))
        )
        .is_err());
    }
}
