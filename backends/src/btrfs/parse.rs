//! Pure parsers of the tools' output, tested on captured output in `tests/fixtures/`.

/// What `blkid -p -o export <device>` found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `TYPE=` (a filesystem, `swap`, `LVM2_member`...), if blkid named one.
    pub fs_type: Option<String>,
    /// `PTTYPE=` (a partition table: `gpt`, `dos`), if any.
    pub partition_table: Option<String>,
}

impl Signature {
    /// A short description for an error message: "a btrfs filesystem", "a gpt partition table".
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_blkid_output() {
        let btrfs = parse_blkid_export(include_str!("../../tests/fixtures/blkid-export-btrfs.txt"))
            .unwrap();
        assert_eq!(btrfs.fs_type.as_deref(), Some("btrfs"));
        assert_eq!(btrfs.describe(), "a btrfs signature");
        let ext4 =
            parse_blkid_export(include_str!("../../tests/fixtures/blkid-export-ext4.txt")).unwrap();
        assert_eq!(ext4.fs_type.as_deref(), Some("ext4"));
        assert_eq!(parse_blkid_export(""), None);
        assert_eq!(parse_blkid_export("DEVNAME=/dev/loop1\n"), None);
        let pt = parse_blkid_export("DEVNAME=/dev/sdb\nPTUUID=x\nPTTYPE=gpt\n").unwrap();
        assert_eq!(pt.describe(), "a gpt partition table");
    }
}
