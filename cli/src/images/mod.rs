//! Images: importing LXD unified tarballs and plain root filesystem tarballs, keeping
//! them in the state directory, unpacking each once per pool into a read-only base
//! volume (`img-<fingerprint>` with snapshot `base`) that containers are cloned from,
//! and building Debian images with debootstrap.
//!
//! Import order, so that a failure at any step stores nothing: detect the format by
//! magic bytes → copy the file into `<state>/images/.tmp/` while hashing it (the
//! fingerprint) → [`scan`] that copy (every member checked) → rename it to
//! `<state>/images/<fingerprint>` → record it → unpack it into the pool.

pub mod build;
mod catalog;
pub mod format;
pub mod hashing;
mod import;
pub mod metadata;
mod rules;
pub mod scan;
pub mod unpack;

use std::path::PathBuf;

pub use catalog::{add_alias, delete, remove_alias, resolve};
pub use import::{ensure_in_pool, import, prepare, BASE_SNAPSHOT};

use crate::names::NameError;
use crate::pools;
use crate::state;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("image {0}: does not exist")]
    NotFound(String),
    #[error("image {reference}: ambiguous, matches {matches}")]
    Ambiguous { reference: String, matches: String },
    #[error("image {}: not a tarball (expected tar, or tar compressed with gzip, xz or zstd)", .0.display())]
    NotTarball(PathBuf),
    #[error("image {}: {refusal}", .file.display())]
    Refused {
        file: PathBuf,
        refusal: scan::Refusal,
    },
    #[error("image {}: cannot {op}: {source}", .file.display())]
    Io {
        file: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("image {fingerprint}: in use by container(s) {users}")]
    InUse { fingerprint: String, users: String },
    #[error("image alias {alias}: already points to image {target}")]
    AliasTaken { alias: String, target: String },
    #[error("image alias {0}: does not exist")]
    AliasNotFound(String),
    #[error("image {fingerprint}: {op} in pool {pool}: {source}")]
    Storage {
        fingerprint: String,
        pool: String,
        op: &'static str,
        #[source]
        source: Box<cairn_backends::Error>,
    },
    #[error("image build {target}: {reason}")]
    Build { target: String, reason: String },
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Pool(#[from] pools::Error),
    #[error(transparent)]
    Name(#[from] NameError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The short form of a fingerprint shown in tables.
pub fn short(fingerprint: &str) -> &str {
    &fingerprint[..12.min(fingerprint.len())]
}

pub use import::metadata_of;
