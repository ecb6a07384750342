//! The diff engine and partial restore on small trees built here.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::manifest::Manifest;

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let t = [libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }; 2];
    // SAFETY: valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            t.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0);
}

fn xattrs_work(dir: &Path) -> bool {
    let p = dir.join(".probe");
    std::fs::write(&p, b"").unwrap();
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and buffer.
    let ok =
        unsafe { libc::lsetxattr(c.as_ptr(), c"user.x".as_ptr(), b"1".as_ptr().cast(), 1, 0) } == 0;
    std::fs::remove_file(&p).unwrap();
    ok
}

/// A small tree with every kind of entry the diff must tell apart.
fn base(r: &Path) {
    for d in ["etc/nginx/conf.d", "usr/bin", "var/log", "srv/old/deep"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("etc/hostname"), b"box\n").unwrap();
    std::fs::write(r.join("etc/nginx/nginx.conf"), b"worker_processes 1;\n").unwrap();
    std::fs::write(r.join("etc/nginx/conf.d/site"), b"server {}\n").unwrap();
    std::fs::write(r.join("etc/same-size"), b"aaaa").unwrap();
    std::fs::write(r.join("etc/touched"), b"same").unwrap();
    std::fs::write(r.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    std::fs::hard_link(r.join("usr/bin/tool"), r.join("usr/bin/tool-alias")).unwrap();
    std::fs::write(r.join("srv/old/deep/file"), b"x").unwrap();
    std::fs::write(r.join("var/log/becomes-dir"), b"x").unwrap();
    std::fs::write(r.join("etc/attr"), b"x").unwrap();
    symlink("/usr/bin/tool", r.join("etc/link")).unwrap();
    for p in ["etc/same-size", "etc/touched", "etc/attr"] {
        set_mtime(&r.join(p), 1_700_000_000, 123);
    }
    set_mtime(&r.join("etc"), 1_700_000_000, 0);
}

fn copy_of(a: &Path, b: &Path) {
    crate::copy::copy_tree(a, b, crate::copy::CopyMode::Auto).unwrap();
}

/// One line per change: `<status> <kind> <path> <what,...>`, for assertions (also the
/// btrfs driver's).
pub(crate) fn summary(d: &TreeDiff) -> Vec<String> {
    d.changes
        .iter()
        .map(|c| {
            let what: Vec<&str> = c.changes.iter().map(|w| w.as_str()).collect();
            format!(
                "{} {} {} {}",
                c.status.as_str(),
                c.kind.as_str(),
                c.display_path(),
                what.join(",")
            )
            .trim_end()
            .to_string()
        })
        .collect()
}

#[test]
fn identical_trees_have_no_diff() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    base(&a);
    copy_of(&a, &b);
    let d = walk(&a, &b).unwrap();
    assert_eq!(summary(&d), Vec::<String>::new());
    assert_eq!(d.method, Method::Walk);
}

