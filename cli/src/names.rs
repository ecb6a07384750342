//! Names the CLI accepts, parsed once. Containers, image aliases and snapshot labels
//! follow the storage layer's name rule (`cairn_backends::names`), so any name valid
//! here is valid on every driver. A container's volume is `ct-<name>`, an image's base
//! volume `img-<fingerprint>`: the prefixes keep the two apart in a pool.

use std::fmt;
use std::str::FromStr;

use cairn_backends::names::{check_name, MAX_NAME_BYTES};
use cairn_backends::{Kind, VolumeName};

/// A bad name: `container "a/b": invalid name: must not contain "/"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?}: invalid name: {rule}")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
    pub rule: String,
}

/// Checks `name` against the storage layer's rule (and a tighter length limit).
pub fn check(what: &'static str, name: &str, max_len: usize) -> Result<(), NameError> {
    let err = |rule: String| NameError {
        what,
        name: name.to_string(),
        rule,
    };
    match check_name(Kind::Volume, name) {
        Err(cairn_backends::Error::InvalidName { rule, .. }) => Err(err(rule.to_string())),
        Err(other) => Err(err(other.to_string())),
        Ok(()) if name.len() > max_len => Err(err(format!("must be at most {max_len} bytes long"))),
        Ok(()) => Ok(()),
    }
}

/// Parses a storage-layer name type, reporting errors as `<what> "<name>": invalid name`.
pub fn parse<T: FromStr<Err = cairn_backends::Error>>(
    what: &'static str,
    s: &str,
) -> Result<T, NameError> {
    check(what, s, MAX_NAME_BYTES)?;
    s.parse().map_err(|e: cairn_backends::Error| NameError {
        what,
        name: s.to_string(),
        rule: e.to_string(),
    })
}

const CONTAINER_PREFIX: &str = "ct-";

/// The name of a container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The volume that holds the container's files.
    pub fn volume(&self) -> VolumeName {
        format!("{CONTAINER_PREFIX}{}", self.0)
            .parse()
            .expect("a container name makes a valid volume name")
    }
}

impl FromStr for ContainerName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        check("container", s, MAX_NAME_BYTES - CONTAINER_PREFIX.len())?;
        Ok(ContainerName(s.to_string()))
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image alias (`debian/bookworm` is allowed: aliases are never storage names, but
/// otherwise follow the same rule, `/` excepted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageAlias(String);

impl ImageAlias {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ImageAlias {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        for part in s.split('/') {
            check("image alias", part, MAX_NAME_BYTES).map_err(|e| NameError {
                name: s.to_string(),
                ..e
            })?;
        }
        Ok(ImageAlias(s.to_string()))
    }
}

impl fmt::Display for ImageAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The base volume of an image in a pool.
pub fn image_volume(fingerprint: &str) -> VolumeName {
    format!("img-{fingerprint}")
        .parse()
        .expect("a fingerprint makes a valid volume name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_the_storage_rule() {
        assert_eq!(
            "web1".parse::<ContainerName>().unwrap().volume().as_str(),
            "ct-web1"
        );
        let e = "a/b".parse::<ContainerName>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "container \"a/b\": invalid name: must not contain \"/\""
        );
        let long = "x".repeat(198);
        assert!(long.parse::<ContainerName>().is_err());
        assert!("x".repeat(197).parse::<ContainerName>().is_ok());
    }

    #[test]
    fn aliases_may_have_slashes_but_no_empty_parts() {
        assert!("debian/bookworm".parse::<ImageAlias>().is_ok());
        assert!("debian//x".parse::<ImageAlias>().is_err());
        assert!("-x".parse::<ImageAlias>().is_err());
        let e = "a b".parse::<ImageAlias>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "image alias \"a b\": invalid name: must not contain whitespace"
        );
    }
}
