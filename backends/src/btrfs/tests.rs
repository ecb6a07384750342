//! Loop tests of the btrfs driver for what the shared conformance suite does not cover.
//! They need root, loop devices and btrfs-progs: without them they print why and skip,
//! unless `CAIRN_REQUIRE` contains `loop`, when they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;
use crate::backend::PoolSource;
use crate::cmd::{LOSETUP, MKFS_BTRFS};
use crate::diff::tests::summary;
use crate::diff::DiffSide;
use crate::types::Bytes;
use crate::{loopdev, mounts};

/// Why loop tests cannot run here, if they cannot.
fn missing_requirement() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        Some("not running as root")
    } else if !Path::new("/dev/loop-control").exists() {
        Some("no loop devices (/dev/loop-control)")
    } else if crate::cmd::BTRFS.resolve().is_err()
        || MKFS_BTRFS.resolve().is_err()
        || LOSETUP.resolve().is_err()
    {
        Some("btrfs-progs or losetup is not installed")
    } else {
        None
    }
}

/// Whether the running test can use loop devices ([`crate::testing::require`]).
fn loop_available() -> bool {
    crate::testing::require(
        &crate::testing::current_test(),
        "loop",
        missing_requirement().map(String::from),
    )
}

/// A btrfs pool on a loop file in a temp dir; unmounted and detached on drop.
struct LoopPool {
    backend: BtrfsBackend,
    dir: TempDir,
}

impl LoopPool {
    fn new(name: &str) -> LoopPool {
        let dir = tempfile::Builder::new()
            .prefix("cairn-btrfs-")
            .suffix("-cairntest")
            .tempdir()
            .unwrap();
        let spec = PoolSpec {
            name: format!("{name}-cairntest").parse().unwrap(),
            source: PoolSource::LoopFile {
                path: dir.path().join("pool.img"),
                size: Bytes(256 << 20),
            },
            state_dir: dir.path().join("state"),
        };
        let backend = BtrfsBackend::new(spec);
        assert!(backend.create_pool().unwrap().is_created());
        LoopPool { backend, dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("pool.img")
    }
}

impl Drop for LoopPool {
    fn drop(&mut self) {
        if let Err(e) = self.backend.unmount_pool() {
            eprintln!("cleanup of {}: {e}", self.dir.path().display());
            // Never let TempDir recurse into a mounted pool: detach it lazily.
            let mnt = self.backend.mount_point();
            let _ = crate::cmd::UMOUNT.run(&["-l".as_ref(), mnt.as_os_str()]);
            let _ = loopdev::detach(&self.file());
        }
    }
}

fn vol(s: &str) -> VolumeName {
    s.parse().unwrap()
}

fn snap(s: &str) -> SnapshotName {
    s.parse().unwrap()
}

/// blake3 of every regular file under `root`, by relative path.
fn hash_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let h = blake3::hash(&std::fs::read(&p).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), h);
            }
        }
    }
    out
}

#[test]
fn loop_btrfs_loop_pool_survives_unmount_and_remount() {
    if !loop_available() {
        return;
    }
    let pool = LoopPool::new("remount");
    let b = &pool.backend;
    let v = vol("web1");
    b.create_volume(&v).unwrap();
    let root = b.mount_volume(&v).unwrap();
    std::fs::write(root.join("data"), b"kept across remounts").unwrap();
    let s = b.create_snapshot(&v, &snap("s1")).unwrap();

    b.unmount_pool().unwrap();
    b.unmount_pool().unwrap(); // idempotent
    assert_eq!(loopdev::find(&pool.file()).unwrap(), None, "still attached");
    assert!(b.list_volumes().is_err(), "listing an unmounted pool");

    b.mount_pool().unwrap();
    b.mount_pool().unwrap(); // idempotent
    assert!(!b.create_pool().unwrap().is_created());
    let root = b.mount_volume(&v).unwrap();
    assert_eq!(
        std::fs::read(root.join("data")).unwrap(),
        b"kept across remounts"
    );
    assert_eq!(b.list_snapshots(&v).unwrap(), vec![s]);

    assert!(matches!(b.delete_pool(), Err(Error::Busy { .. })));
    b.delete_volume(&v).unwrap();
    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Deleted);
    assert!(!pool.file().exists());
    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Identity);
}

#[test]
fn loop_btrfs_directory_not_on_btrfs_is_refused() {
    if !loop_available() {
        return;
    }
    let dir = tempfile::Builder::new()
        .suffix("-cairntest")
        .tempdir()
        .unwrap();
    if mounts::fs_type_of(dir.path()).unwrap() == mounts::FsKind::Btrfs {
        eprintln!("skipping: the temp dir is on btrfs");
        return;
    }
    for path in [dir.path().to_path_buf(), dir.path().join("new")] {
        let b = BtrfsBackend::new(PoolSpec {
            name: "nobtrfs-cairntest".parse().unwrap(),
            source: PoolSource::Directory { path: path.clone() },
            state_dir: dir.path().join("state"),
        });
        let e = b.create_pool().unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert!(msg.contains("is not on a btrfs filesystem (it is"), "{msg}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "made something"
        );
    }
}

