//! Retention rules: what a policy keeps.
//!
//! Written as space- (or comma-) separated `NAME=VALUE` tokens (`NAME VALUE` works too,
//! and a `keep-` prefix is allowed, as in Proxmox's `keep-daily=7`):
//!
//! | rule | keeps |
//! |---|---|
//! | `last=N` (`keep-last N`) | the N newest snapshots |
//! | `within=D` (`keep-within 2d`) | every snapshot taken in the last D (`30m`, `12h`, `2d`, `1w`) |
//! | `hourly=N` `daily=N` `weekly=N` `monthly=N` `yearly=N` | the **newest** snapshot of each of the N most recent hours / days / ISO weeks / months / years that have a snapshot, in local time (restic, Proxmox and sanoid keep the newest; snapper keeps the first) |
//!
//! A zrepl grid ([`crate::grid`]) may be added beside them. A snapshot is kept when any
//! rule keeps it; no rules at all keeps everything.

use std::fmt;

use jiff::civil::DateTime;
use jiff::SignedDuration;

use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::span::{format_duration, positive_duration_problem};

/// A calendar period of the count rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    pub const ALL: [Period; 5] = [
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
        Period::Yearly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    /// The bucket a local time falls in, as a number that grows with time.
    pub fn bucket(self, t: DateTime) -> i64 {
        let days = || days_from_civil(t.year(), t.month(), t.day());
        match self {
            Period::Hourly => days() * 24 + i64::from(t.hour()),
            Period::Daily => days(),
            Period::Weekly => {
                let w = t.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Period::Monthly => i64::from(t.year()) * 12 + i64::from(t.month()),
            Period::Yearly => i64::from(t.year()),
        }
    }

    /// The bucket a local time falls in, for people: `2026-11-23 10h`, `2026-11-23`,
    /// `2026-W48`, `2026-11`, `2026`.
    pub fn describe(self, t: DateTime) -> String {
        match self {
            Period::Hourly => t.strftime("%Y-%m-%d %Hh").to_string(),
            Period::Daily => t.strftime("%Y-%m-%d").to_string(),
            Period::Weekly => {
                let w = t.date().iso_week_date();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Monthly => t.strftime("%Y-%m").to_string(),
            Period::Yearly => t.strftime("%Y").to_string(),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm): cheap
/// enough to run per snapshot per rule.
fn days_from_civil(y: i16, m: i8, d: i8) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One retention rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Last(u32),
    Within(SignedDuration),
    Every(Period, u32),
    Grid(Grid),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Last(n) => write!(f, "last={n}"),
            Rule::Within(d) => write!(f, "within={}", format_duration(*d)),
            Rule::Every(p, n) => write!(f, "{}={n}", p.name()),
            Rule::Grid(g) => write!(f, "grid {g}"),
        }
    }
}

/// A set of retention rules, in a fixed order: last, within, hourly..yearly, grid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retention {
    rules: Vec<Rule>,
}

fn rank(r: &Rule) -> usize {
    match r {
        Rule::Last(_) => 0,
        Rule::Within(_) => 1,
        Rule::Every(p, _) => 2 + *p as usize,
        Rule::Grid(_) => 9,
    }
}

