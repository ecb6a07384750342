//! The btrfs send stream format, in one place: its framing, the commands and attributes
//! cairn reads, and two readers of it.
//!
//! ## The format
//! A 17-byte header (`btrfs-stream\0`, u32 version), then commands of `u32 len, u16 cmd,
//! u32 crc` followed by `len` bytes of TLV attributes (`u16 type, u16 len, value`),
//! little-endian, the last one `END`. From version 2 on, a `DATA` attribute has no length:
//! it runs to the end of its command. The command and attribute numbers below are the
//! same in versions 1 to 3.
//!
//! ## Its readers
//! - [`StreamCheck`], for a stream as it passes through `receive`, chunk by chunk:
//!   - `btrfs receive` treats end-of-input at a command boundary as the end of the
//!     stream and finishes the subvolume (read-only, received UUID set), so a stream cut
//!     at such a boundary would be stored as if whole. We follow the framing ourselves
//!     and only let `btrfs receive` see end-of-input when the last command was `END`;
//!     otherwise we kill it first.
//!   - The kernel sends the subvolume root's `UTIMES` before it has finished renaming
//!     orphans (`o<ino>-<gen>-0`) out of the root, so the receiver's root directory ends
//!     up with the receive time as mtime (seen on 6.18 with a Debian rootfs). We replay
//!     the last root `UTIMES` command, byte for byte (its CRC stays valid), right before
//!     `END`.
//! - [`commands`] and [`attrs`], for a whole stream in memory (`diff` reads a
//!   `--no-data` stream with them).

pub(super) const MAGIC: &[u8; 13] = b"btrfs-stream\0";
pub(super) const HEADER_LEN: usize = 17;
pub(super) const CMD_HEADER_LEN: usize = 10;

/// `BTRFS_SEND_C_*`.
pub(super) const CMD_SUBVOL: u16 = 1;
/// The first command of an incremental stream.
pub(super) const CMD_SNAPSHOT: u16 = 2;
pub(super) const CMD_RENAME: u16 = 9;
pub(super) const CMD_LINK: u16 = 10;
pub(super) const CMD_SET_XATTR: u16 = 13;
pub(super) const CMD_REMOVE_XATTR: u16 = 14;
pub(super) const CMD_CHMOD: u16 = 18;
pub(super) const CMD_CHOWN: u16 = 19;
pub(super) const CMD_UTIMES: u16 = 20;
pub(super) const CMD_END: u16 = 21;
pub(super) const CMD_FILEATTR: u16 = 24;

/// `BTRFS_SEND_A_*`.
pub(super) const ATTR_PATH: u16 = 15;
pub(super) const ATTR_PATH_TO: u16 = 16;
pub(super) const ATTR_PATH_LINK: u16 = 17;
pub(super) const ATTR_DATA: u16 = 19;
pub(super) const ATTR_CLONE_UUID: u16 = 20;

/// The stream version a 17-byte header gives, or why it is not a send stream header.
fn header_version(h: &[u8]) -> Result<u32, String> {
    if h.len() < HEADER_LEN || &h[..13] != MAGIC {
        return Err("this is not a btrfs send stream (bad magic)".into());
    }
    Ok(u32::from_le_bytes([h[13], h[14], h[15], h[16]]))
}

#[derive(Debug, Default)]
pub struct StreamCheck {
    /// Bytes of the stream header or of a command header collected so far (held back).
    pending: Vec<u8>,
    header_done: bool,
    /// The stream version, once the header has passed.
    version: u32,
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
            } else {
                self.version = header_version(&self.pending)?;
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
            } else if attr(self.version, &cmd[CMD_HEADER_LEN..], ATTR_PATH) == Some(&[][..]) {
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
        let uuid = attr(self.version, &first[CMD_HEADER_LEN..], ATTR_CLONE_UUID)?;
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

/// Attribute `want` of a command's payload; `None` when absent or cut.
fn attr(version: u32, payload: &[u8], want: u16) -> Option<&[u8]> {
    attrs(version, payload)
        .map_while(Result::ok)
        .find(|(kind, _)| *kind == want)
        .map(|(_, value)| value)
}

/// The commands of a whole stream in memory, each as `(cmd, attribute payload)`, up to
/// its `END` (not yielded; bytes after it are ignored), and the stream version. Errs,
/// first or as the last item, when the bytes are not a whole stream.
pub(super) fn commands(stream: &[u8]) -> Result<(u32, Commands<'_>), String> {
    let version = header_version(stream)?;
    if !(1..=3).contains(&version) {
        return Err(format!("send stream version {version} is not known"));
    }
    let rest = &stream[HEADER_LEN..];
    Ok((version, Commands { rest, done: false }))
}

/// See [`commands`].
#[derive(Debug)]
pub(super) struct Commands<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Commands<'a> {
    type Item = Result<(u16, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.rest;
        let fail = |this: &mut Self, why: &str| {
            this.done = true;
            Some(Err(why.to_string()))
        };
        if r.is_empty() {
            return fail(self, "stream ends without its END command");
        }
        if r.len() < CMD_HEADER_LEN {
            return fail(self, "stream cut inside a command header");
        }
        let len = u32::from_le_bytes([r[0], r[1], r[2], r[3]]) as usize;
        let cmd = u16::from_le_bytes([r[4], r[5]]);
        let Some(body) = CMD_HEADER_LEN
            .checked_add(len)
            .and_then(|end| r.get(CMD_HEADER_LEN..end))
        else {
            return fail(self, "stream cut inside a command");
        };
        self.rest = &r[CMD_HEADER_LEN + len..];
        if cmd == CMD_END {
            self.done = true;
            return None;
        }
        Some(Ok((cmd, body)))
    }
}

