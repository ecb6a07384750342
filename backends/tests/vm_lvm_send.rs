//! The LVM driver's native send beyond the conformance suite's round trip:
//! - issue 3's figure: the bytes an incremental send moves for a 1% change of a 1 GiB
//!   volume, printed, and asserted proportional to the change (under 3% of the volume,
//!   and at least the change itself). Bytes, not speed, so a test may assert it;
//! - receive failures (corrupt or truncated stream, a base of the right name that is
//!   another snapshot) leave the previous state as it was and nothing half-made, and a
//!   retry succeeds.
//!
//! Runs in the test VM (`vm-tests`, scenario `lvm send-bytes`); elsewhere it needs root,
//! loop devices, lvm2, thin-provisioning-tools and dm-thin-pool, and skips without them.

use std::io::Write;
use std::path::Path;

use cairn_backends::{open, Backend, Bytes, DriverKind, PoolSource, PoolSpec};

/// Counts what is written to it.
#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Deletes the pool (and so its loop file) even when the test panics.
struct Cleanup(Box<dyn Backend>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let b = &self.0;
        if let Ok(vols) = b.list_volumes() {
            for v in vols {
                if let Err(e) = b.delete_volume(&v.name) {
                    eprintln!("cleanup: delete_volume {}: {e}", v.name);
                }
            }
        }
        if let Err(e) = b.delete_pool() {
            eprintln!("cleanup: delete_pool: {e}");
        }
    }
}

/// Writes `len` bytes of incompressible noise (xorshift) at `offset` of `path`.
fn noise(path: &Path, offset: u64, len: usize, seed: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0;
    while done < len {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = (len - done).min(buf.len());
        f.write_all_at(&buf[..n], offset + done as u64)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        done += n;
    }
    f.sync_all().unwrap();
}

/// True when the running test may run; prints SKIP otherwise. In the test VM
/// (`CAIRN_VM=1` with `vm` in `CAIRN_REQUIRE`) a missing requirement fails the test; on
/// the host `vm` means "run vm-tests", and `lvm` in `CAIRN_REQUIRE` makes it mandatory.
fn lvm_present() -> bool {
    use cairn_backends::testing;
    let missing = testing::missing_root()
        .or_else(testing::missing_loop)
        .or_else(testing::missing_lvm_thin);
    testing::require_vm_tier(&testing::current_test(), "lvm", missing)
}

/// A created LVM pool on a loop file of `size` in `dir`, deleted on drop.
fn pool(dir: &Path, label: &str, size: u64) -> Cleanup {
    let spec = PoolSpec {
        name: format!("cairn-test-{label}").parse().unwrap(),
        source: PoolSource::LoopFile {
            path: dir.join(format!("{label}.img")),
            size: Bytes(size),
        },
        state_dir: dir.join(format!("{label}-state")),
    };
    let b = open(DriverKind::LvmThin, spec).unwrap();
    b.create_pool().unwrap();
    Cleanup(b)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cairn-test-")
        .tempdir()
        .unwrap()
}

#[test]
fn incremental_send_moves_the_change() {
    if !lvm_present() {
        return;
    }
    let tmp = temp_dir();
    // The thin pool takes 90% of the VG and a volume is as large as the pool: ~1 GiB.
    let guard = pool(tmp.path(), "sendbytes", 1140 << 20);
    let b = guard.0.as_ref();
    let v = "web".parse().unwrap();
    let (s1, s2) = ("s1".parse().unwrap(), "s2".parse().unwrap());
    b.create_volume(&v).unwrap();
    let live = b.mount_volume(&v).unwrap();
    let volume_size = b.volume_usage(&v).unwrap().total;
    // A volume with 256 MiB of data, snapshotted.
    let data = live.join("data.bin");
    noise(&data, 0, 256 << 20, 1);
    b.create_snapshot(&v, &s1).unwrap();

    // 1% of the volume: half overwritten in place in 1 MiB pieces spread over the file,
    // half a new file.
    let change = (volume_size / 100) as usize;
    let pieces = change / 2 / (1 << 20);
    for i in 0..pieces {
        let offset = (i as u64 * 7919 % 256) << 20;
        noise(&data, offset, 1 << 20, 100 + i as u64);
    }
    let rest = change - pieces * (1 << 20);
    noise(&live.join("new.bin"), 0, rest, 7);
    b.create_snapshot(&v, &s2).unwrap();

    let mut full = Counter::default();
    let stats = b.send(&v, &s1, None, &mut full).unwrap();
    assert_eq!(stats.bytes, full.0);
    let mut inc = Counter::default();
    let stats = b.send(&v, &s2, Some(&s1), &mut inc).unwrap();
    assert_eq!(stats.bytes, inc.0);

    let pct = |n: u64| n as f64 * 100.0 / volume_size as f64;
    println!(
        "lvm send: volume {volume_size} bytes; full stream of 256 MiB of data: {} bytes ({:.1}%); \
         incremental stream for a change of {change} bytes ({:.2}%): {} bytes ({:.2}% of the volume)",
        full.0,
        pct(full.0),
        pct(change as u64),
        inc.0,
        pct(inc.0)
    );
    assert!(
        volume_size > 900 << 20,
        "the volume is {volume_size} bytes, not about 1 GiB"
    );
    assert!(
        inc.0 >= change as u64,
        "the incremental stream ({} bytes) is smaller than the change ({change} bytes)",
        inc.0
    );
    assert!(
        pct(inc.0) < 3.0,
        "the incremental stream is {} bytes, {:.2}% of the volume (target < 3%)",
        inc.0,
        pct(inc.0)
    );
    assert!(
        full.0 >= 256 << 20 && pct(full.0) < 40.0,
        "the full stream ({} bytes) should carry the 256 MiB written and not the unprovisioned rest",
        full.0
    );
    b.unmount_volume(&v).unwrap();
}

