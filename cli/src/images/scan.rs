//! The safety check every image passes before anything is unpacked or stored: one full
//! read of the archive with the `tar` crate that refuses
//!
//! - input that is not a tar archive, and corrupt or truncated archives (a decoder or
//!   tar error anywhere, or a missing end-of-archive marker);
//! - members with absolute paths or a `..` component;
//! - symlinks whose relative target climbs above the root (absolute targets are normal
//!   in a root filesystem and resolve inside the container's root);
//! - hard links to an absolute path, through `..`, outside the root, or to something not
//!   earlier in the archive;
//! - members (or hard-link targets) below a symlink member, which an extractor would
//!   follow out of the tree;
//! - member types other than files, directories, links, devices and fifos.
//!
//! It also tells the layout: an LXD *unified* tarball (`metadata.yaml` + `rootfs/`) or a
//! plain root filesystem tarball.

use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::rules::check_members;
#[cfg(test)]
use super::rules::climbs_out;

/// Why an archive is refused. Displayed after `image FILE: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a tar archive ({0})")]
    NotTar(String),
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    #[error("truncated archive: {0}")]
    Truncated(String),
    #[error("member {member:?}: {reason}")]
    Member { member: String, reason: String },
    #[error("{0}")]
    Layout(String),
}

/// How the root filesystem sits in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `metadata.yaml` and `rootfs/`; `prefix` is the member prefix as written
    /// (`rootfs` or `./rootfs`), which GNU tar strips when unpacking.
    Unified { prefix: String },
    /// The whole archive is the root filesystem.
    Rootfs,
}

/// Owner, mode and mtime of the root directory's own member, if the archive has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Nanoseconds of `mtime`, from a PAX `mtime` record.
    pub mtime_nsec: u32,
}

/// What a successful scan learnt.
#[derive(Debug, Clone)]
pub struct Scan {
    pub layout: Layout,
    pub metadata_yaml: Option<String>,
    /// Members that will be unpacked (those under the root).
    pub members: u64,
    pub root_meta: Option<RootMeta>,
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

pub(super) struct Member {
    pub path: PathBuf,
    pub raw: String,
    pub kind: EntryType,
    pub link: Option<PathBuf>,
    pub meta: RootMeta,
}

fn io_refusal(e: &io::Error, first: bool) -> Refusal {
    let msg = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof || msg.contains("EOF") || msg.contains("incomplete")
    {
        Refusal::Truncated(msg)
    } else if first {
        Refusal::NotTar(msg)
    } else {
        Refusal::Corrupt(msg)
    }
}

pub(super) fn member_err(member: &str, reason: impl Into<String>) -> Refusal {
    Refusal::Member {
        member: member.to_string(),
        reason: reason.into(),
    }
}

/// Normalises a member path: drops `.` components and a trailing `/`; refuses absolute
/// paths and `..`.
pub(super) fn normalise(raw: &str, p: &Path, what: &str) -> Result<PathBuf, Refusal> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(member_err(
                    raw,
                    format!("{what} leaves the archive root (\"..\")"),
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(member_err(raw, format!("{what} is absolute")))
            }
        }
    }
    Ok(out)
}

/// Reads the whole (decompressed) tar stream and checks every member.
pub fn scan(input: impl Read) -> Result<Scan, Refusal> {
    let mut counting = Counting {
        inner: input,
        count: 0,
    };
    let mut members = Vec::new();
    let mut metadata_yaml = None;
    let mut data_end = 0u64;
    {
        let mut archive = tar::Archive::new(&mut counting);
        let entries = archive.entries().map_err(|e| io_refusal(&e, true))?;
        for entry in entries {
            let first = members.is_empty();
            let mut entry = entry.map_err(|e| io_refusal(&e, first))?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalise(&raw, Path::new(&raw), "path")?;
            let kind = entry.header().entry_type();
            let link = match kind {
                EntryType::Symlink | EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| member_err(&raw, "link without a target"))?;
                    Some(PathBuf::from(String::from_utf8_lossy(&target).into_owned()))
                }
                _ => None,
            };
            let h = entry.header();
            let mut meta = RootMeta {
                mode: h.mode().unwrap_or(0o755),
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0),
                mtime_nsec: 0,
            };
            if path.as_os_str().is_empty() || path == Path::new("rootfs") {
                if let Some((secs, nsec)) = pax_mtime(&mut entry) {
                    (meta.mtime, meta.mtime_nsec) = (secs, nsec);
                }
            }
            data_end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
            if path == Path::new("metadata.yaml") && kind.is_file() {
                let mut text = String::new();
                entry
                    .by_ref()
                    .take(1 << 20)
                    .read_to_string(&mut text)
                    .map_err(|e| io_refusal(&e, false))?;
                metadata_yaml = Some(text);
            }
            members.push(Member {
                path,
                raw,
                kind,
                link,
                meta,
            });
        }
    }
    if members.is_empty() {
        return Err(Refusal::NotTar("no members".into()));
    }
    // Read to the end: decoders check their trailing checksums there.
    io::copy(&mut counting, &mut io::sink()).map_err(|e| io_refusal(&e, false))?;
    if counting.count < data_end + 512 {
        return Err(Refusal::Truncated("no end-of-archive marker".into()));
    }
    check_members(members, metadata_yaml)
}

/// The PAX `mtime` record (`seconds[.fraction]`) of an entry, if it has one.
fn pax_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<(u64, u32)> {
    let exts = entry.pax_extensions().ok()??;
    for ext in exts.flatten() {
        if ext.key() == Ok("mtime") {
            return parse_pax_time(ext.value().ok()?);
        }
    }
    None
}

fn parse_pax_time(v: &str) -> Option<(u64, u32)> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    Some((secs.parse().ok()?, nsec))
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
