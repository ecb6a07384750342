//! Speed of the LVM thin and ZFS drivers against the raw commands (issue 3, "Speed"):
//! driver `create_snapshot` and `clone_volume` (from a snapshot) side by side with the
//! `lvcreate`/`lvchange` or `zfs snapshot`/`zfs clone` calls that do the same thing, on the
//! same pool and the same volume, in one run. Prints a table of medians and ratios
//! (target <= 1.5x); a missed target is reported, not failed.
//!
//! Runs in the test VM (`CAIRN_VM_SCENARIOS=vm-tests/scenarios-bench.list vm-tests/run`);
//! elsewhere `cargo bench -p cairn-backends --bench vm_storage` as root, where each driver
//! whose kernel support or tools are missing prints `SKIP <driver>: <why>`.
//! `CAIRN_BENCH_ROUNDS` sets the rounds per case (default 5).
//!
//! Per driver: a pool on a 2 GiB loop file (LVM) or file vdev (ZFS) in a temp dir, one
//! volume filled from a subset of the test image (or synthetic files without it) and kept
//! mounted, as a running container's would be, and one driver snapshot `base` as the
//! clones' source. Each round times the driver call and the raw commands once each
//! (alternating which goes first), and removes what they made, untimed, so every timed
//! call sees the same pool. Everything made is removed at the end, also on a panic.

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_backends::cmd::{Tool, LVM, ZFS};
use cairn_backends::testing;
use cairn_backends::{
    open, Backend, Bytes, CloneSource, DriverKind, PoolSource, PoolSpec, SnapshotName, VolumeName,
};

const TARGET: f64 = 1.5;

struct Row {
    case: String,
    cairn: Duration,
    raw: Duration,
    raw_what: String,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test discovery: nothing to list
    }
    let rounds: usize = std::env::var("CAIRN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    // CAIRN_LOG=debug logs every command the driver and the bench run, with its duration.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .try_init();
    }
    println!("cairn vm storage bench: driver vs raw commands, {rounds} rounds per case, medians");
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for driver in [DriverKind::LvmThin, DriverKind::Zfs] {
        let name = label(driver);
        if !present(driver) {
            continue;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bench_driver(driver, rounds)
        }));
        match r {
            Ok(mut r) => rows.append(&mut r),
            Err(_) => failed.push(name),
        }
    }
    print_table(&rows);
    if !failed.is_empty() {
        eprintln!("the bench failed for: {}", failed.join(", "));
        std::process::exit(1);
    }
}

fn label(driver: DriverKind) -> &'static str {
    match driver {
        DriverKind::LvmThin => "lvm",
        DriverKind::Zfs => "zfs",
        _ => driver.as_str(),
    }
}

/// True when `driver` can run here; prints `SKIP <driver>: <why>` otherwise. In the test
/// VM (`CAIRN_VM=1`, `vm` in `CAIRN_REQUIRE`) a missing requirement panics instead, and
/// on the host `lvm` or `zfs` in `CAIRN_REQUIRE` does (`testing::require_vm_tier`).
fn present(driver: DriverKind) -> bool {
    let name = label(driver);
    testing::require_vm_tier(name, name, missing(driver))
}

fn missing(driver: DriverKind) -> Option<String> {
    testing::missing_root().or_else(|| match driver {
        DriverKind::LvmThin => testing::missing_loop().or_else(testing::missing_lvm_thin),
        DriverKind::Zfs => testing::missing_zfs(),
        _ => Some("not a driver of this bench".to_string()),
    })
}

/// The pool, its temp dir, and the undo commands of the raw objects still present; on
/// drop (also during a panic) removes the raw objects, the volumes and the pool.
struct Bench {
    backend: Box<dyn Backend>,
    tmp: Option<tempfile::TempDir>,
    undo: RefCell<Vec<(Tool, Vec<String>)>>,
}

impl Bench {
    /// Runs a raw command; panics with its error.
    fn raw(&self, tool: Tool, args: &[String]) {
        if let Err(e) = tool.run(args) {
            panic!("{} {}: {e}", tool.name, args.join(" "));
        }
    }

    /// Registers how to remove a raw object before it is made.
    fn will_remove(&self, tool: Tool, args: Vec<String>) {
        self.undo.borrow_mut().push((tool, args));
    }

    /// Removes the raw objects registered last, newest first, `n` of them.
    fn remove_raw(&self, n: usize) {
        for _ in 0..n {
            let (tool, args) = self.undo.borrow_mut().pop().expect("an undo entry");
            self.raw(tool, &args);
        }
    }

