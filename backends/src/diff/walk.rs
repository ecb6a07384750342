//! The generic diff: both trees walked together, one directory pair at a time, names
//! merged in sorted order, every name resolved with `*at()` and never followed.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::candidates::Candidates;
use super::compare::{At, Comparer};
use super::{Change, EntryType, Method, Status, TreeDiff, What};
use crate::copy::meta;
use crate::error::{Error, Result};

/// Every difference from the tree at `a` to the tree at `b` (both directories).
pub fn walk(a: &Path, b: &Path) -> Result<TreeDiff> {
    let mut w = Walker::new(a, b);
    let (ra, rb) = (open_root(a)?, open_root(b)?);
    let mut rel = PathBuf::new();
    w.pair(At::Root(ra.as_raw_fd()), At::Root(rb.as_raw_fd()), &mut rel)?;
    w.dirs(ra.as_raw_fd(), rb.as_raw_fd(), &mut rel)?;
    Ok(w.finish(Method::Walk))
}

/// The differences from `a` to `b` at the paths `c` names (each path alone, or with
/// everything under it when `c` says so, or when it is a directory on one side only).
/// Paths present in neither tree are skipped. Same comparison as [`walk`], except that
/// content is not compared where `c` vouches for it ([`Candidates::data_unchanged`]).
///
/// A changed non-directory with other names (a link count above 1 on either side) means
/// those names changed too — its content, or their link count — and `c` may not name
/// them (a send stream names an inode by one of its paths). Finding them takes a walk:
/// then the whole trees are walked ([`walk`], [`Method::Walk`]), so the answer is always
/// the walk's.
pub fn compare_paths(a: &Path, b: &Path, c: &Candidates) -> Result<TreeDiff> {
    let mut w = Walker::new(a, b);
    w.track_links = true;
    let (ra, rb) = (open_root(a)?, open_root(b)?);
    // Candidates come in tree order, where everything under a path follows it directly:
    // a candidate is under an earlier covered subtree only if under the last one.
    let mut covered: Option<&Path> = None;
    for (path, subtree) in &c.paths {
        if let Some(p) = &w.linked_change {
            return linked_fallback(a, b, p);
        }
        if covered.is_some_and(|d| path.starts_with(d)) {
            continue;
        }
        let mut rel = path.clone();
        if path.as_os_str().is_empty() {
            let (fa, fb) = (ra.as_raw_fd(), rb.as_raw_fd());
            if w.pair(At::Root(fa), At::Root(fb), &mut rel)? == Paired::BothDirs && *subtree {
                w.dirs(fa, fb, &mut rel)?;
                covered = Some(path);
            }
            continue;
        }
        let name = meta::cstr(path.file_name().expect("a non-root path has a name"))
            .map_err(|e| Error::io("compare", a.join(path), e))?;
        let parent = path.parent().unwrap_or(Path::new(""));
        let pa = open_dir_below(ra.as_raw_fd(), parent)
            .map_err(|e| Error::io("open", a.join(parent), e))?;
        let pb = open_dir_below(rb.as_raw_fd(), parent)
            .map_err(|e| Error::io("open", b.join(parent), e))?;
        let sa = match &pa {
            Some(d) => {
                stat_opt(d.as_raw_fd(), &name).map_err(|e| Error::io("stat", a.join(path), e))?
            }
            None => None,
        };
        let sb = match &pb {
            Some(d) => {
                stat_opt(d.as_raw_fd(), &name).map_err(|e| Error::io("stat", b.join(path), e))?
            }
            None => None,
        };
        match (pa, sa, pb, sb) {
            (Some(da), Some(sa), Some(db), Some(sb)) => {
                let paired = w.pair_with(
                    (At::Name(da.as_raw_fd(), &name), &sa),
                    (At::Name(db.as_raw_fd(), &name), &sb),
                    &mut rel,
                    c.data_unchanged(path),
                )?;
                match paired {
                    Paired::BothDirs if *subtree => {
                        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
                        let fa = meta::open_at(da.as_raw_fd(), &name, flags, 0)
                            .map_err(|e| Error::io("open", a.join(path), e))?;
                        let fb = meta::open_at(db.as_raw_fd(), &name, flags, 0)
                            .map_err(|e| Error::io("open", b.join(path), e))?;
                        w.dirs(fa.as_raw_fd(), fb.as_raw_fd(), &mut rel)?;
                        covered = Some(path);
                    }
                    Paired::Expanded => covered = Some(path),
                    _ => {}
                }
            }
            (Some(da), Some(sa), _, _) => {
                let mut at = parent.to_path_buf();
                w.one_side(
                    da.as_raw_fd(),
                    &name,
                    Known::Stat(sa),
                    Status::Deleted,
                    &mut at,
                )?;
                covered = Some(path);
            }
            (_, _, Some(db), Some(sb)) => {
                let mut at = parent.to_path_buf();
                w.one_side(
                    db.as_raw_fd(),
                    &name,
                    Known::Stat(sb),
                    Status::Added,
                    &mut at,
                )?;
                covered = Some(path);
            }
            _ => {}
        }
    }
    if let Some(p) = &w.linked_change {
        return linked_fallback(a, b, p);
    }
    Ok(w.finish(Method::BtrfsSend))
}

