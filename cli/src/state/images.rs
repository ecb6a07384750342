//! Image records: fingerprint, aliases, metadata, and the base volume of each pool the
//! image has been unpacked into.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use super::error::{Error, Result};
use super::Store;

/// One image as recorded. `metadata` is the JSON of `images::ImageMetadata`.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub fingerprint: String,
    pub format: String,
    pub compression: String,
    pub size: u64,
    pub metadata: serde_json::Value,
    pub imported_at: Timestamp,
    pub aliases: Vec<String>,
}

/// An image's read-only base volume in one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVolume {
    pub pool: String,
    pub volume: String,
}

impl Store {
    /// All images, sorted by fingerprint.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT fingerprint FROM images ORDER BY fingerprint")
            .map_err(|e| Error::db("list images", e))?;
        let fps = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| Error::db("list images", e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| Error::db("list images", e))?;
        fps.iter()
            .map(|fp| {
                self.image(fp)?
                    .ok_or_else(|| Error::corrupt(format!("image {fp}"), "vanished while listed"))
            })
            .collect()
    }

    /// One image by full fingerprint, or `None`.
    pub fn image(&self, fingerprint: &str) -> Result<Option<ImageRecord>> {
        let what = || format!("image {fingerprint}");
        let row = self
            .conn()
            .query_row(
                "SELECT format, compression, size, metadata, imported_at FROM images WHERE fingerprint = ?1",
                [fingerprint],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| Error::db(format!("read {}", what()), e))?;
        let Some((format, compression, size, metadata, imported_at)) = row else {
            return Ok(None);
        };
        Ok(Some(ImageRecord {
            fingerprint: fingerprint.to_string(),
            format,
            compression,
            size: size as u64,
            metadata: serde_json::from_str(&metadata).map_err(|e| Error::corrupt(what(), e))?,
            imported_at: imported_at.parse().map_err(|e| Error::corrupt(what(), e))?,
            aliases: self.strings(
                "SELECT alias FROM image_aliases WHERE fingerprint = ?1 ORDER BY alias",
                fingerprint,
            )?,
        }))
    }

    /// Fingerprints starting with `prefix`.
    pub fn image_fingerprints_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        self.strings(
            "SELECT fingerprint FROM images WHERE fingerprint LIKE ?1 ORDER BY fingerprint",
            &pattern,
        )
    }

    /// The fingerprint an alias points to.
    pub fn alias_target(&self, alias: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT fingerprint FROM image_aliases WHERE alias = ?1",
                [alias],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db(format!("read alias {alias}"), e))
    }

    /// Records a new image and its aliases in one transaction.
    pub fn insert_image(&mut self, rec: &ImageRecord) -> Result<()> {
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO images (fingerprint, format, compression, size, metadata, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    rec.fingerprint,
                    rec.format,
                    rec.compression,
                    rec.size as i64,
                    rec.metadata.to_string(),
                    rec.imported_at.to_string()
                ],
            )
            .map_err(|e| Error::db(format!("record image {}", rec.fingerprint), e))?;
            for alias in &rec.aliases {
                tx.execute(
                    "INSERT INTO image_aliases (alias, fingerprint) VALUES (?1, ?2)",
                    params![alias, rec.fingerprint],
                )
                .map_err(|e| Error::db(format!("record alias {alias}"), e))?;
            }
            Ok(())
        })
    }

    pub fn add_alias(&self, alias: &str, fingerprint: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO image_aliases (alias, fingerprint) VALUES (?1, ?2)",
                params![alias, fingerprint],
            )
            .map_err(|e| Error::db(format!("record alias {alias}"), e))?;
        Ok(())
    }

    pub fn remove_alias(&self, alias: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM image_aliases WHERE alias = ?1", [alias])
            .map_err(|e| Error::db(format!("delete alias {alias}"), e))?;
        Ok(())
    }

    /// Deletes an image record with its aliases and base-volume records.
    pub fn delete_image_record(&self, fingerprint: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM images WHERE fingerprint = ?1", [fingerprint])
            .map_err(|e| Error::db(format!("delete image {fingerprint}"), e))?;
        Ok(())
    }

    /// The pools the image is unpacked in.
    pub fn image_volumes(&self, fingerprint: &str) -> Result<Vec<ImageVolume>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT pool, volume FROM image_volumes WHERE fingerprint = ?1 ORDER BY pool")
            .map_err(|e| Error::db("list image volumes", e))?;
        let rows = stmt
            .query_map([fingerprint], |r| {
                Ok(ImageVolume {
                    pool: r.get(0)?,
                    volume: r.get(1)?,
                })
            })
            .map_err(|e| Error::db("list image volumes", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| Error::db("list image volumes", e))
    }

    pub fn insert_image_volume(&self, fingerprint: &str, v: &ImageVolume) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO image_volumes (fingerprint, pool, volume) VALUES (?1, ?2, ?3)",
                params![fingerprint, v.pool, v.volume],
            )
            .map_err(|e| Error::db(format!("record image {fingerprint} in pool {}", v.pool), e))?;
        Ok(())
    }

    pub fn delete_image_volume(&self, fingerprint: &str, pool: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM image_volumes WHERE fingerprint = ?1 AND pool = ?2",
                params![fingerprint, pool],
            )
            .map_err(|e| Error::db(format!("delete image {fingerprint} in pool {pool}"), e))?;
        Ok(())
    }

    /// Containers made from the image.
    pub fn image_users(&self, fingerprint: &str) -> Result<Vec<String>> {
        self.strings(
            "SELECT name FROM containers WHERE image = ?1 ORDER BY name",
            fingerprint,
        )
    }

    pub(super) fn strings(&self, sql: &str, arg: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn()
            .prepare(sql)
            .map_err(|e| Error::db("query", e))?;
        let rows = stmt
            .query_map([arg], |r| r.get::<_, String>(0))
            .map_err(|e| Error::db("query", e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| Error::db("query", e))
    }
}
