use super::*;
use tar::{Builder, EntryType, Header};

/// Appends a member with its name and link target written raw, so tests can build the
/// malicious archives the `tar` crate's own setters refuse to write.
fn put(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn unified(extra: &[(EntryType, &str, &str)]) -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    put(
        &mut b,
        EntryType::Regular,
        "metadata.yaml",
        "",
        b"architecture: x86_64\n",
    );
    put(&mut b, EntryType::Directory, "rootfs/", "", b"");
    put(&mut b, EntryType::Directory, "rootfs/etc/", "", b"");
    put(
        &mut b,
        EntryType::Regular,
        "rootfs/etc/hostname",
        "",
        b"box\n",
    );
    for (kind, path, link) in extra {
        put(&mut b, *kind, path, link, b"");
    }
    b.into_inner().unwrap()
}

fn refusal(data: &[u8]) -> Refusal {
    scan(data).expect_err("archive was accepted")
}

#[test]
fn accepts_a_unified_image_with_normal_links() {
    let data = unified(&[
        (
            EntryType::Symlink,
            "rootfs/etc/localtime",
            "/usr/share/zoneinfo/UTC",
        ),
        (EntryType::Symlink, "rootfs/etc/alias", "../etc/hostname"),
        (
            EntryType::Link,
            "rootfs/etc/hardlink",
            "rootfs/etc/hostname",
        ),
    ]);
    let s = scan(&data[..]).unwrap();
    assert_eq!(
        s.layout,
        Layout::Unified {
            prefix: "rootfs".into()
        }
    );
    assert_eq!(s.members, 5);
    assert_eq!(s.metadata_yaml.as_deref(), Some("architecture: x86_64\n"));
    assert_eq!(s.root_meta.unwrap().mode, 0o755);
}

#[test]
fn accepts_a_plain_rootfs_with_dot_prefix() {
    let mut b = Builder::new(Vec::new());
    put(&mut b, EntryType::Directory, "./", "", b"");
    put(&mut b, EntryType::Directory, "./etc/", "", b"");
    put(&mut b, EntryType::Regular, "./etc/hostname", "", b"x");
    put(&mut b, EntryType::Link, "./etc/h2", "./etc/hostname", b"");
    let s = scan(&b.into_inner().unwrap()[..]).unwrap();
    assert_eq!(s.layout, Layout::Rootfs);
    assert_eq!(s.members, 3);
}

#[test]
fn refuses_escaping_members() {
    let cases: &[(EntryType, &str, &str, &str)] = &[
        (
            EntryType::Regular,
            "rootfs/../evil",
            "",
            "path leaves the archive root",
        ),
        (EntryType::Regular, "/etc/evil", "", "path is absolute"),
        (
            EntryType::Symlink,
            "rootfs/etc/up",
            "../../x",
            "points outside the root",
        ),
        (
            EntryType::Symlink,
            "rootfs/up",
            "..",
            "points outside the root",
        ),
        (
            EntryType::Link,
            "rootfs/etc/shadow2",
            "/etc/shadow",
            "is absolute",
        ),
        (
            EntryType::Link,
            "rootfs/etc/p",
            "rootfs/../../etc/passwd",
            "leaves the archive root",
        ),
        (
            EntryType::Link,
            "rootfs/etc/m",
            "metadata.yaml",
            "is outside the root",
        ),
        (
            EntryType::Link,
            "rootfs/etc/n",
            "rootfs/etc/nothing",
            "not an earlier file",
        ),
    ];
    for (kind, path, link, want) in cases {
        let err = refusal(&unified(&[(*kind, path, link)]));
        match &err {
            Refusal::Member { member, reason } => {
                assert_eq!(member, path);
                assert!(reason.contains(want), "{path}: {reason}");
            }
            other => panic!("{path}: unexpected {other:?}"),
        }
    }
}

#[test]
fn refuses_members_below_a_symlink() {
    let err = refusal(&unified(&[
        (EntryType::Symlink, "rootfs/host", "/etc"),
        (EntryType::Regular, "rootfs/host/passwd", ""),
    ]));
    assert_eq!(
        err.to_string(),
        "member \"rootfs/host/passwd\": lies below symlink \"host\", which would be followed"
    );
}

#[test]
fn refuses_non_tar_truncated_and_corrupt() {
    assert!(matches!(refusal(b"just some text\n"), Refusal::NotTar(_)));
    assert!(matches!(refusal(&[0u8; 1024]), Refusal::NotTar(_)));

    let good = unified(&[]);
    // Cut in the middle of a member's data, and exactly at a member boundary.
    for cut in [good.len() - 1024 - 300, good.len() - 1024] {
        assert!(
            matches!(refusal(&good[..cut]), Refusal::Truncated(_)),
            "cut at {cut}"
        );
    }
    let mut bad = good.clone();
    bad[512 * 2 + 148] ^= 0x55; // checksum field of the second header
    assert!(matches!(refusal(&bad), Refusal::Corrupt(_)));
}

#[test]
fn refuses_truncated_compressed_stream() {
    let good = unified(&[]);
    let zst = zstd::encode_all(&good[..], 3).unwrap();
    let cut = &zst[..zst.len() / 2];
    let dec = crate::images::format::Compression::Zstd
        .decoder(cut)
        .unwrap();
    assert!(matches!(scan(dec), Err(Refusal::Truncated(_))));
}

#[test]
fn refuses_metadata_without_rootfs() {
    let mut b = Builder::new(Vec::new());
    put(&mut b, EntryType::Regular, "metadata.yaml", "", b"a: b\n");
    assert!(matches!(
        refusal(&b.into_inner().unwrap()),
        Refusal::Layout(_)
    ));
}

#[test]
fn symlink_climb_is_lexical_from_the_link_directory() {
    assert!(!climbs_out(Path::new("a/b/l"), Path::new("../../x")));
    assert!(climbs_out(Path::new("a/b/l"), Path::new("../../../x")));
    assert!(!climbs_out(Path::new("l"), Path::new("x/../y")));
    assert!(climbs_out(Path::new("l"), Path::new("..")));
}

#[test]
fn pax_times_keep_nanoseconds() {
    assert_eq!(
        parse_pax_time("1795421495.396535923"),
        Some((1795421495, 396535923))
    );
    assert_eq!(parse_pax_time("12.5"), Some((12, 500_000_000)));
    assert_eq!(parse_pax_time("12"), Some((12, 0)));
    assert_eq!(parse_pax_time("x"), None);
}
