//! The copy engine on real trees: every property the module docs promise, checked on the
//! copy. Parts that need root (device nodes, foreign owners, ACLs, trusted xattrs, a
//! small tmpfs) or a loop device (`loop_*`) print why they skip, and fail instead when
//! `CAIRN_REQUIRE` names the requirement (`root`, `loop`).

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::testing::skip;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

fn set_times(p: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", p.display());
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let (c, n) = (CString::new(p.as_os_str().as_bytes())?, CString::new(name)?);
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
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// All xattrs of `p` (not following it), sorted.
fn xattrs(p: &Path) -> Vec<(CString, Vec<u8>)> {
    let dir = std::fs::File::open(p.parent().unwrap()).unwrap();
    let name = CString::new(p.file_name().unwrap().as_bytes()).unwrap();
    let mut x = meta::read_xattrs(Node::At(dir.as_raw_fd(), &name)).unwrap();
    x.sort();
    x
}

/// Every path under `root`, relative, sorted.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let p = root.join(&rel);
        if p.symlink_metadata().unwrap().is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                let r = rel.join(e.unwrap().file_name());
                out.push(r.clone());
                stack.push(r);
            }
        }
    }
    out.sort();
    out
}

/// Asserts that `dst` is an exact copy of `src`: all metadata first, then the data
/// (reading a file may update its atime).
fn assert_same_tree(src: &Path, dst: &Path) {
    let (a, b) = (walk(src), walk(dst));
    assert_eq!(a, b, "different entries");
    let all: Vec<PathBuf> = std::iter::once(PathBuf::new()).chain(a).collect();
    for rel in &all {
        let (sp, dp) = (src.join(rel), dst.join(rel));
        let (s, d) = (
            sp.symlink_metadata().unwrap(),
            dp.symlink_metadata().unwrap(),
        );
        let what = rel.display();
        assert_eq!(s.mode(), d.mode(), "mode of {what}");
        assert_eq!((s.uid(), s.gid()), (d.uid(), d.gid()), "owner of {what}");
        assert_eq!(
            (s.mtime(), s.mtime_nsec()),
            (d.mtime(), d.mtime_nsec()),
            "mtime of {what}"
        );
        if s.is_file() {
            // Reading a directory or a symlink may update its atime (the copy gets the
            // time from before); files are read with O_NOATIME.
            assert_eq!(
                (s.atime(), s.atime_nsec()),
                (d.atime(), d.atime_nsec()),
                "atime of {what}"
            );
        }
        assert_eq!(s.nlink(), d.nlink(), "link count of {what}");
        assert_eq!(s.len(), d.len(), "size of {what}");
        assert_eq!(s.rdev(), d.rdev(), "rdev of {what}");
        assert_eq!(xattrs(&sp), xattrs(&dp), "xattrs of {what}");
    }
    for rel in &all {
        let (sp, dp) = (src.join(rel), dst.join(rel));
        let s = sp.symlink_metadata().unwrap();
        if s.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&sp).unwrap(),
                std::fs::read_link(&dp).unwrap()
            );
        } else if s.is_file() {
            let what = rel.display();
            assert!(
                std::fs::read(&sp).unwrap() == std::fs::read(&dp).unwrap(),
                "data of {what}"
            );
        }
    }
}

const T1: (i64, i64) = (1_600_000_000, 123_456_789);
const T2: (i64, i64) = (1_500_000_000, 987_654_321);

