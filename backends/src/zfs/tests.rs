//! Unit tests of the zfs driver's pure parts, on output captured in the VM
//! (`vm-tests/scenarios/zfs-capture.sh`, `zfs-pool-smoke.sh`).

use super::naming::{self, decode, encode, name_of, Decoded};
use super::parse::*;

const SNAPS: &str = include_str!("../../tests/fixtures/zfs-list-snapshots.txt");

#[test]
fn names_map_both_ways() {
    for (name, comp) in [
        ("web1", "web1"),
        ("snap-2026.x_y", "snap-2026.x_y"),
        ("ünï%", ":C3:BCn:C3:AF:25"),
        ("a:b", "a:3Ab"),
        ("a+b#c", "a:2Bb:23c"),
    ] {
        assert_eq!(encode(name), comp, "{name}");
        assert_eq!(decode(comp), Decoded::Name(name.to_string()), "{comp}");
    }
    // Hidden objects and strangers never decode to a name.
    for foreign in [":tclone.1", ":tdel.x", "a:zz", "a:2", "a b", "a:41"] {
        assert_eq!(decode(foreign), Decoded::Foreign, "{foreign}");
    }
}

#[test]
fn long_names_hash_and_need_their_property() {
    let long = "é".repeat(100); // 200 bytes, 600 encoded
    let comp = encode(&long);
    assert!(comp.starts_with(":h") && comp.len() == 34, "{comp}");
    assert_eq!(decode(&comp), Decoded::Hashed);
    assert_eq!(name_of(&comp, Some(&long)), Some(long.clone()));
    assert_eq!(
        name_of(&comp, Some("other")),
        None,
        "property of another name"
    );
    assert_eq!(name_of(&comp, None), None);
    // Every valid name fits ZFS's limits: ≤ 64 bytes, allowed characters only.
    for n in ["x".repeat(200), "ü".repeat(100), "%".repeat(30)] {
        let c = encode(&n);
        assert!(c.len() <= naming::MAX_COMPONENT, "{c}");
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)));
    }
}

#[test]
fn zpool_names_are_valid_and_distinct_per_state_dir() {
    let a = naming::zpool_name("cairn-test-p1", "/tmp/a/p1-state".as_ref());
    let b = naming::zpool_name("cairn-test-p1", "/tmp/b/p1-state".as_ref());
    assert_ne!(a, b);
    assert!(a.starts_with("cairn-cairn-test-p1-"));
    let odd = naming::zpool_name("ünï%", "/x".as_ref());
    assert!(
        odd.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "{odd}"
    );
}

#[test]
fn parses_captured_snapshot_listing() {
    let rows = parse_snapshots(SNAPS).unwrap();
    assert_eq!(rows.len(), 3);
    let s1 = &rows[0];
    assert_eq!(s1.dataset, "cairn-cap/cairn/volumes/web/live");
    assert_eq!(s1.component, "s1");
    assert_eq!(s1.guid, 11518019662775761763);
    assert_eq!(s1.created_at_ns, Some(1795432378000000001));
    assert_eq!(s1.cairn_name.as_deref(), Some("s1"));
    assert_eq!(s1.userrefs, 1, "held by a send");
    assert!(s1.clones.is_empty() && !s1.defer_destroy);
    assert_eq!(
        name_of(&rows[1].component, rows[1].cairn_name.as_deref()).as_deref(),
        Some("ünï%")
    );
    // The hidden origin of a clone: deferred, with its clone listed, and no cairn name.
    let hidden = &rows[2];
    assert!(hidden.defer_destroy);
    assert_eq!(hidden.clones, ["cairn-cap/cairn/volumes/web/h.1"]);
    assert_eq!(
        name_of(&hidden.component, hidden.cairn_name.as_deref()),
        None
    );
    assert!(parse_snapshots("a@b\t1\n").is_err(), "short line");
    assert!(parse_snapshots("nosnap\t1\t2\t3\t-\t-\toff\t0\t-\n").is_err());
}

