//! Plain values the trait passes around: sizes, usage, capabilities, listings, and the
//! idempotent results of create and delete.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::names::{SnapshotName, VolumeName};

/// A size in bytes. Parses `512`, `64K`, `200M`, `2G`, `1T`, `1.5G` (binary units; a
/// trailing `B` or `iB` is accepted: `2GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bytes(pub u64);

impl FromStr for Bytes {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Invalid {
            op: "parse size",
            object: format!("{s:?}"),
            reason: reason.to_string(),
        };
        let t = s.trim();
        let t = t
            .strip_suffix("iB")
            .or_else(|| t.strip_suffix('B'))
            .unwrap_or(t);
        let (num, mult) = match t.chars().last() {
            Some(c) if c.is_ascii_alphabetic() => {
                let mult: u64 = match c.to_ascii_uppercase() {
                    'K' => 1 << 10,
                    'M' => 1 << 20,
                    'G' => 1 << 30,
                    'T' => 1 << 40,
                    _ => return Err(bad("unknown unit: use K, M, G or T")),
                };
                (&t[..t.len() - 1], mult)
            }
            _ => (t, 1),
        };
        let value: f64 = num
            .parse()
            .map_err(|_| bad("expected a number with an optional unit, like 200M or 2G"))?;
        if !(value.is_finite() && value > 0.0) {
            return Err(bad("must be greater than zero"));
        }
        Ok(Bytes((value * mult as f64) as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = self.0 as f64;
        let mut u = 0;
        while v >= 1024.0 && u < UNITS.len() - 1 {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[u])
        }
    }
}

/// Space figures, in bytes. For a pool: the filesystem or thin pool behind it. For a
/// volume: `used` is what its files occupy (allocated blocks; shared extents counted in
/// full), `total`/`free` are those of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub total: u64,
    pub used: u64,
    pub free: u64,
}

/// The result of an idempotent create: it did it, or what was asked for already existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateAction<T> {
    Created(T),
    Identity,
}

impl<T> CreateAction<T> {
    pub fn is_created(&self) -> bool {
        matches!(self, CreateAction::Created(_))
    }
}

/// The result of an idempotent delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteAction {
    Deleted,
    Identity,
}

/// What a driver can do, declared once so callers choose the best path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Clones share data with their origin until written (no full copy).
    pub cow_clone: bool,
    /// Snapshot time does not grow with the size of the volume.
    pub constant_time_snapshot: bool,
    /// `send`/`receive` exist (a driver-native stream).
    pub native_send: bool,
    /// Incremental native send against a base snapshot.
    pub incremental_send: bool,
    /// `restore_snapshot` accepts any snapshot, not only the newest, keeping newer ones.
    pub restore_any_snapshot: bool,
    /// Volumes are block devices with a filesystem on them (LVM thin), not directories.
    pub block_based: bool,
    /// Snapshots are immutable at the storage level (even root cannot write them).
    pub immutable_snapshots: bool,
}

/// A driver's name and capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    pub name: &'static str,
    pub capabilities: Capabilities,
}

/// One volume of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    pub name: VolumeName,
    pub created_at: Timestamp,
}

/// One snapshot of a volume. `created_at` is kept by the storage itself (nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub volume: VolumeName,
    pub name: SnapshotName,
    pub created_at: Timestamp,
}

/// What a clone is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneSource<'a> {
    /// The live state of a volume (drivers snapshot it first where they must).
    Volume(&'a VolumeName),
    /// A snapshot of a volume.
    Snapshot(&'a VolumeName, &'a SnapshotName),
}

/// What a native send wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SendStats {
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!("512".parse::<Bytes>().unwrap(), Bytes(512));
        assert_eq!("64K".parse::<Bytes>().unwrap(), Bytes(64 << 10));
        assert_eq!("200M".parse::<Bytes>().unwrap(), Bytes(200 << 20));
        assert_eq!("2GiB".parse::<Bytes>().unwrap(), Bytes(2 << 30));
        assert_eq!("1.5G".parse::<Bytes>().unwrap(), Bytes(3 << 29));
        for bad in ["", "G", "2X", "-1G", "0", "nan"] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Bytes(3 << 29).to_string(), "1.5 GiB");
    }
}
