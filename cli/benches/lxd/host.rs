//! The machine side of the bench: running commands, the scratch directory with its loop
//! files and mounts (all removed on drop, even after a failure), the load average.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion; its stdout, or an error naming the argv, the exit status and
/// the last lines of stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", argv(cmd)))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{} failed ({}): {}",
            argv(cmd),
            out.status,
            tail.join(" / ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cmd` as a shell-like line, for messages.
pub fn argv(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `tool` can be run, found as cairn finds its tools (`PATH`, the sbin
/// directories, `CAIRN_TOOL_PATH`; executable). Callers name the package themselves.
pub fn has_tool(tool: &'static str) -> bool {
    let tool = cairn_backends::cmd::Tool {
        name: tool,
        package: tool,
    };
    cairn_backends::testing::missing_tool(&tool).is_none()
}

/// `/proc/loadavg`'s three load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// A temporary directory under `/var/tmp` holding the bench's loop files and mount
/// points. Dropping it unmounts everything mounted under it (deepest first), detaches
/// every loop device whose backing file is under it, and removes it.
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new() -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("cairn-bench-lxd-")
            .tempdir_in("/var/tmp")
            .context("creating a scratch directory in /var/tmp")?;
        Ok(Scratch { dir: Some(dir) })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until drop").path()
    }

    /// Makes a sparse `size` loop file, formats it xfs with reflink and mounts it at
    /// `<scratch>/<name>`; returns the mount point.
    pub fn mount_xfs(&self, name: &str, size: &str) -> Result<PathBuf> {
        let img = self.path().join(format!("{name}.img"));
        let mnt = self.path().join(name);
        std::fs::create_dir_all(&mnt)?;
        run(Command::new("truncate").args(["-s", size]).arg(&img))?;
        run(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt))?;
        Ok(mnt)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let root = self.path().to_path_buf();
        for m in mounts_under(&root) {
            if let Err(e) = run(Command::new("umount").arg(&m)) {
                eprintln!("cleanup: {e:#}; unmounting lazily");
                let _ = run(Command::new("umount").arg("-l").arg(&m));
            }
        }
        for dev in loops_under(&root) {
            if let Err(e) = run(Command::new("losetup").arg("-d").arg(&dev)) {
                eprintln!("cleanup: {e:#}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = dir.close() {
                eprintln!("cleanup: removing {}: {e}", root.display());
            }
        }
    }
}

/// Mount points at or under `root`, deepest first.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(root))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    v.dedup();
    v
}

/// Loop devices whose backing file is under `root`.
fn loops_under(root: &Path) -> Vec<String> {
    let out = run(Command::new("losetup").args(["--list", "--noheadings", "-O", "NAME,BACK-FILE"]))
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.trim().split_once(char::is_whitespace))
        .filter(|(_, file)| Path::new(file.trim()).starts_with(root))
        .map(|(dev, _)| dev.to_string())
        .collect()
}
