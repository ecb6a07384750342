//! The rules every member of an image must pass (see [`super::scan`]): paths and link
//! targets stay under the root, nothing is unpacked through a symlink, and only ordinary
//! member types appear.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::scan::{member_err, normalise, Layout, Member, Refusal, Scan};

pub(super) fn check_members(
    members: Vec<Member>,
    metadata_yaml: Option<String>,
) -> Result<Scan, Refusal> {
    let rootfs = Path::new("rootfs");
    let unified = metadata_yaml.is_some() && members.iter().any(|m| m.path.starts_with(rootfs));
    if metadata_yaml.is_some() && !unified {
        return Err(Refusal::Layout(
            "has metadata.yaml but no rootfs/ (split LXD images are not supported: import a unified tarball)".into(),
        ));
    }
    let root: &Path = if unified { rootfs } else { Path::new("") };
    let mut prefix = None;
    let mut seen: HashMap<PathBuf, EntryType> = HashMap::new();
    let mut symlinks: HashSet<PathBuf> = HashSet::new();
    let mut count = 0u64;
    let mut root_meta = None;
    for m in &members {
        let Ok(rel) = m.path.strip_prefix(root) else {
            continue; // metadata.yaml, templates/: not unpacked
        };
        if unified {
            let p = if m.raw.starts_with("./") {
                "./rootfs"
            } else {
                "rootfs"
            };
            if *prefix.get_or_insert(p) != p {
                return Err(member_err(
                    &m.raw,
                    "mixes \"./rootfs\" and \"rootfs\" prefixes",
                ));
            }
        }
        if rel.as_os_str().is_empty() {
            if m.kind.is_dir() {
                root_meta = Some(m.meta);
            }
            continue;
        }
        count += 1;
        match m.kind {
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            EntryType::Symlink => {
                let target = m.link.as_deref().expect("symlinks carry a target");
                if !target.is_absolute() && climbs_out(rel, target) {
                    return Err(member_err(
                        &m.raw,
                        format!(
                            "symlink target {:?} points outside the root",
                            target.display().to_string()
                        ),
                    ));
                }
                symlinks.insert(rel.to_path_buf());
            }
            EntryType::Link => {
                let target = m.link.as_deref().expect("hard links carry a target");
                let what = "hard link target";
                let t = normalise(&m.raw, target, what)?;
                let trel = t.strip_prefix(root).map_err(|_| {
                    member_err(
                        &m.raw,
                        format!(
                            "{what} {:?} is outside the root",
                            target.display().to_string()
                        ),
                    )
                })?;
                match seen.get(trel) {
                    Some(k) if !k.is_dir() => {}
                    _ => {
                        return Err(member_err(
                            &m.raw,
                            format!(
                                "{what} {:?} is not an earlier file of the archive",
                                target.display().to_string()
                            ),
                        ))
                    }
                }
            }
            other => {
                return Err(member_err(
                    &m.raw,
                    format!("unsupported member type {other:?}"),
                ));
            }
        }
        seen.insert(rel.to_path_buf(), m.kind);
    }
    if count == 0 && root_meta.is_none() {
        return Err(Refusal::Layout("the root filesystem is empty".into()));
    }
    // Nothing may be unpacked through a symlink.
    for m in &members {
        let Ok(rel) = m.path.strip_prefix(root) else {
            continue;
        };
        let link_rel = match (&m.kind, &m.link) {
            (EntryType::Link, Some(t)) => normalise(&m.raw, t, "hard link target")?
                .strip_prefix(root)
                .map(Path::to_path_buf)
                .ok(),
            _ => None,
        };
        for p in std::iter::once(rel).chain(link_rel.as_deref()) {
            if let Some(a) = p.ancestors().skip(1).find(|a| symlinks.contains(*a)) {
                return Err(member_err(
                    &m.raw,
                    format!(
                        "lies below symlink {:?}, which would be followed",
                        a.display().to_string()
                    ),
                ));
            }
        }
    }
    Ok(Scan {
        layout: match prefix {
            Some(p) => Layout::Unified {
                prefix: p.to_string(),
            },
            None if unified => Layout::Unified {
                prefix: "rootfs".into(),
            },
            None => Layout::Rootfs,
        },
        metadata_yaml,
        members: count,
        root_meta,
    })
}

/// Whether a relative symlink target, resolved lexically from the link's directory,
/// climbs above the root.
pub(super) fn climbs_out(link: &Path, target: &Path) -> bool {
    let mut depth = link.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}
