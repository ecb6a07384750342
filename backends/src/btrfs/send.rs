//! Native send/receive: `btrfs send [-p base] snap` and `btrfs receive`.
//!
//! Receive writes straight into `snapshots/<vol>/` (a read-only subvolume cannot be
//! moved to another directory; see the module docs) and renames the result within it.
//! The subvolume stays writable until `btrfs receive` has applied the whole stream, and
//! [`StreamCheck`] makes sure a cut stream never reaches that point, so an interrupted
//! or failed receive leaves only a writable subvolume, which we delete (and listings
//! skip, and `mount_pool` deletes after a crash).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;

use super::pool::make_dir;
use super::stream::StreamCheck;
use super::{subvol, BtrfsBackend};
use crate::cmd::BTRFS;
use crate::error::{Error, IoContext, Kind, Result};
use crate::layout::rename_noreplace;
use crate::names::{SnapshotName, VolumeName};
use crate::types::{SendStats, SnapshotInfo};

const BUF: usize = 256 << 10;

impl BtrfsBackend {
    pub(super) fn do_send(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        let path = self.snapshot_path(volume, snap)?;
        let base = base.map(|b| self.snapshot_path(volume, b)).transpose()?;
        let bytes = send_into(base.as_deref(), &path, &[], out)?;
        Ok(SendStats { bytes })
    }

    pub(super) fn do_receive(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        self.require_pool()?;
        let dir = self.layout.snapshots(volume);
        let dst = self.layout.snapshot(volume, snap);
        if dst.exists() {
            return Err(Error::exists(Kind::Snapshot, format!("{volume}/{snap}")));
        }
        let made_dir = make_dir(&dir)?;
        self.delete_partial_receives(&dir)?;
        let before = entries(&dir)?;
        let has_base = |uuid: [u8; 16]| self.has_base(volume, snap, uuid);
        let result = self
            .run_receive(&dir, input, &has_base)
            .and_then(|()| self.place_received(volume, snap, &dir, &before));
        if let Err(e) = result {
            // Leave no snapshot: delete whatever this receive made.
            let cleanup = || -> Result<()> {
                for name in entries(&dir)?.difference(&before) {
                    subvol::delete(&dir.join(name))?;
                }
                if made_dir && !self.layout.volume(volume).exists() {
                    std::fs::remove_dir(&dir).ctx("remove directory", &dir)?;
                }
                Ok(())
            };
            return Err(match cleanup() {
                Ok(()) => e,
                Err(rb) => Error::RollbackFailed {
                    error: Box::new(e),
                    rollback: Box::new(rb),
                },
            });
        }
        self.snapshot_info(volume, snap)
    }

    /// Fails unless a snapshot of `volume` is the base (by UUID) of an incremental
    /// stream: `btrfs receive` would take a base from any volume of the filesystem.
    fn has_base(&self, volume: &VolumeName, snap: &SnapshotName, base: [u8; 16]) -> Result<()> {
        let dir = self.layout.snapshots(volume);
        for name in entries(&dir)? {
            let path = dir.join(name);
            if subvol::is_subvolume(&path) && subvol::is_ro(&path)? {
                let (uuid, received) = subvol::uuids(&path)?;
                if uuid == base || received == Some(base) {
                    return Ok(());
                }
            }
        }
        Err(Error::Invalid {
            op: "receive",
            object: format!("{volume}/{snap}"),
            reason: format!(
                "the stream is incremental and its base snapshot is not in volume {volume}: \
                 receive the base first, or send a full stream"
            ),
        })
    }

