//! `cairn diff` and `cairn restore --path` on the shared Debian image: 50 files changed
//! are exactly what diff lists; a partial restore puts back exactly the paths named.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cairn_backends::manifest::Manifest;
use serde_json::Value;

use crate::helpers::{everything, ok_at, rootfs};
use crate::support::{require_image, require_root, unified_image, Cairn, SHARED_IMAGE};

/// The first `n` regular, singly linked, non-empty files under `usr/lib` and `etc` (not
/// under `etc/apt`, which the test deletes and restores whole).
fn pick_files(root: &Path, n: usize) -> Vec<String> {
    let m = Manifest::of(root).unwrap();
    m.entries
        .iter()
        .filter(|(p, e)| {
            (p.starts_with("usr/lib/") || p.starts_with("etc/"))
                && !p.starts_with("etc/apt/")
                && e.kind == cairn_backends::manifest::FileKind::File
                && e.hardlink.is_none()
                && e.size.unwrap_or(0) > 0
        })
        .map(|(p, _)| format!("/{p}"))
        .take(n)
        .collect()
}

/// A container `web` from the shared Debian image with a snapshot `s0` of it; and where
/// its files are.
fn web_with_s0() -> (Cairn, PathBuf) {
    let c = Cairn::new();
    c.ok(&["image", "import", SHARED_IMAGE.as_str(), "--alias", "deb"]);
    c.ok(&["create", "deb", "web"]);
    c.ok(&["snapshot", "create", "web", "s0"]);
    let root = rootfs(&c, "web");
    (c, root)
}

fn diff_paths(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect()
}

/// The one change of `path` in a JSON diff.
fn change_of<'a>(d: &'a Value, path: &str) -> &'a Value {
    let found: Vec<&Value> = d
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["path"] == path)
        .collect();
    assert_eq!(found.len(), 1, "{path} in {d}");
    found[0]
}

/// The columns of `path`'s row in a diff table (STATUS, TYPE, PATH, CHANGES).
fn row_of(table: &str, path: &str) -> Vec<String> {
    let rows: Vec<Vec<String>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|r| r.get(2).map(String::as_str) == Some(path))
        .collect();
    assert_eq!(rows.len(), 1, "{path} in {table}");
    rows[0].clone()
}

