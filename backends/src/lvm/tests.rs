//! The pure decisions the driver makes over one `lvs` report (`&[Lv]`): which LVs an
//! operation sees, whether the pool is there and full, what `mount_pool` cleans up, what a
//! restore or a new object clears out of its way, what is listed.

use super::parse::Lv;
use super::pool::{LeftoverPlan, Retag};
use super::{naming, LvmBackend};
use crate::backend::{PoolSource, PoolSpec};
use crate::error::Error;
use crate::names::{SnapshotName, VolumeName};

fn backend() -> LvmBackend {
    LvmBackend::new(PoolSpec {
        name: "p1".parse().unwrap(),
        source: PoolSource::Device {
            path: "/dev/vdz".into(),
            force: false,
        },
        state_dir: "/srv/cairn/p1".into(),
    })
}

fn vol(s: &str) -> VolumeName {
    s.parse().unwrap()
}

fn snap(s: &str) -> SnapshotName {
    s.parse().unwrap()
}

fn lv(name: &str, attr: &str, tags: &[String]) -> Lv {
    Lv {
        name: name.to_string(),
        attr: attr.to_string(),
        size: 1 << 30,
        segtype: "thin".into(),
        data_percent: None,
        metadata_percent: None,
        thin_id: None,
        active: false,
        uuid: format!("uuid-{name}"),
        tags: tags.to_vec(),
    }
}

/// The tags cairn gives an LV of volume `v` (snapshot `s`) made at `ns`.
fn tags(b: &LvmBackend, v: &str, s: Option<&str>, ns: i128, incomplete: bool) -> Vec<String> {
    b.tag_args(&vol(v), s.map(snap).as_ref(), ns, incomplete)
        .into_iter()
        .filter(|t| t != "--addtag")
        .collect()
}

fn thin_pool(b: &LvmBackend, data: f64, meta: f64) -> Lv {
    Lv {
        segtype: "thin-pool".into(),
        attr: "twi-aotz--".into(),
        data_percent: Some(data),
        metadata_percent: Some(meta),
        active: true,
        ..lv(
            &b.thin_pool,
            "",
            &[naming::TAG.to_string(), b.pool_tag.clone()],
        )
    }
}

fn names(lvs: &[Lv]) -> Vec<&str> {
    lvs.iter().map(|l| l.name.as_str()).collect()
}

/// A pool with volume `web` (snapshots s1, s2 and an unfinished s3), an unfinished
/// restore's new LV, an LV of another cairn pool and one cairn did not make.
fn report(b: &LvmBackend) -> Vec<Lv> {
    let other = LvmBackend::new(PoolSpec {
        name: "p2".parse().unwrap(),
        ..b.spec.clone()
    });
    let web = vol("web");
    vec![
        thin_pool(b, 40.0, 10.0),
        lv(
            &b.vol_lv(&web),
            "Vwi-a-tz--",
            &tags(b, "web", None, 5, false),
        ),
        lv(
            &b.snap_lv(&web, &snap("s2")),
            "Vri---tz-k",
            &tags(b, "web", Some("s2"), 20, false),
        ),
        lv(
            &b.snap_lv(&web, &snap("s1")),
            "Vri---tz-k",
            &tags(b, "web", Some("s1"), 10, false),
        ),
        lv(
            &b.snap_lv(&web, &snap("s3")),
            "Vwi---tz-k",
            &tags(b, "web", Some("s3"), 30, true),
        ),
        lv(
            &b.restore_lv("n", &web),
            "Vwi---tz--",
            &tags(b, "web", None, 5, true),
        ),
        lv(
            &other.vol_lv(&vol("db")),
            "Vwi---tz--",
            &tags(&other, "db", None, 1, false),
        ),
        lv("home", "-wi-ao----", &[]),
    ]
}

