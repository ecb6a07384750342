//! The `zfs`/`zpool` calls the driver makes, through [`crate::cmd`], with their stderr
//! turned into typed errors at the call site.

use std::ffi::OsString;
use std::path::Path;

use super::parse::{self, FsRow, Listing, SnapRow, SpaceRow};
use crate::cmd::{CommandFailure, ZFS, ZPOOL};
use crate::error::{Error, Kind, Result};

/// Fails unless the zfs tools are installed and the kernel module is loaded.
pub fn check_available() -> Result<()> {
    ZFS.resolve()?;
    ZPOOL.resolve()?;
    if !Path::new("/dev/zfs").exists() {
        return Err(Error::Invalid {
            op: "use zfs",
            object: "/dev/zfs".into(),
            reason: "the zfs kernel module is not loaded: modprobe zfs (package zfs-dkms)".into(),
        });
    }
    Ok(())
}

/// The stderr of a failed zfs/zpool call, if that is what `e` is.
pub fn stderr_of(e: &Error) -> Option<&str> {
    match e {
        Error::Command(CommandFailure { stderr, .. }) => Some(stderr),
        _ => None,
    }
}

pub fn says(e: &Error, needle: &str) -> bool {
    stderr_of(e).is_some_and(|s| s.contains(needle))
}

/// Maps the common stderr messages: missing → `NotFound`, taken → `AlreadyExists`,
/// out of space → `NoSpace`, busy → `Busy`. Anything else is returned as it is.
pub fn typed(e: Error, op: &'static str, kind: Kind, name: &str) -> Error {
    if says(&e, "does not exist") {
        Error::not_found(kind, name)
    } else if says(&e, "already exists") {
        Error::exists(kind, name)
    } else if says(&e, "out of space") || says(&e, "No space left") {
        Error::NoSpace {
            op,
            object: format!("{kind} {name}"),
        }
    } else if says(&e, "dataset is busy") || says(&e, "target is busy") {
        Error::Busy {
            op,
            object: format!("{kind} {name}"),
            reason: stderr_of(&e).unwrap_or_default().trim().to_string(),
        }
    } else {
        e
    }
}

pub fn zfs<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String> {
    ZFS.run(args)
}

pub fn zpool<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String> {
    ZPOOL.run(args)
}

