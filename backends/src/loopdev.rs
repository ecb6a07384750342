//! Loop devices for pools backed by a file (`PoolSource::LoopFile`), through `losetup`.
//!
//! `attach` is idempotent: a file already attached is found by `losetup --list --json`
//! (parsed by the pure [`parse_losetup_list`]) and its device reused, so `mount_pool`
//! after a reboot or a second time does the right thing.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        wait_detached(&dev, &file.canonicalize().ctx("resolve loop file", file)?)?;
    }
    Ok(())
}

/// How long [`detach`] waits for the kernel to let a loop device go.
const DETACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls sysfs until `dev` is no longer bound to `file` (the canonical path), for up
/// to [`DETACH_TIMEOUT`].
fn wait_detached(dev: &Path, file: &Path) -> Result<()> {
    let deadline = Instant::now() + DETACH_TIMEOUT;
    while still_bound(Path::new("/sys/block"), dev, file)? {
        if Instant::now() >= deadline {
            return Err(still_attached(dev, file));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The error for a loop device the kernel did not let go of within [`DETACH_TIMEOUT`].
fn still_attached(dev: &Path, file: &Path) -> Error {
    let dev = dev.display();
    Error::Busy {
        op: "detach loop device",
        object: format!("{dev} (of {})", file.display()),
        reason: format!(
            "{dev} is still attached {} s after detaching it: something holds it open \
             (a mount, device-mapper, udev); see `losetup -l` and `fuser -vm {dev}`, \
             then run the command again",
            DETACH_TIMEOUT.as_secs()
        ),
    }
}

/// Whether loop device `dev` is still bound to `file`, from `<sys_block>/<loopN>/loop/`,
/// which exists only while the device is bound. Its `backing_file` is compared too: a
/// device freed and at once taken for another file (a concurrent `attach`) is detached
/// as far as `file` is concerned. `losetup --list` reads the same file.
fn still_bound(sys_block: &Path, dev: &Path, file: &Path) -> Result<bool> {
    let Some(name) = dev.file_name() else {
        return Ok(false);
    };
    let backing = sys_block.join(name).join("loop").join("backing_file");
    match std::fs::read_to_string(&backing) {
        Ok(text) => Ok(Path::new(text.strip_suffix('\n').unwrap_or(&text)) == file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("read loop device state", &backing, e)),
    }
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

    #[test]
    fn a_device_is_bound_while_sysfs_names_its_file() {
        let sys = tempfile::tempdir().unwrap();
        let file = Path::new("/var/lib/cairn/pools/p1/pool.img");
        let dev = Path::new("/dev/loop7");
        let bound = |f: &Path| still_bound(sys.path(), dev, f).unwrap();
        // No `loop7/loop/`: not bound (detached, or no such device).
        assert!(!bound(file));
        let dir = sys.path().join("loop7/loop");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("backing_file"), format!("{}\n", file.display())).unwrap();
        assert!(bound(file));
        // Taken for another file right after: detached as far as `file` goes.
        assert!(!bound(Path::new("/srv/other.img")));
        std::fs::write(
            dir.join("backing_file"),
            format!("{} (deleted)\n", file.display()),
        )
        .unwrap();
        assert!(!bound(file));
        assert!(!still_bound(sys.path(), Path::new("/"), file).unwrap());
    }

    #[test]
    fn a_device_left_attached_names_itself_and_what_to_do() {
        let e = still_attached(Path::new("/dev/loop7"), Path::new("/srv/p1.img"));
        assert_eq!(
            e.to_string(),
            "detach loop device /dev/loop7 (of /srv/p1.img) is in use: /dev/loop7 is still \
             attached 5 s after detaching it: something holds it open (a mount, device-mapper, \
             udev); see `losetup -l` and `fuser -vm /dev/loop7`, then run the command again"
        );
    }
}