    /// Feeds `input` to `btrfs receive <dir>`; end-of-input reaches it only if whole, and
    /// an incremental stream only if `check_base` accepts its base.
    fn run_receive(
        &self,
        dir: &Path,
        input: &mut dyn Read,
        check_base: &dyn Fn([u8; 16]) -> Result<()>,
    ) -> Result<()> {
        let args: [&std::ffi::OsStr; 2] = ["receive".as_ref(), dir.as_os_str()];
        let mut child = BTRFS.spawn_stream(&args, Stdio::piped(), Stdio::null())?;
        let mut stdin = child.child.stdin.take().expect("stdin was piped");
        let mut check = StreamCheck::new();
        let mut buf = vec![0u8; BUF];
        let mut pass = Vec::with_capacity(BUF + 4096);
        let mut base_checked = false;
        let fed: Result<()> = loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break check.finish().map_err(|r| stream_invalid(dir, r)),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Error::io("read stream for", dir, e)),
            };
            pass.clear();
            if let Err(r) = check.feed(&buf[..n], &mut pass) {
                break Err(stream_invalid(dir, r));
            }
            if !base_checked {
                if let Some(base) = check.base_uuid() {
                    base_checked = true;
                    if let Err(e) = base.map_or(Ok(()), check_base) {
                        break Err(e);
                    }
                }
            }
            if let Err(e) = stdin.write_all(&pass) {
                // The child stopped reading: its own error (from wait) says why.
                drop(stdin);
                return Err(match child.wait() {
                    Err(child_err) => child_err,
                    Ok(()) => Error::io("write stream to btrfs receive for", dir, e),
                });
            }
        };
        match fed {
            Ok(()) => {
                drop(stdin);
                child.wait()
            }
            Err(e) => {
                // Kill before it sees end-of-input, so it never finishes the subvolume.
                child.kill();
                drop(stdin);
                Err(e)
            }
        }
    }

    /// Renames the received subvolume to `snap` and, if the volume does not exist,
    /// creates it as a writable snapshot of it.
    fn place_received(
        &self,
        volume: &VolumeName,
        snap: &SnapshotName,
        dir: &Path,
        before: &HashSet<OsString>,
    ) -> Result<()> {
        let now = entries(dir)?;
        let new: Vec<_> = now.difference(before).collect();
        let [received] = new.as_slice() else {
            return Err(Error::Invalid {
                op: "receive",
                object: format!("{volume}/{snap}"),
                reason: format!("expected btrfs receive to make one subvolume, found {new:?}"),
            });
        };
        let received = dir.join(received);
        let dst = self.layout.snapshot(volume, snap);
        if received != dst {
            // Same directory: allowed for a read-only subvolume.
            rename_noreplace(&received, &dst).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    Error::exists(Kind::Snapshot, format!("{volume}/{snap}"))
                }
                _ => Error::io("rename received snapshot", &received, e),
            })?;
        }
        let vol = self.layout.volume(volume);
        if !vol.exists() {
            subvol::snapshot(&dst, &vol, false)?;
        }
        Ok(())
    }
}

/// `btrfs send -q [EXTRA_ARGS] [-p BASE] SNAP` (both read-only subvolumes), its stream
/// copied to `out`; the bytes copied. On a read or write error the child is killed.
pub(super) fn send_into(
    base: Option<&Path>,
    snap: &Path,
    extra_args: &[&str],
    out: &mut dyn Write,
) -> Result<u64> {
    let mut args: Vec<OsString> = vec!["send".into(), "-q".into()];
    args.extend(extra_args.iter().map(OsString::from));
    if let Some(base) = base {
        args.extend(["-p".into(), base.into()]);
    }
    args.push(snap.into());
    BTRFS
        .spawn_stream(&args, Stdio::null(), Stdio::piped())?
        .copy_stdout_to(out, "send snapshot", &snap.display().to_string())
}

fn stream_invalid(dir: &Path, reason: String) -> Error {
    Error::Invalid {
        op: "receive into",
        object: dir.display().to_string(),
        reason,
    }
}

fn entries(dir: &Path) -> Result<HashSet<OsString>> {
    let mut set = HashSet::new();
    for e in std::fs::read_dir(dir).ctx("read directory", dir)? {
        set.insert(e.ctx("read directory", dir)?.file_name());
    }
    Ok(set)
}