#[test]
fn loop_btrfs_nested_subvolume_does_not_break_snapshot_or_delete() {
    if !loop_available() {
        return;
    }
    let pool = LoopPool::new("nested");
    let b = &pool.backend;
    let v = vol("ct");
    b.create_volume(&v).unwrap();
    let root = b.mount_volume(&v).unwrap();
    std::fs::write(root.join("top"), b"top").unwrap();
    // What a container does with `btrfs subvolume create` inside its rootfs.
    subvol::create(&root.join("nested")).unwrap();
    subvol::create(&root.join("nested/deeper")).unwrap();
    std::fs::write(root.join("nested/inner"), b"inner").unwrap();

    b.create_snapshot(&v, &snap("s1")).unwrap();
    let s = b.mount_snapshot(&v, &snap("s1")).unwrap();
    assert_eq!(std::fs::read(s.join("top")).unwrap(), b"top");
    assert!(
        s.join("nested").is_dir(),
        "nested subvolume shows as a directory"
    );
    assert_eq!(std::fs::read_dir(s.join("nested")).unwrap().count(), 0);

    b.restore_snapshot(&v, &snap("s1")).unwrap(); // the replaced state held the nested ones
    assert_eq!(
        std::fs::read_dir(pool.backend.layout.tmp())
            .unwrap()
            .count(),
        0
    );
    subvol::create(&b.mount_volume(&v).unwrap().join("again")).unwrap();

    assert_eq!(b.delete_volume(&v).unwrap(), DeleteAction::Deleted);
    assert!(b.list_volumes().unwrap().is_empty());
    assert_eq!(b.delete_volume(&v).unwrap(), DeleteAction::Identity);
    assert_eq!(
        std::fs::read_dir(pool.backend.layout.tmp())
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn loop_btrfs_full_and_incremental_send_receive_into_second_pool() {
    if !loop_available() {
        return;
    }
    let (a, b) = (LoopPool::new("send-a"), LoopPool::new("send-b"));
    let (a, b) = (&a.backend, &b.backend);
    let v = vol("db");
    a.create_volume(&v).unwrap();
    let root = a.mount_volume(&v).unwrap();
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/keep"), vec![7u8; 300_000]).unwrap();
    std::fs::write(root.join("change"), b"version 1").unwrap();
    std::fs::write(root.join("gone"), b"deleted in s2").unwrap();
    a.create_snapshot(&v, &snap("s1")).unwrap();
    std::fs::write(root.join("change"), b"version 2, longer").unwrap();
    std::fs::remove_file(root.join("gone")).unwrap();
    std::fs::write(root.join("new"), b"added in s2").unwrap();
    a.create_snapshot(&v, &snap("s2")).unwrap();

    let mut full = Vec::new();
    let stats = a.send(&v, &snap("s1"), None, &mut full).unwrap();
    assert_eq!(stats.bytes, full.len() as u64);
    let mut incr = Vec::new();
    a.send(&v, &snap("s2"), Some(&snap("s1")), &mut incr)
        .unwrap();
    assert!(incr.len() < full.len(), "incremental is not smaller");

    // Received under other names: the rename within snapshots/<vol>/ is exercised.
    b.receive(&v, &snap("first"), &mut full.as_slice()).unwrap();
    b.receive(&v, &snap("second"), &mut incr.as_slice())
        .unwrap();

    let names: Vec<_> = b
        .list_snapshots(&v)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, [snap("first"), snap("second")]);
    let src_s1 = hash_tree(&a.mount_snapshot(&v, &snap("s1")).unwrap());
    let src_s2 = hash_tree(&a.mount_snapshot(&v, &snap("s2")).unwrap());
    assert_eq!(
        hash_tree(&b.mount_snapshot(&v, &snap("first")).unwrap()),
        src_s1
    );
    assert_eq!(
        hash_tree(&b.mount_snapshot(&v, &snap("second")).unwrap()),
        src_s2
    );
    // The volume did not exist on b: it was made from the first snapshot received.
    assert_eq!(hash_tree(&b.mount_volume(&v).unwrap()), src_s1);
    assert!(matches!(
        b.receive(&v, &snap("second"), &mut incr.as_slice()),
        Err(Error::AlreadyExists { .. })
    ));
}

#[test]
fn loop_btrfs_truncated_receive_leaves_no_snapshot() {
    if !loop_available() {
        return;
    }
    let (a, b) = (LoopPool::new("trunc-a"), LoopPool::new("trunc-b"));
    let (a, bb) = (&a.backend, &b.backend);
    let v = vol("web");
    a.create_volume(&v).unwrap();
    let root = a.mount_volume(&v).unwrap();
    for i in 0..20 {
        std::fs::write(root.join(format!("f{i}")), vec![i as u8; 50_000]).unwrap();
    }
    a.create_snapshot(&v, &snap("s1")).unwrap();
    let mut full = Vec::new();
    a.send(&v, &snap("s1"), None, &mut full).unwrap();

    // Cut mid-command, and cut exactly before the END command (a command boundary,
    // which `btrfs receive` alone would take for the end of the stream).
    for cut in [full.len() / 2, full.len() - 10, 5] {
        let e = bb.receive(&v, &snap("s1"), &mut &full[..cut]).unwrap_err();
        eprintln!("cut at {cut}: {e}");
        assert!(bb.list_volumes().unwrap().is_empty(), "cut at {cut}");
        let dir = bb.layout.snapshots(&v);
        assert!(
            !dir.exists(),
            "cut at {cut}: {:?} left",
            std::fs::read_dir(&dir)
        );
    }
    // The volume exists on b now: a cut stream must not leave anything in its snapshots.
    bb.create_volume(&v).unwrap();
    let e = bb.receive(&v, &snap("s1"), &mut &full[..full.len() - 10]);
    assert!(e.is_err());
    assert!(bb.list_snapshots(&v).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(bb.layout.snapshots(&v)).unwrap().count(),
        0
    );
    bb.receive(&v, &snap("s1"), &mut full.as_slice()).unwrap();
    assert_eq!(bb.list_snapshots(&v).unwrap().len(), 1);
}

/// Child half of `loop_btrfs_missing_btrfs_tool_is_named_and_nothing_is_made`: runs
/// create_pool where `CAIRN_TOOL_PATH` hides every tool. Does nothing unless the parent
/// set `CAIRN_BTRFS_TEST_CHILD` to the pool's directory.
#[test]
fn missing_tool_child() {
    let Some(dir) = std::env::var_os("CAIRN_BTRFS_TEST_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let backend = BtrfsBackend::new(PoolSpec {
        name: "notool-cairntest".parse().unwrap(),
        source: PoolSource::LoopFile {
            path: dir.join("pool.img"),
            size: "1G".parse().unwrap(),
        },
        state_dir: dir.join("state"),
    });
    let err = backend.create_pool().unwrap_err();
    println!("CHILD-ERROR: {err}");
}

