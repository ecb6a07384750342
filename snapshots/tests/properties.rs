//! The planner's promises on random histories and policies, and a year of an hourly
//! schedule driven by a manual clock.

use std::collections::{BTreeMap, BTreeSet};

use cairn_snapshots::{
    plan, Clock, Grid, ManualClock, Period, Retention, Rule, Schedule, Snapshot,
};
use jiff::civil::DateTime;
use jiff::{SignedDuration, Span, Timestamp, Zoned};
use proptest::prelude::*;

const NOW: &str = "2026-11-23T12:00:00Z";

fn now_in(tz: &str) -> Zoned {
    NOW.parse::<Timestamp>()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get(tz).unwrap())
}

fn history() -> impl Strategy<Value = Vec<Snapshot>> {
    // Age in seconds (a few in the future); a third of them on a quarter hour or a
    // second off it, where grid intervals and hour buckets begin and end.
    let age = prop_oneof![
        2 => -3_600i64..120 * 86_400,
        1 => (-4i64..3 * 96, -1i64..=1).prop_map(|(q, off)| q * 900 + off),
    ];
    let one = (
        age,
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.1, -10 * 86_400i64..10 * 86_400),
    );
    prop::collection::vec(one, 0..120).prop_map(|v| {
        let now: Timestamp = NOW.parse().unwrap();
        v.into_iter()
            .enumerate()
            .map(|(i, (age, managed, held, expiry))| Snapshot {
                name: format!("s{i}"),
                created_at: now - SignedDuration::from_secs(age),
                managed,
                held: held.then(|| format!("hold {i}")),
                expires_at: expiry.map(|e| now + SignedDuration::from_secs(e)),
            })
            .collect()
    })
}

fn grid() -> impl Strategy<Value = Option<String>> {
    let section = (
        1u32..30,
        prop::sample::select(vec!["15m", "1h", "4h", "1d", "1w"]),
        prop::sample::select(vec!["", "(keep=all)", "(keep=2)"]),
    )
        .prop_map(|(n, len, keep)| format!("{n}x{len}{keep}"));
    prop::option::weighted(
        0.4,
        prop::collection::vec(section, 1..4).prop_map(|v| v.join(" | ")),
    )
}

fn retention() -> impl Strategy<Value = Retention> {
    (
        prop::option::of(1u32..10),
        prop::option::of(1i64..200),
        prop::collection::vec(prop::option::of(1u32..12), 5),
        grid(),
    )
        .prop_map(|(last, within, counts, grid)| {
            let mut keep = Vec::new();
            if let Some(n) = last {
                keep.push(format!("keep-last={n}"));
            }
            if let Some(h) = within {
                keep.push(format!("within={h}h"));
            }
            for (p, c) in Period::ALL.iter().zip(counts) {
                if let Some(c) = c {
                    keep.push(format!("{}={c}", p.name()));
                }
            }
            Retention::parse(&keep.join(" "), grid.as_deref()).unwrap()
        })
}

/// The local time a count rule's bucket starts at, computed with jiff's calendar alone
/// (not [`Period`]'s own bucket numbers): the hour, the day, the Monday of the ISO week,
/// the first of the month, the first of the year.
fn bucket_start(p: Period, t: DateTime) -> DateTime {
    let d = t.date();
    let start = match p {
        Period::Hourly => return d.at(t.hour(), 0, 0, 0),
        Period::Daily => d,
        Period::Weekly => d
            .checked_sub(Span::new().days(d.weekday().to_monday_zero_offset()))
            .unwrap(),
        Period::Monthly => d.first_of_month(),
        Period::Yearly => d.first_of_year(),
    };
    start.at(0, 0, 0, 0)
}

/// The grid's intervals laid end to end back from now, with plain arithmetic (not
/// [`Grid`]'s own lookup): `((section, interval), youngest age, oldest age)` in seconds,
/// each covering ages `youngest..oldest`.
fn grid_intervals(g: &Grid) -> Vec<((usize, u64), i64, i64)> {
    let mut out = Vec::new();
    let mut from = 0;
    for (i, s) in g.sections.iter().enumerate() {
        let len = s.length.as_secs();
        for k in 0..u64::from(s.count) {
            out.push(((i, k), from, from + len));
            from += len;
        }
    }
    out
}

