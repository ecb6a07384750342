//! Recognising an image file by its first bytes (never by its name), and the matching
//! streaming decoder.

use std::io::{self, Read};

/// How an image tarball is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// How many leading bytes [`Compression::detect`] needs to see.
pub const MAGIC_LEN: usize = 512;

/// The largest zstd window accepted (2^27 = 128 MiB, zstd's `--long=27`).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

impl Compression {
    /// Recognises gzip, xz and zstd by magic number, and an uncompressed tarball by the
    /// `ustar` magic of its first header. `None` means "not something we can import".
    pub fn detect(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.len() >= 262 && &head[257..262] == b"ustar" {
            Some(Compression::None)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// The GNU tar option that reads this compression.
    pub fn tar_option(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("--gzip"),
            Compression::Xz => Some("--xz"),
            Compression::Zstd => Some("--zstd"),
        }
    }

    /// A reader of the uncompressed tar stream.
    pub fn decoder<'a, R: Read + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(input)),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(input)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(d)
            }
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn small_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "a", &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn detects_by_magic_and_round_trips() {
        let tar = small_tar();
        assert_eq!(Compression::detect(&tar), Some(Compression::None));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&tar).unwrap();
        let xz = xz.finish().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();

        for (data, want) in [
            (gz, Compression::Gzip),
            (xz, Compression::Xz),
            (zst, Compression::Zstd),
        ] {
            assert_eq!(Compression::detect(&data), Some(want));
            let mut out = Vec::new();
            want.decoder(&data[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, tar, "{want} did not round-trip");
        }
    }

    #[test]
    fn refuses_what_is_not_a_tarball() {
        assert_eq!(Compression::detect(b""), None);
        assert_eq!(Compression::detect(b"hello world, not an archive"), None);
        assert_eq!(Compression::detect(&[0u8; 512]), None);
        assert_eq!(Compression::detect(b"BZh91AY&SY"), None);
    }
}
