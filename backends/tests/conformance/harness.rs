//! Requirement gating: a test whose requirement is missing prints `SKIP <test>: <why>` and
//! passes, unless `CAIRN_REQUIRE` (a comma list: `root,loop,btrfs,xfs,image`) names that
//! requirement; then it fails, so CI cannot silently skip a tier.

use std::path::Path;

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Req {
    /// Running as root (mounts, device nodes, chown).
    Root,
    /// Loop devices can be attached.
    Loop,
    /// The kernel has btrfs and btrfs-progs is installed.
    Btrfs,
    /// The kernel has xfs and xfsprogs is installed.
    Xfs,
    /// The Debian test image and `tar`/`zstd` to unpack it.
    Image,
    /// LVM thin provisioning: dm-thin-pool in the kernel, lvm2 and thin-provisioning-tools.
    Lvm,
    /// ZFS: the zfs module loaded (`/dev/zfs`) and zfsutils-linux installed.
    Zfs,
}

impl Req {
    pub fn name(&self) -> &'static str {
        match self {
            Req::Root => "root",
            Req::Loop => "loop",
            Req::Btrfs => "btrfs",
            Req::Xfs => "xfs",
            Req::Image => "image",
            Req::Lvm => "lvm",
            Req::Zfs => "zfs",
        }
    }

    /// `None` when present, else why not.
    fn missing(&self) -> Option<String> {
        match self {
            Req::Root => (!nix::unistd::geteuid().is_root()).then(|| "not running as root".into()),
            Req::Loop => (!Path::new("/dev/loop-control").exists())
                .then(|| "no /dev/loop-control (loop module not loaded?)".into())
                .or_else(|| tool_missing("losetup", "mount")),
            Req::Btrfs => {
                kernel_fs_missing("btrfs").or_else(|| tool_missing("mkfs.btrfs", "btrfs-progs"))
            }
            Req::Xfs => kernel_fs_missing("xfs").or_else(|| tool_missing("mkfs.xfs", "xfsprogs")),
            Req::Lvm => tool_missing("lvm", "lvm2")
                .or_else(|| tool_missing("thin_check", "thin-provisioning-tools"))
                .or_else(|| {
                    cairn_backends::lvm::require_dm_thin()
                        .err()
                        .map(|e| e.to_string())
                }),
            Req::Zfs => tool_missing("zfs", "zfsutils-linux").or_else(|| {
                if !Path::new("/dev/zfs").exists() {
                    let _ = std::process::Command::new("modprobe")
                        .arg("zfs")
                        .stderr(std::process::Stdio::null())
                        .status();
                }
                (!Path::new("/dev/zfs").exists())
                    .then(|| "no /dev/zfs: the zfs module is not loaded (zfs-dkms)".into())
            }),
            Req::Image => {
                let img = image_path();
                if !img.is_file() {
                    Some(format!(
                        "test image {} not found (set CAIRN_TEST_IMAGE)",
                        img.display()
                    ))
                } else {
                    tool_missing("tar", "tar").or_else(|| tool_missing("zstd", "zstd"))
                }
            }
        }
    }
}

pub use cairn_backends::testing::image_path;

fn tool_missing(tool: &str, package: &str) -> Option<String> {
    let dirs = std::env::var("PATH").unwrap_or_default();
    let found = dirs
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .any(|d| Path::new(d).join(tool).is_file());
    (!found).then(|| format!("{tool} is not installed (apt-get install {package})"))
}

fn kernel_fs_missing(fs: &str) -> Option<String> {
    let has = || {
        std::fs::read_to_string("/proc/filesystems")
            .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
            .unwrap_or(false)
    };
    if has() {
        return None;
    }
    // Not loaded yet: try loading it (works only as root), then look again.
    let _ = std::process::Command::new("modprobe")
        .arg(fs)
        .stderr(std::process::Stdio::null())
        .status();
    (!has()).then(|| format!("the kernel has no {fs} filesystem"))
}

/// True if every requirement is met. Otherwise prints `SKIP <test>: <why>` and returns
/// false, or panics if `CAIRN_REQUIRE` names a missing requirement.
/// In the test VM (`CAIRN_VM=1`, set by vm-tests, with `CAIRN_REQUIRE=vm`) every
/// requirement of a `vm_*` test is required. On the host `vm` in `CAIRN_REQUIRE` means
/// "run vm-tests" (the cairn-vm-tests crate), not "this host has LVM and ZFS".
pub fn require(test: &str, reqs: &[Req]) -> bool {
    let in_vm = test.starts_with("vm_")
        && std::env::var_os("CAIRN_VM").is_some_and(|v| v == "1")
        && cairn_backends::testing::declared()
            .iter()
            .any(|d| d == "vm");
    reqs.iter().all(|r| {
        let name = if in_vm { "vm" } else { r.name() };
        cairn_backends::testing::require(test, name, r.missing())
    })
}

/// With `CAIRN_LOG` set (e.g. `cairn_backends=debug`), the driver's tracing events —
/// every external command with its duration — go to stderr, uncaptured, with the time
/// since the start: how vm-tests finds where a slow guest spends its time.
/// Returns whether logging is on.
pub fn init_logging() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG") else {
            return false;
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .try_init()
            .is_ok()
    })
}
