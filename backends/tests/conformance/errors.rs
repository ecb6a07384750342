//! Bad input and a full filesystem: typed errors, and nothing changed.

use std::path::Path;

use cairn_backends::cmd::ZFS;
use cairn_backends::mounts;
use cairn_backends::{CloneSource, PoolName, SnapshotName, VolumeName};

use crate::fixture::{Fixture, Tier};
use crate::util::*;

/// Invalid names never parse; missing objects are `NotFound`, taken names
/// `AlreadyExists`, and a refused operation changes nothing.
pub fn bad_input_is_refused(tier: Tier, test: &str) {
    for bad in ["a/b", "", ".", "..", "a@b", "-x", "a b", "a\nb"] {
        assert!(bad.parse::<VolumeName>().is_err(), "volume name {bad:?}");
        assert!(
            bad.parse::<SnapshotName>().is_err(),
            "snapshot name {bad:?}"
        );
        assert!(bad.parse::<PoolName>().is_err(), "pool name {bad:?}");
    }
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let (v, w, missing) = (vol("v"), vol("w"), vol("missing"));
    let (s, nosnap) = (snap("s"), snap("nosnap"));
    let mv = tree_volume(b, &v, 41);
    b.create_snapshot(&v, &s).unwrap();
    b.create_volume(&w).unwrap();
    let mw = vol_manifest(b, &w);
    b.unmount_volume(&v).unwrap();
    b.unmount_volume(&w).unwrap();

    assert_err(b.mount_volume(&missing), is_not_found, "mount_volume");
    assert_err(b.list_snapshots(&missing), is_not_found, "list_snapshots");
    assert_err(
        b.create_snapshot(&missing, &s),
        is_not_found,
        "create_snapshot",
    );
    assert_err(
        b.rename_volume(&missing, &vol("x")),
        is_not_found,
        "rename_volume",
    );
    assert_err(
        b.clone_volume(CloneSource::Volume(&missing), &vol("x")),
        is_not_found,
        "clone of a missing volume",
    );
    assert_err(
        b.clone_volume(CloneSource::Snapshot(&v, &nosnap), &vol("x")),
        is_not_found,
        "clone of a missing snapshot",
    );
    assert_err(
        b.restore_snapshot(&v, &nosnap),
        is_not_found,
        "restore_snapshot",
    );
    assert_err(
        b.mount_snapshot(&v, &nosnap),
        is_not_found,
        "mount_snapshot",
    );
    assert_err(
        b.mount_snapshot(&missing, &s),
        is_not_found,
        "mount_snapshot",
    );
    assert_err(
        b.rename_snapshot(&v, &nosnap, &snap("x")),
        is_not_found,
        "rename_snapshot",
    );
    assert_err(b.volume_usage(&missing), is_not_found, "volume_usage");
    // A snapshot of v is not a snapshot of w.
    assert_err(
        b.restore_snapshot(&w, &s),
        is_not_found,
        "restore v's snapshot into w",
    );
    assert_err(
        b.clone_volume(CloneSource::Snapshot(&w, &s), &vol("x")),
        is_not_found,
        "clone w@s",
    );

    assert_err(
        b.create_snapshot(&v, &s),
        is_exists,
        "create_snapshot twice",
    );
    assert_err(
        b.clone_volume(CloneSource::Volume(&v), &w),
        is_exists,
        "clone onto an existing volume",
    );
    assert_err(
        b.clone_volume(CloneSource::Snapshot(&v, &s), &w),
        is_exists,
        "clone onto an existing volume",
    );

    assert_eq!(
        volume_names(b),
        ["v", "w"],
        "a refused operation made a volume"
    );
    assert_eq!(snapshot_names(b, &v), ["s"]);
    assert_eq!(snapshot_names(b, &w), Vec::<String>::new());
    assert_same(&mv, &vol_manifest(b, &v), "v after refused operations");
    assert_same(
        &mv,
        &snap_manifest(b, &v, &s),
        "v@s after refused operations",
    );
    assert_same(&mw, &vol_manifest(b, &w), "w after refused operations");
}