#[test]
fn every_kind_of_change_is_named() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    base(&a);
    copy_of(&a, &b);
    let xattrs = xattrs_work(&b);
    let etc_times = std::fs::symlink_metadata(b.join("etc")).unwrap();
    // Added (a file and a directory with content), deleted (a directory with content).
    std::fs::write(b.join("etc/new"), b"n").unwrap();
    std::fs::create_dir_all(b.join("srv/new/sub")).unwrap();
    std::fs::write(b.join("srv/new/sub/f"), b"f").unwrap();
    std::fs::remove_dir_all(b.join("srv/old")).unwrap();
    // Content: longer; same size and same mtime (only the bytes tell).
    std::fs::write(b.join("etc/hostname"), b"other-box\n").unwrap();
    std::fs::write(b.join("etc/same-size"), b"bbbb").unwrap();
    set_mtime(&b.join("etc/same-size"), 1_700_000_000, 123);
    // mtime alone; mode; a symlink retargeted; a file that becomes a directory.
    set_mtime(&b.join("etc/touched"), 1_700_000_001, 0);
    std::fs::set_permissions(
        b.join("etc/nginx/nginx.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::remove_file(b.join("etc/link")).unwrap();
    symlink("/usr/bin/other", b.join("etc/link")).unwrap();
    std::fs::remove_file(b.join("var/log/becomes-dir")).unwrap();
    std::fs::create_dir(b.join("var/log/becomes-dir")).unwrap();
    std::fs::write(b.join("var/log/becomes-dir/inner"), b"i").unwrap();
    // A hard link broken: the alias becomes a copy with the same bytes and metadata.
    let md = std::fs::metadata(b.join("usr/bin/tool")).unwrap();
    std::fs::remove_file(b.join("usr/bin/tool-alias")).unwrap();
    std::fs::write(b.join("usr/bin/tool-alias"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(b.join("usr/bin/tool-alias"), md.permissions()).unwrap();
    set_mtime(&b.join("usr/bin/tool-alias"), md.mtime(), md.mtime_nsec());
    if xattrs {
        set_xattr(&b.join("etc/attr"), "user.cairn", b"1");
    }
    // The parent directories' times back as they were, so only the entries show.
    let restore_times =
        |p: &str, m: &std::fs::Metadata| set_mtime(&b.join(p), m.mtime(), m.mtime_nsec());
    restore_times("etc", &etc_times);
    for p in ["", "srv", "var/log", "usr/bin"] {
        let m = std::fs::symlink_metadata(a.join(p)).unwrap();
        restore_times(p, &m);
    }

    let d = walk(&a, &b).unwrap();
    let mut want = vec![
        "modified file /etc/hostname content,mtime",
        "modified symlink /etc/link content,mtime",
        "added file /etc/new",
        "modified file /etc/nginx/nginx.conf mode",
        "modified file /etc/same-size content",
        "modified file /etc/touched mtime",
        "added dir /srv/new",
        "added dir /srv/new/sub",
        "added file /srv/new/sub/f",
        "deleted dir /srv/old",
        "deleted dir /srv/old/deep",
        "deleted file /srv/old/deep/file",
        "modified file /usr/bin/tool links",
        "modified file /usr/bin/tool-alias links",
        "modified dir /var/log/becomes-dir type",
        "added file /var/log/becomes-dir/inner",
    ];
    if xattrs {
        want.insert(0, "modified file /etc/attr xattrs");
    }
    assert_eq!(summary(&d), want);
    let tc = d
        .changes
        .iter()
        .find(|c| c.changes == [What::Type])
        .unwrap();
    assert_eq!(
        (tc.kind, tc.old_type),
        (EntryType::Dir, Some(EntryType::File))
    );
    // The same-size file had nothing but its bytes to tell it apart: it was read.
    assert!(d.hashed >= 1, "hashed {} files", d.hashed);

    // The candidate path (btrfs) gives the same answer when it names the changed paths.
    let mut c = Candidates::default();
    for ch in &d.changes {
        c.add(ch.path.clone(), false);
        c.touched.insert(ch.path.clone());
    }
    let again = compare_paths(&a, &b, &c).unwrap();
    assert_eq!(summary(&again), summary(&d));
    // The hard link broken in b changed a file with other names: the candidates may not
    // name them all, so both trees were walked.
    assert_eq!(again.method, Method::Walk);
    // Without the linked pair, only the candidates are compared; the same answer for them.
    let linked = [Path::new("usr/bin/tool"), Path::new("usr/bin/tool-alias")];
    c.paths.retain(|p, _| !linked.contains(&p.as_path()));
    c.touched.retain(|p| !linked.contains(&p.as_path()));
    let unlinked = compare_paths(&a, &b, &c).unwrap();
    assert_eq!(unlinked.method, Method::BtrfsSend);
    let want: Vec<String> = summary(&d)
        .into_iter()
        .filter(|l| !l.contains("/usr/bin/tool"))
        .collect();
    assert_eq!(summary(&unlinked), want);
    // A path the stream vouches for (only metadata commands named it) is not read.
    c.touched.clear();
    let vouched = compare_paths(&a, &b, &c).unwrap();
    assert_eq!(vouched.method, Method::BtrfsSend);
    assert!(!summary(&vouched).contains(&"modified file /etc/same-size content".to_string()));
    assert_eq!(vouched.hashed, 0);
    // Reversed, additions are deletions.
    let back = walk(&b, &a).unwrap();
    assert!(summary(&back).contains(&"deleted file /etc/new".to_string()));
    assert!(summary(&back).contains(&"added dir /srv/old".to_string()));

    // JSON shape.
    let j = serde_json::to_value(&d.changes[0]).unwrap();
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{j}");
    assert!(j["path"].as_str().unwrap().starts_with("/etc/"));
}

#[test]
fn content_change_in_a_hardlinked_file_shows_on_every_name() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    base(&a);
    copy_of(&a, &b);
    let m = std::fs::metadata(b.join("usr/bin/tool")).unwrap();
    std::fs::write(b.join("usr/bin/tool"), b"#!/bin/bash\n").unwrap();
    set_mtime(&b.join("usr/bin/tool"), m.mtime(), m.mtime_nsec());
    let d = walk(&a, &b).unwrap();
    assert_eq!(
        summary(&d),
        [
            "modified file /usr/bin/tool content",
            "modified file /usr/bin/tool-alias content"
        ]
    );
    // Candidates that name one of the two names (as a send stream does) give both.
    let mut c = Candidates::default();
    c.add("usr/bin/tool".into(), false);
    c.touched.insert("usr/bin/tool".into());
    let by_candidates = compare_paths(&a, &b, &c).unwrap();
    assert_eq!(summary(&by_candidates), summary(&d));
    assert_eq!(by_candidates.method, Method::Walk);
}

#[test]
fn restore_paths_puts_back_exactly_those_paths() {
    let t = tempfile::tempdir().unwrap();
    let (snap, live) = (t.path().join("snap"), t.path().join("live"));
    std::fs::create_dir(&snap).unwrap();
    base(&snap);
    copy_of(&snap, &live);
    // Change inside and outside the paths to restore.
    std::fs::write(live.join("etc/nginx/nginx.conf"), b"changed\n").unwrap();
    std::fs::remove_file(live.join("etc/nginx/conf.d/site")).unwrap();
    std::fs::write(live.join("etc/nginx/added"), b"a").unwrap();
    std::fs::remove_dir_all(live.join("srv")).unwrap();
    std::fs::write(live.join("etc/hostname"), b"kept change\n").unwrap();
    std::fs::write(live.join("var/log/new.log"), b"log").unwrap();
    let before = Manifest::of(&live).unwrap();
    let root_before = std::fs::symlink_metadata(&live).unwrap();

    let paths: Vec<TreePath> = [
        "/etc/nginx",
        "/srv/old/deep/file",
        "/var/log/new.log",
        "/usr/bin",
    ]
    .iter()
    .map(|p| p.parse().unwrap())
    .collect();
    let stats = restore_paths(&snap, &live, &paths).unwrap();
    assert_eq!(
        (stats.restored, stats.removed, stats.parents_created),
        (3, 1, 3)
    );

    let (ms, ml) = (Manifest::of(&snap).unwrap(), Manifest::of(&live).unwrap());
    let under = |m: &Manifest, pre: &str| -> Vec<(String, crate::manifest::Entry)> {
        m.entries
            .iter()
            .filter(|(k, _)| *k == pre || k.starts_with(&format!("{pre}/")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for p in ["etc/nginx", "srv/old/deep/file", "usr/bin", "srv"] {
        assert_eq!(
            under(&ml, p),
            under(&ms, p),
            "{p} differs from the snapshot"
        );
    }
    // The hard link between the restored files is a hard link again.
    let (x, y) = (
        std::fs::metadata(live.join("usr/bin/tool")).unwrap(),
        std::fs::metadata(live.join("usr/bin/tool-alias")).unwrap(),
    );
    assert_eq!(x.ino(), y.ino());
    assert!(!live.join("var/log/new.log").exists());
    // Everything else as it was, the parents' times included.
    assert_eq!(
        std::fs::read(live.join("etc/hostname")).unwrap(),
        b"kept change\n"
    );
    for p in ["etc", "etc/hostname", "var/log", "var"] {
        assert_eq!(ml.entries[p], before.entries[p], "{p} was touched");
    }
    let root_after = std::fs::symlink_metadata(&live).unwrap();
    assert_eq!(
        (root_after.mtime(), root_after.mtime_nsec()),
        (root_before.mtime(), root_before.mtime_nsec())
    );
    assert_eq!(
        std::fs::read_dir(&live).unwrap().count(),
        std::fs::read_dir(&snap).unwrap().count()
    );
}

#[test]
fn restore_paths_refuses_bad_paths_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (snap, live) = (t.path().join("snap"), t.path().join("live"));
    std::fs::create_dir(&snap).unwrap();
    base(&snap);
    copy_of(&snap, &live);
    std::fs::create_dir(t.path().join("outside")).unwrap();
    std::fs::write(t.path().join("outside/secret"), b"s").unwrap();
    symlink(t.path().join("outside"), live.join("escape")).unwrap();
    symlink("../..", snap.join("var/up")).unwrap_or(());
    std::fs::write(live.join("etc/hostname"), b"changed\n").unwrap();
    // A directory of the snapshot that is a file in the live state.
    std::fs::remove_dir_all(live.join("etc/nginx")).unwrap();
    std::fs::write(live.join("etc/nginx"), b"now a file").unwrap();
    let before = Manifest::of(&live).unwrap();
    for (p, want) in [
        (
            "/etc/nginx/conf.d/site",
            "/etc/nginx is a file in the live state; restore /etc/nginx instead",
        ),
        ("/escape/secret", "/escape is a symlink in the live state"),
        ("/etc/link/x", "/etc/link is a symlink"),
        ("/nope/nothing", "exists in neither"),
        ("/", "is the root"),
    ] {
        let paths = vec!["/etc/hostname".parse().unwrap(), p.parse().unwrap()];
        let e = restore_paths(&snap, &live, &paths).unwrap_err().to_string();
        assert!(
            e.contains(&format!("path {p}")) && e.contains(want),
            "{p}: {e}"
        );
        let early = check_restore_paths(&snap, &live, &paths).unwrap_err();
        assert_eq!(early.to_string(), e);
    }
    // The path of that file itself is restored as the snapshot's directory.
    let whole = vec!["/etc/nginx".parse().unwrap()];
    check_restore_paths(&snap, &live, &whole).unwrap();
    assert_eq!(Manifest::of(&live).unwrap(), before);
    assert!(t.path().join("outside/secret").exists());
}

#[test]
fn sparse_files_are_compared_by_content_not_hole_layout() {
    use std::os::unix::fs::FileExt;
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let len = 256u64 << 20;
    // The same bytes in both trees: one mostly holes, one with a zero block written out.
    let sparse = |p: &Path, data: &[u8]| {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(len).unwrap();
        f.write_all_at(data, len / 2).unwrap();
    };
    sparse(&a.join("same"), b"data");
    sparse(&b.join("same"), b"data");
    std::fs::File::options()
        .write(true)
        .open(b.join("same"))
        .unwrap()
        .write_all_at(&[0u8; 65536], 0)
        .unwrap();
    sparse(&a.join("other"), b"data");
    sparse(&b.join("other"), b"DATA");
    for p in ["same", "other", ""] {
        set_mtime(&a.join(p), 1_700_000_000, 0);
        set_mtime(&b.join(p), 1_700_000_000, 0);
    }
    let d = walk(&a, &b).unwrap();
    assert_eq!(summary(&d), ["modified file /other content"]);
    assert_eq!(d.hashed, 2);
    // The diff's hash of each file, from its `stat`, is the manifest's.
    let (ma, mb) = (Manifest::of(&a).unwrap(), Manifest::of(&b).unwrap());
    for (root, m) in [(&a, &ma), (&b, &mb)] {
        for name in ["same", "other"] {
            let f = std::fs::File::open(root.join(name)).unwrap();
            let st = crate::copy::meta::fstat(std::os::fd::AsFd::as_fd(&f)).unwrap();
            let h = compare::hash(f.into(), &st).unwrap();
            assert_eq!(
                m.entries[name].blake3.as_deref(),
                Some(h.to_hex().as_str()),
                "{}",
                root.join(name).display()
            );
        }
    }
    assert_eq!(ma.entries["same"].blake3, mb.entries["same"].blake3);
    assert_ne!(ma.entries["other"].blake3, mb.entries["other"].blake3);
}

#[test]
fn display_paths_escape_like_the_manifest() {
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(display_path(Path::new("")), "/");
    assert_eq!(display_path(Path::new("etc/hostname")), "/etc/hostname");
    let odd = Path::new(std::ffi::OsStr::from_bytes(b"a\\b/caf\xc3\xa9/\xff"));
    assert_eq!(display_path(odd), "/a\\\\b/café/\\xff");
}

/// `walk_backend` unmounts the snapshot views it mounted, also when the second side
/// fails, and leaves mounted those that the caller had mounted.
#[test]
fn walk_backend_unmounts_only_what_it_mounted() {
    use crate::backend::{PoolSource, PoolSpec};
    use crate::mounts::mount_at;
    use crate::Backend;
    let test = crate::testing::current_test();
    if !crate::testing::require(&test, "root", crate::testing::missing_root()) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let b = crate::dir::DirBackend::new(PoolSpec {
        name: "walkmounts".parse().unwrap(),
        source: PoolSource::StateDir,
        state_dir: t.path().join("state"),
    });
    b.create_pool().unwrap();
    let v: crate::VolumeName = "v".parse().unwrap();
    let (s0, s1, none): (
        crate::SnapshotName,
        crate::SnapshotName,
        crate::SnapshotName,
    ) = (
        "s0".parse().unwrap(),
        "s1".parse().unwrap(),
        "missing".parse().unwrap(),
    );
    b.create_volume(&v).unwrap();
    let live = b.mount_volume(&v).unwrap();
    std::fs::write(live.join("kept"), b"k").unwrap();
    b.create_snapshot(&v, &s0).unwrap();
    std::fs::write(live.join("new"), b"n").unwrap();
    b.create_snapshot(&v, &s1).unwrap();
    let (p0, p1) = (
        b.mount_snapshot(&v, &s0).unwrap(),
        b.mount_snapshot(&v, &s1).unwrap(),
    );
    b.unmount_snapshot(&v, &s1).unwrap();
    assert!(mount_at(&p1).unwrap().is_none());

    // s0 was mounted by the caller and stays; s1 was mounted by the diff and is not.
    let d = walk_backend(&b, &v, DiffSide::Snapshot(&s0), DiffSide::Snapshot(&s1)).unwrap();
    assert!(d.changes.iter().any(|c| c.path == Path::new("new")));
    assert!(
        mount_at(&p0).unwrap().is_some(),
        "the caller's view was unmounted"
    );
    assert!(
        mount_at(&p1).unwrap().is_none(),
        "the diff's view was left mounted"
    );
    assert!(
        std::fs::read_dir(&p0).unwrap().count() > 0,
        "the view is empty"
    );

    // The second side fails: the first, mounted by the diff, is unmounted again.
    b.unmount_snapshot(&v, &s0).unwrap();
    let e = walk_backend(&b, &v, DiffSide::Snapshot(&s0), DiffSide::Snapshot(&none)).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(mount_at(&p0).unwrap().is_none(), "a view was leaked");
    // Against the live state: the live volume stays mounted.
    walk_backend(&b, &v, DiffSide::Snapshot(&s1), DiffSide::Live).unwrap();
    assert!(mount_at(&p1).unwrap().is_none());
    assert!(live.join("new").exists());
    b.delete_volume(&v).unwrap();
    b.delete_pool().unwrap();
}
