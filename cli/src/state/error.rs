//! The state store's error type: every message starts with the object it is about.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state {}: cannot {op}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state database: cannot {op}: {source}")]
    Db {
        op: String,
        #[source]
        source: rusqlite::Error,
    },

    #[error("state database: {what}: {reason}")]
    Corrupt { what: String, reason: String },

    #[error("lock {}: {source}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn db(op: impl Into<String>, source: rusqlite::Error) -> Error {
        Error::Db {
            op: op.into(),
            source,
        }
    }

    pub fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
