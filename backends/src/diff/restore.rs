//! Putting chosen paths of a snapshot back into the live state (snapper's `undochange`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::TreePath;
use crate::copy::meta::{self, Node};
use crate::copy::{self, CopyMode, CopyStats, EntryCopier};
use crate::error::{Error, IoContext, Result};
use crate::layout::{rename_exchange_or_emulate, rename_noreplace_or_emulate};
use crate::revert::Revert;

/// What a partial restore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Paths put back from the snapshot (replacing the live entry or where there was none).
    pub restored: u64,
    /// Paths the snapshot does not have, removed from the live state.
    pub removed: u64,
    /// Missing parent directories made as copies of the snapshot's.
    pub parents_created: u64,
    /// What the exact copy copied.
    pub copy: CopyStats,
}

/// How a path stands in one tree.
enum Lookup {
    /// Present.
    Found,
    /// Absent (or a component on the way is not a directory).
    Missing,
    /// A directory on the way is a symlink (at this relative path).
    Through(PathBuf),
    /// A component on the way is neither a directory nor a symlink (at this relative
    /// path, of this type): the path cannot be there.
    NotDir(PathBuf, super::EntryType),
}

fn lookup(root: &Path, rel: &Path) -> io::Result<Lookup> {
    let c = meta::cstr(root.as_os_str())?;
    let mut dir = meta::open_at(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    let mut walked = PathBuf::new();
    for comp in parent.components() {
        walked.push(comp);
        let name = meta::cstr(comp.as_os_str())?;
        match meta::stat_at(dir.as_raw_fd(), &name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Lookup::Missing),
            Err(e) => return Err(e),
            Ok(st) => match st.st_mode & libc::S_IFMT {
                libc::S_IFLNK => return Ok(Lookup::Through(walked)),
                libc::S_IFDIR => {}
                _ => {
                    let kind = super::EntryType::of_mode(st.st_mode);
                    return Ok(Lookup::NotDir(walked, kind));
                }
            },
        }
        dir = meta::open_at(
            dir.as_raw_fd(),
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )?;
    }
    let name = meta::cstr(rel.file_name().unwrap_or_default())?;
    match meta::stat_at(dir.as_raw_fd(), &name) {
        Ok(_) => Ok(Lookup::Found),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Lookup::Missing),
        Err(e) => Err(e),
    }
}

fn refuse(p: &TreePath, reason: String) -> Error {
    Error::Invalid {
        op: "restore",
        object: format!("path {p}"),
        reason,
    }
}

/// The checks [`restore_paths`] makes before it changes anything, alone: for callers
/// that must refuse bad paths before doing work of their own (a safety snapshot).
pub fn check_restore_paths(snap: &Path, live: &Path, paths: &[TreePath]) -> Result<()> {
    plan(snap, live, paths).map(drop)
}

/// Each path to restore (those under another given path dropped), whether the snapshot
/// has it, whether the live tree has it.
fn plan<'p>(
    snap: &Path,
    live: &Path,
    paths: &'p [TreePath],
) -> Result<Vec<(&'p TreePath, bool, bool)>> {
    let mut wanted: Vec<&TreePath> = paths.iter().collect();
    wanted.sort();
    wanted.dedup();
    let mut plan: Vec<(&TreePath, bool, bool)> = Vec::new();
    for p in wanted {
        if p.is_root() {
            return Err(refuse(
                p,
                "is the root: restore the whole snapshot instead".into(),
            ));
        }
        if plan.iter().any(|(q, _, _)| p.rel().starts_with(q.rel())) {
            continue;
        }
        let side = |root: &Path, what: &str| -> Result<Lookup> {
            match lookup(root, p.rel()).ctx("look up", root.join(p.rel()))? {
                Lookup::Through(l) => Err(refuse(
                    p,
                    format!(
                        "{} is a symlink in {what}; symlinks are not followed (a path through one could leave the root), name the path it points to",
                        super::display_path(&l)
                    ),
                )),
                other => Ok(other),
            }
        };
        let (snap_side, live_side) = (side(snap, "the snapshot")?, side(live, "the live state")?);
        let (in_snap, in_live) = (
            matches!(snap_side, Lookup::Found),
            matches!(live_side, Lookup::Found),
        );
        if !in_snap && !in_live {
            return Err(refuse(
                p,
                "exists in neither the snapshot nor the live state".into(),
            ));
        }
        if let (true, Lookup::NotDir(l, kind)) = (in_snap, &live_side) {
            // The snapshot's directory there would have to replace it: that is restoring it.
            let l = super::display_path(l);
            return Err(refuse(
                p,
                format!(
                    "{l} is a {} in the live state; restore {l} instead",
                    kind.as_str()
                ),
            ));
        }
        plan.push((p, in_snap, in_live));
    }

    Ok(plan)
}

