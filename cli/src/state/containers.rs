//! Container records and snapshot labels.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use super::error::{Error, Result};
use super::Store;

/// One container as recorded: the pool and volume holding its files, its image.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub name: String,
    pub pool: String,
    pub image: Option<String>,
    pub volume: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "name, pool, image, volume, created_at";

fn from_row(r: &Row) -> rusqlite::Result<(String, String, Option<String>, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode(raw: (String, String, Option<String>, String, String)) -> Result<ContainerRecord> {
    let (name, pool, image, volume, created_at) = raw;
    let created_at = created_at
        .parse()
        .map_err(|e| Error::corrupt(format!("container {name}"), e))?;
    Ok(ContainerRecord {
        name,
        pool,
        image,
        volume,
        created_at,
    })
}

impl Store {
    /// All containers, sorted by name.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {COLUMNS} FROM containers ORDER BY name"))
            .map_err(|e| Error::db("list containers", e))?;
        let rows = stmt
            .query_map([], from_row)
            .map_err(|e| Error::db("list containers", e))?;
        rows.map(|r| decode(r.map_err(|e| Error::db("list containers", e))?))
            .collect()
    }

    pub fn container(&self, name: &str) -> Result<Option<ContainerRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()
            .map_err(|e| Error::db(format!("read container {name}"), e))?
            .map(decode)
            .transpose()
    }

    pub fn insert_container(&self, rec: &ContainerRecord) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO containers (name, pool, image, volume, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![rec.name, rec.pool, rec.image, rec.volume, rec.created_at.to_string()],
            )
            .map_err(|e| Error::db(format!("record container {}", rec.name), e))?;
        Ok(())
    }

    /// Renames a container record; its snapshot labels follow.
    pub fn rename_container(&self, from: &str, to: &str, volume: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE containers SET name = ?2, volume = ?3 WHERE name = ?1",
                params![from, to, volume],
            )
            .map_err(|e| Error::db(format!("rename container {from}"), e))?;
        Ok(())
    }

    pub fn delete_container_record(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM containers WHERE name = ?1", [name])
            .map_err(|e| Error::db(format!("delete container {name}"), e))?;
        Ok(())
    }

    /// A snapshot's labels, sorted by key.
    pub fn snapshot_labels(&self, container: &str, snap: &str) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT key, value FROM snapshot_labels WHERE container = ?1 AND snapshot = ?2",
            )
            .map_err(|e| Error::db("read snapshot labels", e))?;
        let rows = stmt
            .query_map(params![container, snap], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| Error::db("read snapshot labels", e))?;
        rows.collect::<rusqlite::Result<BTreeMap<_, _>>>()
            .map_err(|e| Error::db("read snapshot labels", e))
    }

    /// Replaces a snapshot's labels.
    pub fn set_snapshot_labels(
        &mut self,
        container: &str,
        snap: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM snapshot_labels WHERE container = ?1 AND snapshot = ?2",
                params![container, snap],
            )
            .map_err(|e| Error::db("write snapshot labels", e))?;
            for (k, v) in labels {
                tx.execute(
                    "INSERT INTO snapshot_labels (container, snapshot, key, value) VALUES (?1, ?2, ?3, ?4)",
                    params![container, snap, k, v],
                )
                .map_err(|e| Error::db("write snapshot labels", e))?;
            }
            Ok(())
        })
    }

    pub fn rename_snapshot_labels(&self, container: &str, from: &str, to: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE snapshot_labels SET snapshot = ?3 WHERE container = ?1 AND snapshot = ?2",
                params![container, from, to],
            )
            .map_err(|e| Error::db("rename snapshot labels", e))?;
        Ok(())
    }
}
