//! Schedules: when a policy takes its snapshots.
//!
//! A schedule is a 5-field cron line (`minute hour day-of-month month day-of-week`, as in
//! crontab(5) and LXD's `snapshots.schedule`, with ranges, lists, steps and `JAN`/`MON`
//! names; day-of-month and day-of-week are OR-ed as in Vixie cron) or one of `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly` (`@annually`). Cron lines are evaluated by
//! the `croner` crate in the time zone of the `now` passed in, so `0 3 * * *` is 03:00
//! local time, as cron does.
//!
//! **What is due** ([`Schedule::due`]): the newest slot at or before now, if the last run
//! came before it. After downtime that is one catch-up snapshot, never one per missed
//! slot; [`Due::missed`] says how many slots went by so the caller can say so.

use std::fmt;
use std::str::FromStr;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::{Timestamp, Zoned};

use crate::error::{Error, Result};

const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
];

const SHORTHANDS: [&str; 6] = [
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
];

/// How many missed slots [`Schedule::due`] counts before it stops counting.
pub const MISSED_COUNT_LIMIT: u32 = 10_000;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

/// A slot that is due now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The newest slot at or before now: the one snapshot to take.
    pub slot: Timestamp,
    /// How many slots passed since the last run, this one included (1 when on time;
    /// more after downtime; at most [`MISSED_COUNT_LIMIT`]). `None` on a first run.
    pub missed: Option<u32>,
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(input: &str) -> Result<Schedule> {
        let text = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return Err(Error::schedule(
                input,
                "empty; use a cron line such as \"0 * * * *\" or @hourly, @daily, @weekly, @monthly, @yearly",
            ));
        }
        if text.starts_with('@') {
            if !SHORTHANDS.iter().any(|s| s.eq_ignore_ascii_case(&text)) {
                return Err(Error::schedule(
                    input,
                    format!("{text:?}: unknown shorthand; use @hourly, @daily, @weekly, @monthly or @yearly"),
                ));
            }
        } else {
            let fields: Vec<&str> = text.split(' ').collect();
            if fields.len() != 5 {
                return Err(Error::schedule(
                    input,
                    format!(
                        "{} field{}; a cron line has 5: minute hour day-of-month month day-of-week",
                        fields.len(),
                        if fields.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
            // Find the field at fault by parsing each one alone among stars.
            for (i, field) in fields.iter().enumerate() {
                let mut alone = ["*"; 5];
                alone[i] = field;
                if let Err(e) = parser().parse(&alone.join(" ")) {
                    let (name, range) = FIELDS[i];
                    return Err(Error::schedule(
                        input,
                        format!("{name} field {field:?}: not valid (allowed: {range}, with , - / and *): {e}"),
                    ));
                }
            }
        }
        let cron = parser()
            .parse(&text)
            .map_err(|e| Error::schedule(input, e.to_string()))?;
        // A line every field of which is valid may still never match (`0 0 31 2 *`).
        let probe: Zoned = "2000-01-01T00:00:00+00:00[UTC]"
            .parse()
            .expect("a valid time");
        if cron.find_next_occurrence(&probe, true).is_err() {
            return Err(Error::schedule(input, "never matches any date"));
        }
        Ok(Schedule { text, cron })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    /// The newest slot at or before `t`, in `t`'s time zone.
    pub fn slot_at_or_before(&self, t: &Zoned) -> Option<Zoned> {
        self.cron.find_previous_occurrence(t, true).ok()
    }

    /// The first slot strictly after `t`, in `t`'s time zone.
    pub fn next_after(&self, t: &Zoned) -> Option<Zoned> {
        self.cron.find_next_occurrence(t, false).ok()
    }

    /// What is due at `now`, given when the policy last ran (`None`: never): the newest
    /// slot at or before `now` when the last run came before that slot, else nothing.
    /// Only one slot is ever due, however many were missed.
    pub fn due(&self, last_run: Option<Timestamp>, now: &Zoned) -> Option<Due> {
        let slot = self.slot_at_or_before(now)?;
        let Some(last) = last_run else {
            return Some(Due {
                slot: slot.timestamp(),
                missed: None,
            });
        };
        if last >= slot.timestamp() {
            return None;
        }
        // Count the slots after the last run, up to the limit.
        let mut missed = 1u32;
        let mut cursor = slot.clone();
        while missed < MISSED_COUNT_LIMIT {
            match self.cron.find_previous_occurrence(&cursor, false) {
                Ok(prev) if prev.timestamp() > last => {
                    missed += 1;
                    cursor = prev;
                }
                _ => break,
            }
        }
        Some(Due {
            slot: slot.timestamp(),
            missed: Some(missed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(s: &str) -> Zoned {
        s.parse::<Timestamp>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn shorthands_and_cron_lines() {
        let s: Schedule = "@hourly".parse().unwrap();
        let slot = s.slot_at_or_before(&z("2026-11-23T10:59:59Z")).unwrap();
        assert_eq!(slot.timestamp(), ts("2026-11-23T10:00:00Z"));
        let s: Schedule = "@daily".parse().unwrap();
        assert_eq!(
            s.next_after(&z("2026-11-23T00:00:00Z"))
                .unwrap()
                .timestamp(),
            ts("2026-11-24T00:00:00Z")
        );
        let s: Schedule = "*/15 8-18 * * MON-FRI".parse().unwrap();
        // 2026-11-28 is a Saturday: the last slot is Friday 18:45.
        assert_eq!(
            s.slot_at_or_before(&z("2026-11-28T12:00:00Z"))
                .unwrap()
                .timestamp(),
            ts("2026-11-27T18:45:00Z")
        );
        assert_eq!(
            "@Weekly".parse::<Schedule>().unwrap().to_string(),
            "@Weekly"
        );
    }

    #[test]
    fn cron_follows_the_local_time_zone() {
        let s: Schedule = "0 3 * * *".parse().unwrap();
        let now: Zoned = "2026-07-01T12:00:00+02:00[Europe/Paris]".parse().unwrap();
        let slot = s.slot_at_or_before(&now).unwrap();
        assert_eq!(slot.timestamp(), ts("2026-07-01T01:00:00Z"));
    }

    #[test]
    fn due_once_per_slot_and_one_catch_up() {
        let s: Schedule = "@hourly".parse().unwrap();
        let now = z("2026-11-23T10:20:00Z");
        let first = s.due(None, &now).unwrap();
        assert_eq!(
            first,
            Due {
                slot: ts("2026-11-23T10:00:00Z"),
                missed: None
            }
        );
        assert_eq!(
            s.due(Some(now.timestamp()), &z("2026-11-23T10:59:59Z")),
            None
        );
        let on_time = s
            .due(Some(now.timestamp()), &z("2026-11-23T11:00:00Z"))
            .unwrap();
        assert_eq!(on_time.missed, Some(1));
        // Down from 10:20 to 15:05 the next day: one snapshot, 29 slots missed.
        let late = s
            .due(Some(now.timestamp()), &z("2026-11-24T15:05:00Z"))
            .unwrap();
        assert_eq!(late.slot, ts("2026-11-24T15:00:00Z"));
        assert_eq!(late.missed, Some(29));
        // A long outage stops counting at the limit.
        let s: Schedule = "* * * * *".parse().unwrap();
        let very_late = s
            .due(Some(ts("2026-01-01T00:00:00Z")), &z("2026-11-24T15:05:00Z"))
            .unwrap();
        assert_eq!(very_late.missed, Some(MISSED_COUNT_LIMIT));
    }

    #[test]
    fn errors_point_at_the_bad_field() {
        let err = |s: &str| s.parse::<Schedule>().unwrap_err().to_string();
        assert!(
            err("0 25 * * *").contains("hour field \"25\""),
            "{}",
            err("0 25 * * *")
        );
        assert!(err("61 * * * *").contains("minute field \"61\""));
        assert!(err("0 0 * 13 *").contains("month field \"13\""));
        assert!(
            err("0 0 * * FOO").contains("day-of-week field"),
            "{}",
            err("0 0 * * FOO")
        );
        assert!(
            err("0 0 0 * *").contains("day-of-month field \"0\""),
            "{}",
            err("0 0 0 * *")
        );
        assert!(err("* * * *").contains("4 fields; a cron line has 5"));
        assert!(err("0 0 * * * *").contains("6 fields"));
        assert!(err("@fortnightly").contains("\"@fortnightly\": unknown shorthand"));
        assert!(
            err("0 0 31 2 *").contains("never matches"),
            "{}",
            err("0 0 31 2 *")
        );
        assert!(err("").contains("empty"));
    }
}