/// On a nearly full pool a clone or snapshot that does not fit fails with `NoSpace`,
/// leaving the origin as it was and no half object; one that fits (copy-on-write) is
/// complete. After space is freed the same operation succeeds.
pub fn no_space_is_clean(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[]) else {
        return;
    };
    let b = fx.small_pool("small");
    let b = b.as_ref();
    let cow = b.info().capabilities.cow_clone;
    let (o, filler) = (vol("origin"), vol("filler"));
    b.create_volume(&o).unwrap();
    let op = b.mount_volume(&o).unwrap();
    for i in 0..6 {
        write_noise(&op.join(format!("data{i}")), 4 << 20, 100 + i);
    }
    synthetic_small(&op);
    let m0 = manifest(&op);
    b.create_volume(&filler).unwrap();
    let fp = b.mount_volume(&filler).unwrap();
    let reservation = fill_pool(&fp, 8 << 20);
    sync();
    let free = fs_avail(&fp);
    assert!(free < 16 << 20, "filler left {free} bytes free");

    let c = vol("copy");
    match b.clone_volume(CloneSource::Volume(&o), &c) {
        Err(e) => {
            assert!(e.is_no_space(), "clone on a full pool: not NoSpace: {e}");
            assert_eq!(volume_names(b), ["filler", "origin"], "half clone listed");
        }
        Ok(()) => {
            if !cow {
                eprintln!("note: clone fit in {free} bytes though cow_clone is false");
            }
            assert_same(&m0, &vol_manifest(b, &c), "clone on a nearly full pool");
            b.unmount_volume(&c).unwrap();
            b.delete_volume(&c).unwrap();
        }
    }
    assert_same(
        &m0,
        &vol_manifest(b, &o),
        "origin after a clone on a full pool",
    );
    let s = snap("s");
    match b.create_snapshot(&o, &s) {
        Err(e) => {
            assert!(e.is_no_space(), "snapshot on a full pool: not NoSpace: {e}");
            assert_eq!(
                snapshot_names(b, &o),
                Vec::<String>::new(),
                "half snapshot listed"
            );
        }
        Ok(_) => {
            assert_same(
                &m0,
                &snap_manifest(b, &o, &s),
                "snapshot on a nearly full pool",
            );
            b.delete_snapshot(&o, &s).unwrap();
        }
    }
    assert_same(
        &m0,
        &vol_manifest(b, &o),
        "origin after a snapshot on a full pool",
    );

    // Space back: the pool works again, nothing left over in the way.
    b.unmount_volume(&filler).unwrap();
    b.delete_volume(&filler).unwrap();
    drop(reservation);
    sync();
    b.clone_volume(CloneSource::Volume(&o), &c)
        .unwrap_or_else(|e| panic!("clone after freeing space: {e}"));
    assert_same(&m0, &vol_manifest(b, &c), "clone after freeing space");
    b.unmount_volume(&c).unwrap();
    b.delete_volume(&c).unwrap(); // the small pool holds two copies, not three
    sync();
    b.create_snapshot(&o, &s)
        .unwrap_or_else(|e| panic!("snapshot after freeing space: {e}"));
    assert_same(
        &m0,
        &snap_manifest(b, &o, &s),
        "snapshot after freeing space",
    );
}

/// A few small entries beside the data, so a half copy has something to leave behind.
fn synthetic_small(r: &std::path::Path) {
    for d in 0..20 {
        let dir = r.join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..10 {
            std::fs::write(dir.join(format!("f{f}")), noise(3000, d * 100 + f)).unwrap();
        }
    }
}

