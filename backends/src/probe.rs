//! What is on a block device or image file, according to `blkid -p`: the one probe every
//! driver makes before it writes a new pool onto a device, and the one refusal when the
//! device holds something and the caller did not force it.
//!
//! [`parse_blkid_export`] is pure, tested on captured output in `tests/fixtures/`.

use std::path::Path;

use crate::cmd::BLKID;
use crate::error::{Error, Result};

/// What `blkid -p -o export <device>` found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `TYPE=` (a filesystem, `swap`, `LVM2_member`...), if blkid named one.
    pub fs_type: Option<String>,
    /// `PTTYPE=` (a partition table: `gpt`, `dos`), if any.
    pub partition_table: Option<String>,
}

impl Signature {
    /// A short description for an error message: "a btrfs signature", "a gpt partition table".
    pub fn describe(&self) -> String {
        match (&self.fs_type, &self.partition_table) {
            (Some(t), _) => format!("a {t} signature"),
            (None, Some(pt)) => format!("a {pt} partition table"),
            (None, None) => "an unknown signature".to_string(),
        }
    }
}

/// Parses `blkid -p -o export` output (`KEY=value` lines). Returns `None` when blkid
/// found nothing it knows (empty output: blkid then exits with status 2).
pub fn parse_blkid_export(text: &str) -> Option<Signature> {
    let mut sig = Signature {
        fs_type: None,
        partition_table: None,
    };
    let mut any = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "TYPE" => sig.fs_type = Some(value.to_string()),
            "PTTYPE" => sig.partition_table = Some(value.to_string()),
            "DEVNAME" => continue,
            _ => {}
        }
        any = true;
    }
    any.then_some(sig)
}

/// What is on a device or image file, according to `blkid -p` (exit status 2: nothing).
pub fn probe(path: &Path) -> Result<Option<Signature>> {
    match BLKID.run(&[
        "-p".as_ref(),
        "-o".as_ref(),
        "export".as_ref(),
        path.as_os_str(),
    ]) {
        Ok(out) => Ok(parse_blkid_export(&out)),
        Err(Error::Command(f)) if f.status == "exit status 2" => Ok(None),
        Err(e) => Err(e),
    }
}

/// The error for a device that holds `sig` when creating a `driver` pool on it unforced.
pub fn refusal(path: &Path, sig: &Signature, driver: &str) -> Error {
    Error::Invalid {
        op: "create pool",
        object: path.display().to_string(),
        reason: format!(
            "it holds {}; pass --force to let the {driver} driver overwrite it",
            sig.describe()
        ),
    }
}

/// Fails with [`refusal`] when `path` holds anything blkid knows, unless `force`; does
/// not probe at all when forced. The check before a driver writes a new pool on a device.
pub fn refuse_unless_forced(path: &Path, force: bool, driver: &str) -> Result<()> {
    if force {
        return Ok(());
    }
    match probe(path)? {
        Some(sig) => Err(refusal(path, &sig, driver)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_blkid_output() {
        let btrfs =
            parse_blkid_export(include_str!("../tests/fixtures/blkid-export-btrfs.txt")).unwrap();
        assert_eq!(btrfs.fs_type.as_deref(), Some("btrfs"));
        assert_eq!(btrfs.describe(), "a btrfs signature");
        let ext4 =
            parse_blkid_export(include_str!("../tests/fixtures/blkid-export-ext4.txt")).unwrap();
        assert_eq!(ext4.fs_type.as_deref(), Some("ext4"));
        assert_eq!(parse_blkid_export(""), None);
        assert_eq!(parse_blkid_export("DEVNAME=/dev/loop1\n"), None);
        let pt = parse_blkid_export("DEVNAME=/dev/sdb\nPTUUID=x\nPTTYPE=gpt\n").unwrap();
        assert_eq!(pt.describe(), "a gpt partition table");
    }

    #[test]
    fn refusal_says_what_is_there_and_what_to_do() {
        let sig = parse_blkid_export("TYPE=ext4\n").unwrap();
        let e = refusal(Path::new("/dev/vdb"), &sig, "lvm");
        assert_eq!(
            e.to_string(),
            "create pool /dev/vdb: it holds a ext4 signature; pass --force to let the lvm driver overwrite it"
        );
        // Forced: nothing is probed, so even a path blkid cannot read passes.
        refuse_unless_forced(Path::new("/nonexistent/cairn-device"), true, "lvm").unwrap();
    }
}