#[test]
fn parses_captured_filesystems_and_space() {
    let fs = parse_filesystems(include_str!("../../tests/fixtures/zfs-list-volumes.txt")).unwrap();
    assert_eq!(fs.len(), 4);
    assert_eq!(fs[0].cairn_name, None);
    assert!(fs[1].name.ends_with("/volumes/web"));
    assert_eq!(fs[1].cairn_name.as_deref(), Some("web"));
    assert_eq!(fs[1].created_at_ns, Some(1795432377123456789));
    // `-` is "not set": the volumes directory is no volume.
    assert_eq!(
        (fs[0].cairn_name.as_ref(), fs[0].created_at_ns),
        (None, None)
    );
    assert!(fs[0].name.ends_with("/cairn/volumes") && fs[0].creation > 0);
    // `zfs list -H -p -o used,available,referenced <ds>`, as the driver asks for the root
    // and a volume's live dataset (the capture lists both, each line led by its name).
    let usage = include_str!("../../tests/fixtures/zfs-list-usage.txt");
    let space: Vec<(&str, (u64, u64, u64))> = usage
        .lines()
        .map(|line| {
            let (name, rest) = line.split_once('\t').unwrap();
            (name, parse_space(&format!("{rest}\n")).unwrap())
        })
        .collect();
    assert_eq!(
        space,
        [
            ("cairn-cap/cairn", (8859648, 359538688, 98304)),
            (
                "cairn-cap/cairn/volumes/web/live",
                (8564736, 359538688, 8499200)
            ),
        ]
    );
    assert!(parse_space("1\t2\n").is_err(), "short line");
    assert!(
        parse_space(usage).is_err(),
        "two datasets where one was asked for"
    );
    assert_eq!(
        parse_space("-\t-\t-\n").unwrap(),
        (0, 0, 0),
        "not applicable"
    );
    assert!(parse_space("1\tx\t3\n").is_err(), "not a number");
    assert_eq!(number("-", "x").unwrap(), None);
    assert_eq!(number("4276224", "x").unwrap(), Some(4276224));
}

#[test]
fn parses_captured_get_output() {
    let text = include_str!("../../tests/fixtures/zfs-get-managed.txt");
    let sources: Vec<(Option<String>, bool)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            parse_get_local(&format!("{}\t{}\n", f[2], f[3])).unwrap()
        })
        .collect();
    assert_eq!(sources[0], (Some("cap".into()), true));
    assert_eq!(
        sources[2],
        (Some("cap".into()), false),
        "inherited is not ours"
    );
    let token = include_str!("../../tests/fixtures/zfs-get-resume-token.txt");
    let f: Vec<&str> = token.trim_end().split('\t').collect();
    let (value, _) = parse_get_local(&format!("{}\t{}\n", f[2], f[3])).unwrap();
    assert!(value.unwrap().starts_with("1-"));
}

#[test]
fn parses_captured_stream_headers() {
    let full = parse_stream_header(include_bytes!("../../tests/fixtures/zfs-send-full.head"))
        .unwrap()
        .unwrap();
    let s1_guid = parse_snapshots(SNAPS).unwrap()[0].guid;
    assert_eq!(full.to_guid, s1_guid);
    assert_eq!(full.from_guid, None);
    let inc = parse_stream_header(include_bytes!(
        "../../tests/fixtures/zfs-send-incremental.head"
    ))
    .unwrap()
    .unwrap();
    assert_eq!(inc.from_guid, Some(s1_guid), "incremental names its base");
    assert_eq!(inc.to_guid, parse_snapshots(SNAPS).unwrap()[1].guid);
    assert!(
        parse_stream_header(&[0u8; 10]).is_none(),
        "needs more bytes"
    );
    assert!(
        parse_stream_header(&[0u8; 64]).unwrap().is_err(),
        "bad magic"
    );
    // Big-endian senders are read too.
    let mut be = include_bytes!("../../tests/fixtures/zfs-send-incremental.head")[..64].to_vec();
    for at in [8, 40, 48] {
        be[at..at + 8].reverse();
    }
    assert_eq!(parse_stream_header(&be).unwrap().unwrap(), inc);
}

#[test]
fn stderr_of_captured_errors_is_typed() {
    use super::cli::typed;
    use crate::cmd::CommandFailure;
    use crate::error::{Error, Kind};
    let errors = include_str!("../../tests/fixtures/zfs-errors.txt");
    let fail = |line: &str| {
        Error::Command(CommandFailure {
            argv: vec!["zfs".into()],
            status: "exit status 1".into(),
            stderr: line.to_string(),
        })
    };
    let lines: Vec<&str> = errors.lines().collect();
    assert!(typed(fail(lines[0]), "x", Kind::Volume, "v").is_not_found());
    assert!(matches!(
        typed(fail(lines[1]), "x", Kind::Volume, "v"),
        Error::AlreadyExists { .. }
    ));
    assert!(matches!(
        typed(fail(lines[2]), "x", Kind::Snapshot, "v/s"),
        Error::Busy { .. }
    ));
    assert!(typed(
        fail("cannot create snapshot 'a@b': out of space"),
        "x",
        Kind::Snapshot,
        "s"
    )
    .is_no_space());
}

fn snap_row(dataset: &str, component: &str, defer_destroy: bool) -> SnapRow {
    SnapRow {
        dataset: dataset.to_string(),
        component: component.to_string(),
        guid: 1,
        createtxg: 1,
        creation: 1,
        created_at_ns: None,
        cairn_name: None,
        defer_destroy,
        userrefs: 0,
        clones: Vec::new(),
    }
}

fn names(container: &str, comps: &[&str]) -> Vec<String> {
    comps.iter().map(|c| format!("{container}/{c}")).collect()
}

