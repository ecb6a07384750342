//! Printing results: aligned tables for people, JSON for scripts.
//!
//! The JSON shapes are a contract (documented in the README):
//! - `list`: array of `{name, pool, image, created_at}`;
//! - `snapshot list`: array of `{name, created_at, labels, origin, expires_at, held,
//!   hold_reason}`; `snapshot show`: one of them;
//! - `info`: `{name, pool, image, created_at, rootfs, usage, snapshots}`;
//! - `image list`: array of `{fingerprint, aliases, description, architecture,
//!   created_at, imported_at, size, format, compression, properties, pools}`;
//!   `image show`/`image import`: one of them;
//! - `pool list`: array of `{name, driver, source, created_at}`; `pool show` adds
//!   `state_dir, capabilities, usage, containers, images`;
//! - `check`: array of `{object, problem, repair, repaired}`;
//! - `restore`: `{container, target_time, snapshot, snapshot_created_at, safety_snapshot,
//!   dry_run}`; `policy list`: array of `{target, schedule, keep, grid, pre_hook,
//!   post_hook, updated_at}` (`target` `*` is `--all`); `policy show`/`set`: one of them;
//!   `policy plan`: `{container, at, policy, plan, simulation, survivors}`; `policy log`:
//!   array of `{at, container, snapshot, created_at, rule}`.
//!
//! Times are RFC 3339 in UTC; `image` is a full fingerprint or null.

use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("output values serialise")
    );
}

/// Renders rows under headers, columns padded to the widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let s: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s.join("  ").trim_end().to_string()
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// Key/value lines for `show` and `info`.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

/// A time as RFC 3339 UTC, to the second, for tables.
pub fn time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_trims_line_ends() {
        let t = table(
            &["NAME", "POOL"],
            &[
                vec!["web1".into(), "default".into()],
                vec!["a".into(), "".into()],
            ],
        );
        assert_eq!(t, "NAME  POOL\nweb1  default\na\n");
    }

    #[test]
    fn times_are_utc_seconds() {
        assert_eq!(time(jiff::Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
