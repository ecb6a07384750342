//! Thin wrappers over `libbtrfsutil` (the `btrfsutil` crate): create, snapshot, delete
//! and inspect subvolumes, with errors turned into ours.
//!
//! libbtrfsutil reports its own error code and leaves the syscall's errno in place (it
//! saves errno around its cleanup); we read errno right after a failed call so ENOSPC
//! becomes [`Error::NoSpace`] and EEXIST / ENOENT keep their `io::ErrorKind`.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use btrfsutil::error::LibError;
use btrfsutil::subvolume::{DeleteFlags, SnapshotFlags, Subvolume};
use jiff::Timestamp;

use crate::error::{Error, IoContext, Result};

/// The inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOL_ROOT_INO: u64 = 256;

/// Turns a libbtrfsutil failure into our error; call it right after the failed call.
fn lib_err(op: &'static str, path: &Path, lib: LibError) -> Error {
    let errno = io::Error::last_os_error();
    match errno.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::io(op, path, errno),
        _ => Error::io(
            op,
            path,
            io::Error::new(errno.kind(), format!("{lib}: {errno}")),
        ),
    }
}

/// Whether an error from this module is "the destination already exists".
pub fn is_exists(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
}

/// Whether `meta` (from `symlink_metadata`) is the root directory of a subvolume.
pub fn meta_is_subvolume(meta: &Metadata) -> bool {
    meta.is_dir() && meta.ino() == SUBVOL_ROOT_INO
}

/// Whether `path` is the root of a subvolume (false if it does not exist).
pub fn is_subvolume(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| meta_is_subvolume(&m))
        .unwrap_or(false)
}

fn get(op: &'static str, path: &Path) -> Result<Subvolume> {
    Subvolume::get(path).map_err(|e| lib_err(op, path, e))
}

/// Creates an empty subvolume at `path` (atomic: one ioctl).
pub fn create(path: &Path) -> Result<()> {
    Subvolume::create(path, None)
        .map(drop)
        .map_err(|e| lib_err("create subvolume", path, e))
}

/// Snapshots the subvolume `src` at `dst` (one ioctl: atomic). Nested subvolumes of `src`
/// are not included; they appear as empty directories in the snapshot.
pub fn snapshot(src: &Path, dst: &Path, read_only: bool) -> Result<()> {
    let sv = get("snapshot subvolume", src)?;
    let flags = if read_only {
        SnapshotFlags::READ_ONLY
    } else {
        SnapshotFlags::empty()
    };
    sv.snapshot(dst, flags, None)
        .map(drop)
        .map_err(|e| lib_err("create snapshot", dst, e))
}

/// Deletes the subvolume at `path` with every subvolume nested below it.
pub fn delete(path: &Path) -> Result<()> {
    let sv = get("delete subvolume", path)?;
    sv.delete(DeleteFlags::RECURSIVE)
        .map_err(|e| lib_err("delete subvolume", path, e))
}

/// Whether the subvolume at `path` is read-only.
pub fn is_ro(path: &Path) -> Result<bool> {
    let sv = get("inspect subvolume", path)?;
    sv.is_ro()
        .map_err(|e| lib_err("inspect subvolume", path, e))
}

/// When the subvolume was created (`otime`, nanosecond precision), as btrfs stores it.
pub fn created_at(path: &Path) -> Result<Timestamp> {
    let sv = get("inspect subvolume", path)?;
    let info = sv
        .info()
        .map_err(|e| lib_err("inspect subvolume", path, e))?;
    Timestamp::new(
        info.otime.timestamp(),
        info.otime.timestamp_subsec_nanos() as i32,
    )
    .map_err(|e| Error::Invalid {
        op: "read creation time of",
        object: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The subvolume's UUID and, if it was received, the UUID it was received from.
pub fn uuids(path: &Path) -> Result<([u8; 16], Option<[u8; 16]>)> {
    let sv = get("inspect subvolume", path)?;
    let info = sv
        .info()
        .map_err(|e| lib_err("inspect subvolume", path, e))?;
    Ok((
        *info.uuid.as_bytes(),
        info.received_uuid.map(|u| *u.as_bytes()),
    ))
}

/// Removes `path` whatever it is: a subvolume (recursively), a directory that may hold
/// subvolumes, or a file. Absent is fine. Used to empty `.tmp/` and to delete pools.
pub fn remove_tree(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("remove", path, e)),
    };
    if meta_is_subvolume(&meta) {
        return delete(path);
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ctx("read directory", path)? {
            let entry = entry.ctx("read directory", path)?;
            remove_tree(&entry.path())?;
        }
        return std::fs::remove_dir(path).ctx("remove directory", path);
    }
    std::fs::remove_file(path).ctx("remove", path)
}
