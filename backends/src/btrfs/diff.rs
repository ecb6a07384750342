//! `diff` the btrfs way: `btrfs send --no-data -p FROM TO` compares the two subvolumes'
//! b-trees, skipping every node they still share, and names each path whose inode
//! differs; only those paths are then compared ([`crate::diff::compare_paths`]). The
//! cost follows what changed, not the size of the tree. The live state is first
//! captured as a read-only snapshot in `.tmp/` (one ioctl), deleted afterwards.
//!
//! ## Reading the stream
//! The kernel emits a command for every inode whose item differs between the two
//! subvolumes, naming it by its path at that moment of the replay (which may be a
//! temporary orphan name `o<ino>-<gen>-<n>`); the format is read with
//! [`super::stream`]. Every path a command names becomes a candidate. Both ends of a
//! `RENAME` become subtree candidates: what was under a renamed directory moved with it
//! without being named. A `LINK`'s existing path is a candidate too (its link count
//! changed). [`crate::diff::compare_paths`] skips orphan names present in neither tree
//! and expands directories present on one side only.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::send::send_into;
use super::stream::{self, ATTR_PATH, ATTR_PATH_LINK, ATTR_PATH_TO, CMD_LINK, CMD_RENAME};
use super::{subvol, BtrfsBackend};
use crate::diff::{compare_paths, walk, Candidates, DiffSide, TreeDiff};
use crate::error::Result;
use crate::names::VolumeName;

impl BtrfsBackend {
    pub(super) fn do_diff(
        &self,
        volume: &VolumeName,
        from: DiffSide<'_>,
        to: DiffSide<'_>,
    ) -> Result<TreeDiff> {
        let mut temps: Vec<PathBuf> = Vec::new();
        let result = (|| {
            let mut side = |s: DiffSide<'_>| -> Result<PathBuf> {
                match s {
                    DiffSide::Snapshot(snap) => self.snapshot_path(volume, snap),
                    DiffSide::Live => {
                        let vol = self.volume_path(volume)?;
                        let tmp = self.layout.tmp_path(&format!("diff-{volume}"));
                        subvol::snapshot(&vol, &tmp, true)?;
                        temps.push(tmp.clone());
                        Ok(tmp)
                    }
                }
            };
            let (a, b) = (side(from)?, side(to)?);
            let stream = send_no_data(&a, &b)?;
            diff_by_stream(&a, &b, &stream)
        })();
        for t in temps {
            if let Err(e) = subvol::delete(&t) {
                tracing::warn!(path = %t.display(), error = %e, "deleting the diff snapshot failed; mount_pool clears .tmp/");
            }
        }
        result
    }
}

/// The diff from the tree at `a` to the one at `b`, given the `--no-data` stream between
/// them: the paths it names are compared. A stream that cannot be read (a format this
/// does not know) is logged and both trees are walked instead, which gives the same
/// answer, only slower.
fn diff_by_stream(a: &Path, b: &Path, stream: &[u8]) -> Result<TreeDiff> {
    match candidates(stream) {
        Ok(c) => {
            tracing::debug!(
                candidates = c.paths.len(),
                bytes = stream.len(),
                "btrfs diff"
            );
            compare_paths(a, b, &c)
        }
        Err(reason) => {
            tracing::warn!(
                from = %a.display(),
                to = %b.display(),
                %reason,
                "cannot read the btrfs send stream; walking both trees instead"
            );
            walk(a, b)
        }
    }
}

/// The metadata-only incremental stream from `base` to `snap` (both read-only).
fn send_no_data(base: &Path, snap: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    send_into(Some(base), snap, &["--no-data"], &mut out)?;
    Ok(out)
}

/// Commands that only change an inode's metadata.
fn metadata_only(cmd: u16) -> bool {
    use stream::*;
    matches!(
        cmd,
        CMD_SET_XATTR | CMD_REMOVE_XATTR | CMD_CHMOD | CMD_CHOWN | CMD_UTIMES | CMD_FILEATTR
    )
}