#[test]
fn live_is_our_complete_lvs_without_the_pool() {
    let b = backend();
    let all = report(&b);
    b.check_pool(&all).unwrap();
    let web = vol("web");
    assert_eq!(
        names(&b.live(&all)),
        [
            b.vol_lv(&web),
            b.snap_lv(&web, &snap("s2")),
            b.snap_lv(&web, &snap("s1"))
        ]
    );
    assert_eq!(b.ours(&all).len(), 6);
    // Found in the live LVs only: the unfinished snapshot is not there.
    let live = b.live(&all);
    assert!(b.find_volume(&live, &web).is_ok());
    assert!(b.find_snapshot(&live, &web, &snap("s1")).is_ok());
    assert!(b.find_snapshot(&live, &web, &snap("s3")).is_err());
    assert!(b.find_volume(&live, &vol("db")).is_err());
}

#[test]
fn a_missing_or_foreign_thin_pool_is_refused() {
    let b = backend();
    let mut all = report(&b);
    all.remove(0);
    assert!(matches!(b.check_pool(&all), Err(Error::Invalid { .. })));
    let mut foreign = thin_pool(&b, 0.0, 0.0);
    foreign.tags.clear();
    all.push(foreign);
    assert!(matches!(b.check_pool(&all), Err(Error::Invalid { .. })));
    assert!(b.check_pool(&[]).is_err());
}

#[test]
fn fill_and_usage_come_from_the_reports_thin_pool() {
    let b = backend();
    let mut all = report(&b);
    b.check_fill(&all, "create snapshot", "web/s4").unwrap();
    let u = b.usage_in(&all).unwrap();
    assert_eq!((u.total, u.used, u.free), (1 << 30, 429496729, 644245095));
    all[0] = thin_pool(&b, 95.0, 10.0);
    assert!(matches!(
        b.check_fill(&all, "create snapshot", "web/s4"),
        Err(Error::NoSpace { .. })
    ));
    all[0] = thin_pool(&b, 10.0, 96.5);
    let e = b.check_fill(&all, "clone volume", "c").unwrap_err();
    assert!(e.to_string().contains("metadata 96.5%"), "{e}");
    assert!(b.check_fill(&all[1..], "clone volume", "c").is_err());
}

#[test]
fn only_our_incomplete_lvs_are_cleared_out_of_the_way() {
    let b = backend();
    let all = report(&b);
    let web = vol("web");
    assert!(b.is_leftover(&all, &b.snap_lv(&web, &snap("s3"))));
    assert!(!b.is_leftover(&all, &b.snap_lv(&web, &snap("s1"))));
    assert!(!b.is_leftover(&all, "home"));
    assert!(!b.is_leftover(&all, &b.vol_lv(&vol("new"))));
    // A restore clears its new LV, and its old one only if incomplete.
    let (new, old) = (b.restore_lv("n", &web), b.restore_lv("o", &web));
    assert_eq!(
        b.restore_stale(&all, &new, &old),
        std::slice::from_ref(&new)
    );
    let mut all2 = all.clone();
    all2.push(lv(&old, "Vwi---tz--", &tags(&b, "web", None, 5, false)));
    assert_eq!(
        b.restore_stale(&all2, &new, &old),
        std::slice::from_ref(&new)
    );
    all2.push(lv(&old, "Vwi---tz--", &tags(&b, "web", None, 5, true)));
    assert_eq!(b.restore_stale(&all2, &new, &old), [new, old]);
}

#[test]
fn listings_read_the_report() {
    let b = backend();
    let all = report(&b);
    let live = b.live(&all);
    let web = vol("web");
    let snaps = b.snapshots_in(&live, &web);
    let got: Vec<(&str, i128)> = snaps
        .iter()
        .map(|s| (s.name.as_str(), s.created_at.as_nanosecond()))
        .collect();
    assert_eq!(got, [("s1", 10), ("s2", 20)]);
    assert!(b.snapshots_in(&live, &vol("db")).is_empty());
    let vols = b.volumes_in(&live);
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].name, web);
}

