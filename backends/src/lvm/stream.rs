//! The LVM driver's native send stream: a framed list of byte ranges of a thin volume.
//!
//! ```text
//! magic "CAIRNLVM" | version u16 | header length u32 | header (JSON, see Header)
//! records, each starting with a one-byte kind:
//!   'D' offset u64 | length u32 | <length bytes>   data to write at offset
//!   'Z' offset u64 | length u64                     a range that reads as zeros
//! trailer:
//!   'E' data records u64 | data bytes u64 | BLAKE3 of every byte before the hash [32]
//! ```
//! Integers are big-endian; offsets and lengths are in bytes of the volume. A data record
//! carries at most [`MAX_DATA`] bytes. The reader checks the checksum before it reports
//! the end, so a receiver makes nothing visible until the whole stream is proven intact;
//! writes are at absolute offsets, so applying a stream again is harmless.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"CAIRNLVM";
pub const VERSION: u16 = 1;
/// The largest data record.
pub const MAX_DATA: usize = 1 << 20;
/// The largest header a reader accepts.
const MAX_HEADER: u32 = 64 << 10;

const DATA: u8 = b'D';
const ZERO: u8 = b'Z';
const END: u8 = b'E';

/// A snapshot as a stream names it: its name, and an identity that survives renames and
/// is carried over by receive (see `send.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapRef {
    pub name: String,
    pub id: String,
}

/// What a stream says about itself before its ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `lvm`.
    pub driver: String,
    /// The thin volume's size in bytes.
    pub volume_size: u64,
    /// The sending thin pool's block size in bytes (ranges are multiples of it).
    pub block_size: u64,
    /// The snapshot the stream recreates.
    pub snapshot: SnapRef,
    /// Its creation time as the sender's driver recorded it (ns since the epoch).
    pub created_ns: i64,
    /// For an incremental stream: the snapshot the receiver must already have.
    pub base: Option<SnapRef>,
}

/// One range of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Data { offset: u64, data: Vec<u8> },
    Zero { offset: u64, length: u64 },
}

/// Counts and hashes everything written through it.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf)?;
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }
}

/// Writes a stream: [`StreamWriter::new`] writes the header, then ranges, then
/// [`StreamWriter::finish`] the trailer.
pub struct StreamWriter<W: Write> {
    out: Hashing<W>,
    object: String,
    data_records: u64,
    data_bytes: u64,
}

impl<W: Write> StreamWriter<W> {
    /// Writes the magic, version and `header`. `object` names the snapshot in errors.
    pub fn new(out: W, header: &Header, object: &str) -> Result<Self> {
        let mut w = StreamWriter {
            out: Hashing {
                inner: out,
                hasher: blake3::Hasher::new(),
                bytes: 0,
            },
            object: object.to_string(),
            data_records: 0,
            data_bytes: 0,
        };
        let json = serde_json::to_vec(header).map_err(|e| Error::Invalid {
            op: "write send stream header",
            object: object.to_string(),
            reason: e.to_string(),
        })?;
        w.put(MAGIC)?;
        w.put(&VERSION.to_be_bytes())?;
        w.put(&(json.len() as u32).to_be_bytes())?;
        w.put(&json)?;
        Ok(w)
    }

    fn put(&mut self, buf: &[u8]) -> Result<()> {
        self.out
            .put(buf)
            .map_err(|e| Error::io("write send stream", self.object.as_str(), e))
    }

    /// Writes `data` at `offset`, split into records of at most [`MAX_DATA`] bytes.
    pub fn data(&mut self, mut offset: u64, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(MAX_DATA) {
            self.put(&[DATA])?;
            self.put(&offset.to_be_bytes())?;
            self.put(&(chunk.len() as u32).to_be_bytes())?;
            self.put(chunk)?;
            offset += chunk.len() as u64;
            self.data_records += 1;
            self.data_bytes += chunk.len() as u64;
        }
        Ok(())
    }

    /// Records that `length` bytes at `offset` read as zeros (discarded since the base).
    pub fn zero(&mut self, offset: u64, length: u64) -> Result<()> {
        self.put(&[ZERO])?;
        self.put(&offset.to_be_bytes())?;
        self.put(&length.to_be_bytes())
    }

    /// Writes the trailer; returns the stream's length in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.put(&[END])?;
        self.put(&self.data_records.to_be_bytes())?;
        self.put(&self.data_bytes.to_be_bytes())?;
        let hash = self.out.hasher.finalize();
        self.out
            .inner
            .write_all(hash.as_bytes())
            .and_then(|()| self.out.inner.flush())
            .map_err(|e| Error::io("write send stream", self.object.as_str(), e))?;
        Ok(self.out.bytes + 32)
    }
}

/// Reads a stream: [`StreamReader::new`] reads and checks the header, [`StreamReader::next`]
/// returns the ranges and, at the end, checks the trailer.
pub struct StreamReader<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    header: Header,
    object: String,
    data_records: u64,
    data_bytes: u64,
    done: bool,
}

