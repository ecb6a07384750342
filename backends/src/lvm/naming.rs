//! How cairn's names become LVM names and tags, and back.
//!
//! LVM allows `[A-Za-z0-9+_.-]` in VG and LV names and a few more characters in tags,
//! while our names are any UTF-8 without `/`, `@`, whitespace or control characters. So:
//! - [`encode`] keeps `[A-Za-z0-9+.]` and writes every other byte as `_xx` (two lowercase
//!   hex digits, `_` itself included): reversible by [`decode`], and never contains `-`,
//!   which is therefore a safe separator.
//! - An LV name is `<prefix><kind>-<encoded volume>[-<encoded snapshot>]`; when that
//!   would be too long for device-mapper, the encoded part becomes `_h` + 32 hex digits
//!   of a BLAKE3 hash (`_h` never occurs in an encoding). Lookups compute the name.
//! - The real names are kept in tags (`cairn-v=`, `cairn-s=`, encoded), so listings give
//!   them back even when the LV name is hashed.

use std::path::Path;

use crate::names::state_dir_hash;

/// Tag on every VG, thin pool and LV cairn makes.
pub const TAG: &str = "cairn";
/// Tag on an object still being built; `mount_pool` deletes LVs that carry it.
pub const TAG_INCOMPLETE: &str = "cairn-incomplete";
/// Tag key: the pool an object belongs to ([`pool_tag`]: encoded pool name and state
/// directory hash).
pub const KEY_POOL: &str = "cairn-pool";
/// Tag key: the volume (encoded).
pub const KEY_VOLUME: &str = "cairn-v";
/// Tag key: the snapshot (encoded); present only on snapshots.
pub const KEY_SNAPSHOT: &str = "cairn-s";
/// Tag key: creation time, nanoseconds since the epoch.
pub const KEY_TIME: &str = "cairn-t";
/// Tag key: a received snapshot's identity (encoded), the sender's; a snapshot without
/// it is identified by its LV UUID. Incremental streams name their base by it.
pub const KEY_ID: &str = "cairn-id";

/// The longest device-mapper name (`DM_NAME_LEN` is 128 with the NUL), minus room for
/// LVM's own suffixes (`_tdata`, `-real`...).
const MAX_DM_NAME: usize = 110;

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'.'
}

/// LVM-safe and reversible: see the module docs.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for anything `encode` cannot have produced.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if keep(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The device-mapper name of `vg/lv`: each `-` doubled, joined by `-`.
pub fn dm_name(vg: &str, lv: &str) -> String {
    format!("{}-{}", vg.replace('-', "--"), lv.replace('-', "--"))
}

fn hashed(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    format!("_h{}", &h.finalize().to_hex()[..32])
}

/// An LV name `<prefix><kind>-<parts encoded, joined by '-'>`, hashed when too long for
/// device-mapper inside `vg`.
pub fn lv_name(vg: &str, prefix: &str, kind: &str, parts: &[&str]) -> String {
    let plain = format!(
        "{prefix}{kind}-{}",
        parts
            .iter()
            .map(|p| encode(p))
            .collect::<Vec<_>>()
            .join("-")
    );
    if dm_name(vg, &plain).len() <= MAX_DM_NAME {
        plain
    } else {
        format!("{prefix}{kind}-{}", hashed(parts))
    }
}

/// The VG cairn creates for a pool: `cairn_<encoded pool name>_<8 hex of the state
/// directory>`, so two pools of the same name (two state directories) never share one.
/// A long pool name is hashed.
pub fn vg_name(pool: &str, state_dir: &Path) -> String {
    let enc = encode(pool);
    let enc = if enc.len() > 48 {
        hashed(&[pool])[..18].to_string()
    } else {
        enc
    };
    format!("cairn_{enc}_{}", state_dir_hash(state_dir))
}

