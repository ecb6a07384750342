//! Native send/receive of thin snapshots: only the blocks a snapshot maps (a full
//! stream), or only those that changed since a base snapshot (an incremental one), as
//! the thin pool's own metadata says, framed as in [`super::stream`].
//!
//! ## Send
//! The snapshot LV is activated to be read. Under a per-pool lock file
//! (`<state_dir>/send.lock`: a pool has one metadata snapshot at a time), the pool's
//! metadata snapshot is reserved (`dmsetup message <pool>-tpool 0 reserve_metadata_snap`,
//! released when the guard drops, on failure too), and either
//! `thin_dump -m --dev-id <snap>` (full: every mapped block) or
//! `thin_delta -m --snap1 <base> --snap2 <snap>` (incremental: `<different>` and
//! `<right_only>` blocks to send, `<left_only>` ones to zero) runs on `<pool>_tmeta`.
//! The metadata snapshot is released before the data is read: a read-only snapshot's
//! blocks cannot change. Unprovisioned space is never read or sent.
//!
//! ## Identity
//! A snapshot is identified by its `cairn-id` tag when it has one (it was received), else
//! by its LV UUID; a received snapshot gets the sender's identity as its tag. An
//! incremental stream names its base by identity, so a base that was renamed on either
//! side is still found, and a different snapshot that has the base's name is refused.
//!
//! ## Receive
//! The new snapshot LV `s-<vol>-<snap>` is built writable and tagged `cairn-incomplete`
//! (invisible to listings, removed by `mount_pool` after a crash): a new thin LV of the
//! stream's volume size for a full stream, a thin snapshot of the base for an incremental
//! one. The ranges are written at their offsets (idempotent: a retry rewrites the same
//! bytes), discarded ranges are discarded and zeroed where they still hold data. Only
//! once the trailer's checksum matched is it made read-only and skipped at activation,
//! and then complete (dropping the tag is the one step that makes it appear). A full stream into a volume that does not exist also makes
//! the volume's live state, a writable snapshot of the received one, completed before
//! the snapshot. Any failure removes what the receive made; the previous snapshots and
//! live state are untouched. Receiving a snapshot that is already there with the same
//! identity returns it (a retry after a lost answer); another one of that name is
//! `AlreadyExists`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::parse::{self, BlockRange, Lv};
use super::stream::{self, Header, Record, SnapRef, StreamReader, StreamWriter};
use super::{cli, created_at, naming, now_ns, LvmBackend};
use crate::error::{Error, IoContext, Kind, Result};
use crate::names::{SnapshotName, VolumeName};
use crate::revert::Revert;
use crate::types::{SendStats, SnapshotInfo};

/// A snapshot's identity: its `cairn-id` tag, else its LV UUID.
fn snapshot_id(lv: &Lv) -> String {
    lv.tag_value(naming::KEY_ID)
        .and_then(naming::decode)
        .unwrap_or_else(|| lv.uuid.clone())
}

/// The bytes `[start, end)` of a range of `block`-byte blocks, clipped to `size`.
fn byte_range(r: &BlockRange, block: u64, size: u64) -> (u64, u64) {
    let start = (r.begin * block).min(size);
    let end = ((r.begin + r.length) * block).min(size);
    (start, end)
}

/// A reserved metadata snapshot of a thin pool; released on drop.
struct MetadataSnap {
    pool_dev: String,
}

impl Drop for MetadataSnap {
    fn drop(&mut self) {
        if let Err(e) = cli::pool_message(&self.pool_dev, "release_metadata_snap") {
            tracing::warn!(pool = %self.pool_dev, error = %e, "could not release the metadata snapshot");
        }
    }
}

/// `BLKDISCARD` and `BLKZEROOUT` (linux/fs.h: `_IO(0x12, 119)`, `_IO(0x12, 127)`).
const BLKDISCARD: libc::c_ulong = 0x1277;
const BLKZEROOUT: libc::c_ulong = 0x127f;

