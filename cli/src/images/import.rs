//! Importing an image file, and unpacking an image into a pool's base volume.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use cairn_backends::{SnapshotName, VolumeName};
use jiff::Timestamp;

use super::format::{Compression, MAGIC_LEN};
use super::hashing::copy_hashing;
use super::metadata::{parse_metadata_yaml, ImageMetadata};
use super::scan::{scan, Layout, Scan};
use super::unpack::unpack;
use super::{Error, Result};
use crate::names::{image_volume, ImageAlias};
use crate::pools::Pool;
use crate::progress::Progress;
use crate::state::{ImageRecord, ImageVolume, LockKind, LockMode, Store};

/// The snapshot of an image's base volume that containers are cloned from.
pub const BASE_SNAPSHOT: &str = "base";

/// What `import` did.
pub struct ImportOutcome {
    pub record: ImageRecord,
    /// False when the same file had been imported before (only aliases were added).
    pub created: bool,
}

/// Removes a file on drop unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Counts bytes read into a progress phase.
struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

fn io_err<'a>(file: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        file: file.to_path_buf(),
        op,
        source,
    }
}

/// Detects the compression of an image file by its first bytes.
pub fn detect_file(file: &Path) -> Result<Compression> {
    let mut f = File::open(file).map_err(io_err(file, "open"))?;
    let mut head = Vec::with_capacity(MAGIC_LEN);
    f.by_ref()
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io_err(file, "read"))?;
    Compression::detect(&head).ok_or_else(|| Error::NotTarball(file.to_path_buf()))
}

/// Checks every member of a stored or candidate image file.
pub fn scan_file(
    file: &Path,
    shown_as: &Path,
    compression: Compression,
    progress: &dyn Progress,
) -> Result<Scan> {
    let f = File::open(file).map_err(io_err(shown_as, "open"))?;
    let len = f.metadata().map(|m| m.len()).ok();
    progress.phase("checking", len, true);
    let counted = Counted { inner: f, progress };
    let decoder = compression
        .decoder(counted)
        .map_err(io_err(shown_as, "decompress"))?;
    scan(decoder).map_err(|refusal| Error::Refused {
        file: shown_as.to_path_buf(),
        refusal,
    })
}

/// An image file copied into the state directory, fingerprinted and checked, not yet
/// recorded. Dropping it removes the copy.
pub struct Prepared {
    file: PathBuf,
    tmp: TempFile,
    compression: Compression,
    fingerprint: String,
    size: u64,
    scanned: Scan,
}