/// Builds the test tree (the root-only parts only as root).
fn build_tree(src: &Path) {
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("d/a"), b"shared inode").unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("d/sub/a-link")).unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("a-link2")).unwrap();
    let sparse = std::fs::File::create(src.join("sparse")).unwrap();
    sparse.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"data after the hole", 1 << 20).unwrap();
    drop(sparse);
    symlink("d/a", src.join("link")).unwrap();
    symlink("/nonexistent/target", src.join("dangling")).unwrap();
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap());
    std::fs::write(src.join("setuid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(src.join("setuid"), PermissionsExt::from_mode(0o4755)).unwrap();
    std::fs::create_dir(src.join("sticky")).unwrap();
    std::fs::set_permissions(src.join("sticky"), PermissionsExt::from_mode(0o1777)).unwrap();
    std::fs::write(src.join("xattr"), b"x").unwrap();
    match set_xattr(&src.join("xattr"), "user.cairn.test", b"hello\0bin") {
        Ok(()) => {}
        Err(e) => skip("user-xattr", &format!("user xattrs unsupported here: {e}")),
    }
    std::fs::create_dir(src.join("ro")).unwrap();
    std::fs::write(src.join("ro/inside"), b"in a read-only dir").unwrap();
    if is_root() {
        let null = nix::sys::stat::makedev(1, 3);
        nix::sys::stat::mknod(
            &src.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            null,
        )
        .unwrap();
        std::fs::write(src.join("owned"), b"foreign owner").unwrap();
        std::os::unix::fs::lchown(src.join("owned"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(src.join("dangling"), Some(1234), Some(5678)).unwrap();
        set_xattr(&src.join("owned"), "trusted.cairn", b"t").unwrap();
        let acl = sh(&format!(
            "setfacl -m u:1234:rwx {0}/owned && setfacl -d -m g:5678:rx {0}/d",
            src.display()
        ));
        if !acl {
            // A minimal access ACL (version 2, user::rw-, user:1234:rwx, group::r--, mask::rwx, other::r--).
            let mut v = 2u32.to_le_bytes().to_vec();
            for (tag, perm, id) in [
                (1u16, 6u16, u32::MAX),
                (2, 7, 1234),
                (4, 4, u32::MAX),
                (0x10, 7, u32::MAX),
                (0x20, 4, u32::MAX),
            ] {
                v.extend(tag.to_le_bytes());
                v.extend(perm.to_le_bytes());
                v.extend(id.to_le_bytes());
            }
            set_xattr(&src.join("owned"), "system.posix_acl_access", &v).unwrap();
        }
        assert!(!xattrs(&src.join("owned"))
            .iter()
            .all(|(n, _)| !n.to_bytes().starts_with(b"system.posix_acl")));
    } else {
        skip(
            "root",
            "not root: no device node, foreign owner, ACL or trusted xattr in the tree",
        );
    }
    for rel in [
        "d/a",
        "sparse",
        "link",
        "dangling",
        "fifo",
        "sock",
        "setuid",
        "xattr",
        "ro/inside",
    ] {
        set_times(&src.join(rel), T2, T1);
    }
    for rel in ["d/sub", "d", "sticky", "ro", ""] {
        set_times(&src.join(rel), T2, T1);
    }
    std::fs::set_permissions(src.join("ro"), PermissionsExt::from_mode(0o500)).unwrap();
}

#[test]
fn copy_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    let stats = copy_tree(&src, &dst, CopyMode::Auto).unwrap();
    assert_same_tree(&src, &dst);
    assert_eq!(stats.hardlinks, 2, "{stats:?}");
    assert_eq!(stats.symlinks, 2, "{stats:?}");
    let (a, l1, l2) = (
        dst.join("d/a"),
        dst.join("d/sub/a-link"),
        dst.join("a-link2"),
    );
    let ino = |p: &Path| p.metadata().unwrap().ino();
    assert_eq!((ino(&a), ino(&a)), (ino(&l1), ino(&l2)));
    assert_eq!(a.metadata().unwrap().nlink(), 3);
    let sparse = dst.join("sparse").metadata().unwrap();
    assert_eq!(sparse.len(), (1 << 20) + 19);
    assert!(
        sparse.blocks() * 512 <= 64 << 10,
        "sparse copy allocates {} blocks",
        sparse.blocks()
    );
    assert_eq!(
        dst.join("setuid").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        dst.join("sticky").metadata().unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        dst.join("fifo").symlink_metadata().unwrap().mode() & libc::S_IFMT,
        libc::S_IFIFO
    );
    assert_eq!(
        dst.join("sock").symlink_metadata().unwrap().mode() & libc::S_IFMT,
        libc::S_IFSOCK
    );
    if is_root() {
        let null = dst.join("null").symlink_metadata().unwrap();
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        let owned = dst.join("owned").metadata().unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
        assert!(xattrs(&dst.join("owned"))
            .iter()
            .any(|(n, _)| n.to_bytes() == b"system.posix_acl_access"));
        assert!(xattrs(&dst.join("owned"))
            .iter()
            .any(|(n, _)| n.to_bytes() == b"trusted.cairn"));
    }
    // The copy is independent of its source.
    std::fs::write(dst.join("d/a"), b"changed").unwrap();
    assert_eq!(std::fs::read(src.join("d/a")).unwrap(), b"shared inode");
    remove_tree(&dst).unwrap();
    assert!(!dst.exists());
    remove_tree(&dst).unwrap();
}

#[test]
fn full_mode_copies_exactly_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    build_tree(&src);
    let stats = copy_tree(&src, &dst, CopyMode::Full).unwrap();
    assert_eq!(stats.reflinked, 0);
    assert_same_tree(&src, &dst);
}

#[test]
fn existing_destination_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), b"k").unwrap();
    let e = copy_tree(tmp.path(), tmp.path(), CopyMode::Auto).unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    assert!(tmp.path().join("keep").exists());
}