fn range_ioctl(
    dev: &File,
    request: libc::c_ulong,
    offset: u64,
    length: u64,
) -> std::io::Result<()> {
    let range = [offset, length];
    // SAFETY: both ioctls read two u64s (start, length) from the pointer.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), request, range.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `length` bytes at `offset` read as zeros: discarded (whole thin blocks become
/// unmapped and free), and zeroed where a read still finds data (blocks only partly in
/// the range, or a pool that ignores discards).
fn zero_range(dev: &File, path: &Path, offset: u64, length: u64) -> Result<()> {
    if let Err(e) = range_ioctl(dev, BLKDISCARD, offset, length) {
        tracing::debug!(error = %e, offset, length, "discard refused; zeroing instead");
    }
    let mut buf = vec![0u8; stream::MAX_DATA];
    let end = offset + length;
    let mut off = offset;
    while off < end {
        let n = ((end - off) as usize).min(buf.len());
        dev.read_exact_at(&mut buf[..n], off)
            .ctx("read back a discarded range of", path)?;
        if buf[..n].iter().any(|&b| b != 0) {
            range_ioctl(dev, BLKZEROOUT, off, n as u64).ctx("zero a range of", path)?;
        }
        off += n as u64;
    }
    Ok(())
}

impl LvmBackend {
    /// The thin pool's device-mapper device that takes messages.
    fn pool_dev(&self) -> String {
        let dm = naming::dm_name(&self.vg, &self.thin_pool);
        let tpool = format!("{dm}-tpool");
        if Path::new("/dev/mapper").join(&tpool).exists() {
            tpool
        } else {
            dm
        }
    }

    /// The thin pool's metadata device.
    fn tmeta_dev(&self) -> PathBuf {
        Path::new("/dev/mapper").join(naming::dm_name(
            &self.vg,
            &format!("{}_tmeta", self.thin_pool),
        ))
    }

    /// The pool's send lock, held while its metadata snapshot is reserved.
    fn send_lock(&self) -> Result<Flock<File>> {
        let dir = &self.spec.state_dir;
        std::fs::create_dir_all(dir).ctx("create directory", dir)?;
        let path = dir.join("send.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ctx("open lock file", &path)?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::io("lock", &path, std::io::Error::from(e)))
    }

    /// Reserves the pool's metadata snapshot. Call with the send lock held: in a VG of our
    /// own, a reservation found then is a killed send's leftover, released and retaken.
    fn reserve_metadata(&self) -> Result<MetadataSnap> {
        let dev = self.pool_dev();
        match cli::pool_message(&dev, "reserve_metadata_snap") {
            Ok(()) => {}
            Err(e) if cli::is_busy(&e) && self.owned => {
                tracing::warn!(pool = %dev, "releasing a metadata snapshot a killed send left reserved");
                cli::pool_message(&dev, "release_metadata_snap")?;
                cli::pool_message(&dev, "reserve_metadata_snap")?;
            }
            Err(e) if cli::is_busy(&e) => {
                return Err(Error::Busy {
                    op: "send",
                    object: format!("thin pool {}/{}", self.vg, self.thin_pool),
                    reason: format!(
                        "its metadata snapshot is reserved by someone else; once nothing uses it: \
                         dmsetup message {dev} 0 release_metadata_snap"
                    ),
                })
            }
            Err(e) => return Err(e),
        }
        Ok(MetadataSnap { pool_dev: dev })
    }

    fn thin_id(&self, lv: &Lv) -> Result<u32> {
        lv.thin_id
            .ok_or_else(|| self.invalid("send", format!("LVM reports no thin id for {}", lv.name)))
    }

    pub(super) fn do_send(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
        base: Option<&SnapshotName>,
        out: &mut dyn Write,
    ) -> Result<SendStats> {
        let obj = format!("{v}/{s}");
        if base == Some(s) {
            return Err(self.invalid("send", format!("{obj} cannot be its own base")));
        }
        let lvs = self.live_lvs()?;
        let snap = self.find_snapshot(&lvs, v, s)?;
        let base = base
            .map(|b| Ok::<_, Error>((b, self.find_snapshot(&lvs, v, b)?)))
            .transpose()?;
        let was_active = snap.active;
        self.activate(&snap)?;
        let sent = self.send_active((s, &snap), base.as_ref().map(|(b, l)| (*b, l)), out, &obj);
        if !was_active {
            if let Err(e) = cli::lvm(&["lvchange", "-q", "-an", &self.lv_path(&snap.name)]) {
                tracing::warn!(lv = %snap.name, error = %e, "could not deactivate the sent snapshot");
            }
        }
        sent
    }

    /// Sends the active snapshot LV `snap`, against `base` if given.
    fn send_active(
        &self,
        (name, snap): (&SnapshotName, &Lv),
        base: Option<(&SnapshotName, &Lv)>,
        out: &mut dyn Write,
        obj: &str,
    ) -> Result<SendStats> {
        let snap_id = self.thin_id(snap)?;
        let (sectors, data, zeros) = {
            let _lock = self.send_lock()?;
            let _meta = self.reserve_metadata()?;
            match base {
                Some((_, b)) => {
                    let xml = cli::thin_delta(&self.tmeta_dev(), self.thin_id(b)?, snap_id)?;
                    let d = parse::parse_thin_delta(&xml)?;
                    (d.data_block_size, d.changed, d.discarded)
                }
                None => {
                    let xml = cli::thin_dump(&self.tmeta_dev(), snap_id)?;
                    let m = parse::parse_thin_dump(&xml, snap_id)?;
                    (m.data_block_size, m.mapped, Vec::new())
                }
            }
        };
        let block = sectors * 512;
        let header = Header {
            driver: super::DRIVER.to_string(),
            volume_size: snap.size,
            block_size: block,
            snapshot: SnapRef {
                name: name.to_string(),
                id: snapshot_id(snap),
            },
            created_ns: created_at(snap).as_nanosecond() as i64,
            base: base.map(|(n, b)| SnapRef {
                name: n.to_string(),
                id: snapshot_id(b),
            }),
        };
        tracing::debug!(snapshot = %obj, ranges = data.len(), discarded = zeros.len(), "sending");
        let path = self.dev(&snap.name);
        let dev = File::open(&path).ctx("open snapshot device", &path)?;
        let mut w = StreamWriter::new(out, &header, obj)?;
        let mut buf = vec![0u8; stream::MAX_DATA];
        for r in &data {
            let (mut off, end) = byte_range(r, block, snap.size);
            while off < end {
                let n = ((end - off) as usize).min(buf.len());
                dev.read_exact_at(&mut buf[..n], off)
                    .ctx("read snapshot device", &path)?;
                w.data(off, &buf[..n])?;
                off += n as u64;
            }
        }
        for r in &zeros {
            let (start, end) = byte_range(r, block, snap.size);
            if end > start {
                w.zero(start, end - start)?;
            }
        }
        Ok(SendStats { bytes: w.finish()? })
    }

    pub(super) fn do_receive(
        &self,
        v: &VolumeName,
        s: &SnapshotName,
        input: &mut dyn Read,
    ) -> Result<SnapshotInfo> {
        let obj = format!("{v}/{s}");
        let mut reader = StreamReader::new(input, &obj)?;
        let h = reader.header().clone();
        let all = self.pool_report()?;
        let lvs = self.live(&all);
        let volume = self.find_volume(&lvs, v).ok();
        let created = jiff::Timestamp::from_nanosecond(i128::from(h.created_ns))
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        if let Ok(there) = self.find_snapshot(&lvs, v, s) {
            if volume.is_some() && snapshot_id(&there) == h.snapshot.id {
                return Ok(SnapshotInfo {
                    volume: v.clone(),
                    name: s.clone(),
                    created_at: created_at(&there),
                });
            }
            return Err(Error::exists(Kind::Snapshot, &obj));
        }
        let base = match &h.base {
            None => None,
            Some(b) => {
                if volume.is_none() {
                    return Err(Error::Invalid {
                        op: "receive",
                        object: obj,
                        reason: format!(
                            "the stream is incremental (base {}) and volume {v} does not exist: \
                             receive a full stream first",
                            b.name
                        ),
                    });
                }
                let enc = naming::encode(v.as_str());
                let local: Vec<(SnapRef, &Lv)> = lvs
                    .iter()
                    .filter(|l| l.tag_value(naming::KEY_VOLUME) == Some(enc.as_str()))
                    .filter_map(|l| {
                        self.info_of(v, l).map(|i| {
                            let r = SnapRef {
                                name: i.name.to_string(),
                                id: snapshot_id(l),
                            };
                            (r, l)
                        })
                    })
                    .collect();
                let refs: Vec<SnapRef> = local.iter().map(|(r, _)| r.clone()).collect();
                let found = stream::find_base(b, &refs, &obj)?;
                let lv = local
                    .iter()
                    .find(|(r, _)| r == found)
                    .map(|(_, l)| (*l).clone())
                    .expect("found among local");
                if lv.size != h.volume_size {
                    return Err(Error::Invalid {
                        op: "receive",
                        object: obj,
                        reason: format!(
                            "the base snapshot here is {} bytes, the stream's volume {} bytes",
                            lv.size, h.volume_size
                        ),
                    });
                }
                Some(lv)
            }
        };
        self.check_fill(&all, "receive snapshot", &obj)?;
        let lv = self.snap_lv(v, s);
        self.clear_leftover(&all, &lv)?;
        let vol_lv = self.vol_lv(v);
        if volume.is_none() {
            self.clear_leftover(&all, &vol_lv)?;
        }
        Revert::new().run(|rv| {
            let mut args: Vec<String> = match &base {
                Some(_) => ["lvcreate", "-q", "-s", "-p", "rw"]
                    .map(String::from)
                    .to_vec(),
                None => vec![
                    "lvcreate".into(),
                    "-q".into(),
                    "-T".into(),
                    self.lv_path(&self.thin_pool),
                    "-V".into(),
                    format!("{}b", h.volume_size),
                ],
            };
            args.extend(["-n".into(), lv.clone()]);
            args.extend(["--setactivationskip".into(), "n".into()]);
            args.extend(self.tag_args(v, Some(s), i128::from(h.created_ns), true));
            args.extend([
                "--addtag".into(),
                naming::tag(naming::KEY_ID, &h.snapshot.id),
            ]);
            if let Some(b) = &base {
                args.push(self.lv_path(&b.name));
            }
            cli::lvm(&args).map_err(|e| cli::typed(e, "receive", Kind::Snapshot, &obj))?;
            let l = lv.clone();
            rv.add("remove the received snapshot", move || {
                self.remove_lvs(&[l])
            });
            // lvcreate activates it (skip flag off); its device node says so.
            if !self.dev(&lv).exists() {
                cli::lvm(&["lvchange", "-q", "-ay", "-K", &self.lv_path(&lv)])?;
            }
            self.apply(&mut reader, &lv)?;
            cli::lvm(&["lvchange", "-q", "-an", &self.lv_path(&lv)])?;
            if volume.is_none() {
                // The live state, completed first: a crash before the snapshot is
                // completed leaves a volume whose full stream can be received again.
                let mut args: Vec<String> = ["lvcreate", "-q", "-s", "-p", "rw", "-n"]
                    .map(String::from)
                    .to_vec();
                args.extend([vol_lv.clone(), "--setactivationskip".into(), "n".into()]);
                args.extend(self.tag_args(v, None, now_ns(), true));
                args.push(self.lv_path(&lv));
                cli::lvm(&args).map_err(|e| cli::typed(e, "receive", Kind::Volume, v.as_str()))?;
                let l = vol_lv.clone();
                rv.add("remove the received volume", move || self.remove_lvs(&[l]));
                self.complete(&vol_lv)?;
            }
            // Read-only, skipped at activation and complete in one lvchange: LVM (2.03)
            // commits an LV's permission, activation skip and tag changes in one metadata
            // commit, so a crash leaves the snapshot either incomplete (mount_pool removes
            // it) or whole and read-only. `-p r` fails without a change only when the LV
            // is read-only already, so the tag never goes while the LV is writable.
            cli::lvm(&[
                "lvchange",
                "-q",
                "-p",
                "r",
                "--setactivationskip",
                "y",
                "--deltag",
                naming::TAG_INCOMPLETE,
                &self.lv_path(&lv),
            ])?;
            Ok(())
        })?;
        Ok(SnapshotInfo {
            volume: v.clone(),
            name: s.clone(),
            created_at: created,
        })
    }

    /// Writes the stream's ranges to the active LV `lv`; returns once the trailer checked.
    fn apply<R: Read>(&self, reader: &mut StreamReader<R>, lv: &str) -> Result<()> {
        let path = self.dev(lv);
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .ctx("open received device", &path)?;
        while let Some(rec) = reader.next()? {
            match rec {
                Record::Data { offset, data } => dev
                    .write_all_at(&data, offset)
                    .ctx("write received data to", &path)?,
                Record::Zero { offset, length } => zero_range(&dev, &path, offset, length)?,
            }
        }
        dev.sync_all().ctx("flush", &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ranges_become_clipped_byte_ranges() {
        let r = BlockRange {
            begin: 2,
            length: 3,
        };
        assert_eq!(byte_range(&r, 65536, 1 << 30), (131072, 327680));
        assert_eq!(byte_range(&r, 65536, 200_000), (131072, 200_000));
        assert_eq!(byte_range(&r, 65536, 100_000), (100_000, 100_000));
    }

    #[test]
    fn identity_is_the_received_tag_else_the_uuid() {
        let json = r#"{"report":[{"lv":[
            {"lv_name":"s-web-s1","vg_name":"g","lv_attr":"Vri---tz-k","lv_size":"1",
             "segtype":"thin","data_percent":"","metadata_percent":"",
             "thin_id":"4","lv_active":"","lv_uuid":"aDAcHg-rwR7-Vw0n",
             "lv_tags":"cairn,cairn-s=s1"},
            {"lv_name":"s-web-s2","vg_name":"g","lv_attr":"Vri---tz-k","lv_size":"1",
             "segtype":"thin","data_percent":"","metadata_percent":"",
             "thin_id":"5","lv_active":"","lv_uuid":"JayCke-bLuL-VHHg",
             "lv_tags":"cairn,cairn-s=s2,cairn-id=3cXGsc_2dPiTt"}]}]}"#;
        let lvs = parse::parse_lvs(json).unwrap();
        assert_eq!(snapshot_id(&lvs[0]), "aDAcHg-rwR7-Vw0n");
        assert_eq!(snapshot_id(&lvs[1]), "3cXGsc-PiTt");
        assert_eq!(
            naming::tag(naming::KEY_ID, "3cXGsc-PiTt"),
            "cairn-id=3cXGsc_2dPiTt"
        );
    }
}
