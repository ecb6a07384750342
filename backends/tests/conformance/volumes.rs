//! Volumes and pools: the image in a volume, idempotence, delete, rename, usage.

use std::collections::BTreeSet;

use cairn_backends::manifest::FileKind;
use cairn_backends::{CreateAction, DeleteAction, PoolSource};

use crate::fixture::{Fixture, Tier};
use crate::harness::Req;
use crate::util::*;

/// The image unpacked into a volume is the image: every entry, device, owner, and the
/// same tree as an unpack into a plain directory.
pub fn image_extracts_exactly(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("img");
    // The whole image, on every tier (the others unpack `fx.tier.image()`, a subset on vm
    // tiers): this test is about the image itself.
    let m = image_volume(b, &v, IMAGE_ROOTFS);
    assert_eq!(m.len(), 6675, "entries in the image volume");
    let devices = m
        .entries
        .values()
        .filter(|e| matches!(e.kind, FileKind::Char | FileKind::Block))
        .count();
    assert_eq!(devices, 8, "device nodes");
    let gids: BTreeSet<u32> = m.entries.values().map(|e| e.gid).collect();
    assert_eq!(gids, BTreeSet::from([0, 8, 42, 43, 50]), "group owners");
    assert_eq!(m.entries["usr/bin/passwd"].mode, 0o4755);
    assert_eq!(
        m.entries["usr/bin/perl5.36.0"].hardlink.as_deref(),
        Some("usr/bin/perl")
    );
    // Against an unpack into a plain directory (the volume root itself was made by the
    // driver, not by tar, so it is left out).
    let plain = fx.root().join("plain");
    std::fs::create_dir(&plain).unwrap();
    extract_image(&plain, IMAGE_ROOTFS);
    let mut want = manifest(&plain);
    let mut got = m.clone();
    want.entries.remove(".");
    got.entries.remove(".");
    assert_same(&want, &got, "image volume vs plain unpack");
    // And it is still the same after unmounting and mounting everything again.
    b.unmount_volume(&v).unwrap();
    b.unmount_pool().unwrap();
    let b2 = fx.reopen(b);
    b2.mount_pool().unwrap();
    assert_same(
        &m,
        &vol_manifest(b2.as_ref(), &v),
        "image volume after remount",
    );
}

/// Creates, deletes, mounts and unmounts said twice are the same as once.
pub fn operations_are_idempotent(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    assert_eq!(
        b.create_pool().unwrap(),
        CreateAction::Identity,
        "create_pool again"
    );
    b.mount_pool().unwrap();
    b.mount_pool().unwrap();

    let v = vol("v");
    assert!(b.create_volume(&v).unwrap().is_created());
    assert_eq!(
        b.create_volume(&v).unwrap(),
        CreateAction::Identity,
        "empty volume again"
    );
    let p1 = b.mount_volume(&v).unwrap();
    let p2 = b.mount_volume(&v).unwrap();
    assert_eq!(p1, p2, "mount_volume twice");
    std::fs::write(p1.join("content"), b"x").unwrap();
    assert_err(b.create_volume(&v), is_exists, "create_volume over content");
    assert!(
        p1.join("content").exists(),
        "create_volume touched the content"
    );
    b.unmount_volume(&v).unwrap();
    b.unmount_volume(&v).unwrap();

    let s = snap("s");
    b.create_snapshot(&v, &s).unwrap();
    let q1 = b.mount_snapshot(&v, &s).unwrap();
    let q2 = b.mount_snapshot(&v, &s).unwrap();
    assert_eq!(q1, q2, "mount_snapshot twice");
    assert_eq!(std::fs::read(q1.join("content")).unwrap(), b"x");
    b.unmount_snapshot(&v, &s).unwrap();
    b.unmount_snapshot(&v, &s).unwrap();
    assert_eq!(b.delete_snapshot(&v, &s).unwrap(), DeleteAction::Deleted);
    assert_eq!(b.delete_snapshot(&v, &s).unwrap(), DeleteAction::Identity);
    assert_eq!(snapshot_names(b, &v), Vec::<String>::new());

    // Content survives unmount_pool / mount_pool through a fresh handle.
    let w = vol("w");
    let mw = tree_volume(b, &w, 1);
    b.unmount_volume(&w).unwrap();
    b.unmount_pool().unwrap();
    b.unmount_pool().unwrap();
    let b2 = fx.reopen(b);
    b2.mount_pool().unwrap();
    b2.mount_pool().unwrap();
    assert_eq!(volume_names(b2.as_ref()), ["v", "w"]);
    assert_same(
        &mw,
        &vol_manifest(b2.as_ref(), &w),
        "volume after pool remount",
    );
    b2.unmount_volume(&w).unwrap();

    assert_eq!(b2.delete_volume(&v).unwrap(), DeleteAction::Deleted);
    assert_eq!(b2.delete_volume(&v).unwrap(), DeleteAction::Identity);
    assert_eq!(volume_names(b2.as_ref()), ["w"]);
}