#[test]
fn repair_plan_reads_only_the_component_below_the_container() {
    use super::pool::{repair_plan, Repair};
    // Volumes named like the driver's own datasets: their live state stays where it is.
    for vol in ["new.x", "h.y", "new.", "h."] {
        let c = format!("tank/cairn/volumes/{vol}");
        let kids = names(&c, &["live"]);
        let with_snap = [snap_row(&format!("{c}/live"), "s1", false)];
        assert_eq!(
            repair_plan(&c, &kids, &with_snap),
            [],
            "{vol} with a snapshot"
        );
        assert_eq!(repair_plan(&c, &kids, &[]), [], "{vol} without snapshots");
    }
    // A root dataset under `new.*` / `h.*` datasets.
    for root in ["tank/new.a/cairn", "tank/h.b/cairn", "new.z/h.q"] {
        let c = format!("{root}/volumes/web");
        let kids = names(&c, &["live", "h.1"]);
        let snaps = [
            snap_row(&format!("{c}/live"), "s2", false),
            snap_row(&format!("{c}/h.1"), "s1", false),
        ];
        assert_eq!(repair_plan(&c, &kids, &snaps), [], "root {root}");
    }
    // A volume called new.x with real leftovers beside its live state.
    let c = "tank/cairn/volumes/new.x";
    let kids = names(c, &["h.1", "h.2", "live", "new.3", "new.4"]);
    let snaps = [
        snap_row(&format!("{c}/h.1"), "s1", false),
        snap_row(&format!("{c}/live"), "s2", false),
        snap_row(&format!("{c}/new.3"), "s0", false),
    ];
    assert_eq!(
        repair_plan(c, &kids, &snaps),
        [
            Repair::DropEmpty(format!("{c}/h.2")),
            Repair::ToHistory(format!("{c}/new.3")),
            Repair::DropEmpty(format!("{c}/new.4")),
        ]
    );
}

#[test]
fn repair_plan_rolls_an_interrupted_restore_forward() {
    use super::pool::{repair_plan, Repair};
    let c = "tank/cairn/volumes/h.y";
    // Cut between `live → h.*` and `new.* → live`.
    let kids = names(c, &["h.1", "new.2"]);
    let snaps = [
        snap_row(&format!("{c}/h.1"), "s3", false),
        snap_row(&format!("{c}/new.2"), "s1", false),
        snap_row(&format!("{c}/new.2"), ":tclone.9", false),
        snap_row(&format!("{c}/h.1"), ":tdel.8", true),
    ];
    assert_eq!(
        repair_plan(c, &kids, &snaps),
        [
            Repair::RollForward {
                new: format!("{c}/new.2"),
                live: format!("{c}/live"),
            },
            // Named where it is once rolled forward; the deferred one is left to ZFS.
            Repair::DropHidden(format!("{c}/live@:tclone.9")),
        ]
    );
    // Not a child of this container: never touched.
    let other = names("tank/cairn/volumes/other", &["new.1", "h.1"]);
    assert_eq!(repair_plan(c, &other, &[]), []);
}

#[test]
fn only_no_such_pool_means_the_zpool_is_absent() {
    use super::pool::import_outcome;
    use crate::cmd::CommandFailure;
    use crate::error::Error;
    let fail = |stderr: &str| {
        Err(Error::Command(CommandFailure {
            argv: vec!["zpool".into(), "import".into()],
            status: "exit status 1".into(),
            stderr: stderr.to_string(),
        }))
    };
    let captured = include_str!("../../tests/fixtures/zfs-errors.txt")
        .lines()
        .find(|l| l.starts_with("cannot import"))
        .unwrap();
    assert!(!import_outcome(fail(captured)).unwrap());
    assert!(import_outcome(Ok(String::new())).unwrap());
    for other in [
        "cannot import 'cairn-p': pool was previously in use from another system.",
        "cannot import 'cairn-p': one or more devices is currently unavailable",
        "cannot import 'cairn-p': I/O error",
    ] {
        let e = import_outcome(fail(other)).unwrap_err();
        assert!(e.to_string().contains(other), "{e}");
    }
}

#[test]
fn a_directory_source_is_refused_with_the_sources_that_work() {
    use crate::backend::{PoolSource, PoolSpec};
    let b = super::ZfsBackend::new(PoolSpec {
        name: "p1".parse().unwrap(),
        source: PoolSource::Directory {
            path: "/srv/p1".into(),
        },
        state_dir: "/srv/cairn/p1".into(),
    });
    for op in ["create pool", "mount pool", "delete pool"] {
        let msg = b.wrong_source(op).to_string();
        for hint in ["/dev/DISK", "FILE --size", "POOL/DATASET", op] {
            assert!(msg.contains(hint), "{msg}");
        }
    }
}
