//! The CLI on LVM thin and ZFS pools, inside the vm-tests guest (this host's kernel may
//! have neither): the same end-to-end body as the btrfs pool test. vm-tests runs these
//! with `CAIRN_VM=1 CAIRN_REQUIRE=vm`; on the host they skip unless `lvm` or `zfs` is
//! declared (and then fail, as the host has no such kernel support).

use cairn_backends::testing;

use crate::pools::loop_pool_end_to_end;

#[test]
fn vm_lvm_loop_pool_end_to_end() {
    let test = "vm_pools::vm_lvm_loop_pool_end_to_end";
    // In the guest every requirement is the vm tier's (testing::require_vm_tier).
    if !testing::require_vm_tier(test, "root", testing::missing_root())
        || !testing::require_vm_tier(test, "loop", testing::missing_loop())
        || !testing::require_vm_tier(test, "lvm", testing::missing_lvm_thin())
    {
        return;
    }
    loop_pool_end_to_end("lvm");
}

#[test]
fn vm_zfs_loop_pool_end_to_end() {
    let test = "vm_pools::vm_zfs_loop_pool_end_to_end";
    if !testing::require_vm_tier(test, "root", testing::missing_root())
        || !testing::require_vm_tier(test, "zfs", testing::missing_zfs())
    {
        return;
    }
    loop_pool_end_to_end("zfs");
}