impl Retention {
    /// Parses count rules (`hourly=24 daily=7 last=5 within=2d`) and adds `grid` when
    /// given. Each rule may appear once; counts are whole numbers from 1.
    pub fn parse(keep: &str, grid: Option<&str>) -> Result<Retention> {
        let mut rules: Vec<Rule> = Vec::new();
        let tokens: Vec<&str> = keep
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .collect();
        let mut i = 0;
        while i < tokens.len() {
            let (name, value, shown) = match tokens[i].split_once('=') {
                Some((n, v)) => (n, v, tokens[i].to_string()),
                None => {
                    let v = tokens.get(i + 1).copied().ok_or_else(|| {
                        Error::retention(
                            keep,
                            format!("{:?}: missing a value (e.g. {}=7)", tokens[i], tokens[i]),
                        )
                    })?;
                    i += 1;
                    (tokens[i - 1], v, format!("{} {v}", tokens[i - 1]))
                }
            };
            i += 1;
            let key = name
                .strip_prefix("keep-")
                .or_else(|| name.strip_prefix("keep_"))
                .unwrap_or(name);
            let count = || {
                value.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::retention(
                        keep,
                        format!("{shown:?}: {value:?} is not a count from 1 up"),
                    )
                })
            };
            let rule = match key {
                "last" => Rule::Last(count()?),
                "within" => Rule::Within(positive_duration_problem(value).map_err(|problem| {
                    Error::retention(keep, format!("{shown:?}: {problem}"))
                })?),
                other => match Period::ALL.iter().find(|p| p.name() == other) {
                    Some(p) => Rule::Every(*p, count()?),
                    None => {
                        return Err(Error::retention(
                            keep,
                            format!("{shown:?}: unknown rule {name:?}; use last, within, hourly, daily, weekly, monthly or yearly"),
                        ))
                    }
                },
            };
            if rules.iter().any(|r| rank(r) == rank(&rule)) {
                return Err(Error::retention(
                    keep,
                    format!("{shown:?}: {key} is given twice"),
                ));
            }
            rules.push(rule);
        }
        if let Some(g) = grid {
            rules.push(Rule::Grid(g.parse()?));
        }
        rules.sort_by_key(rank);
        Ok(Retention { rules })
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when there are no rules (nothing is pruned).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The count rules as `parse` reads them back (everything but the grid).
    pub fn keep_text(&self) -> String {
        let parts: Vec<String> = self
            .rules
            .iter()
            .filter(|r| !matches!(r, Rule::Grid(_)))
            .map(Rule::to_string)
            .collect();
        parts.join(" ")
    }

    /// The grid, if there is one.
    pub fn grid(&self) -> Option<&Grid> {
        self.rules.iter().find_map(|r| match r {
            Rule::Grid(g) => Some(g),
            _ => None,
        })
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("(no rules: keep everything)");
        }
        let parts: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse_to_one_canonical_form() {
        let r = Retention::parse("daily=7 hourly=24 weekly=4 monthly=12 yearly=2", None).unwrap();
        assert_eq!(
            r.to_string(),
            "hourly=24 daily=7 weekly=4 monthly=12 yearly=2"
        );
        let r =
            Retention::parse("keep-last 5, keep-within 2d keep-daily=3", Some("24x1h")).unwrap();
        assert_eq!(r.to_string(), "last=5 within=2d daily=3 grid 24x1h");
        assert_eq!(r.keep_text(), "last=5 within=2d daily=3");
        assert_eq!(Retention::parse(&r.keep_text(), Some("24x1h")).unwrap(), r);
        assert!(Retention::parse("", None).unwrap().is_empty());
    }

    #[test]
    fn errors_point_at_the_bad_rule() {
        let err = |s: &str| Retention::parse(s, None).unwrap_err().to_string();
        assert!(
            err("hourly=24 dayly=7").contains("\"dayly=7\": unknown rule \"dayly\""),
            "{}",
            err("hourly=24 dayly=7")
        );
        assert!(err("daily=0").contains("\"daily=0\": \"0\" is not a count"));
        assert!(err("daily=x").contains("\"x\" is not a count"));
        assert!(
            err("keep-within 2x").contains("\"keep-within 2x\": \"2x\": unknown unit"),
            "{}",
            err("keep-within 2x")
        );
        assert!(err("keep-last").contains("missing a value"));
        assert!(err("daily=1 daily=2").contains("daily is given twice"));
        let e = Retention::parse("daily=1", Some("1x1h | bad"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("grid \"1x1h | bad\": \"bad\""), "{e}");
    }

    #[test]
    fn day_numbers_match_jiff() {
        for d in [
            "1970-01-01",
            "2000-02-29",
            "2026-11-23",
            "1969-12-31",
            "2100-03-01",
        ] {
            let d: jiff::civil::Date = d.parse().unwrap();
            let want = d.since(jiff::civil::date(1970, 1, 1)).unwrap().get_days();
            assert_eq!(
                days_from_civil(d.year(), d.month(), d.day()),
                i64::from(want),
                "{d}"
            );
        }
    }

    #[test]
    fn buckets_grow_with_time_and_read_well() {
        let t: DateTime = "2026-11-23T10:45".parse().unwrap();
        assert_eq!(Period::Hourly.describe(t), "2026-11-23 10h");
        assert_eq!(Period::Weekly.describe(t), "2026-W48");
        let earlier: DateTime = "2026-11-23T09:59".parse().unwrap();
        for p in Period::ALL {
            assert!(p.bucket(earlier) <= p.bucket(t));
        }
        assert!(Period::Hourly.bucket(earlier) < Period::Hourly.bucket(t));
        // ISO weeks: 2027-01-01 is in 2026-W53.
        let ny: DateTime = "2027-01-01T00:00".parse().unwrap();
        assert_eq!(Period::Weekly.describe(ny), "2026-W53");
    }
}