/// The tag on a pool's VG, thin pool and LVs: `cairn-pool=<encoded pool name>-<8 hex of
/// the state directory>`. Two pools of the same name in one existing thin pool differ by
/// their state directory, so neither takes the other's LVs for its own (`-` never occurs
/// in an encoding).
pub fn pool_tag(pool: &str, state_dir: &Path) -> String {
    format!("{}-{}", tag(KEY_POOL, pool), state_dir_hash(state_dir))
}

/// The prefix of a pool's LV names in an existing thin pool's VG, shared with LVs that
/// are not cairn's: `cairn.<8 hex of the pool name>.<8 hex of the state directory>.`.
pub fn lv_prefix(pool: &str, state_dir: &Path) -> String {
    let pool = blake3::hash(pool.as_bytes()).to_hex();
    format!("cairn.{}.{}.", &pool[..8], state_dir_hash(state_dir))
}

/// `key=<encoded value>`.
pub fn tag(key: &str, value: &str) -> String {
    format!("{key}={}", encode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_is_lvm_safe() {
        for s in ["web1", "a-b_c", "x.y+z", "ünïcode", "a:b", "_h", "%&#"] {
            let e = encode(s);
            assert!(
                e.bytes().all(|b| keep(b) || b == b'_'),
                "{s:?} -> {e:?} is not LVM-safe"
            );
            assert!(!e.contains('-'));
            assert_eq!(decode(&e).as_deref(), Some(s));
        }
        assert_eq!(encode("a-b_c"), "a_2db_5fc");
        assert_eq!(decode("a_2"), None);
        assert_eq!(decode("a_zz"), None);
        assert_eq!(decode("a-b"), None);
        assert_eq!(decode("_ff"), None, "not UTF-8");
    }

    #[test]
    fn lv_names_fit_device_mapper() {
        let vg = "cairn_p1_0123abcd";
        assert_eq!(lv_name(vg, "", "v", &["web"]), "v-web");
        assert_eq!(lv_name(vg, "", "s", &["web", "s-1"]), "s-web-s_2d1");
        let long = "x".repeat(200);
        let n = lv_name(vg, "", "s", &[&long, "s"]);
        assert!(n.starts_with("s-_h") && n.len() == 4 + 32, "{n}");
        assert!(dm_name(vg, &n).len() <= MAX_DM_NAME);
        assert_ne!(n, lv_name(vg, "", "s", &[&long, "t"]));
        assert_eq!(n, lv_name(vg, "", "s", &[&long, "s"]), "deterministic");
        assert_eq!(dm_name("a-b", "c-d"), "a--b-c--d");
    }

    #[test]
    fn vg_names_differ_by_state_dir() {
        let a = vg_name("p1", Path::new("/var/lib/a"));
        let b = vg_name("p1", Path::new("/var/lib/b"));
        assert!(a.starts_with("cairn_p1_") && a.len() == 17, "{a}");
        assert_ne!(a, b);
        let long = vg_name(&"ü".repeat(100), Path::new("/x"));
        assert!(long.len() < 40, "{long}");
        assert_eq!(tag(KEY_VOLUME, "a b"), "cairn-v=a_20b");
    }

    #[test]
    fn pool_tags_and_prefixes_differ_by_state_dir() {
        let (a, b) = (Path::new("/var/lib/a"), Path::new("/var/lib/b"));
        let tag_a = pool_tag("p-1", a);
        assert_eq!(tag_a, format!("cairn-pool=p_2d1-{}", state_dir_hash(a)));
        assert_ne!(tag_a, pool_tag("p-1", b));
        assert_ne!(tag_a, pool_tag("p-2", a));
        let prefix = lv_prefix("p1", a);
        assert!(
            prefix.starts_with("cairn.") && prefix.ends_with('.'),
            "{prefix}"
        );
        assert_eq!(prefix.len(), 6 + 8 + 1 + 8 + 1);
        assert_ne!(prefix, lv_prefix("p1", b));
        assert_ne!(prefix, lv_prefix("p2", a));
    }
}
