//! Snapshots, restores and clones, checked byte for byte through manifests.

use std::path::Path;

use cairn_backends::{Backend, CloneSource};

use crate::fixture::{Fixture, Tier};
use crate::harness::Req;
use crate::util::*;

/// Snapshot, change everything a tree can hold, restore: the live state is the snapshot
/// exactly.
pub fn snapshot_restore_exact(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("web");
    let m0 = image_volume(b, &v, fx.tier.image());
    let info = b.create_snapshot(&v, &snap("before")).unwrap();
    assert_eq!(
        (info.volume.as_str(), info.name.as_str()),
        ("web", "before")
    );

    let live = b.mount_volume(&v).unwrap();
    let expected = modify_image_tree(&live);
    let m1 = manifest(&live);
    assert_diff_has(&m0.diff_all(&m1), &expected);
    assert_same(
        &m0,
        &snap_manifest(b, &v, &snap("before")),
        "snapshot after live changes",
    );

    b.unmount_volume(&v).unwrap();
    b.restore_snapshot(&v, &snap("before")).unwrap();
    assert_same(&m0, &vol_manifest(b, &v), "live state after restore");
    assert_eq!(snapshot_names(b, &v), ["before"]);
    assert_same(
        &m0,
        &snap_manifest(b, &v, &snap("before")),
        "snapshot after restore",
    );
    // The restored live state is writable and its changes do not reach the snapshot.
    modify_small(&b.mount_volume(&v).unwrap(), "after");
    assert_same(
        &m0,
        &snap_manifest(b, &v, &snap("before")),
        "snapshot after writing",
    );
}

/// Every kind of file and attribute survives snapshot, clone and restore.
pub fn special_files_survive(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("special");
    let m0 = tree_volume(b, &v, 11);
    let alloc0 = allocated(&b.mount_volume(&v).unwrap().join("sparse"));
    b.create_snapshot(&v, &snap("s")).unwrap();
    assert_same(&m0, &snap_manifest(b, &v, &snap("s")), "snapshot");
    b.clone_volume(CloneSource::Snapshot(&v, &snap("s")), &vol("from-snap"))
        .unwrap();
    b.clone_volume(CloneSource::Volume(&v), &vol("from-live"))
        .unwrap();
    for c in ["from-snap", "from-live"] {
        let c = vol(c);
        assert_same(&m0, &vol_manifest(b, &c), &format!("clone {c}"));
        let alloc = allocated(&b.mount_volume(&c).unwrap().join("sparse"));
        assert!(
            alloc <= alloc0 + (1 << 20),
            "clone {c}: the sparse file takes {alloc} bytes (origin {alloc0}): holes filled"
        );
    }
    let live = b.mount_volume(&v).unwrap();
    std::fs::remove_dir_all(live.join("etc")).unwrap();
    std::fs::remove_file(live.join("dev/sock")).unwrap();
    b.unmount_volume(&v).unwrap();
    b.restore_snapshot(&v, &snap("s")).unwrap();
    assert_same(&m0, &vol_manifest(b, &v), "restored");
}

/// Clones, from a snapshot or from the live volume, share nothing visible with their
/// origin: writes on either side stay on that side.
pub fn clone_is_independent(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let (o, cs, cl) = (vol("origin"), vol("clone-snap"), vol("clone-live"));
    let s = snap("s1");
    let m0 = image_volume(b, &o, fx.tier.image());
    b.create_snapshot(&o, &s).unwrap();
    b.clone_volume(CloneSource::Snapshot(&o, &s), &cs).unwrap();
    b.clone_volume(CloneSource::Volume(&o), &cl).unwrap();
    assert_eq!(volume_names(b), ["clone-live", "clone-snap", "origin"]);
    assert_same(&m0, &vol_manifest(b, &cs), "clone of the snapshot");
    assert_same(&m0, &vol_manifest(b, &cl), "clone of the live volume");
    assert_eq!(
        snapshot_names(b, &cs),
        Vec::<String>::new(),
        "a clone has no snapshots"
    );

    // Origin changes: clones and snapshot keep their content.
    let op = b.mount_volume(&o).unwrap();
    modify_image_tree(&op);
    let mo = manifest(&op);
    assert_same(
        &m0,
        &vol_manifest(b, &cs),
        "snapshot clone after origin changed",
    );
    assert_same(
        &m0,
        &vol_manifest(b, &cl),
        "live clone after origin changed",
    );
    assert_same(
        &m0,
        &snap_manifest(b, &o, &s),
        "snapshot after origin changed",
    );

    // Each clone changes (in place, too): nothing else does.
    let csp = b.mount_volume(&cs).unwrap();
    modify_image_tree(&csp);
    let mcs = manifest(&csp);
    assert_same(
        &mo,
        &vol_manifest(b, &o),
        "origin after snapshot clone changed",
    );
    assert_same(
        &m0,
        &vol_manifest(b, &cl),
        "live clone after snapshot clone changed",
    );
    assert_same(
        &m0,
        &snap_manifest(b, &o, &s),
        "snapshot after clone changed",
    );
    let clp = b.mount_volume(&cl).unwrap();
    modify_small(&clp, "live-clone");
    let mcl = manifest(&clp);
    assert_same(&mo, &vol_manifest(b, &o), "origin after live clone changed");
    assert_same(
        &mcs,
        &vol_manifest(b, &cs),
        "snapshot clone after live clone changed",
    );

    // Clones outlive their snapshot and their origin.
    b.delete_snapshot(&o, &s).unwrap();
    b.unmount_volume(&o).unwrap();
    b.delete_volume(&o).unwrap();
    assert_same(
        &mcs,
        &vol_manifest(b, &cs),
        "snapshot clone after origin deleted",
    );
    assert_same(
        &mcl,
        &vol_manifest(b, &cl),
        "live clone after origin deleted",
    );
}

