//! Time expressions: the `--to` of `cairn restore` and the `--at` of `cairn policy plan`.
//!
//! | written | means |
//! |---|---|
//! | `now` (or `today`) | the current instant |
//! | `30s-ago`, `90m-ago`, `2h-ago`, `3d-ago`, `1w-ago`, `1h30m-ago` | that long before now (a day is 24 h) |
//! | `today 09:00`, `09:00`, `09:00:30` | that wall-clock time today, in the local time zone |
//! | `yesterday` | the same wall-clock time one calendar day back (as GNU `date -d yesterday`) |
//! | `yesterday 18:00` | that wall-clock time yesterday |
//! | `2026-11-23T10:00:00Z`, `2026-11-23T10:00:00+02:00` | an RFC 3339 instant |
//! | `2026-11-23 10:00`, `2026-11-23 10:00:30`, `2026-11-23` | a local wall-clock time (a bare date is its midnight) |
//! | `@-1`, `@-3` | not a time: the newest snapshot, the third newest |
//!
//! A snapshot is picked by [`TimeExpr::resolve`]: the newest one taken at or before the
//! time, by binary search over a list sorted oldest first.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::error::{Error, Result};
use crate::span::{duration_problem, format_duration};

/// A parsed time expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeExpr {
    /// `now` or `today`.
    Now,
    /// `<duration>-ago`.
    Ago(SignedDuration),
    /// `today HH:MM[:SS]` or a bare `HH:MM[:SS]`.
    Today(Time),
    /// `yesterday` (`None`: the current wall-clock time) or `yesterday HH:MM[:SS]`.
    Yesterday(Option<Time>),
    /// An RFC 3339 instant.
    Instant(Timestamp),
    /// A local wall-clock date and time.
    Local(DateTime),
    /// `@-N`: the N-th newest snapshot, N ≥ 1.
    Nth(usize),
}

fn parse_clock(input: &str, part: &str) -> Result<Time> {
    let fields: Vec<&str> = part.split(':').collect();
    if !(2..=3).contains(&fields.len()) || fields.iter().any(|f| f.is_empty() || f.len() > 2) {
        return Err(Error::time(
            input,
            format!("{part:?}: expected a time of day HH:MM or HH:MM:SS"),
        ));
    }
    let mut v = [0i8; 3];
    for (i, (f, (name, max))) in fields
        .iter()
        .zip([("hour", 23), ("minute", 59), ("second", 59)])
        .enumerate()
    {
        let n: i8 = f
            .parse()
            .ok()
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(|| {
                Error::time(
                    input,
                    format!("{part:?}: {name} {f:?} is not a number from 0 to {max}"),
                )
            })?;
        v[i] = n;
    }
    Ok(Time::constant(0, 0, 0, 0)
        .with()
        .hour(v[0])
        .minute(v[1])
        .second(v[2])
        .build()
        .expect("checked ranges"))
}

