//! Several `cairn` processes at once on the same objects: the per-object locks make them
//! take turns, so every outcome is one a sequential run could give.

use std::process::{Command, Stdio};

use crate::support::{require_root, unified_image, Cairn};

fn spawn_all(c: &Cairn, n: usize, args: &[&str]) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_cairn"))
                .arg("--state-dir")
                .arg(c.state())
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|ch| ch.wait_with_output().unwrap())
        .collect()
}

#[test]
fn parallel_creates_and_snapshots_take_turns() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    // The first use of the state (database, default pool) also races.
    let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
    let outs = spawn_all(
        &c,
        3,
        &["image", "import", img.to_str().unwrap(), "--alias", "tiny"],
    );
    assert!(outs.iter().all(|o| o.status.success()), "{outs:?}");
    assert_eq!(c.json(&["image", "list"]).as_array().unwrap().len(), 1);

    let outs = spawn_all(&c, 4, &["create", "tiny", "same"]);
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "error: container same: already exists\n"
        );
    }

    let outs = spawn_all(&c, 4, &["snapshot", "create", "same"]);
    assert!(outs.iter().all(|o| o.status.success()), "{outs:?}");
    let snaps = c.json(&["snapshot", "list", "same"]);
    let mut names: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["snap0", "snap1", "snap2", "snap3"]);
}
