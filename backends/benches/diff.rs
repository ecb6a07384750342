//! Diff bench: `Backend::diff` of two snapshots of the Debian image with 50 files changed,
//! beside `rsync -an --itemize-changes` between the same two trees, on the dir driver
//! (xfs loop file with reflinks) and on btrfs (loop file). Prints medians and ratios.
//! Needs root, loop devices, btrfs-progs, xfsprogs, rsync and the shared Debian image (or
//! `CAIRN_TEST_IMAGE`).
//!
//!     cargo bench -p cairn-backends --bench diff            # 5 rounds
//!     CAIRN_BENCH_ROUNDS=9 cargo bench -p cairn-backends --bench diff
//!
//! Rows per driver: the driver's `diff` (btrfs: `send --no-data`; dir: the walk), the
//! generic walk alone on the same mounted snapshots, and (btrfs) a snapshot against the
//! live state; the peer is rsync's dry run with itemized changes (its quick check: size
//! and mtime only, so it reads no file content either). Target: <= 0.5x rsync.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_backends::cmd::{Tool, BTRFS, LOSETUP, MKFS_BTRFS, MKFS_XFS, MOUNT, UMOUNT};
use cairn_backends::diff::{self, DiffSide};
use cairn_backends::testing::{self, missing_tool};
use cairn_backends::{open, Backend, DriverKind, PoolSource, PoolSpec, SnapshotName, VolumeName};

/// The peer: `rsync`'s dry run.
const RSYNC: Tool = Tool {
    name: "rsync",
    package: "rsync",
};

/// Why this bench cannot run here, if it cannot: root, loop devices, the kernel's xfs and
/// btrfs, the tools it runs (the image's `tar`/`zstd` included) and the test image.
fn missing() -> Option<String> {
    testing::missing_root()
        .or_else(testing::missing_loop)
        .or_else(|| testing::missing_kernel_fs("xfs"))
        .or_else(|| testing::missing_kernel_fs("btrfs"))
        .or_else(|| {
            [
                MKFS_XFS,
                MOUNT,
                UMOUNT,
                BTRFS,
                MKFS_BTRFS,
                LOSETUP,
                RSYNC,
                testing::TAR,
                testing::ZSTD,
            ]
            .iter()
            .find_map(missing_tool)
        })
        .or_else(testing::missing_image)
}

struct Row {
    case: String,
    cairn: Duration,
    peer: Duration,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(why) = missing() {
        eprintln!("the diff bench cannot run here: {why}");
        std::process::exit(2);
    }
    let image = testing::image_path();
    let rounds: usize = std::env::var("CAIRN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-diff-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    println!(
        "cairn diff bench: {rounds} rounds per case, medians; image {}",
        image.display()
    );
    let mut rows = Vec::new();

    // dir on xfs with reflinks.
    let img = work.path().join("xfs.img");
    let mnt = work.path().join("xfs");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(4 << 30))
        .unwrap();
    run(
        &MKFS_XFS,
        &[
            "-q".as_ref(),
            "-m".as_ref(),
            "reflink=1".as_ref(),
            img.as_os_str(),
        ],
    );
    run(
        &MOUNT,
        &[
            "-o".as_ref(),
            "loop".as_ref(),
            img.as_os_str(),
            mnt.as_os_str(),
        ],
    );
    let b = pool(
        DriverKind::Dir,
        PoolSource::Directory {
            path: mnt.join("pool"),
        },
        work.path().join("xfs-state"),
    );
    bench_driver(b.as_ref(), rounds, "dir on xfs (reflink)", &mut rows);
    b.delete_pool().unwrap();
    run(&UMOUNT, &[mnt.as_os_str()]);

    // btrfs on a loop file.
    let b = pool(
        DriverKind::Btrfs,
        PoolSource::LoopFile {
            path: work.path().join("btrfs.img"),
            size: cairn_backends::Bytes(4 << 30),
        },
        work.path().join("btrfs-state"),
    );
    bench_driver(b.as_ref(), rounds, "btrfs", &mut rows);
    b.delete_pool().unwrap();

    println!();
    println!(
        "{:<52} {:>9} {:>9} {:>7}  target",
        "case", "cairn ms", "rsync ms", "ratio"
    );
    for r in &rows {
        let ratio = r.cairn.as_secs_f64() / r.peer.as_secs_f64();
        println!(
            "{:<52} {:>9.1} {:>9.1} {:>6.2}x  <= 0.5x {}",
            r.case,
            r.cairn.as_secs_f64() * 1000.0,
            r.peer.as_secs_f64() * 1000.0,
            ratio,
            if ratio <= 0.5 { "met" } else { "missed" }
        );
    }
}

