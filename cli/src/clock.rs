//! The CLI's clock: the system's, or `CAIRN_NOW` for tests.
//!
//! `CAIRN_NOW=<RFC 3339 time>` sets cairn's clock to that time: it stands still for a
//! one-shot command (so what a test reads back is exact), and runs on from there at the
//! real pace in `cairn daemon` ([`run_on`]), which must see time pass. It is read here
//! and nowhere else. While it is set, the snapshots cairn takes are dated by it too (their
//! `taken_at`), instead of by the storage's creation time, so a test can lay out a
//! month of history in seconds. Local times (`today 09:00`, cron lines, daily buckets)
//! are read in the system time zone (`TZ`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use cairn_snapshots::{Clock, OffsetClock, SystemClock};
use jiff::{Timestamp, Zoned};

/// The environment variable that overrides the clock.
pub const CAIRN_NOW: &str = "CAIRN_NOW";

enum Source {
    System(SystemClock),
    Simulated(OffsetClock),
}

static CLOCK: OnceLock<Result<Source, String>> = OnceLock::new();
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Lets a simulated clock run on at the real pace from now on (for the daemon).
pub fn run_on() {
    RUNNING.store(true, Ordering::SeqCst);
}

fn source() -> Result<&'static Source> {
    CLOCK
        .get_or_init(|| match std::env::var(CAIRN_NOW) {
            Ok(v) if !v.is_empty() => {
                let t: Timestamp = v.parse().map_err(|e| {
                    format!("{CAIRN_NOW} {v:?}: not an RFC 3339 time such as 2026-11-23T10:00:00Z ({e})")
                })?;
                Ok(Source::Simulated(OffsetClock::new(
                    t.to_zoned(jiff::tz::TimeZone::system()),
                )))
            }
            _ => Ok(Source::System(SystemClock)),
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

/// Now, on cairn's clock, in the system time zone.
pub fn now() -> Result<Zoned> {
    Ok(match source()? {
        Source::System(c) => c.now(),
        Source::Simulated(c) if RUNNING.load(Ordering::SeqCst) => c.now(),
        Source::Simulated(c) => c.start().clone(),
    })
}

/// True when `CAIRN_NOW` drives the clock.
pub fn simulated() -> bool {
    matches!(source(), Ok(Source::Simulated(_)))
}
