//! The image fingerprint: as LXD computes it for a unified tarball, the SHA-256 of the
//! image file's bytes, in lowercase hex. Computed while the file is copied into the
//! state directory, so the bytes hashed are the bytes kept.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::progress::Progress;

/// Copies `input` to `output`, returning the SHA-256 (hex) and the length.
pub fn copy_hashing(
    input: &mut dyn Read,
    output: &mut dyn Write,
    progress: &dyn Progress,
) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n])?;
        total += n as u64;
        progress.advance(n as u64);
    }
    output.flush()?;
    Ok((hex(&hasher.finalize()), total))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` is a full fingerprint (64 lowercase hex digits).
pub fn is_fingerprint(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Quiet;

    #[test]
    fn fingerprint_is_sha256_of_the_bytes() {
        let mut out = Vec::new();
        let (fp, n) = copy_hashing(&mut &b"abc"[..], &mut out, &Quiet).unwrap();
        assert_eq!(
            fp,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(n, 3);
        assert_eq!(out, b"abc");
        assert!(is_fingerprint(&fp));
        assert!(!is_fingerprint("BA78"));
    }
}
