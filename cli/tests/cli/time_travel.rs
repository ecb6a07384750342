//! `restore --to`, safety snapshots, holds and expiry: on the shared Debian image, the
//! restored tree matches the chosen snapshot's manifest exactly; bad times are refused
//! with the bad part named and nothing changed.

use std::time::Duration;

use cairn_backends::manifest::Manifest;
use serde_json::Value;

use crate::helpers::{everything, ok_at, rootfs, run_env};
use crate::support::{require_image, require_root, unified_image, Cairn, SHARED_IMAGE};

fn same(a: &Manifest, b: &Manifest, what: &str) {
    let d = a.diff(b);
    assert!(d.is_empty(), "{what}:\n{}", d.join("\n"));
}

fn snapshot_names(c: &Cairn, ct: &str) -> Vec<String> {
    c.json(&["snapshot", "list", ct])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restore_to_a_time_gives_that_snapshots_exact_tree_and_is_undoable() {
    if !(require_root() && require_image()) {
        return;
    }
    let c = Cairn::new();
    c.ok(&["image", "import", SHARED_IMAGE.as_str(), "--alias", "deb"]);
    c.ok(&["create", "deb", "web"]);
    let root = rootfs(&c, "web");

    c.ok(&["snapshot", "create", "web", "first"]);
    let m_first = Manifest::of(&root).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let between = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(1100));

    std::fs::write(root.join("etc/hostname"), "second\n").unwrap();
    std::fs::write(root.join("root/added"), "x").unwrap();
    std::fs::remove_file(root.join("etc/issue")).unwrap();
    c.ok(&["snapshot", "create", "web", "second"]);
    let m_second = Manifest::of(&root).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(root.join("etc/hostname"), "live\n").unwrap();
    std::fs::create_dir(root.join("srv/live-dir")).unwrap();
    let m_live = Manifest::of(&root).unwrap();

    // A dry run names the snapshot and the safety snapshot, and changes nothing.
    let before = snapshot_names(&c, "web");
    let dry = c.ok(&["restore", "web", "--to", &between, "--dry-run"]);
    assert!(
        dry.contains("would restore container web from snapshot first"),
        "{dry}"
    );
    assert!(
        dry.contains("after taking safety snapshot pre-restore-"),
        "{dry}"
    );
    assert_eq!(snapshot_names(&c, "web"), before);
    same(
        &m_live,
        &Manifest::of(&rootfs(&c, "web")).unwrap(),
        "a dry run changed the tree",
    );

    // A time between the two snapshots restores the first, exactly.
    let r = c.json(&["restore", "web", "--to", &between]);
    assert_eq!(r["snapshot"], "first");
    assert_eq!(r["target_time"].as_str().unwrap(), between);
    let safety = r["safety_snapshot"].as_str().unwrap().to_string();
    assert!(safety.starts_with("pre-restore-"), "{r}");
    same(
        &m_first,
        &Manifest::of(&rootfs(&c, "web")).unwrap(),
        "restore --to <between>",
    );

    // The safety snapshot is listed, labelled, and holds the state before the restore:
    // it is now the newest, so @-1 undoes the restore.
    let list = c.json(&["snapshot", "list", "web"]);
    let s = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == safety.as_str())
        .unwrap();
    assert_eq!(s["labels"]["cairn.safety"], "restore");
    let r = c.json(&["restore", "web", "--to", "@-1", "--no-safety-snapshot"]);
    assert_eq!(r["snapshot"], safety.as_str());
    assert_eq!(r["safety_snapshot"], Value::Null);
    same(
        &m_live,
        &Manifest::of(&rootfs(&c, "web")).unwrap(),
        "undo by @-1",
    );

    // 1s-ago picks the newest at or before a second ago; @-2 the one before it.
    std::thread::sleep(Duration::from_millis(1100));
    let r = c.json(&["restore", "web", "--to", "1s-ago", "--no-safety-snapshot"]);
    assert_eq!(r["snapshot"], safety.as_str());
    let r = c.json(&["restore", "web", "--to", "@-2", "--no-safety-snapshot"]);
    assert_eq!(r["snapshot"], "second");
    same(
        &m_second,
        &Manifest::of(&rootfs(&c, "web")).unwrap(),
        "restore --to @-2",
    );

    // The plain form still works, and takes a safety snapshot too.
    let n = snapshot_names(&c, "web").len();
    let out = c.ok(&["restore", "web", "first"]);
    assert!(
        out.contains("restored container web from snapshot first"),
        "{out}"
    );
    assert!(out.contains("safety snapshot pre-restore-"), "{out}");
    assert_eq!(snapshot_names(&c, "web").len(), n + 1);
    same(
        &m_first,
        &Manifest::of(&rootfs(&c, "web")).unwrap(),
        "restore first",
    );
}

/// A tiny image and a container `c1` with one snapshot `snap0`, taken at `at` on cairn's
/// clock.
fn tiny(at: &str) -> Cairn {
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    c.ok(&["create", "tiny", "c1"]);
    ok_at(&c, at, &["snapshot", "create", "c1"]);
    c
}

