//! LXD through its `lxc` CLI: installs Debian's `lxd` if missing, starts the daemon if it
//! is not running, makes a btrfs pool on a loop file (in LXD's own `disks/`) and a dir
//! pool on the same xfs mount as cairn's, imports the image. Containers are created with
//! `lxc init --no-profiles` and never started, so no network is needed.
//!
//! Everything made carries `cairn-bench` in its name; dropping [`Lxd`] deletes all of
//! it (also leftovers of an interrupted run, swept at setup) and stops the daemon if the
//! bench started it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cairn::{Kind, Side};
use crate::host::{has_tool, run};

const SUFFIX: &str = "-cairnbench";
const IMAGE_ALIAS: &str = "cairn-bench-debian";

fn pool(kind: Kind) -> &'static str {
    match kind {
        Kind::Btrfs => "cairn-bench-btrfs",
        Kind::Dir => "cairn-bench-dir",
    }
}

enum Daemon {
    /// Running before the bench: left alone.
    AlreadyRunning,
    /// Started with `systemctl start lxd`: stopped with `systemctl stop`.
    Systemd,
    /// Started as `lxd --group lxd`, a child of the bench: stopped with `lxd shutdown`.
    Child(Child),
}

pub struct Lxd {
    daemon: Daemon,
    /// `LXD_DIR`, by default `/var/lib/lxd`.
    lxd_dir: PathBuf,
    pub version: String,
    /// Where the dir pool's storage lives.
    pub dir_source: PathBuf,
}

fn lxc(args: &[&str]) -> Result<String> {
    run(Command::new("lxc").args(args))
}

impl Lxd {
    /// Installs, starts and prepares LXD; an error says in one line why it cannot be used.
    pub fn setup(scratch: &Path, dir_source: &Path, image: &Path) -> Result<Lxd> {
        if !has_tool("lxc") || !has_tool("lxd") {
            println!("LXD: not installed; apt-get install -y --no-upgrade lxd");
            run(Command::new("apt-get")
                .args(["install", "-y", "--no-upgrade", "lxd"])
                .env("DEBIAN_FRONTEND", "noninteractive"))
            .context("cannot install Debian's lxd package")?;
        }
        let daemon = start_daemon(scratch)?;
        let lxd = Lxd {
            daemon,
            lxd_dir: std::env::var_os("LXD_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/lib/lxd")),
            version: lxc(&["query", "/1.0"])
                .ok()
                .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
                .and_then(|v| {
                    v["environment"]["server_version"]
                        .as_str()
                        .map(String::from)
                })
                .unwrap_or_else(|| "(version unknown)".into()),
            dir_source: dir_source.to_path_buf(),
        };
        // From here on, dropping `lxd` cleans up and stops what it started.
        lxd.sweep();
        lxc(&["storage", "create", pool(Kind::Btrfs), "btrfs", "size=8GiB"])?;
        std::fs::create_dir_all(dir_source)?;
        let source = format!("source={}", dir_source.display());
        lxc(&["storage", "create", pool(Kind::Dir), "dir", &source])?;
        let image = image.to_str().context("image path is not UTF-8")?;
        lxc(&["image", "import", image, "--alias", IMAGE_ALIAS])?;
        Ok(lxd)
    }

    /// The image's fingerprint as LXD computed it.
    pub fn image_fingerprint(&self) -> Result<String> {
        let out = lxc(&["image", "info", IMAGE_ALIAS])?;
        out.lines()
            .find_map(|l| l.strip_prefix("Fingerprint:"))
            .map(|f| f.trim().to_string())
            .context("`lxc image info` shows no fingerprint")
    }

    /// Deletes every container, the image and the pools this bench makes (by name).
    fn sweep(&self) {
        let names = lxc(&["list", "--format", "csv", "-c", "n"]).unwrap_or_default();
        for name in names.lines().filter(|n| n.ends_with(SUFFIX)) {
            report(lxc(&["delete", "--force", name]));
        }
        if lxc(&["image", "info", IMAGE_ALIAS]).is_ok() {
            report(lxc(&["image", "delete", IMAGE_ALIAS]));
        }
        let pools = lxc(&["storage", "list", "--format", "csv"]).unwrap_or_default();
        for kind in [Kind::Btrfs, Kind::Dir] {
            if pools
                .lines()
                .any(|l| l.split(',').next() == Some(pool(kind)))
            {
                report(lxc(&["storage", "delete", pool(kind)]));
            }
        }
    }
}

fn report(r: Result<String>) {
    if let Err(e) = r {
        eprintln!("cleanup: {e:#}");
    }
}

fn daemon_answers() -> bool {
    lxc(&["query", "/1.0"]).is_ok()
}

fn start_daemon(scratch: &Path) -> Result<Daemon> {
    if daemon_answers() {
        return Ok(Daemon::AlreadyRunning);
    }
    if Path::new("/run/systemd/system").is_dir() {
        run(Command::new("systemctl").args(["start", "lxd"]))?;
        if let Err(e) = run(Command::new("lxd").args(["waitready", "--timeout", "60"])) {
            let _ = run(Command::new("systemctl").args(["stop", "lxd"]));
            return Err(e.context("LXD did not come up after `systemctl start lxd`"));
        }
        return Ok(Daemon::Systemd);
    }
    let log_path = scratch.join("lxd.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new("lxd")
        .args(["--group", "lxd"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start `lxd --group lxd`")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !daemon_answers() {
        let exited = child.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "`lxd --group lxd` {}: {}",
                match exited {
                    Some(status) => format!("exited ({status})"),
                    None => "did not answer within 60 s".into(),
                },
                log.lines().last().unwrap_or("(no log)")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(Daemon::Child(child))
}

impl Drop for Lxd {
    fn drop(&mut self) {
        self.sweep();
        match &mut self.daemon {
            Daemon::AlreadyRunning => {}
            Daemon::Systemd => report(run(Command::new("systemctl").args(["stop", "lxd"]))),
            Daemon::Child(child) => {
                let stopped = run(Command::new("lxd").args(["shutdown", "--timeout", "60"]));
                if stopped.is_err() {
                    report(stopped);
                    let _ = child.kill();
                }
                let _ = child.wait();
            }
        }
    }
}

fn ct(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

impl Side for Lxd {
    fn create(&self, kind: Kind, name: &str) -> Result<()> {
        lxc(&[
            "init",
            IMAGE_ALIAS,
            &ct(name),
            "-s",
            pool(kind),
            "--no-profiles",
        ])
        .map(drop)
    }
    fn copy(&self, src: &str, dst: &str) -> Result<()> {
        lxc(&["copy", &ct(src), &ct(dst)]).map(drop)
    }
    fn snapshot(&self, name: &str, snap: &str) -> Result<()> {
        lxc(&["snapshot", &ct(name), snap]).map(drop)
    }
    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        lxc(&["delete", &format!("{}/{snap}", ct(name))]).map(drop)
    }
    fn restore(&self, name: &str, snap: &str) -> Result<()> {
        lxc(&["restore", &ct(name), snap]).map(drop)
    }
    fn delete(&self, name: &str) -> Result<()> {
        lxc(&["delete", &ct(name)]).map(drop)
    }
    fn rootfs(&self, kind: Kind, name: &str) -> Result<PathBuf> {
        let p = self
            .lxd_dir
            .join("storage-pools")
            .join(pool(kind))
            .join("containers")
            .join(ct(name))
            .join("rootfs");
        if !p.is_dir() {
            bail!(
                "LXD container {} has no rootfs at {}",
                ct(name),
                p.display()
            );
        }
        Ok(p)
    }
}
