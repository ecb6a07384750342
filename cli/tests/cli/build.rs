//! `cairn image build debian/bookworm`: debootstrap from the host's Debian mirror, the
//! image the README's demo uses on a fresh machine. Needs root and `debootstrap`
//! (requirement `debootstrap`); takes a few minutes.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cairn_backends::cmd::DEBOOTSTRAP;

use crate::support::{require_root, require_tool, unified_image, Cairn};

#[test]
fn image_build_makes_a_debian_rootfs_containers_start_from() {
    // The tool `cairn image build` runs, found the way it finds it: debootstrap lives
    // in /usr/sbin, which a non-root PATH lacks.
    if !require_root() || !require_tool("debootstrap", &DEBOOTSTRAP) {
        return;
    }
    let c = Cairn::new();
    let out = c.ok(&["image", "build", "debian/bookworm", "--alias", "bookworm"]);
    assert!(out.contains("bookworm"), "{out}");

    let images = c.json(&["image", "list"]);
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    let aliases = images[0]["aliases"].to_string();
    assert!(aliases.contains("bookworm"), "{aliases}");

    c.ok(&["create", "bookworm", "c1"]);
    let info = c.json(&["info", "c1"]);
    let rootfs = Path::new(info["rootfs"].as_str().unwrap()).to_path_buf();
    let version = std::fs::read_to_string(rootfs.join("etc/debian_version")).unwrap();
    assert!(
        version.starts_with("12."),
        "bookworm is Debian 12, got {version:?}"
    );
    // A minbase userland: dpkg, apt and an init-less but complete /usr, owned by root.
    for bin in ["usr/bin/dpkg", "usr/bin/apt-get", "usr/bin/bash"] {
        let md = std::fs::metadata(rootfs.join(bin)).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0), "{bin} owner");
        assert!(md.mode() & 0o111 != 0, "{bin} is not executable");
    }
    let status = std::fs::read_to_string(rootfs.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains("Package: base-files"),
        "dpkg database is empty"
    );
    // debootstrap's leftovers are not shipped.
    assert!(!rootfs.join("debootstrap").exists());
    // The build's scratch directory (<state>/build/<suite>-<pid>) is gone.
    assert_eq!(
        build_dirs(&c),
        Vec::<String>::new(),
        "left in <state>/build"
    );
}

/// What is left under the state directory's `build/`, where `image build` works.
fn build_dirs(c: &Cairn) -> Vec<String> {
    match std::fs::read_dir(c.state().join("build")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read <state>/build: {e}"),
    }
}

#[test]
fn image_build_refuses_what_it_cannot_build() {
    let c = Cairn::new();
    // Something stored, so "nothing changed" compares a real state (importing unpacks
    // owners and devices: root).
    if require_root() {
        let img = unified_image(c.dir.path(), "tiny.tar.gz", &[]);
        c.ok(&["image", "import", img.to_str().unwrap(), "--alias", "tiny"]);
        let images = c.json(&["image", "list"]);
        assert_eq!(images.as_array().unwrap().len(), 1, "{images}");
    }
    let before = c.stored();
    let err = c.fails(&["image", "build", "ubuntu/noble"]);
    assert!(err.contains("debian/<suite>"), "{err}");
    let err = c.fails(&["image", "build", "debian/Book worm"]);
    assert!(err.contains("not a Debian suite name"), "{err}");
    assert_eq!(c.stored(), before);
    assert_eq!(
        build_dirs(&c),
        Vec::<String>::new(),
        "left in <state>/build"
    );
}
