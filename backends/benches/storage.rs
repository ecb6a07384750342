//! Storage bench: cairn's drivers side by side with the raw tools, on the same data, in
//! one run. Prints a table of medians and ratios. Needs root, loop devices, btrfs-progs,
//! xfsprogs and the shared Debian image (or `CAIRN_TEST_IMAGE`).
//!
//!     cargo bench -p cairn-backends --bench storage            # 5 rounds
//!     CAIRN_BENCH_ROUNDS=9 cargo bench -p cairn-backends --bench storage
//!
//! Cases (targets from the storage issue):
//! - btrfs, rootfs volume of ~200 MB and ~2 GB: driver snapshot vs `btrfs subvolume
//!   snapshot -r`, driver clone vs `btrfs subvolume snapshot` (target <= 1.5x, flat in size);
//! - dir on xfs (reflink): driver clone vs `cp -a` (target <= 0.3x) and `cp -a --reflink=never`;
//! - dir on ext4 (no reflink): driver clone vs `cp -a` (target <= 1x).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_backends::{open, Backend, CloneSource, DriverKind, PoolSource, PoolSpec, VolumeName};

struct Row {
    case: String,
    cairn: Duration,
    peer_name: &'static str,
    peer: Duration,
    target: &'static str,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test discovery: nothing to list
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the storage bench needs root (loop devices, mounts, device nodes)");
        std::process::exit(2);
    }
    let image = image_path();
    let rounds: usize = std::env::var("CAIRN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let work = tempfile::Builder::new()
        .prefix("cairn-bench-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    println!(
        "cairn storage bench: {rounds} rounds per case, medians; image {}",
        image.display()
    );
    let mut rows = Vec::new();
    bench_btrfs(work.path(), &image, rounds, &mut rows);
    bench_dir_xfs(work.path(), &image, rounds, &mut rows);
    bench_dir_ext4(work.path(), &image, rounds, &mut rows);
    print_table(&rows);
}

fn image_path() -> PathBuf {
    std::env::var_os("CAIRN_TEST_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/images/debian-bookworm-minbase-amd64.tar.zst")
        })
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sync() {
    nix::unistd::sync();
}

fn extract(image: &Path, dest: &Path) {
    sh(Command::new("tar")
        .args(["--zstd", "-xpf"])
        .arg(image)
        .args([
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--acls",
            "-C",
        ])
        .arg(dest)
        .args(["--strip-components=1", "rootfs"]));
}

