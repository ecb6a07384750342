//! Framing check and one fix-up of a btrfs send stream as it passes through `receive`.
//!
//! - `btrfs receive` treats end-of-input at a command boundary as the end of the stream
//!   and finishes the subvolume (read-only, received UUID set), so a stream cut at such
//!   a boundary would be stored as if whole. We follow the framing ourselves — a 17-byte
//!   header (`btrfs-stream\0`, u32 version), then commands of `u32 len, u16 cmd, u32 crc`
//!   and `len` bytes of attributes, little-endian — and only let `btrfs receive` see
//!   end-of-input when the last command was `END`; otherwise we kill it first.
//! - The kernel sends the subvolume root's `UTIMES` before it has finished renaming
//!   orphans (`o<ino>-<gen>-0`) out of the root, so the receiver's root directory ends up
//!   with the receive time as mtime (seen on 6.18 with a Debian rootfs). We replay the
//!   last root `UTIMES` command, byte for byte (its CRC stays valid), right before `END`.

const MAGIC: &[u8; 13] = b"btrfs-stream\0";
const HEADER_LEN: usize = 17;
const CMD_HEADER_LEN: usize = 10;
/// `BTRFS_SEND_C_UTIMES` and `BTRFS_SEND_C_END`, the same in stream versions 1 to 3.
const CMD_UTIMES: u16 = 20;
const CMD_END: u16 = 21;
/// `BTRFS_SEND_C_SNAPSHOT`: the first command of an incremental stream.
const CMD_SNAPSHOT: u16 = 2;
/// `BTRFS_SEND_A_PATH` and `BTRFS_SEND_A_CLONE_UUID`.
const ATTR_PATH: u16 = 15;
const ATTR_CLONE_UUID: u16 = 20;

#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Bytes of the stream header or of a command header collected so far (held back).
    pending: Vec<u8>,
    header_done: bool,
    /// Payload bytes still to pass in the current command.
    remaining: u64,
    last_cmd: Option<u16>,
    /// The `UTIMES` command being passed, whole (header and payload).
    utimes: Option<Vec<u8>>,
    /// The last `UTIMES` of the subvolume root.
    root_utimes: Option<Vec<u8>>,
    /// The first command, whole, once passed (`SUBVOL` or `SNAPSHOT`).
    first: Option<Vec<u8>>,
}

impl StreamCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows `data`, appending what to pass on to `out`; errs as soon as the bytes
    /// cannot be a send stream.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining.min(data.len() as u64)) as usize;
                self.remaining -= n as u64;
                out.extend_from_slice(&data[..n]);
                if let Some(cmd) = &mut self.utimes {
                    cmd.extend_from_slice(&data[..n]);
                }
                data = &data[n..];
                if self.remaining == 0 {
                    self.end_of_command();
                }
                continue;
            }
            let want = if self.header_done {
                CMD_HEADER_LEN
            } else {
                HEADER_LEN
            };
            let n = (want - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() < want {
                continue;
            }
            if self.header_done {
                let p = &self.pending;
                self.remaining = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as u64;
                let cmd = u16::from_le_bytes([p[4], p[5]]);
                self.last_cmd = Some(cmd);
                if cmd == CMD_END {
                    if let Some(replay) = &self.root_utimes {
                        out.extend_from_slice(replay);
                    }
                }
                if cmd == CMD_UTIMES || self.first.is_none() {
                    self.utimes = Some(self.pending.clone());
                }
                out.extend_from_slice(&self.pending);
                if self.remaining == 0 {
                    self.end_of_command();
                }
            } else if &self.pending[..13] != MAGIC {
                return Err("this is not a btrfs send stream (bad magic)".into());
            } else {
                self.header_done = true;
                out.extend_from_slice(&self.pending);
            }
            self.pending.clear();
        }
        Ok(())
    }

    fn end_of_command(&mut self) {
        if let Some(cmd) = self.utimes.take() {
            if self.first.is_none() {
                self.first = Some(cmd);
            } else if attr(&cmd[CMD_HEADER_LEN..], ATTR_PATH) == Some(&[][..]) {
                self.root_utimes = Some(cmd);
            }
        }
    }

    /// Once the first command has passed: `Some(None)` for a full stream, and for an
    /// incremental one `Some(Some(uuid))` of its base (the receiver finds the base by
    /// this UUID in its subvolumes' received UUIDs).
    pub fn base_uuid(&self) -> Option<Option<[u8; 16]>> {
        let first = self.first.as_ref()?;
        let cmd = u16::from_le_bytes([first[4], first[5]]);
        if cmd != CMD_SNAPSHOT {
            return Some(None);
        }
        let uuid = attr(&first[CMD_HEADER_LEN..], ATTR_CLONE_UUID)?;
        Some(uuid.try_into().ok())
    }

    /// At end of input: is the stream whole?
    pub fn finish(&self) -> Result<(), String> {
        if !self.header_done {
            return Err("the stream is empty or shorter than its header".into());
        }
        if self.remaining > 0 || !self.pending.is_empty() || self.last_cmd != Some(CMD_END) {
            return Err("the stream is truncated (it does not end with an END command)".into());
        }
        Ok(())
    }
}

