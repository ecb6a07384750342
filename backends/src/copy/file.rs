//! The data of one regular file: a reflink (`FICLONE`, the copy shares extents with the
//! source, holes included) when the filesystem can, else a sparse-aware copy that walks
//! the data segments with `SEEK_DATA`/`SEEK_HOLE` and moves each with `copy_file_range`
//! (plain `pread`/`pwrite` if the kernel refuses), leaving holes as holes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::CopyMode;

/// Whether reflinks are still worth trying in this copy (one "unsupported" answer from
/// the filesystem is enough to stop asking for every file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reflink {
    Try,
    Unavailable,
}

/// How one file's data got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    Reflinked,
    Copied,
}

/// errnos meaning "this filesystem (pair) cannot do that", as opposed to a real failure.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP)
            | Some(libc::EXDEV)
            | Some(libc::EINVAL)
            | Some(libc::ENOTTY)
            | Some(libc::ENOSYS)
            | Some(libc::EBADF)
    )
}

/// `ioctl(dst, FICLONE, src)`: dst becomes a copy-on-write clone of the whole of src.
pub fn ficlone(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its integer argument.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether files in the directory `dir` can be reflinked: makes two small files there,
/// tries `FICLONE`, removes them.
pub fn reflink_supported(dir: &std::path::Path) -> io::Result<bool> {
    use std::os::fd::AsFd;
    let name = format!("reflink-probe.{}", std::process::id());
    let (a, b) = (dir.join(format!("{name}.a")), dir.join(format!("{name}.b")));
    let result = (|| {
        std::fs::write(&a, [0x5a; 4096])?;
        let src = std::fs::File::open(&a)?;
        let dst = std::fs::File::create(&b)?;
        match ficlone(src.as_fd(), dst.as_fd()) {
            Ok(()) => Ok(true),
            Err(e) if unsupported(&e) => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    result
}

/// Copies `size` bytes of data from `src` to the empty file `dst`.
pub(crate) fn copy_data(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    size: u64,
    mode: CopyMode,
    reflink: &mut Reflink,
) -> io::Result<Copied> {
    if size == 0 {
        return Ok(Copied::Copied);
    }
    if mode != CopyMode::Full && *reflink == Reflink::Try {
        match ficlone(src, dst) {
            Ok(()) => return Ok(Copied::Reflinked),
            Err(e) if mode == CopyMode::Reflink => return Err(e),
            Err(e) if unsupported(&e) => {
                tracing::debug!(error = %e, "reflink unavailable, copying data");
                *reflink = Reflink::Unavailable;
            }
            Err(e) => return Err(e),
        }
    } else if mode == CopyMode::Reflink {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    copy_sparse(src, dst, size)?;
    Ok(Copied::Copied)
}

/// `lseek(fd, off, whence)`, `None` at ENXIO (no more data / past the end).
fn seek(fd: BorrowedFd<'_>, off: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: plain lseek on a valid fd.
    let r = unsafe { libc::lseek64(fd.as_raw_fd(), off as i64, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(r as u64))
}

/// The data segments `[start, end)` of the first `size` bytes of `fd`.
fn data_segments(fd: BorrowedFd<'_>, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < size {
        let start = match seek(fd, off, libc::SEEK_DATA) {
            Ok(Some(s)) if s < size => s,
            Ok(_) => break,
            // No SEEK_DATA here: treat the rest as data.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                out.push((off, size));
                break;
            }
            Err(e) => return Err(e),
        };
        let end = seek(fd, start, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        out.push((start, end));
        off = end;
    }
    Ok(out)
}

/// Copies the data segments of `src` and sizes `dst` to `size`, keeping holes.
pub(crate) fn copy_sparse(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let mut use_cfr = true;
    for (start, end) in data_segments(src, size)? {
        let mut pos = start;
        while pos < end {
            let len = (end - pos).min(1 << 30) as usize;
            let n = if use_cfr {
                match copy_file_range(src, dst, pos, len) {
                    Ok(n) => n,
                    Err(e) if unsupported(&e) => {
                        use_cfr = false;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                copy_range_rw(src, dst, pos, len)?
            };
            if n == 0 {
                break; // the source shrank under us
            }
            pos += n as u64;
        }
    }
    // SAFETY: plain ftruncate on a valid fd; gives the file its size (trailing hole).
    if unsafe { libc::ftruncate64(dst.as_raw_fd(), size as i64) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `copy_file_range(2)` of `len` bytes at the same offset `pos` in both files.
fn copy_file_range(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    pos: u64,
    len: usize,
) -> io::Result<usize> {
    let (mut a, mut b) = (pos as i64, pos as i64);
    // SAFETY: valid fds and offset pointers; the raw syscall (libc has no wrapper here).
    let n = unsafe {
        libc::syscall(
            libc::SYS_copy_file_range,
            src.as_raw_fd(),
            &mut a as *mut i64,
            dst.as_raw_fd(),
            &mut b as *mut i64,
            len,
            0u32,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `pread` + `pwrite` round of at most 1 MiB at `pos`; returns bytes moved.
fn copy_range_rw(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    pos: u64,
    len: usize,
) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    // Dups of the borrowed fds, as Files for the positioned I/O helpers.
    let src = std::fs::File::from(src.try_clone_to_owned()?);
    let dst = std::fs::File::from(dst.try_clone_to_owned()?);
    let mut buf = vec![0u8; len.min(1 << 20)];
    let n = src.read_at(&mut buf, pos)?;
    dst.write_all_at(&buf[..n], pos)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_copy_keeps_holes_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = std::fs::File::create(dir.path().join("src")).unwrap();
        f.seek(SeekFrom::Start(4 << 20)).unwrap();
        f.write_all(b"tail data").unwrap();
        f.set_len(9 << 20).unwrap();
        let src = std::fs::File::open(dir.path().join("src")).unwrap();
        let dst = std::fs::File::create(dir.path().join("dst")).unwrap();
        copy_sparse(src.as_fd(), dst.as_fd(), 9 << 20).unwrap();
        let (a, b) = (src.metadata().unwrap(), dst.metadata().unwrap());
        assert_eq!(b.len(), 9 << 20);
        assert!(b.blocks() <= a.blocks().max(64), "{} blocks", b.blocks());
        assert_eq!(
            std::fs::read(dir.path().join("src")).unwrap(),
            std::fs::read(dir.path().join("dst")).unwrap()
        );
    }

    #[test]
    fn read_write_fallback_moves_the_range() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("src"), b"0123456789").unwrap();
        let src = std::fs::File::open(dir.path().join("src")).unwrap();
        let dst = std::fs::File::create(dir.path().join("dst")).unwrap();
        assert_eq!(copy_range_rw(src.as_fd(), dst.as_fd(), 3, 4).unwrap(), 4);
        assert_eq!(
            std::fs::read(dir.path().join("dst")).unwrap(),
            b"\0\0\x003456"
        );
    }
}
