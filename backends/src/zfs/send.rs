//! Native send/receive: `zfs send [-i base] ds@snap` and `zfs receive -s`.
//!
//! - **Holds.** The snapshot and its base carry a `zfs hold` (tag `cairn-send.<pid>.<n>`)
//!   while a send runs, so neither can vanish under it; released when it ends.
//! - **Where a received snapshot lands.** A full stream for a new volume is received into
//!   `tmp/<id>/live` and the container renamed into place (the volume appears whole). Into
//!   an existing volume, a stream becomes a new history dataset `h.<id>`: an incremental
//!   one is received as a clone of its base (`-o origin=`), found by the GUID the stream's
//!   BEGIN record names ([`parse_stream_header`]); the live state is never rolled back or
//!   touched. A stream whose base is not a snapshot of the volume is refused before
//!   anything is made.
//! - **Failure.** `receive -s` keeps a partial state with a `receive_resume_token`; the
//!   trait's receive is all-or-nothing, so a failed receive aborts it (`zfs receive -A`)
//!   and destroys the dataset it was making: no snapshot and no resumable state is left.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::Stdio;

use super::cli::{self, says};
use super::naming;
use super::parse::parse_stream_header;
use super::snapshots::{find_in, snapshots_in};
use super::volumes::ts;
use super::ZfsBackend;
use crate::cmd::ZFS;
use crate::error::{Error, Kind, Result};
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{SendStats, SnapshotInfo};

/// Holds `snaps` under a fresh tag until dropped.
struct Hold {
    tag: String,
    snaps: Vec<String>,
}

impl Hold {
    fn new(snaps: Vec<String>) -> Result<Hold> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tag = format!(
            "cairn-send.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut args = vec!["hold".to_string(), tag.clone()];
        args.extend(snaps.iter().cloned());
        cli::zfs(&args)?;
        Ok(Hold { tag, snaps })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut args = vec!["release".to_string(), self.tag.clone()];
        args.extend(self.snaps.iter().cloned());
        if let Err(e) = cli::zfs(&args) {
            tracing::warn!(tag = %self.tag, error = %e, "could not release send hold");
        }
    }
}

impl ZfsBackend {
    pub(super) fn do_send(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        // One listing finds both (and checks the pool is ours).
        let vol = self.volume(v)?;
        let snap = find_in(v, &vol, s)?.full;
        let base = base
            .map(|b| find_in(v, &vol, b))
            .transpose()?
            .map(|e| e.full);
        let _hold = Hold::new(std::iter::once(snap.clone()).chain(base.clone()).collect())?;
        let mut args: Vec<OsString> = vec!["send".into()];
        if let Some(b) = &base {
            args.extend(["-i".into(), b.into()]);
        }
        args.push(snap.clone().into());
        let child = ZFS.spawn_stream(&args, Stdio::null(), Stdio::piped())?;
        let bytes = child.copy_stdout_to(out, "send", &snap)?;
        Ok(SendStats { bytes })
    }

    pub(super) fn do_receive(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        let obj = format!("{v}/{s}");
        let refuse = |reason: String| Error::Invalid {
            op: "receive",
            object: obj.clone(),
            reason,
        };
        // The first record says full or incremental, and against which base.
        let mut head = Vec::with_capacity(1024);
        let header = loop {
            if let Some(h) = parse_stream_header(&head) {
                break h.map_err(&refuse)?;
            }
            let mut buf = [0u8; 512];
            match input.read(&mut buf) {
                Ok(0) => return Err(refuse("the stream ended before its first record".into())),
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read stream for", obj.as_str(), e)),
            }
        };
        // One listing: whether the volume exists, its snapshots (and the pool is ours).
        let vol = match self.volume(v) {
            Ok(vol) => Some(vol),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let exists = vol.is_some();
        let snaps = vol.map(|vol| snapshots_in(v, &vol)).unwrap_or_default();
        if snaps.iter().any(|e| &e.info.name == s) {
            return Err(Error::exists(Kind::Snapshot, obj));
        }
        let origin = match header.from_guid {
            None => None,
            Some(g) => Some(
                snaps
                    .iter()
                    .find(|e| e.row.guid == g)
                    .map(|e| e.full.clone())
                    .ok_or_else(|| {
                        refuse(format!(
                            "the stream is incremental and its base snapshot is not in volume {v}: \
                             receive the base first, or send a full stream"
                        ))
                    })?,
            ),
        };
        let comp = naming::snap_component(s);
        Revert::new().run(|rv| {
            let (target, tmp) = if exists {
                let h = format!("{}/h.{}", self.ds.container(v), naming::fresh_id());
                (h, None)
            } else {
                let tmp = self.tmp_container("receive", v, rv)?;
                (format!("{tmp}/live"), Some(tmp))
            };
            let t = target.clone();
            rv.add("abort receive", move || {
                let _ = cli::zfs(&["receive", "-A", &t]);
                match cli::zfs(&["destroy", "-r", &t]) {
                    Err(e) if !says(&e, "does not exist") => Err(e),
                    _ => Ok(()),
                }
            });
            let mut args: Vec<OsString> = vec!["receive".into(), "-s".into(), "-u".into()];
            if let Some(o) = &origin {
                args.extend(["-o".into(), format!("origin={o}").into()]);
            }
            args.push(format!("{target}@{comp}").into());
            self.run_receive(&args, &head, input, &obj)?;
            cli::set(&format!("{target}@{comp}"), "cairn:name", s.as_str())?;
            if let Some(tmp) = tmp {
                cli::rename(&tmp, &self.ds.container(v))
                    .map_err(|e| cli::typed(e, "receive", Kind::Volume, v.as_str()))?;
            }
            Ok(())
        })?;
        // What a listing would say: a received snapshot has no `cairn:created_at` (a
        // plain `zfs send` carries no properties) and ZFS gives it the stream's creation
        // time.
        Ok(SnapshotInfo {
            volume: v.clone(),
            name: s.clone(),
            created_at: ts(header.creation_time as i128 * 1_000_000_000),
        })
    }

    /// Feeds `head` then the rest of `input` to `zfs receive`.
    fn run_receive(
        &self,
        args: &[OsString],
        head: &[u8],
        input: &mut dyn Read,
        obj: &str,
    ) -> Result<()> {
        let mut child = ZFS.spawn_stream(args, Stdio::piped(), Stdio::null())?;
        let mut stdin = child.child.stdin.take().expect("stdin was piped");
        let fed = stdin
            .write_all(head)
            .and_then(|()| std::io::copy(input, &mut stdin).map(drop));
        drop(stdin);
        match fed {
            Ok(()) => child.wait(),
            Err(e) => match child.wait() {
                // The child stopped reading: its own error says why.
                Err(child_err) => Err(child_err),
                Ok(()) => Err(Error::io("feed zfs receive for", obj, e)),
            },
        }
    }
}
