//! Mount points: reading `/proc/self/mountinfo` (pure parser) and mounting through the
//! `mount`/`umount` tools.

use std::path::{Path, PathBuf};

use crate::cmd::{MOUNT, UMOUNT};
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub root: PathBuf,
    pub fs_type: String,
    pub source: String,
    pub options: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space...).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 6 || r.len() < 3 {
                return None;
            }
            Some(MountEntry {
                root: PathBuf::from(unescape(l[3])),
                mount_point: PathBuf::from(unescape(l[4])),
                fs_type: r[0].to_string(),
                source: unescape(r[1]),
                options: r[2].to_string(),
            })
        })
        .collect()
}

pub fn mounts() -> Result<Vec<MountEntry>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").ctx("read", "/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

/// The newest mount at exactly `path`, if any.
pub fn mount_at(path: &Path) -> Result<Option<MountEntry>> {
    Ok(mounts()?.into_iter().rev().find(|m| m.mount_point == path))
}

/// The filesystem type of the filesystem holding `path` (statfs magic).
pub fn fs_type_of(path: &Path) -> Result<FsKind> {
    let st = nix::sys::statfs::statfs(path).ctx("statfs", path)?;
    let t = st.filesystem_type();
    use nix::sys::statfs::*;
    Ok(if t == BTRFS_SUPER_MAGIC {
        FsKind::Btrfs
    } else if t == XFS_SUPER_MAGIC {
        FsKind::Xfs
    } else if t == EXT4_SUPER_MAGIC {
        FsKind::Ext4
    } else if t == TMPFS_MAGIC {
        FsKind::Tmpfs
    } else {
        FsKind::Other(t.0 as i64)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Btrfs,
    Xfs,
    Ext4,
    Tmpfs,
    /// Any other filesystem, by its statfs magic (ZFS: [`ZFS_SUPER_MAGIC`]).
    Other(i64),
}

/// The statfs magic of ZFS (OpenZFS's `ZFS_SUPER_MAGIC`).
pub const ZFS_SUPER_MAGIC: i64 = 0x2fc12fc1;

impl FsKind {
    /// Whether this is ZFS.
    pub fn is_zfs(self) -> bool {
        self == FsKind::Other(ZFS_SUPER_MAGIC)
    }
}

/// `mount [-t fstype] [-o opts] source target`.
pub fn mount(
    source: &Path,
    target: &Path,
    fstype: Option<&str>,
    options: Option<&str>,
) -> Result<()> {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    if let Some(t) = fstype {
        args.extend(["-t".into(), t.into()]);
    }
    if let Some(o) = options {
        args.extend(["-o".into(), o.into()]);
    }
    args.push(source.into());
    args.push(target.into());
    MOUNT.run(&args)?;
    Ok(())
}

/// Unmounts `target` if something is mounted there. Idempotent.
pub fn unmount(target: &Path) -> Result<()> {
    if mount_at(target)?.is_some() {
        UMOUNT.run(&[target])?;
    }
    Ok(())
}

/// [`unmount`], retrying for up to `patience` while umount says the target is busy: a
/// process that is going away (a child that inherited a directory fd, a `zfs` or `btrfs`
/// command still running down) may hold the mount for a moment. Any other failure, or a
/// target still busy after `patience`, is returned as it is.
pub fn unmount_retrying(target: &Path, patience: std::time::Duration) -> Result<()> {
    let pause = std::time::Duration::from_millis(50);
    let start = std::time::Instant::now();
    loop {
        match unmount(target) {
            Err(Error::Command(f)) if f.stderr.contains("busy") && start.elapsed() < patience => {
                std::thread::sleep(pause)
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_mountinfo() {
        let m = parse_mountinfo(include_str!("../tests/fixtures/mountinfo.txt"));
        let last = m.last().unwrap();
        assert_eq!(last.mount_point, PathBuf::from("/var/lib/cairn/mnt/p x"));
        assert_eq!(last.root, PathBuf::from("/volumes/web1"));
        assert_eq!(last.fs_type, "btrfs");
        assert_eq!(last.source, "/dev/loop3");
        assert!(m
            .iter()
            .any(|e| e.mount_point == Path::new("/proc") && e.fs_type == "proc"));
        assert!(parse_mountinfo("garbage line\n").is_empty());
    }

    /// A tmpfs kept busy by a child's working directory: refused while it is busy (the
    /// tool's error passed on after the patience), unmounted once the child goes.
    #[test]
    fn root_unmount_retrying_waits_for_a_busy_mount() {
        let test = "mounts::tests::root_unmount_retrying_waits_for_a_busy_mount";
        if !crate::testing::require(test, "root", crate::testing::missing_root()) {
            return;
        }
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("m");
        std::fs::create_dir(&mnt).unwrap();
        mount(Path::new("tmpfs"), &mnt, Some("tmpfs"), None).unwrap();
        let busy = |secs: &str| {
            std::process::Command::new("sleep")
                .arg(secs)
                .current_dir(&mnt)
                .spawn()
                .unwrap()
        };
        let mut holder = busy("30");
        let t0 = Instant::now();
        let err = unmount_retrying(&mnt, Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("busy"), "{err}");
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "gave up at once"
        );
        assert!(mount_at(&mnt).unwrap().is_some(), "still mounted");
        holder.kill().unwrap();
        holder.wait().unwrap();
        let mut short = busy("0.5");
        unmount_retrying(&mnt, Duration::from_secs(10)).unwrap();
        short.wait().unwrap();
        assert!(mount_at(&mnt).unwrap().is_none(), "unmounted");
        // Nothing mounted: nothing to do.
        unmount_retrying(&mnt, Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn zfs_is_known_by_its_magic() {
        assert!(FsKind::Other(ZFS_SUPER_MAGIC).is_zfs());
        assert!(!FsKind::Other(0x1234).is_zfs() && !FsKind::Btrfs.is_zfs());
    }
}
