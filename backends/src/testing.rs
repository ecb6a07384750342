//! Test-tier gating shared by every test in the workspace (unit, conformance, CLI, the
//! vm-tier tests and benches): whether a requirement is met, and what happens when not.
//!
//! A test whose requirement is missing prints `SKIP <test>: <why>` and passes — unless
//! the environment variable `CAIRN_REQUIRE` (a comma list such as
//! `root,loop,btrfs,xfs,image`) names that requirement: then it panics, so CI, which
//! declares its requirements present, can never skip a tier silently.
//!
//! In the vm-tests guest (`CAIRN_VM=1`, with `vm` in `CAIRN_REQUIRE`) a test of the vm
//! tier reports every missing requirement as `vm`: the guest is built to have all of
//! them, so any gap fails ([`require_vm_tier`]). On the host `vm` means "run vm-tests",
//! not "this host has LVM and ZFS", so there the test's own requirement decides.
//!
//! The `missing_*` functions say why something is absent, or `None` when present.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::cmd::{Tool, LOSETUP, LVM, MODPROBE, THIN_CHECK, THIN_DELTA, THIN_DUMP, ZFS, ZPOOL};

/// The requirements `CAIRN_REQUIRE` declares present.
pub fn declared() -> Vec<String> {
    parse_declared(&std::env::var("CAIRN_REQUIRE").unwrap_or_default())
}

fn parse_declared(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `CAIRN_REQUIRE` names the vm tier (`vm`).
pub fn vm_declared() -> bool {
    declared().iter().any(|d| d == "vm")
}

/// Whether this process runs in the vm-tests guest with the vm tier required:
/// `CAIRN_VM=1` (set by `vm-tests/run` in every guest) and `vm` in `CAIRN_REQUIRE`.
fn is_guest(cairn_vm: Option<&OsStr>, declared: &[String]) -> bool {
    cairn_vm.is_some_and(|v| v == "1") && declared.iter().any(|d| d == "vm")
}

/// The requirement a vm-tier test names when something is missing: `vm` in the guest,
/// else its own.
fn vm_requirement<'a>(own: &'a str, cairn_vm: Option<&OsStr>, declared: &[String]) -> &'a str {
    if is_guest(cairn_vm, declared) {
        "vm"
    } else {
        own
    }
}

/// `true` when `missing` is `None`. Otherwise prints `SKIP <test>: <why>` and returns
/// `false`, or panics when `CAIRN_REQUIRE` names `requirement`.
pub fn require(test: &str, requirement: &str, missing: Option<String>) -> bool {
    decide(test, requirement, missing, &declared())
}

/// [`require`] for a test of the vm tier (LVM, ZFS): in the vm-tests guest (`CAIRN_VM=1`
/// and `vm` in `CAIRN_REQUIRE`) the requirement is `vm`, so anything missing fails;
/// elsewhere it is `own_requirement`.
pub fn require_vm_tier(test: &str, own_requirement: &str, missing: Option<String>) -> bool {
    let declared = declared();
    let cairn_vm = std::env::var_os("CAIRN_VM");
    let requirement = vm_requirement(own_requirement, cairn_vm.as_deref(), &declared);
    decide(test, requirement, missing, &declared)
}

fn decide(test: &str, requirement: &str, missing: Option<String>, declared: &[String]) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if declared.iter().any(|d| d == requirement) {
        panic!(
            "{test}: requirement {requirement:?} is missing ({why}) but CAIRN_REQUIRE says it must be present"
        );
    }
    eprintln!("SKIP {test}: {why}");
    false
}

/// Prints `SKIP <running test>: <why>` for a test (or part of one) that lacks
/// `requirement`; panics instead when `CAIRN_REQUIRE` names it.
pub fn skip(requirement: &str, why: &str) {
    require(&current_test(), requirement, Some(why.to_string()));
}

/// The name of the running test: libtest runs each test on a thread named after it
/// (`module::test`). Outside a test thread, `a test`.
pub fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "a test".to_string(),
    }
}

/// Why the process is not root, if it is not.
pub fn missing_root() -> Option<String> {
    (!nix::unistd::geteuid().is_root()).then(|| "not running as root".to_string())
}

/// Why `tool` cannot be run, if it cannot: found as the driver would find it
/// ([`Tool::resolve`]: `PATH` and the sbin directories, or `CAIRN_TOOL_PATH`; executable),
/// else the error names the package to install.
pub fn missing_tool(tool: &Tool) -> Option<String> {
    tool.resolve().err().map(|e| e.to_string())
}

/// `tar` and `zstd`, which unpack the test image.
pub const TAR: Tool = Tool {
    name: "tar",
    package: "tar",
};
pub const ZSTD: Tool = Tool {
    name: "zstd",
    package: "zstd",
};

/// Runs `modprobe <module>`, its output and failure ignored: loading works only as root
/// with the module installed, and the caller looks for what the module provides
/// afterwards.
fn modprobe(module: &str) {
    let _ = MODPROBE.run(&[module]);
}

/// Why loop devices cannot be attached, if they cannot.
pub fn missing_loop() -> Option<String> {
    (!Path::new("/dev/loop-control").exists())
        .then(|| "no /dev/loop-control (loop module not loaded?)".to_string())
        .or_else(|| missing_tool(&LOSETUP))
}

/// Why the kernel has no `fs` filesystem, if it has none (after trying to load it).
pub fn missing_kernel_fs(fs: &str) -> Option<String> {
    let has = || {
        std::fs::read_to_string("/proc/filesystems")
            .map(|t| t.lines().any(|l| l.split_whitespace().last() == Some(fs)))
            .unwrap_or(false)
    };
    if has() {
        return None;
    }
    modprobe(fs);
    (!has()).then(|| format!("the kernel has no {fs} filesystem"))
}

