//! Finding images by alias or fingerprint, aliases, and deleting images.

use super::hashing::is_fingerprint;
use super::{short, Error, Result};
use crate::names::ImageAlias;
use crate::pools::Pool;
use crate::state::{ImageRecord, LockKind, LockMode, Store};

/// Finds an image by alias, full fingerprint, or a unique fingerprint prefix.
pub fn resolve(store: &Store, reference: &str) -> Result<ImageRecord> {
    let not_found = || Error::NotFound(reference.to_string());
    if let Some(fp) = store.alias_target(reference)? {
        return store.image(&fp)?.ok_or_else(not_found);
    }
    if is_fingerprint(reference) {
        return store.image(reference)?.ok_or_else(not_found);
    }
    let is_hex = !reference.is_empty() && reference.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex {
        return Err(not_found());
    }
    let matches = store.image_fingerprints_with_prefix(&reference.to_ascii_lowercase())?;
    match matches.as_slice() {
        [] => Err(not_found()),
        [fp] => store.image(fp)?.ok_or_else(not_found),
        many => Err(Error::Ambiguous {
            reference: reference.to_string(),
            matches: many.iter().map(|f| short(f)).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Points a new alias at an image.
pub fn add_alias(store: &Store, alias: &ImageAlias, image: &str) -> Result<ImageRecord> {
    let record = resolve(store, image)?;
    let _lock = store.lock(LockKind::Image, &record.fingerprint, LockMode::Exclusive)?;
    match store.alias_target(alias.as_str())? {
        Some(t) if t == record.fingerprint => {}
        Some(t) => {
            return Err(Error::AliasTaken {
                alias: alias.to_string(),
                target: short(&t).to_string(),
            })
        }
        None => store.add_alias(alias.as_str(), &record.fingerprint)?,
    }
    Ok(store.image(&record.fingerprint)?.unwrap_or(record))
}

pub fn remove_alias(store: &Store, alias: &ImageAlias) -> Result<()> {
    let fp = store
        .alias_target(alias.as_str())?
        .ok_or_else(|| Error::AliasNotFound(alias.to_string()))?;
    let _lock = store.lock(LockKind::Image, &fp, LockMode::Exclusive)?;
    store.remove_alias(alias.as_str())?;
    Ok(())
}

/// Deletes an image no container uses: its base volume in every pool, its record and
/// aliases, and its stored file.
pub fn delete(store: &Store, reference: &str) -> Result<ImageRecord> {
    let record = resolve(store, reference)?;
    let fp = record.fingerprint.clone();
    let volumes = store.image_volumes(&fp)?;
    // Lock order: pools, then the image.
    let pools = volumes
        .iter()
        .map(|v| Pool::open(store, Some(&v.pool)))
        .collect::<Result<Vec<_>, _>>()?;
    let _lock = store.lock(LockKind::Image, &fp, LockMode::Exclusive)?;
    let users = store.image_users(&fp)?;
    if !users.is_empty() {
        return Err(Error::InUse {
            fingerprint: short(&fp).to_string(),
            users: users.join(", "),
        });
    }
    for pool in &pools {
        let volume = crate::names::image_volume(&fp);
        pool.backend
            .delete_volume(&volume)
            .map_err(|source| Error::Storage {
                fingerprint: fp.clone(),
                pool: pool.name().to_string(),
                op: "delete base volume",
                source: Box::new(source),
            })?;
        store.delete_image_volume(&fp, pool.name())?;
    }
    store.delete_image_record(&fp)?;
    let file = store.image_file(&fp);
    if let Err(e) = std::fs::remove_file(&file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %file.display(), error = %e, "could not remove image file");
        }
    }
    Ok(record)
}
