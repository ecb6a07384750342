//! Importing a plain root filesystem tarball (xz, `./` member names): owners, device
//! nodes and hard links arrive exactly.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use tar::{Builder, EntryType, Header};

use crate::support::{require_root, Cairn};

fn member(kind: EntryType, path: &str, uid: u64, data: &[u8]) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(path).unwrap();
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o640 });
    h.set_uid(uid);
    h.set_gid(uid + 1);
    h.set_size(data.len() as u64);
    h.set_mtime(1_600_000_000);
    h
}

#[test]
fn plain_xz_rootfs_keeps_owners_devices_and_hardlinks() {
    if !require_root() {
        return;
    }
    let c = Cairn::new();
    let mut b = Builder::new(Vec::new());
    for (kind, path, uid, data) in [
        (EntryType::Directory, "./", 0, &b""[..]),
        (EntryType::Directory, "./etc/", 0, b""),
        (EntryType::Regular, "./etc/hostname", 1234, b"plain\n"),
    ] {
        let mut h = member(kind, path, uid, data);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let mut dev = member(EntryType::Char, "./null", 0, b"");
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_cksum();
    b.append(&dev, &b""[..]).unwrap();
    let mut link = member(EntryType::Link, "./etc/hostname.hard", 1234, b"");
    link.set_link_name("./etc/hostname").unwrap();
    link.set_cksum();
    b.append(&link, &b""[..]).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
    std::io::Write::write_all(&mut xz, &b.into_inner().unwrap()).unwrap();
    let file = c.dir.path().join("rootfs.image"); // no telling extension
    std::fs::write(&file, xz.finish().unwrap()).unwrap();

    let img = c.json(&[
        "image",
        "import",
        file.to_str().unwrap(),
        "--alias",
        "plain",
    ]);
    assert_eq!(img["format"], "rootfs");
    assert_eq!(img["compression"], "xz");
    c.ok(&["create", "plain", "p1"]);
    let root = PathBuf::from(c.json(&["info", "p1"])["rootfs"].as_str().unwrap());
    let host = std::fs::metadata(root.join("etc/hostname")).unwrap();
    assert_eq!(
        (host.uid(), host.gid(), host.mode() & 0o7777),
        (1234, 1235, 0o640)
    );
    assert_eq!(host.mtime(), 1_600_000_000);
    assert_eq!(host.nlink(), 2);
    assert_eq!(
        std::fs::metadata(root.join("etc/hostname.hard"))
            .unwrap()
            .ino(),
        host.ino()
    );
    let null = std::fs::symlink_metadata(root.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
}
