//! The storage layer's one error type.
//!
//! Every variant names the operation and the object, so a message read on its own says
//! what failed and on what. Drivers turn tool stderr and errno into the typed variants at
//! the call site (`NotFound`, `AlreadyExists`, `NoSpace`...); `Command` is what is left.

use std::path::PathBuf;

use crate::cmd::CommandFailure;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pool,
    Volume,
    Snapshot,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Pool => "pool",
            Kind::Volume => "volume",
            Kind::Snapshot => "snapshot",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {kind} name {name:?}: {rule}")]
    InvalidName {
        kind: Kind,
        name: String,
        rule: &'static str,
    },

    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: Kind, name: String },

    #[error("{kind} {name} does not exist")]
    NotFound { kind: Kind, name: String },

    #[error("{op} is not supported by the {driver} driver")]
    NotSupported {
        driver: &'static str,
        op: &'static str,
    },

    #[error("{op} {object}: {source}")]
    Io {
        op: &'static str,
        object: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{op} {object}: no space left on the pool's filesystem; nothing was changed, free space or grow the pool and retry")]
    NoSpace { op: &'static str, object: String },

    #[error(transparent)]
    Command(#[from] CommandFailure),

    #[error("{tool} is not installed: apt-get install {package}")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },

    #[error("{op} {object}: {reason}")]
    Invalid {
        op: &'static str,
        object: String,
        reason: String,
    },

    #[error("{op} {object} is in use: {reason}")]
    Busy {
        op: &'static str,
        object: String,
        reason: String,
    },

    #[error("{error}; rolling back also failed: {rollback}")]
    RollbackFailed {
        error: Box<Error>,
        rollback: Box<Error>,
    },
}

impl Error {
    /// An I/O error, typed as `NoSpace` when errno is ENOSPC or EDQUOT.
    pub fn io(op: &'static str, object: impl Into<PathBuf>, source: std::io::Error) -> Error {
        let object = object.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace {
                op,
                object: object.display().to_string(),
            },
            _ => Error::Io { op, object, source },
        }
    }

    pub fn not_found(kind: Kind, name: impl std::fmt::Display) -> Error {
        Error::NotFound {
            kind,
            name: name.to_string(),
        }
    }

    pub fn exists(kind: Kind, name: impl std::fmt::Display) -> Error {
        Error::AlreadyExists {
            kind,
            name: name.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NoSpace { .. } => true,
            Error::RollbackFailed { error, .. } => error.is_no_space(),
            _ => false,
        }
    }
}

/// Adds the operation and object to an `io::Result`.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, object: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, object: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, object, e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, op: &'static str, object: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, object, std::io::Error::from(e)))
    }
}
