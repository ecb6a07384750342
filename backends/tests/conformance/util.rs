//! What the test bodies share: names, manifests of volumes and snapshots, the image,
//! a synthetic tree with every kind of file, and the modifications the bodies make.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use cairn_backends::manifest::Manifest;
use cairn_backends::{Backend, Error, SnapshotName, VolumeName};

pub use cairn_backends::testing::{extract_image, IMAGE_ROOTFS};

use crate::fixture::sh;

pub fn vol(s: &str) -> VolumeName {
    s.parse().unwrap()
}

pub fn snap(s: &str) -> SnapshotName {
    s.parse().unwrap()
}

pub fn manifest(p: &Path) -> Manifest {
    Manifest::of(p).unwrap_or_else(|e| panic!("manifest of {}: {e}", p.display()))
}

/// The manifest of a volume's live state.
pub fn vol_manifest(b: &dyn Backend, v: &VolumeName) -> Manifest {
    let p = b
        .mount_volume(v)
        .unwrap_or_else(|e| panic!("mount_volume {v}: {e}"));
    manifest(&p)
}

/// The manifest of a snapshot, read through `mount_snapshot`.
pub fn snap_manifest(b: &dyn Backend, v: &VolumeName, s: &SnapshotName) -> Manifest {
    let p = b
        .mount_snapshot(v, s)
        .unwrap_or_else(|e| panic!("mount_snapshot {v}@{s}: {e}"));
    let m = manifest(&p);
    b.unmount_snapshot(v, s)
        .unwrap_or_else(|e| panic!("unmount_snapshot {v}@{s}: {e}"));
    m
}

/// Panics with the differences unless the manifests are equal.
#[track_caller]
pub fn assert_same(expected: &Manifest, actual: &Manifest, what: &str) {
    let d = expected.diff(actual);
    assert!(
        d.is_empty(),
        "{what}: differs from what it should be:\n  {}",
        d.join("\n  ")
    );
}

/// Asserts `r` is the error `want` says, printing it otherwise.
#[track_caller]
pub fn assert_err<T: std::fmt::Debug>(
    r: cairn_backends::Result<T>,
    want: fn(&Error) -> bool,
    what: &str,
) {
    match r {
        Err(e) if want(&e) => {}
        other => panic!("{what}: wrong result {other:?}"),
    }
}

pub fn is_not_found(e: &Error) -> bool {
    e.is_not_found()
}

pub fn is_exists(e: &Error) -> bool {
    matches!(e, Error::AlreadyExists { .. })
}

pub fn is_not_supported(e: &Error) -> bool {
    matches!(e, Error::NotSupported { .. })
}

pub fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Busy { .. })
}

pub fn volume_names(b: &dyn Backend) -> Vec<String> {
    b.list_volumes()
        .expect("list_volumes")
        .into_iter()
        .map(|v| v.name.to_string())
        .collect()
}

pub fn snapshot_names(b: &dyn Backend, v: &VolumeName) -> Vec<String> {
    b.list_snapshots(v)
        .unwrap_or_else(|e| panic!("list_snapshots {v}: {e}"))
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

/// Creates `v` and fills it with `members` of the image (the fixture's
/// [`Fixture::image`](crate::fixture::Fixture::image), or `IMAGE_ROOTFS` for all of it);
/// returns its manifest.
pub fn image_volume(b: &dyn Backend, v: &VolumeName, members: &[&str]) -> Manifest {
    let a = b
        .create_volume(v)
        .unwrap_or_else(|e| panic!("create_volume {v}: {e}"));
    assert!(a.is_created(), "create_volume {v}: {a:?}");
    let p = b.mount_volume(v).unwrap();
    extract_image(&p, members);
    manifest(&p)
}

/// Creates `v` and fills it with the synthetic tree; returns its manifest.
pub fn tree_volume(b: &dyn Backend, v: &VolumeName, seed: u64) -> Manifest {
    let a = b
        .create_volume(v)
        .unwrap_or_else(|e| panic!("create_volume {v}: {e}"));
    assert!(a.is_created(), "create_volume {v}: {a:?}");
    let p = b.mount_volume(v).unwrap();
    synthetic_tree(&p, seed);
    manifest(&p)
}

/// Deterministic pseudo-random bytes (xorshift), so content is not compressible or zero.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write_noise(p: &Path, len: usize, seed: u64) {
    let mut f = std::fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    for (i, chunk) in (0..len).step_by(1 << 20).enumerate() {
        let n = (len - chunk).min(1 << 20);
        f.write_all(&noise(n, seed + i as u64)).unwrap();
    }
    f.sync_all().unwrap();
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

pub fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let ts = [libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }; 2];
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c(p).as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        r,
        0,
        "utimensat {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// `lsetxattr`, returning the errno on failure.
