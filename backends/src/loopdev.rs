//! Loop devices for pools backed by a file (`PoolSource::LoopFile`), through `losetup`.
//!
//! `attach` is idempotent: a file already attached is found by `losetup --list --json`
//! (parsed by the pure [`parse_losetup_list`]) and its device reused, so `mount_pool`
//! after a reboot or a second time does the right thing.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cmd::LOSETUP;
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopDevice {
    pub device: PathBuf,
    pub back_file: PathBuf,
}

#[derive(Deserialize)]
struct LosetupList {
    #[serde(default)]
    loopdevices: Vec<LosetupEntry>,
}

#[derive(Deserialize)]
struct LosetupEntry {
    name: String,
    #[serde(rename = "back-file")]
    back_file: Option<String>,
}

/// Parses `losetup --list --json --output NAME,BACK-FILE,...`. Deleted backing files
/// (" (deleted)" suffix) are reported as-is so they never match a live path.
pub fn parse_losetup_list(json: &str) -> Result<Vec<LoopDevice>> {
    if json.trim().is_empty() {
        return Ok(Vec::new()); // losetup prints nothing when no device is attached
    }
    let list: LosetupList = serde_json::from_str(json).map_err(|e| Error::Invalid {
        op: "parse",
        object: "losetup --list --json output".into(),
        reason: e.to_string(),
    })?;
    Ok(list
        .loopdevices
        .into_iter()
        .filter_map(|e| {
            Some(LoopDevice {
                device: PathBuf::from(e.name),
                back_file: PathBuf::from(e.back_file?),
            })
        })
        .collect())
}

/// All attached loop devices.
pub fn list() -> Result<Vec<LoopDevice>> {
    let out = LOSETUP.run(&["--list", "--json", "--output", "NAME,BACK-FILE"])?;
    parse_losetup_list(&out)
}

/// The loop device `file` is attached to, if any.
pub fn find(file: &Path) -> Result<Option<PathBuf>> {
    let file = file.canonicalize().ctx("resolve loop file", file)?;
    Ok(list()?
        .into_iter()
        .find(|d| d.back_file == file)
        .map(|d| d.device))
}

/// Creates a sparse file of `size` bytes; `AlreadyExists` if the path exists.
pub fn create_file(file: &Path, size: u64) -> Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).ctx("create directory for loop file", parent)?;
    }
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Invalid {
                op: "create loop file",
                object: file.display().to_string(),
                reason: "a file is already there; refusing to overwrite it".into(),
            },
            _ => Error::io("create loop file", file, e),
        })?;
    f.set_len(size).ctx("size loop file", file)?;
    Ok(())
}

/// Attaches `file` to a loop device (or returns the one it is attached to).
pub fn attach(file: &Path) -> Result<PathBuf> {
    if let Some(dev) = find(file)? {
        return Ok(dev);
    }
    let out = LOSETUP.run(&[
        std::ffi::OsStr::new("--find"),
        std::ffi::OsStr::new("--show"),
        file.as_os_str(),
    ])?;
    Ok(PathBuf::from(out.trim()))
}

/// Detaches whatever loop device `file` is attached to, and returns once it is gone.
/// Idempotent.
///
/// `losetup --detach` only marks a device still open elsewhere (a udev probe after an
/// unmount or a `vgchange -an`) for auto-clear; waiting until the kernel has let it go
/// means an `attach` right after (`mount_pool`) never reuses a device about to vanish.
pub fn detach(file: &Path) -> Result<()> {
    if !file.exists() {
        return Ok(());
    }
    if let Some(dev) = find(file)? {
        LOSETUP.run(&[std::ffi::OsStr::new("--detach"), dev.as_os_str()])?;
        wait_detached(file)?;
    }
    Ok(())
}

/// Polls until no loop device is attached to `file`, for up to 5 s.
fn wait_detached(file: &Path) -> Result<()> {
    for _ in 0..100 {
        if find(file)?.is_none() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(Error::Busy {
        op: "detach loop device of",
        object: file.display().to_string(),
        reason: "the loop device is still attached 5 s after detaching it".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_losetup_output() {
        let devs = parse_losetup_list(include_str!("../tests/fixtures/losetup-list.json")).unwrap();
        assert_eq!(
            devs,
            vec![LoopDevice {
                device: "/dev/loop0".into(),
                back_file: "/var/lib/cairn/pools/p1/pool.img".into()
            }]
        );
        assert!(parse_losetup_list("").unwrap().is_empty());
        assert!(parse_losetup_list("{not json").is_err());
    }
}