fn refused_at(c: &Cairn, now: &str, args: &[&str], want: &str) {
    let before = everything(c, &["c1"]);
    let out = run_env(c, &[("CAIRN_NOW", now)], args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "cairn {args:?} succeeded");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.contains(want),
        "cairn {args:?}: got {err:?}, want {want:?}"
    );
    assert_eq!(
        before,
        everything(c, &["c1"]),
        "cairn {args:?} changed the state"
    );
}

#[test]
fn bad_times_are_refused_naming_the_bad_part() {
    if !require_root() {
        return;
    }
    let t0 = "2030-01-01T10:00:00Z";
    let c = tiny(t0);
    c.ok(&["create", "tiny", "bare"]);
    let now = "2030-01-01T12:00:00Z";
    let cases: &[(&[&str], &str)] = &[
        (
            &["restore", "bare", "--to", "@-1"],
            "error: container bare: time \"@-1\": there are no snapshots to restore; take one with cairn snapshot create",
        ),
        (
            &["restore", "c1", "--to", "2x-ago"],
            "error: container c1: --to: time \"2x-ago\": \"2x\": unknown unit 'x'",
        ),
        (
            &["restore", "c1", "--to", "25:00"],
            "time \"25:00\": \"25:00\": hour \"25\" is not a number from 0 to 23",
        ),
        (
            &["restore", "c1", "--to", "@-0"],
            "\"@-0\": counting starts at @-1",
        ),
        (
            &["restore", "c1", "--to", "@+1"],
            "\"@+1\": snapshots are counted back from the newest",
        ),
        (
            &["restore", "c1", "--to", "2030-01-02T00:00:00Z"],
            "is in the future (now is 2030-01-01T12:00:00Z)",
        ),
        (
            &["restore", "c1", "--to", "3h-ago"],
            "no snapshot old enough: the oldest is snap0 at 2030-01-01T10:00:00Z",
        ),
        (
            &["restore", "c1", "--to", "@-2"],
            "there is only 1 snapshot; the oldest is @-1 (snap0",
        ),
        (
            &["restore", "c1", "snap0", "--to", "@-1"],
            "error: the argument '[SNAPSHOT]' cannot be used with '--to <TIME>'; see --help",
        ),
        (
            &["restore", "c1"],
            "error: container c1: give a snapshot name or --to TIME (2h-ago, yesterday 18:00, @-1, ...)",
        ),
        (
            &["restore", "nope", "--to", "@-1"],
            "error: container nope: does not exist",
        ),
        (
            &["snapshot", "create", "c1", "--expires", "7x"],
            "error: container c1: --expires: duration \"7x\": \"7x\": unknown unit 'x'",
        ),
        (
            &["snapshot", "create", "c1", "--expires", "0s"],
            "error: container c1: --expires: duration \"0s\": must be longer than zero",
        ),
        (
            &["snapshot", "release", "c1", "snap0"],
            "error: container c1: snapshot snap0: is not held",
        ),
        (
            &["snapshot", "hold", "c1", "nope"],
            "error: container c1: snapshot nope: does not exist",
        ),
    ];
    for (args, want) in cases {
        refused_at(&c, now, args, want);
    }
    // A time within range picks snap0, and a dry run says so.
    let out = ok_at(
        &c,
        now,
        &["restore", "c1", "--to", "today 10:30", "--dry-run"],
    );
    assert!(out.contains("from snapshot snap0 (taken 2030-01-01T10:00:00Z, the newest taken at or before today 10:30 (2030-01-01T10:30:00Z))"), "{out}");
}

#[test]
fn holds_and_expiry_are_listed_and_a_held_snapshot_is_not_deleted() {
    if !require_root() {
        return;
    }
    let t0 = "2030-01-01T10:00:00Z";
    let c = tiny(t0);
    ok_at(
        &c,
        t0,
        &["snapshot", "create", "c1", "temp", "--expires", "7d"],
    );
    let list = c.json(&["snapshot", "list", "c1"]);
    let temp = &list[1];
    assert_eq!(temp["name"], "temp");
    assert_eq!(temp["expires_at"], "2030-01-08T10:00:00Z");
    assert_eq!(temp["origin"], "manual");
    assert_eq!(temp["held"], false);

    c.ok(&[
        "snapshot",
        "hold",
        "c1",
        "snap0",
        "--reason",
        "offsite base",
    ]);
    let show = c.json(&["snapshot", "show", "c1", "snap0"]);
    assert_eq!(show["held"], true);
    assert_eq!(show["hold_reason"], "offsite base");
    let table = c.ok(&["snapshot", "list", "c1"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CREATED", "LABELS", "EXPIRES", "HELD"],
        "{table}"
    );
    assert!(table.contains("yes: offsite base"), "{table}");
    assert!(table.contains("2030-01-08T10:00:00Z"), "{table}");
    refused_at(
        &c,
        t0,
        &["snapshot", "delete", "c1", "snap0"],
        "error: container c1: snapshot snap0: is held (offsite base); release it first: cairn snapshot release c1 snap0",
    );
    c.ok(&["snapshot", "release", "c1", "snap0"]);
    assert_eq!(c.json(&["snapshot", "show", "c1", "snap0"])["held"], false);
    c.ok(&["snapshot", "delete", "c1", "snap0"]);
    assert_eq!(snapshot_names(&c, "c1"), ["temp"]);
}
