//! Reading a `btrfs send --no-data -p BASE SNAP` stream for the paths worth comparing.
//!
//! The stream is a 17-byte header (`btrfs-stream\0`, u32 version) and commands of
//! `u32 len, u16 cmd, u32 crc` followed by `len` bytes of TLV attributes (`u16 type,
//! u16 len, value`), little-endian. The kernel emits a command for every inode whose item
//! differs between the two subvolumes, naming it by its path at that moment of the replay
//! (which may be a temporary orphan name `o<ino>-<gen>-<n>`).
//!
//! Every path a command names becomes a candidate. Both ends of a `RENAME` become
//! subtree candidates: what was under a renamed directory moved with it without being
//! named. A `LINK`'s existing path is a candidate too (its link count changed). The caller
//! compares the candidates in both trees ([`super::compare_paths`]), which skips orphan
//! names present in neither and expands directories present on one side only.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

const MAGIC: &[u8; 13] = b"btrfs-stream\0";
const HEADER_LEN: usize = 17;
const CMD_HEADER_LEN: usize = 10;

const CMD_SUBVOL: u16 = 1;
const CMD_SNAPSHOT: u16 = 2;
const CMD_RENAME: u16 = 9;
const CMD_LINK: u16 = 10;
const CMD_END: u16 = 21;

const ATTR_PATH: u16 = 15;
const ATTR_PATH_TO: u16 = 16;
const ATTR_PATH_LINK: u16 = 17;

/// Paths to compare: path relative to the subvolume root → whether to compare the whole
/// subtree under it (not only the entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidates {
    pub paths: BTreeMap<PathBuf, bool>,
    /// Paths named by a command that can change which inode a path holds or its data
    /// (create, link, unlink, rename, write, clone, truncate, update-extent...).
    pub touched: BTreeSet<PathBuf>,
    /// Whether the stream renamed anything (then no path's inode can be vouched for).
    pub renames: bool,
}

impl Candidates {
    pub fn add(&mut self, path: PathBuf, subtree: bool) {
        *self.paths.entry(path).or_insert(false) |= subtree;
    }

    /// Whether the stream shows the file at `path` kept its inode and data: it was only
    /// named by metadata commands (utimes, chown, chmod, xattrs) and nothing was renamed,
    /// so every name in the stream is the path in both trees.
    pub fn data_unchanged(&self, path: &std::path::Path) -> bool {
        !self.renames && self.paths.contains_key(path) && !self.touched.contains(path)
    }
}

/// Commands that only change an inode's metadata: CHMOD, CHOWN, UTIMES, SET_XATTR,
/// REMOVE_XATTR, FILEATTR.
fn metadata_only(cmd: u16) -> bool {
    matches!(cmd, 13 | 14 | 18 | 19 | 20 | 24)
}