/// One `zfs list` of `ds`, its filesystems and snapshots ([`parse::LIST_COLS`]): `ds`
/// alone with `depth` 0, down `depth` levels (a dataset's snapshots are one level below
/// it), or everything below it with `None`. `None` if `ds` does not exist.
pub fn list(ds: &str, depth: Option<u32>) -> Result<Option<Listing>> {
    let depth = depth.map(|d| d.to_string());
    let mut args = vec![
        "list",
        "-H",
        "-p",
        "-t",
        "filesystem,snapshot",
        "-o",
        parse::LIST_COLS,
    ];
    match &depth {
        Some(d) => args.extend(["-d", d]),
        None => args.push("-r"),
    }
    args.push(ds);
    match zfs(&args) {
        Ok(text) => parse::parse_listing(&text).map(Some),
        Err(e) if says(&e, "does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a zpool is imported.
pub fn zpool_imported(name: &str) -> Result<bool> {
    match zpool(&["list", "-H", "-o", "name", name]) {
        Ok(_) => Ok(true),
        Err(e) if says(&e, "no such pool") => Ok(false),
        Err(e) => Err(e),
    }
}

/// A property's value and whether it is set on the dataset itself.
pub fn get_local(ds: &str, prop: &str) -> Result<(Option<String>, bool)> {
    parse::parse_get_local(&zfs(&["get", "-H", "-p", "-o", "value,source", prop, ds])?)
}

pub fn set(ds: &str, prop: &str, value: &str) -> Result<()> {
    zfs(&["set", &format!("{prop}={value}"), ds])?;
    Ok(())
}

/// Every snapshot of `ds` and its descendants (empty if `ds` does not exist).
pub fn snapshots(ds: &str) -> Result<Vec<SnapRow>> {
    let out = zfs(&[
        "list",
        "-H",
        "-p",
        "-t",
        "snapshot",
        "-o",
        parse::SNAP_COLS,
        "-s",
        "createtxg",
        "-r",
        ds,
    ]);
    match out {
        Ok(text) => parse::parse_snapshots(&text),
        Err(e) if says(&e, "does not exist") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The filesystems `depth` levels below `ds` (`ds` itself excluded); empty if absent.
pub fn children(ds: &str, depth: u32) -> Result<Vec<FsRow>> {
    let out = zfs(&[
        "list",
        "-H",
        "-p",
        "-t",
        "filesystem",
        "-o",
        parse::FS_COLS,
        "-d",
        &depth.to_string(),
        ds,
    ]);
    match out {
        Ok(text) => Ok(parse::parse_filesystems(&text)?
            .into_iter()
            .filter(|r| r.name != ds)
            .collect()),
        Err(e) if says(&e, "does not exist") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `zfs create` with `-o prop=value` options.
pub fn create(ds: &str, props: &[(&str, &str)]) -> Result<()> {
    let mut args: Vec<OsString> = vec!["create".into()];
    for (k, v) in props {
        args.extend(["-o".into(), format!("{k}={v}").into()]);
    }
    args.push(ds.into());
    zfs(&args)?;
    Ok(())
}

pub fn rename(from: &str, to: &str) -> Result<()> {
    zfs(&["rename", from, to])?;
    Ok(())
}

/// What [`destroy_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destroyed {
    /// Gone (or was not there).
    Now,
    /// Kept by clones or holds: hidden under a `:t` component, marked for deferred
    /// destruction (so no longer listed as a snapshot of its volume).
    Deferred,
}

/// Destroys a snapshot now, or, if clones or holds keep it, hides it under a `:t` name
/// and marks it for deferred destruction (ZFS destroys it when the last one goes).
pub fn destroy_snapshot(full: &str) -> Result<Destroyed> {
    match zfs(&["destroy", full]) {
        Ok(_) => Ok(Destroyed::Now),
        Err(e) if says(&e, "does not exist") => Ok(Destroyed::Now),
        Err(e) if says(&e, "dependent clones") || says(&e, "dataset is busy") => {
            let (ds, _) = full.split_once('@').unwrap_or((full, ""));
            let component = format!("{}del.{}", super::naming::HIDDEN, super::naming::fresh_id());
            let hidden = format!("{ds}@{component}");
            rename(full, &hidden)?;
            destroy_deferred(&hidden)?;
            Ok(Destroyed::Deferred)
        }
        Err(e) => Err(e),
    }
}

/// `zfs destroy -d`: destroys a snapshot now if nothing keeps it, else marks it for
/// destruction when its last clone or hold goes. For snapshots already hidden (`:t`).
pub fn destroy_deferred(full: &str) -> Result<()> {
    match zfs(&["destroy", "-d", full]) {
        Err(e) if !says(&e, "does not exist") => Err(e),
        _ => Ok(()),
    }
}

/// Bytes used, available and referenced by each of `datasets`, with the `cairn:managed`
/// each sees, in one `zfs list`. `None` if one of them does not exist.
pub fn space(datasets: &[&str]) -> Result<Option<Vec<SpaceRow>>> {
    let mut args = vec![
        "list",
        "-H",
        "-p",
        "-o",
        "name,used,available,referenced,cairn:managed",
    ];
    args.extend(datasets);
    match zfs(&args) {
        Ok(text) => parse::parse_space_rows(&text).map(Some),
        Err(e) if says(&e, "does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits for the pool's pending writes to reach disk, so space figures are current.
pub fn zpool_sync(name: &str) -> Result<()> {
    zpool(&["sync", name])?;
    Ok(())
}
