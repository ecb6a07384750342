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
    // zpools already on disk carry this name: the hash must stay blake3 of the path.
    assert_eq!(
        a,
        format!(
            "cairn-cairn-test-p1-{}",
            &blake3::hash(b"/tmp/a/p1-state").to_hex()[..8]
        )
    );
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
    // `zfs list -H -p -o name,used,available,referenced,cairn:managed <ds>...`, as the
    // driver asks for the root and a volume's live dataset: the marker both see (set on
    // the root, inherited by the volume).
    let usage = include_str!("../../tests/fixtures/zfs-list-space.txt");
    let space = parse_space_rows(usage).unwrap();
    let got: Vec<(&str, u64, u64, u64, Option<&str>)> = space
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.used,
                r.available,
                r.referenced,
                r.managed.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("cairn-cap/cairn", 8859648, 359550976, 98304, Some("cap")),
            (
                "cairn-cap/cairn/volumes/web/live",
                8564736,
                359550976,
                8499200,
                Some("cap")
            ),
        ]
    );
    assert_eq!(
        super::pool::pool_usage(&space[0]),
        crate::Usage {
            total: 8859648 + 359550976,
            used: 8859648,
            free: 359550976
        }
    );
    let no_marker: String = usage
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once('\t').unwrap().0))
        .collect();
    assert!(parse_space_rows(&no_marker).is_err(), "no marker column");
    assert!(parse_space_rows("a\t1\t2\n").is_err(), "short line");
    let unset = parse_space_rows("a\t-\t-\t-\t-\n").unwrap();
    assert_eq!((unset[0].used, unset[0].managed.as_deref()), (0, None));
    assert!(parse_space_rows("a\t1\tx\t3\t-\n").is_err(), "not a number");
    assert_eq!(number("-", "x").unwrap(), None);
    assert_eq!(number("4276224", "x").unwrap(), Some(4276224));
}

/// The one listing an operation makes: a container with its filesystems and snapshots
/// (`-r`, `-t filesystem,snapshot`, [`LIST_COLS`]). User properties are inherited, so
/// every row shows the container's `cairn:volume` and the root's `cairn:managed`.
#[test]
fn parses_captured_container_listing() {
    use super::pool::{child_of, contents};
    let text = include_str!("../../tests/fixtures/zfs-list-container.txt");
    let l = parse_listing(text).unwrap();
    let web = "cairn-cap/cairn/volumes/web";
    let fs: Vec<&str> = l.filesystems.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(fs, [web, &format!("{web}/h.1"), &format!("{web}/live")]);
    for r in &l.filesystems {
        assert_eq!(r.managed.as_deref(), Some("cap"), "{}", r.name);
        assert_eq!(r.cairn_name.as_deref(), Some("web"), "{}", r.name);
        assert_eq!(r.created_at_ns, Some(1795432377123456789));
        assert!(r.creation > 1_700_000_000, "{r:?}");
    }
    let snaps: Vec<(&str, Option<&str>, bool, u64)> = l
        .snapshots
        .iter()
        .map(|r| {
            (
                r.component.as_str(),
                r.cairn_name.as_deref(),
                r.defer_destroy,
                r.userrefs,
            )
        })
        .collect();
    assert_eq!(
        snaps,
        [
            ("s1", Some("s1"), false, 1),
            (":C3:BCn:C3:AF:25", Some("ünï%"), false, 0),
            (":tclone.1", None, true, 0),
        ]
    );
    assert!(l
        .snapshots
        .iter()
        .all(|r| r.dataset == format!("{web}/live")));
    assert_eq!(l.snapshots[0].created_at_ns, Some(1795432378000000001));
    assert_eq!(l.snapshots[2].clones, [format!("{web}/h.1")]);
    // The same snapshot rows as the snapshot-only listing parses them, field for field.
    let only = parse_snapshots(
        &text
            .lines()
            .filter(|l| l.split('\t').next().unwrap().contains('@'))
            .map(|l| l.split('\t').take(9).collect::<Vec<_>>().join("\t") + "\n")
            .collect::<String>(),
    )
    .unwrap();
    assert_eq!(only, l.snapshots);
    // What is in the container: its two filesystems and the live dataset's snapshots.
    let (kids, in_it) = contents(web, &l);
    assert_eq!(kids, [format!("{web}/h.1"), format!("{web}/live")]);
    assert_eq!(in_it.len(), 3);
    assert_eq!(contents(&format!("{web}/h"), &l), (vec![], vec![]));
    assert_eq!(child_of(web, &format!("{web}/live")), Some("live"));
    assert_eq!(child_of(web, &format!("{web}/live@s1")), None);
    assert_eq!(child_of(web, &format!("{web}x/live")), None);
    // Short rows are refused.
    assert!(parse_listing("a\t1\n").is_err());
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
    // The sent snapshots' `creation`, which the received ones get.
    assert_eq!(
        full.creation_time,
        parse_snapshots(SNAPS).unwrap()[0].creation
    );
    assert_eq!(
        inc.creation_time,
        parse_snapshots(SNAPS).unwrap()[1].creation
    );
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
    for at in [8, 24, 40, 48] {
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
fn a_deferred_snapshot_plans_the_same_repairs_under_its_old_row() {
    // `do_delete_snapshot` keeps the row of a snapshot ZFS hid and deferred rather than
    // rewriting it: the plan must not tell the two apart.
    use super::pool::{repair_plan, Repair};
    let c = "tank/cairn/volumes/web";
    let kids = names(c, &["h.1", "live", "new.2"]);
    for ds in ["h.1", "live", "new.2"] {
        let ds = format!("{c}/{ds}");
        let old = [snap_row(&ds, "s1", false)];
        let hidden = [snap_row(&ds, ":tdel.9", true)];
        let plan = repair_plan(c, &kids, &old);
        assert_eq!(plan, repair_plan(c, &kids, &hidden), "{ds}");
        assert!(
            !plan.iter().any(|r| matches!(r, Repair::DropHidden(_))),
            "{ds}"
        );
    }
    // The names listed (so deletable) never look hidden.
    assert_eq!(naming::name_of(":tdel.9", Some(":tdel.9")), None);
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
    // Refused before any zfs command runs: this passes on a host without zfs too.
    use crate::backend::{Backend, PoolSource, PoolSpec};
    let tmp = tempfile::tempdir().unwrap();
    let state_dir = tmp.path().join("p1-state");
    for source in [
        PoolSource::Directory {
            path: "/srv/p1".into(),
        },
        PoolSource::StateDir,
    ] {
        let b = super::ZfsBackend::new(PoolSpec {
            name: "p1".parse().unwrap(),
            source,
            state_dir: state_dir.clone(),
        });
        let results = [
            ("create pool", b.create_pool().map(drop)),
            ("mount pool", b.mount_pool()),
            ("delete pool", b.delete_pool().map(drop)),
        ];
        for (op, res) in results {
            let msg = res.expect_err(op).to_string();
            for hint in ["/dev/DISK", "FILE --size", "POOL/DATASET", op] {
                assert!(msg.contains(hint), "{msg}");
            }
        }
        assert!(
            !state_dir.exists(),
            "a refused create made the state directory"
        );
    }
}
