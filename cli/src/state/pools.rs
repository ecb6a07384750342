//! Pool records: the spec each pool's driver is opened with.

use cairn_backends::{DriverKind, PoolName, PoolSpec};
use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use super::error::{Error, Result};
use super::Store;

/// One pool as recorded.
#[derive(Debug, Clone)]
pub struct PoolRecord {
    pub name: PoolName,
    pub driver: DriverKind,
    pub spec: PoolSpec,
    pub created_at: Timestamp,
    /// The boot id when the pool was last mounted; another value means "mount again".
    pub mounted_boot: Option<String>,
}

const COLUMNS: &str = "name, driver, spec, created_at, mounted_boot";

fn from_row(row: &Row) -> rusqlite::Result<(String, String, String, String, Option<String>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode(raw: (String, String, String, String, Option<String>)) -> Result<PoolRecord> {
    let (name, driver, spec, created_at, mounted_boot) = raw;
    let what = || format!("pool {name}");
    Ok(PoolRecord {
        name: name.parse().map_err(|e| Error::corrupt(what(), e))?,
        driver: driver.parse().map_err(|e| Error::corrupt(what(), e))?,
        spec: serde_json::from_str(&spec).map_err(|e| Error::corrupt(what(), e))?,
        created_at: created_at.parse().map_err(|e| Error::corrupt(what(), e))?,
        mounted_boot,
    })
}

impl Store {
    /// All pools, sorted by name.
    pub fn pools(&self) -> Result<Vec<PoolRecord>> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {COLUMNS} FROM pools ORDER BY name"))
            .map_err(|e| Error::db("list pools", e))?;
        let rows = stmt
            .query_map([], from_row)
            .map_err(|e| Error::db("list pools", e))?;
        rows.map(|r| decode(r.map_err(|e| Error::db("list pools", e))?))
            .collect()
    }

    /// One pool, or `None`.
    pub fn pool(&self, name: &str) -> Result<Option<PoolRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM pools WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()
            .map_err(|e| Error::db(format!("read pool {name}"), e))?
            .map(decode)
            .transpose()
    }

    pub fn insert_pool(&self, rec: &PoolRecord) -> Result<()> {
        let spec = serde_json::to_string(&rec.spec).expect("a PoolSpec serialises");
        self.conn()
            .execute(
                "INSERT INTO pools (name, driver, spec, created_at, mounted_boot) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    rec.name.as_str(),
                    rec.driver.as_str(),
                    spec,
                    rec.created_at.to_string(),
                    rec.mounted_boot
                ],
            )
            .map_err(|e| Error::db(format!("record pool {}", rec.name), e))?;
        Ok(())
    }

    pub fn set_pool_mounted(&self, name: &str, boot: &str) -> Result<()> {
        self.conn()
            .execute(
                "UPDATE pools SET mounted_boot = ?2 WHERE name = ?1",
                params![name, boot],
            )
            .map_err(|e| Error::db(format!("update pool {name}"), e))?;
        Ok(())
    }

    pub fn delete_pool_record(&self, name: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM pools WHERE name = ?1", [name])
            .map_err(|e| Error::db(format!("delete pool {name}"), e))?;
        Ok(())
    }

    /// What keeps a pool in use: its containers' names and its images' fingerprints.
    pub fn pool_users(&self, name: &str) -> Result<(Vec<String>, Vec<String>)> {
        let list = |sql: &str| -> Result<Vec<String>> {
            let mut stmt = self
                .conn()
                .prepare(sql)
                .map_err(|e| Error::db("list pool users", e))?;
            let rows = stmt
                .query_map([name], |r| r.get::<_, String>(0))
                .map_err(|e| Error::db("list pool users", e))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| Error::db("list pool users", e))
        };
        Ok((
            list("SELECT name FROM containers WHERE pool = ?1 ORDER BY name")?,
            list("SELECT fingerprint FROM image_volumes WHERE pool = ?1 ORDER BY fingerprint")?,
        ))
    }
}