/// Replaces each of `paths` in the live tree at `live` with its copy from the snapshot
/// tree at `snap`, exactly (owners, modes, ns times, xattrs and ACLs, device nodes, hard
/// links among the restored entries); a path the snapshot lacks is removed from the live
/// tree. Everything else is left as it was, the parent directories' times included.
///
/// Checked before anything changes: every path must exist in the snapshot or the live
/// tree, must not be the root, must not lead through a symlink in either tree
/// (symlinks are never followed, so no path can leave the root), and must not lead
/// through a non-directory in the live tree when the snapshot has it (restore that
/// non-directory's path instead). A path under another
/// one given is covered by it.
///
/// All copies are made first, in `.cairn-restore.<pid>` under the live root; then each
/// path is swapped in with one `renameat2` (`RENAME_EXCHANGE` when the live tree has it);
/// if a swap fails the earlier ones are swapped back, so on error the live tree is as it
/// was. Where the filesystem takes no `renameat2` flags (ZFS before 2.2) a swap is three
/// plain renames ([`crate::layout::rename_exchange_or_emulate`]): not atomic per path, so
/// a crash in the middle of one can leave the live entry missing or replaced, with its
/// old content beside it as `<name>.cairn-xchg` (never in the staging directory). Missing parent directories are made as copies of the snapshot's. Hard links from
/// a restored file to a path that is not restored are not recreated (the file is copied).
/// The volume must not be in use.
pub fn restore_paths(snap: &Path, live: &Path, paths: &[TreePath]) -> Result<RestoreStats> {
    let plan = plan(snap, live, paths)?;
    let root_md = std::fs::symlink_metadata(live).ctx("stat", live)?;
    let tmp_name = format!(".cairn-restore.{}", std::process::id());
    let tmp = live.join(&tmp_name);
    copy::remove_tree(&tmp)?;
    std::fs::create_dir(&tmp).ctx("create", &tmp)?;
    let result = (|| {
        clear_default_acl(&tmp);
        let mut stats = RestoreStats::default();
        // Phase 1: every copy, into tmp/<i>/<name>.
        let mut copier = EntryCopier::new(live, CopyMode::Auto)?;
        for (i, (p, in_snap, _)) in plan.iter().enumerate() {
            let slot = tmp.join(i.to_string());
            std::fs::create_dir(&slot).ctx("create", &slot)?;
            if *in_snap {
                let parent = p.rel().parent().unwrap_or(Path::new(""));
                let name = p.rel().file_name().expect("not the root");
                let slot_rel = Path::new(&tmp_name).join(i.to_string());
                copier.copy(&snap.join(parent), name, &slot, &slot_rel)?;
            }
        }
        stats.copy = copier.stats();
        // Phase 2: swap each in (or the live entry out), undoably.
        let mut revert = Revert::new();
        let mut made: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (i, (p, in_snap, in_live)) in plan.iter().enumerate() {
            let r = swap(
                snap,
                live,
                &tmp,
                i,
                p,
                *in_snap,
                *in_live,
                &mut revert,
                &mut made,
            );
            match r {
                Ok(n) => {
                    stats.parents_created += n;
                    if *in_snap {
                        stats.restored += 1;
                    } else {
                        stats.removed += 1;
                    }
                }
                Err(e) => return Err(revert.fail(e)),
            }
        }
        revert.success();
        // Directories made for missing parents get the snapshot's times, deepest first.
        for (live_dir, snap_dir) in made.iter().rev() {
            let md = std::fs::symlink_metadata(snap_dir).ctx("stat", snap_dir)?;
            copy::set_times_like(live_dir, &md)?;
        }
        Ok(stats)
    })();
    let cleaned = copy::remove_tree(&tmp);
    let times = copy::set_times_like(live, &root_md);
    let stats = result?;
    cleaned?;
    times?;
    Ok(stats)
}