fn starts_with_digit(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_date(input: &str, part: &str) -> Result<Date> {
    part.parse::<Date>()
        .map_err(|e| Error::time(input, format!("{part:?}: not a date YYYY-MM-DD ({e})")))
}

impl FromStr for TimeExpr {
    type Err = Error;

    fn from_str(input: &str) -> Result<TimeExpr> {
        let s = input.trim();
        if s.is_empty() {
            return Err(Error::time(
                input,
                "empty; try 2h-ago, yesterday 18:00, 2026-11-23T10:00:00Z or @-1",
            ));
        }
        if let Some(n) = s.strip_prefix('@') {
            return match n.strip_prefix('-') {
                Some(digits) => match digits.parse::<usize>() {
                    Ok(0) => Err(Error::time(
                        input,
                        "\"@-0\": counting starts at @-1, the newest snapshot",
                    )),
                    Ok(n) => Ok(TimeExpr::Nth(n)),
                    Err(_) => Err(Error::time(
                        input,
                        format!("{digits:?}: expected a whole number after @-, e.g. @-1 for the newest snapshot"),
                    )),
                },
                None => Err(Error::time(
                    input,
                    format!("{s:?}: snapshots are counted back from the newest: @-1, @-2, ... (there is no @+N or @N)"),
                )),
            };
        }
        if let Some(d) = s.strip_suffix("-ago") {
            return duration_problem(d.trim())
                .map(TimeExpr::Ago)
                .map_err(|problem| Error::time(input, problem));
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["now"] | ["today"] => return Ok(TimeExpr::Now),
            ["today", t] => return parse_clock(input, t).map(TimeExpr::Today),
            ["yesterday"] => return Ok(TimeExpr::Yesterday(None)),
            ["yesterday", t] => return parse_clock(input, t).map(|t| TimeExpr::Yesterday(Some(t))),
            [t] if t.contains(':') && !t.contains('-') => {
                return parse_clock(input, t).map(TimeExpr::Today)
            }
            [d, t] if d.contains('-') => {
                let date = parse_date(input, d)?;
                let time = parse_clock(input, t)?;
                return Ok(TimeExpr::Local(date.to_datetime(time)));
            }
            [one] if starts_with_digit(one) && (one.contains('T') || one.contains('t')) => {
                return one
                    .parse::<Timestamp>()
                    .map(TimeExpr::Instant)
                    .map_err(|e| {
                        Error::time(
                            input,
                            format!(
                                "{one:?}: not an RFC 3339 time such as 2026-11-23T10:00:00Z ({e})"
                            ),
                        )
                    });
            }
            [d] if starts_with_digit(d) && d.contains('-') => {
                return parse_date(input, d)
                    .map(|d| TimeExpr::Local(d.to_datetime(Time::midnight())));
            }
            _ => {}
        }
        Err(Error::time(
            input,
            format!(
                "{:?}: not understood; try now, 2h-ago, today 09:00, yesterday 18:00, 2026-11-23 10:00, 2026-11-23T10:00:00Z or @-1",
                words[0]
            ),
        ))
    }
}

impl fmt::Display for TimeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |t: &Time| {
            if t.second() == 0 {
                t.strftime("%H:%M").to_string()
            } else {
                t.strftime("%H:%M:%S").to_string()
            }
        };
        match self {
            TimeExpr::Now => write!(f, "now"),
            TimeExpr::Ago(d) => write!(f, "{}-ago", format_duration(*d)),
            TimeExpr::Today(t) => write!(f, "today {}", hm(t)),
            TimeExpr::Yesterday(None) => write!(f, "yesterday"),
            TimeExpr::Yesterday(Some(t)) => write!(f, "yesterday {}", hm(t)),
            TimeExpr::Instant(t) => write!(f, "{t}"),
            TimeExpr::Local(dt) => write!(f, "{} {}", dt.date(), hm(&dt.time())),
            TimeExpr::Nth(n) => write!(f, "@-{n}"),
        }
    }
}

