//! `cargo bench -p cairn-snapshots`: planning and `--to` resolution over 100,000
//! snapshots, against the targets of issue 5. No peer is run: the tools with the same
//! job (sanoid, zrepl, snapper, PBS) need ZFS, a btrfs or a PBS datastore holding 100,000
//! real snapshots, and none plans from a plain list; so this prints cairn's figures only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cairn_snapshots::{plan, Retention, Snapshot, TimeExpr};
use jiff::{SignedDuration, Timestamp, Zoned};

const N: usize = 100_000;
const ROUNDS: usize = 5;

/// The process's peak resident set so far, in bytes: `VmHWM` of /proc/self/status
/// (getrusage's `ru_maxrss` would do, but Linux carries it across exec, so it reports
/// cargo's own peak when the bench is started by `cargo bench`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn show(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else if d >= Duration::from_micros(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{} ns", d.as_nanos())
    }
}

fn main() {
    let now: Zoned = "2026-11-23T12:00:00+01:00[Europe/Paris]".parse().unwrap();
    let rss_start = peak_rss();
    // 100,000 snapshots every 53 minutes (about ten years), one in 1,000 held, one in
    // 500 a manual snapshot with an expiry.
    let snaps: Vec<Snapshot> = (0..N)
        .map(|i| Snapshot {
            name: format!("auto-{i:06}"),
            created_at: now.timestamp() - SignedDuration::from_mins(53 * (N - i) as i64),
            managed: i % 500 != 0,
            held: (i % 1000 == 7).then(|| "offsite base".to_string()),
            expires_at: (i % 500 == 0)
                .then(|| now.timestamp() + SignedDuration::from_hours(i as i64 % 48 - 24)),
        })
        .collect();
    let retention = Retention::parse(
        "hourly=24 daily=7 weekly=4 monthly=12 yearly=2 keep-last=10 keep-within=2d",
        Some("1x1h(keep=all) | 24x1h | 14x1d"),
    )
    .unwrap();

    let mut times = Vec::new();
    let mut kept = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let d = plan(black_box(&snaps), &retention, &now);
        times.push(t.elapsed());
        kept = d.iter().filter(|d| d.keep).count();
        black_box(d);
    }
    let plan_time = median(times);
    let rss = peak_rss();

    let created: Vec<Timestamp> = snaps.iter().map(|s| s.created_at).collect();
    let exprs: Vec<TimeExpr> = [
        "2h-ago",
        "yesterday 18:00",
        "@-3",
        "2020-06-01T10:00:00Z",
        "90d-ago",
    ]
    .iter()
    .map(|e| e.parse().unwrap())
    .collect();
    let mut per_resolve = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..200 {
            for e in &exprs {
                black_box(
                    e.resolve(black_box(&created), |i| &snaps[i].name, &now)
                        .unwrap(),
                );
            }
        }
        per_resolve.push(t.elapsed() / (200 * exprs.len() as u32));
    }
    let resolve_time = median(per_resolve);
    // Including the sort a caller does when its list comes unsorted.
    let mut with_sort = Vec::new();
    for _ in 0..ROUNDS {
        let mut shuffled = created.clone();
        shuffled.reverse();
        let t = Instant::now();
        shuffled.sort_unstable();
        black_box(
            exprs[0]
                .resolve(&shuffled, |i| &snaps[i].name, &now)
                .unwrap(),
        );
        with_sort.push(t.elapsed());
    }
    let sort_time = median(with_sort);

    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("cairn-snapshots: {N} snapshots, median of {ROUNDS} rounds (no peer: see the bench's header)");
    println!();
    println!("| case | cairn | target | |");
    println!("|---|---|---|---|");
    println!(
        "| plan pruning, 100,000 snapshots, 8 rules + grid ({kept} kept) | {} | < 1 s | {} |",
        show(plan_time),
        met(plan_time < Duration::from_secs(1))
    );
    println!(
        "| peak RSS of the whole bench process after planning (input list included; {} at start) | {} | < 100 MB | {} |",
        mb(rss_start),
        mb(rss),
        met(rss < 100_000_000)
    );
    println!(
        "| resolve `--to` over 100,000 snapshots (sorted list) | {} | < 10 ms | {} |",
        show(resolve_time),
        met(resolve_time < Duration::from_millis(10))
    );
    println!(
        "| resolve `--to` over 100,000 snapshots, sorting an unsorted list first | {} | < 10 ms | {} |",
        show(sort_time),
        met(sort_time < Duration::from_millis(10))
    );
}
