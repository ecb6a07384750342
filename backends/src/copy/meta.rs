//! Metadata of one inode, read from the source and applied to its copy, and the thin
//! `*at()` syscall wrappers the walker uses (every name is resolved relative to an open
//! directory and never followed when it is a symlink).
//!
//! Order of application matters and is fixed in [`apply`]: owner first (chown clears
//! setuid/setgid and file capabilities), then every extended attribute (user, trusted,
//! security, system — ACLs are the `system.posix_acl_*` xattrs), then the mode (so
//! setuid/setgid/sticky survive), then atime/mtime with nanoseconds.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// How to reach an inode: through an open fd (regular files, directories), or by
/// name in an open directory without following it (symlinks, devices, fifos, sockets).
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    Fd(BorrowedFd<'a>),
    At(RawFd, &'a CStr),
}

/// One extended attribute: name and value.
pub(crate) type Xattr = (CString, Vec<u8>);

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

pub(crate) fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat64> {
    let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: valid C string and out pointer.
    check(unsafe {
        libc::fstatat64(
            dir,
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled the struct.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat64> {
    let mut st = std::mem::MaybeUninit::<libc::stat64>::uninit();
    // SAFETY: valid fd and out pointer.
    check(unsafe { libc::fstat64(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(unsafe { st.assume_init() })
}

/// `openat` with `O_CLOEXEC | O_NOFOLLOW` added.
pub(crate) fn open_at(
    dir: RawFd,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let flags = flags | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: valid C string; the returned fd is owned by us.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a source file for reading without updating its atime when we may (root, owner).
pub(crate) fn open_read_at(dir: RawFd, name: &CStr, extra: libc::c_int) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | extra;
    match open_at(dir, name, flags | libc::O_NOATIME, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open_at(dir, name, flags, 0),
        r => r,
    }
}

pub(crate) fn mkdir_at(dir: RawFd, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mkdirat(dir, name.as_ptr(), mode) })
}

pub(crate) fn mknod_at(
    dir: RawFd,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    // SAFETY: valid C string.
    check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) })
}

pub(crate) fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<CString> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buffer of the given length.
    let n = check_size(unsafe {
        libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })?;
    buf.truncate(n);
    CString::new(buf).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub(crate) fn symlink_at(target: &CStr, dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) })
}

/// Hard link `old` (relative to `old_dir`) as `new` in `new_dir`, never following.
pub(crate) fn link_at(old_dir: RawFd, old: &CStr, new_dir: RawFd, new: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings.
    check(unsafe { libc::linkat(old_dir, old.as_ptr(), new_dir, new.as_ptr(), 0) })
}

/// `/proc/self/fd/<dir>/<name>`: a path naming `name` in `dir` for the `l*xattr` calls.
fn proc_path(dir: RawFd, name: &CStr) -> CString {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name.to_bytes());
    CString::new(p).expect("no NUL: built from a C string")
}