/// Attribute `want` of a command's payload (type-length-value attributes).
fn attr(mut payload: &[u8], want: u16) -> Option<&[u8]> {
    while payload.len() >= 4 {
        let kind = u16::from_le_bytes([payload[0], payload[1]]);
        let len = u16::from_le_bytes([payload[2], payload[3]]) as usize;
        let value = payload.get(4..4 + len)?;
        if kind == want {
            return Some(value);
        }
        payload = &payload[4 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(payload);
        v
    }

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = kind.to_le_bytes().to_vec();
        v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    fn utimes(path: &[u8], mtime: u8) -> Vec<u8> {
        let mut p = attr(ATTR_PATH, path);
        p.extend(attr(10, &[mtime; 12]));
        cmd(CMD_UTIMES, &p)
    }

    fn stream() -> Vec<u8> {
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&1u32.to_le_bytes());
        s.extend(cmd(1, &attr(ATTR_PATH, b"s1")));
        s.extend(utimes(b"", 1));
        s.extend(cmd(15, &[7; 300]));
        s.extend(utimes(b"", 2)); // the last root UTIMES: replayed before END
        s.extend(utimes(b"dir", 3));
        s.extend(cmd(9, b"orphan rename"));
        s.extend(cmd(CMD_END, b""));
        s
    }

    fn run(s: &[u8], chunk: usize) -> (Result<(), String>, Vec<u8>) {
        let mut c = StreamCheck::new();
        let mut out = Vec::new();
        for part in s.chunks(chunk) {
            if let Err(e) = c.feed(part, &mut out) {
                return (Err(e), out);
            }
        }
        (c.finish(), out)
    }

    #[test]
    fn whole_stream_passes_in_any_chunking_with_root_utimes_replayed() {
        let s = stream();
        let end = cmd(CMD_END, b"");
        let mut want = s[..s.len() - end.len()].to_vec();
        want.extend(utimes(b"", 2));
        want.extend(end);
        for chunk in [1, 3, 10, 17, 64, s.len()] {
            let (r, out) = run(&s, chunk);
            r.unwrap();
            assert_eq!(out, want, "chunk {chunk}");
        }
    }

    #[test]
    fn base_of_an_incremental_stream_is_found() {
        let mut c = StreamCheck::new();
        let mut s = MAGIC.to_vec();
        s.extend_from_slice(&1u32.to_le_bytes());
        c.feed(&s, &mut Vec::new()).unwrap();
        assert_eq!(c.base_uuid(), None);
        let mut p = attr(ATTR_PATH, b"s2");
        p.extend(attr(ATTR_CLONE_UUID, &[9; 16]));
        c.feed(&cmd(CMD_SNAPSHOT, &p), &mut Vec::new()).unwrap();
        assert_eq!(c.base_uuid(), Some(Some([9; 16])));
        let mut full = StreamCheck::new();
        full.feed(&stream(), &mut Vec::new()).unwrap();
        assert_eq!(full.base_uuid(), Some(None));
    }

    #[test]
    fn every_truncation_is_caught() {
        let s = stream();
        for cut in 0..s.len() {
            let (r, out) = run(&s[..cut], 7);
            assert!(r.is_err(), "cut at {cut} passed");
            assert!(out.len() <= cut);
        }
    }

    #[test]
    fn garbage_is_refused_early() {
        let mut c = StreamCheck::new();
        assert!(c
            .feed(b"definitely not a btrfs stream", &mut Vec::new())
            .is_err());
    }

    #[test]
    fn captured_stream_passes() {
        // `btrfs send` of a snapshot holding one small file, captured on Debian 12: its
        // root UTIMES comes last but for END, so the replay adds it once more.
        let s = include_bytes!("../../tests/fixtures/btrfs-send-small.stream");
        let (r, out) = run(s, 100);
        r.unwrap();
        assert!(out.len() > s.len() && out.starts_with(&s[..s.len() - 10]));
        assert_eq!(out[out.len() - 10..], s[s.len() - 10..]);
        assert!(run(&s[..s.len() - 10], 100).0.is_err());
    }
}
