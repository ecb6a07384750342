//! `diff` the btrfs way: `btrfs send --no-data -p FROM TO` compares the two subvolumes'
//! b-trees, skipping every node they still share, and names each path whose inode
//! differs; only those paths are then compared ([`crate::diff::compare_paths`]). The
//! cost follows what changed, not the size of the tree. The live state is first
//! captured as a read-only snapshot in `.tmp/` (one ioctl), deleted afterwards.

use std::path::{Path, PathBuf};

use super::send::send_into;
use super::{subvol, BtrfsBackend};
use crate::diff::{candidates, compare_paths, DiffSide, TreeDiff};
use crate::error::{Error, Result};
use crate::names::VolumeName;

impl BtrfsBackend {
    pub(super) fn do_diff(
        &self,
        volume: &VolumeName,
        from: DiffSide<'_>,
        to: DiffSide<'_>,
    ) -> Result<TreeDiff> {
        let mut temps: Vec<PathBuf> = Vec::new();
        let result = (|| {
            let mut side = |s: DiffSide<'_>| -> Result<PathBuf> {
                match s {
                    DiffSide::Snapshot(snap) => self.snapshot_path(volume, snap),
                    DiffSide::Live => {
                        let vol = self.volume_path(volume)?;
                        let tmp = self.layout.tmp_path(&format!("diff-{volume}"));
                        subvol::snapshot(&vol, &tmp, true)?;
                        temps.push(tmp.clone());
                        Ok(tmp)
                    }
                }
            };
            let (a, b) = (side(from)?, side(to)?);
            let stream = send_no_data(&a, &b)?;
            let c = candidates(&stream).map_err(|reason| Error::Invalid {
                op: "read send stream of",
                object: b.display().to_string(),
                reason,
            })?;
            tracing::debug!(
                candidates = c.paths.len(),
                bytes = stream.len(),
                "btrfs diff"
            );
            compare_paths(&a, &b, &c)
        })();
        for t in temps {
            if let Err(e) = subvol::delete(&t) {
                tracing::warn!(path = %t.display(), error = %e, "deleting the diff snapshot failed; mount_pool clears .tmp/");
            }
        }
        result
    }
}

/// The metadata-only incremental stream from `base` to `snap` (both read-only).
fn send_no_data(base: &Path, snap: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    send_into(Some(base), snap, &["--no-data"], &mut out)?;
    Ok(out)
}
