//! Pure parsers of `zfs`/`zpool` output (always `-H -p`: tab-separated, exact numbers)
//! and of a send stream's first record, tested on captured output in `tests/fixtures/`.

use crate::error::{Error, Result};

fn bad(what: &str, reason: String) -> Error {
    Error::Invalid {
        op: "parse",
        object: what.to_string(),
        reason,
    }
}

/// Splits `-H` output into rows of exactly `cols` tab-separated fields.
pub fn rows(text: &str, cols: usize, what: &str) -> Result<Vec<Vec<String>>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            if fields.len() == cols {
                Ok(fields)
            } else {
                Err(bad(
                    what,
                    format!("expected {cols} tab-separated fields, got {line:?}"),
                ))
            }
        })
        .collect()
}

/// A `-p` number; `-` (not applicable / not set) is `None`.
pub fn number(field: &str, what: &str) -> Result<Option<u64>> {
    if field == "-" {
        return Ok(None);
    }
    field
        .parse()
        .map(Some)
        .map_err(|_| bad(what, format!("expected a number, got {field:?}")))
}

/// A user property: `-` means unset.
pub fn user_prop(field: &str) -> Option<&str> {
    (field != "-").then_some(field)
}

/// One snapshot, from `zfs list -t snapshot -o` [`SNAP_COLS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapRow {
    /// The full name `<dataset>@<component>`.
    pub dataset: String,
    pub component: String,
    pub guid: u64,
    pub createtxg: u64,
    /// Seconds (the `creation` property).
    pub creation: u64,
    /// `cairn:created_at`, nanoseconds.
    pub created_at_ns: Option<u128>,
    pub cairn_name: Option<String>,
    pub defer_destroy: bool,
    pub userrefs: u64,
    /// Datasets cloned from this snapshot.
    pub clones: Vec<String>,
}

pub const SNAP_COLS: &str =
    "name,guid,createtxg,creation,cairn:created_at,cairn:name,defer_destroy,userrefs,clones";

pub fn parse_snapshots(text: &str) -> Result<Vec<SnapRow>> {
    const WHAT: &str = "zfs list -t snapshot output";
    rows(text, 9, WHAT)?
        .iter()
        .map(|f| snap_row(f, WHAT))
        .collect()
}