#[test]
fn reflink_mode_fails_cleanly_where_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    if reflink_supported(tmp.path()).unwrap() {
        return skip("no-reflink", "the temp directory's filesystem reflinks");
    }
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    assert!(copy_tree(&src, &dst, CopyMode::Reflink).is_err());
    assert!(!dst.exists(), "partial copy left behind");
}

#[test]
fn remove_tree_clears_immutable_and_readonly_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("t");
    std::fs::create_dir_all(t.join("ro")).unwrap();
    std::fs::write(t.join("ro/f"), b"x").unwrap();
    std::fs::set_permissions(t.join("ro"), PermissionsExt::from_mode(0o500)).unwrap();
    if is_root() && !sh(&format!("chattr +i {}/ro/f 2>/dev/null", t.display())) {
        skip("chattr", "chattr +i failed here");
    }
    remove_tree(&t).unwrap();
    assert!(!t.exists());
}

#[test]
fn disk_usage_counts_hardlinks_once() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a"), vec![7u8; 256 << 10]).unwrap();
    let one = disk_usage(tmp.path()).unwrap();
    std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).unwrap();
    assert_eq!(disk_usage(tmp.path()).unwrap(), one);
    assert!(one >= 256 << 10);
}

/// Unmounts (lazily, so a failing test never leaves a busy mount) on drop.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(p: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(p).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

#[test]
fn copy_enospc_is_no_space_and_cleans_up() {
    if !is_root() {
        return skip("root", "mounting a small tmpfs needs root");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (src, mnt) = (tmp.path().join("src"), tmp.path().join("mnt"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::write(src.join("big"), vec![1u8; 4 << 20]).unwrap();
    assert!(sh(&format!(
        "mount -t tmpfs -o size=1m cairn-enospc {}",
        mnt.display()
    )));
    let _guard = MountGuard(mnt.clone());
    let e = copy_tree(&src, &mnt.join("copy"), CopyMode::Auto).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert!(!mnt.join("copy").exists(), "partial copy left behind");
}

#[test]
fn loop_copy_reflink_shares_extents() {
    if !is_root() {
        return skip("loop", "not root");
    }
    if crate::cmd::MKFS_XFS.resolve().is_err() {
        return skip("loop", "mkfs.xfs missing: apt-get install xfsprogs");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (img, mnt) = (tmp.path().join("xfs.img"), tmp.path().join("mnt"));
    std::fs::create_dir(&mnt).unwrap();
    let ok = sh(&format!(
        "truncate -s 400M {0} && mkfs.xfs -q -m reflink=1 {0} && mount -o loop {0} {1}",
        img.display(),
        mnt.display()
    ));
    let _guard = MountGuard(mnt.clone());
    if !ok {
        return skip("loop", "could not make and mount an xfs loop file");
    }
    let src = mnt.join("src");
    std::fs::create_dir(&src).unwrap();
    let data: Vec<u8> = (0..50u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("big"), &data).unwrap();
    nix::unistd::sync();
    assert!(reflink_supported(&mnt).unwrap());
    let before = free_bytes(&mnt);
    let stats = copy_tree(&src, &mnt.join("dst"), CopyMode::Reflink).unwrap();
    nix::unistd::sync();
    let after = free_bytes(&mnt);
    assert_eq!(stats.reflinked, 1);
    assert!(
        before.saturating_sub(after) < 2 << 20,
        "clone used {} bytes",
        before - after
    );
    assert_same_tree(&src, &mnt.join("dst"));
    assert!(std::fs::read(mnt.join("dst/big")).unwrap() == data);
}