    fn cleanup(&mut self) {
        for (tool, args) in self.undo.borrow_mut().drain(..).rev() {
            if let Err(e) = tool.run(&args) {
                eprintln!("cleanup: {} {}: {e}", tool.name, args.join(" "));
            }
        }
        let b = &self.backend;
        let mut ok = true;
        if let Ok(mut vols) = b.list_volumes() {
            // Clones before the volume their origin snapshot belongs to.
            vols.sort_by_key(|v| v.name.as_str() == "data");
            for v in vols {
                if let Err(e) = b.delete_volume(&v.name) {
                    eprintln!("cleanup: delete_volume {}: {e}", v.name);
                    ok = false;
                }
            }
        }
        if let Err(e) = b.delete_pool() {
            eprintln!("cleanup: delete_pool: {e}");
            ok = false;
        }
        if !ok {
            // Something may still be mounted or attached under it: do not descend into it.
            if let Some(t) = self.tmp.take() {
                eprintln!("cleanup: left {} behind", t.keep().display());
            }
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        // Never panic here: a panic while unwinding aborts.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.cleanup()));
        if r.is_err() {
            eprintln!("cleanup panicked");
            if let Some(t) = self.tmp.take() {
                let _ = t.keep();
            }
        }
    }
}

fn vol(s: &str) -> VolumeName {
    s.parse().unwrap()
}

fn snap(s: &str) -> SnapshotName {
    s.parse().unwrap()
}

fn s(v: &str) -> String {
    v.to_string()
}

fn bench_driver(driver: DriverKind, rounds: usize) -> Vec<Row> {
    let name = label(driver);
    let tmp = tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir()
        .expect("temp dir");
    let spec = PoolSpec {
        name: format!("cairn-bench-{name}").parse().unwrap(),
        source: PoolSource::LoopFile {
            path: tmp.path().join("pool.img"),
            size: Bytes(2 << 30),
        },
        state_dir: tmp.path().join("state"),
    };
    let backend = open(driver, spec).expect("open driver");
    // The guard exists before the pool, so a failing create_pool is cleaned up too.
    let bench = Bench {
        backend,
        tmp: Some(tmp),
        undo: RefCell::new(Vec::new()),
    };
    let b = bench.backend.as_ref();
    let t = Instant::now();
    b.create_pool().expect("create_pool");
    let data = vol("data");
    b.create_volume(&data).expect("create_volume");
    let at = b.mount_volume(&data).expect("mount_volume");
    let filled = fill(&at);
    nix::unistd::sync();
    println!(
        "{name}: pool, volume and {filled} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let source = cairn_backends::mounts::mount_at(&at)
        .expect("mountinfo")
        .expect("the volume is mounted");
    match driver {
        DriverKind::LvmThin => bench_lvm(&bench, &at, rounds),
        _ => bench_zfs(&bench, &source.source, rounds),
    }
}

/// Unpacks the image subset the vm conformance tiers use (`testing::IMAGE_SUBSET`:
/// under TCG the whole image costs minutes to unpack) into `dir`, or writes 400 files of 32 KiB without an image;
/// says which.
fn fill(dir: &Path) -> String {
    let image = testing::image_path();
    if image.is_file() {
        testing::extract_image(dir, testing::IMAGE_SUBSET);
        return format!("a 14 MB subset of {}", image.display());
    }
    let d = dir.join("files");
    std::fs::create_dir_all(&d).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 32 << 10];
    for i in 0..400 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        std::fs::write(d.join(format!("f{i:03}")), &buf).unwrap();
    }
    "400 files of 32 KiB (no test image)".to_string()
}