/// Restoring an older snapshot keeps the newer ones, whole, listed in creation order.
pub fn restore_older_keeps_newer(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("v");
    let mut ms = vec![image_volume(b, &v, fx.tier.image())];
    let mut infos = Vec::new();
    for (i, tag) in ["one", "two", "three"].iter().enumerate() {
        if i > 0 {
            let p = b.mount_volume(&v).unwrap();
            modify_small(&p, tag);
            ms.push(manifest(&p));
        }
        infos.push(
            b.create_snapshot(&v, &snap(&format!("s{}", i + 1)))
                .unwrap(),
        );
    }
    modify_small(&b.mount_volume(&v).unwrap(), "four");
    b.unmount_volume(&v).unwrap();

    if !b.info().capabilities.restore_any_snapshot {
        assert_err(
            b.restore_snapshot(&v, &snap("s1")),
            is_not_supported,
            "restore of an older snapshot without restore_any_snapshot",
        );
        return;
    }
    let check_all = |b: &dyn Backend, what: &str| {
        let listed = b.list_snapshots(&v).unwrap();
        assert_eq!(listed, infos, "{what}: list_snapshots");
        for w in listed.windows(2) {
            assert!(
                w[0].created_at < w[1].created_at,
                "{what}: created_at not increasing"
            );
        }
        for (i, m) in ms.iter().enumerate() {
            let s = snap(&format!("s{}", i + 1));
            assert_same(
                m,
                &snap_manifest(b, &v, &s),
                &format!("{what}: snapshot {s}"),
            );
        }
    };
    b.restore_snapshot(&v, &snap("s1")).unwrap();
    assert_same(&ms[0], &vol_manifest(b, &v), "live after restoring s1");
    b.unmount_volume(&v).unwrap();
    check_all(b, "after restoring s1");
    b.restore_snapshot(&v, &snap("s3")).unwrap();
    assert_same(&ms[2], &vol_manifest(b, &v), "live after restoring s3");
    b.unmount_volume(&v).unwrap();
    b.restore_snapshot(&v, &snap("s2")).unwrap();
    assert_same(&ms[1], &vol_manifest(b, &v), "live after restoring s2");
    b.unmount_volume(&v).unwrap();
    check_all(b, "after restoring s3 then s2");
    // The storage keeps the times, not this handle.
    check_all(fx.reopen(b).as_ref(), "through a fresh handle");
}

/// Nothing, not even root, can change a snapshot through its view.
pub fn snapshot_is_read_only(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("v");
    let m0 = tree_volume(b, &v, 21);
    b.create_snapshot(&v, &snap("ro")).unwrap();
    let live = b.mount_volume(&v).unwrap();
    let p = b.mount_snapshot(&v, &snap("ro")).unwrap();
    assert_ne!(p, live, "snapshot view is the live volume");

    let refused = |what: &str, r: std::io::Result<()>| match r {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EPERM)) => {}
        other => panic!("{what} in the snapshot view: expected EROFS/EPERM, got {other:?}"),
    };
    let file = p.join("etc/passwd");
    refused("create a file", std::fs::write(p.join("new"), b"x"));
    refused(
        "open for writing",
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .map(drop),
    );
    refused(
        "open for appending",
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .map(drop),
    );
    refused("mkdir", std::fs::create_dir(p.join("newdir")));
    refused("unlink", std::fs::remove_file(&file));
    refused("rmdir", std::fs::remove_dir(p.join("empty-dir")));
    refused("rename", std::fs::rename(&file, p.join("moved")));
    refused("link", std::fs::hard_link(&file, p.join("linked")));
    refused("symlink", std::os::unix::fs::symlink("x", p.join("sl")));
    refused(
        "chmod",
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o777)),
    );
    refused("chmod the root", {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777))
    });
    refused("chown", std::os::unix::fs::lchown(&file, Some(5), Some(5)));
    refused("setxattr", try_set_xattr(&file, "user.evil", b"1"));
    refused("utimes", {
        let f = std::fs::File::open(&file).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH)
    });
    refused("truncate", truncate(&file));
    b.unmount_snapshot(&v, &snap("ro")).unwrap();
    assert_same(
        &m0,
        &snap_manifest(b, &v, &snap("ro")),
        "snapshot after write attempts",
    );
}

fn truncate(p: &Path) -> std::io::Result<()> {
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())).unwrap();
    if unsafe { libc::truncate(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
