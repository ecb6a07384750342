//! Refused input: each gets one line naming the object and the problem, a non-zero exit
//! status, and changes nothing stored.

use tar::EntryType;

use crate::support::{require_root, unified_image, Cairn};

/// A state with something in it when we may unpack (root): a tiny image and a container.
fn populated() -> (Cairn, bool) {
    let c = Cairn::new();
    let root = require_root();
    if root {
        let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
        c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
        c.ok(&["create", "tiny", "c1"]);
        c.ok(&["snapshot", "create", "c1"]);
        c.ok(&["create", "tiny", "c2"]);
        c.ok(&["snapshot", "create", "c2", "keep"]);
    }
    (c, root)
}

/// Runs a refused command and checks the error line and that nothing changed.
fn refused(c: &Cairn, args: &[&str], want: &str) {
    let before = c.stored();
    let line = c.fails(args);
    assert!(
        line.contains(want),
        "cairn {args:?}: got {line:?}, want {want:?}"
    );
    assert_eq!(before, c.stored(), "cairn {args:?} changed the state");
}

#[test]
fn escaping_members_are_refused() {
    let (c, _) = populated();
    let cases: &[(EntryType, &str, &str, &str)] = &[
        (
            EntryType::Regular,
            "rootfs/../../evil",
            "",
            "path leaves the archive root",
        ),
        (EntryType::Regular, "/etc/evil", "", "path is absolute"),
        (
            EntryType::Symlink,
            "rootfs/etc/up",
            "../../../etc/shadow",
            "symlink target \"../../../etc/shadow\" points outside the root",
        ),
        (
            EntryType::Link,
            "rootfs/etc/shadow",
            "/etc/shadow",
            "hard link target is absolute",
        ),
        (
            EntryType::Link,
            "rootfs/etc/p",
            "rootfs/../../etc/passwd",
            "hard link target leaves the archive root (\"..\")",
        ),
    ];
    for (i, (kind, member, link, want)) in cases.iter().enumerate() {
        let img = unified_image(
            c.dir.path(),
            &format!("evil{i}.tar.gz"),
            &[(*kind, member, link)],
        );
        let want = format!("error: image {}: member {member:?}: {want}", img.display());
        refused(
            &c,
            &["image", "import", img.to_str().unwrap(), "--alias", "evil"],
            &want,
        );
    }
    let img = unified_image(
        c.dir.path(),
        "below.tar.gz",
        &[
            (EntryType::Symlink, "rootfs/host", "/etc"),
            (EntryType::Regular, "rootfs/host/passwd", ""),
        ],
    );
    refused(
        &c,
        &["image", "import", img.to_str().unwrap()],
        "lies below symlink \"host\"",
    );
}

#[test]
fn non_tarballs_truncated_and_corrupt_archives_are_refused() {
    let (c, _) = populated();
    let d = c.dir.path();
    let text = d.join("notes.tar.gz");
    std::fs::write(&text, "not an archive at all\n").unwrap();
    refused(
        &c,
        &["image", "import", text.to_str().unwrap()],
        &format!("error: image {}: not a tarball", text.display()),
    );

    let good = std::fs::read(unified_image(d, "good.tar.gz", &[])).unwrap();
    let cut = d.join("cut.tar.gz");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    refused(
        &c,
        &["image", "import", cut.to_str().unwrap()],
        &format!("error: image {}: truncated archive", cut.display()),
    );

    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 8] ^= 0xff; // the gzip CRC32 of the data
    let corrupt = d.join("corrupt.tar.gz");
    std::fs::write(&corrupt, &bad).unwrap();
    refused(
        &c,
        &["image", "import", corrupt.to_str().unwrap()],
        &format!("error: image {}: corrupt archive", corrupt.display()),
    );

    let missing = d.join("missing.tar");
    refused(
        &c,
        &["image", "import", missing.to_str().unwrap()],
        &format!("error: image {}: cannot open", missing.display()),
    );
}

