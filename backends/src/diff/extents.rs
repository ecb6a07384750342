//! Whether two files are provably the same bytes without reading them: both map the very
//! same extents on disk (`FS_IOC_FIEMAP`). Reflinked copies (the dir driver on xfs or
//! btrfs) and files of btrfs snapshots share extents until one is written, and a write
//! to a shared extent moves it (copy-on-write), so equal maps mean equal content.
//!
//! `FIEMAP_FLAG_SYNC` flushes dirty pages first, so data still in the page cache shows in
//! the map. Extents whose map cannot prove anything — unknown, delayed allocation,
//! inline, tail-packed, compressed or encrypted — make the answer "unknown".
//!
//! Only extents flagged `FIEMAP_EXTENT_SHARED` count. Physical offsets are relative to a
//! filesystem's own device: two block-identical filesystems (an LVM thin snapshot and
//! its origin, each a mounted ext4) report the same map for a file that was rewritten in
//! place on one of them. Such extents are never flagged shared (nothing within one
//! filesystem shares them), so they prove nothing and the content is hashed.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_FLAG_SYNC: u32 = 0x1;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
/// The extent is shared with another file of the same filesystem (reflink, snapshot).
const FIEMAP_EXTENT_SHARED: u32 = 0x2000;
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

/// The file's extent map, or `None` when the filesystem has none or it proves nothing
/// (an extent that is not shared, or one of the unprovable kinds).
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
            if e.flags & UNPROVABLE != 0 || e.flags & FIEMAP_EXTENT_SHARED == 0 || e.physical == 0 {
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::cmd::{MKFS_EXT4, MOUNT, UMOUNT};
    use crate::testing::{missing_loop, missing_root, missing_tool};

    fn missing() -> Option<String> {
        missing_root()
            .or_else(missing_loop)
            .or_else(|| [MKFS_EXT4, MOUNT, UMOUNT].iter().find_map(missing_tool))
    }

    /// Loop mounts made by a test, unmounted on drop (also when the test panics) so the
    /// temp dir is never removed through a mounted filesystem.
    #[derive(Default)]
    struct LoopMounts(Vec<PathBuf>);

    impl LoopMounts {
        fn mount(&mut self, img: &Path, at: &Path) {
            MOUNT
                .run(&[
                    "-o".as_ref(),
                    "loop".as_ref(),
                    img.as_os_str(),
                    at.as_os_str(),
                ])
                .unwrap();
            self.0.push(at.to_path_buf());
        }

        fn unmount(&mut self, at: &Path) {
            self.0.retain(|p| p != at);
            UMOUNT.run(&[at]).unwrap();
        }
    }

    impl Drop for LoopMounts {
        fn drop(&mut self) {
            for at in self.0.drain(..).rev() {
                if let Err(e) = UMOUNT.run(&[&at]) {
                    eprintln!("unmounting {}: {e}; detaching it lazily", at.display());
                    let _ = UMOUNT.run(&["-l".as_ref(), at.as_os_str()]);
                }
            }
        }
    }

    /// Two block-identical ext4 filesystems (what an LVM thin snapshot and its origin
    /// are): a file rewritten in place on one has the same extent map on both, which
    /// must not pass for the same content.
    #[test]
    fn loop_identical_filesystems_prove_nothing() {
        if !crate::testing::require(&crate::testing::current_test(), "loop", missing()) {
            return;
        }
        let d = tempfile::Builder::new()
            .prefix("cairn-fiemap-")
            .tempdir()
            .unwrap();
        // Declared after the temp dir: dropped (unmounted) before it is removed.
        let mut mounts = LoopMounts::default();
        let (img_a, img_b) = (d.path().join("a.img"), d.path().join("b.img"));
        let (mnt_a, mnt_b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&mnt_a).unwrap();
        std::fs::create_dir(&mnt_b).unwrap();
        std::fs::File::create(&img_a)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        MKFS_EXT4
            .run(&["-q".as_ref(), "-F".as_ref(), img_a.as_os_str()])
            .unwrap();
        mounts.mount(&img_a, &mnt_a);
        std::fs::write(mnt_a.join("f"), vec![7u8; 256 << 10]).unwrap();
        mounts.unmount(&mnt_a);
        std::fs::copy(&img_a, &img_b).unwrap();
        mounts.mount(&img_a, &mnt_a);
        mounts.mount(&img_b, &mnt_b);
        // Same size, same blocks, other bytes.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(mnt_b.join("f"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"changed", 4096).unwrap();
        f.sync_all().unwrap();
        let fa = std::fs::File::open(mnt_a.join("f")).unwrap();
        let fb = std::fs::File::open(mnt_b.join("f")).unwrap();
        let result = shared(fa.as_fd(), fb.as_fd());
        drop((f, fa, fb));
        mounts.unmount(&mnt_b);
        mounts.unmount(&mnt_a);
        assert!(
            !result.unwrap(),
            "unshared extents were taken for the same bytes"
        );
    }
}
