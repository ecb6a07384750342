//! The LVM calls the driver makes, all through [`crate::cmd`] (`lvm <command> ...`), with
//! stderr turned into typed errors where the meaning is known.

use std::ffi::OsString;

use super::parse::{self, Lv, Pv, Vg, LVS_FIELDS, PVS_FIELDS, VGS_FIELDS};
use crate::cmd::{CommandFailure, DMSETUP, LVM, MODPROBE, THIN_DELTA, THIN_DUMP};
use crate::error::{Error, Kind, Result};

/// `lvm <args>`; returns stdout.
pub fn lvm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<String> {
    LVM.run(args)
}

/// Builds an argv from string-likes.
pub fn argv<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

fn stderr_of(e: &Error) -> Option<&str> {
    match e {
        Error::Command(CommandFailure { stderr, .. }) => Some(stderr),
        _ => None,
    }
}

/// True when LVM said the VG or LV does not exist.
pub fn is_not_found(e: &Error) -> bool {
    stderr_of(e)
        .is_some_and(|s| s.contains("not found") || s.contains("Failed to find logical volume"))
}

/// True when LVM said the name is taken.
pub fn is_exists(e: &Error) -> bool {
    stderr_of(e).is_some_and(|s| s.contains("already exists"))
}

/// True when LVM said there is no room (VG or thin pool).
pub fn is_no_space(e: &Error) -> bool {
    stderr_of(e).is_some_and(|s| {
        s.contains("Insufficient free space")
            || s.contains("out of data space")
            || s.contains("Cannot create new thin volume, free space in thin pool")
            || s.contains("No space left")
    })
}

/// Maps LVM's "already exists" and "no space" to typed errors for `object`.
pub fn typed(e: Error, op: &'static str, kind: Kind, object: &str) -> Error {
    if is_exists(&e) {
        Error::exists(kind, object)
    } else if is_no_space(&e) {
        Error::NoSpace {
            op,
            object: object.to_string(),
        }
    } else {
        e
    }
}

/// Every LV of `vg` (hidden ones left out); empty when the VG does not exist.
pub fn lvs(vg: &str) -> Result<Vec<Lv>> {
    report(vg)
}

/// The LV `vg/lv` alone, if it exists (one `lvs vg/lv`, no report of the whole VG).
pub fn lv(vg: &str, lv: &str) -> Result<Option<Lv>> {
    Ok(report(&format!("{vg}/{lv}"))?
        .into_iter()
        .find(|l| l.name == lv))
}

/// `lvs` of a VG or of one `vg/lv`; empty when it does not exist.
fn report(what: &str) -> Result<Vec<Lv>> {
    match lvm(&[
        "lvs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        LVS_FIELDS,
        what,
    ]) {
        Ok(out) => parse::parse_lvs(&out),
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The VG named `vg`, if it exists.
pub fn vg(vg: &str) -> Result<Option<Vg>> {
    match lvm(&[
        "vgs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        VGS_FIELDS,
        vg,
    ]) {
        Ok(out) => Ok(parse::parse_vgs(&out)?.into_iter().find(|v| v.name == vg)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The PVs of `vg`.
pub fn pvs_of(vg: &str) -> Result<Vec<Pv>> {
    let out = lvm(&[
        "pvs",
        "--reportformat",
        "json",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        PVS_FIELDS,
    ])?;
    Ok(parse::parse_pvs(&out)?
        .into_iter()
        .filter(|p| p.vg == vg)
        .collect())
}

/// `dmsetup message <pool device> 0 <message>`: `reserve_metadata_snap` and
/// `release_metadata_snap` on a thin pool.
pub fn pool_message(pool_dev: &str, message: &str) -> Result<()> {
    DMSETUP.run(&["message", pool_dev, "0", message]).map(drop)
}

/// True when the kernel refused a message with EBUSY (a metadata snapshot is already
/// reserved).
pub fn is_busy(e: &Error) -> bool {
    stderr_of(e).is_some_and(|s| s.contains("Device or resource busy"))
}

/// `thin_delta -m --snap1 <a> --snap2 <b> <tmeta>`: XML, parsed by
/// [`parse::parse_thin_delta`]. Needs a reserved metadata snapshot.
pub fn thin_delta(tmeta: &std::path::Path, snap1: u32, snap2: u32) -> Result<String> {
    let mut args = argv([
        "-m",
        "--snap1",
        &snap1.to_string(),
        "--snap2",
        &snap2.to_string(),
    ]);
    args.push(tmeta.into());
    THIN_DELTA.run(&args)
}

/// `thin_dump -m --dev-id <id> <tmeta>`: XML, parsed by [`parse::parse_thin_dump`].
/// Needs a reserved metadata snapshot.
pub fn thin_dump(tmeta: &std::path::Path, dev_id: u32) -> Result<String> {
    let mut args = argv(["-m", "--dev-id", &dev_id.to_string()]);
    args.push(tmeta.into());
    THIN_DUMP.run(&args)
}

/// Fails with a message naming the module when the kernel has no dm-thin-pool. Loads
/// it first if it is not loaded (works as root with the module installed); the failure
/// of that `modprobe`, if any, is part of the message.
pub fn require_dm_thin() -> Result<()> {
    let has = || std::path::Path::new("/sys/module/dm_thin_pool").exists();
    let mut tried = String::new();
    if !has() {
        if let Err(e) = MODPROBE.run(&["dm_thin_pool"]) {
            tried = format!(" ({e})");
        }
    }
    if has() && std::path::Path::new("/dev/mapper/control").exists() {
        return Ok(());
    }
    Err(Error::Invalid {
        op: "use LVM thin provisioning",
        object: "the kernel".into(),
        reason: format!(
            "the kernel has no dm-thin-pool: load it as root with modprobe dm_thin_pool{tried}"
        ),
    })
}
