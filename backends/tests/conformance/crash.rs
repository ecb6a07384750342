//! `kill -9` in the middle of a clone or snapshot: after re-opening the pool, the object
//! is either absent or whole.
//!
//! The victim is this test binary itself, re-executed to run only [`child_main`] (the
//! `crash_child` test) with the job in `CAIRN_CONFORMANCE_CHILD`. It runs in its own
//! process group and the whole group is killed, helpers (`cp`, `btrfs`) included, as a
//! crash would.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cairn_backends::{open, CloneSource, DriverKind, PoolSpec};
use serde::{Deserialize, Serialize};

use crate::fixture::{Fixture, Tier};
use crate::harness::Req;
use crate::util::*;

pub const CHILD_ENV: &str = "CAIRN_CONFORMANCE_CHILD";

#[derive(Debug, Serialize, Deserialize)]
struct Job {
    driver: DriverKind,
    spec: PoolSpec,
    /// "clone" or "snapshot".
    op: String,
    volume: String,
    target: String,
}

/// The child's side: does the job named in the environment, or nothing.
pub fn child_main() {
    let Ok(job) = std::env::var(CHILD_ENV) else {
        return;
    };
    let job: Job = serde_json::from_str(&job).expect("child job");
    let b = open(job.driver, job.spec).expect("open pool in child");
    let v = vol(&job.volume);
    match job.op.as_str() {
        "clone" => b
            .clone_volume(CloneSource::Volume(&v), &vol(&job.target))
            .expect("clone in child"),
        "snapshot" => {
            b.create_snapshot(&v, &snap(&job.target))
                .expect("snapshot in child");
        }
        other => panic!("unknown child op {other}"),
    }
    println!("child: {} {} done", job.op, job.target);
}

fn spawn(fx: &Fixture, spec: &PoolSpec, op: &str, volume: &str, target: &str) -> Child {
    use std::os::unix::process::CommandExt;
    let job = Job {
        driver: fx.tier.driver(),
        spec: spec.clone(),
        op: op.into(),
        volume: volume.into(),
        target: target.into(),
    };
    let log = std::fs::File::create(fx.root().join(format!("child-{target}.log"))).unwrap();
    // /proc/self/exe, not current_exe(): cargo may replace the file on disk mid-run.
    Command::new("/proc/self/exe")
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, serde_json::to_string(&job).unwrap())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("spawn child")
}

/// Kills the child's whole process group after `delay`; true if it was still running.
fn kill_after(child: &mut Child, delay: Duration, log: &Path) -> bool {
    std::thread::sleep(delay);
    let done = child.try_wait().unwrap();
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let status = child.wait().unwrap();
    if let Some(st) = done {
        assert!(
            st.success(),
            "child failed before it was killed: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    let _ = status;
    done.is_none()
}

pub fn kill9_leaves_no_half_object(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let o = vol("origin");
    let m0 = image_volume(b, &o, fx.tier.image());
    let spec = b.spec().clone();
    let mut jobs = Vec::new();
    let mut midway = 0;
    for (i, ms) in [100u64, 200, 300].into_iter().enumerate() {
        for op in ["clone", "snapshot"] {
            let target = format!("{op}{i}");
            let mut child = spawn(&fx, &spec, op, "origin", &target);
            let log = fx.root().join(format!("child-{target}.log"));
            if kill_after(&mut child, Duration::from_millis(ms), &log) {
                midway += 1;
            }
            jobs.push((op, target));
        }
    }
    eprintln!("{test}: {midway} of {} children killed mid-way", jobs.len());

    // What a restarted cairn sees.
    let b2 = fx.reopen(b);
    b2.mount_pool().unwrap();
    let b2 = b2.as_ref();
    let vols = volume_names(b2);
    let snaps = snapshot_names(b2, &o);
    for v in &vols {
        assert!(
            v == "origin" || jobs.iter().any(|(op, t)| *op == "clone" && t == v),
            "unexpected volume {v} after the crashes: {vols:?}"
        );
    }
    for s in &snaps {
        assert!(
            jobs.iter().any(|(op, t)| *op == "snapshot" && t == s),
            "unexpected snapshot {s}: {snaps:?}"
        );
    }
    assert_same(&m0, &vol_manifest(b2, &o), "origin after the crashes");
    for (op, t) in &jobs {
        let listed = if *op == "clone" {
            vols.contains(t)
        } else {
            snaps.contains(t)
        };
        let m = match (*op, listed) {
            ("clone", true) => vol_manifest(b2, &vol(t)),
            ("snapshot", true) => snap_manifest(b2, &o, &snap(t)),
            // Not there: nothing left over may stand in the way of doing it again.
            ("clone", false) => {
                b2.clone_volume(CloneSource::Volume(&o), &vol(t))
                    .unwrap_or_else(|e| panic!("clone {t} again after the crash: {e}"));
                vol_manifest(b2, &vol(t))
            }
            _ => {
                b2.create_snapshot(&o, &snap(t))
                    .unwrap_or_else(|e| panic!("snapshot {t} again after the crash: {e}"));
                snap_manifest(b2, &o, &snap(t))
            }
        };
        assert_same(&m0, &m, &format!("{op} {t} (listed after crash: {listed})"));
    }
}
