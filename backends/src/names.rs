//! Names of pools, volumes and snapshots, parsed once into types.
//!
//! The rules are the same for all three and for every driver, so a name valid on one
//! backend is valid on all of them (ZFS and LVM are the strictest; we take their
//! intersection): 1 to 200 bytes of UTF-8; not `.` or `..`; no `/`, `@`, NUL or control
//! characters; no leading `-` (it would read as an option to the tools we call). Nothing
//! downstream re-checks a name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Kind};

/// The longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Eight hex digits of a BLAKE3 hash of a pool's state directory. Drivers that name
/// storage objects after the pool (a VG, a zpool, LV tags) add it, so two pools of the
/// same name with different state directories never take each other's objects.
pub fn state_dir_hash(state_dir: &std::path::Path) -> String {
    blake3::hash(state_dir.as_os_str().as_encoded_bytes()).to_hex()[..8].to_string()
}

/// Checks `name` against the rules; the error names the rule broken.
pub fn check_name(kind: Kind, name: &str) -> Result<(), Error> {
    let rule = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("must be at most 200 bytes long")
    } else if name == "." || name == ".." {
        Some("must not be \".\" or \"..\"")
    } else if name.contains('/') {
        Some("must not contain \"/\"")
    } else if name.contains('@') {
        Some("must not contain \"@\"")
    } else if name.contains('\0') {
        Some("must not contain a NUL byte")
    } else if name.chars().any(|c| c.is_control()) {
        Some("must not contain control characters")
    } else if name.starts_with('-') {
        Some("must not start with \"-\"")
    } else if name.chars().any(|c| c.is_whitespace()) {
        Some("must not contain whitespace")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(Error::InvalidName {
            kind,
            name: name.to_string(),
            rule,
        }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                check_name($kind, s)?;
                Ok($ty(s.to_string()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                check_name($kind, &s)?;
                Ok($ty(s))
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }

        impl AsRef<std::path::Path> for $ty {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// The name of a pool.
    PoolName,
    Kind::Pool
);
name_type!(
    /// The name of a volume in a pool.
    VolumeName,
    Kind::Volume
);
name_type!(
    /// The name of a snapshot of a volume.
    SnapshotName,
    Kind::Snapshot
);

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> String {
        match s.parse::<VolumeName>() {
            Err(Error::InvalidName { rule, .. }) => rule.to_string(),
            other => panic!("{s:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn bad_names_name_the_rule() {
        assert_eq!(rule(""), "must not be empty");
        assert_eq!(rule("."), "must not be \".\" or \"..\"");
        assert_eq!(rule(".."), "must not be \".\" or \"..\"");
        assert_eq!(rule("a/b"), "must not contain \"/\"");
        assert_eq!(rule("/"), "must not contain \"/\"");
        assert_eq!(rule("a@b"), "must not contain \"@\"");
        assert_eq!(rule("a\0b"), "must not contain a NUL byte");
        assert_eq!(rule("a\nb"), "must not contain control characters");
        assert_eq!(rule("a\x7fb"), "must not contain control characters");
        assert_eq!(rule("-rf"), "must not start with \"-\"");
        assert_eq!(rule("a b"), "must not contain whitespace");
        assert_eq!(rule(&"x".repeat(201)), "must be at most 200 bytes long");
    }

    #[test]
    fn good_names_round_trip() {
        for s in [
            "web1",
            "a",
            "snap-2026-11-23",
            "x.y_z",
            "ünïcode",
            &"x".repeat(200),
        ] {
            let n: SnapshotName = s.parse().unwrap();
            assert_eq!(n.as_str(), s);
            let json = serde_json::to_string(&n).unwrap();
            assert_eq!(serde_json::from_str::<SnapshotName>(&json).unwrap(), n);
        }
        assert!(serde_json::from_str::<PoolName>("\"a/b\"").is_err());
    }

    #[test]
    fn state_dir_hash_is_stable_and_per_directory() {
        let a = state_dir_hash(std::path::Path::new("/var/lib/a"));
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_eq!(a, state_dir_hash(std::path::Path::new("/var/lib/a")));
        assert_ne!(a, state_dir_hash(std::path::Path::new("/var/lib/b")));
        // Names already on storage (VGs, zpools) were made with this value: it must not change.
        assert_eq!(a, &blake3::hash(b"/var/lib/a").to_hex()[..8]);
    }

    #[test]
    fn message_names_kind_name_and_rule() {
        let e = "-x".parse::<PoolName>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid pool name \"-x\": must not start with \"-\""
        );
    }
}
