//! Durations as users write them: `30s`, `90m`, `2h`, `3d`, `1w`, and sums such as
//! `1h30m`. A day is 24 hours and a week 7 days, exactly (no calendar arithmetic), as in
//! LXD's `snapshots.expiry` and zrepl's grid.

use jiff::SignedDuration;

use crate::error::{Error, Result};

/// The units, their seconds and their names.
const UNITS: &[(char, i64, &str)] = &[
    ('s', 1, "second"),
    ('m', 60, "minute"),
    ('h', 3600, "hour"),
    ('d', 86_400, "day"),
    ('w', 604_800, "week"),
];

/// Parses a non-negative duration: one or more `<number><unit>` groups, unit one of
/// `s m h d w`. The error quotes the group that is wrong.
pub fn parse_duration(input: &str) -> Result<SignedDuration> {
    duration_problem(input).map_err(|problem| Error::duration(input, problem))
}

/// Parses a duration that must be longer than zero.
pub fn parse_positive_duration(input: &str) -> Result<SignedDuration> {
    positive_duration_problem(input).map_err(|problem| Error::duration(input, problem))
}

/// [`parse_duration`] with only the problem as the error, for parsers that report a
/// duration inside a larger input (`2x-ago`, a grid's `24x1y`, `within=0d`) under their
/// own name.
pub(crate) fn duration_problem(input: &str) -> std::result::Result<SignedDuration, String> {
    if input.is_empty() {
        return Err("empty; write a number and a unit, e.g. 7d or 1h30m".into());
    }
    let mut total: i64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let group_end = digits + rest[digits..].chars().next().map_or(0, char::len_utf8);
        let group = &rest[..group_end];
        if digits == 0 {
            return Err(format!("{group:?}: expected a number before the unit"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{group:?}: number too large"))?;
        let Some(unit) = rest[digits..].chars().next() else {
            return Err(format!("{group:?}: missing unit; use s, m, h, d or w"));
        };
        let Some(&(_, secs, _)) = UNITS.iter().find(|(c, _, _)| *c == unit) else {
            return Err(format!(
                "{group:?}: unknown unit {unit:?}; use s, m, h, d or w"
            ));
        };
        total = n
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= 1_000 * 366 * 86_400)
            .ok_or_else(|| format!("{group:?}: too long"))?;
        rest = &rest[group_end..];
    }
    Ok(SignedDuration::from_secs(total))
}

/// [`parse_positive_duration`] with only the problem as the error.
pub(crate) fn positive_duration_problem(
    input: &str,
) -> std::result::Result<SignedDuration, String> {
    let d = duration_problem(input)?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// Writes a duration in the largest units that divide it: `90m` → `1h30m`, `14d` → `2w`.
pub fn format_duration(d: SignedDuration) -> String {
    let mut secs = d.as_secs().abs();
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for &(c, unit, _) in UNITS.iter().rev() {
        if secs >= unit {
            out.push_str(&format!("{}{c}", secs / unit));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        let s = |t| parse_duration(t).unwrap().as_secs();
        assert_eq!(s("30s"), 30);
        assert_eq!(s("90m"), 5400);
        assert_eq!(s("2h"), 7200);
        assert_eq!(s("3d"), 3 * 86_400);
        assert_eq!(s("1w"), 7 * 86_400);
        assert_eq!(s("1h30m"), 5400);
        assert_eq!(s("0s"), 0);
    }

    #[test]
    fn errors_quote_the_bad_group() {
        let e = parse_duration("2x").unwrap_err().to_string();
        assert!(e.contains("\"2x\": unknown unit 'x'"), "{e}");
        let e = parse_duration("1h30").unwrap_err().to_string();
        assert!(e.contains("\"30\": missing unit"), "{e}");
        let e = parse_duration("h").unwrap_err().to_string();
        assert!(e.contains("\"h\": expected a number"), "{e}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_positive_duration("0d").is_err());
    }

    #[test]
    fn format_round_trips() {
        for t in ["1h30m", "2w", "1d1s", "0s", "45m"] {
            assert_eq!(format_duration(parse_duration(t).unwrap()), t);
        }
        assert_eq!(format_duration(parse_duration("90m").unwrap()), "1h30m");
    }
}