/// Why the LVM thin driver cannot run, if it cannot: lvm2, thin-provisioning-tools
/// (`thin_check`, and `thin_delta`/`thin_dump` for send) and dm-thin-pool in the kernel.
pub fn missing_lvm_thin() -> Option<String> {
    [LVM, THIN_CHECK, THIN_DELTA, THIN_DUMP]
        .iter()
        .find_map(missing_tool)
        .or_else(|| crate::lvm::require_dm_thin().err().map(|e| e.to_string()))
}

/// Why the ZFS driver cannot run, if it cannot: zfsutils-linux and the zfs module
/// (`/dev/zfs`, after trying to load it).
pub fn missing_zfs() -> Option<String> {
    [ZFS, ZPOOL].iter().find_map(missing_tool).or_else(|| {
        if !Path::new("/dev/zfs").exists() {
            modprobe("zfs");
        }
        (!Path::new("/dev/zfs").exists())
            .then(|| "no /dev/zfs: the zfs module is not loaded (zfs-dkms)".to_string())
    })
}

/// The Debian test image: `CAIRN_TEST_IMAGE`, else `shared/images/` beside the checkout.
pub fn image_path() -> PathBuf {
    match std::env::var_os("CAIRN_TEST_IMAGE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/images/debian-bookworm-minbase-amd64.tar.zst"),
    }
}

/// Why the test image cannot be used, if it cannot.
pub fn missing_image() -> Option<String> {
    let p = image_path();
    (!p.is_file()).then(|| {
        format!(
            "test image {} not found (set CAIRN_TEST_IMAGE)",
            p.display()
        )
    })
}

/// The whole image: its `rootfs/`, every member [`extract_image`] can take.
pub const IMAGE_ROOTFS: &[&str] = &["rootfs"];

/// The part of the image the vm tiers unpack (under qemu TCG the whole image costs
/// minutes per manifest): ~1,200 of its ~6,700 entries and 14 of its 117 MB, with every
/// kind of entry the conformance bodies rely on (device nodes, setuid `passwd`, perl's
/// two hard links, `etc/`, the dpkg database, `usr/share/doc`, the merged-usr symlinks).
pub const IMAGE_SUBSET: &[&str] = &[
    "rootfs/bin",
    "rootfs/sbin",
    "rootfs/lib",
    "rootfs/lib64",
    "rootfs/dev",
    "rootfs/etc",
    "rootfs/root",
    "rootfs/srv",
    "rootfs/tmp",
    "rootfs/usr/bin/passwd",
    "rootfs/usr/bin/perl",
    "rootfs/usr/bin/perl5.36.0",
    "rootfs/usr/share/doc",
    "rootfs/var/lib/dpkg",
];

/// Unpacks `members` of the test image ([`IMAGE_ROOTFS`], [`IMAGE_SUBSET`]) into `dst`,
/// `rootfs/` stripped, with numeric owners, modes, devices, xattrs and ACLs. Panics with
/// tar's error when it fails (a test helper).
pub fn extract_image(dst: &Path, members: &[&str]) {
    let image = image_path();
    let mut args: Vec<&OsStr> = ["--zstd", "-xpf"].map(OsStr::new).to_vec();
    args.push(image.as_os_str());
    args.extend(
        [
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "-C",
        ]
        .map(OsStr::new),
    );
    args.push(dst.as_os_str());
    args.push(OsStr::new("--strip-components=1"));
    args.extend(members.iter().map(OsStr::new));
    if let Err(e) = TAR.run(&args) {
        panic!("unpacking {} into {}: {e}", image.display(), dst.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_unless_declared() {
        let d = parse_declared("root, loop,BTRFS");
        assert_eq!(d, ["root", "loop", "btrfs"]);
        assert!(decide("t", "loop", None, &d));
        assert!(!decide("t", "xfs", Some("no xfs".into()), &d));
        let r = std::panic::catch_unwind(|| decide("t", "loop", Some("no loop".into()), &d));
        assert!(
            r.is_err(),
            "a declared requirement that is missing must fail the test"
        );
    }

    #[test]
    fn vm_tier_requirement_is_vm_only_in_the_guest() {
        let vm = parse_declared("root, VM");
        let host = parse_declared("root,lvm");
        let one = Some(OsStr::new("1"));
        assert_eq!(vm_requirement("lvm", one, &vm), "vm");
        // The guest marker alone, or vm declared on the host, is not the guest.
        assert_eq!(vm_requirement("lvm", one, &host), "lvm");
        assert_eq!(vm_requirement("lvm", None, &vm), "lvm");
        assert_eq!(vm_requirement("lvm", Some(OsStr::new("0")), &vm), "lvm");
    }

    #[test]
    fn skip_lines_name_the_running_test() {
        assert_eq!(
            current_test(),
            "testing::tests::skip_lines_name_the_running_test"
        );
    }

    #[test]
    fn missing_tools_name_their_package() {
        let nope = Tool {
            name: "cairn-no-such-tool",
            package: "cairn-no-such-package",
        };
        let why = missing_tool(&nope).expect("a tool that does not exist is missing");
        assert!(why.contains("cairn-no-such-package"), "{why}");
        // `sh` is everywhere a test runs.
        let sh = Tool {
            name: "sh",
            package: "dash",
        };
        assert_eq!(missing_tool(&sh), None);
    }
}