/// The candidates a send stream names, or why the bytes are not a whole stream.
pub fn candidates(stream: &[u8]) -> Result<Candidates, String> {
    if stream.len() < HEADER_LEN || &stream[..13] != MAGIC {
        return Err("not a btrfs send stream (no `btrfs-stream` header)".into());
    }
    let version = u32::from_le_bytes(stream[13..17].try_into().expect("4 bytes"));
    if !(1..=3).contains(&version) {
        return Err(format!("send stream version {version} is not known"));
    }
    let mut out = Candidates::default();
    let mut rest = &stream[HEADER_LEN..];
    let mut ended = false;
    while !rest.is_empty() {
        if rest.len() < CMD_HEADER_LEN {
            return Err("stream cut inside a command header".into());
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let cmd = u16::from_le_bytes(rest[4..6].try_into().expect("2 bytes"));
        let body = rest
            .get(CMD_HEADER_LEN..CMD_HEADER_LEN + len)
            .ok_or("stream cut inside a command")?;
        rest = &rest[CMD_HEADER_LEN + len..];
        if cmd == CMD_END {
            ended = true;
            break;
        }
        if cmd == CMD_SUBVOL || cmd == CMD_SNAPSHOT {
            continue;
        }
        out.renames |= cmd == CMD_RENAME;
        let mut attrs = body;
        while !attrs.is_empty() {
            if attrs.len() < 4 {
                return Err(format!("command {cmd}: attribute header cut"));
            }
            let ty = u16::from_le_bytes([attrs[0], attrs[1]]);
            let alen = u16::from_le_bytes([attrs[2], attrs[3]]) as usize;
            let value = attrs
                .get(4..4 + alen)
                .ok_or_else(|| format!("command {cmd}: attribute {ty} cut"))?;
            attrs = &attrs[4 + alen..];
            let path = || PathBuf::from(OsStr::from_bytes(value));
            if matches!(ty, ATTR_PATH | ATTR_PATH_TO | ATTR_PATH_LINK) && !metadata_only(cmd) {
                out.touched.insert(path());
            }
            match ty {
                ATTR_PATH => out.add(path(), cmd == CMD_RENAME),
                ATTR_PATH_TO => out.add(path(), true),
                ATTR_PATH_LINK if cmd == CMD_LINK => out.add(path(), false),
                _ => {}
            }
        }
    }
    if !ended {
        return Err("stream ends without its END command".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(out: &mut Vec<u8>, cmd: u16, attrs: &[(u16, &[u8])]) {
        let mut body = Vec::new();
        for (t, v) in attrs {
            body.extend_from_slice(&t.to_le_bytes());
            body.extend_from_slice(&(v.len() as u16).to_le_bytes());
            body.extend_from_slice(v);
        }
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&cmd.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&body);
    }

    #[test]
    fn names_every_path_and_renames_as_subtrees() {
        let mut s = b"btrfs-stream\0".to_vec();
        s.extend_from_slice(&1u32.to_le_bytes());
        cmd(&mut s, CMD_SNAPSHOT, &[(ATTR_PATH, b"snap1")]);
        cmd(&mut s, 20, &[(ATTR_PATH, b"")]);
        cmd(&mut s, 22, &[(ATTR_PATH, b"etc/passwd"), (18, &[0; 8])]);
        cmd(
            &mut s,
            CMD_RENAME,
            &[(ATTR_PATH, b"o257-5-0"), (ATTR_PATH_TO, b"srv/new")],
        );
        cmd(
            &mut s,
            CMD_LINK,
            &[(ATTR_PATH, b"usr/bin/b"), (ATTR_PATH_LINK, b"usr/bin/a")],
        );
        cmd(&mut s, CMD_END, &[]);
        let c = candidates(&s).unwrap();
        let got: Vec<(String, bool)> = c
            .paths
            .iter()
            .map(|(p, t)| (p.display().to_string(), *t))
            .collect();
        assert_eq!(
            got,
            [
                ("".into(), false),
                ("etc/passwd".into(), false),
                ("o257-5-0".into(), true),
                ("srv/new".into(), true),
                ("usr/bin/a".into(), false),
                ("usr/bin/b".into(), false),
            ]
        );
        // Renamed: nothing is vouched for. Without the rename, a path named only by UTIMES is.
        assert!(c.renames && !c.data_unchanged(std::path::Path::new("")));
        let mut plain = b"btrfs-stream\0".to_vec();
        plain.extend_from_slice(&1u32.to_le_bytes());
        cmd(&mut plain, 20, &[(ATTR_PATH, b"etc")]);
        cmd(&mut plain, 22, &[(ATTR_PATH, b"etc/passwd")]);
        cmd(&mut plain, 20, &[(ATTR_PATH, b"etc/passwd")]);
        cmd(&mut plain, CMD_END, &[]);
        let p = candidates(&plain).unwrap();
        assert!(p.data_unchanged(std::path::Path::new("etc")));
        assert!(!p.data_unchanged(std::path::Path::new("etc/passwd")));
        assert!(!p.data_unchanged(std::path::Path::new("usr")));
        assert!(candidates(&s[..s.len() - 3]).is_err());
        assert!(candidates(b"not a stream at all").is_err());
    }

    /// The stream captured from a real `btrfs send` (a full stream of a small tree).
    #[test]
    fn reads_a_captured_stream() {
        let s = include_bytes!("../../tests/fixtures/btrfs-send-small.stream");
        let c = candidates(s).unwrap();
        assert!(!c.paths.is_empty());
    }
}