/// The attributes of a command's payload, each as `(type, value)`, in a stream of
/// `version`; an error item (the last) when the payload is cut.
pub(super) fn attrs(version: u32, payload: &[u8]) -> Attrs<'_> {
    Attrs {
        rest: payload,
        version,
    }
}

/// See [`attrs`].
#[derive(Debug)]
pub(super) struct Attrs<'a> {
    rest: &'a [u8],
    version: u32,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest;
        if r.is_empty() {
            return None;
        }
        if r.len() < 2 {
            self.rest = &[];
            return Some(Err("attribute header cut".into()));
        }
        let kind = u16::from_le_bytes([r[0], r[1]]);
        if kind == ATTR_DATA && self.version >= 2 {
            // No length: the data runs to the end of the command.
            self.rest = &[];
            return Some(Ok((kind, &r[2..])));
        }
        if r.len() < 4 {
            self.rest = &[];
            return Some(Err(format!("attribute {kind}: header cut")));
        }
        let len = u16::from_le_bytes([r[2], r[3]]) as usize;
        let Some(value) = r.get(4..4 + len) else {
            self.rest = &[];
            return Some(Err(format!("attribute {kind} cut")));
        };
        self.rest = &r[4 + len..];
        Some(Ok((kind, value)))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One command, its CRC left 0.
    pub(in crate::btrfs) fn cmd(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(payload);
        v
    }

    /// One attribute, with its length.
    pub(in crate::btrfs) fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
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

    #[test]
    fn commands_and_attributes_are_read_and_cuts_are_errors() {
        let s = stream();
        let (version, cmds) = commands(&s).unwrap();
        assert_eq!(version, 1);
        let cmds: Vec<(u16, &[u8])> = cmds.map(Result::unwrap).collect();
        let kinds: Vec<u16> = cmds.iter().map(|c| c.0).collect();
        assert_eq!(kinds, [1, CMD_UTIMES, 15, CMD_UTIMES, CMD_UTIMES, 9]);
        let a: Vec<(u16, &[u8])> = attrs(1, cmds[4].1).map(Result::unwrap).collect();
        assert_eq!(a, [(ATTR_PATH, &b"dir"[..]), (10, &[3u8; 12][..])]);
        // Every cut is an error, never a shorter whole stream.
        for cut in 0..s.len() {
            let whole = commands(&s[..cut]).and_then(|(_, c)| c.collect::<Result<Vec<_>, _>>());
            assert!(whole.is_err(), "cut at {cut} passed");
        }
        // A cut attribute is an error item; `attr` takes it for absent.
        let cut = &attr(ATTR_PATH, b"abcdef")[..7];
        assert!(attrs(1, cut).next().unwrap().is_err());
        assert_eq!(super::attr(1, cut, ATTR_PATH), None);
        let mut v9 = MAGIC.to_vec();
        v9.extend_from_slice(&9u32.to_le_bytes());
        assert!(commands(&v9).unwrap_err().contains("version 9"));
    }

    #[test]
    fn data_runs_to_the_end_of_its_command_from_version_2() {
        let mut p = attr(ATTR_PATH, b"f");
        p.extend_from_slice(&ATTR_DATA.to_le_bytes());
        p.extend_from_slice(b"\x05\x00 not a length, all data");
        let a: Vec<(u16, &[u8])> = attrs(2, &p).map(Result::unwrap).collect();
        assert_eq!(
            a,
            [
                (ATTR_PATH, &b"f"[..]),
                (ATTR_DATA, &b"\x05\x00 not a length, all data"[..])
            ]
        );
        // Version 1: a DATA attribute has a length like any other.
        let mut p1 = attr(ATTR_DATA, b"abc");
        p1.extend(attr(ATTR_PATH, b"g"));
        let a1: Vec<u16> = attrs(1, &p1).map(|a| a.unwrap().0).collect();
        assert_eq!(a1, [ATTR_DATA, ATTR_PATH]);
    }
}