fn entries_under(m: &Manifest, p: &str) -> Vec<(String, cairn_backends::manifest::Entry)> {
    let rel = p.trim_start_matches('/');
    m.entries
        .iter()
        .filter(|(k, _)| *k == rel || k.starts_with(&format!("{rel}/")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn diff_lists_the_changed_files_and_restore_path_puts_back_only_those() {
    if !(require_root() && require_image()) {
        return;
    }
    let (c, root) = web_with_s0();
    let m0 = Manifest::of(&root).unwrap();

    // Change 50 files in place (content and mtime; their directories do not change).
    let files = pick_files(&root, 50);
    assert_eq!(files.len(), 50);
    for f in &files {
        let p = root.join(f.trim_start_matches('/'));
        let mut data = std::fs::read(&p).unwrap();
        data.extend_from_slice(b"\ncairn was here\n");
        let mode = std::fs::metadata(&p).unwrap().mode();
        std::fs::write(&p, &data).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode(), mode);
    }
    let want: BTreeSet<String> = files.iter().cloned().collect();
    let d = c.json(&["diff", "web", "s0"]);
    assert_eq!(diff_paths(&d), want);
    for ch in d.as_array().unwrap() {
        assert_eq!(ch["status"], "modified", "{ch}");
        assert_eq!(ch["type"], "file", "{ch}");
        assert_eq!(ch["old_type"], Value::Null, "{ch}");
        assert_eq!(
            ch["changes"],
            serde_json::json!(["content", "mtime"]),
            "{ch}"
        );
    }
    // Between two snapshots, and as a table.
    c.ok(&["snapshot", "create", "web", "s1"]);
    assert_eq!(diff_paths(&c.json(&["diff", "web", "s0", "s1"])), want);
    assert_eq!(c.json(&["diff", "web", "s1"]), serde_json::json!([]));
    let table = c.ok(&["diff", "web", "s0", "s1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 51, "{table}");
    assert!(lines[0].starts_with("STATUS") && lines[0].contains("PATH"));
    assert!(lines[1].starts_with("modified  file") && lines[1].contains(&files[0]));

    // Also delete a directory, then put back 10 of the files and that directory.
    std::fs::remove_dir_all(root.join("etc/apt")).unwrap();
    // The diff lists it, and all it held, as deleted.
    let d = c.json(&["diff", "web", "s1"]);
    let apt = change_of(&d, "/etc/apt");
    assert_eq!(apt["status"], "deleted", "{apt}");
    assert_eq!(apt["type"], "dir", "{apt}");
    assert_eq!(apt["old_type"], Value::Null, "{apt}");
    assert_eq!(apt["changes"], serde_json::json!([]), "{apt}");
    let under_apt: Vec<&Value> = d
        .as_array()
        .unwrap()
        .iter()
        .filter(|ch| ch["path"].as_str().unwrap().starts_with("/etc/apt/"))
        .collect();
    assert_eq!(
        under_apt.len(),
        m0.entries
            .keys()
            .filter(|k| k.starts_with("etc/apt/"))
            .count()
    );
    assert!(under_apt.iter().all(|ch| ch["status"] == "deleted"), "{d}");
    assert_eq!(
        row_of(&c.ok(&["diff", "web", "s1"]), "/etc/apt"),
        ["deleted", "dir", "/etc/apt"]
    );
    let m1 = Manifest::of(&root).unwrap();
    let mut restore: Vec<String> = files[..10].to_vec();
    restore.push("/etc/apt".into());
    let mut args = vec!["restore", "web", "s0"];
    for p in &restore {
        args.extend(["--path", p.as_str()]);
    }
    let out = c.ok(&args);
    assert!(out.contains("safety snapshot pre-restore-"), "{out}");
    let m2 = Manifest::of(&root).unwrap();
    for p in &restore {
        assert_eq!(
            entries_under(&m2, p),
            entries_under(&m0, p),
            "{p} is not the snapshot's"
        );
    }
    // Everything else is as it was before the restore.
    let mut rest_before = m1.clone();
    let mut rest_after = m2.clone();
    for m in [&mut rest_before, &mut rest_after] {
        m.entries.retain(|k, _| {
            !restore.iter().any(|p| {
                let r = p.trim_start_matches('/');
                k == r || k.starts_with(&format!("{r}/"))
            })
        });
    }
    assert_eq!(rest_after.diff(&rest_before), Vec::<String>::new());
    // So the diff from s0 is the 40 files left, and /etc (its mtime moved with etc/apt).
    let mut left: BTreeSet<String> = files[10..].iter().cloned().collect();
    left.insert("/etc".into());
    assert_eq!(diff_paths(&c.json(&["diff", "web", "s0"])), left);
    // The safety snapshot holds the state before the restore, and says what it is.
    let snaps = c.json(&["snapshot", "list", "web"]);
    let safety = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("pre-restore-"))
        .expect("a safety snapshot");
    assert_eq!(safety["labels"]["cairn.safety"], "restore");
    let safety = safety["name"].as_str().unwrap();
    assert_eq!(
        c.json(&["diff", "web", safety, "s1"])
            .as_array()
            .unwrap()
            .len(),
        {
            // s1 still has etc/apt, the safety snapshot does not.
            let apt = m0
                .entries
                .keys()
                .filter(|k| k.starts_with("etc/apt"))
                .count();
            apt + 1
        }
    );

    // An added file is listed as added, and a file replaced by a directory as a
    // modified `file->dir` whose one change is its type.
    std::fs::write(root.join("etc/cairn-added"), "new\n").unwrap();
    let retyped = &files[10];
    let p = root.join(retyped.trim_start_matches('/'));
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    let d = c.json(&["diff", "web", "s1"]);
    let added = change_of(&d, "/etc/cairn-added");
    assert_eq!(added["status"], "added", "{added}");
    assert_eq!(added["type"], "file", "{added}");
    assert_eq!(added["old_type"], Value::Null, "{added}");
    assert_eq!(added["changes"], serde_json::json!([]), "{added}");
    let ch = change_of(&d, retyped);
    assert_eq!(ch["status"], "modified", "{ch}");
    assert_eq!(ch["type"], "dir", "{ch}");
    assert_eq!(ch["old_type"], "file", "{ch}");
    assert_eq!(ch["changes"], serde_json::json!(["type"]), "{ch}");
    let table = c.ok(&["diff", "web", "s1"]);
    assert_eq!(
        row_of(&table, "/etc/cairn-added"),
        ["added", "file", "/etc/cairn-added"]
    );
    assert_eq!(
        row_of(&table, retyped),
        ["modified", "file->dir", retyped.as_str(), "type"]
    );
}

#[test]
fn bad_diff_and_restore_input_is_refused_and_changes_nothing() {
    if !(require_root() && require_image()) {
        return;
    }
    let (c, root) = web_with_s0();
    std::fs::write(root.join("etc/hostname"), b"changed\n").unwrap();
    let before = (c.stored(), Manifest::of(&root).unwrap());
    let restores: &[(&[&str], &str)] = &[
        (
            &["restore", "nope", "s0", "--path", "/etc"],
            "container nope: does not exist",
        ),
        (
            &["restore", "web", "s9", "--path", "/etc"],
            "container web: snapshot s9: does not exist",
        ),
        (
            &["restore", "web", "--to", "@-2", "--path", "/etc"],
            "container web: time \"@-2\": there is only 1 snapshot",
        ),
        (
            &["restore", "web", "--to", "2x-ago", "--path", "/etc"],
            "container web: --to: time \"2x-ago\": \"2x\": unknown unit 'x'",
        ),
        (
            &["restore", "web", "s0", "--path", "etc/hostname"],
            "path etc/hostname: not absolute",
        ),
        (&["restore", "web", "s0", "--path", "/etc/../../x"], "`..`"),
        (
            &[
                "restore",
                "web",
                "s0",
                "--path",
                "/etc/hostname",
                "--path",
                "/no/such",
            ],
            "path /no/such: exists in neither",
        ),
        (
            &["restore", "web", "--to", "@-1", "--path", "/no/such"],
            "path /no/such: exists in neither",
        ),
        (
            &["restore", "web", "s0", "--path", "/etc/os-release/x"],
            "/etc/os-release is a symlink",
        ),
        (
            &["restore", "web", "s0", "--path", "/"],
            "path /: is the root",
        ),
        (
            &[
                "restore",
                "web",
                "s0",
                "--path",
                "/etc/hostname",
                "--no-safety-snapshot",
            ],
            "error: container web: --no-safety-snapshot: not available with --path; a --path restore always takes a safety snapshot, which cairn snapshot delete web SNAP removes afterwards",
        ),
    ];
    let diffs: &[(&[&str], &str)] = &[
        (&["diff", "nope", "s0"], "container nope: does not exist"),
        (
            &["diff", "web", "s9"],
            "container web: snapshot s9: does not exist",
        ),
        (
            &["diff", "web", "s0", "s9"],
            "container web: snapshot s9: does not exist",
        ),
    ];
    for (args, want) in diffs.iter().chain(restores) {
        let e = c.fails(args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // A dry run makes the same checks, as text and as JSON.
    for (args, want) in restores {
        for extra in [&["--dry-run"][..], &["--dry-run", "--format", "json"]] {
            let args = [*args, extra].concat();
            let e = c.fails(&args);
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
    assert_eq!((c.stored(), Manifest::of(&root).unwrap()), before);
    assert_eq!(
        c.json(&["snapshot", "list", "web"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The files `restore --path` tests look at, as `(path, content or None if absent)`.
fn files(root: &Path) -> Vec<(&'static str, Option<String>)> {
    ["etc/motd", "etc/hostname", "srv/new"]
        .into_iter()
        .map(|p| (p, std::fs::read_to_string(root.join(p)).ok()))
        .collect()
}

#[test]
fn restore_path_dry_run_to_json_and_no_safety_snapshot() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    c.ok(&["create", "tiny", "web"]);
    let root = rootfs(&c, "web");
    std::fs::create_dir_all(root.join("srv")).unwrap();
    std::fs::write(root.join("etc/motd"), "one\n").unwrap();
    ok_at(
        &c,
        "2030-01-01T10:00:00Z",
        &["snapshot", "create", "web", "s0"],
    );
    std::fs::write(root.join("etc/motd"), "two\n").unwrap();
    std::fs::write(root.join("etc/hostname"), "second\n").unwrap();
    ok_at(
        &c,
        "2030-01-01T11:00:00Z",
        &["snapshot", "create", "web", "s1"],
    );
    std::fs::write(root.join("etc/motd"), "live\n").unwrap();
    std::fs::write(root.join("etc/hostname"), "live\n").unwrap();
    std::fs::write(root.join("srv/new"), "new\n").unwrap();
    let now = "2030-01-01T12:00:00Z";

    // A dry run checks as a real restore does, says what it would do, changes nothing.
    let before = (everything(&c, &["web"]), files(&root));
    let out = ok_at(
        &c,
        now,
        &["restore", "web", "s0", "--path", "/etc/motd", "--dry-run"],
    );
    assert_eq!(
        out,
        "would restore /etc/motd of container web from snapshot s0 (taken 2030-01-01T10:00:00Z), after taking safety snapshot pre-restore-20300101T120000Z; nothing changed (dry run)\n"
    );
    let r: Value = serde_json::from_str(&ok_at(
        &c,
        now,
        &[
            "restore",
            "web",
            "--to",
            "10:30",
            "--path",
            "/etc/motd",
            "--path",
            "/srv/new",
            "--dry-run",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(
        r,
        serde_json::json!({
            "container": "web",
            "target_time": "2030-01-01T10:30:00Z",
            "snapshot": "s0",
            "snapshot_created_at": "2030-01-01T10:00:00Z",
            "safety_snapshot": "pre-restore-20300101T120000Z",
            "dry_run": true,
            "paths": ["/etc/motd", "/srv/new"],
            "restored": null,
            "removed": null,
        })
    );
    assert_eq!((everything(&c, &["web"]), files(&root)), before);

    // --to picks under the lock the snapshot it restores: @-1 is s1. A path the
    // snapshot lacks is removed. The JSON says what was done.
    let r: Value = serde_json::from_str(&ok_at(
        &c,
        now,
        &[
            "restore",
            "web",
            "--to",
            "@-1",
            "--path",
            "/etc/motd",
            "--path",
            "/srv/new",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(
        r,
        serde_json::json!({
            "container": "web",
            "target_time": null,
            "snapshot": "s1",
            "snapshot_created_at": "2030-01-01T11:00:00Z",
            "safety_snapshot": "pre-restore-20300101T120000Z",
            "dry_run": false,
            "paths": ["/etc/motd", "/srv/new"],
            "restored": 1,
            "removed": 1,
        })
    );
    assert_eq!(
        files(&root),
        [
            ("etc/motd", Some("two\n".into())),
            ("etc/hostname", Some("live\n".into())),
            ("srv/new", None),
        ]
    );
    // Read on the same simulated clock: its time is the one cairn recorded.
    let safety: Value = serde_json::from_str(&ok_at(
        &c,
        now,
        &[
            "snapshot",
            "show",
            "web",
            "pre-restore-20300101T120000Z",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(safety["labels"]["cairn.safety"], "restore", "{safety}");
    assert_eq!(safety["created_at"], now, "{safety}");

    // A time between the two picks s0, and the text says why; the second safety
    // snapshot of the same second gets a free name.
    let out = ok_at(
        &c,
        now,
        &["restore", "web", "--to", "10:30", "--path", "/etc/hostname"],
    );
    assert_eq!(
        out,
        "restored /etc/hostname of container web from snapshot s0 (taken 2030-01-01T10:00:00Z, the newest taken at or before today 10:30 (2030-01-01T10:30:00Z)) (1 put back, 0 removed; safety snapshot pre-restore-20300101T120000Z-1 of the state before)\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "tiny\n"
    );
}
