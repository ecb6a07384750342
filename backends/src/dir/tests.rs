//! Dir-driver specifics the conformance suite does not cover: pool sources (a foreign
//! directory is refused untouched, a loop file gets a reflink xfs), snapshot metadata
//! and leftovers of interrupted operations.

use std::path::Path;

use super::*;
use crate::testing::skip;
use crate::types::Bytes;

fn spec(state: &Path, source: PoolSource) -> PoolSpec {
    PoolSpec {
        name: "p".parse().unwrap(),
        source,
        state_dir: state.to_path_buf(),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn foreign_directory_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("precious"), b"user data").unwrap();
    let state = tmp.path().join("state");
    let b = DirBackend::new(spec(&state, PoolSource::Directory { path: dir.clone() }));
    let e = b.create_pool().unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "the directory was touched");
    assert!(!state.exists(), "state dir made for a refused pool");
    assert!(b.mount_pool().unwrap_err().is_not_found());
}

#[test]
fn device_source_is_not_supported() {
    let tmp = tempfile::tempdir().unwrap();
    let source = PoolSource::Device {
        path: "/dev/null".into(),
        force: false,
    };
    let b = DirBackend::new(spec(tmp.path(), source));
    assert!(matches!(
        b.create_pool(),
        Err(Error::NotSupported { driver: "dir", .. })
    ));
}

#[test]
fn listing_ignores_snapshots_without_valid_meta_and_mount_clears_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    let b = DirBackend::new(spec(tmp.path(), PoolSource::StateDir));
    assert!(b.create_pool().unwrap().is_created());
    assert_eq!(b.create_pool().unwrap(), CreateAction::Identity);
    let v: VolumeName = "v".parse().unwrap();
    b.create_volume(&v).unwrap();
    std::fs::write(b.mount_volume(&v).unwrap().join("f"), b"x").unwrap();
    let s1 = b.create_snapshot(&v, &"s1".parse().unwrap()).unwrap();
    let meta = std::fs::read_to_string(b.layout.snapshot(&v, &s1.name).join("meta.json")).unwrap();
    assert!(meta.starts_with("{\"created_at\":\""), "{meta}");
    // A snapshot directory with broken or missing meta is not a snapshot.
    let broken = b.layout.snapshots(&v).join("broken");
    std::fs::create_dir_all(broken.join("tree")).unwrap();
    std::fs::write(broken.join("meta.json"), b"{\"created_at\": 12").unwrap();
    std::fs::create_dir_all(b.layout.snapshots(&v).join("nometa/tree")).unwrap();
    let names: Vec<_> = b
        .list_snapshots(&v)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, std::slice::from_ref(&s1.name));
    assert_eq!(b.list_snapshots(&v).unwrap()[0].created_at, s1.created_at);
    // Leftovers in .tmp/ go at mount.
    std::fs::create_dir_all(b.layout.tmp().join("snapshot.1.1/tree/x")).unwrap();
    b.mount_pool().unwrap();
    assert_eq!(std::fs::read_dir(b.layout.tmp()).unwrap().count(), 0);
    let mode = std::fs::metadata(b.layout.snapshots_root())
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert!(matches!(b.delete_pool(), Err(Error::Busy { .. })));
    b.delete_volume(&v).unwrap();
    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Deleted);
    assert!(!tmp.path().exists());
    assert_eq!(b.delete_pool().unwrap(), DeleteAction::Identity);
}

#[test]
fn loop_dir_loop_file_pool_reflinks_and_survives_remount() {
    if !is_root() {
        return skip("loop", "not root");
    }
    if crate::cmd::MKFS_XFS.resolve().is_err() || !Path::new("/dev/loop-control").exists() {
        return skip(
            "loop",
            "no loop devices or mkfs.xfs (apt-get install xfsprogs)",
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("cairn-test-")
        .tempdir()
        .unwrap();
    let img = tmp.path().join("pool.img");
    let source = PoolSource::LoopFile {
        path: img.clone(),
        size: Bytes(512 << 20),
    };
    let b = DirBackend::new(spec(&tmp.path().join("state"), source.clone()));
    struct Cleanup<'a>(&'a DirBackend);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.unmount_pool();
        }
    }
    let _cleanup = Cleanup(&b);
    assert!(b.create_pool().unwrap().is_created());
    assert!(
        b.info().capabilities.cow_clone,
        "xfs with reflink=1 should reflink"
    );
    let v: VolumeName = "v".parse().unwrap();
    b.create_volume(&v).unwrap();
    std::fs::write(b.mount_volume(&v).unwrap().join("f"), vec![3u8; 1 << 20]).unwrap();
    let s = b.create_snapshot(&v, &"s".parse().unwrap()).unwrap();
    b.unmount_pool().unwrap();
    assert!(b.list_volumes().unwrap_err().is_not_found());
    // A new handle, as after a reboot.
    let b2 = DirBackend::new(spec(&tmp.path().join("state"), source));
    let _cleanup2 = Cleanup(&b2);
    b2.mount_pool().unwrap();
    assert_eq!(b2.create_pool().unwrap(), CreateAction::Identity);
    assert_eq!(b2.list_snapshots(&v).unwrap()[0].created_at, s.created_at);
    let view = b2.mount_snapshot(&v, &s.name).unwrap();
    assert_eq!(std::fs::read(view.join("f")).unwrap(), vec![3u8; 1 << 20]);
    b2.delete_volume(&v).unwrap();
    assert_eq!(b2.delete_pool().unwrap(), DeleteAction::Deleted);
    assert!(!img.exists());
}