pub fn try_set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let n = CString::new(name).unwrap();
    let r = unsafe {
        libc::lsetxattr(
            c(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    try_set_xattr(p, name, value)
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", p.display()));
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

pub fn lchown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {}: {e}", p.display()));
}

pub fn mknod(p: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) {
    let r = unsafe { libc::mknod(c(p).as_ptr(), kind | mode, libc::makedev(major, minor)) };
    assert_eq!(
        r,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// A `security.capability` value (v2): cap_net_raw, permitted and effective.
const CAP_NET_RAW_EP: [u8; 20] = [
    0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// A tree with every kind of entry and attribute a container rootfs can hold: devices,
/// fifo, socket, setuid/setgid/sticky, high (shifted) owners, xattrs in the user, trusted
/// and security namespaces, ACLs (access and default), hard links, dangling and absolute
/// symlinks, a sparse file, odd names, nanosecond mtimes (on directories too).
pub fn synthetic_tree(root: &Path, seed: u64) {
    let d = |p: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let f = |p: &str, data: &[u8]| {
        let p = root.join(p);
        std::fs::write(&p, data).unwrap();
        p
    };
    d("etc/deep/a/b/c/d/e/f/g");
    d("empty-dir");
    f("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    f("empty-file", b"");
    write_noise(&root.join("etc/blob"), 3 << 20, seed);
    f("etc/deep/a/b/c/d/e/f/g/leaf", &noise(1000, seed + 1));
    // Owners and modes (owners before xattrs: chown clears security.capability).
    let suid = f("usr-bin-passwd", &noise(5000, seed + 2));
    chmod(&suid, 0o4755);
    let sgid = d("var/mail");
    lchown(&sgid, 0, 8);
    chmod(&sgid, 0o2775);
    let sticky = d("tmp");
    chmod(&sticky, 0o1777);
    let shifted = f("home-user-file", b"owned by a shifted uid");
    lchown(&shifted, 1_000_000 + 1000, 1_000_000 + 1000);
    chmod(&shifted, 0o600);
    // Special files.
    d("dev");
    mknod(&root.join("dev/null"), libc::S_IFCHR, 0o666, 1, 3);
    mknod(&root.join("dev/loop9"), libc::S_IFBLK, 0o660, 7, 9);
    mknod(&root.join("dev/fifo"), libc::S_IFIFO, 0o644, 0, 0);
    drop(std::os::unix::net::UnixListener::bind(root.join("dev/sock")).unwrap());
    // Links.
    std::os::unix::fs::symlink("etc/passwd", root.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling-link")).unwrap();
    let h = f("hard-a", &noise(4096, seed + 3));
    std::fs::hard_link(&h, root.join("etc/hard-b")).unwrap();
    std::fs::hard_link(&h, root.join("etc/deep/hard-c")).unwrap();
    // Sparse: 1 GiB apparent, 8 KiB of data in the middle.
    let sp = std::fs::File::create(root.join("sparse")).unwrap();
    sp.set_len(1 << 30).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sp, &noise(8192, seed + 4), 512 << 20).unwrap();
    drop(sp);
    // Odd names.
    f("name with spaces", b"s");
    f("new\nline", b"n");
    f(&"L".repeat(255), b"long");
    std::fs::write(
        root.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9")),
        b"x",
    )
    .unwrap();
    // Attributes.
    set_xattr(&root.join("etc/passwd"), "user.cairn.test", b"value");
    set_xattr(&root.join("etc/passwd"), "trusted.cairn", &[0, 1, 2, 255]);
    set_xattr(&suid, "security.capability", &CAP_NET_RAW_EP);
    set_xattr(&root.join("etc/blob"), "user.big", &noise(3000, seed + 5));
    sh(Command::new("setfacl")
        .args(["-m", "u:1000:rwx,g:42:r"])
        .arg(root.join("etc/deep")));
    sh(Command::new("setfacl")
        .args(["-d", "-m", "u:1000:rx"])
        .arg(root.join("etc/deep")));
    sh(Command::new("setfacl")
        .args(["-m", "u:33:r"])
        .arg(root.join("etc/passwd")));
    // Times last, deepest first, so directory mtimes stick.
    let mut all: Vec<_> = walk(root);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_mtime(
            p,
            1_600_000_000 + i as i64,
            (i as i64 * 7919 + 1) % 1_000_000_000,
        );
    }
    set_mtime(&root.join("empty-file"), 0, 0);
    set_mtime(root, 1_700_000_000, 123_456_789);
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Every kind of change `restore` must undo, made in an image tree: content in place
/// (same size, same mtime), appended content, a deleted directory, new files and dirs,
/// chmod (setuid dropped), chown, xattr and ACL changes, a hard link replaced by a copy,
/// a symlink retargeted, an mtime alone. Returns the diff lines each change must cause.
pub fn modify_image_tree(r: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    // Same size, same mtime, different bytes: only the hash can tell.
    let perl = r.join("usr/bin/perl");
    let md = std::fs::symlink_metadata(&perl).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&perl).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"CAIRN", 4096).unwrap();
    drop(f);
    set_mtime(&perl, md.mtime(), md.mtime_nsec());
    // The other link of perl becomes a copy with identical metadata.
    let perl2 = r.join("usr/bin/perl5.36.0");
    let data = std::fs::read(&perl2).unwrap();
    std::fs::remove_file(&perl2).unwrap();
    std::fs::write(&perl2, &data).unwrap();
    chmod(&perl2, md.mode() & 0o7777);
    set_mtime(&perl2, md.mtime(), md.mtime_nsec());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(r.join("etc/passwd"))
        .unwrap();
    f.write_all(b"cairn:x:1000:1000::/home/cairn:/bin/sh\n")
        .unwrap();
    drop(f);
    std::fs::remove_dir_all(r.join("usr/share/doc")).unwrap();
    std::fs::create_dir_all(r.join("srv/cairn/new")).unwrap();
    write_noise(&r.join("srv/cairn/new/data"), 200_000, 77);
    chmod(&r.join("usr/bin/passwd"), 0o755);
    lchown(&r.join("etc/shadow"), 1000, 1000);
    set_xattr(&r.join("etc/hostname"), "user.cairn", b"1");
    sh(Command::new("setfacl")
        .args(["-m", "u:1000:rw"])
        .arg(r.join("etc/group")));
    std::fs::remove_file(r.join("etc/os-release")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/os-release", r.join("etc/os-release")).unwrap();
    set_mtime(&r.join("etc/debian_version"), 1, 1);
    [
        "usr/bin/perl: content ",
        "usr/bin/perl: hardlink ",
        "usr/bin/perl5.36.0: hardlink ",
        "etc/passwd: size ",
        "removed usr/share/doc",
        "added srv/cairn",
        "usr/bin/passwd: mode 4755 != 0755",
        "etc/shadow: uid 0 != 1000",
        "etc/hostname: xattr user.cairn - != \"1\"",
        "etc/group: xattr system.posix_acl_access - != ",
        "etc/os-release: target ",
        "etc/debian_version: mtime ",
    ]
    .map(String::from)
    .to_vec()
}

/// A small change marked `tag`: a new file, an edited file, a chmod.
pub fn modify_small(r: &Path, tag: &str) {
    std::fs::write(r.join(format!("cairn-{tag}")), tag.as_bytes()).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(r.join("etc/passwd"))
        .unwrap();
    writeln!(f, "{tag}:x:2000:2000::/:/bin/false").unwrap();
    drop(f);
    let m = std::fs::metadata(r.join("etc/passwd"))
        .unwrap()
        .permissions()
        .mode();
    chmod(&r.join("etc/passwd"), (m & 0o7777) ^ 0o004);
}

/// Asserts every expected line (a prefix) shows up in `diff`: the manifest really sees
/// each change, so the later equality check means something.
#[track_caller]
pub fn assert_diff_has(diff: &[String], expected: &[String]) {
    for e in expected {
        assert!(
            diff.iter().any(|l| l.starts_with(e.as_str())),
            "the change {e:?} is missing from the diff:\n  {}",
            diff.join("\n  ")
        );
    }
}

/// Allocated bytes of a file.
pub fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).unwrap().blocks() * 512
}

/// Free bytes for an unprivileged writer of the filesystem holding `p`.
pub fn fs_avail(p: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(p).unwrap();
    s.blocks_available() as u64 * s.fragment_size() as u64
}

pub fn sync() {
    unsafe { libc::sync() };
}