/// What the documented rules keep among the snapshots they see, computed the slow,
/// obvious way.
fn expected_kept(snaps: &[Snapshot], r: &Retention, now: &Zoned) -> BTreeSet<usize> {
    let seen: Vec<usize> = (0..snaps.len())
        .filter(|&i| snaps[i].managed && snaps[i].expires_at.is_none())
        .collect();
    let newer = |a: usize, b: usize| (snaps[a].created_at, a) > (snaps[b].created_at, b);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|&a, &b| (snaps[b].created_at, b).cmp(&(snaps[a].created_at, a)));
    let mut kept = BTreeSet::new();
    if r.is_empty() {
        return seen.into_iter().collect();
    }
    for rule in r.rules() {
        match rule {
            Rule::Last(n) => kept.extend(newest_first.iter().take(*n as usize)),
            Rule::Within(d) => kept.extend(
                seen.iter()
                    .filter(|&&i| snaps[i].created_at >= now.timestamp() - *d),
            ),
            Rule::Every(p, n) => {
                // Group by bucket; the N newest buckets; the newest snapshot of each.
                let mut buckets: BTreeMap<DateTime, usize> = BTreeMap::new();
                for &i in &seen {
                    let local = now.time_zone().to_datetime(snaps[i].created_at);
                    let e = buckets.entry(bucket_start(*p, local)).or_insert(i);
                    if newer(i, *e) {
                        *e = i;
                    }
                }
                kept.extend(buckets.values().rev().take(*n as usize));
            }
            Rule::Grid(g) => {
                let intervals = grid_intervals(g);
                let mut per: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
                for &i in &seen {
                    let age = now
                        .timestamp()
                        .duration_since(snaps[i].created_at)
                        .as_secs()
                        .max(0);
                    if let Some((slot, _, _)) = intervals
                        .iter()
                        .find(|(_, young, old)| (*young..*old).contains(&age))
                    {
                        per.entry(*slot).or_default().push(i);
                    }
                }
                for (slot, mut v) in per {
                    v.sort_by(|&a, &b| (snaps[a].created_at, a).cmp(&(snaps[b].created_at, b)));
                    let keep = g.sections[slot.0].keep.map_or(v.len(), |k| k as usize);
                    kept.extend(v.into_iter().take(keep));
                }
            }
        }
    }
    kept
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Held snapshots are kept, expired ones pruned, manual ones kept, and the policy's
    /// own kept exactly when a rule keeps them.
    #[test]
    fn every_rule_keeps_what_it_documents_and_nothing_else(snaps in history(), r in retention(),
                                       tz in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York"])) {
        let now = now_in(tz);
        let want = expected_kept(&snaps, &r, &now);
        for (i, (s, d)) in snaps.iter().zip(plan(&snaps, &r, &now)).enumerate() {
            let expect = if s.held.is_some() {
                true
            } else if let Some(at) = s.expires_at {
                at > now.timestamp()
            } else if !s.managed {
                true
            } else {
                want.contains(&i)
            };
            prop_assert_eq!(d.keep, expect, "{} ({}) under {}: {}", s.name, s.created_at, r, d.reason);
        }
    }

    #[test]
    fn pruning_twice_changes_nothing_the_second_time(snaps in history(), r in retention(),
                                       tz in prop::sample::select(vec!["UTC", "Europe/Paris", "America/New_York"])) {
        let now = now_in(tz);
        let first = plan(&snaps, &r, &now);
        let survivors: Vec<Snapshot> = snaps.iter().zip(&first)
            .filter(|(_, d)| d.keep).map(|(s, _)| s.clone()).collect();
        let second = plan(&survivors, &r, &now);
        for (s, d) in survivors.iter().zip(&second) {
            prop_assert!(d.keep, "second pass prunes {}: {}", s.name, d.reason);
        }
        // And the reasons stay the same.
        let again: Vec<_> = first.iter().filter(|d| d.keep).cloned().collect();
        prop_assert_eq!(again, second);
    }

    #[test]
    fn parse_print_round_trips(r in retention()) {
        let back = Retention::parse(&r.keep_text(), r.grid().map(Grid::to_string).as_deref()).unwrap();
        prop_assert_eq!(back, r);
    }
}

