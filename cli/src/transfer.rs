//! Copying a container between pools: a full, exact copy of its files (owners, modes,
//! times, xattrs, devices, hard links; reflinked where the filesystem allows) with the
//! storage layer's `copy_tree`, into a new volume of the target pool.
//!
//! `copy_tree` creates its destination, but a volume's root already exists (and may be a
//! mount point), so the tree is copied to a staging directory inside the new volume,
//! its entries renamed up into the root, and the source root's owner, mode and times
//! applied to the volume root last. A failure deletes the new volume.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cairn_backends::copy::{copy_tree, CopyMode, CopyStats};
use cairn_backends::SnapshotName;
use jiff::Timestamp;

use crate::containers::{get, storage, Error, Result};
use crate::names::ContainerName;
use crate::pools::Pool;
use crate::progress::Progress;
use crate::snapshots;
use crate::state::{ContainerRecord, LockKind, LockMode, Store};

/// Copies `src` (or its snapshot `snap`) to the new container `dst` in `target`.
pub fn copy_between_pools(
    store: &Store,
    src: &ContainerName,
    snap: Option<&SnapshotName>,
    dst: &ContainerName,
    target: &str,
    progress: &dyn Progress,
) -> Result<(ContainerRecord, CopyStats)> {
    let record = get(store, src)?;
    let src_pool = Pool::open(store, Some(&record.pool))?;
    let dst_pool = Pool::open(store, Some(target))?;
    let (first, second) = if src < dst { (src, dst) } else { (dst, src) };
    let _l1 = store.lock(LockKind::Container, first.as_str(), LockMode::Exclusive)?;
    let _l2 = store.lock(LockKind::Container, second.as_str(), LockMode::Exclusive)?;
    let record = get(store, src)?;
    if store.container(dst.as_str())?.is_some() {
        return Err(Error::Exists(dst.to_string()));
    }
    let src_volume = src.volume();
    let src_root = match snap {
        Some(s) => {
            snapshots::require(&src_pool, src, s)?;
            src_pool
                .backend
                .mount_snapshot(&src_volume, s)
                .map_err(storage(src, "mount snapshot"))?
        }
        None => src_pool
            .backend
            .mount_volume(&src_volume)
            .map_err(storage(src, "mount"))?,
    };
    let dst_volume = dst.volume();
    match dst_pool.backend.create_volume(&dst_volume) {
        Ok(cairn_backends::CreateAction::Created(())) => {}
        Ok(cairn_backends::CreateAction::Identity)
        | Err(cairn_backends::Error::AlreadyExists { .. }) => {
            return Err(Error::Orphan(dst.to_string()))
        }
        Err(e) => return Err(storage(dst, "create volume")(e)),
    }
    progress.phase("copying", None, false);
    let result = (|| {
        let dst_root = dst_pool
            .backend
            .mount_volume(&dst_volume)
            .map_err(storage(dst, "mount"))?;
        let stats = copy_into_root(&src_root, &dst_root).map_err(storage(dst, "copy"))?;
        let rec = ContainerRecord {
            name: dst.to_string(),
            pool: dst_pool.name().to_string(),
            image: record.image.clone(),
            volume: dst_volume.to_string(),
            created_at: Timestamp::now(),
        };
        store.insert_container(&rec)?;
        Ok((rec, stats))
    })();
    if result.is_err() {
        let _ = dst_pool.backend.delete_volume(&dst_volume);
    }
    if let Some(s) = snap {
        let _ = src_pool.backend.unmount_snapshot(&src_volume, s);
    }
    result
}

/// Copies the tree at `src` into the existing, empty directory `root`.
pub fn copy_into_root(src: &Path, root: &Path) -> cairn_backends::Result<CopyStats> {
    use cairn_backends::error::IoContext;
    let staging = root.join(format!(".cairn-copy-{}", std::process::id()));
    let stats = copy_tree(src, &staging, CopyMode::Auto)?;
    for entry in std::fs::read_dir(&staging).ctx("read", &staging)? {
        let entry = entry.ctx("read", &staging)?;
        let to = root.join(entry.file_name());
        std::fs::rename(entry.path(), &to).ctx("move into place", &to)?;
    }
    std::fs::remove_dir(&staging).ctx("remove", &staging)?;
    copy_root_meta(&staging_meta_source(src)?, root).ctx("set owner, mode and times of", root)?;
    Ok(stats)
}

fn staging_meta_source(src: &Path) -> cairn_backends::Result<std::fs::Metadata> {
    use cairn_backends::error::IoContext;
    std::fs::symlink_metadata(src).ctx("stat", src)
}

fn copy_root_meta(m: &std::fs::Metadata, root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(root, Some(m.uid()), Some(m.gid()))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    let c = std::ffi::CString::new(root.as_os_str().as_bytes())?;
    let times = [
        libc::timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        libc::timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    ];
    // SAFETY: `c` is a valid NUL-terminated path and `times` holds two timespecs.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_into_an_existing_root_with_the_source_root_metadata() {
        let t = tempfile::tempdir().unwrap();
        let (src, root) = (t.path().join("src"), t.path().join("root"));
        std::fs::create_dir_all(src.join("etc")).unwrap();
        std::fs::write(src.join("etc/hostname"), "box\n").unwrap();
        std::os::unix::fs::symlink("etc/hostname", src.join("link")).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o751)).unwrap();
        std::fs::create_dir(&root).unwrap();
        let stats = copy_into_root(&src, &root).unwrap();
        assert_eq!(stats.files, 1);
        assert_eq!(
            std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("etc/hostname")
        );
        let (s, r) = (
            std::fs::metadata(&src).unwrap(),
            std::fs::metadata(&root).unwrap(),
        );
        assert_eq!(r.mode() & 0o7777, 0o751);
        assert_eq!((r.mtime(), r.mtime_nsec()), (s.mtime(), s.mtime_nsec()));
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            2,
            "staging left behind"
        );
    }
}
