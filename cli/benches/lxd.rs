//! cairn beside LXD, on the same image in one run: create from image, copy, snapshot
//! create, restore and delete on btrfs and on a dir pool, then `cairn list` with 1,000
//! containers. Prints a table of medians and ratios. Needs root, loop devices,
//! btrfs-progs, xfsprogs and the shared Debian image (or `CAIRN_TEST_IMAGE`).
//!
//!     cargo bench -p cairn-cli --bench lxd            # 5 rounds
//!     CAIRN_BENCH_ROUNDS=9 cargo bench -p cairn-cli --bench lxd
//!
//! - cairn: the release binary on a temporary state dir; a btrfs pool on a loop file and a
//!   dir pool on an xfs (reflink) loop mount.
//! - LXD: Debian's `lxd`, installed if missing and started if not running (stopped again
//!   afterwards); a btrfs pool on a loop file and a dir pool on the same xfs mount as
//!   cairn's. If LXD cannot be installed or started, one line says why and only cairn's
//!   figures are printed.
//! - Both: the image is imported once, untimed; the first container in each pool (which
//!   unpacks the image there) is made untimed too and is the source of copy, snapshot and
//!   restore. Before each restore a file of the container is changed (untimed). Every
//!   timed step is one command line (`cairn ...` / `lxc ...`), after a `sync`; the two
//!   tools alternate within each round.
//!
//! `CAIRN_BENCH_LIST_CONTAINERS` changes the 1,000 (for a quick trial run).
//!
//! Targets (issue 4): btrfs <= 0.5x LXD; dir on reflink <= 0.2x LXD's dir pool (rsync);
//! `cairn list` with 1,000 containers < 100 ms.

#[path = "lxd/cairn.rs"]
mod cairn;
#[path = "lxd/host.rs"]
mod host;
#[path = "lxd/lxd_side.rs"]
mod lxd_side;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use cairn::{Cairn, Kind, Side};
use host::{has_tool, load_average, Scratch};
use lxd_side::Lxd;

/// How many containers `cairn list` is timed with (`CAIRN_BENCH_LIST_CONTAINERS`).
const LIST_CONTAINERS: usize = 1000;

struct Row {
    case: String,
    cairn: Duration,
    lxd: Option<Duration>,
    /// The ratio cairn/LXD must stay under, or for `list` the absolute time.
    target: Target,
}

