//! Per-object locks: `flock(2)` on `<state>/locks/<kind>-<name>.lock`. The kernel drops
//! a lock when its process dies, so a `cairn` killed with -9 never leaves one behind.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::error::{Error, Result};

/// What kind of object a lock protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockKind {
    /// The database itself, held only while a process opens and migrates it.
    Database,
    Pool,
    Image,
    Container,
}

impl LockKind {
    fn as_str(self) -> &'static str {
        match self {
            LockKind::Database => "database",
            LockKind::Pool => "pool",
            LockKind::Image => "image",
            LockKind::Container => "container",
        }
    }
}

/// Shared (readers, users of a pool) or exclusive (writers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct ObjectLock {
    _flock: Flock<File>,
}

impl ObjectLock {
    pub(super) fn acquire(dir: &Path, kind: LockKind, name: &str, mode: LockMode) -> Result<Self> {
        let path = dir.join(format!("{}-{name}.lock", kind.as_str()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Lock {
                path: path.clone(),
                source,
            })?;
        let arg = match mode {
            LockMode::Shared => FlockArg::LockShared,
            LockMode::Exclusive => FlockArg::LockExclusive,
        };
        let flock = Flock::lock(file, arg).map_err(|(_, errno)| Error::Lock {
            path,
            source: errno.into(),
        })?;
        Ok(ObjectLock { _flock: flock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let a = ObjectLock::acquire(dir.path(), LockKind::Container, "web", LockMode::Exclusive)
            .unwrap();
        let path = dir.path().join("container-web.lock");
        let other = File::open(&path).unwrap();
        let other = match Flock::lock(other, FlockArg::LockExclusiveNonblock) {
            Err((f, _)) => f,
            Ok(_) => panic!("second exclusive lock was granted"),
        };
        drop(a);
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