/// The first half of an import, which changes nothing the user can see: detect the
/// format, copy the file into the state directory while hashing it, check every member.
pub fn prepare(store: &Store, file: &Path, progress: &dyn Progress) -> Result<Prepared> {
    let compression = detect_file(file)?;
    let tmp_dir = store.image_tmp_dir();
    std::fs::create_dir_all(&tmp_dir).map_err(io_err(&tmp_dir, "create"))?;
    let tmp_path = tmp_dir.join(format!(
        "import-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    let tmp = TempFile(Some(tmp_path.clone()));
    let mut input = File::open(file).map_err(io_err(file, "open"))?;
    let len = input.metadata().map(|m| m.len()).ok();
    progress.phase("reading", len, true);
    let mut out = File::create(&tmp_path).map_err(io_err(&tmp_path, "create"))?;
    let (fingerprint, size) =
        copy_hashing(&mut input, &mut out, progress).map_err(io_err(file, "copy"))?;
    out.sync_all().map_err(io_err(&tmp_path, "sync"))?;
    drop(out);
    let scanned = scan_file(&tmp_path, file, compression, progress)?;
    Ok(Prepared {
        file: file.to_path_buf(),
        tmp,
        compression,
        fingerprint,
        size,
        scanned,
    })
}

/// The second half: records the prepared image and unpacks it into `pool`. Importing
/// the same file again only adds the new aliases.
pub fn import(
    store: &mut Store,
    prepared: Prepared,
    aliases: &[ImageAlias],
    pool: &Pool,
    progress: &dyn Progress,
) -> Result<ImportOutcome> {
    let Prepared {
        file,
        tmp,
        compression,
        fingerprint,
        size,
        scanned,
    } = prepared;
    let file = file.as_path();
    let tmp_path = tmp.0.clone().expect("armed");
    let _lock = store.lock(LockKind::Image, &fingerprint, LockMode::Exclusive)?;
    for a in aliases {
        match store.alias_target(a.as_str())? {
            Some(t) if t != fingerprint => {
                return Err(Error::AliasTaken {
                    alias: a.to_string(),
                    target: t,
                })
            }
            _ => {}
        }
    }
    if let Some(existing) = store.image(&fingerprint)? {
        for a in aliases {
            if !existing.aliases.iter().any(|e| e == a.as_str()) {
                store.add_alias(a.as_str(), &fingerprint)?;
            }
        }
        ensure_in_pool_locked(
            store,
            &existing,
            pool,
            Some((compression, &scanned)),
            progress,
        )?;
        let record = store.image(&fingerprint)?.expect("the image is locked");
        return Ok(ImportOutcome {
            record,
            created: false,
        });
    }
    let mut metadata = scanned
        .metadata_yaml
        .as_deref()
        .map(parse_metadata_yaml)
        .unwrap_or_default();
    metadata.source_file = file.display().to_string();
    let record = ImageRecord {
        fingerprint: fingerprint.clone(),
        format: match scanned.layout {
            Layout::Unified { .. } => "unified".into(),
            Layout::Rootfs => "rootfs".into(),
        },
        compression: compression.as_str().into(),
        size,
        metadata: serde_json::to_value(&metadata).expect("metadata serialises"),
        imported_at: Timestamp::now(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
    };
    let stored = store.image_file(&fingerprint);
    std::fs::rename(&tmp_path, &stored).map_err(io_err(&stored, "store"))?;
    std::mem::forget(tmp);
    let stored_guard = TempFile(Some(stored));
    store.insert_image(&record)?;
    if let Err(e) = ensure_in_pool_locked(
        store,
        &record,
        pool,
        Some((compression, &scanned)),
        progress,
    ) {
        let _ = store.delete_image_record(&fingerprint);
        return Err(e);
    }
    std::mem::forget(stored_guard);
    Ok(ImportOutcome {
        record,
        created: true,
    })
}

/// The image's base volume in `pool`, unpacking the image there first if needed.
pub fn ensure_in_pool(
    store: &Store,
    image: &ImageRecord,
    pool: &Pool,
    progress: &dyn Progress,
) -> Result<VolumeName> {
    let _lock = store.lock(LockKind::Image, &image.fingerprint, LockMode::Exclusive)?;
    ensure_in_pool_locked(store, image, pool, None, progress)
}

fn ensure_in_pool_locked(
    store: &Store,
    image: &ImageRecord,
    pool: &Pool,
    known: Option<(Compression, &Scan)>,
    progress: &dyn Progress,
) -> Result<VolumeName> {
    let fp = &image.fingerprint;
    let volume = image_volume(fp);
    if store
        .image_volumes(fp)?
        .iter()
        .any(|v| v.pool == pool.name())
    {
        return Ok(volume);
    }
    let storage = |op: &'static str| {
        move |source| Error::Storage {
            fingerprint: fp.clone(),
            pool: pool.name().to_string(),
            op,
            source: Box::new(source),
        }
    };
    let file = store.image_file(fp);
    // The stored file is checked again unless this import just checked it.
    let rescanned;
    let (compression, scanned) = match known {
        Some(k) => k,
        None => {
            let compression = detect_file(&file)?;
            rescanned = scan_file(&file, &file, compression, progress)?;
            (compression, &rescanned)
        }
    };
    let backend = &pool.backend;
    // A base volume without a record is the leftover of an interrupted unpack.
    backend
        .delete_volume(&volume)
        .map_err(storage("remove leftover base volume"))?;
    backend
        .create_volume(&volume)
        .map_err(storage("create base volume"))?;
    let result = (|| {
        let root = backend
            .mount_volume(&volume)
            .map_err(storage("mount base volume"))?;
        unpack(
            &file,
            compression,
            &scanned.layout,
            scanned.root_meta,
            &root,
            scanned.members,
            progress,
        )
        .map_err(storage("unpack"))?;
        let base: SnapshotName = BASE_SNAPSHOT.parse().expect("a valid snapshot name");
        backend
            .create_snapshot(&volume, &base)
            .map_err(storage("snapshot base volume"))?;
        store.insert_image_volume(
            fp,
            &ImageVolume {
                pool: pool.name().to_string(),
                volume: volume.to_string(),
            },
        )?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = backend.delete_volume(&volume);
        return Err(e);
    }
    Ok(volume)
}

/// The metadata stored with an image.
pub fn metadata_of(image: &ImageRecord) -> ImageMetadata {
    serde_json::from_value(image.metadata.clone()).unwrap_or_default()
}
