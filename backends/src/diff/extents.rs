//! Whether two files are provably the same bytes without reading them: both map the very
//! same extents on disk (`FS_IOC_FIEMAP`). Reflinked copies (the dir driver on xfs or
//! btrfs) and files of btrfs snapshots share extents until one is written, and a write
//! to a shared extent moves it (copy-on-write), so equal maps mean equal content.
//!
//! `FIEMAP_FLAG_SYNC` flushes dirty pages first, so data still in the page cache shows in
//! the map. Extents whose map cannot prove anything — unknown, delayed allocation,
//! inline, tail-packed, compressed or encrypted — make the answer "unknown".

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_FLAG_SYNC: u32 = 0x1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
/// UNKNOWN, DELALLOC, ENCODED, DATA_ENCRYPTED, NOT_ALIGNED, DATA_INLINE, DATA_TAIL.
const UNPROVABLE: u32 = 0x2 | 0x4 | 0x8 | 0x80 | 0x100 | 0x200 | 0x400;
const BATCH: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; BATCH],
}

/// One mapped extent: logical offset, physical offset, length.
pub(crate) type Extent = (u64, u64, u64);

/// The file's extent map, or `None` when the filesystem has none or it proves nothing.
pub(crate) fn map(fd: BorrowedFd<'_>) -> io::Result<Option<Vec<Extent>>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let mut fm = Fiemap {
            start,
            length: u64::MAX - start,
            flags: FIEMAP_FLAG_SYNC,
            mapped_extents: 0,
            extent_count: BATCH as u32,
            reserved: 0,
            extents: [FiemapExtent::default(); BATCH],
        };
        // SAFETY: FS_IOC_FIEMAP reads and writes a `struct fiemap` followed by
        // `extent_count` extents, which `Fiemap` is laid out as.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_FIEMAP as _, &mut fm) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EOPNOTSUPP) | Some(libc::ENOTTY) | Some(libc::EINVAL) => Ok(None),
                _ => Err(e),
            };
        }
        let n = fm.mapped_extents as usize;
        if n == 0 {
            return Ok(Some(out));
        }
        for e in &fm.extents[..n.min(BATCH)] {
            // A physical address of 0 is what filesystems report when they have none.
            if e.flags & UNPROVABLE != 0 || e.physical == 0 {
                return Ok(None);
            }
            out.push((e.logical, e.physical, e.length));
        }
        let last = fm.extents[n.min(BATCH) - 1];
        if last.flags & FIEMAP_EXTENT_LAST != 0 || n < BATCH {
            return Ok(Some(out));
        }
        start = last.logical + last.length;
    }
}

/// `true` when both files provably hold the same bytes (they map the same extents);
/// `false` when that cannot be shown (which says nothing about the content).
pub(crate) fn shared(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    let Some(ma) = map(a)? else {
        return Ok(false);
    };
    let Some(mb) = map(b)? else {
        return Ok(false);
    };
    Ok(ma == mb)
}