#[test]
fn a_year_of_hourly_schedule_in_seconds() {
    let clock = ManualClock::utc("2026-01-01T00:00:00Z");
    let schedule: Schedule = "@hourly".parse().unwrap();
    let retention =
        Retention::parse("hourly=24 daily=7 weekly=4 monthly=12 yearly=2", None).unwrap();
    let start = clock.now().timestamp();
    let end: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    // The machine is off for three days in June.
    let down_from: Timestamp = "2026-06-10T00:30:00Z".parse().unwrap();
    let down_to: Timestamp = "2026-06-13T05:40:00Z".parse().unwrap();

    let mut alive: Vec<Snapshot> = Vec::new();
    let mut last_run = None;
    let mut taken = Vec::new();
    let mut catch_ups = Vec::new();
    let mut most_alive = 0;
    while clock.now().timestamp() < end {
        let now = clock.now();
        let t = now.timestamp();
        if !(down_from..down_to).contains(&t) {
            if let Some(due) = schedule.due(last_run, &now) {
                if due.missed.unwrap_or(1) > 1 {
                    catch_ups.push((t, due.missed.unwrap()));
                }
                alive.push(Snapshot {
                    name: format!("auto-{}", taken.len()),
                    created_at: t,
                    managed: true,
                    held: None,
                    expires_at: None,
                });
                taken.push(t);
                last_run = Some(t);
            }
            let decisions = plan(&alive, &retention, &now);
            alive = alive
                .into_iter()
                .zip(decisions)
                .filter(|(_, d)| d.keep)
                .map(|(s, _)| s)
                .collect();
            most_alive = most_alive.max(alive.len());
        }
        clock.advance(SignedDuration::from_mins(20));
    }

    // One snapshot per hour while up, plus a single catch-up after the outage.
    let hours_down = (down_to.duration_since(down_from).as_hours()) as usize; // 77 slots
    let hours = (end.duration_since(start).as_hours()) as usize;
    assert_eq!(catch_ups.len(), 1, "{catch_ups:?}");
    assert_eq!(catch_ups[0].0, "2026-06-13T05:40:00Z".parse().unwrap());
    assert_eq!(
        catch_ups[0].1, 77,
        "slots 01:00 on the 10th to 05:00 on the 13th"
    );
    assert_eq!(taken.len(), hours - hours_down + 1, "taken {}", taken.len());
    // Never more than the rules allow: 24 + 7 + 4 + 12 + 2 picks, less the newest
    // snapshot that every rule picks (4 counted twice over) and the second year yearly=2
    // has nothing in (only 2026 is run). Pruning runs after each take, so that is all.
    assert!(most_alive <= 24 + 7 + 4 + 12 + 1 - 4, "{most_alive}");
    let newest = alive.iter().map(|s| s.created_at).max().unwrap();
    assert_eq!(newest.to_string(), "2026-12-31T23:00:00Z");
    let last_day: Vec<_> = alive
        .iter()
        .filter(|s| s.created_at > newest - SignedDuration::from_hours(24))
        .collect();
    assert_eq!(last_day.len(), 24);
    // The newest of each bucket is the bucket's last hourly slot (all in UTC): 23:00 of
    // each of the last 7 days, of the Sundays ending the last 4 ISO weeks, and of the
    // last day of every month, December back to January.
    let kept = |t: Timestamp| alive.iter().any(|s| s.created_at == t);
    let at_23 = |d: jiff::civil::Date| {
        d.at(23, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
    };
    let dec31 = jiff::civil::date(2026, 12, 31);
    for back in 0..7 {
        let day = dec31.checked_sub(Span::new().days(back)).unwrap();
        assert!(kept(at_23(day)), "daily=7: {day} 23:00 is not kept");
    }
    for sunday in [
        jiff::civil::date(2026, 12, 27),
        jiff::civil::date(2026, 12, 20),
        jiff::civil::date(2026, 12, 13),
    ] {
        assert_eq!(sunday.weekday(), jiff::civil::Weekday::Sunday);
        assert!(kept(at_23(sunday)), "weekly=4: {sunday} 23:00 is not kept");
    }
    for m in 1..=12 {
        let last = jiff::civil::date(2026, m, 1).last_of_month();
        assert!(
            kept(at_23(last)),
            "monthly=12: {last} 23:00, the newest of month {m}, is not kept"
        );
    }
}
