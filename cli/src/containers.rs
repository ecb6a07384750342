//! Containers: a record (pool, image, volume) plus a volume `ct-<name>` in its pool,
//! cloned copy-on-write from the image's base snapshot. On create and copy the storage
//! changes first and the record is written last; on delete the volume goes first and the
//! record last. So a `cairn` killed mid-way leaves at worst a volume without a record
//! (which `cairn check --repair` adopts) or a record whose delete is finished by running
//! it again, never a listed container whose files are half made.

use std::path::PathBuf;

use cairn_backends::{CloneSource, SnapshotName, Usage};
use jiff::Timestamp;
use serde::Serialize;

use crate::images::{self, ensure_in_pool, BASE_SNAPSHOT};
use crate::names::{ContainerName, NameError};
use crate::pools::{self, Pool};
use crate::progress::Progress;
use crate::snapshots::{self, SnapshotView};
use crate::state::{self, ContainerRecord, LockKind, LockMode, ObjectLock, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0}: does not exist")]
    NotFound(String),
    #[error("container {0}: already exists")]
    Exists(String),
    #[error("container {0}: a volume of that name exists without a record (left by an interrupted command); choose another name")]
    Orphan(String),
    #[error("container {container}: snapshot {snapshot}: does not exist")]
    SnapshotNotFound { container: String, snapshot: String },
    #[error("container {container}: snapshot {snapshot}: already exists")]
    SnapshotExists { container: String, snapshot: String },
    #[error("container {container}: snapshot {snapshot}: is held{reason}; release it first: cairn snapshot release {container} {snapshot}")]
    SnapshotHeld {
        container: String,
        snapshot: String,
        reason: String,
    },
    #[error("container {name}: {op}: {source}")]
    Storage {
        name: String,
        op: &'static str,
        #[source]
        source: Box<cairn_backends::Error>,
    },
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Pool(#[from] pools::Error),
    #[error(transparent)]
    Image(Box<images::Error>),
    #[error(transparent)]
    Name(#[from] NameError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The refusal to delete a held snapshot; an empty hold reason is left out.
    pub(crate) fn snapshot_held(
        container: &impl ToString,
        snapshot: &impl ToString,
        reason: &str,
    ) -> Error {
        Error::SnapshotHeld {
            container: container.to_string(),
            snapshot: snapshot.to_string(),
            reason: if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            },
        }
    }
}

impl From<images::Error> for Error {
    fn from(e: images::Error) -> Error {
        Error::Image(Box::new(e))
    }
}

pub(crate) fn storage<'a>(
    name: &'a impl ToString,
    op: &'static str,
) -> impl FnOnce(cairn_backends::Error) -> Error + 'a {
    move |source| Error::Storage {
        name: name.to_string(),
        op,
        source: Box::new(source),
    }
}

/// What `cairn info` prints.
#[derive(Debug, Serialize)]
pub struct ContainerInfo {
    pub name: String,
    pub pool: String,
    pub image: Option<String>,
    pub created_at: Timestamp,
    /// Where the container's files are.
    pub rootfs: PathBuf,
    pub usage: Option<Usage>,
    pub snapshots: Vec<SnapshotView>,
}

/// A container's record, or `NotFound`.
pub fn get(store: &Store, name: &ContainerName) -> Result<ContainerRecord> {
    store
        .container(name.as_str())?
        .ok_or_else(|| Error::NotFound(name.to_string()))
}

/// Opens the container's pool and locks the container (in that order).
pub(crate) fn open_locked(
    store: &Store,
    name: &ContainerName,
) -> Result<(ContainerRecord, Pool, ObjectLock)> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let lock = store.lock(LockKind::Container, name.as_str(), LockMode::Exclusive)?;
    let record = get(store, name)?; // re-read under the lock
    Ok((record, pool, lock))
}

/// Creates a container from an image, unpacking the image into the pool first if needed.
pub fn create(
    store: &Store,
    image: &str,
    name: &ContainerName,
    pool: Option<&str>,
    progress: &dyn Progress,
) -> Result<ContainerRecord> {
    if store.container(name.as_str())?.is_some() {
        return Err(Error::Exists(name.to_string()));
    }
    let image = images::resolve(store, image)?;
    let pool = Pool::open(store, pool)?;
    let base = ensure_in_pool(store, &image, &pool, progress)?;
    let _lock = store.lock(LockKind::Container, name.as_str(), LockMode::Exclusive)?;
    let snap: SnapshotName = BASE_SNAPSHOT.parse().expect("a valid snapshot name");
    clone_into(
        store,
        name,
        &pool,
        CloneSource::Snapshot(&base, &snap),
        Some(image.fingerprint),
    )
}