impl<R: Read> StreamReader<R> {
    /// Reads the magic, version and header; `object` names the receiving snapshot in
    /// errors.
    pub fn new(mut input: R, object: &str) -> Result<Self> {
        let mut hasher = blake3::Hasher::new();
        let mut magic = [0u8; 8];
        read_exact(&mut input, &mut hasher, &mut magic, object, "magic")?;
        if &magic != MAGIC {
            return Err(bad(object, "not a cairn LVM send stream (bad magic)"));
        }
        let mut v = [0u8; 2];
        read_exact(&mut input, &mut hasher, &mut v, object, "version")?;
        let version = u16::from_be_bytes(v);
        if version != VERSION {
            return Err(bad(
                object,
                format!("stream version {version}, this cairn reads version {VERSION}"),
            ));
        }
        let mut l = [0u8; 4];
        read_exact(&mut input, &mut hasher, &mut l, object, "header length")?;
        let len = u32::from_be_bytes(l);
        if len > MAX_HEADER {
            return Err(bad(object, format!("header of {len} bytes is too long")));
        }
        let mut json = vec![0u8; len as usize];
        read_exact(&mut input, &mut hasher, &mut json, object, "header")?;
        let header: Header = serde_json::from_slice(&json)
            .map_err(|e| bad(object, format!("unreadable header: {e}")))?;
        if header.driver != super::DRIVER {
            return Err(bad(
                object,
                format!(
                    "the stream was sent by the {} driver, not lvm",
                    header.driver
                ),
            ));
        }
        if header.volume_size == 0 {
            return Err(bad(object, "the header gives a volume size of 0"));
        }
        Ok(StreamReader {
            input,
            hasher,
            header,
            object: object.to_string(),
            data_records: 0,
            data_bytes: 0,
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn read(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        read_exact(&mut self.input, &mut self.hasher, buf, &self.object, what)
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(&mut b, what)?;
        Ok(u64::from_be_bytes(b))
    }

    fn check_range(&self, offset: u64, length: u64) -> Result<()> {
        match offset.checked_add(length) {
            Some(end) if end <= self.header.volume_size => Ok(()),
            _ => Err(bad(
                &self.object,
                format!(
                    "range {offset}+{length} lies outside the volume of {} bytes",
                    self.header.volume_size
                ),
            )),
        }
    }

    /// The next range, or `None` after a trailer whose counts and checksum match.
    pub fn next(&mut self) -> Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let mut kind = [0u8; 1];
        self.read(&mut kind, "record")?;
        match kind[0] {
            DATA => {
                let offset = self.u64("data offset")?;
                let mut l = [0u8; 4];
                self.read(&mut l, "data length")?;
                let length = u32::from_be_bytes(l) as usize;
                if length == 0 || length > MAX_DATA {
                    return Err(bad(&self.object, format!("data record of {length} bytes")));
                }
                self.check_range(offset, length as u64)?;
                let mut data = vec![0u8; length];
                self.read(&mut data, "data")?;
                self.data_records += 1;
                self.data_bytes += length as u64;
                Ok(Some(Record::Data { offset, data }))
            }
            ZERO => {
                let offset = self.u64("zero offset")?;
                let length = self.u64("zero length")?;
                self.check_range(offset, length)?;
                Ok(Some(Record::Zero { offset, length }))
            }
            END => {
                let records = self.u64("trailer")?;
                let bytes = self.u64("trailer")?;
                let expected = self.hasher.finalize();
                let mut hash = [0u8; 32];
                self.input
                    .read_exact(&mut hash)
                    .map_err(|e| short(&self.object, "checksum", e))?;
                if (records, bytes) != (self.data_records, self.data_bytes) {
                    return Err(bad(
                        &self.object,
                        format!(
                            "the trailer counts {records} data records of {bytes} bytes, the stream had {} of {}",
                            self.data_records, self.data_bytes
                        ),
                    ));
                }
                if hash != *expected.as_bytes() {
                    return Err(bad(
                        &self.object,
                        "checksum mismatch: the stream is corrupt",
                    ));
                }
                self.done = true;
                Ok(None)
            }
            other => Err(bad(
                &self.object,
                format!("unknown record kind {other:#04x}"),
            )),
        }
    }
}

/// The receiver's snapshot that an incremental stream's `base` is: the one with the same
/// identity. `local` are the receiving volume's snapshots. A snapshot with the base's
/// name but another identity is a different snapshot, and refused as a base.
pub fn find_base<'a>(base: &SnapRef, local: &'a [SnapRef], object: &str) -> Result<&'a SnapRef> {
    if let Some(s) = local.iter().find(|s| s.id == base.id) {
        return Ok(s);
    }
    let reason = if local.iter().any(|s| s.name == base.name) {
        format!(
            "the stream's base is snapshot {} ({}), but the snapshot of that name here is another one: \
             send a full stream",
            base.name, base.id
        )
    } else {
        format!(
            "the stream is incremental and its base snapshot {} is not here: receive the base first, \
             or send a full stream",
            base.name
        )
    };
    Err(Error::Invalid {
        op: "receive",
        object: object.to_string(),
        reason,
    })
}

