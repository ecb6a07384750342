//! The two tools under test behind one trait: the release `cairn` binary on a temporary
//! state dir, and LXD through `lxc` (in `lxd_side.rs`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::host::run;

/// The two kinds of pool compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// btrfs on a loop file.
    Btrfs,
    /// A directory pool (cairn's on a reflink filesystem, xfs).
    Dir,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Btrfs => "btrfs",
            Kind::Dir => "dir",
        }
    }
}

/// One tool under test. Every method is one command line of that tool.
pub trait Side {
    fn create(&self, kind: Kind, name: &str) -> Result<()>;
    fn copy(&self, src: &str, dst: &str) -> Result<()>;
    fn snapshot(&self, name: &str, snap: &str) -> Result<()>;
    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()>;
    fn restore(&self, name: &str, snap: &str) -> Result<()>;
    fn delete(&self, name: &str) -> Result<()>;
    /// Where the container's files are (to change them before a restore).
    fn rootfs(&self, kind: Kind, name: &str) -> Result<PathBuf>;
}

/// The `cairn` binary with its own state dir, a btrfs pool on a loop file and a dir pool
/// on the xfs mount. Everything it makes lives under the scratch dir.
pub struct Cairn {
    bin: PathBuf,
    state: PathBuf,
}

pub const IMAGE_ALIAS: &str = "debian";

impl Cairn {
    /// Creates the two pools and imports `image` into the btrfs one (untimed). The dir
    /// pool gets its base volume from the first container made there (the warm-up).
    pub fn setup(bin: &Path, scratch: &Path, xfs: &Path, image: &Path) -> Result<Cairn> {
        let c = Cairn {
            bin: bin.to_path_buf(),
            state: scratch.join("cairn-state"),
        };
        let btrfs_img = scratch.join("cairn-btrfs.img");
        c.cairn([
            "pool".as_ref(),
            "create".as_ref(),
            pool(Kind::Btrfs).as_ref(),
            "--driver".as_ref(),
            "btrfs".as_ref(),
            "--source".as_ref(),
            btrfs_img.as_os_str(),
            "--size".as_ref(),
            "8G".as_ref(),
        ])?;
        let dir = xfs.join("cairn");
        std::fs::create_dir_all(&dir)?;
        c.cairn([
            "pool".as_ref(),
            "create".as_ref(),
            pool(Kind::Dir).as_ref(),
            "--driver".as_ref(),
            "dir".as_ref(),
            "--source".as_ref(),
            dir.as_os_str(),
        ])?;
        c.cairn([
            "image".as_ref(),
            "import".as_ref(),
            image.as_os_str(),
            "--alias".as_ref(),
            IMAGE_ALIAS.as_ref(),
            "--pool".as_ref(),
            pool(Kind::Btrfs).as_ref(),
        ])?;
        Ok(c)
    }

    /// Runs `cairn --state-dir STATE ARGS...`; its stdout.
    pub fn cairn<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Result<String> {
        run(Command::new(&self.bin)
            .arg("--state-dir")
            .arg(&self.state)
            .args(args))
    }

    /// `cairn --format json list`, parsed.
    pub fn list_json(&self) -> Result<Vec<serde_json::Value>> {
        let out = self.cairn(["--format", "json", "list"])?;
        serde_json::from_str(&out).context("parsing `cairn list --format json`")
    }
}

/// cairn's pool for `kind`.
pub fn pool(kind: Kind) -> &'static str {
    match kind {
        Kind::Btrfs => "bench-btrfs",
        Kind::Dir => "bench-dir",
    }
}

impl Side for Cairn {
    fn create(&self, kind: Kind, name: &str) -> Result<()> {
        self.cairn(["create", IMAGE_ALIAS, name, "--pool", pool(kind)])
            .map(drop)
    }
    fn copy(&self, src: &str, dst: &str) -> Result<()> {
        self.cairn(["copy", src, dst]).map(drop)
    }
    fn snapshot(&self, name: &str, snap: &str) -> Result<()> {
        self.cairn(["snapshot", "create", name, snap]).map(drop)
    }
    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        self.cairn(["snapshot", "delete", name, snap]).map(drop)
    }
    fn restore(&self, name: &str, snap: &str) -> Result<()> {
        // LXD takes no safety snapshot: neither does cairn here, to time the same work.
        self.cairn(["restore", name, snap, "--no-safety-snapshot"])
            .map(drop)
    }
    fn delete(&self, name: &str) -> Result<()> {
        self.cairn(["delete", name]).map(drop)
    }
    fn rootfs(&self, _kind: Kind, name: &str) -> Result<PathBuf> {
        let out = self.cairn(["--format", "json", "info", name])?;
        let v: serde_json::Value = serde_json::from_str(&out)?;
        v["rootfs"]
            .as_str()
            .map(PathBuf::from)
            .context("`cairn info` has no rootfs")
    }
}
