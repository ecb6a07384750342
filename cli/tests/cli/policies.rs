//! Policies end to end with a simulated clock (`CAIRN_NOW`): scheduled snapshots with
//! hooks, one catch-up after downtime, pruning logged with its rule, expiry, holds, plans
//! and simulations, the daemon; and refused policies.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{everything, ok_at, run_env};
use crate::support::{require_root, unified_image, Cairn};

fn autos(c: &Cairn, ct: &str) -> Vec<String> {
    c.json(&["snapshot", "list", ct])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .filter(|n| n.starts_with("auto-"))
        .collect()
}

fn refused(c: &Cairn, args: &[&str], want: &str) {
    let before = everything(c, &[]);
    let line = c.fails(args);
    assert!(
        line.contains(want),
        "cairn {args:?}: got {line:?}, want {want:?}"
    );
    assert_eq!(
        before,
        everything(c, &[]),
        "cairn {args:?} changed the state"
    );
}

#[test]
fn policies_are_set_shown_listed_and_bad_ones_refused() {
    let c = Cairn::new();
    let p = c.json(&[
        "policy",
        "set",
        "--all",
        "--schedule",
        "@daily",
        "--keep",
        "keep-daily 7 hourly=24",
        "--grid",
        "1x1h(keep=all)|24x1h",
    ]);
    assert_eq!(p["target"], "*");
    assert_eq!(p["schedule"], "@daily");
    assert_eq!(p["keep"], "hourly=24 daily=7", "stored in canonical form");
    assert_eq!(p["grid"], "1x1h(keep=all) | 24x1h");
    // Setting again changes only what is given.
    let p = c.json(&["policy", "set", "--all", "--keep", "last=5"]);
    assert_eq!(p["schedule"], "@daily");
    assert_eq!(p["keep"], "last=5");
    assert_eq!(c.json(&["policy", "show", "--all"]), p);
    let list = c.ok(&["policy", "list"]);
    assert!(list.starts_with("TARGET  SCHEDULE  KEEP"), "{list}");
    assert!(list.contains("--all   @daily    last=5"), "{list}");

    refused(
        &c,
        &["policy", "set", "--all", "--schedule", "0 25 * * *"],
        "error: policy --all: schedule \"0 25 * * *\": hour field \"25\"",
    );
    refused(
        &c,
        &["policy", "set", "--all", "--schedule", "* * * *"],
        "4 fields; a cron line has 5",
    );
    refused(
        &c,
        &["policy", "set", "--all", "--schedule", "@fortnightly"],
        "\"@fortnightly\": unknown shorthand",
    );
    refused(
        &c,
        &["policy", "set", "--all", "--grid", "1x1h | 24y1h"],
        "error: policy --all: grid \"1x1h | 24y1h\": \"24y1h\": expected COUNTxLENGTH",
    );
    refused(
        &c,
        &["policy", "set", "--all", "--keep", "hourly=24 dayly=7"],
        "retention \"hourly=24 dayly=7\": \"dayly=7\": unknown rule \"dayly\"",
    );
    refused(
        &c,
        &["policy", "set", "--all", "--keep", "daily=0"],
        "\"daily=0\": \"0\" is not a count",
    );
    refused(
        &c,
        &["policy", "set", "nope", "--keep", "daily=1"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["policy", "set", "--keep", "daily=1"],
        "give a container name or --all",
    );
    refused(
        &c,
        &[
            "policy",
            "set",
            "--all",
            "--schedule",
            "none",
            "--keep",
            "none",
            "--grid",
            "none",
        ],
        "error: policy --all: nothing to do",
    );
    refused(&c, &["policy", "plan", "nope"], "error: container nope");
    refused(
        &c,
        &["policy", "unset", "x1"],
        "error: policy x1: there is no such policy (see cairn policy list)",
    );

    c.ok(&["policy", "unset", "--all"]);
    assert_eq!(c.json(&["policy", "list"]), serde_json::json!([]));
    refused(
        &c,
        &["policy", "show", "--all"],
        "error: policy --all: there is no policy for all containers (cairn policy set --all --schedule ... --keep ...)",
    );
    refused(
        &c,
        &["policy", "unset", "--all"],
        "error: policy --all: there is no such policy (see cairn policy list)",
    );
}

/// `(count of lines in stdout containing "took snapshot", stderr)`.
fn run_at(c: &Cairn, now: &str) -> (usize, String, bool) {
    let out = run_env(c, &[("CAIRN_NOW", now)], &["policy", "run"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        stdout
            .lines()
            .filter(|l| l.contains("took snapshot"))
            .count(),
        String::from_utf8(out.stderr).unwrap() + &stdout,
        out.status.success(),
    )
}

#[test]
fn policy_run_takes_what_is_due_catches_up_once_and_prunes_with_reasons() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    c.ok(&["create", "tiny", "c1"]);
    ok_at(
        &c,
        "2030-01-01T00:00:00Z",
        &["snapshot", "create", "c1", "manual0"],
    );
    let hooks = c.dir.path().join("hooks.log");
    let log = hooks.display();
    c.ok(&[
        "policy",
        "set",
        "c1",
        "--schedule",
        "@hourly",
        "--keep",
        "hourly=3",
        "--pre-hook",
        &format!("echo pre $CAIRN_CONTAINER $CAIRN_SNAPSHOT >> {log}"),
        "--post-hook",
        &format!("echo post $CAIRN_CONTAINER $CAIRN_SNAPSHOT >> {log}"),
    ]);

    // First run: due at once; the hooks see the container and the snapshot.
    let (took, out, ok) = run_at(&c, "2030-01-01T00:10:00Z");
    assert!(ok && took == 1, "{out}");
    assert_eq!(
        std::fs::read_to_string(&hooks).unwrap(),
        "pre c1 auto-20300101T001000Z\npost c1 auto-20300101T001000Z\n"
    );
    // Nothing more is due within the hour.
    let (took, out, _) = run_at(&c, "2030-01-01T00:50:00Z");
    assert_eq!(took, 0, "{out}");
    // One per hour; hourly=3 keeps the newest of the three newest hours.
    for h in 1..=4 {
        let (took, out, ok) = run_at(&c, &format!("2030-01-01T0{h}:05:00Z"));
        assert!(ok && took == 1, "{out}");
    }
    assert_eq!(
        autos(&c, "c1"),
        [
            "auto-20300101T020500Z",
            "auto-20300101T030500Z",
            "auto-20300101T040500Z"
        ]
    );
    assert!(
        c.ok(&["snapshot", "list", "c1"]).contains("manual0"),
        "manual snapshots stay"
    );
    let pruned = c.json(&["policy", "log", "c1"]);
    let pruned: Vec<(&str, &str)> = pruned
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["snapshot"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pruned,
        [
            (
                "auto-20300101T001000Z",
                "older than every rule reaches (hourly=3)"
            ),
            (
                "auto-20300101T010500Z",
                "older than every rule reaches (hourly=3)"
            ),
        ]
    );

    // Down for a day and a half: one catch-up snapshot, and it says how many were missed.
    let (took, out, ok) = run_at(&c, "2030-01-02T16:30:00Z");
    assert!(ok && took == 1, "{out}");
    assert!(out.contains("36 slots of schedule @hourly passed since the last run at 2030-01-01T04:05:00Z; taking one catch-up snapshot for them"), "{out}");
    assert!(out.contains("pruned snapshot auto-20300101T020500Z (taken 2030-01-01T02:05:00Z): older than every rule reaches (hourly=3)"), "{out}");

    // A failing pre-hook skips the snapshot, says so, and the run fails.
    c.ok(&["policy", "set", "c1", "--pre-hook", "exit 3"]);
    let before = autos(&c, "c1");
    let (took, out, ok) = run_at(&c, "2030-01-02T17:00:00Z");
    assert!(!ok && took == 0, "{out}");
    assert!(
        out.contains(
            "pre-hook \"exit 3\" failed (exit status: 3): snapshot auto-20300102T170000Z skipped"
        ),
        "{out}"
    );
    assert_eq!(autos(&c, "c1"), before);
    c.ok(&["policy", "set", "c1", "--pre-hook", "none"]);

    // Expiry and holds: an expired manual snapshot goes, a held one stays however old.
    ok_at(
        &c,
        "2030-01-02T17:10:00Z",
        &["snapshot", "create", "c1", "tmp", "--expires", "1h"],
    );
    let held = autos(&c, "c1")[0].clone();
    c.ok(&["snapshot", "hold", "c1", &held, "--reason", "keep me"]);
    let (_, out, ok) = run_at(&c, "2030-01-03T20:00:00Z");
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "pruned snapshot tmp (taken 2030-01-02T17:10:00Z): expired at 2030-01-02T18:10:00Z"
        ),
        "{out}"
    );
    let names: Vec<String> = c
        .json(&["snapshot", "list", "c1"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&held) && names.contains(&"manual0".to_string()),
        "{names:?}"
    );

    // Restore by time follows cairn's clock too.
    let r: Value = serde_json::from_str(&ok_at(
        &c,
        "2030-01-03T20:30:00Z",
        &[
            "restore",
            "c1",
            "--to",
            "yesterday 16:45",
            "--dry-run",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(r["snapshot"], "auto-20300102T163000Z", "{r}");

    // The plan: what is kept and by which rule; pruning nothing now, so running the plan's
    // policy again changes nothing.
    let plan: Value = serde_json::from_str(&ok_at(
        &c,
        "2030-01-03T20:30:00Z",
        &["policy", "plan", "c1", "--format", "json"],
    ))
    .unwrap();
    let rows = plan["plan"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["action"] != "prune" && r["action"] != "take"),
        "{plan}"
    );
    let rule_of = |name: &str| rows.iter().find(|r| r["snapshot"] == name).unwrap()["rule"].clone();
    assert_eq!(rule_of(&held), "held: keep me");
    assert_eq!(rule_of("manual0"), "manual snapshot (not the policy's)");
    assert_eq!(
        rule_of("auto-20300103T200000Z"),
        "hourly=3 (newest of 2030-01-03 20h)"
    );

    // --at later: an hour later one is due and the oldest unheld goes; --simulate 2d.
    let plan: Value = serde_json::from_str(&ok_at(
        &c,
        "2030-01-03T20:30:00Z",
        &[
            "policy",
            "plan",
            "c1",
            "--at",
            "2030-01-03T21:00:00Z",
            "--simulate",
            "2d",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(plan["plan"][0]["action"], "take", "{plan}");
    assert_eq!(plan["plan"][0]["snapshot"], "auto-20300103T210000Z");
    let sim = &plan["simulation"];
    assert_eq!(sim["taken"], 48, "{sim}");
    let left: Vec<&str> = plan["survivors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 5, "3 hourly + held + manual0: {left:?}");
    assert!(left.contains(&"auto-20300105T210000Z") && left.contains(&held.as_str()));
    // A plan changes nothing.
    assert!(autos(&c, "c1")
        .iter()
        .all(|n| !n.starts_with("auto-20300104")));
    let table = ok_at(
        &c,
        "2030-01-03T20:30:00Z",
        &["policy", "plan", "c1", "--simulate", "1d"],
    );
    assert!(
        table.contains("simulated from 2030-01-03T20:30:00Z to 2030-01-04T20:30:00Z: 24 taken"),
        "{table}"
    );

    // A container's policy follows a rename and goes with the container; the log stays.
    c.ok(&["rename", "c1", "c9"]);
    assert_eq!(c.json(&["policy", "show", "c9"])["target"], "c9");
    assert_eq!(c.json(&["snapshot", "show", "c9", &held])["held"], true);
    let e = c.fails(&["delete", "c9"]);
    assert!(
        e.contains(&format!(
            "snapshot {held}: is held (keep me); release it first"
        )),
        "{e}"
    );
    c.ok(&["snapshot", "release", "c9", &held]);
    c.ok(&["delete", "c9"]);
    assert_eq!(c.json(&["policy", "list"]), serde_json::json!([]));
    assert!(!c.json(&["policy", "log"]).as_array().unwrap().is_empty());
}

#[test]
fn daemon_takes_snapshots_on_schedule_and_stops_on_sigterm() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    c.ok(&["create", "tiny", "d1"]);
    c.ok(&[
        "policy",
        "set",
        "--all",
        "--schedule",
        "@hourly",
        "--keep",
        "last=10",
    ]);
    // Two seconds before a full hour: one snapshot at once (first run), one at the hour.
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state-dir")
        .arg(c.state())
        .arg("daemon")
        .env("CAIRN_NOW", "2030-01-01T00:59:58Z")
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while autos(&c, "d1").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cairn daemon: stopped by SIGTERM"), "{err}");
    let names = autos(&c, "d1");
    assert_eq!(names.len(), 2, "{names:?} {err}");
    assert!(names[0].starts_with("auto-20300101T0059"), "{names:?}");
    assert!(names[1].starts_with("auto-20300101T010000Z"), "{names:?}");
}

#[test]
fn daemon_stops_on_a_sigterm_that_comes_during_a_run() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    c.ok(&["create", "tiny", "d1"]);
    // The pre-hook sends SIGTERM to the daemon, then outlasts the next slot (a second
    // away), so the run ends after the time the daemon would have slept until.
    let log = c.dir.path().join("hooks.log");
    c.ok(&[
        "policy",
        "set",
        "d1",
        "--schedule",
        "* * * * *",
        "--pre-hook",
        &format!("echo pre >> {}; kill -TERM $PPID; sleep 2", log.display()),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state-dir")
        .arg(c.state())
        .arg("daemon")
        .env("CAIRN_NOW", "2030-01-01T00:00:59Z")
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "not stopped by the signal: {err}");
    assert!(err.contains("cairn daemon: stopped by SIGTERM"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "pre\n",
        "one run, then stop: {err}"
    );
    assert_eq!(autos(&c, "d1"), ["auto-20300101T000059Z"]);
}