/// Swaps one planned path; returns how many parent directories it made.
#[allow(clippy::too_many_arguments)]
fn swap<'a>(
    snap: &'a Path,
    live: &'a Path,
    tmp: &Path,
    i: usize,
    p: &TreePath,
    in_snap: bool,
    in_live: bool,
    revert: &mut Revert<'a>,
    made: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<u64> {
    let parent = p.rel().parent().unwrap_or(Path::new(""));
    let name = p.rel().file_name().expect("not the root");
    let mut created = 0;
    // Missing parents: copies of the snapshot's directories (owner, xattrs, mode).
    let mut walked = PathBuf::new();
    for comp in parent.components() {
        walked.push(comp);
        let l = live.join(&walked);
        if std::fs::symlink_metadata(&l).is_ok() {
            continue;
        }
        let s = snap.join(&walked);
        make_dir_like(&s, &l)?;
        let undo = l.clone();
        revert.add("remove a parent made for restore", move || {
            std::fs::remove_dir(&undo).ctx("remove", &undo)
        });
        made.push((l, s));
        created += 1;
    }
    let live_parent = live.join(parent);
    let parent_md = std::fs::symlink_metadata(&live_parent).ctx("stat", &live_parent)?;
    let target = live_parent.join(name);
    let staged = tmp.join(i.to_string()).join(name);
    if in_snap && in_live {
        rename_exchange_or_emulate(&staged, &target).ctx("swap in", &target)?;
        let (a, b) = (staged.clone(), target.clone());
        revert.add("swap a restored path back", move || {
            rename_exchange_or_emulate(&a, &b).ctx("swap back", &b)
        });
    } else if in_snap {
        rename_noreplace_or_emulate(&staged, &target).ctx("put in place", &target)?;
        let (a, b) = (staged.clone(), target.clone());
        revert.add("take a restored path out", move || {
            rename_noreplace_or_emulate(&b, &a).ctx("take out", &b)
        });
    } else {
        rename_noreplace_or_emulate(&target, &staged).ctx("remove", &target)?;
        let (a, b) = (staged.clone(), target.clone());
        revert.add("put a removed path back", move || {
            rename_noreplace_or_emulate(&a, &b).ctx("put back", &b)
        });
    }
    if in_snap {
        // Some filesystems (xfs) touch a directory's mtime when a rename changes its `..`.
        let md = std::fs::symlink_metadata(snap.join(p.rel())).ctx("stat", snap.join(p.rel()))?;
        if md.is_dir() {
            copy::set_times_like(&target, &md)?;
        }
    }
    if !made.iter().any(|(l, _)| *l == live_parent) {
        copy::set_times_like(&live_parent, &parent_md)?;
    }
    Ok(created)
}

/// Makes the directory `dst` with the owner, xattrs and mode of `src` (times later).
fn make_dir_like(src: &Path, dst: &Path) -> Result<()> {
    let sfd = open_dir(src).ctx("open", src)?;
    let st = meta::fstat(std::os::fd::AsFd::as_fd(&sfd)).ctx("stat", src)?;
    let xattrs =
        meta::read_xattrs(Node::Fd(std::os::fd::AsFd::as_fd(&sfd))).ctx("read xattrs of", src)?;
    std::fs::create_dir(dst).ctx("create", dst)?;
    let dfd = open_dir(dst).ctx("open", dst)?;
    let node = Node::Fd(std::os::fd::AsFd::as_fd(&dfd));
    meta::drop_extra_xattrs(node, &xattrs).ctx("clear inherited xattrs of", dst)?;
    meta::apply(node, &st, &xattrs).map_err(|(op, e)| Error::io(op, dst, e))
}

fn open_dir(p: &Path) -> io::Result<OwnedFd> {
    let c = meta::cstr(p.as_os_str())?;
    meta::open_at(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// A default ACL inherited from the live root would otherwise reach the staged copies.
fn clear_default_acl(dir: &Path) {
    if let Ok(fd) = open_dir(dir) {
        let name = c"system.posix_acl_default";
        // SAFETY: valid fd and C string; failure (none set) is fine.
        unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) };
    }
}