#[test]
fn leftover_plan_removes_incomplete_lvs_and_settles_restores() {
    let b = backend();
    let mut all = report(&b);
    let (web, mail, app) = (vol("web"), vol("mail"), vol("app"));
    // web: a finished restore (v- exists): its old LV goes.
    all.push(lv(
        &b.restore_lv("o", &web),
        "Vwi---tz--",
        &tags(&b, "web", None, 5, false),
    ));
    // mail: interrupted after the volume was renamed away: renamed back.
    all.push(lv(
        &b.restore_lv("o", &mail),
        "Vwi---tz--",
        &tags(&b, "mail", None, 1, false),
    ));
    // app: interrupted after the new LV took the name, before it was completed.
    all.push(lv(
        &b.vol_lv(&app),
        "Vwi---tz--",
        &tags(&b, "app", None, 2, true),
    ));
    all.push(lv(
        &b.restore_lv("o", &app),
        "Vwi---tz--",
        &tags(&b, "app", None, 2, false),
    ));
    let plan = b.leftover_plan(&all);
    assert_eq!(
        plan,
        LeftoverPlan {
            incomplete: vec![
                b.snap_lv(&web, &snap("s3")),
                b.restore_lv("n", &web),
                b.vol_lv(&app)
            ],
            replaced: vec![b.restore_lv("o", &web)],
            rename_back: vec![
                (b.restore_lv("o", &mail), b.vol_lv(&mail)),
                (b.restore_lv("o", &app), b.vol_lv(&app)),
            ],
            undo_rename: vec![],
            retag: vec![],
        }
    );
    // Nothing left over: nothing to do.
    let clean: Vec<Lv> = report(&b)
        .into_iter()
        .filter(|l| !l.has_tag(naming::TAG_INCOMPLETE))
        .collect();
    assert_eq!(b.leftover_plan(&clean), LeftoverPlan::default());
}

#[test]
fn a_volume_mounted_from_its_own_device_needs_no_lookup() {
    let b = backend();
    let web = vol("web");
    let entry = |source: String| crate::mounts::MountEntry {
        mount_point: b.vol_mnt(&web),
        root: "/".into(),
        fs_type: "ext4".into(),
        source,
        options: "rw".into(),
    };
    let dev = b.dev(&b.vol_lv(&web)).display().to_string();
    assert!(dev.starts_with("/dev/mapper/cairn_p1_"), "{dev}");
    assert!(b.is_mounted_from(&entry(dev), &b.vol_lv(&web)));
    assert!(!b.is_mounted_from(&entry("/dev/vdb1".into()), &b.vol_lv(&web)));
    assert!(!b.is_mounted_from(&entry("tmpfs".into()), &b.vol_lv(&web)));
    let other = b.dev(&b.vol_lv(&vol("db"))).display().to_string();
    assert!(!b.is_mounted_from(&entry(other), &b.vol_lv(&web)));
}

#[test]
fn pools_of_one_name_on_one_thin_pool_stay_apart() {
    let on_existing = |state_dir: &str| {
        LvmBackend::new(PoolSpec {
            name: "p1".parse().unwrap(),
            source: PoolSource::Existing {
                name: "vg0/thin".into(),
            },
            state_dir: state_dir.into(),
        })
    };
    let (a, b) = (on_existing("/srv/a/p1"), on_existing("/srv/b/p1"));
    assert_eq!((a.vg.as_str(), a.thin_pool.as_str()), ("vg0", "thin"));
    assert_ne!(a.pool_tag, b.pool_tag);
    let web = vol("web");
    assert_ne!(a.vol_lv(&web), b.vol_lv(&web));
    // The thin pool carries both pools' tags; each sees only its own LVs.
    let mut pool = thin_pool(&a, 10.0, 1.0);
    pool.tags.push(b.pool_tag.clone());
    let all = vec![
        pool,
        lv(
            &a.vol_lv(&web),
            "Vwi---tz--",
            &tags(&a, "web", None, 1, false),
        ),
        lv(
            &b.vol_lv(&web),
            "Vwi---tz--",
            &tags(&b, "web", None, 2, true),
        ),
    ];
    a.check_pool(&all).unwrap();
    b.check_pool(&all).unwrap();
    assert_eq!(names(&a.live(&all)), [a.vol_lv(&web)]);
    assert!(b.live(&all).is_empty());
    // b's unfinished volume is b's to remove, never a's.
    assert_eq!(a.leftover_plan(&all), LeftoverPlan::default());
    assert_eq!(b.leftover_plan(&all).incomplete, [b.vol_lv(&web)]);
    assert!(!a.is_leftover(&all, &b.vol_lv(&web)));
}

