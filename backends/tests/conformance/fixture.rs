//! One fixture per tier: a fresh pool in a `cairn-test-*` temp dir, more pools of the same
//! driver on demand (send/receive, a nearly full one), and a cleanup on drop (also when
//! the test panics) that unmounts views, volumes and pools, unmounts what the fixture
//! mounted itself, detaches loop devices of files under the temp dir and removes it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_backends::{mounts, testing};
use cairn_backends::{open, Backend, Bytes, DriverKind, PoolName, PoolSource, PoolSpec};

use crate::harness::{require, Req};

/// Which driver on which storage. Add `VmLvm`/`VmZfs` here (and a line in `main.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The dir driver, pool in its state dir on whatever filesystem /tmp is (full copies).
    Dir,
    /// The dir driver on an xfs loop filesystem with reflink (the reflink path).
    LoopDirXfs,
    /// The btrfs driver on a loop file it creates itself.
    LoopBtrfs,
    /// The LVM thin driver on loop files it creates itself (in the test VM).
    VmLvm,
    /// The zfs driver on file vdevs it creates itself (in the test VM).
    VmZfs,
}

impl Tier {
    pub fn driver(&self) -> DriverKind {
        match self {
            Tier::Dir | Tier::LoopDirXfs => DriverKind::Dir,
            Tier::LoopBtrfs => DriverKind::Btrfs,
            Tier::VmLvm => DriverKind::LvmThin,
            Tier::VmZfs => DriverKind::Zfs,
        }
    }

    /// A tier of the test VM (LVM, ZFS): its requirements are the vm tier's there.
    pub fn is_vm(&self) -> bool {
        matches!(self, Tier::VmLvm | Tier::VmZfs)
    }

    /// The members of the image the bodies unpack into volumes: under qemu TCG a full
    /// image tree costs minutes per manifest, so vm tiers take `IMAGE_SUBSET`.
    pub fn image(&self) -> &'static [&'static str] {
        if self.is_vm() {
            testing::IMAGE_SUBSET
        } else {
            testing::IMAGE_ROOTFS
        }
    }

    pub fn reqs(&self) -> &'static [Req] {
        match self {
            Tier::Dir => &[Req::Root],
            Tier::LoopDirXfs => &[Req::Root, Req::Loop, Req::Xfs],
            Tier::LoopBtrfs => &[Req::Root, Req::Loop, Req::Btrfs],
            Tier::VmLvm => &[Req::Lvm, Req::Root, Req::Loop],
            Tier::VmZfs => &[Req::Zfs, Req::Root],
        }
    }
}

pub struct Fixture {
    pub tier: Tier,
    /// The first pool, created.
    pub pool: Box<dyn Backend>,
    root: PathBuf,
    tmp: Option<tempfile::TempDir>,
    /// Every pool made, for cleanup.
    specs: RefCell<Vec<PoolSpec>>,
    /// Mounts the fixture made itself (xfs, tmpfs), unmounted last, newest first.
    own_mounts: RefCell<Vec<PathBuf>>,
    /// The xfs filesystem shared by this fixture's normal pools (LoopDirXfs).
    xfs: RefCell<Option<PathBuf>>,
}

impl Fixture {
    /// A fixture with one created pool, or `None` (after printing SKIP) when the tier's or
    /// the test's requirements are missing.
    pub fn new(tier: Tier, test: &str, extra: &[Req]) -> Option<Fixture> {
        let reqs: Vec<Req> = tier.reqs().iter().chain(extra).copied().collect();
        if !require(test, &reqs, tier.is_vm()) {
            return None;
        }
        if crate::harness::init_logging() {
            tracing::info!("start {test}");
        }
        let tmp = tempfile::Builder::new()
            .prefix("cairn-test-")
            .tempdir()
            .expect("create temp dir");
        let root = tmp.path().to_path_buf();
        // The fixture must exist before the first pool so a failing create is cleaned up.
        let placeholder = open(
            tier.driver(),
            spec_for(&root, "placeholder", PoolSource::StateDir),
        )
        .expect("open driver");
        let mut fx = Fixture {
            tier,
            pool: placeholder,
            root,
            tmp: Some(tmp),
            specs: RefCell::new(Vec::new()),
            own_mounts: RefCell::new(Vec::new()),
            xfs: RefCell::new(None),
        };
        fx.pool = fx.new_pool("p1");
        Some(fx)
    }

    /// The temp dir everything of this fixture lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new, created pool of the same tier (`label` names its files).
    pub fn new_pool(&self, label: &str) -> Box<dyn Backend> {
        let source = match self.tier {
            Tier::Dir => PoolSource::StateDir,
            Tier::LoopDirXfs => {
                let fs = self.shared_xfs();
                let path = fs.join(label);
                std::fs::create_dir_all(&path).unwrap();
                PoolSource::Directory { path }
            }
            Tier::LoopBtrfs | Tier::VmLvm | Tier::VmZfs => PoolSource::LoopFile {
                path: self.root.join(format!("{label}.img")),
                size: Bytes(2 << 30),
            },
        };
        self.create(spec_for(&self.root, label, source))
    }

