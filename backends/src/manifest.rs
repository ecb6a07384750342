//! A manifest of a file tree: what `cairn diff` compares and backup verification checks.
//!
//! [`Manifest::of`] walks a tree without following symlinks and records, per path
//! (relative to the root, sorted; the root itself is `.`): the file type, the permission
//! bits (`st_mode & 0o7777`, so setuid/setgid/sticky count), owner, group, mtime in
//! nanoseconds, every extended attribute (all namespaces; POSIX ACLs are the
//! `system.posix_acl_*` attributes), and by type: size and content hash of a file (see
//! below), a symlink's target, a device's `rdev`. atime and ctime are not recorded: they
//! change on read and on every copy.
//!
//! **Hard links.** Non-directories that share an inode with another path *of the same
//! tree* get `hardlink` = the first of those paths in sorted order, so two trees with the
//! same link structure compare equal whatever their inode numbers. A file whose other
//! links are outside the tree records no group: its link count is not a property of the
//! tree.
//!
//! **Content hash.** blake3 over the file in 64 KiB blocks, each fed as a tag byte `0`
//! (the block is all zeros) or `1` followed by its bytes. Equal hashes mean equal
//! content whatever the hole layout, and holes (found with `SEEK_DATA`/`SEEK_HOLE` when
//! the file has fewer blocks allocated than its size) are hashed without being read: a
//! 1 GiB sparse file costs what its data costs. It is not `b3sum`'s value.
//!
//! **Names.** Paths, symlink targets and xattr names are stored as UTF-8; a byte that is
//! not valid UTF-8 is written `\xNN` and a backslash `\\`, so every name maps to one
//! distinct string.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// How many difference lines [`Manifest::diff`] returns before summarising the rest.
pub const DIFF_LIMIT: usize = 50;

/// The type of a tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl FileKind {
    fn of(mode: u32) -> FileKind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => FileKind::Dir,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFCHR => FileKind::Char,
            libc::S_IFBLK => FileKind::Block,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            _ => FileKind::File,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Char => "char",
            FileKind::Block => "block",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        }
    }
}

/// What the manifest records about one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Extended attributes, name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, HexBytes>,
    /// Size in bytes (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The content hash (blake3 of the block form, see the module doc), hex (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// The link target (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The device number (char and block devices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    /// The first path, in sorted order, of this entry's hard-link group in the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink: Option<String>,
}

/// Bytes that serialize as a hex string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex string"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for HexBytes {
    /// Printable ASCII as text in quotes, anything else as hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.iter().all(|b| (0x20..0x7f).contains(b)) {
            write!(f, "{:?}", String::from_utf8_lossy(&self.0))
        } else {
            write!(f, "0x{}", hex(&self.0))
        }
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A whole tree: relative path → entry, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: BTreeMap<String, Entry>,
}