/// The candidates a `--no-data` send stream names, or why the bytes are not a whole
/// stream.
pub(super) fn candidates(bytes: &[u8]) -> std::result::Result<Candidates, String> {
    let (version, commands) = stream::commands(bytes)?;
    let mut out = Candidates::default();
    for command in commands {
        let (cmd, payload) = command?;
        if cmd == stream::CMD_SUBVOL || cmd == stream::CMD_SNAPSHOT {
            continue;
        }
        out.renames |= cmd == CMD_RENAME;
        for a in stream::attrs(version, payload) {
            let (ty, value) = a.map_err(|e| format!("command {cmd}: {e}"))?;
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::stream::tests::{attr, cmd};
    use super::super::stream::{CMD_END, CMD_SNAPSHOT, MAGIC};
    use super::*;

    /// A command as (type, its attributes as (type, value)).
    type Cmd<'a> = (u16, &'a [(u16, &'a [u8])]);

    fn stream_of(cmds: &[Cmd<'_>]) -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&1u32.to_le_bytes());
        for (kind, attrs) in cmds {
            let payload: Vec<u8> = attrs.iter().flat_map(|(t, v)| attr(*t, v)).collect();
            s.extend(cmd(*kind, &payload));
        }
        s
    }

    #[test]
    fn names_every_path_and_renames_as_subtrees() {
        let s = stream_of(&[
            (CMD_SNAPSHOT, &[(ATTR_PATH, b"snap1")]),
            (20, &[(ATTR_PATH, b"")]),
            (22, &[(ATTR_PATH, b"etc/passwd"), (18, &[0; 8])]),
            (
                CMD_RENAME,
                &[(ATTR_PATH, b"o257-5-0"), (ATTR_PATH_TO, b"srv/new")],
            ),
            (
                CMD_LINK,
                &[(ATTR_PATH, b"usr/bin/b"), (ATTR_PATH_LINK, b"usr/bin/a")],
            ),
            (CMD_END, &[]),
        ]);
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
        assert!(c.renames && !c.data_unchanged(Path::new("")));
        let plain = stream_of(&[
            (20, &[(ATTR_PATH, b"etc")]),
            (22, &[(ATTR_PATH, b"etc/passwd")]),
            (20, &[(ATTR_PATH, b"etc/passwd")]),
            (CMD_END, &[]),
        ]);
        let p = candidates(&plain).unwrap();
        assert!(p.data_unchanged(Path::new("etc")));
        assert!(!p.data_unchanged(Path::new("etc/passwd")));
        assert!(!p.data_unchanged(Path::new("usr")));
        assert!(candidates(&s[..s.len() - 3]).is_err());
        assert!(candidates(b"not a stream at all").is_err());
    }

    #[test]
    fn an_unreadable_stream_falls_back_to_the_walk() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(a.join("etc")).unwrap();
        std::fs::create_dir_all(b.join("etc")).unwrap();
        std::fs::write(b.join("etc/new"), b"n").unwrap();
        let whole = stream_of(&[(20, &[(ATTR_PATH, b"etc")]), (CMD_END, &[])]);
        let mut unknown_version = whole.clone();
        unknown_version[13] = 4;
        for bad in [
            &b"not a stream"[..],
            &whole[..whole.len() - 1],
            &unknown_version,
        ] {
            let d = diff_by_stream(&a, &b, bad).unwrap();
            assert_eq!(d, walk(&a, &b).unwrap());
            assert_eq!(d.method, crate::diff::Method::Walk);
            assert!(d.changes.iter().any(|c| c.path == Path::new("etc/new")));
        }
    }

    /// The stream captured from a real `btrfs send` (a full stream of a small tree).
    #[test]
    fn reads_a_captured_stream() {
        let s = include_bytes!("../../tests/fixtures/btrfs-send-small.stream");
        let c = candidates(s).unwrap();
        // The file is made under its orphan name and renamed into place (both ends are
        // subtree candidates, both touched); the root is named only by metadata commands.
        let want = Candidates {
            paths: [("", false), ("hello.txt", true), ("o257-7-0", true)]
                .map(|(p, sub)| (PathBuf::from(p), sub))
                .into(),
            touched: ["hello.txt", "o257-7-0"].map(PathBuf::from).into(),
            renames: true,
        };
        assert_eq!(c, want);
    }
}
