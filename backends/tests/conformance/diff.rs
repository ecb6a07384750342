//! `diff` and partial restore on every driver: the driver's diff (native on btrfs) must
//! equal the generic walk and name exactly the paths a full manifest comparison names.

use std::collections::BTreeSet;

use cairn_backends::diff::{self, DiffSide, Status, TreePath, What};
use cairn_backends::manifest::Manifest;

use crate::fixture::{Fixture, Tier};
use crate::harness::Req;
use crate::util::*;

/// The paths a manifest comparison says differ ("added x", "removed x", "x: field ...").
fn manifest_paths(a: &Manifest, b: &Manifest) -> BTreeSet<String> {
    a.diff_all(b)
        .iter()
        .map(|l| {
            let p = l
                .strip_prefix("added ")
                .or_else(|| l.strip_prefix("removed "))
                .unwrap_or_else(|| l.split(": ").next().unwrap());
            if p == "." {
                "/".to_string()
            } else {
                format!("/{p}")
            }
        })
        .collect()
}

fn paths(d: &diff::TreeDiff) -> BTreeSet<String> {
    d.changes.iter().map(|c| c.display_path()).collect()
}

fn has(d: &diff::TreeDiff, path: &str, status: Status, what: Option<What>) -> bool {
    d.changes.iter().any(|c| {
        c.display_path() == path
            && c.status == status
            && what.is_none_or(|w| c.changes.contains(&w))
    })
}

pub fn diff_and_partial_restore(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("web");
    let m0 = image_volume(b, &v, fx.tier.image());
    b.create_snapshot(&v, &snap("s0")).unwrap();
    let live = b.mount_volume(&v).unwrap();
    modify_image_tree(&live);
    let m1 = manifest(&live);
    b.create_snapshot(&v, &snap("s1")).unwrap();

    // The driver's answer, the walk's answer and the manifests agree.
    let (s0, s1) = (snap("s0"), snap("s1"));
    let d = b
        .diff(&v, DiffSide::Snapshot(&s0), DiffSide::Snapshot(&s1))
        .unwrap();
    let (p0, p1) = (
        b.mount_snapshot(&v, &s0).unwrap(),
        b.mount_snapshot(&v, &s1).unwrap(),
    );
    let w = diff::walk(&p0, &p1).unwrap();
    assert_eq!(d.changes, w.changes, "{:?} and the walk differ", d.method);
    assert_eq!(paths(&d), manifest_paths(&m0, &m1));
    for (path, status, what) in [
        ("/usr/bin/perl", Status::Modified, Some(What::Content)),
        ("/usr/bin/perl5.36.0", Status::Modified, Some(What::Links)),
        ("/etc/passwd", Status::Modified, Some(What::Content)),
        ("/usr/share/doc", Status::Deleted, None),
        ("/srv/cairn/new/data", Status::Added, None),
        ("/usr/bin/passwd", Status::Modified, Some(What::Mode)),
        ("/etc/shadow", Status::Modified, Some(What::Owner)),
        ("/etc/hostname", Status::Modified, Some(What::Xattrs)),
        ("/etc/group", Status::Modified, Some(What::Xattrs)),
        ("/etc/os-release", Status::Modified, Some(What::Content)),
        ("/etc/debian_version", Status::Modified, Some(What::Mtime)),
    ] {
        assert!(
            has(&d, path, status, what),
            "{path} {status:?} {what:?} missing"
        );
    }
    // Against the live state too.
    let dl = b.diff(&v, DiffSide::Snapshot(&s0), DiffSide::Live).unwrap();
    assert_eq!(dl.changes, d.changes);

    // Restore /etc and perl's two names from s0: those match s0, the rest stays.
    let want: Vec<TreePath> = ["/etc", "/usr/bin/perl", "/usr/bin/perl5.36.0", "/srv/cairn"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    let live = b.mount_volume(&v).unwrap();
    // `diff` unmounts the snapshot views it used: mount s0 again.
    let p0 = b.mount_snapshot(&v, &s0).unwrap();
    diff::restore_paths(&p0, &live, &want).unwrap();
    let m2 = manifest(&live);
    let left: BTreeSet<String> = manifest_paths(&m0, &m2);
    let expect: BTreeSet<String> = manifest_paths(&m0, &m1)
        .into_iter()
        .filter(|p| {
            !(p.starts_with("/etc")
                || p.starts_with("/usr/bin/perl")
                || p.starts_with("/srv/cairn"))
        })
        .collect();
    assert_eq!(
        left.symmetric_difference(&expect).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "after restoring /etc, perl and /srv/cairn: paths that differ from s0 but should not, or the reverse"
    );
    let after = b.diff(&v, DiffSide::Snapshot(&s0), DiffSide::Live).unwrap();
    assert_eq!(paths(&after), expect);
    b.unmount_snapshot(&v, &s0).unwrap();
    b.unmount_snapshot(&v, &s1).unwrap();
}