impl TimeExpr {
    /// The instant the expression names, read in `now`'s time zone; `None` for `@-N`,
    /// which names a snapshot rather than a time. May lie in the future.
    pub fn instant(&self, now: &Zoned) -> Result<Option<Timestamp>> {
        let tz = now.time_zone().clone();
        let local = |dt: DateTime| {
            dt.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| {
                Error::resolve(
                    self,
                    format!("{dt} does not exist in the local time zone: {e}"),
                )
            })
        };
        let today = now.date();
        let t = match self {
            TimeExpr::Now => now.timestamp(),
            TimeExpr::Ago(d) => now
                .timestamp()
                .checked_sub(*d)
                .map_err(|_| Error::resolve(self, "too far in the past"))?,
            TimeExpr::Today(t) => local(today.to_datetime(*t))?,
            TimeExpr::Yesterday(t) => {
                let day = today
                    .yesterday()
                    .map_err(|e| Error::resolve(self, e.to_string()))?;
                local(day.to_datetime(t.unwrap_or_else(|| now.time())))?
            }
            TimeExpr::Instant(t) => *t,
            TimeExpr::Local(dt) => local(*dt)?,
            TimeExpr::Nth(_) => return Ok(None),
        };
        Ok(Some(t))
    }

    /// Picks the snapshot the expression names for a restore: the index of the newest
    /// snapshot taken at or before the time, or of the N-th newest for `@-N`.
    ///
    /// `created` must be sorted oldest first (as `snapshot list` gives them); among equal
    /// times the later entry counts as newer. `name` is used in error messages only.
    /// Fails when the time is in the future, when no snapshot is old enough (naming the
    /// oldest there is) and when `@-N` reaches past the oldest. O(log n).
    pub fn resolve<'a>(
        &self,
        created: &[Timestamp],
        name: impl Fn(usize) -> &'a str,
        now: &Zoned,
    ) -> Result<usize> {
        if created.is_empty() {
            return Err(Error::resolve(
                self,
                "there are no snapshots to restore; take one with cairn snapshot create",
            ));
        }
        let Some(at) = self.instant(now)? else {
            let TimeExpr::Nth(n) = self else {
                unreachable!("only @-N has no instant")
            };
            return created.len().checked_sub(*n).ok_or_else(|| {
                Error::resolve(
                    self,
                    format!(
                        "there {} only {} snapshot{}; the oldest is @-{} ({} at {})",
                        if created.len() == 1 { "is" } else { "are" },
                        created.len(),
                        if created.len() == 1 { "" } else { "s" },
                        created.len(),
                        name(0),
                        created[0]
                    ),
                )
            });
        };
        if at > now.timestamp() {
            return Err(Error::resolve(
                self,
                format!(
                    "{at} is in the future (now is {}); nothing to restore from yet",
                    now.timestamp()
                ),
            ));
        }
        let after = created.partition_point(|c| *c <= at);
        if after == 0 {
            return Err(Error::resolve(
                self,
                format!(
                    "no snapshot old enough: the oldest is {} at {}, after {at}",
                    name(0),
                    created[0]
                ),
            ));
        }
        Ok(after - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Zoned {
        "2026-11-23T10:30:00+00:00[UTC]".parse().unwrap()
    }

    fn at(s: &str) -> String {
        s.parse::<TimeExpr>()
            .unwrap()
            .instant(&now())
            .unwrap()
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_form_parses_to_its_instant() {
        assert_eq!(at("now"), "2026-11-23T10:30:00Z");
        assert_eq!(at("today"), "2026-11-23T10:30:00Z");
        assert_eq!(at("30s-ago"), "2026-11-23T10:29:30Z");
        assert_eq!(at("90m-ago"), "2026-11-23T09:00:00Z");
        assert_eq!(at("2h-ago"), "2026-11-23T08:30:00Z");
        assert_eq!(at("3d-ago"), "2026-11-20T10:30:00Z");
        assert_eq!(at("1w-ago"), "2026-11-16T10:30:00Z");
        assert_eq!(at("1h30m-ago"), "2026-11-23T09:00:00Z");
        assert_eq!(at("today 09:00"), "2026-11-23T09:00:00Z");
        assert_eq!(at("09:15:07"), "2026-11-23T09:15:07Z");
        assert_eq!(at("yesterday"), "2026-11-22T10:30:00Z");
        assert_eq!(at("yesterday 18:00"), "2026-11-22T18:00:00Z");
        assert_eq!(at("2026-11-23T10:00:00Z"), "2026-11-23T10:00:00Z");
        assert_eq!(at("2026-11-23T10:00:00+02:00"), "2026-11-23T08:00:00Z");
        assert_eq!(at("2026-11-23 10:00"), "2026-11-23T10:00:00Z");
        assert_eq!(at("2026-11-20"), "2026-11-20T00:00:00Z");
        assert_eq!("@-3".parse::<TimeExpr>().unwrap(), TimeExpr::Nth(3));
    }

    #[test]
    fn local_forms_follow_the_clock_time_zone() {
        let now: Zoned = "2026-07-01T12:00:00+02:00[Europe/Paris]".parse().unwrap();
        let t = "today 09:00"
            .parse::<TimeExpr>()
            .unwrap()
            .instant(&now)
            .unwrap()
            .unwrap();
        assert_eq!(t.to_string(), "2026-07-01T07:00:00Z");
        let t = "2026-01-10 09:00"
            .parse::<TimeExpr>()
            .unwrap()
            .instant(&now)
            .unwrap()
            .unwrap();
        assert_eq!(t.to_string(), "2026-01-10T08:00:00Z");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "now",
            "1h30m-ago",
            "today 09:00",
            "yesterday",
            "yesterday 18:00:05",
            "2026-11-23T10:00:00Z",
            "2026-11-23 10:00",
            "@-3",
        ] {
            let e: TimeExpr = s.parse().unwrap();
            assert_eq!(e.to_string().parse::<TimeExpr>().unwrap(), e, "{s}");
        }
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let err = |s: &str| s.parse::<TimeExpr>().unwrap_err().to_string();
        assert!(
            err("2x-ago").contains("\"2x\": unknown unit 'x'"),
            "{}",
            err("2x-ago")
        );
        assert!(
            err("25:00").contains("hour \"25\" is not a number from 0 to 23"),
            "{}",
            err("25:00")
        );
        assert!(
            err("today 10:61").contains("minute \"61\""),
            "{}",
            err("today 10:61")
        );
        assert!(
            err("@-0").contains("\"@-0\": counting starts at @-1"),
            "{}",
            err("@-0")
        );
        assert!(
            err("@+1").contains("\"@+1\": snapshots are counted back"),
            "{}",
            err("@+1")
        );
        assert!(
            err("@-x").contains("\"x\": expected a whole number"),
            "{}",
            err("@-x")
        );
        assert!(
            err("2026-13-01 10:00").contains("\"2026-13-01\": not a date"),
            "{}",
            err("2026-13-01 10:00")
        );
        assert!(err("2026-11-23T25:00:00Z").contains("not an RFC 3339 time"));
        assert!(err("tomorrow").contains("\"tomorrow\": not understood"));
        assert!(err("").contains("empty"));
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn resolve_picks_the_newest_at_or_before() {
        let created = [
            ts("2026-11-23T08:00:00Z"),
            ts("2026-11-23T09:00:00Z"),
            ts("2026-11-23T10:00:00Z"),
        ];
        let names = ["a", "b", "c"];
        let pick = |s: &str| {
            s.parse::<TimeExpr>()
                .unwrap()
                .resolve(&created, |i| names[i], &now())
        };
        assert_eq!(pick("now").unwrap(), 2);
        assert_eq!(
            pick("90m-ago").unwrap(),
            1,
            "exactly at a snapshot picks it"
        );
        assert_eq!(pick("2026-11-23T09:59:59Z").unwrap(), 1);
        assert_eq!(pick("@-1").unwrap(), 2);
        assert_eq!(pick("@-3").unwrap(), 0);
        let e = pick("@-4").unwrap_err().to_string();
        assert!(
            e.contains("only 3 snapshots; the oldest is @-3 (a at 2026-11-23T08:00:00Z)"),
            "{e}"
        );
        let e = pick("3h-ago").unwrap_err().to_string();
        assert!(
            e.contains("no snapshot old enough: the oldest is a at 2026-11-23T08:00:00Z"),
            "{e}"
        );
        let e = pick("2026-11-24T00:00:00Z").unwrap_err().to_string();
        assert!(e.contains("is in the future"), "{e}");
        let e = "now"
            .parse::<TimeExpr>()
            .unwrap()
            .resolve(&[], |_| "", &now())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "time \"now\": there are no snapshots to restore; take one with cairn snapshot create"
        );
    }
}