/// [`compare_paths`] found a changed file with other names at `path`: the walk.
fn linked_fallback(a: &Path, b: &Path, path: &Path) -> Result<TreeDiff> {
    tracing::debug!(
        path = %path.display(),
        "a changed file has other names the candidates may not give; walking both trees"
    );
    walk(a, b)
}

fn open_root(p: &Path) -> Result<OwnedFd> {
    let c = meta::cstr(p.as_os_str()).map_err(|e| Error::io("open", p, e))?;
    meta::open_at(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| Error::io("open tree to compare", p, e))
}

/// Opens the directory `rel` under `root` one component at a time, never following a
/// symlink. `None` when a component is missing or is not a directory.
pub(crate) fn open_dir_below(root: RawFd, rel: &Path) -> io::Result<Option<OwnedFd>> {
    let mut cur = meta::open_at(root, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for comp in rel.components() {
        let name = meta::cstr(comp.as_os_str())?;
        match meta::open_at(
            cur.as_raw_fd(),
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        ) {
            Ok(fd) => cur = fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Some(cur))
}

fn stat_opt(dir: RawFd, name: &CStr) -> io::Result<Option<libc::stat64>> {
    match meta::stat_at(dir, name) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn stat(at: At<'_>) -> io::Result<libc::stat64> {
    match at {
        At::Name(dir, name) => meta::stat_at(dir, name),
        // SAFETY: the walker holds the fd open.
        At::Root(fd) => meta::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }),
    }
}

/// The entries of a directory (not `.`/`..`), sorted by name, with the type `getdents`
/// gives when it gives one.
fn list(dir: RawFd) -> io::Result<Vec<(CString, Option<EntryType>)>> {
    let fd = meta::open_at(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut d = nix::dir::Dir::from_fd(fd).map_err(io::Error::from)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(io::Error::from)?;
        let n = e.file_name();
        if n.to_bytes() == b"." || n.to_bytes() == b".." {
            continue;
        }
        use nix::dir::Type;
        let t = e.file_type().map(|t| match t {
            Type::Directory => EntryType::Dir,
            Type::Symlink => EntryType::Symlink,
            Type::CharacterDevice | Type::BlockDevice => EntryType::Device,
            Type::Fifo => EntryType::Fifo,
            Type::Socket => EntryType::Socket,
            Type::File => EntryType::File,
        });
        out.push((n.to_owned(), t));
    }
    out.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    Ok(out)
}

/// What [`Walker::pair_with`] found of a path present on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paired {
    /// Directories on both sides, of the same type: the caller may descend.
    BothDirs,
    /// The type changed and the directory side's subtree was recorded: nothing under the
    /// path is left to compare.
    Expanded,
    /// Anything else.
    Leaf,
}