/// Deleting a volume takes its snapshots with it; then the pool can go.
pub fn delete_volume_removes_snapshots(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("doomed");
    tree_volume(b, &v, 2);
    b.create_snapshot(&v, &snap("s1")).unwrap();
    b.create_snapshot(&v, &snap("s2")).unwrap();
    let keep = vol("keep");
    let mk = tree_volume(b, &keep, 3);
    b.create_snapshot(&keep, &snap("s1")).unwrap();
    b.unmount_volume(&v).unwrap();
    b.unmount_volume(&keep).unwrap();

    assert_err(
        b.delete_pool(),
        is_busy,
        "delete_pool while it holds volumes",
    );
    assert_eq!(b.delete_volume(&v).unwrap(), DeleteAction::Deleted);
    assert_eq!(volume_names(b), ["keep"]);
    assert_err(
        b.list_snapshots(&v),
        is_not_found,
        "list_snapshots of a deleted volume",
    );
    assert_err(
        b.mount_snapshot(&v, &snap("s1")),
        is_not_found,
        "mount_snapshot",
    );
    assert_err(
        b.mount_volume(&v),
        is_not_found,
        "mount_volume of a deleted volume",
    );
    // A new volume of the same name starts empty, with no snapshots.
    assert!(b.create_volume(&v).unwrap().is_created());
    assert_eq!(snapshot_names(b, &v), Vec::<String>::new());
    assert_eq!(vol_manifest(b, &v).len(), 1, "new volume is empty");
    b.unmount_volume(&v).unwrap();
    assert_eq!(b.delete_volume(&v).unwrap(), DeleteAction::Deleted);
    // The other volume did not notice.
    assert_eq!(snapshot_names(b, &keep), ["s1"]);
    assert_same(&mk, &vol_manifest(b, &keep), "the other volume");
    b.unmount_volume(&keep).unwrap();
    assert_eq!(b.delete_volume(&keep).unwrap(), DeleteAction::Deleted);

    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Deleted);
    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Identity);
    if let PoolSource::LoopFile { path, .. } = &b.spec().source {
        assert!(
            !path.exists(),
            "delete_pool left the loop file {}",
            path.display()
        );
    }
}

