//! Requirement gating: a test whose requirement is missing prints `SKIP <test>: <why>` and
//! passes, unless `CAIRN_REQUIRE` (a comma list: `root,loop,btrfs,xfs,image`) names that
//! requirement; then it fails, so CI cannot silently skip a tier.

use cairn_backends::{cmd, testing};

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

    /// `None` when present, else why not (the checks live in `cairn_backends::testing`).
    fn missing(&self) -> Option<String> {
        match self {
            Req::Root => testing::missing_root(),
            Req::Loop => testing::missing_loop(),
            Req::Btrfs => testing::missing_kernel_fs("btrfs")
                .or_else(|| testing::missing_tool(&cmd::MKFS_BTRFS)),
            Req::Xfs => {
                testing::missing_kernel_fs("xfs").or_else(|| testing::missing_tool(&cmd::MKFS_XFS))
            }
            Req::Lvm => testing::missing_lvm_thin(),
            Req::Zfs => testing::missing_zfs(),
            Req::Image => testing::missing_image()
                .or_else(|| testing::missing_tool(&testing::TAR))
                .or_else(|| testing::missing_tool(&testing::ZSTD)),
        }
    }
}

/// True if every requirement is met. Otherwise prints `SKIP <test>: <why>` and returns
/// false, or panics if `CAIRN_REQUIRE` names a missing requirement. A test of the vm
/// tier (`vm_tier`: `Tier::is_vm`) gates through `testing::require_vm_tier`: in the test VM (`CAIRN_VM=1`,
/// set by vm-tests, with `CAIRN_REQUIRE=vm`) every requirement is required; on the host
/// `vm` in `CAIRN_REQUIRE` means "run vm-tests" (the cairn-vm-tests crate), not "this
/// host has LVM and ZFS".
pub fn require(test: &str, reqs: &[Req], vm_tier: bool) -> bool {
    reqs.iter().all(|r| {
        if vm_tier {
            testing::require_vm_tier(test, r.name(), r.missing())
        } else {
            testing::require(test, r.name(), r.missing())
        }
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