/// What is known of a one-sided entry before it is recorded.
#[derive(Clone, Copy)]
enum Known {
    /// Its `stat`.
    Stat(libc::stat64),
    /// Its type, from `getdents`.
    Type(EntryType),
    /// Nothing (`getdents` gave no type).
    Nothing,
}

impl From<Option<EntryType>> for Known {
    fn from(t: Option<EntryType>) -> Known {
        t.map_or(Known::Nothing, Known::Type)
    }
}

struct Walker<'a> {
    a: &'a Path,
    b: &'a Path,
    cmp: Comparer,
    out: Vec<Change>,
    /// Note changed non-directories that have other names ([`compare_paths`]).
    track_links: bool,
    /// The first such path seen, when tracked.
    linked_change: Option<PathBuf>,
}

impl<'a> Walker<'a> {
    fn new(a: &'a Path, b: &'a Path) -> Self {
        Walker {
            a,
            b,
            cmp: Comparer::default(),
            out: Vec::new(),
            track_links: false,
            linked_change: None,
        }
    }

    /// Notes the change at `rel` of an entry whose `st_mode` is `mode` and link count
    /// `nlink` on one side, if it is a non-directory with other names.
    fn note_links(&mut self, rel: &Path, mode: u32, nlink: libc::nlink_t) {
        if self.track_links
            && self.linked_change.is_none()
            && EntryType::of_mode(mode) != EntryType::Dir
            && nlink > 1
        {
            self.linked_change = Some(rel.to_path_buf());
        }
    }

    fn finish(self, method: Method) -> TreeDiff {
        TreeDiff {
            changes: self.out,
            method,
            hashed: self.cmp.hashed,
        }
    }

    fn err(&self, op: &'static str, second: bool, rel: &Path, e: io::Error) -> Error {
        let root = if second { self.b } else { self.a };
        Error::io(op, root.join(rel), e)
    }

    /// Compares the path `rel`, present on both sides; records a change and, where the
    /// type changed, the subtree of the side that is a directory.
    fn pair(&mut self, a: At<'_>, b: At<'_>, rel: &mut PathBuf) -> Result<Paired> {
        let sa = stat(a).map_err(|e| self.err("stat", false, rel, e))?;
        let sb = stat(b).map_err(|e| self.err("stat", true, rel, e))?;
        self.pair_with((a, &sa), (b, &sb), rel, false)
    }