fn bench_driver(b: &dyn Backend, rounds: usize, label: &str, rows: &mut Vec<Row>) {
    let v: VolumeName = "bench".parse().unwrap();
    let (s0, s1): (SnapshotName, SnapshotName) = ("s0".parse().unwrap(), "s1".parse().unwrap());
    b.create_volume(&v).unwrap();
    let live = b.mount_volume(&v).unwrap();
    testing::extract_image(&live, testing::IMAGE_ROOTFS);
    b.create_snapshot(&v, &s0).unwrap();
    let changed = change_50(&live);
    b.create_snapshot(&v, &s1).unwrap();
    nix::unistd::sync();

    let check = b
        .diff(&v, DiffSide::Snapshot(&s0), DiffSide::Snapshot(&s1))
        .unwrap();
    println!(
        "{label}: {:?} found {} changes, read and hashed {} file pairs",
        check.method,
        check.changes.len(),
        check.hashed
    );
    let got: Vec<String> = check.changes.iter().map(|c| c.display_path()).collect();
    assert_eq!(
        got, changed,
        "{label}: the diff does not list exactly the 50 files"
    );

    let (p0, p1) = (
        b.mount_snapshot(&v, &s0).unwrap(),
        b.mount_snapshot(&v, &s1).unwrap(),
    );
    let rsync_bin = RSYNC.resolve().unwrap();
    let rsync = time(rounds, || {
        let out = Command::new(&rsync_bin)
            .args(["-an", "--itemize-changes"])
            .arg(format!("{}/", p1.display()))
            .arg(format!("{}/", p0.display()))
            .output()
            .expect("run rsync");
        assert!(out.status.success());
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(n >= 50, "rsync itemized {n} lines");
    });
    let native = time(rounds, || {
        let d = b
            .diff(&v, DiffSide::Snapshot(&s0), DiffSide::Snapshot(&s1))
            .unwrap();
        assert_eq!(d.changes.len(), 50);
    });
    rows.push(Row {
        case: format!("{label}: diff s0 s1 ({:?})", check.method),
        cairn: native,
        peer: rsync,
    });
    // The driver's diff is the walk itself on the dir driver: timed apart only where not.
    if check.method != diff::Method::Walk {
        let walk = time(rounds, || {
            let d = diff::walk(&p0, &p1).unwrap();
            assert_eq!(d.changes.len(), 50);
        });
        rows.push(Row {
            case: format!("{label}: generic walk s0 s1"),
            cairn: walk,
            peer: rsync,
        });
        let live_diff = time(rounds, || {
            let d = b.diff(&v, DiffSide::Snapshot(&s0), DiffSide::Live).unwrap();
            assert_eq!(d.changes.len(), 50);
        });
        rows.push(Row {
            case: format!("{label}: diff s0 live ({:?})", check.method),
            cairn: live_diff,
            peer: rsync,
        });
    }
    b.delete_volume(&v).unwrap();
}

/// Appends a line to the first 50 non-empty, singly linked files under `usr/lib` (in the
/// order the diff lists paths) and returns their paths as inside the container. Found by
/// `stat` alone: reading files would update their atime (relatime), and on btrfs every
/// inode whose item changed is one more for `send` to resolve (see the README).
fn change_50(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                walk(&e.path(), out);
            } else if md.is_file() && md.nlink() == 1 && md.len() > 0 {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join("usr/lib"), &mut files);
    files.truncate(50);
    for p in &files {
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"\ncairn bench\n").unwrap();
    }
    files
        .iter()
        .map(|p| format!("/{}", p.strip_prefix(root).unwrap().display()))
        .collect()
}

fn pool(driver: DriverKind, source: PoolSource, state: PathBuf) -> Box<dyn Backend> {
    let b = open(
        driver,
        PoolSpec {
            name: "bench-diff".parse().unwrap(),
            source,
            state_dir: state,
        },
    )
    .unwrap();
    b.create_pool().unwrap();
    b
}

fn run(tool: &Tool, args: &[&std::ffi::OsStr]) {
    if let Err(e) = tool.run(args) {
        panic!("{e}");
    }
}

/// Median of `rounds` timed runs after one untimed warm-up run.
fn time(rounds: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut v: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}
