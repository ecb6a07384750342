//! The main workflow on the shared Debian image: import, create, snapshot, change a file,
//! restore, copy (within and across pools), list — checking the files are exact.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_backends::manifest::Manifest;
use serde_json::Value;

use crate::helpers::rootfs;
use crate::support::{require_image, require_root, Cairn, SHARED_IMAGE};

fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok().map(|_| s.ends_with('Z')))
        .unwrap_or(false)
}

/// What GNU tar itself unpacks from the image, to compare cairn's unpack against.
fn reference_unpack(dir: &Path) -> PathBuf {
    let out = Command::new("tar")
        .args([
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "--zstd",
            "-xpf",
            SHARED_IMAGE.as_str(),
            "-C",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("rootfs")
}

fn same_tree(a: &Path, b: &Path) {
    let diff = Manifest::of(a).unwrap().diff(&Manifest::of(b).unwrap());
    assert!(
        diff.is_empty(),
        "{} and {} differ:\n{}",
        a.display(),
        b.display(),
        diff.join("\n")
    );
}

#[test]
fn import_create_snapshot_restore_copy_list() {
    if !(require_root() && require_image()) {
        return;
    }
    let c = Cairn::new();
    let sums =
        std::fs::read_to_string(Path::new(SHARED_IMAGE.as_str()).with_file_name("SHA256SUMS"))
            .unwrap();
    let want_fp = sums.split_whitespace().next().unwrap();

    // Import: the fingerprint is the file's sha256, as LXD computes it.
    let imported = c.json(&[
        "image",
        "import",
        SHARED_IMAGE.as_str(),
        "--alias",
        "debian/bookworm",
    ]);
    assert_eq!(imported["fingerprint"], want_fp);
    assert_eq!(imported["aliases"][0], "debian/bookworm");
    assert_eq!(imported["pools"][0], "default");
    // Importing again is not an error and stores nothing new.
    c.ok(&[
        "image",
        "import",
        SHARED_IMAGE.as_str(),
        "--alias",
        "bookworm",
    ]);
    assert_eq!(c.json(&["image", "list"]).as_array().unwrap().len(), 1);

    // Create: the container's files are exactly what GNU tar unpacks.
    c.ok(&["create", "debian/bookworm", "web1"]);
    let web1 = rootfs(&c, "web1");
    let reference = tempfile::tempdir().unwrap();
    same_tree(&reference_unpack(reference.path()), &web1);

    // Snapshot, change a file, restore: the file is back.
    let hostname = web1.join("etc/hostname");
    let original = std::fs::read(&hostname).unwrap();
    let snap = c.json(&["snapshot", "create", "web1", "--label", "why=before-change"]);
    assert_eq!(snap["name"], "snap0");
    std::fs::write(&hostname, "changed\n").unwrap();
    std::fs::write(web1.join("root/new-file"), "x").unwrap();
    c.ok(&["restore", "web1", "snap0"]);
    let web1 = rootfs(&c, "web1");
    assert_eq!(std::fs::read(web1.join("etc/hostname")).unwrap(), original);
    assert!(!web1.join("root/new-file").exists());
    same_tree(&reference.path().join("rootfs"), &web1);

    // snap0, and the safety snapshot the restore took of the state before it.
    let snaps = c.json(&["snapshot", "list", "web1"]);
    assert_eq!(snaps.as_array().unwrap().len(), 2, "{snaps}");
    assert_eq!(snaps[0]["name"], "snap0");
    assert!(
        snaps[1]["name"]
            .as_str()
            .unwrap()
            .starts_with("pre-restore-"),
        "{snaps}"
    );
    assert!(is_rfc3339_utc(&snaps[0]["created_at"]), "{snaps}");
    assert_eq!(snaps[0]["labels"]["why"], "before-change");

    // Copies: of the live state, and of a snapshot; independent of their source.
    std::fs::write(web1.join("etc/hostname"), "live\n").unwrap();
    c.ok(&["copy", "web1", "test1"]);
    c.ok(&["copy", "web1/snap0", "test2"]);
    assert_eq!(
        std::fs::read(rootfs(&c, "test1").join("etc/hostname")).unwrap(),
        b"live\n"
    );
    assert_eq!(
        std::fs::read(rootfs(&c, "test2").join("etc/hostname")).unwrap(),
        original
    );
    std::fs::write(rootfs(&c, "test1").join("etc/hostname"), "test1\n").unwrap();
    assert_eq!(std::fs::read(web1.join("etc/hostname")).unwrap(), b"live\n");

    // Across pools: a full exact copy.
    let other = c.dir.path().join("other-pool");
    std::fs::create_dir(&other).unwrap();
    c.ok(&[
        "pool",
        "create",
        "other",
        "--driver",
        "dir",
        "--source",
        other.to_str().unwrap(),
    ]);
    c.ok(&["copy", "web1/snap0", "far", "--pool", "other"]);
    let far = c.json(&["info", "far"]);
    assert_eq!(far["pool"], "other");
    same_tree(&reference.path().join("rootfs"), &rootfs(&c, "far"));

    // Listing, info, rename, delete.
    let list = c.json(&["list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["far", "test1", "test2", "web1"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|e| is_rfc3339_utc(&e["created_at"])));
    let info = c.json(&["info", "web1"]);
    for key in ["name", "pool", "image", "created_at", "rootfs", "snapshots"] {
        assert!(!info[key].is_null(), "info lacks {key}: {info}");
    }
    assert_eq!(info["image"], want_fp);
    assert_eq!(info["snapshots"][0]["name"], "snap0");
    c.ok(&["rename", "test2", "renamed"]);
    assert!(rootfs(&c, "renamed").join("etc/hostname").exists());
    c.ok(&["snapshot", "rename", "web1", "snap0", "first"]);
    assert_eq!(
        c.json(&["snapshot", "show", "web1", "first"])["labels"]["why"],
        "before-change"
    );
    for name in ["far", "test1", "renamed", "web1"] {
        c.ok(&["delete", name]);
    }
    assert_eq!(c.json(&["list"]), Value::Array(vec![]));
    c.ok(&["pool", "delete", "other"]);
    c.ok(&["image", "delete", "debian/bookworm"]);
    assert_eq!(c.json(&["image", "list"]), Value::Array(vec![]));
    c.ok(&["pool", "delete", "default"]);
}
