//! cairn names ↔ ZFS dataset and snapshot name components, and the pool's dataset paths.
//!
//! ZFS allows `[A-Za-z0-9_.:-]` (and, from 2.2, space) in a component; cairn names are any
//! UTF-8 without `/`, `@`, whitespace or control characters. So a component is the name
//! with every byte outside `[A-Za-z0-9_.-]` written `:XX` (upper-case hex): reversible,
//! and `:` never appears otherwise. An encoding longer than [`MAX_COMPONENT`] becomes
//! `:h` + 32 hex digits of the name's BLAKE3 hash (the real name is then only in the
//! `cairn:name` user property, which every object carries anyway). Names that start with
//! `:t` are the driver's own hidden objects (a clone's origin snapshot, a snapshot
//! waiting for its clones to go): no cairn name encodes to them (`t` is not a hex digit).

use crate::names::{state_dir_hash, SnapshotName, VolumeName};

/// The longest component we make: keeps `<root>/volumes/<vol>/h.<id>@<snap>` under
/// ZFS's 255 bytes for roots up to ~100 bytes.
pub const MAX_COMPONENT: usize = 64;

/// The prefix of hidden snapshots (never listed).
pub const HIDDEN: &str = ":t";

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// The ZFS component for a cairn name (see the module docs).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!(":{b:02X}"));
        }
    }
    if out.len() > MAX_COMPONENT {
        let hash = blake3::hash(name.as_bytes());
        format!(":h{}", &hash.to_hex()[..32])
    } else {
        out
    }
}

/// What a component says about the name it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The cairn name, recovered from the component itself.
    Name(String),
    /// A hashed long name: only the `cairn:name` property knows it.
    Hashed,
    /// One of the driver's own objects, or something cairn did not make.
    Foreign,
}

/// Reverses [`encode`].
pub fn decode(component: &str) -> Decoded {
    if component.starts_with(":h") {
        return Decoded::Hashed;
    }
    let b = component.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b':' {
            let hex = component.get(i + 1..i + 3).filter(|h| {
                h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            });
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) if !is_plain(v) => out.push(v),
                _ => return Decoded::Foreign,
            }
            i += 3;
        } else if is_plain(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return Decoded::Foreign;
        }
    }
    match String::from_utf8(out) {
        Ok(s) if encode(&s) == component => Decoded::Name(s),
        _ => Decoded::Foreign,
    }
}

/// The cairn name of an object: its component decoded, else the `cairn:name` property
/// when it hashes to the component. `None`: not a cairn object (or a hidden one).
pub fn name_of(component: &str, prop: Option<&str>) -> Option<String> {
    match decode(component) {
        Decoded::Name(n) => Some(n),
        Decoded::Hashed => prop.filter(|p| encode(p) == component).map(str::to_string),
        Decoded::Foreign => None,
    }
}

/// The datasets of one pool, below its root dataset.
///
/// ```text
/// <root>                          cairn:managed=<pool name>, mountpoint=legacy
/// <root>/volumes/<vol>            one container per volume (never mounted)
/// <root>/volumes/<vol>/live       the live state
/// <root>/volumes/<vol>/h.<id>     history: snapshots kept across restores and receives
/// <root>/volumes/<vol>/new.<id>   a restore in progress (rolled forward by mount_pool)
/// <root>/tmp/<id>                 volumes being built, renamed into volumes/ when whole
/// <root>/deleted/<id>             deleted volumes whose snapshots still have clones
/// ```
#[derive(Debug, Clone)]
pub struct Datasets {
    pub root: String,
}

impl Datasets {
    pub fn volumes(&self) -> String {
        format!("{}/volumes", self.root)
    }
    pub fn container(&self, v: &VolumeName) -> String {
        format!("{}/volumes/{}", self.root, encode(v.as_str()))
    }
    pub fn live(&self, v: &VolumeName) -> String {
        format!("{}/live", self.container(v))
    }
    pub fn tmp(&self) -> String {
        format!("{}/tmp", self.root)
    }
    pub fn deleted(&self) -> String {
        format!("{}/deleted", self.root)
    }
}

/// The ZFS component of a snapshot name.
pub fn snap_component(s: &SnapshotName) -> String {
    encode(s.as_str())
}

/// A fresh identifier for temporary and history datasets: unique across processes.
pub fn fresh_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        ns,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The zpool name for a pool cairn creates: `cairn-<name>-<hash of the state dir>` (the
/// hash keeps pools of the same name in different state directories apart); only the
/// characters zpool allows, starting with a letter.
pub fn zpool_name(pool: &str, state_dir: &std::path::Path) -> String {
    let clean: String = pool
        .bytes()
        .filter(|b| is_plain(*b))
        .take(40)
        .map(|b| b as char)
        .collect();
    format!("cairn-{clean}-{}", state_dir_hash(state_dir))
}