/// Calls a `*getxattr`/`*listxattr`-style function with a growing buffer.
fn read_sized(mut f: impl FnMut(*mut libc::c_void, usize) -> libc::ssize_t) -> io::Result<Vec<u8>> {
    loop {
        let size = check_size(f(std::ptr::null_mut(), 0))?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match check_size(f(buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            // Grew between the two calls: ask again.
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS))
}

/// Every extended attribute of the node, in every namespace.
pub(crate) fn read_xattrs(node: Node<'_>) -> io::Result<Vec<Xattr>> {
    let path = match node {
        Node::At(dir, name) => Some(proc_path(dir, name)),
        Node::Fd(_) => None,
    };
    // SAFETY (all closures below): valid fd / C strings and buffers of the given length.
    let list = read_sized(|buf, len| match (&node, &path) {
        (Node::Fd(fd), _) => unsafe { libc::flistxattr(fd.as_raw_fd(), buf.cast(), len) },
        (_, Some(p)) => unsafe { libc::llistxattr(p.as_ptr(), buf.cast(), len) },
        _ => unreachable!(),
    });
    let list = match list {
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        r => r?,
    };
    let mut out = Vec::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).expect("split at NUL");
        let value = read_sized(|buf, len| match (&node, &path) {
            (Node::Fd(fd), _) => unsafe {
                libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf, len)
            },
            (_, Some(p)) => unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), buf, len) },
            _ => unreachable!(),
        });
        match value {
            Ok(v) => out.push((name, v)),
            // Removed since we listed it.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn set_xattr(node: Node<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid fd / C strings and a buffer of the given length.
    check(match node {
        Node::Fd(fd) => unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
        Node::At(dir, n) => unsafe {
            let p = proc_path(dir, n);
            libc::lsetxattr(
                p.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        },
    })
}

/// Removes extended attributes the node has but `keep` does not name (a fresh inode can
/// inherit a default ACL from the directory it was created in).
pub(crate) fn drop_extra_xattrs(node: Node<'_>, keep: &[Xattr]) -> io::Result<()> {
    for (name, _) in read_xattrs(node)? {
        if keep.iter().any(|(k, _)| *k == name) {
            continue;
        }
        // SAFETY: valid fd / C strings.
        check(match node {
            Node::Fd(fd) => unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) },
            Node::At(dir, n) => unsafe {
                libc::lremovexattr(proc_path(dir, n).as_ptr(), name.as_ptr())
            },
        })?;
    }
    Ok(())
}

/// Applies owner, xattrs, mode and times of `st` to the node, in that order.
/// `what` names the failing step for the error message.
pub(crate) fn apply(
    node: Node<'_>,
    st: &libc::stat64,
    xattrs: &[Xattr],
) -> Result<(), (&'static str, io::Error)> {
    let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    // SAFETY (every unsafe block): valid fd or dir fd + C string.
    check(match node {
        Node::Fd(fd) => unsafe { libc::fchown(fd.as_raw_fd(), st.st_uid, st.st_gid) },
        Node::At(dir, name) => unsafe {
            libc::fchownat(
                dir,
                name.as_ptr(),
                st.st_uid,
                st.st_gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        },
    })
    .map_err(|e| ("set owner of", e))?;
    for (name, value) in xattrs {
        set_xattr(node, name, value).map_err(|e| ("set extended attribute on", e))?;
    }
    if !is_link {
        let mode = st.st_mode & 0o7777;
        check(match node {
            Node::Fd(fd) => unsafe { libc::fchmod(fd.as_raw_fd(), mode) },
            Node::At(dir, name) => unsafe { libc::fchmodat(dir, name.as_ptr(), mode, 0) },
        })
        .map_err(|e| ("set mode of", e))?;
    }
    let times = [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ];
    check(match node {
        Node::Fd(fd) => unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) },
        Node::At(dir, name) => unsafe {
            libc::utimensat(
                dir,
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        },
    })
    .map_err(|e| ("set times of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_path_names_the_entry_in_the_directory() {
        let p = proc_path(7, &CString::new("a b").unwrap());
        assert_eq!(p.to_bytes(), b"/proc/self/fd/7/a b");
    }

    #[test]
    fn read_sized_retries_when_the_value_grows() {
        let mut calls = 0;
        let v = read_sized(|buf, len| {
            calls += 1;
            match (calls, buf.is_null()) {
                (1, true) => 2,
                (2, false) => {
                    // SAFETY: errno is thread-local.
                    unsafe { *libc::__errno_location() = libc::ERANGE };
                    -1
                }
                (3, true) => 3,
                (4, false) => {
                    assert_eq!(len, 3);
                    // SAFETY: buf has len 3.
                    unsafe { std::ptr::copy_nonoverlapping(b"abc".as_ptr(), buf.cast(), 3) };
                    3
                }
                other => panic!("unexpected call {other:?}"),
            }
        })
        .unwrap();
        assert_eq!(v, b"abc");
    }
}