/// Volume `web` with snapshots s1 and s2, all complete, in an otherwise empty pool.
fn web_pool(b: &LvmBackend) -> Vec<Lv> {
    let web = vol("web");
    let mut all = vec![
        thin_pool(b, 10.0, 1.0),
        lv(
            &b.vol_lv(&web),
            "Vwi---tz--",
            &tags(b, "web", None, 1, false),
        ),
    ];
    for (s, ns) in [("s1", 2), ("s2", 3)] {
        let name = b.snap_lv(&web, &snap(s));
        all.push(lv(&name, "Vri---tz-k", &tags(b, "web", Some(s), ns, false)));
    }
    all
}

/// The LV called `from` in `all`, renamed to `to` (its tags unchanged: lvrename done,
/// the retag not yet).
fn rename(all: &mut [Lv], from: &str, to: &str) {
    all.iter_mut().find(|l| l.name == from).unwrap().name = to.to_string();
}

/// The LV called `name` in `all`, with tag `from` swapped for `to` (the retag done).
fn swap_tag(all: &mut [Lv], name: &str, from: &str, to: &str) {
    let lv = all.iter_mut().find(|l| l.name == name).unwrap();
    let t = lv.tags.iter_mut().find(|t| *t == from).unwrap();
    *t = to.to_string();
}

/// The LV names of volume `v` and its snapshots s1, s2: [volume, s1, s2].
fn lv_names(b: &LvmBackend, v: &str) -> [String; 3] {
    let v = vol(v);
    [
        b.vol_lv(&v),
        b.snap_lv(&v, &snap("s1")),
        b.snap_lv(&v, &snap("s2")),
    ]
}

fn retags(lvs: &[String], key: &str, from: &str, to: &str) -> Vec<Retag> {
    lvs.iter()
        .map(|lv| Retag {
            lv: lv.clone(),
            deltag: naming::tag(key, from),
            addtag: naming::tag(key, to),
        })
        .collect()
}

#[test]
fn a_rename_cut_short_among_the_renames_is_undone() {
    let b = backend();
    let mut all = web_pool(&b);
    let (old, new) = (lv_names(&b, "web"), lv_names(&b, "www"));
    rename(&mut all, &old[1], &new[1]); // s1 renamed; s2 and the volume not yet
    let plan = b.leftover_plan(&all);
    assert_eq!(plan.undo_rename, [(new[1].clone(), old[1].clone())]);
    assert!(plan.retag.is_empty() && plan.incomplete.is_empty());
}

#[test]
fn a_rename_cut_short_before_the_retag_is_finished_from_the_lv_names() {
    let b = backend();
    let mut all = web_pool(&b);
    let (old, new) = (lv_names(&b, "web"), lv_names(&b, "www"));
    for i in 0..3 {
        rename(&mut all, &old[i], &new[i]);
    }
    // Hidden until mount_pool settles it: no volume is listed under either name.
    assert!(b.volumes_in(&b.live(&all)).is_empty());
    let plan = b.leftover_plan(&all);
    assert_eq!(plan.retag, retags(&new, naming::KEY_VOLUME, "web", "www"));
    assert!(plan.undo_rename.is_empty());
    // Another volume's, between them in the VG's order: each settled once.
    let db = b.vol_lv(&vol("db2"));
    all.insert(2, lv(&db, "Vwi---tz--", &tags(&b, "db", None, 4, false)));
    let plan = b.leftover_plan(&all);
    let mut want = retags(&[db], naming::KEY_VOLUME, "db", "db2");
    want.extend(retags(&new, naming::KEY_VOLUME, "web", "www"));
    assert_eq!(plan.retag, want);
}

#[test]
fn a_rename_cut_short_in_the_retag_is_finished() {
    let b = backend();
    let mut all = web_pool(&b);
    let (old, new) = (lv_names(&b, "web"), lv_names(&b, "www"));
    for i in 0..3 {
        rename(&mut all, &old[i], &new[i]);
    }
    // LVM retags in the VG's order, whatever the order on the command line.
    let (from, to) = (
        naming::tag(naming::KEY_VOLUME, "web"),
        naming::tag(naming::KEY_VOLUME, "www"),
    );
    swap_tag(&mut all, &new[2], &from, &to);
    let plan = b.leftover_plan(&all);
    assert_eq!(
        plan.retag,
        retags(&new[..2], naming::KEY_VOLUME, "web", "www")
    );
    assert!(plan.undo_rename.is_empty());
}

