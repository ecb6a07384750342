//! The CLI's embedded state: one SQLite database (WAL) at `<state>/cairn.db`, the
//! imported image files under `<state>/images/`, pool directories under `<state>/pools/`,
//! and per-object lock files under `<state>/locks/`.
//!
//! The storage stays the source of truth for what exists (volumes, snapshots and their
//! creation times); the database records what the storage cannot: which pool a container
//! lives in, the image it came from, image aliases and metadata, snapshot labels, and for
//! time travel (`policies.rs`) snapshot holds and expiry, policies, their last runs and
//! the log of pruned snapshots.
//!
//! Locking: SQLite serialises writers itself (busy timeout 30 s); opening the database
//! (WAL switch, migrations) is serialised by the `database` lock. Work that touches the
//! storage and the database together holds an exclusive [`ObjectLock`] on every object it
//! changes, taken in a fixed order (pool, then image, then containers by name), so two
//! `cairn` processes never interleave on one object.

mod containers;
mod error;
mod images;
mod lock;
mod policies;
mod pools;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use containers::ContainerRecord;
pub use error::{Error, Result};
pub use images::{ImageRecord, ImageVolume};
pub use lock::{LockKind, LockMode, ObjectLock};
pub use policies::{PolicyRecord, PruneLogEntry, SnapshotMeta, ORIGIN_MANUAL, ORIGIN_POLICY};
pub use pools::PoolRecord;

/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cairn";

/// An open state directory.
pub struct Store {
    dir: PathBuf,
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the state directory and its database.
    pub fn open(dir: &Path) -> Result<Store> {
        // Paths inside pool specs are stored as given: make them absolute first.
        let dir = &std::path::absolute(dir).map_err(|source| Error::Io {
            op: "resolve",
            path: dir.to_path_buf(),
            source,
        })?;
        for sub in ["", "locks", "images", "images/.tmp", "pools"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| Error::Io {
                op: "create directory",
                path: p.clone(),
                source,
            })?;
        }
        // Switching to WAL and migrating take locks SQLite does not wait for (a busy
        // `journal_mode` change fails at once): one process at a time opens the database.
        let _open_lock = ObjectLock::acquire(
            &dir.join("locks"),
            LockKind::Database,
            "cairn.db",
            LockMode::Exclusive,
        )?;
        let db = dir.join("cairn.db");
        let conn = Connection::open(&db).map_err(|e| Error::db("open", e))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(|e| Error::db("set busy timeout", e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| Error::db("enable WAL", e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| Error::db("enable foreign keys", e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| Error::db("set synchronous", e))?;
        schema::migrate(&conn)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            conn,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where imported image files are kept, one per fingerprint.
    pub fn image_file(&self, fingerprint: &str) -> PathBuf {
        self.dir.join("images").join(fingerprint)
    }

    /// A scratch directory for image files being imported (same filesystem as
    /// `images/`, so a finished import is a rename).
    pub fn image_tmp_dir(&self) -> PathBuf {
        self.dir.join("images").join(".tmp")
    }

    /// The state directory a pool's driver owns.
    pub fn pool_state_dir(&self, pool: &str) -> PathBuf {
        self.dir.join("pools").join(pool)
    }

    /// Takes a lock on one object, waiting for other processes to release it.
    pub fn lock(&self, kind: LockKind, name: &str, mode: LockMode) -> Result<ObjectLock> {
        ObjectLock::acquire(&self.dir.join("locks"), kind, name, mode)
    }

    /// Runs `f` in one transaction: all of its changes or none.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T>,
    ) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::db("begin transaction", e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| Error::db("commit", e))?;
        Ok(value)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// The current boot's id: a pool whose recorded boot id differs must be mounted again.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