impl Manifest {
    /// Walks the tree at `root` (not following symlinks) and records every path.
    pub fn of(root: &Path) -> Result<Manifest> {
        let mut entries = BTreeMap::new();
        let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
        let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), ".".to_string())];
        while let Some((path, rel)) = stack.pop() {
            let md = std::fs::symlink_metadata(&path).ctx("stat", &path)?;
            let kind = FileKind::of(md.mode());
            let mut entry = Entry {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime_ns: md
                    .mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(md.mtime_nsec()),
                xattrs: read_xattrs(&path)?,
                size: None,
                blake3: None,
                target: None,
                rdev: None,
                hardlink: None,
            };
            match kind {
                FileKind::File => {
                    entry.size = Some(md.len());
                    entry.blake3 = Some(hash_file(&path, &md)?);
                }
                FileKind::Symlink => {
                    let t = std::fs::read_link(&path).ctx("read symlink", &path)?;
                    entry.target = Some(escape(t.as_os_str()));
                }
                FileKind::Char | FileKind::Block => entry.rdev = Some(md.rdev()),
                FileKind::Dir => {
                    for child in std::fs::read_dir(&path).ctx("read directory", &path)? {
                        let child = child.ctx("read directory", &path)?;
                        let name = escape(&child.file_name());
                        let child_rel = if rel == "." {
                            name
                        } else {
                            format!("{rel}/{name}")
                        };
                        stack.push((child.path(), child_rel));
                    }
                }
                FileKind::Fifo | FileKind::Socket => {}
            }
            if kind != FileKind::Dir && md.nlink() > 1 {
                inodes
                    .entry((md.dev(), md.ino()))
                    .or_default()
                    .push(rel.clone());
            }
            entries.insert(rel, entry);
        }
        for paths in inodes.into_values().filter(|p| p.len() > 1) {
            let first = paths.iter().min().expect("non-empty group").clone();
            for p in paths {
                if let Some(e) = entries.get_mut(&p) {
                    e.hardlink = Some(first.clone());
                }
            }
        }
        Ok(Manifest { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How `other` differs from `self`, one line per difference ("added x", "removed y",
    /// "etc/passwd: mtime 1 != 2", self's value first). At most [`DIFF_LIMIT`] lines, then
    /// one line counting the rest. Empty when the trees are the same.
    pub fn diff(&self, other: &Manifest) -> Vec<String> {
        let mut lines = self.diff_all(other);
        if lines.len() > DIFF_LIMIT {
            let rest = lines.len() - DIFF_LIMIT;
            lines.truncate(DIFF_LIMIT);
            lines.push(format!("... and {rest} more differences"));
        }
        lines
    }

    /// Every difference, uncapped (same lines as [`Manifest::diff`]).
    pub fn diff_all(&self, other: &Manifest) -> Vec<String> {
        let mut lines = Vec::new();
        let mut a = self.entries.iter().peekable();
        let mut b = other.entries.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((pa, _)), None) => {
                    lines.push(format!("removed {pa}"));
                    a.next();
                }
                (None, Some((pb, _))) => {
                    lines.push(format!("added {pb}"));
                    b.next();
                }
                (Some((pa, ea)), Some((pb, eb))) => match pa.cmp(pb) {
                    std::cmp::Ordering::Less => {
                        lines.push(format!("removed {pa}"));
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        lines.push(format!("added {pb}"));
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        entry_diff(pa, ea, eb, &mut lines);
                        a.next();
                        b.next();
                    }
                },
            }
        }
        lines
    }
}

fn entry_diff(path: &str, a: &Entry, b: &Entry, out: &mut Vec<String>) {
    fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
        v.as_ref().map_or("-".to_string(), |v| v.to_string())
    }
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{path}: {name} {x} != {y}"));
        }
    };
    field("type", a.kind.as_str().into(), b.kind.as_str().into());
    field("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode));
    field("uid", a.uid.to_string(), b.uid.to_string());
    field("gid", a.gid.to_string(), b.gid.to_string());
    field("mtime", a.mtime_ns.to_string(), b.mtime_ns.to_string());
    field("size", opt(&a.size), opt(&b.size));
    field("content", opt(&a.blake3), opt(&b.blake3));
    field("target", opt(&a.target), opt(&b.target));
    field("rdev", opt(&a.rdev), opt(&b.rdev));
    field("hardlink", opt(&a.hardlink), opt(&b.hardlink));
    let names: std::collections::BTreeSet<&String> =
        a.xattrs.keys().chain(b.xattrs.keys()).collect();
    for n in names {
        field(
            &format!("xattr {n}"),
            opt(&a.xattrs.get(n)),
            opt(&b.xattrs.get(n)),
        );
    }
}