/// Clones `src` into the new container `name` of `pool` and records it.
fn clone_into(
    store: &Store,
    name: &ContainerName,
    pool: &Pool,
    src: CloneSource<'_>,
    image: Option<String>,
) -> Result<ContainerRecord> {
    if store.container(name.as_str())?.is_some() {
        return Err(Error::Exists(name.to_string()));
    }
    let volume = name.volume();
    match pool.backend.clone_volume(src, &volume) {
        Ok(()) => {}
        Err(cairn_backends::Error::AlreadyExists { .. }) => {
            return Err(Error::Orphan(name.to_string()))
        }
        Err(e) => return Err(storage(name, "clone")(e)),
    }
    let record = ContainerRecord {
        name: name.to_string(),
        pool: pool.name().to_string(),
        image,
        volume: volume.to_string(),
        created_at: Timestamp::now(),
    };
    if let Err(e) = store.insert_container(&record) {
        let _ = pool.backend.delete_volume(&volume);
        return Err(e.into());
    }
    Ok(record)
}

/// Copies a container (or one of its snapshots) to a new container: a copy-on-write
/// clone within a pool, a full exact copy into another pool.
pub fn copy(
    store: &Store,
    src: &ContainerName,
    snap: Option<&SnapshotName>,
    dst: &ContainerName,
    pool: Option<&str>,
    progress: &dyn Progress,
) -> Result<ContainerRecord> {
    let record = get(store, src)?;
    if store.container(dst.as_str())?.is_some() {
        return Err(Error::Exists(dst.to_string()));
    }
    let target = pool.unwrap_or(&record.pool);
    if target != record.pool {
        let (rec, _stats) =
            crate::transfer::copy_between_pools(store, src, snap, dst, target, progress)?;
        return Ok(rec);
    }
    let src_pool = Pool::open(store, Some(&record.pool))?;
    let (first, second) = if src < dst { (src, dst) } else { (dst, src) };
    let _l1 = store.lock(LockKind::Container, first.as_str(), LockMode::Exclusive)?;
    let _l2 = store.lock(LockKind::Container, second.as_str(), LockMode::Exclusive)?;
    let record = get(store, src)?;
    let volume = src.volume();
    let source = match snap {
        Some(s) => {
            snapshots::require(&src_pool, src, s)?;
            CloneSource::Snapshot(&volume, s)
        }
        None => CloneSource::Volume(&volume),
    };
    clone_into(store, dst, &src_pool, source, record.image)
}

/// The container's details; mounts its volume to report where its files are.
pub fn info(store: &Store, name: &ContainerName) -> Result<ContainerInfo> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let volume = name.volume();
    let rootfs = pool
        .backend
        .mount_volume(&volume)
        .map_err(storage(name, "mount"))?;
    let usage = pool.backend.volume_usage(&volume).ok();
    let snapshots = snapshots::views(store, &pool, name)?;
    Ok(ContainerInfo {
        name: record.name,
        pool: record.pool,
        image: record.image,
        created_at: record.created_at,
        rootfs,
        usage,
        snapshots,
    })
}

/// Renames a container; its snapshots and their labels follow.
pub fn rename(store: &Store, from: &ContainerName, to: &ContainerName) -> Result<()> {
    let record = get(store, from)?;
    if store.container(to.as_str())?.is_some() {
        return Err(Error::Exists(to.to_string()));
    }
    let pool = Pool::open(store, Some(&record.pool))?;
    let (first, second) = if from < to { (from, to) } else { (to, from) };
    let _l1 = store.lock(LockKind::Container, first.as_str(), LockMode::Exclusive)?;
    let _l2 = store.lock(LockKind::Container, second.as_str(), LockMode::Exclusive)?;
    get(store, from)?;
    if store.container(to.as_str())?.is_some() {
        return Err(Error::Exists(to.to_string()));
    }
    match pool.backend.rename_volume(&from.volume(), &to.volume()) {
        Ok(()) => {}
        Err(cairn_backends::Error::AlreadyExists { .. }) => {
            return Err(Error::Orphan(to.to_string()))
        }
        Err(e) => return Err(storage(from, "rename")(e)),
    }
    if let Err(e) = store.rename_container(from.as_str(), to.as_str(), to.volume().as_str()) {
        let _ = pool.backend.rename_volume(&to.volume(), &from.volume());
        return Err(e.into());
    }
    Ok(())
}

/// Deletes a container and its snapshots: the volume first, then the record, so an
/// interrupted delete is finished by running it again.
pub fn delete(store: &Store, name: &ContainerName) -> Result<()> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let metas = store.snapshot_metas(name.as_str())?;
    if let Some((snap, m)) = metas.iter().find(|(_, m)| m.hold.is_some()) {
        return Err(Error::snapshot_held(
            name,
            snap,
            m.hold.as_deref().unwrap_or_default(),
        ));
    }
    pool.backend
        .delete_volume(&name.volume())
        .map_err(storage(name, "delete"))?;
    store.delete_container_record(name.as_str())?;
    Ok(())
}