#[test]
fn a_rename_to_a_hashed_name_is_finished_once_retagging_began_else_undone() {
    let b = backend();
    let long = "w".repeat(200);
    let (old, new) = (lv_names(&b, "web"), lv_names(&b, &long));
    assert!(new.iter().all(|n| n.contains("_h")), "{new:?}");
    let mut all = web_pool(&b);
    for i in 0..3 {
        rename(&mut all, &old[i], &new[i]);
    }
    // The new name is nowhere but in hashed LV names: all three go back.
    let plan = b.leftover_plan(&all);
    assert_eq!(
        plan.undo_rename,
        [
            (new[0].clone(), old[0].clone()),
            (new[1].clone(), old[1].clone()),
            (new[2].clone(), old[2].clone()),
        ]
    );
    assert!(plan.retag.is_empty());
    // Once one LV carries the new name in its tags, the others follow it.
    let (from, to) = (
        naming::tag(naming::KEY_VOLUME, "web"),
        naming::tag(naming::KEY_VOLUME, &long),
    );
    swap_tag(&mut all, &new[0], &from, &to);
    let plan = b.leftover_plan(&all);
    assert_eq!(
        plan.retag,
        retags(&new[1..], naming::KEY_VOLUME, "web", &long)
    );
    assert!(plan.undo_rename.is_empty());
}

#[test]
fn a_snapshot_rename_cut_short_is_finished_or_undone() {
    let b = backend();
    let web = vol("web");
    let s1 = b.snap_lv(&web, &snap("s1"));
    let mut all = web_pool(&b);
    let s9 = b.snap_lv(&web, &snap("s9"));
    rename(&mut all, &s1, &s9);
    let plan = b.leftover_plan(&all);
    assert_eq!(plan.retag, retags(&[s9], naming::KEY_SNAPSHOT, "s1", "s9"));
    assert!(plan.undo_rename.is_empty());
    // A hashed new name cannot be read back: renamed back.
    let mut all = web_pool(&b);
    let hashed = b.snap_lv(&web, &snap(&"s".repeat(200)));
    rename(&mut all, &s1, &hashed);
    let plan = b.leftover_plan(&all);
    assert_eq!(plan.undo_rename, [(hashed, s1.clone())]);
    assert!(plan.retag.is_empty());
    // Never onto a name another LV has taken since.
    all.push(lv(
        &s1,
        "Vri---tz-k",
        &tags(&b, "web", Some("s1"), 9, false),
    ));
    assert_eq!(b.leftover_plan(&all), LeftoverPlan::default());
}

#[test]
fn tags_decode_to_the_names_they_carry() {
    let b = backend();
    let v = lv("x", "Vwi-a-tz--", &tags(&b, "a%b", None, 1, false));
    assert_eq!(v.volume_name(), Some(vol("a%b")));
    assert_eq!((v.snapshot_name(), v.is_snapshot()), (None, false));
    let s = lv("y", "Vri-a-tz-k", &tags(&b, "web", Some("ünï"), 1, false));
    assert_eq!(s.volume_name(), Some(vol("web")));
    assert_eq!(s.snapshot_name(), Some(snap("ünï")));
    assert!(s.is_snapshot());
    // A tag that does not decode, or decodes to an invalid name, names nothing; a
    // snapshot tag still marks a snapshot.
    for bad in ["a_zz", "a-b", "_2fx", ""] {
        let l = lv(
            "z",
            "Vri-a-tz-k",
            &[
                format!("{}={bad}", naming::KEY_VOLUME),
                format!("{}={bad}", naming::KEY_SNAPSHOT),
            ],
        );
        assert_eq!((l.volume_name(), l.snapshot_name()), (None, None), "{bad}");
        assert!(l.is_snapshot(), "{bad}");
    }
    let untagged = lv("w", "Vwi-a-tz--", &[]);
    assert_eq!(
        (untagged.volume_name(), untagged.is_snapshot()),
        (None, false)
    );
}
