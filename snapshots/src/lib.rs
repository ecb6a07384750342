//! # cairn-snapshots: time travel for containers, as pure functions
//!
//! Everything here is computation over snapshot lists and times: no storage, no database,
//! no clock of its own. The CLI feeds it what the storage and the state database hold and
//! acts on the answer. Each module opens with the grammar it parses.
//!
//! ## What a reader must know
//! - **Time is injected.** Every function that needs "now" takes a [`jiff::Zoned`] (an
//!   instant and the time zone local expressions, cron lines and calendar buckets are read
//!   in). [`Clock`] hands one out: [`SystemClock`] in production, [`OffsetClock`] for the
//!   CLI's `CAIRN_NOW`, [`ManualClock`] in tests (a year of hourly schedule runs in
//!   seconds).
//! - **Parse, don't validate.** [`TimeExpr`], [`Schedule`], [`Retention`] and [`Grid`] are
//!   built by `FromStr`/`parse`; a value that exists is valid, and its `Display` is the
//!   canonical text, which parses back to the same value (the CLI stores that text).
//!   Errors ([`Error`]) quote the whole input and the part that is wrong.
//! - **Snapshots are sorted oldest first** wherever a slice of creation times is taken
//!   ([`TimeExpr::resolve`] binary-searches it); equal times keep their order, the later
//!   one counting as newer.
//! - **Resolution** ([`TimeExpr::resolve`]): the newest snapshot taken at or before the
//!   time; `@-N` is the N-th newest. A time in the future, or older than every snapshot,
//!   is an error that names the oldest snapshot there is.
//! - **Schedules** ([`Schedule::due`]): only the newest missed slot is ever due, so a
//!   machine that was down takes one catch-up snapshot, not one per missed slot.
//! - **Retention** ([`plan()`]): holds veto, an expiry governs its snapshot alone, manual
//!   snapshots are never pruned by a policy, and among the policy's own snapshots any rule
//!   keeps. Count rules keep the *newest* snapshot of each of their N most recent buckets
//!   that hold one; the grid keeps the *oldest* per interval, counted back from now. Every
//!   decision carries its [`Reason`]. Planning is idempotent.
//!
//! ## Tests
//! Unit tests sit beside each module; `tests/properties.rs` checks the planner's promises
//! on random histories (holds, per-bucket picks, idempotence) and runs a year of an hourly
//! schedule on a [`ManualClock`]. `cargo bench -p cairn-snapshots` times planning and
//! resolution over 100,000 snapshots.

pub mod clock;
pub mod error;
pub mod grid;
pub mod plan;
pub mod rules;
pub mod schedule;
pub mod span;
pub mod timeexpr;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use error::{Error, Result};
pub use grid::Grid;
pub use plan::{plan, Decision, Pick, Reason, Snapshot};
pub use rules::{Period, Retention, Rule};
pub use schedule::{Due, Schedule};
pub use span::{format_duration, parse_duration, parse_positive_duration};
pub use timeexpr::TimeExpr;