/// Writes noise over `len` bytes at `at`; false at ENOSPC.
fn write_over(f: &std::fs::File, at: u64, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let chunk = noise(1 << 20, at);
    let mut off = 0;
    while off < len {
        let n = (len - off).min(chunk.len() as u64) as usize;
        if f.write_all_at(&chunk[..n], at + off).is_err() {
            return false;
        }
        off += n as u64;
    }
    true
}

/// Leaves about `leave` bytes free in the pool that holds `dir`, a volume's mount point.
/// On ZFS, whose `fallocate` reserves nothing and whose writes near a full pool crawl
/// (minutes under qemu TCG), a dataset beside cairn's, `<zpool>/cairn-test-filler`,
/// reserves the space (`zfs create -o reservation=`); dropping the returned guard
/// destroys it, so space comes back. Elsewhere a file `filler` in `dir` takes it.
fn fill_pool(dir: &Path, leave: u64) -> Option<Reservation> {
    if !mounts::fs_type_of(dir).unwrap().is_zfs() {
        fill(&dir.join("filler"), leave);
        return None;
    }
    let source = mounts::mount_at(dir)
        .unwrap()
        .unwrap_or_else(|| panic!("no mount at {}", dir.display()))
        .source;
    let zpool = source.split('/').next().unwrap();
    assert!(!zpool.is_empty(), "no zpool behind {}", dir.display());
    let ds = format!("{zpool}/cairn-test-filler");
    let want = fs_avail(dir).saturating_sub(leave);
    ZFS.run(&[
        "create",
        "-o",
        &format!("reservation={want}"),
        "-o",
        "mountpoint=none",
        &ds,
    ])
    .unwrap_or_else(|e| panic!("reserve space in {zpool}: {e}"));
    Some(Reservation(ds))
}

/// The ZFS dataset [`fill_pool`] made to reserve space; destroyed when dropped (on a
/// failing test too, before the fixture's pool goes).
struct Reservation(String);

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Err(e) = ZFS.run(&["destroy", self.0.as_str()]) {
            if std::thread::panicking() {
                eprintln!("cleanup: zfs destroy {}: {e}", self.0);
            } else {
                panic!("zfs destroy {}: {e}", self.0);
            }
        }
    }
}

/// Allocates a file until about `leave` bytes are free on its filesystem.
fn fill(p: &std::path::Path, leave: u64) {
    let f = std::fs::File::create(p).unwrap();
    let mut size = 0u64;
    // Where a fallocate does not lower the free space statvfs reports (btrfs here; ZFS's
    // reserves nothing, but fill_pool reserves there instead), write instead.
    let mut write_only = false;
    loop {
        let avail = fs_avail(p.parent().unwrap());
        if avail <= leave + (1 << 20) {
            break;
        }
        let step = (avail - leave).min(256 << 20);
        let step = step - step % 4096;
        if write_only {
            if !write_over(&f, size, step.min(32 << 20)) {
                break;
            }
            size += step.min(32 << 20);
            f.sync_all().unwrap();
            continue;
        }
        let r = nix::fcntl::fallocate(
            &f,
            nix::fcntl::FallocateFlags::empty(),
            size as i64,
            step as i64,
        );
        match r {
            Ok(()) => {
                if fs_avail(p.parent().unwrap()) + step / 2 > avail {
                    write_only = true;
                    f.set_len(size).unwrap();
                    continue;
                }
                size += step;
            }
            Err(nix::errno::Errno::ENOSPC) if step > (4 << 20) => {
                // Metadata overhead: ask for less.
                let half = step / 2;
                let half = half - half % 4096;
                if nix::fcntl::fallocate(
                    &f,
                    nix::fcntl::FallocateFlags::empty(),
                    size as i64,
                    half as i64,
                )
                .is_ok()
                {
                    size += half;
                } else {
                    break;
                }
            }
            Err(e) => {
                eprintln!("fill {}: {e} at {size} bytes", p.display());
                break;
            }
        }
        f.sync_all().unwrap();
    }
}