/// A snapshot from its first 9 fields, [`SNAP_COLS`].
fn snap_row(f: &[String], what: &str) -> Result<SnapRow> {
    let (dataset, component) = f[0]
        .split_once('@')
        .ok_or_else(|| bad(what, format!("{:?} is not a snapshot name", f[0])))?;
    let num = |i: usize| -> Result<u64> {
        number(&f[i], what)?.ok_or_else(|| bad(what, format!("no value in {f:?}")))
    };
    Ok(SnapRow {
        dataset: dataset.to_string(),
        component: component.to_string(),
        guid: num(1)?,
        createtxg: num(2)?,
        creation: num(3)?,
        created_at_ns: user_prop(&f[4]).and_then(|v| v.parse().ok()),
        cairn_name: user_prop(&f[5]).map(str::to_string),
        defer_destroy: f[6] == "on",
        userrefs: number(&f[7], what)?.unwrap_or(0),
        clones: user_prop(&f[8])
            .map(|c| c.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

/// One filesystem, from `zfs list -t filesystem -o` [`FS_COLS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsRow {
    pub name: String,
    pub cairn_name: Option<String>,
    pub created_at_ns: Option<u128>,
    /// Seconds.
    pub creation: u64,
    /// `cairn:managed` as this dataset sees it (set on the root, inherited below it);
    /// only [`parse_listing`] reads it.
    pub managed: Option<String>,
}

pub const FS_COLS: &str = "name,cairn:volume,cairn:volume_created_at,creation";

pub fn parse_filesystems(text: &str) -> Result<Vec<FsRow>> {
    const WHAT: &str = "zfs list -t filesystem output";
    rows(text, 4, WHAT)?
        .into_iter()
        .map(|f| {
            Ok(FsRow {
                name: f[0].clone(),
                cairn_name: user_prop(&f[1]).map(str::to_string),
                created_at_ns: user_prop(&f[2]).and_then(|v| v.parse().ok()),
                creation: number(&f[3], WHAT)?.unwrap_or(0),
                managed: None,
            })
        })
        .collect()
}

/// The one listing most operations make: `zfs list -t filesystem,snapshot -o`
/// [`LIST_COLS`]: [`SNAP_COLS`], then the filesystem's `cairn:volume` and
/// `cairn:volume_created_at`, then `cairn:managed`. A filesystem row has `-` where a
/// field is a snapshot's only (and the other way round).
pub const LIST_COLS: &str = "name,guid,createtxg,creation,cairn:created_at,cairn:name,\
                             defer_destroy,userrefs,clones,cairn:volume,\
                             cairn:volume_created_at,cairn:managed";

/// The filesystems and snapshots of one listing, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub filesystems: Vec<FsRow>,
    pub snapshots: Vec<SnapRow>,
}

pub fn parse_listing(text: &str) -> Result<Listing> {
    const WHAT: &str = "zfs list -t filesystem,snapshot output";
    let mut out = Listing::default();
    for f in rows(text, 12, WHAT)? {
        if f[0].contains('@') {
            out.snapshots.push(snap_row(&f, WHAT)?);
        } else {
            out.filesystems.push(FsRow {
                name: f[0].clone(),
                cairn_name: user_prop(&f[9]).map(str::to_string),
                created_at_ns: user_prop(&f[10]).and_then(|v| v.parse().ok()),
                creation: number(&f[3], WHAT)?.unwrap_or(0),
                managed: user_prop(&f[11]).map(str::to_string),
            });
        }
    }
    Ok(out)
}

/// `zfs list -o name,used,available,referenced,cairn:managed <ds>...`: per dataset, its
/// three numbers and the marker it sees.
pub fn parse_space_rows(text: &str) -> Result<Vec<SpaceRow>> {
    const WHAT: &str = "zfs list -o name,used,available,referenced,cairn:managed output";
    rows(text, 5, WHAT)?
        .into_iter()
        .map(|f| {
            let n = |i: usize| number(&f[i], WHAT).map(Option::unwrap_or_default);
            Ok(SpaceRow {
                used: n(1)?,
                available: n(2)?,
                referenced: n(3)?,
                managed: user_prop(&f[4]).map(str::to_string),
                name: f[0].clone(),
            })
        })
        .collect()
}

/// One row of [`parse_space_rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceRow {
    pub name: String,
    pub used: u64,
    pub available: u64,
    pub referenced: u64,
    pub managed: Option<String>,
}

/// `zfs get -H -p -o value,source <prop> <ds>`: the value and whether it is set locally
/// (or received) rather than inherited or default.
pub fn parse_get_local(text: &str) -> Result<(Option<String>, bool)> {
    const WHAT: &str = "zfs get -o value,source output";
    let r = rows(text, 2, WHAT)?;
    let [f] = r.as_slice() else {
        return Err(bad(WHAT, format!("expected one line, got {}", r.len())));
    };
    let local = f[1] == "local" || f[1] == "received";
    Ok((user_prop(&f[0]).map(str::to_string), local))
}

/// What a `zfs send` stream is, from its first record (`DRR_BEGIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    pub to_guid: u64,
    /// The sent snapshot's creation time, seconds: `zfs receive` gives it to the
    /// snapshot it makes (its `creation`).
    pub creation_time: u64,
    /// The base snapshot's GUID of an incremental stream.
    pub from_guid: Option<u64>,
}

const DMU_BACKUP_MAGIC: u64 = 0x2F5BACBAC;

/// Parses the `dmu_replay_record` at the start of a stream: `drr_type` (0 = BEGIN),
/// payload length, then `drr_begin`: magic, versioninfo, `drr_creation_time` at byte 24,
/// objset type and flags, `drr_toguid` at byte 40 and `drr_fromguid` at byte 48. Either byte order (the
/// magic tells). `None` until 56 bytes are there.
pub fn parse_stream_header(head: &[u8]) -> Option<std::result::Result<StreamHeader, String>> {
    if head.len() < 56 {
        return None;
    }
    let word = |at: usize, swap: bool| {
        let v = u64::from_le_bytes(head[at..at + 8].try_into().unwrap());
        if swap {
            v.swap_bytes()
        } else {
            v
        }
    };
    let swap = match word(8, false) {
        DMU_BACKUP_MAGIC => false,
        m if m.swap_bytes() == DMU_BACKUP_MAGIC => true,
        _ => return Some(Err("not a zfs send stream (bad magic)".into())),
    };
    let ty = u32::from_le_bytes(head[0..4].try_into().unwrap());
    if (if swap { ty.swap_bytes() } else { ty }) != 0 {
        return Some(Err("the stream does not start with a BEGIN record".into()));
    }
    let from = word(48, swap);
    Some(Ok(StreamHeader {
        to_guid: word(40, swap),
        creation_time: word(24, swap),
        from_guid: (from != 0).then_some(from),
    }))
}