fn snapshot_names(b: &dyn Backend, v: &cairn_backends::VolumeName) -> Vec<String> {
    b.list_snapshots(v)
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

/// Every LV, hidden ones included, as `vg/lv`, of the VGs whose name contains `label`:
/// those of the pool `pool(_, label, _)` made (its VG is `cairn_<pool name>_<hash>`), not
/// those of a test running beside this one.
fn pool_lvs(label: &str) -> Vec<String> {
    let mut lvs: Vec<String> = cairn_backends::cmd::LVM
        .run(&["lvs", "-a", "--noheadings", "-o", "vg_name,lv_name"])
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (vg, lv) = (f.next()?, f.next()?);
            vg.contains(label).then(|| format!("{vg}/{lv}"))
        })
        .collect();
    lvs.sort();
    lvs
}

fn read(b: &dyn Backend, v: &cairn_backends::VolumeName, s: &str) -> Vec<u8> {
    let s = s.parse().unwrap();
    let at = b.mount_snapshot(v, &s).unwrap();
    let data = std::fs::read(at.join("data.bin")).unwrap();
    b.unmount_snapshot(v, &s).unwrap();
    data
}

#[test]
fn failed_receive_leaves_the_previous_state() {
    if !lvm_present() {
        return;
    }
    let tmp = temp_dir();
    let guard = pool(tmp.path(), "recvfail", 600 << 20);
    let b = guard.0.as_ref();
    let (web, copy, other) = (
        "web".parse().unwrap(),
        "copy".parse().unwrap(),
        "other".parse().unwrap(),
    );
    let (s1, s2) = ("s1".parse().unwrap(), "s2".parse().unwrap());
    b.create_volume(&web).unwrap();
    let live = b.mount_volume(&web).unwrap();
    noise(&live.join("data.bin"), 0, 8 << 20, 3);
    b.create_snapshot(&web, &s1).unwrap();
    noise(&live.join("data.bin"), 2 << 20, 1 << 20, 4);
    b.create_snapshot(&web, &s2).unwrap();
    b.unmount_volume(&web).unwrap();
    let (mut full, mut inc) = (Vec::new(), Vec::new());
    b.send(&web, &s1, None, &mut full).unwrap();
    b.send(&web, &s2, Some(&s1), &mut inc).unwrap();

    let first = b.receive(&copy, &s1, &mut full.as_slice()).unwrap();
    assert_eq!(snapshot_names(b, &copy), ["s1"]);
    // A retry of a receive that succeeded returns the snapshot and changes nothing.
    let again = b.receive(&copy, &s1, &mut full.as_slice()).unwrap();
    assert_eq!(first, again);

    // For the wrong base below: a snapshot called s1 that is not the sent s1.
    b.create_volume(&other).unwrap();
    b.create_snapshot(&other, &s1).unwrap();
    // Every LV of the pool before the failing receives, which must leave it as it is.
    let lvs_before = pool_lvs("recvfail");
    // At least the thin pool, web, other and copy's s1, web's s1 and s2 and other's s1.
    assert!(
        lvs_before.len() >= 7,
        "the pool's LVs not found: {lvs_before:?}"
    );

    let mut corrupt = inc.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    let truncated = &inc[..inc.len() - 100];
    for (what, stream) in [("corrupt", corrupt.as_slice()), ("truncated", truncated)] {
        let r = b.receive(&copy, &s2, &mut &stream[..]);
        assert!(r.is_err(), "{what} stream received: {r:?}");
        assert_eq!(snapshot_names(b, &copy), ["s1"], "after the {what} stream");
        assert_eq!(
            pool_lvs("recvfail"),
            lvs_before,
            "the {what} stream changed the pool's LVs"
        );
    }

    // A snapshot called s1 that is not the sent s1 is not the base.
    let e = b.receive(&other, &s2, &mut inc.as_slice()).unwrap_err();
    assert!(e.to_string().contains("another one"), "{e}");
    assert_eq!(snapshot_names(b, &other), ["s1"]);
    assert_eq!(
        pool_lvs("recvfail"),
        lvs_before,
        "the receive onto the wrong base changed the pool's LVs"
    );

    // The retry with the intact stream succeeds, and carries the change.
    b.receive(&copy, &s2, &mut inc.as_slice()).unwrap();
    assert_eq!(snapshot_names(b, &copy), ["s1", "s2"]);
    assert_eq!(read(b, &copy, "s2"), read(b, &web, "s2"));
    assert_eq!(read(b, &copy, "s1"), read(b, &web, "s1"));
    assert_ne!(read(b, &copy, "s1"), read(b, &copy, "s2"));
    let names: Vec<String> = b
        .list_volumes()
        .unwrap()
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(names, ["copy", "other", "web"]);
}
