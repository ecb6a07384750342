//! A path inside a volume as the user names it: absolute, as inside the container.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::Error;

/// `/etc/nginx`, parsed: absolute, `.` and repeated slashes dropped, `..` refused (it
/// could leave the root). Holds the path relative to the volume's root; the root itself
/// is the empty path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TreePath(PathBuf);

impl TreePath {
    /// Relative to the volume's root.
    pub fn rel(&self) -> &Path {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.as_os_str().is_empty()
    }
}

impl std::fmt::Display for TreePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::display_path(&self.0))
    }
}

impl FromStr for TreePath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Invalid {
            op: "parse",
            object: format!("path {s}"),
            reason: reason.to_string(),
        };
        if !s.starts_with('/') {
            return Err(bad(
                "not absolute: name it as inside the container, like /etc/nginx",
            ));
        }
        if s.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let mut rel = PathBuf::new();
        for part in s.as_bytes().split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    return Err(bad(
                        "contains `..`: paths may not leave the container's root",
                    ))
                }
                p => rel.push(OsStr::from_bytes(p)),
            }
        }
        Ok(TreePath(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        let p: TreePath = "/etc//nginx/./conf.d/".parse().unwrap();
        assert_eq!(p.rel(), Path::new("etc/nginx/conf.d"));
        assert_eq!(p.to_string(), "/etc/nginx/conf.d");
        assert!("/".parse::<TreePath>().unwrap().is_root());
        let e = "etc/nginx".parse::<TreePath>().unwrap_err().to_string();
        assert!(
            e.contains("path etc/nginx") && e.contains("not absolute"),
            "{e}"
        );
        let e = "/etc/../../x".parse::<TreePath>().unwrap_err().to_string();
        assert!(e.contains("`..`"), "{e}");
    }
}
