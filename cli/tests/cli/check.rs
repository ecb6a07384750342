//! `cairn check [--repair]`, and `cairn` killed with -9 in the middle of work.

use std::process::Command;
use std::time::Duration;

use crate::helpers::rootfs;
use crate::support::{require_image, require_root, unified_image, Cairn, SHARED_IMAGE};

#[test]
fn check_finds_and_repairs_disagreements() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
    for name in ["orphan", "gone", "fine"] {
        c.ok(&["create", "tiny", name]);
    }
    assert_eq!(c.ok(&["check"]), "no problems found\n");

    // A volume without a record, and a record without a volume.
    let db = rusqlite::Connection::open(c.state().join("cairn.db")).unwrap();
    db.execute("DELETE FROM containers WHERE name = 'orphan'", [])
        .unwrap();
    drop(db);
    std::fs::remove_dir_all(rootfs(&c, "gone")).unwrap();

    let found = c.run(&["check", "--format", "json"]);
    assert!(!found.status.success());
    assert_eq!(
        String::from_utf8_lossy(&found.stderr),
        "error: check: 2 problem(s) left; run cairn check --repair\n"
    );
    let findings: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let problems: Vec<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["object"].as_str().unwrap(),
                f["problem"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            "pool default: volume ct-orphan has no container record",
            "container gone: its volume ct-gone is missing from pool default"
        ]
    );

    c.ok(&["check", "--repair"]);
    assert_eq!(c.ok(&["check"]), "no problems found\n");
    let names: Vec<String> = c
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["fine", "orphan"]);
    // The adopted container's files were kept.
    assert_eq!(
        std::fs::read_to_string(rootfs(&c, "orphan").join("etc/hostname")).unwrap(),
        "tiny\n"
    );
}

/// Starts `cairn args`, kills it with SIGKILL after `delay`, waits for it.
fn kill_after(c: &Cairn, args: &[&str], delay: Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--state-dir")
        .arg(c.state())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn killed_mid_work_leaves_old_or_new_state() {
    if !(require_root() && require_image()) {
        return;
    }
    let c = Cairn::new();
    c.ok(&["image", "import", SHARED_IMAGE.as_str(), "--alias", "deb"]);
    c.ok(&["create", "deb", "base"]);
    c.ok(&["snapshot", "create", "base", "s0"]);
    let want = std::fs::read(rootfs(&c, "base").join("etc/os-release")).unwrap();
    for (i, ms) in [30u64, 150, 400, 900, 1600].into_iter().enumerate() {
        let d = Duration::from_millis(ms);
        kill_after(&c, &["create", "deb", &format!("c{i}")], d);
        kill_after(&c, &["copy", "base/s0", &format!("k{i}")], d);
        kill_after(&c, &["snapshot", "create", "base"], d);
        kill_after(&c, &["restore", "base", "s0"], d);
        // Whatever lists works: its files are whole.
        for e in c.json(&["list"]).as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            assert_eq!(
                std::fs::read(rootfs(&c, name).join("etc/os-release")).unwrap(),
                want,
                "{name} after a kill at {ms} ms"
            );
        }
        for s in c.json(&["snapshot", "list", "base"]).as_array().unwrap() {
            let name = s["name"].as_str().unwrap();
            c.ok(&["snapshot", "show", "base", name]);
        }
    }
    // Leftovers are found and repaired; afterwards everything is consistent.
    c.ok(&["check", "--repair"]);
    assert_eq!(c.ok(&["check"]), "no problems found\n");
    for e in c.json(&["list"]).as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        assert_eq!(
            std::fs::read(rootfs(&c, name).join("etc/os-release")).unwrap(),
            want,
            "{name} after repair"
        );
    }
    c.ok(&["create", "deb", "after"]);
}
