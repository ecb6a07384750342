//! Snapshot policies: a schedule and retention rules attached to one container or to all
//! of them (`*`; a container's own policy wins), hooks around each scheduled snapshot,
//! and the three ways to apply them: [`run_due`] (`cairn policy run`, for cron or a
//! systemd timer), [`daemon`] (`cairn daemon`) and [`plan`] (`cairn policy plan`, which
//! changes nothing).
//!
//! A run does, per container: take the snapshot that is due (one, however many slots
//! were missed), named `auto-<UTC time>`, with the pre-hook before it (a failing pre-hook
//! skips the snapshot) and the post-hook after; then prune what the rules let go, each
//! deletion printed on stderr and recorded in the prune log with the rule behind it.
//! Hooks run with no lock held, via `sh -c`, with `CAIRN_CONTAINER`, `CAIRN_SNAPSHOT` and
//! `CAIRN_HOOK` (`pre` or `post`) in the environment; their output goes to stderr.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use cairn_snapshots::{plan as plan_retention, Retention, Schedule, TimeExpr};
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Serialize;

use crate::containers::{self, get, open_locked, storage};
use crate::names::ContainerName;
use crate::pools::Pool;
use crate::state::{self, PolicyRecord, PruneLogEntry, SnapshotMeta, Store, ORIGIN_POLICY};
use crate::timetravel::{self, dated_name, entries, Entry};