enum Target {
    Ratio(f64),
    Under(Duration),
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` / test discovery: nothing to list
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the lxd bench needs root (loop devices, mounts, LXD)");
        std::process::exit(2);
    }
    let image = cairn_backends::testing::image_path();
    let Ok(image) = image.canonicalize() else {
        bail!("image {} not found (set CAIRN_TEST_IMAGE)", image.display());
    };
    for tool in ["mkfs.btrfs", "mkfs.xfs", "losetup"] {
        if !has_tool(tool) {
            bail!("{tool} is not installed (apt-get install btrfs-progs xfsprogs)");
        }
    }
    let rounds: usize = std::env::var("CAIRN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    println!(
        "cairn vs LXD: {rounds} rounds per case, medians; image {}; {} cores; load average {} at start",
        image.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );

    // Dropped in reverse order: LXD's pools (one is on the xfs mount) before the scratch
    // dir's mounts and loop devices.
    let scratch = Scratch::new()?;
    let xfs = scratch.mount_xfs("xfs", "8G")?;
    let cairn = Cairn::setup(
        Path::new(env!("CARGO_BIN_EXE_cairn")),
        scratch.path(),
        &xfs,
        &image,
    )?;
    let lxd = match Lxd::setup(scratch.path(), &xfs.join("lxd"), &image) {
        Ok(l) => Some(l),
        Err(e) => {
            println!("LXD: not measured, it cannot be used here: {e:#}");
            None
        }
    };
    if let Some(l) = &lxd {
        let ours = cairn.cairn(["--format", "json", "image", "show", cairn::IMAGE_ALIAS])?;
        let ours: serde_json::Value = serde_json::from_str(&ours)?;
        println!(
            "LXD {}: btrfs pool on a loop file in LXD's disks/, dir pool in {} (same xfs as cairn's dir pool); image fingerprint {} (cairn: {})",
            l.version,
            l.dir_source.display(),
            l.image_fingerprint()?,
            ours["fingerprint"].as_str().unwrap_or("?")
        );
    }
    println!("image import: once per tool, not timed");

    let mut sides: Vec<&dyn Side> = vec![&cairn];
    if let Some(l) = &lxd {
        sides.push(l);
    }
    let mut rows = Vec::new();
    for (kind, target) in [(Kind::Btrfs, 0.5), (Kind::Dir, 0.2)] {
        bench_pool(kind, target, &sides, rounds, &mut rows)?;
    }
    rows.push(bench_list(&cairn, rounds)?);
    print_table(&rows, lxd.is_some());
    println!("load average {} at end", load_average());
    Ok(())
}

/// Times `op` on each side `rounds` times (after an untimed `prep`, before an untimed
/// `reset`); the medians, one per side. The sides alternate which goes first.
fn time(
    sides: &[&dyn Side],
    rounds: usize,
    prep: impl Fn(&dyn Side, usize) -> Result<()>,
    op: impl Fn(&dyn Side, usize) -> Result<()>,
    reset: impl Fn(&dyn Side, usize) -> Result<()>,
) -> Result<Vec<Duration>> {
    let mut times = vec![Vec::new(); sides.len()];
    for i in 0..rounds {
        for k in 0..sides.len() {
            let s = (k + i) % sides.len();
            prep(sides[s], i)?;
            nix::unistd::sync();
            let t = Instant::now();
            op(sides[s], i)?;
            times[s].push(t.elapsed());
            reset(sides[s], i)?;
        }
    }
    Ok(times.into_iter().map(median).collect())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn none(_: &dyn Side, _: usize) -> Result<()> {
    Ok(())
}

fn bench_pool(
    kind: Kind,
    target: f64,
    sides: &[&dyn Side],
    rounds: usize,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let k = kind.label();
    let src = format!("{k}-src");
    for s in sides {
        s.create(kind, &src)
            .context("warm-up: first container in the pool")?;
    }
    let new = |i| format!("{k}-new{i}");
    let cp = |i| format!("{k}-cp{i}");
    let snap = |i| format!("s{i}");
    let mut add = |op: &str, t: Vec<Duration>| {
        rows.push(Row {
            case: format!("{k}: {op}"),
            cairn: t[0],
            lxd: t.get(1).copied(),
            target: Target::Ratio(target),
        })
    };
    let t = time(sides, rounds, none, |s, i| s.create(kind, &new(i)), none)?;
    add("create from image", t);
    let t = time(
        sides,
        rounds,
        none,
        |s, i| s.copy(&src, &cp(i)),
        |s, i| s.delete(&cp(i)),
    )?;
    add("copy", t);
    let t = time(
        sides,
        rounds,
        none,
        |s, i| s.snapshot(&src, &snap(i)),
        |s, i| s.delete_snapshot(&src, &snap(i)),
    )?;
    add("snapshot create", t);
    for s in sides {
        s.snapshot(&src, "base")?;
    }
    let t = time(
        sides,
        rounds,
        |s, i| change_files(&s.rootfs(kind, &src)?, i),
        |s, _| s.restore(&src, "base"),
        none,
    )?;
    add("restore (1 file changed, 1 added)", t);
    let t = time(sides, rounds, none, |s, i| s.delete(&new(i)), none)?;
    add("delete", t);
    for s in sides {
        s.delete(&src)?;
    }
    Ok(())
}

/// Changes `/etc/hostname` and adds a 1 MiB file, as a user would between snapshot and
/// restore.
fn change_files(rootfs: &Path, round: usize) -> Result<()> {
    std::fs::write(rootfs.join("etc/hostname"), format!("changed-{round}\n"))?;
    std::fs::write(rootfs.join("root/bench-added"), vec![round as u8; 1 << 20])?;
    Ok(())
}

/// Fills cairn's btrfs pool with `LIST_CONTAINERS` containers, then times `cairn list`.
fn bench_list(cairn: &Cairn, rounds: usize) -> Result<Row> {
    let want: usize = std::env::var("CAIRN_BENCH_LIST_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LIST_CONTAINERS);
    let t = Instant::now();
    let have = cairn.list_json()?.len();
    for i in have..want {
        cairn.create(Kind::Btrfs, &format!("list-{i:04}"))?;
    }
    let count = cairn.list_json()?.len();
    println!(
        "cairn list: {count} containers made with `cairn create` in the btrfs pool in {:.0} s (not timed)",
        t.elapsed().as_secs_f64()
    );
    if count != want {
        bail!("cairn list shows {count} containers, {want} were made");
    }
    let mut v = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        cairn.cairn(["list"])?;
        v.push(t.elapsed());
    }
    Ok(Row {
        case: format!("cairn list, {count} containers"),
        cairn: median(v),
        lxd: None,
        target: Target::Under(Duration::from_millis(100)),
    })
}

fn fmt(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

fn print_table(rows: &[Row], with_lxd: bool) {
    println!();
    println!(
        "{:<44} {:>11} {:>11} {:>7}  target",
        "case", "cairn", "LXD", "ratio"
    );
    for r in rows {
        let (lxd, ratio) = match r.lxd {
            Some(l) => (
                fmt(l),
                format!("{:.2}x", r.cairn.as_secs_f64() / l.as_secs_f64()),
            ),
            None if with_lxd || matches!(r.target, Target::Under(_)) => ("-".into(), "-".into()),
            None => ("n/a".into(), "-".into()),
        };
        let target = match r.target {
            Target::Ratio(x) => {
                let verdict = match r.lxd {
                    Some(l) if r.cairn.as_secs_f64() <= x * l.as_secs_f64() => "met",
                    Some(_) => "MISSED",
                    None => "not measured",
                };
                format!("<= {x}x LXD: {verdict}")
            }
            Target::Under(limit) => format!(
                "< {}: {}",
                fmt(limit),
                if r.cairn < limit { "met" } else { "MISSED" }
            ),
        };
        println!(
            "{:<44} {:>11} {:>11} {:>7}  {target}",
            r.case,
            fmt(r.cairn),
            lxd,
            ratio
        );
    }
}
