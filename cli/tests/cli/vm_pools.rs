//! The CLI on LVM thin and ZFS pools, inside the vm-tests guest (this host's kernel may
//! have neither): the same end-to-end body as the btrfs pool test. vm-tests runs these
//! with `CAIRN_VM=1 CAIRN_REQUIRE=vm`; on the host they skip unless `lvm` or `zfs` is
//! declared (and then fail, as the host has no such kernel support).

use std::path::Path;

use crate::pools::loop_pool_end_to_end;
use crate::support::{require, require_root};

/// The requirement of a vm test: in the guest it is `vm` (all of it must be there);
/// elsewhere the driver's own name.
fn require_driver(driver: &str, tool: &str, package: &str, kernel: &str) -> bool {
    let in_guest = std::env::var_os("CAIRN_VM").is_some_and(|v| v == "1");
    let name = if in_guest { "vm" } else { driver };
    let tool_found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists());
    let why = if !tool_found {
        format!("{tool} is not installed (apt-get install {package})")
    } else {
        format!("the kernel lacks {kernel}")
    };
    let kernel_ok = match driver {
        "zfs" => Path::new("/dev/zfs").exists(),
        _ => std::fs::read_to_string("/proc/misc").is_ok_and(|m| m.contains("device-mapper")),
    };
    require(name, tool_found && kernel_ok, &why)
}

#[test]
fn vm_lvm_loop_pool_end_to_end() {
    if !require_root() || !require_driver("lvm", "lvm", "lvm2", "device-mapper (dm-thin-pool)") {
        return;
    }
    loop_pool_end_to_end("lvm");
}

#[test]
fn vm_zfs_loop_pool_end_to_end() {
    if !require_root() || !require_driver("zfs", "zfs", "zfsutils-linux", "the zfs module") {
        return;
    }
    loop_pool_end_to_end("zfs");
}