/// Adds `bytes` of incompressible data in 8 MiB files under `dir/filler`.
fn fill(dir: &Path, bytes: u64) {
    let d = dir.join("filler");
    std::fs::create_dir_all(&d).unwrap();
    let chunk = 8u64 << 20;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut buf = vec![0u8; chunk as usize];
    for i in 0..bytes.div_ceil(chunk) {
        for w in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            w.copy_from_slice(&state.to_le_bytes()[..w.len()]);
        }
        std::fs::File::create(d.join(format!("f{i}")))
            .and_then(|mut f| f.write_all(&buf))
            .unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `f` `rounds` times, running `reset` (untimed) after each.
fn time(rounds: usize, mut f: impl FnMut(usize), mut reset: impl FnMut(usize)) -> Duration {
    let mut v = Vec::new();
    for i in 0..rounds {
        sync();
        let t = Instant::now();
        f(i);
        v.push(t.elapsed());
        reset(i);
    }
    median(v)
}

fn vol(s: &str) -> VolumeName {
    s.parse().unwrap()
}

fn pool(driver: DriverKind, name: &str, source: PoolSource, state: PathBuf) -> Box<dyn Backend> {
    let b = open(
        driver,
        PoolSpec {
            name: name.parse().unwrap(),
            source,
            state_dir: state,
        },
    )
    .unwrap();
    b.create_pool().unwrap();
    b
}

fn bench_btrfs(work: &Path, image: &Path, rounds: usize, rows: &mut Vec<Row>) {
    let b = pool(
        DriverKind::Btrfs,
        "bench-btrfs",
        PoolSource::LoopFile {
            path: work.join("btrfs.img"),
            size: "12G".parse().unwrap(),
        },
        work.join("btrfs-state"),
    );
    for (label, extra) in [("200 MB", 75u64 << 20), ("2 GB", 1900u64 << 20)] {
        let v = vol(&format!("rootfs-{}", label.replace(' ', "")));
        b.create_volume(&v).unwrap();
        let path = b.mount_volume(&v).unwrap();
        extract(image, &path);
        fill(&path, extra);
        sync();
        let raw_dir = path.parent().unwrap().parent().unwrap().join(".tmp");
        std::fs::create_dir_all(&raw_dir).unwrap();

        let snap = |i: usize| format!("s{i}").parse().unwrap();
        let cairn = time(
            rounds,
            |i| {
                b.create_snapshot(&v, &snap(i)).unwrap();
            },
            |i| {
                b.delete_snapshot(&v, &snap(i)).unwrap();
            },
        );
        let raw_target = |i: usize| raw_dir.join(format!("raw-{i}"));
        let peer = time(
            rounds,
            |i| {
                sh(Command::new("btrfs")
                    .args(["-q", "subvolume", "snapshot", "-r"])
                    .arg(&path)
                    .arg(raw_target(i)))
            },
            |i| {
                sh(Command::new("btrfs")
                    .args(["-q", "subvolume", "delete"])
                    .arg(raw_target(i)))
            },
        );
        rows.push(Row {
            case: format!("btrfs snapshot, {label} rootfs"),
            cairn,
            peer_name: "btrfs subvolume snapshot -r",
            peer,
            target: "<= 1.5x",
        });

        let clone = |i: usize| vol(&format!("clone-{i}"));
        let cairn = time(
            rounds,
            |i| b.clone_volume(CloneSource::Volume(&v), &clone(i)).unwrap(),
            |i| {
                b.delete_volume(&clone(i)).unwrap();
            },
        );
        let peer = time(
            rounds,
            |i| {
                sh(Command::new("btrfs")
                    .args(["-q", "subvolume", "snapshot"])
                    .arg(&path)
                    .arg(raw_target(i)))
            },
            |i| {
                sh(Command::new("btrfs")
                    .args(["-q", "subvolume", "delete"])
                    .arg(raw_target(i)))
            },
        );
        rows.push(Row {
            case: format!("btrfs clone, {label} rootfs"),
            cairn,
            peer_name: "btrfs subvolume snapshot",
            peer,
            target: "<= 1.5x",
        });
        b.delete_volume(&v).unwrap();
    }
    b.delete_pool().unwrap();
}

/// Clone of the rootfs through the dir driver vs `cp -a` of the same tree on the same fs.
fn bench_dir_clone(
    b: &dyn Backend,
    image: &Path,
    rounds: usize,
    fs: &str,
    peers: &[(&'static str, &[&str], &'static str)],
    rows: &mut Vec<Row>,
) {
    let v = vol("rootfs");
    b.create_volume(&v).unwrap();
    let path = b.mount_volume(&v).unwrap();
    extract(image, &path);
    sync();
    let clone = |i: usize| vol(&format!("clone-{i}"));
    let cairn = time(
        rounds,
        |i| b.clone_volume(CloneSource::Volume(&v), &clone(i)).unwrap(),
        |i| {
            b.delete_volume(&clone(i)).unwrap();
        },
    );
    let scratch = path.parent().unwrap().parent().unwrap().join(".tmp");
    std::fs::create_dir_all(&scratch).unwrap();
    for (peer_name, args, target) in peers {
        let dst = |i: usize| scratch.join(format!("cp-{i}"));
        let peer = time(
            rounds,
            |i| sh(Command::new("cp").args(*args).arg(&path).arg(dst(i))),
            |i| std::fs::remove_dir_all(dst(i)).unwrap(),
        );
        rows.push(Row {
            case: format!("dir clone on {fs}, 127 MB rootfs"),
            cairn,
            peer_name,
            peer,
            target,
        });
    }
    b.delete_volume(&v).unwrap();
}

fn bench_dir_xfs(work: &Path, image: &Path, rounds: usize, rows: &mut Vec<Row>) {
    let img = work.join("xfs.img");
    let mnt = work.join("xfs");
    std::fs::create_dir_all(&mnt).unwrap();
    sh(Command::new("truncate").arg("-s").arg("4G").arg(&img));
    sh(Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(&img));
    sh(Command::new("mount")
        .args(["-o", "loop"])
        .arg(&img)
        .arg(&mnt));
    let b = pool(
        DriverKind::Dir,
        "bench-xfs",
        PoolSource::Directory {
            path: mnt.join("pool"),
        },
        work.join("xfs-state"),
    );
    bench_dir_clone(
        b.as_ref(),
        image,
        rounds,
        "xfs (reflink)",
        &[
            ("cp -a (reflink=auto)", &["-a"], "<= 0.3x"),
            (
                "cp -a --reflink=never",
                &["-a", "--reflink=never"],
                "<= 0.3x",
            ),
        ],
        rows,
    );
    b.delete_pool().unwrap();
    sh(Command::new("umount").arg(&mnt));
}

fn bench_dir_ext4(work: &Path, image: &Path, rounds: usize, rows: &mut Vec<Row>) {
    let b = pool(
        DriverKind::Dir,
        "bench-ext4",
        PoolSource::StateDir,
        work.join("ext4-state"),
    );
    let fs = format!("{:?}", cairn_backends::mounts::fs_type_of(work).unwrap()).to_lowercase();
    bench_dir_clone(
        b.as_ref(),
        image,
        rounds,
        &format!("{fs} (no reflink)"),
        &[("cp -a", &["-a"], "<= 1x")],
        rows,
    );
    b.delete_pool().unwrap();
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<34} {:>10}  {:<28} {:>10} {:>7}  {}",
        "case", "cairn ms", "peer", "peer ms", "ratio", "target"
    );
    for r in rows {
        println!(
            "{:<34} {:>10}  {:<28} {:>10} {:>6.2}x  {}",
            r.case,
            ms(r.cairn),
            r.peer_name,
            ms(r.peer),
            r.cairn.as_secs_f64() / r.peer.as_secs_f64(),
            r.target
        );
    }
}
