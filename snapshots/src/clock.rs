//! Where "now" comes from. Everything in this crate takes the current time as an argument
//! (a [`jiff::Zoned`]: an instant plus the time zone that local expressions such as
//! `today 09:00`, schedules and per-day retention buckets are read in). A [`Clock`] hands
//! that value out; tests drive a [`ManualClock`] through a year in seconds.

use std::cell::RefCell;

use jiff::{SignedDuration, Timestamp, Zoned};

/// A source of the current time.
pub trait Clock {
    /// The current instant in the clock's time zone.
    fn now(&self) -> Zoned;
}

/// The system's clock in the system's time zone (`TZ`, else `/etc/localtime`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Zoned {
        Zoned::now()
    }
}

/// A clock that runs from a chosen start at the real clock's pace: `now()` is the start
/// plus the real time elapsed since the clock was made. The CLI uses it for `CAIRN_NOW`,
/// so a daemon under test still sees time pass.
#[derive(Debug, Clone)]
pub struct OffsetClock {
    start: Zoned,
    real_start: std::time::Instant,
}

impl OffsetClock {
    pub fn new(start: Zoned) -> OffsetClock {
        OffsetClock {
            start,
            real_start: std::time::Instant::now(),
        }
    }
}

impl OffsetClock {
    /// Where the clock started.
    pub fn start(&self) -> &Zoned {
        &self.start
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Zoned {
        let elapsed =
            SignedDuration::try_from(self.real_start.elapsed()).unwrap_or(SignedDuration::MAX);
        self.start
            .checked_add(elapsed)
            .unwrap_or_else(|_| self.start.clone())
    }
}

/// A clock that moves only when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: RefCell<Zoned>,
}

impl ManualClock {
    pub fn new(start: Zoned) -> ManualClock {
        ManualClock {
            now: RefCell::new(start),
        }
    }

    /// A clock at `rfc3339` in UTC. Panics on a bad time: for tests.
    pub fn utc(rfc3339: &str) -> ManualClock {
        let t: Timestamp = rfc3339.parse().expect("an RFC 3339 time");
        ManualClock::new(t.to_zoned(jiff::tz::TimeZone::UTC))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let next = self.now.borrow().checked_add(by).expect("time in range");
        *self.now.borrow_mut() = next;
    }

    /// Sets the clock.
    pub fn set(&self, to: Zoned) {
        *self.now.borrow_mut() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Zoned {
        self.now.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::utc("2026-11-23T10:00:00Z");
        assert_eq!(c.now(), c.now());
        c.advance(SignedDuration::from_hours(2));
        assert_eq!(c.now().timestamp().to_string(), "2026-11-23T12:00:00Z");
    }

    #[test]
    fn offset_clock_starts_where_told_and_runs() {
        let start: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let c = OffsetClock::new(start.to_zoned(jiff::tz::TimeZone::UTC));
        let a = c.now().timestamp();
        assert!(a >= start && a < start + SignedDuration::from_secs(5));
    }
}