fn bad(object: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        op: "read lvm send stream for",
        object: object.to_string(),
        reason: reason.into(),
    }
}

fn short(object: &str, what: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        bad(object, format!("the stream ends early (in its {what})"))
    } else {
        Error::io("read send stream", object, e)
    }
}

fn read_exact<R: Read>(
    input: &mut R,
    hasher: &mut blake3::Hasher,
    buf: &mut [u8],
    object: &str,
    what: &str,
) -> Result<()> {
    input.read_exact(buf).map_err(|e| short(object, what, e))?;
    hasher.update(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base: Option<&str>) -> Header {
        Header {
            driver: "lvm".into(),
            volume_size: 16 << 20,
            block_size: 64 << 10,
            snapshot: SnapRef {
                name: "s2".into(),
                id: "snap-id-2".into(),
            },
            created_ns: 1_700_000_000_123_456_789,
            base: base.map(|id| SnapRef {
                name: "s1".into(),
                id: id.into(),
            }),
        }
    }

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = StreamWriter::new(&mut out, &header(Some("snap-id-1")), "web/s2").unwrap();
        w.data(0, &[7u8; 100]).unwrap();
        w.zero(64 << 10, 64 << 10).unwrap();
        // Larger than one record: split.
        let big: Vec<u8> = (0..MAX_DATA + 10).map(|i| i as u8).collect();
        w.data(1 << 20, &big).unwrap();
        let n = w.finish().unwrap();
        assert_eq!(n, out.len() as u64, "finish returns the bytes written");
        out
    }

    fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Record>)> {
        let mut r = StreamReader::new(bytes, "web/s2")?;
        let mut recs = Vec::new();
        while let Some(rec) = r.next()? {
            recs.push(rec);
        }
        Ok((r.header().clone(), recs))
    }

    #[test]
    fn round_trip() {
        let (h, recs) = read_all(&sample()).unwrap();
        assert_eq!(h, header(Some("snap-id-1")));
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[0],
            Record::Data {
                offset: 0,
                data: vec![7u8; 100]
            }
        );
        assert_eq!(
            recs[1],
            Record::Zero {
                offset: 64 << 10,
                length: 64 << 10
            }
        );
        let Record::Data { offset, data } = &recs[3] else {
            panic!("{:?}", recs[3]);
        };
        assert_eq!((*offset, data.len()), ((1 << 20) + MAX_DATA as u64, 10));
        assert_eq!(data[0], MAX_DATA as u8);
    }

    #[test]
    fn truncated_stream_is_refused() {
        let s = sample();
        // Cut anywhere: in the header, in a record, in the trailer, before the hash's end.
        for cut in [3, 12, 40, s.len() / 2, s.len() - 40, s.len() - 1] {
            let e = read_all(&s[..cut]).unwrap_err().to_string();
            assert!(e.contains("ends early"), "cut at {cut}: {e}");
        }
    }

    #[test]
    fn corrupt_stream_is_refused() {
        let mut s = sample();
        let i = s.len() / 2; // inside the big data record
        s[i] ^= 1;
        let e = read_all(&s).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        let mut s = sample();
        let last = s.len() - 1;
        s[last] ^= 0x80;
        assert!(read_all(&s).unwrap_err().to_string().contains("checksum"));
        let mut s = sample();
        s[0] = b'X';
        assert!(read_all(&s).unwrap_err().to_string().contains("bad magic"));
    }

    #[test]
    fn wrong_base_is_refused() {
        let r = |name: &str, id: &str| SnapRef {
            name: name.into(),
            id: id.into(),
        };
        let base = header(Some("snap-id-1")).base.unwrap();
        // Found by identity, whatever its name is here.
        let local = [r("s0", "snap-id-0"), r("renamed", "snap-id-1")];
        assert_eq!(find_base(&base, &local, "web/s2").unwrap().name, "renamed");
        // Same name, another snapshot.
        let e = find_base(&base, &[r("s1", "other")], "web/s2").unwrap_err();
        assert!(e.to_string().contains("is another one"), "{e}");
        let e = find_base(&base, &[], "web/s2").unwrap_err();
        assert!(e.to_string().contains("is not here"), "{e}");
    }

    #[test]
    fn foreign_or_out_of_range_streams_are_refused() {
        let mut h = header(None);
        h.driver = "zfs".into();
        let mut out = Vec::new();
        StreamWriter::new(&mut out, &h, "x")
            .unwrap()
            .finish()
            .unwrap();
        assert!(read_all(&out).unwrap_err().to_string().contains("zfs"));

        let mut out = Vec::new();
        let mut w = StreamWriter::new(&mut out, &header(None), "x").unwrap();
        w.data((16 << 20) - 10, &[1u8; 20]).unwrap();
        w.finish().unwrap();
        assert!(read_all(&out)
            .unwrap_err()
            .to_string()
            .contains("outside the volume"));
    }
}