/// A name as a string: valid UTF-8 as is (backslash doubled), other bytes as `\xNN`.
pub(crate) fn escape(name: &OsStr) -> String {
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Block size of the content hash's block form.
const HASH_BLOCK: u64 = 64 * 1024;

/// The content hash (module doc) of the file at `path` (not following a symlink), as hex.
fn hash_file(path: &Path, md: &std::fs::Metadata) -> Result<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .ctx("open to hash", path)?;
    let h = hash_fd(&f, md.len(), md.blocks()).ctx("read to hash", path)?;
    Ok(h.to_hex().to_string())
}

/// The content hash (module doc) of the open file `f`, whose `stat` gives `size` (bytes)
/// and `blocks` (512-byte units allocated): its first `size` bytes, holes skipped,
/// all-zero blocks fed as one byte. Equal hashes mean equal content whatever the hole
/// layout.
pub(crate) fn hash_fd(f: &std::fs::File, size: u64, blocks: u64) -> std::io::Result<blake3::Hash> {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    // Only a file with fewer blocks than bytes can have holes worth looking for.
    let maybe_sparse = blocks.saturating_mul(512) < size;
    let seek = |off: u64, whence: libc::c_int| -> Option<u64> {
        // SAFETY: lseek on a descriptor the caller holds open; no memory is passed.
        let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, whence) };
        (r >= 0).then_some(r as u64)
    };
    // The data region at or after `off`: [start, end); (size, size) when only a hole
    // is left. Without SEEK_DATA support, everything is data.
    let region = |off: u64| -> (u64, u64) {
        if !maybe_sparse {
            return (off, size);
        }
        match seek(off, libc::SEEK_DATA) {
            Some(start) => (
                start,
                seek(start, libc::SEEK_HOLE).unwrap_or(size).min(size),
            ),
            None if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) => {
                (size, size)
            }
            None => (off, size),
        }
    };
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_BLOCK as usize];
    let (mut data_start, mut data_end) = region(0);
    let mut off = 0;
    while off < size {
        let n = HASH_BLOCK.min(size - off);
        if off >= data_end {
            (data_start, data_end) = region(off);
        }
        if off + n <= data_start {
            h.update(&[0]);
        } else {
            let block = &mut buf[..n as usize];
            f.read_exact_at(block, off)?;
            if block.iter().all(|&b| b == 0) {
                h.update(&[0]);
            } else {
                h.update(&[1]);
                h.update(block);
            }
        }
        off += n;
    }
    Ok(h.finalize())
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
        op: "read extended attributes",
        object: path.display().to_string(),
        reason: "path contains a NUL byte".into(),
    })
}

/// Calls a size-probing xattr syscall until the buffer is big enough.
fn read_sized(path: &Path, mut call: impl FnMut(&mut [u8]) -> isize) -> Result<Option<Vec<u8>>> {
    loop {
        let need = call(&mut []);
        if need < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOTSUP) | Some(libc::ENODATA) => Ok(None),
                _ => Err(Error::io("read extended attributes", path, e)),
            };
        }
        let mut buf = vec![0u8; need as usize];
        let got = call(&mut buf);
        if got < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) => continue, // grew in between: ask again
                Some(libc::ENOTSUP) | Some(libc::ENODATA) => return Ok(None),
                _ => return Err(Error::io("read extended attributes", path, e)),
            }
        }
        buf.truncate(got as usize);
        return Ok(Some(buf));
    }
}