#[test]
fn unknown_objects_are_named() {
    let (c, root) = populated();
    refused(
        &c,
        &["info", "nope"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["delete", "nope"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["rename", "nope", "x"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["copy", "nope", "x"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["snapshot", "list", "nope"],
        "error: container nope: does not exist",
    );
    refused(
        &c,
        &["create", "nope", "x"],
        "error: image nope: does not exist",
    );
    refused(
        &c,
        &["image", "show", "nope"],
        "error: image nope: does not exist",
    );
    refused(
        &c,
        &["image", "delete", "nope"],
        "error: image nope: does not exist",
    );
    refused(
        &c,
        &["image", "alias", "remove", "nope"],
        "error: image alias nope: does not exist",
    );
    refused(
        &c,
        &["pool", "show", "nope"],
        "error: pool nope: does not exist",
    );
    refused(
        &c,
        &["pool", "delete", "nope"],
        "error: pool nope: does not exist",
    );
    if root {
        refused(
            &c,
            &["create", "tiny", "x", "--pool", "nope"],
            "error: pool nope: does not exist",
        );
        refused(
            &c,
            &["snapshot", "show", "c1", "nope"],
            "error: container c1: snapshot nope: does not exist",
        );
        refused(
            &c,
            &["restore", "c1", "nope"],
            "error: container c1: snapshot nope: does not exist",
        );
        refused(
            &c,
            &["snapshot", "delete", "c1", "nope"],
            "error: container c1: snapshot nope: does not exist",
        );
        refused(
            &c,
            &["copy", "c1/nope", "x"],
            "error: container c1: snapshot nope: does not exist",
        );
    }
}

#[test]
fn bad_names_formats_and_conflicts() {
    let (c, root) = populated();
    refused(
        &c,
        &["create", "tiny", "a/b"],
        "error: container \"a/b\": invalid name: must not contain \"/\"",
    );
    refused(
        &c,
        &["snapshot", "create", "c1", "-x"],
        "unexpected argument",
    );
    refused(
        &c,
        &["snapshot", "create", "c1", "a@b"],
        "error: snapshot \"a@b\": invalid name: must not contain \"@\"",
    );
    refused(
        &c,
        &["pool", "create", "a b", "--driver", "dir"],
        "error: pool \"a b\": invalid name: must not contain whitespace",
    );
    refused(
        &c,
        &["image", "alias", "add", "x y", "tiny"],
        "error: image alias \"x y\": invalid name",
    );
    refused(
        &c,
        &["list", "--format", "xml"],
        "error: --format \"xml\": invalid value; use one of: table, json",
    );
    refused(
        &c,
        &["info", "c1", "--format", "yaml"],
        "error: --format \"yaml\": invalid value",
    );
    refused(
        &c,
        &["pool", "create", "p", "--driver", "ext4"],
        "error: --driver \"ext4\": invalid value",
    );
    if root {
        refused(&c, &["image", "delete", "tiny"], "error: image ");
        refused(
            &c,
            &["image", "delete", "tiny"],
            "in use by container(s) c1, c2",
        );
        refused(
            &c,
            &["pool", "delete", "default"],
            "error: pool default: in use by container(s) c1, c2",
        );
        refused(
            &c,
            &["create", "tiny", "c1"],
            "error: container c1: already exists",
        );
        refused(
            &c,
            &["rename", "c1", "c2"],
            "error: container c2: already exists",
        );
        refused(
            &c,
            &["snapshot", "create", "c1", "snap0"],
            "error: container c1: snapshot snap0: already exists",
        );
        refused(
            &c,
            &["restore", "c1", "c2/keep"],
            "error: container c1: snapshot c2/keep: belongs to container c2",
        );
        refused(
            &c,
            &["snapshot", "create", "c1", "--label", "novalue"],
            "error: container c1: label \"novalue\": expected KEY=VALUE",
        );
    }
}