    /// [`Walker::pair`] with both sides' `stat` known; `data_same`: the caller knows the
    /// content is unchanged.
    fn pair_with(
        &mut self,
        (a, sa): (At<'_>, &libc::stat64),
        (b, sb): (At<'_>, &libc::stat64),
        rel: &mut PathBuf,
        data_same: bool,
    ) -> Result<Paired> {
        let changes = self
            .cmp
            .changes(a, sa, b, sb, data_same)
            .map_err(|(op, second, e)| self.err(op, second, rel, e))?;
        let (ta, tb) = (
            EntryType::of_mode(sa.st_mode),
            EntryType::of_mode(sb.st_mode),
        );
        // The answer unless the type changed (then the subtree is expanded here).
        let not_expanded = if ta == EntryType::Dir && tb == EntryType::Dir {
            Paired::BothDirs
        } else {
            Paired::Leaf
        };
        if changes.is_empty() {
            return Ok(not_expanded);
        }
        self.note_links(rel, sa.st_mode, sa.st_nlink);
        self.note_links(rel, sb.st_mode, sb.st_nlink);
        let type_changed = changes.contains(&What::Type);
        self.out.push(Change {
            path: rel.clone(),
            status: Status::Modified,
            kind: tb,
            old_type: (ta != tb).then_some(ta),
            changes,
        });
        if !type_changed {
            return Ok(not_expanded);
        }
        for (at, t, status) in [(a, ta, Status::Deleted), (b, tb, Status::Added)] {
            if t == EntryType::Dir {
                let fd = match at {
                    At::Name(dir, name) => {
                        meta::open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    }
                    At::Root(fd) => meta::open_at(fd, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0),
                }
                .map_err(|e| self.err("open", status == Status::Added, rel, e))?;
                self.subtree(fd.as_raw_fd(), status, rel)?;
            }
        }
        Ok(Paired::Expanded)
    }

    /// Merges the entries of two directories that stand at `rel` on each side.
    fn dirs(&mut self, da: RawFd, db: RawFd, rel: &mut PathBuf) -> Result<()> {
        let la = list(da).map_err(|e| self.err("read directory", false, rel, e))?;
        let lb = list(db).map_err(|e| self.err("read directory", true, rel, e))?;
        let (mut i, mut j) = (0, 0);
        while i < la.len() || j < lb.len() {
            let ord = match (la.get(i), lb.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    let (n, t) = &la[i];
                    self.one_side(da, n, Known::from(*t), Status::Deleted, rel)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let (n, t) = &lb[j];
                    self.one_side(db, n, Known::from(*t), Status::Added, rel)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let n = &la[i].0;
                    rel.push(OsStr::from_bytes(n.to_bytes()));
                    let r = self.pair_and_descend(da, db, n, rel);
                    rel.pop();
                    r?;
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    fn pair_and_descend(
        &mut self,
        da: RawFd,
        db: RawFd,
        n: &CStr,
        rel: &mut PathBuf,
    ) -> Result<()> {
        if self.pair(At::Name(da, n), At::Name(db, n), rel)? == Paired::BothDirs {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let fa = meta::open_at(da, n, flags, 0).map_err(|e| self.err("open", false, rel, e))?;
            let fb = meta::open_at(db, n, flags, 0).map_err(|e| self.err("open", true, rel, e))?;
            self.dirs(fa.as_raw_fd(), fb.as_raw_fd(), rel)?;
        }
        Ok(())
    }

    /// Records `name` in `dir` (relative to `rel`'s directory) as added or deleted, and
    /// everything under it.
    fn one_side(
        &mut self,
        dir: RawFd,
        name: &CStr,
        known: Known,
        status: Status,
        rel: &mut PathBuf,
    ) -> Result<()> {
        rel.push(OsStr::from_bytes(name.to_bytes()));
        let r = (|| {
            let second = status == Status::Added;
            let kind = match known {
                // Tracking links: a non-directory's link count is needed.
                Known::Type(k) if k == EntryType::Dir || !self.track_links => k,
                _ => {
                    let st = match known {
                        Known::Stat(st) => st,
                        _ => meta::stat_at(dir, name)
                            .map_err(|e| self.err("stat", second, rel, e))?,
                    };
                    self.note_links(rel, st.st_mode, st.st_nlink);
                    EntryType::of_mode(st.st_mode)
                }
            };
            self.out.push(Change {
                path: rel.clone(),
                status,
                kind,
                old_type: None,
                changes: Vec::new(),
            });
            if kind == EntryType::Dir {
                let fd = meta::open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(|e| self.err("open", second, rel, e))?;
                self.subtree(fd.as_fd().as_raw_fd(), status, rel)?;
            }
            Ok(())
        })();
        rel.pop();
        r
    }

    /// Records every entry under the directory `dir` (at `rel`) as added or deleted.
    fn subtree(&mut self, dir: RawFd, status: Status, rel: &mut PathBuf) -> Result<()> {
        let entries =
            list(dir).map_err(|e| self.err("read directory", status == Status::Added, rel, e))?;
        for (n, t) in entries {
            self.one_side(dir, &n, Known::from(t), status, rel)?;
        }
        Ok(())
    }
}