fn read_xattrs(path: &Path) -> Result<BTreeMap<String, HexBytes>> {
    let c = cpath(path)?;
    let mut out = BTreeMap::new();
    let list = read_sized(path, |buf| unsafe {
        libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })?
    .unwrap_or_default();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).expect("split on NUL");
        let value = read_sized(path, |buf| unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        })?;
        // ENODATA: removed between list and get; it is not there any more.
        if let Some(v) = value {
            out.insert(escape(OsStr::from_bytes(name)), HexBytes(v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn set_mtime(p: &Path, sec: i64, nsec: i64) {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        let ts = [
            libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            },
            libc::timespec {
                tv_sec: sec,
                tv_nsec: nsec,
            },
        ];
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

    fn set_xattr(p: &Path, name: &str, value: &[u8]) -> bool {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        let n = CString::new(name).unwrap();
        let r = unsafe {
            libc::lsetxattr(
                c.as_ptr(),
                n.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        r == 0
    }

    fn tree() -> tempfile::TempDir {
        let t = tempfile::Builder::new()
            .prefix("cairn-test-manifest-")
            .tempdir()
            .unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("etc/passwd"), b"root:x:0:0\n").unwrap();
        std::fs::write(r.join("etc/sub/a"), b"aaa").unwrap();
        std::fs::hard_link(r.join("etc/sub/a"), r.join("b-link")).unwrap();
        symlink("etc/passwd", r.join("link")).unwrap();
        nix::unistd::mkfifo(
            &r.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::write(r.join(OsStr::from_bytes(b"bad\xffname\\")), b"").unwrap();
        for p in [
            "etc/passwd",
            "etc/sub/a",
            "link",
            "fifo",
            "etc/sub",
            "etc",
            ".",
        ] {
            set_mtime(&r.join(p), 1_000, 5);
        }
        t
    }

    #[test]
    fn records_types_content_links_and_names() {
        let t = tree();
        let m = Manifest::of(t.path()).unwrap();
        let keys: Vec<&str> = m.entries.keys().map(|s| s.as_str()).collect();
        assert_eq!(
            keys,
            [
                ".",
                "b-link",
                "bad\\xffname\\\\",
                "etc",
                "etc/passwd",
                "etc/sub",
                "etc/sub/a",
                "fifo",
                "link"
            ]
        );
        let p = &m.entries["etc/passwd"];
        assert_eq!(p.kind, FileKind::File);
        assert_eq!(p.size, Some(11));
        assert_eq!(
            p.blake3.as_deref(),
            Some(blake3::hash(b"\x01root:x:0:0\n").to_hex().as_str())
        );
        assert_eq!(p.mtime_ns, 1_000_000_000_005);
        assert_eq!(m.entries["link"].kind, FileKind::Symlink);
        assert_eq!(m.entries["link"].target.as_deref(), Some("etc/passwd"));
        assert_eq!(m.entries["link"].mtime_ns, 1_000_000_000_005);
        assert_eq!(m.entries["fifo"].kind, FileKind::Fifo);
        assert_eq!(m.entries["fifo"].mode, 0o600);
        assert_eq!(m.entries["b-link"].hardlink.as_deref(), Some("b-link"));
        assert_eq!(m.entries["etc/sub/a"].hardlink.as_deref(), Some("b-link"));
        assert_eq!(m.entries["etc/passwd"].hardlink, None);
        assert_eq!(m.entries["."].kind, FileKind::Dir);
        // Same tree, same manifest; and it survives JSON.
        assert!(m.diff(&Manifest::of(t.path()).unwrap()).is_empty());
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    }

    #[test]
    fn content_hash_ignores_hole_layout_and_sees_every_byte() {
        use std::os::unix::fs::FileExt;
        let d = tempfile::tempdir().unwrap();
        let hash = |name: &str| {
            let p = d.path().join(name);
            hash_file(&p, &std::fs::metadata(&p).unwrap()).unwrap()
        };
        let len = 10 * HASH_BLOCK + 123;
        let data_at = 3 * HASH_BLOCK + 7; // straddles no block boundary on purpose
                                          // Sparse: holes around a little data.
        let sparse = std::fs::File::create(d.path().join("sparse")).unwrap();
        sparse.set_len(len).unwrap();
        sparse.write_all_at(b"data", data_at).unwrap();
        // Dense: the same bytes, zeros written out.
        let mut bytes = vec![0u8; len as usize];
        bytes[data_at as usize..data_at as usize + 4].copy_from_slice(b"data");
        std::fs::write(d.path().join("dense"), &bytes).unwrap();
        assert_eq!(hash("sparse"), hash("dense"));
        // Data across a block boundary and in the partial last block.
        bytes[(2 * HASH_BLOCK - 1) as usize] = 9;
        bytes[(len - 1) as usize] = 1;
        std::fs::write(d.path().join("dense2"), &bytes).unwrap();
        let sparse2 = std::fs::File::create(d.path().join("sparse2")).unwrap();
        sparse2.set_len(len).unwrap();
        sparse2.write_all_at(b"data", data_at).unwrap();
        sparse2.write_all_at(&[9], 2 * HASH_BLOCK - 1).unwrap();
        sparse2.write_all_at(&[1], len - 1).unwrap();
        assert_eq!(hash("sparse2"), hash("dense2"));
        assert_ne!(hash("sparse2"), hash("sparse"));
        // One byte moved within a block changes the hash; a zero block is not an empty one.
        bytes[(2 * HASH_BLOCK - 1) as usize] = 0;
        bytes[(2 * HASH_BLOCK - 2) as usize] = 9;
        std::fs::write(d.path().join("moved"), &bytes).unwrap();
        assert_ne!(hash("moved"), hash("dense2"));
        std::fs::write(d.path().join("empty"), b"").unwrap();
        std::fs::write(d.path().join("zeros"), vec![0u8; HASH_BLOCK as usize]).unwrap();
        assert_ne!(hash("empty"), hash("zeros"));
        // All holes.
        let holes = std::fs::File::create(d.path().join("holes")).unwrap();
        holes.set_len(HASH_BLOCK).unwrap();
        assert_eq!(hash("holes"), hash("zeros"));
    }

    #[test]
    fn diff_names_every_change() {
        let t = tree();
        let r = t.path();
        let before = Manifest::of(r).unwrap();
        std::fs::write(r.join("etc/passwd"), b"root:x:0:0\nx\n").unwrap();
        set_mtime(&r.join("etc/passwd"), 2_000, 0);
        std::fs::set_permissions(r.join("fifo"), std::fs::Permissions::from_mode(0o4640)).unwrap();
        std::fs::remove_file(r.join("b-link")).unwrap();
        std::fs::write(r.join("new"), b"n").unwrap();
        let has_user_xattr = set_xattr(&r.join("etc/sub/a"), "user.k", b"v");
        let after = Manifest::of(r).unwrap();
        let d = before.diff(&after);
        let want = [
            "removed b-link",
            "etc/passwd: mtime 1000000000005 != 2000000000000",
            "etc/passwd: size 11 != 13",
            "etc/sub/a: hardlink b-link != -",
            "fifo: mode 0600 != 4640",
            "added new",
        ];
        for w in want {
            assert!(d.iter().any(|l| l == w), "{w:?} missing from {d:#?}");
        }
        assert!(d.iter().any(|l| l.starts_with("etc/passwd: content ")));
        if has_user_xattr {
            assert!(
                d.iter().any(|l| l == "etc/sub/a: xattr user.k - != \"v\""),
                "{d:#?}"
            );
            assert_eq!(
                after.entries["etc/sub/a"].xattrs["user.k"],
                HexBytes(b"v".to_vec())
            );
        }
        // Directory mtimes changed too (b-link removed, new added).
        assert!(d.iter().any(|l| l.starts_with(".: mtime ")));
    }

    #[test]
    fn diff_is_capped() {
        let t = tempfile::Builder::new()
            .prefix("cairn-test-manifest-")
            .tempdir()
            .unwrap();
        let before = Manifest::of(t.path()).unwrap();
        for i in 0..60 {
            std::fs::write(t.path().join(format!("f{i:02}")), b"").unwrap();
        }
        set_mtime(t.path(), 1, 0);
        let d = before.diff(&Manifest::of(t.path()).unwrap());
        assert_eq!(d.len(), DIFF_LIMIT + 1);
        assert_eq!(d[DIFF_LIMIT], "... and 11 more differences");
    }
}