/// The target that stands for every container.
pub const ALL: &str = "*";
/// The prefix of the snapshots policies take.
pub const AUTO_PREFIX: &str = "auto-";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("policy {target}: {source}")]
    Parse {
        target: String,
        #[source]
        source: cairn_snapshots::Error,
    },
    #[error("policy {target}: {problem}")]
    Invalid { target: String, problem: String },
    #[error("container {0}: has no policy and there is no policy for all containers (cairn policy set {0} --schedule ... --keep ...)")]
    NoPolicy(String),
    #[error("container {container}: {problem}")]
    Container { container: String, problem: String },
    #[error(transparent)]
    TimeTravel(#[from] timetravel::Error),
    #[error(transparent)]
    Containers(#[from] containers::Error),
    #[error(transparent)]
    State(#[from] state::Error),
    #[error(transparent)]
    Pool(#[from] crate::pools::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whom a policy is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    Container(ContainerName),
}

impl Target {
    fn key(&self) -> &str {
        match self {
            Target::All => ALL,
            Target::Container(c) => c.as_str(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::All => f.write_str("--all"),
            Target::Container(c) => f.write_str(c.as_str()),
        }
    }
}

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub target: String,
    pub schedule: Option<Schedule>,
    pub retention: Retention,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
    pub updated_at: Timestamp,
}

impl Policy {
    fn from_record(r: &PolicyRecord) -> Result<Policy> {
        let bad = |source| Error::Parse {
            target: r.target.clone(),
            source,
        };
        Ok(Policy {
            target: r.target.clone(),
            schedule: r
                .schedule
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(bad)?,
            retention: Retention::parse(&r.keep, r.grid.as_deref()).map_err(bad)?,
            pre_hook: r.pre_hook.clone(),
            post_hook: r.post_hook.clone(),
            updated_at: r.updated_at,
        })
    }

    /// The policy in its canonical texts: what is stored, and what `policy show/list`
    /// print.
    pub fn record(&self) -> PolicyRecord {
        PolicyRecord {
            target: self.target.clone(),
            schedule: self.schedule.as_ref().map(Schedule::to_string),
            keep: self.retention.keep_text(),
            grid: self.retention.grid().map(|g| g.to_string()),
            pre_hook: self.pre_hook.clone(),
            post_hook: self.post_hook.clone(),
            updated_at: self.updated_at,
        }
    }
}

/// What `policy set` changes; `None` leaves a setting as it is, `Some("")` or
/// `Some("none")` clears it.
#[derive(Debug, Default)]
pub struct Changes {
    pub schedule: Option<String>,
    pub keep: Option<String>,
    pub grid: Option<String>,
    pub pre_hook: Option<String>,
    pub post_hook: Option<String>,
}

fn cleared(v: Option<String>, old: Option<String>) -> Option<String> {
    match v {
        None => old,
        Some(s) if s.trim().is_empty() || s.trim() == "none" => None,
        Some(s) => Some(s),
    }
}

/// Creates or changes a policy. Everything is parsed before anything is stored.
pub fn set(store: &Store, target: &Target, c: Changes, now: &Zoned) -> Result<Policy> {
    if let Target::Container(name) = target {
        get(store, name)?;
    }
    let old = store.policy(target.key())?;
    let bad = |source| Error::Parse {
        target: target.to_string(),
        source,
    };
    let schedule = cleared(c.schedule, old.as_ref().and_then(|o| o.schedule.clone()))
        .map(|s| s.parse::<Schedule>())
        .transpose()
        .map_err(bad)?;
    let keep = cleared(c.keep, old.as_ref().map(|o| o.keep.clone())).unwrap_or_default();
    let grid = cleared(c.grid, old.as_ref().and_then(|o| o.grid.clone()));
    let retention = Retention::parse(&keep, grid.as_deref()).map_err(bad)?;
    if schedule.is_none() && retention.is_empty() {
        return Err(Error::Invalid {
            target: target.to_string(),
            problem: "nothing to do: give a --schedule, retention rules (--keep, --grid), or both"
                .into(),
        });
    }
    let policy = Policy {
        target: target.key().to_string(),
        schedule,
        retention,
        pre_hook: cleared(c.pre_hook, old.as_ref().and_then(|o| o.pre_hook.clone())),
        post_hook: cleared(c.post_hook, old.as_ref().and_then(|o| o.post_hook.clone())),
        updated_at: now.timestamp(),
    };
    store.set_policy(&policy.record())?;
    Ok(policy)
}

/// Removes a policy.
pub fn unset(store: &Store, target: &Target) -> Result<()> {
    if !store.delete_policy(target.key())? {
        return Err(Error::Invalid {
            target: target.to_string(),
            problem: "there is no such policy (see cairn policy list)".into(),
        });
    }
    Ok(())
}

/// Every stored policy.
pub fn list(store: &Store) -> Result<Vec<Policy>> {
    store.policies()?.iter().map(Policy::from_record).collect()
}

/// The policy stored for `target` exactly.
pub fn get_policy(store: &Store, target: &Target) -> Result<Option<Policy>> {
    store
        .policy(target.key())?
        .as_ref()
        .map(Policy::from_record)
        .transpose()
}

/// The policy that applies to a container: its own, else the one for all.
pub fn effective(store: &Store, name: &ContainerName) -> Result<Option<Policy>> {
    match get_policy(store, &Target::Container(name.clone()))? {
        Some(p) => Ok(Some(p)),
        None => get_policy(store, &Target::All),
    }
}

fn planner_view(e: &Entry) -> cairn_snapshots::Snapshot {
    cairn_snapshots::Snapshot {
        name: e.name.to_string(),
        created_at: e.created_at,
        managed: e.meta.origin == ORIGIN_POLICY,
        held: e.meta.hold.clone(),
        expires_at: e.meta.expires_at,
    }
}

/// Runs a hook; `Err` describes how it failed.
fn run_hook(cmd: &str, which: &str, name: &ContainerName, snap: &str) -> Result<(), String> {
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot pass stderr to the {which}-hook: {e}"))?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("CAIRN_CONTAINER", name.as_str())
        .env("CAIRN_SNAPSHOT", snap)
        .env("CAIRN_HOOK", which)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .status()
        .map_err(|e| format!("{which}-hook {cmd:?} could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{which}-hook {cmd:?} failed ({status})"))
    }
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub taken: usize,
    pub pruned: usize,
    /// One line per container that had a problem.
    pub failures: Vec<String>,
}

/// Does what is due at `now` for every container with a policy.
pub fn run_due(store: &mut Store, now: &Zoned) -> Result<RunSummary> {
    let mut summary = RunSummary::default();
    for record in store.containers()? {
        let Ok(name) = record.name.parse::<ContainerName>() else {
            continue;
        };
        let Some(policy) = effective(store, &name)? else {
            continue;
        };
        if let Err(e) = run_one(store, &name, &policy, now, &mut summary) {
            eprintln!("error: {e}");
            summary.failures.push(e.to_string());
        }
    }
    Ok(summary)
}

fn run_one(
    store: &mut Store,
    name: &ContainerName,
    policy: &Policy,
    now: &Zoned,
    summary: &mut RunSummary,
) -> Result<()> {
    if let Some(schedule) = &policy.schedule {
        let last = store.last_policy_run(name.as_str())?;
        if let Some(due) = schedule.due(last, now) {
            take_due(store, name, policy, schedule, due, last, now, summary)?;
        }
    }
    if !policy.retention.is_empty() {
        summary.pruned += prune(store, name, &policy.retention, now)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn take_due(
    store: &mut Store,
    name: &ContainerName,
    policy: &Policy,
    schedule: &Schedule,
    due: cairn_snapshots::Due,
    last: Option<Timestamp>,
    now: &Zoned,
    summary: &mut RunSummary,
) -> Result<()> {
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let list = entries(store, &pool, name)?;
    let snap = dated_name(AUTO_PREFIX, now.timestamp(), |n| {
        list.iter().any(|e| e.name.as_str() == n)
    });
    if let (Some(n), Some(last)) = (due.missed, last) {
        if n > 1 {
            let more = if n >= cairn_snapshots::schedule::MISSED_COUNT_LIMIT {
                "or more "
            } else {
                ""
            };
            println!(
                "container {name}: {n} {more}slots of schedule {schedule} passed since the last run at {last}; taking one catch-up snapshot for them"
            );
        }
    }
    // The slot counts as handled whatever the hooks do: the next try is the next slot.
    store.set_last_policy_run(name.as_str(), now.timestamp())?;
    if let Some(hook) = &policy.pre_hook {
        if let Err(why) = run_hook(hook, "pre", name, snap.as_str()) {
            let line = format!("container {name}: {why}: snapshot {snap} skipped");
            eprintln!("{line}");
            summary.failures.push(line);
            return Ok(());
        }
    }
    {
        let (_record, pool, _lock) = open_locked(store, name)?;
        let meta = SnapshotMeta {
            origin: ORIGIN_POLICY.into(),
            taken_at: Some(now.timestamp()),
            ..SnapshotMeta::default()
        };
        timetravel::take(store, &pool, name, &snap, &meta, &BTreeMap::new())?;
    }
    summary.taken += 1;
    println!(
        "container {name}: took snapshot {snap} (schedule {schedule}, slot {})",
        due.slot
    );
    if let Some(hook) = &policy.post_hook {
        if let Err(why) = run_hook(hook, "post", name, snap.as_str()) {
            let line =
                format!("container {name}: {why} after snapshot {snap} (the snapshot is kept)");
            eprintln!("{line}");
            summary.failures.push(line);
        }
    }
    Ok(())
}

/// Deletes what the rules let go; returns how many were deleted.
fn prune(
    store: &mut Store,
    name: &ContainerName,
    retention: &Retention,
    now: &Zoned,
) -> Result<usize> {
    let (_record, pool, _lock) = open_locked(store, name)?;
    let list = entries(store, &pool, name)?;
    let view: Vec<_> = list.iter().map(planner_view).collect();
    let decisions = plan_retention(&view, retention, now);
    let mut pruned = 0;
    for (e, d) in list.iter().zip(decisions) {
        if d.keep {
            continue;
        }
        pool.backend
            .delete_snapshot(&name.volume(), &e.name)
            .map_err(storage(name, "prune snapshot"))?;
        store.delete_snapshot_meta(name.as_str(), e.name.as_str())?;
        store.set_snapshot_labels(name.as_str(), e.name.as_str(), &BTreeMap::new())?;
        let entry = PruneLogEntry {
            at: now.timestamp(),
            container: name.to_string(),
            snapshot: e.name.to_string(),
            created_at: e.created_at,
            rule: d.reason.to_string(),
        };
        store.log_prune(&entry)?;
        eprintln!(
            "container {name}: pruned snapshot {} (taken {}): {}",
            e.name, e.created_at, entry.rule
        );
        pruned += 1;
    }
    Ok(pruned)
}

static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

/// The name of the signal that asked the daemon to stop, if one came.
fn stop_signal() -> Option<&'static str> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        _ => Some("SIGTERM"),
    }
}

/// Runs what is due, then sleeps until the next slot of any policy (at most a minute, so
/// changed policies are seen), until SIGTERM or SIGINT. Returns the signal's name.
pub fn daemon(
    store: &mut Store,
    now: impl Fn() -> anyhow::Result<Zoned>,
) -> anyhow::Result<&'static str> {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    loop {
        // A signal that came while a run was busy stops the daemon before the next run.
        if let Some(signal) = stop_signal() {
            return Ok(signal);
        }
        let t = now()?;
        let summary = run_due(store, &t)?;
        if summary.taken + summary.pruned > 0 || !summary.failures.is_empty() {
            eprintln!(
                "cairn daemon: {}: took {}, pruned {}, {} problem(s)",
                t.timestamp(),
                summary.taken,
                summary.pruned,
                summary.failures.len()
            );
        }
        let mut wake = t.checked_add(SignedDuration::from_secs(60))?;
        for record in store.containers()? {
            let Ok(name) = record.name.parse::<ContainerName>() else {
                continue;
            };
            if let Some(next) = effective(store, &name)?
                .and_then(|p| p.schedule)
                .and_then(|s| s.next_after(&t))
            {
                if next < wake {
                    wake = next;
                }
            }
        }
        while now()? < wake {
            if let Some(signal) = stop_signal() {
                return Ok(signal);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One line of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    /// `take`, `keep` or `prune`.
    pub action: &'static str,
    pub snapshot: String,
    pub created_at: Timestamp,
    pub rule: String,
}

/// What a simulation did.
#[derive(Debug, Serialize)]
pub struct Simulation {
    pub from: Timestamp,
    pub until: Timestamp,
    pub taken: usize,
    pub pruned: usize,
    /// Every take and prune, in order (`at` is the simulated time).
    pub events: Vec<SimEvent>,
}

#[derive(Debug, Serialize)]
pub struct SimEvent {
    pub at: Timestamp,
    pub action: &'static str,
    pub snapshot: String,
    pub rule: String,
}

/// What `policy plan` prints.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub container: String,
    pub at: Timestamp,
    pub policy: PolicyRecord,
    /// At `at`: the snapshot that would be taken, and every snapshot kept or pruned.
    pub plan: Vec<PlanRow>,
    /// With `--simulate`: the run of the schedule from `at` on, and what is left after.
    pub simulation: Option<Simulation>,
    pub survivors: Option<Vec<PlanRow>>,
}

/// One policy run at `at` over `snaps` (changed in place: taken added, pruned removed);
/// returns the rows, the taken snapshot first.
fn step(
    policy: &Policy,
    snaps: &mut Vec<cairn_snapshots::Snapshot>,
    last_run: &mut Option<Timestamp>,
    at: &Zoned,
) -> Vec<PlanRow> {
    let mut taken = None;
    if policy
        .schedule
        .as_ref()
        .is_some_and(|s| s.due(*last_run, at).is_some())
    {
        let name = dated_name(AUTO_PREFIX, at.timestamp(), |n| {
            snaps.iter().any(|s| s.name == n)
        })
        .to_string();
        snaps.push(cairn_snapshots::Snapshot {
            name: name.clone(),
            created_at: at.timestamp(),
            managed: true,
            held: None,
            expires_at: None,
        });
        *last_run = Some(at.timestamp());
        taken = Some(name);
    }
    let decisions = plan_retention(snaps, &policy.retention, at);
    let mut rows: Vec<PlanRow> = snaps
        .iter()
        .zip(&decisions)
        .map(|(s, d)| PlanRow {
            action: if !d.keep {
                "prune"
            } else if Some(&s.name) == taken.as_ref() {
                "take"
            } else {
                "keep"
            },
            snapshot: s.name.clone(),
            created_at: s.created_at,
            rule: d.reason.to_string(),
        })
        .collect();
    let mut keep = decisions.iter().map(|d| d.keep);
    snaps.retain(|_| keep.next().unwrap_or(true));
    rows.sort_by_key(|r| (r.action != "take", std::cmp::Reverse(r.created_at)));
    rows
}

/// What the container's policy would do at `at` (default now), and with `simulate`, what
/// running it on schedule for that long would leave. Changes nothing.
pub fn plan(
    store: &Store,
    name: &ContainerName,
    at: Option<&TimeExpr>,
    simulate: Option<SignedDuration>,
    now: &Zoned,
) -> Result<PlanReport> {
    let policy = effective(store, name)?.ok_or_else(|| Error::NoPolicy(name.to_string()))?;
    let at = match at {
        None => now.clone(),
        Some(e) => {
            let t = e.instant(now).map_err(timetravel::time_err(name))?.ok_or_else(|| {
                Error::Container {
                    container: name.to_string(),
                    problem: format!("--at {e}: names a snapshot, not a time; give a time such as 2h-ago or 2026-11-23T10:00:00Z"),
                }
            })?;
            t.to_zoned(now.time_zone().clone())
        }
    };
    let record = get(store, name)?;
    let pool = Pool::open(store, Some(&record.pool))?;
    let mut snaps: Vec<_> = entries(store, &pool, name)?
        .iter()
        .map(planner_view)
        .collect();
    let mut last_run = store.last_policy_run(name.as_str())?;
    let rows = step(&policy, &mut snaps, &mut last_run, &at);
    let (simulation, survivors) = match simulate {
        None => (None, None),
        Some(d) => {
            let until = at.checked_add(d).map_err(|e| Error::Container {
                container: name.to_string(),
                problem: format!("--simulate {}: {e}", cairn_snapshots::format_duration(d)),
            })?;
            let mut sim = Simulation {
                from: at.timestamp(),
                until: until.timestamp(),
                taken: 0,
                pruned: 0,
                events: Vec::new(),
            };
            let mut t = at.clone();
            let mut last_rows;
            loop {
                let next = policy
                    .schedule
                    .as_ref()
                    .and_then(|s| s.next_after(&t))
                    .filter(|n| *n <= until)
                    .unwrap_or_else(|| until.clone());
                t = next;
                last_rows = step(&policy, &mut snaps, &mut last_run, &t);
                for r in last_rows.iter().filter(|r| r.action != "keep") {
                    match r.action {
                        "take" => sim.taken += 1,
                        _ => sim.pruned += 1,
                    }
                    sim.events.push(SimEvent {
                        at: t.timestamp(),
                        action: r.action,
                        snapshot: r.snapshot.clone(),
                        rule: r.rule.clone(),
                    });
                }
                if t >= until {
                    break;
                }
            }
            let survivors = last_rows
                .into_iter()
                .filter(|r| r.action != "prune")
                .collect();
            (Some(sim), Some(survivors))
        }
    };
    Ok(PlanReport {
        container: name.to_string(),
        at: at.timestamp(),
        policy: policy.record(),
        plan: rows,
        simulation,
        survivors,
    })
}
