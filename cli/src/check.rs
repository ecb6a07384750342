//! `cairn check [--repair]`: the storage is the source of truth, the database records
//! what it cannot; this finds where the two disagree and, with `--repair`, brings the
//! database back in line without losing data:
//!
//! - a volume `ct-<name>` without a container record (an interrupted create or copy):
//!   recorded as container `<name>` (image unknown), so its files stay reachable;
//! - a volume `img-<fingerprint>` without a record (an interrupted unpack): deleted, it
//!   is derived from the stored image file and made again on demand;
//! - a container record whose volume is gone: the record is removed (nothing is left
//!   to lose); a base-volume record whose volume is gone: removed likewise;
//! - an image record whose stored file is gone: reported only (re-import the file).
//!
//! With `--repair`, each pool is also mounted again while no other `cairn` uses it,
//! which makes its driver clear the leftovers of interrupted operations.
//!
//! Each object is re-examined under its lock before it is repaired, so a check running
//! beside a `create` never mistakes the create's half-made volume for a leftover.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::containers::Result;
use crate::names::{image_volume, ContainerName};
use crate::pools::Pool;
use crate::state::{ContainerRecord, LockKind, LockMode, Store};

/// One disagreement between the storage and the database.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub object: String,
    pub problem: String,
    /// What `--repair` does (or did) about it; empty when it cannot.
    pub repair: String,
    pub repaired: bool,
}

/// A storage error about the pool as a whole.
fn pool_err(pool: &str) -> impl FnOnce(cairn_backends::Error) -> crate::containers::Error + '_ {
    move |e| {
        crate::pools::Error::Storage {
            name: pool.to_string(),
            source: Box::new(e),
        }
        .into()
    }
}

fn volumes(pool: &Pool) -> Result<BTreeSet<String>> {
    Ok(pool
        .backend
        .list_volumes()
        .map_err(pool_err(pool.name()))?
        .into_iter()
        .map(|v| v.name.to_string())
        .collect())
}

/// Checks every pool; repairs what it can when `repair` is set.
pub fn check(store: &Store, repair: bool) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for rec in store.pools()? {
        if repair {
            crate::pools::remount(store, rec.name.as_str())?;
        }
        let pool = Pool::open(store, Some(rec.name.as_str()))?;
        check_pool(store, &pool, repair, &mut findings)?;
    }
    for image in store.images()? {
        if !store.image_file(&image.fingerprint).exists() {
            findings.push(Finding {
                object: format!("image {}", image.fingerprint),
                problem: "its stored file is missing".into(),
                repair: String::new(),
                repaired: false,
            });
        }
    }
    Ok(findings)
}

fn check_pool(store: &Store, pool: &Pool, repair: bool, out: &mut Vec<Finding>) -> Result<()> {
    let p = pool.name();
    for vol in volumes(pool)? {
        if let Some(name) = vol.strip_prefix("ct-") {
            let Ok(name) = name.parse::<ContainerName>() else {
                continue;
            };
            if store.container(name.as_str())?.is_some() {
                continue;
            }
            let _lock = store.lock(LockKind::Container, name.as_str(), LockMode::Exclusive)?;
            if store.container(name.as_str())?.is_some() || !volumes(pool)?.contains(&vol) {
                continue; // a create finished meanwhile
            }
            let mut f = Finding {
                object: format!("pool {p}"),
                problem: format!("volume {vol} has no container record"),
                repair: format!("record it as container {name}"),
                repaired: false,
            };
            if repair {
                let created_at = pool
                    .backend
                    .list_volumes()
                    .map_err(pool_err(p))?
                    .into_iter()
                    .find(|v| v.name.as_str() == vol)
                    .map_or_else(jiff::Timestamp::now, |v| v.created_at);
                store.insert_container(&ContainerRecord {
                    name: name.to_string(),
                    pool: p.to_string(),
                    image: None,
                    volume: vol.clone(),
                    created_at,
                })?;
                f.repaired = true;
            }
            out.push(f);
        } else if let Some(fp) = vol.strip_prefix("img-") {
            if store.image_volumes(fp)?.iter().any(|v| v.pool == p) {
                continue;
            }
            let _lock = store.lock(LockKind::Image, fp, LockMode::Exclusive)?;
            if store.image_volumes(fp)?.iter().any(|v| v.pool == p) {
                continue;
            }
            let mut f = Finding {
                object: format!("pool {p}"),
                problem: format!("base volume {vol} has no image record"),
                repair: "delete it (it is made again from the image file when needed)".into(),
                repaired: false,
            };
            if repair {
                pool.backend
                    .delete_volume(&image_volume(fp))
                    .map_err(pool_err(p))?;
                f.repaired = true;
            }
            out.push(f);
        }
    }
    for rec in store.containers()?.into_iter().filter(|c| c.pool == p) {
        let _lock = store.lock(LockKind::Container, &rec.name, LockMode::Exclusive)?;
        if store.container(&rec.name)?.is_none() || volumes(pool)?.contains(&rec.volume) {
            continue;
        }
        let mut f = Finding {
            object: format!("container {}", rec.name),
            problem: format!("its volume {} is missing from pool {p}", rec.volume),
            repair: "remove the record".into(),
            repaired: false,
        };
        if repair {
            store.delete_container_record(&rec.name)?;
            f.repaired = true;
        }
        out.push(f);
    }
    let vols = volumes(pool)?;
    for image in store.images()? {
        let fp = &image.fingerprint;
        if !store.image_volumes(fp)?.iter().any(|v| v.pool == p)
            || vols.contains(image_volume(fp).as_str())
        {
            continue;
        }
        let mut f = Finding {
            object: format!("image {fp}"),
            problem: format!("its base volume is missing from pool {p}"),
            repair: "remove the record (unpacked again when needed)".into(),
            repaired: false,
        };
        if repair {
            let _lock = store.lock(LockKind::Image, fp, LockMode::Exclusive)?;
            store.delete_image_volume(fp, p)?;
            f.repaired = true;
        }
        out.push(f);
    }
    Ok(())
}
