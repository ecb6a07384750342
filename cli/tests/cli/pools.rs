//! Pools: a btrfs pool on a loop file used end to end, and aliases.

use cairn_backends::cmd::MKFS_BTRFS;

use crate::helpers::rootfs;
use crate::support::{require_root, require_tool, unified_image, Cairn};

#[test]
fn btrfs_loop_pool_end_to_end() {
    if !require_root() || !require_tool("btrfs", &MKFS_BTRFS) {
        return;
    }
    loop_pool_end_to_end("btrfs");
}

/// A pool of `driver` on a loop file cairn creates, used end to end: import into it,
/// create, snapshot, restore, a full copy into the default dir pool, refusal to delete
/// it while used, and its removal with its loop file. Run on btrfs here and on lvm and
/// zfs in the test VM (vm_pools.rs).
pub fn loop_pool_end_to_end(driver: &str) {
    let c = Cairn::new();
    let loop_file = c.dir.path().join("fast.img");
    c.ok(&[
        "pool",
        "create",
        "fast",
        "--driver",
        driver,
        "--source",
        loop_file.to_str().unwrap(),
        "--size",
        "1G",
    ]);
    let pools = c.json(&["pool", "list"]);
    assert_eq!(pools[0]["name"], "fast");
    assert_eq!(pools[0]["driver"], driver);
    assert_eq!(pools[0]["source"]["type"], "loop-file");
    let show = c.json(&["pool", "show", "fast"]);
    assert_eq!(show["capabilities"]["cow_clone"], true);

    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&[
        "image",
        "import",
        img.to_str().unwrap(),
        "--pool",
        "fast",
        "--alias",
        "tiny",
    ]);
    c.ok(&["create", "tiny", "b1", "--pool", "fast"]);
    let root = rootfs(&c, "b1");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "tiny\n"
    );
    c.ok(&["snapshot", "create", "b1", "s1"]);
    std::fs::write(root.join("etc/hostname"), "changed\n").unwrap();
    c.ok(&["restore", "b1", "s1"]);
    let root = rootfs(&c, "b1");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "tiny\n"
    );

    // Within the pool: a copy-on-write clone, independent of its origin.
    c.ok(&["copy", "b1", "b2"]);
    let root2 = rootfs(&c, "b2");
    std::fs::write(root2.join("etc/hostname"), "clone\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "tiny\n"
    );
    c.ok(&["delete", "b2"]);

    // Into the default (dir) pool: a full copy.
    c.ok(&["copy", "b1/s1", "d1", "--pool", "default"]);
    assert_eq!(c.json(&["info", "d1"])["pool"], "default");

    let line = c.fails(&["pool", "delete", "fast"]);
    assert!(
        line.starts_with("error: pool fast: in use by container(s) b1"),
        "{line}"
    );
    c.ok(&["delete", "b1"]);
    c.ok(&["delete", "d1"]);
    c.ok(&["image", "delete", "tiny"]);
    c.ok(&["pool", "delete", "fast"]);
    assert!(!loop_file.exists(), "the loop file was left behind");
}

#[test]
fn aliases_point_at_images() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    let fp = c.json(&["image", "import", img.to_str().unwrap()])["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    c.ok(&["image", "alias", "add", "os/tiny", &fp[..8]]);
    c.ok(&["create", "os/tiny", "a1"]);
    assert_eq!(c.json(&["info", "a1"])["image"], fp.as_str());
    assert_eq!(c.json(&["image", "show", &fp])["aliases"][0], "os/tiny");
    let line = c.fails(&["image", "alias", "add", "os/tiny", "nope"]);
    assert_eq!(line, "error: image nope: does not exist");
    c.ok(&["image", "alias", "remove", "os/tiny"]);
    assert_eq!(
        c.fails(&["create", "os/tiny", "a2"]),
        "error: image os/tiny: does not exist"
    );
}