    /// A pool on a small filesystem of its own (about 64 MiB for dir, 300 MiB for xfs and
    /// btrfs), so a test can fill it. For the dir tier it is a tmpfs state dir.
    pub fn small_pool(&self, label: &str) -> Box<dyn Backend> {
        let spec = match self.tier {
            Tier::Dir => {
                let state = self.root.join(format!("{label}-state"));
                self.mount_tmpfs(&state, "64m");
                PoolSpec {
                    name: pool_name(label),
                    source: PoolSource::StateDir,
                    state_dir: state,
                }
            }
            Tier::LoopDirXfs => {
                let fs = self.make_xfs(label, "300M");
                let path = fs.join("pool");
                std::fs::create_dir_all(&path).unwrap();
                spec_for(&self.root, label, PoolSource::Directory { path })
            }
            Tier::LoopBtrfs | Tier::VmLvm | Tier::VmZfs => spec_for(
                &self.root,
                label,
                PoolSource::LoopFile {
                    path: self.root.join(format!("{label}.img")),
                    size: Bytes(300 << 20),
                },
            ),
        };
        self.create(spec)
    }

    /// A pool whose measurements no other test disturbs: for the dir tier a pool on a
    /// private 512 MiB tmpfs (the default one shares /tmp with parallel tests).
    pub fn isolated_pool(&self, label: &str) -> Box<dyn Backend> {
        match self.tier {
            Tier::Dir => {
                let state = self.root.join(format!("{label}-state"));
                self.mount_tmpfs(&state, "512m");
                self.create(PoolSpec {
                    name: pool_name(label),
                    source: PoolSource::StateDir,
                    state_dir: state,
                })
            }
            _ => self.new_pool(label),
        }
    }

    /// A second handle on an existing pool, as another process would open it.
    pub fn reopen(&self, pool: &dyn Backend) -> Box<dyn Backend> {
        open(self.tier.driver(), pool.spec().clone()).expect("open pool")
    }

    fn create(&self, spec: PoolSpec) -> Box<dyn Backend> {
        self.specs.borrow_mut().push(spec.clone());
        let b = open(self.tier.driver(), spec.clone()).expect("open pool");
        match b.create_pool() {
            Ok(a) => assert!(a.is_created(), "create_pool of a new pool {spec:?}: {a:?}"),
            Err(e) => panic!("create_pool {spec:?}: {e}"),
        }
        b
    }

    fn shared_xfs(&self) -> PathBuf {
        if let Some(p) = self.xfs.borrow().clone() {
            return p;
        }
        let p = self.make_xfs("xfs", "1G");
        *self.xfs.borrow_mut() = Some(p.clone());
        p
    }

    /// A fresh xfs (reflink on) in a loop file, mounted under the temp dir.
    fn make_xfs(&self, label: &str, size: &str) -> PathBuf {
        let img = self.root.join(format!("{label}.img"));
        let mnt = self.root.join(label);
        std::fs::create_dir_all(&mnt).unwrap();
        sh(Command::new("truncate").args(["-s", size]).arg(&img));
        sh(Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img));
        sh(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt));
        self.own_mounts.borrow_mut().push(mnt.clone());
        mnt
    }

    fn mount_tmpfs(&self, at: &Path, size: &str) {
        std::fs::create_dir_all(at).unwrap();
        sh(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("cairn-test-tmpfs")
            .arg(at));
        self.own_mounts.borrow_mut().push(at.to_path_buf());
    }

    fn cleanup(&mut self) {
        for spec in self.specs.borrow().iter().rev() {
            let Ok(b) = open(self.tier.driver(), spec.clone()) else {
                continue;
            };
            if let Ok(vols) = b.list_volumes() {
                for v in vols {
                    for s in b.list_snapshots(&v.name).unwrap_or_default() {
                        warn(b.unmount_snapshot(&v.name, &s.name), "unmount_snapshot");
                    }
                    warn(b.unmount_volume(&v.name), "unmount_volume");
                }
            }
            warn(b.unmount_pool(), "unmount_pool");
        }
        for m in self.own_mounts.borrow().iter().rev() {
            warn(mounts::unmount(m), "unmount");
        }
        // Whatever is still mounted or attached under the temp dir (a driver that leaked
        // a mount, a child killed mid-way): deepest first, lazily if it must be.
        let under = |p: &Path| p.starts_with(&self.root);
        let mut left: Vec<PathBuf> = mounts::mounts()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| under(p))
            .collect();
        left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in &left {
            eprintln!("cleanup: {} was still mounted", m.display());
            if !quiet(Command::new("umount").arg(m)) {
                quiet(Command::new("umount").arg("-l").arg(m));
            }
        }
        for d in cairn_backends::loopdev::list().unwrap_or_default() {
            if under(&d.back_file) {
                quiet(Command::new("losetup").arg("-d").arg(&d.device));
            }
        }
        let still: Vec<PathBuf> = mounts::mounts()
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| under(p))
            .collect();
        if !still.is_empty() {
            // Removing the dir would descend into a mounted filesystem: leave it.
            let kept = self.tmp.take().map(|t| t.keep());
            eprintln!("cleanup: left {kept:?} behind, still mounted: {still:?}");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Never panic here: a panic while unwinding aborts the whole test binary.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.cleanup()));
        if r.is_err() {
            eprintln!("cleanup of {} panicked", self.root.display());
            if let Some(t) = self.tmp.take() {
                let _ = t.keep();
            }
        }
    }
}

fn pool_name(label: &str) -> PoolName {
    format!("cairn-test-{label}").parse().unwrap()
}

fn spec_for(root: &Path, label: &str, source: PoolSource) -> PoolSpec {
    PoolSpec {
        name: pool_name(label),
        source,
        state_dir: root.join(format!("{label}-state")),
    }
}

fn warn<T>(r: cairn_backends::Result<T>, what: &str) {
    if let Err(e) = r {
        eprintln!("cleanup: {what}: {e}");
    }
}

/// Runs a command the fixture needs; panics with its stderr on failure.
pub fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