/// Renames move volumes with their snapshots, keep snapshot times, and refuse to
/// overwrite.
pub fn rename_volume_and_snapshot(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let (a, other, c) = (vol("a"), vol("b"), vol("c"));
    let m1 = tree_volume(b, &a, 4);
    let i1 = b.create_snapshot(&a, &snap("s1")).unwrap();
    modify_small(&b.mount_volume(&a).unwrap(), "x");
    let i2 = b.create_snapshot(&a, &snap("s2")).unwrap();
    let ma = vol_manifest(b, &a);
    let mb = tree_volume(b, &other, 5);
    b.unmount_volume(&a).unwrap();
    b.unmount_volume(&other).unwrap();

    assert_err(
        b.rename_volume(&a, &other),
        is_exists,
        "rename onto a volume",
    );
    assert_eq!(volume_names(b), ["a", "b"]);
    assert_eq!(snapshot_names(b, &a), ["s1", "s2"]);
    assert_eq!(snapshot_names(b, &other), Vec::<String>::new());
    assert_same(&ma, &vol_manifest(b, &a), "a after refused rename");
    assert_same(&mb, &vol_manifest(b, &other), "b after refused rename");
    b.unmount_volume(&a).unwrap();
    b.unmount_volume(&other).unwrap();
    assert_err(
        b.rename_volume(&vol("nope"), &vol("nope2")),
        is_not_found,
        "rename missing",
    );

    b.rename_volume(&a, &c).unwrap();
    assert_eq!(volume_names(b), ["b", "c"]);
    assert_err(
        b.list_snapshots(&a),
        is_not_found,
        "snapshots of the old name",
    );
    let snaps = b.list_snapshots(&c).unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(
        (snaps[0].created_at, snaps[1].created_at),
        (i1.created_at, i2.created_at)
    );
    assert_same(&ma, &vol_manifest(b, &c), "renamed volume");
    assert_same(
        &m1,
        &snap_manifest(b, &c, &snap("s1")),
        "snapshot of renamed volume",
    );
    b.unmount_volume(&c).unwrap();

    b.rename_snapshot(&c, &snap("s1"), &snap("first")).unwrap();
    let snaps = b.list_snapshots(&c).unwrap();
    let names: Vec<&str> = snaps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "s2"], "oldest first, by creation time");
    assert_eq!(
        snaps[0].created_at, i1.created_at,
        "rename_snapshot kept created_at"
    );
    assert_same(
        &m1,
        &snap_manifest(b, &c, &snap("first")),
        "renamed snapshot",
    );
    assert_err(
        b.rename_snapshot(&c, &snap("first"), &snap("s2")),
        is_exists,
        "rename onto a snapshot",
    );
    assert_eq!(snapshot_names(b, &c), ["first", "s2"]);
    assert_same(
        &m1,
        &snap_manifest(b, &c, &snap("first")),
        "after refused rename",
    );
    assert_err(
        b.rename_snapshot(&c, &snap("s1"), &snap("s3")),
        is_not_found,
        "rename a missing snapshot",
    );
    // The renamed snapshot restores.
    b.restore_snapshot(&c, &snap("first")).unwrap();
    assert_same(
        &m1,
        &vol_manifest(b, &c),
        "restored from the renamed snapshot",
    );
}

/// Writing 64 MiB shows in pool and volume usage.
pub fn usage_reflects_writes(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.isolated_pool("usage");
    let b = b.as_ref();
    let v = vol("v");
    b.create_volume(&v).unwrap();
    let p = b.mount_volume(&v).unwrap();
    sync();
    let pool0 = b.pool_usage().unwrap();
    let vol0 = b.volume_usage(&v).unwrap();
    write_noise(&p.join("data"), 64 << 20, 9);
    sync();
    let pool1 = b.pool_usage().unwrap();
    let vol1 = b.volume_usage(&v).unwrap();
    const MIB: u64 = 1 << 20;
    assert!(pool1.total >= pool1.used, "pool usage {pool1:?}");
    assert!(
        pool1.used >= pool0.used + 48 * MIB,
        "pool used grew by less than 48 MiB: {pool0:?} -> {pool1:?}"
    );
    assert!(
        pool1.free + 48 * MIB <= pool0.free,
        "pool free shrank by less than 48 MiB: {pool0:?} -> {pool1:?}"
    );
    assert!(
        vol1.used >= vol0.used + 60 * MIB,
        "volume used grew by less than 60 MiB: {vol0:?} -> {vol1:?}"
    );
    assert!(
        vol1.used < vol0.used + 80 * MIB,
        "volume used {vol0:?} -> {vol1:?}"
    );
    assert_err(
        b.volume_usage(&vol("nope")),
        is_not_found,
        "volume_usage of a missing volume",
    );
}