/// Times `driver` and `raw` once per round, alternating which goes first, running
/// `reset(round)` (untimed) after both; returns the two medians.
fn side_by_side(
    rounds: usize,
    mut driver: impl FnMut(usize),
    mut raw: impl FnMut(usize),
    mut reset: impl FnMut(usize),
) -> (Duration, Duration) {
    let (mut d, mut r) = (Vec::new(), Vec::new());
    let timed = |f: &mut dyn FnMut(usize), i: usize| {
        nix::unistd::sync();
        let t = Instant::now();
        f(i);
        t.elapsed()
    };
    for i in 0..rounds {
        if i % 2 == 0 {
            d.push(timed(&mut driver, i));
            r.push(timed(&mut raw, i));
        } else {
            r.push(timed(&mut raw, i));
            d.push(timed(&mut driver, i));
        }
        reset(i);
    }
    let show = |v: &[Duration]| {
        v.iter()
            .map(|x| format!("{:.0}", x.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!("  rounds (ms): cairn {} | raw {}", show(&d), show(&r));
    (median(d), median(r))
}

/// The snapshot case: the driver's `create_snapshot` of the volume `data` (`s<i>`)
/// against `raw`, which registers what it makes with [`Bench::will_remove`]; each round's
/// snapshots are removed, untimed, before the next.
fn snapshot_case(
    bench: &Bench,
    rounds: usize,
    case: &str,
    raw_what: &str,
    raw: impl FnMut(usize),
) -> Row {
    let b = bench.backend.as_ref();
    let data = vol("data");
    let (cairn, raw) = side_by_side(
        rounds,
        |i| {
            b.create_snapshot(&data, &snap(&format!("s{i}")))
                .expect("create_snapshot");
        },
        raw,
        |i| {
            bench.remove_raw(1);
            b.delete_snapshot(&data, &snap(&format!("s{i}")))
                .expect("delete_snapshot");
        },
    );
    Row {
        case: case.into(),
        cairn,
        raw,
        raw_what: raw_what.into(),
    }
}

/// The clone case: the driver's `clone_volume` of `data`'s snapshot `base` (`clone<i>`)
/// against `raw`, which registers what it makes with [`Bench::will_remove`]; each round's
/// clones are removed, untimed, before the next.
fn clone_case(
    bench: &Bench,
    rounds: usize,
    base: &SnapshotName,
    case: &str,
    raw_what: &str,
    raw: impl FnMut(usize),
) -> Row {
    let b = bench.backend.as_ref();
    let data = vol("data");
    let (cairn, raw) = side_by_side(
        rounds,
        |i| {
            b.clone_volume(
                CloneSource::Snapshot(&data, base),
                &vol(&format!("clone{i}")),
            )
            .expect("clone_volume");
        },
        raw,
        |i| {
            bench.remove_raw(1);
            b.delete_volume(&vol(&format!("clone{i}")))
                .expect("delete_volume");
        },
    );
    Row {
        case: case.into(),
        cairn,
        raw,
        raw_what: raw_what.into(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `vg/lv` names of the LVs of the VG that holds the device mounted at `at`, and that
/// `vg/lv` itself.
fn lvm_names(at: &Path) -> (String, String) {
    let entry = cairn_backends::mounts::mount_at(at)
        .expect("mountinfo")
        .expect("the volume is mounted");
    let rdev = std::fs::metadata(&entry.source)
        .unwrap_or_else(|e| panic!("stat {}: {e}", entry.source))
        .rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let out = LVM
        .run(&[
            "lvs",
            "--noheadings",
            "--separator",
            ",",
            "-o",
            "vg_name,lv_name,lv_kernel_major,lv_kernel_minor",
        ])
        .expect("lvs");
    out.lines()
        .map(|l| l.trim().split(',').collect::<Vec<_>>())
        .find(|f| {
            f.len() == 4 && f[2].trim().parse() == Ok(major) && f[3].trim().parse() == Ok(minor)
        })
        .map(|f| (f[0].to_string(), format!("{}/{}", f[0], f[1])))
        .unwrap_or_else(|| panic!("no LV is {major}:{minor} ({})", entry.source))
}

fn lv_names(vg: &str) -> Vec<String> {
    LVM.run(&["lvs", "--noheadings", "-o", "lv_name", vg])
        .expect("lvs")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn bench_lvm(bench: &Bench, at: &Path, rounds: usize) -> Vec<Row> {
    let b = bench.backend.as_ref();
    let data = vol("data");
    let (vg, origin) = lvm_names(at);
    let mut rows = Vec::new();

    // Snapshot: the driver's lvcreate, without its tags.
    eprintln!("lvm snapshot");
    rows.push(snapshot_case(
        bench,
        rounds,
        "lvm snapshot",
        "lvcreate -s -n N --setactivationskip y -p r VG/LV",
        |i| {
            let lv = format!("raw-s{i}");
            bench.will_remove(
                LVM,
                vec![s("lvremove"), s("-q"), s("-f"), format!("{vg}/{lv}")],
            );
            bench.raw(
                LVM,
                &[
                    s("lvcreate"),
                    s("-q"),
                    s("-s"),
                    s("-n"),
                    lv,
                    s("--setactivationskip"),
                    s("y"),
                    s("-p"),
                    s("r"),
                    origin.clone(),
                ],
            );
        },
    ));

    // Clone of a snapshot: a writable thin snapshot of it, activated (the driver's is
    // active when clone_volume returns; a thin snapshot needs no mkfs).
    eprintln!("lvm clone");
    let before = lv_names(&vg);
    let base = snap("base");
    b.create_snapshot(&data, &base)
        .expect("create_snapshot base");
    let base_lv = lv_names(&vg)
        .into_iter()
        .find(|l| !before.contains(l))
        .expect("the snapshot's LV");
    rows.push(clone_case(
        bench,
        rounds,
        &base,
        "lvm clone of a snapshot",
        "lvcreate -s -n N -p rw VG/SNAP; lvchange -ay -K VG/N",
        |i| {
            let lv = format!("raw-c{i}");
            bench.will_remove(
                LVM,
                vec![s("lvremove"), s("-q"), s("-f"), format!("{vg}/{lv}")],
            );
            bench.raw(
                LVM,
                &[
                    s("lvcreate"),
                    s("-q"),
                    s("-s"),
                    s("-n"),
                    lv.clone(),
                    s("-p"),
                    s("rw"),
                    format!("{vg}/{base_lv}"),
                ],
            );
            bench.raw(
                LVM,
                &[
                    s("lvchange"),
                    s("-q"),
                    s("-ay"),
                    s("-K"),
                    format!("{vg}/{lv}"),
                ],
            );
        },
    ));
    rows
}

fn zfs_names(parent: &str, kind: &str) -> Vec<String> {
    ZFS.run(&["list", "-H", "-o", "name", "-t", kind, "-r", parent])
        .expect("zfs list")
        .lines()
        .map(str::to_string)
        .collect()
}

/// `live` is the dataset mounted as the volume.
fn bench_zfs(bench: &Bench, live: &str, rounds: usize) -> Vec<Row> {
    let b = bench.backend.as_ref();
    let data = vol("data");
    let zpool = live.split('/').next().expect("a zpool").to_string();
    let mut rows = Vec::new();

    eprintln!("zfs snapshot");
    rows.push(snapshot_case(
        bench,
        rounds,
        "zfs snapshot",
        "zfs snapshot DS@N",
        |i| {
            let name = format!("{live}@raw-s{i}");
            bench.will_remove(ZFS, vec![s("destroy"), name.clone()]);
            bench.raw(ZFS, &[s("snapshot"), name]);
        },
    ));

    // Clones land beside the pool's root dataset: they inherit mountpoint=legacy from
    // the zpool, so neither side mounts anything.
    eprintln!("zfs clone");
    let before = zfs_names(live, "snapshot");
    let base = snap("base");
    b.create_snapshot(&data, &base)
        .expect("create_snapshot base");
    let origin = zfs_names(live, "snapshot")
        .into_iter()
        .find(|n| !before.contains(n))
        .expect("the snapshot");
    rows.push(clone_case(
        bench,
        rounds,
        &base,
        "zfs clone of a snapshot",
        "zfs clone DS@SNAP POOL/N",
        |i| {
            let name = format!("{zpool}/raw-c{i}");
            bench.will_remove(ZFS, vec![s("destroy"), name.clone()]);
            bench.raw(ZFS, &[s("clone"), origin.clone(), name]);
        },
    ));
    rows
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn print_table(rows: &[Row]) {
    println!();
    if rows.is_empty() {
        println!("no driver could run here: nothing measured");
        return;
    }
    println!(
        "| {:<23} | {:>7} | {:>7} | {:>6} | {:<7} | {:<6} |",
        "case", "cairn", "raw", "ratio", "target", "result"
    );
    println!(
        "|{:-<25}|{:->9}|{:->9}|{:->8}|{:-<9}|{:-<8}|",
        "", "", "", "", "", ""
    );
    for r in rows {
        let ratio = r.cairn.as_secs_f64() / r.raw.as_secs_f64().max(1e-9);
        println!(
            "| {:<23} | {:>7} | {:>7} | {:>5.2}x | <= {TARGET}x | {:<6} |",
            r.case,
            ms(r.cairn),
            ms(r.raw),
            ratio,
            if ratio <= TARGET { "met" } else { "missed" }
        );
    }
    println!();
    for r in rows {
        println!("raw {}: {}", r.case, r.raw_what);
    }
}