#[test]
fn loop_btrfs_missing_btrfs_tool_is_named_and_nothing_is_made() {
    if !loop_available() {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("cairn-btrfs-notool-")
        .suffix("-cairntest")
        .tempdir()
        .unwrap();
    let empty = dir.path().join("no-tools");
    std::fs::create_dir(&empty).unwrap();
    let out = std::process::Command::new("/proc/self/exe")
        .args([
            "--exact",
            "btrfs::tests::missing_tool_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAIRN_BTRFS_TEST_CHILD", dir.path())
        .env("CAIRN_TOOL_PATH", &empty)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("CHILD-ERROR: btrfs is not installed: apt-get install btrfs-progs"),
        "child output: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("pool.img").exists(),
        "a loop file was made"
    );
    assert!(!dir.path().join("state").exists(), "a state dir was made");
}

/// A send stream names an inode by one of its paths: the other names of a changed
/// multiply-linked file must still be reported, as the walk reports them.
#[test]
fn loop_btrfs_diff_reports_every_name_of_a_changed_hard_link() {
    if !loop_available() {
        return;
    }
    let pool = LoopPool::new("diff");
    let b = &pool.backend;
    let v = vol("links");
    let (s1, s2) = (snap("s1"), snap("s2"));
    b.create_volume(&v).unwrap();
    let root = b.mount_volume(&v).unwrap();
    for d in ["usr", "lib"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("usr/a"), b"#!/bin/sh\n").unwrap();
    std::fs::hard_link(root.join("usr/a"), root.join("usr/b")).unwrap();
    std::fs::write(root.join("lib/x"), b"x").unwrap();
    std::fs::hard_link(root.join("lib/x"), root.join("lib/y")).unwrap();
    std::fs::hard_link(root.join("lib/x"), root.join("lib/z")).unwrap();
    b.create_snapshot(&v, &s1).unwrap();
    // Rewritten through its second name; one of three names removed.
    std::fs::write(root.join("usr/b"), b"#!/bin/bash\n").unwrap();
    // The kernel's coarse clock can give the rewrite the creation's mtime: set one
    // that differs, so the expected "mtime" does not depend on timing.
    std::fs::File::options()
        .write(true)
        .open(root.join("usr/b"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000))
        .unwrap();
    std::fs::remove_file(root.join("lib/z")).unwrap();
    b.create_snapshot(&v, &s2).unwrap();

    let (p1, p2) = (
        b.snapshot_path(&v, &s1).unwrap(),
        b.snapshot_path(&v, &s2).unwrap(),
    );
    let walked = crate::diff::walk(&p1, &p2).unwrap();
    for want in [
        "modified file /usr/a content,mtime",
        "modified file /usr/b content,mtime",
        "modified file /lib/x links",
        "modified file /lib/y links",
        "deleted file /lib/z",
    ] {
        assert!(
            summary(&walked).iter().any(|l| l == want),
            "walk: {want:?} missing from {:#?}",
            summary(&walked)
        );
    }
    let d = b
        .diff(&v, DiffSide::Snapshot(&s1), DiffSide::Snapshot(&s2))
        .unwrap();
    assert_eq!(summary(&d), summary(&walked));
    let live = b.diff(&v, DiffSide::Snapshot(&s1), DiffSide::Live).unwrap();
    assert_eq!(summary(&live), summary(&walked));
}
