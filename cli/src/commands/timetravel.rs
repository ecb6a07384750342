//! `restore NAME SNAP | --to TIME [--dry-run] [--no-safety-snapshot]` and
//! `snapshot hold|release`.

use anyhow::{anyhow, Result};
use cairn_backends::SnapshotName;
use cairn_snapshots::TimeExpr;

use super::Ctx;
use crate::cli::Format;
use crate::names::{self, ContainerName};
use crate::output;
use crate::timetravel::{self, RestoreReport};

/// What to restore: a snapshot by name, or the one a time names.
pub enum Target {
    Snapshot(SnapshotName),
    Time(TimeExpr),
}

/// Parses `SNAP` (or `NAME/SNAP` for the container's own) or `--to TIME`.
pub fn target(name: &ContainerName, snapshot: Option<&str>, to: Option<&str>) -> Result<Target> {
    match (snapshot, to) {
        (Some(s), None) => {
            // `NAME/SNAP` is accepted for the container's own snapshots only.
            let s = match s.split_once('/') {
                Some((owner, snap)) if owner == name.as_str() => snap,
                Some((owner, _)) => {
                    return Err(anyhow!(
                        "container {name}: snapshot {s}: belongs to container {owner}; restore takes the container's own snapshots (copy {s} to a new container instead)"
                    ))
                }
                None => s,
            };
            Ok(Target::Snapshot(names::parse("snapshot", s)?))
        }
        (None, Some(t)) => Ok(Target::Time(
            t.parse().map_err(|e| anyhow!("container {name}: --to: {e}"))?,
        )),
        (Some(s), Some(t)) => Err(anyhow!(
            "container {name}: give a snapshot ({s}) or --to {t}, not both"
        )),
        (None, None) => Err(anyhow!(
            "container {name}: give a snapshot name or --to TIME (2h-ago, yesterday 18:00, @-1, ...)"
        )),
    }
}

/// The snapshot a target names now (for callers that restore in their own way).
pub fn resolve(ctx: &Ctx, name: &ContainerName, t: &Target) -> Result<SnapshotName> {
    match t {
        Target::Snapshot(s) => Ok(s.clone()),
        Target::Time(e) => {
            let now = crate::clock::now()?;
            Ok(timetravel::resolve(&ctx.store, name, e, &now)?.0.name)
        }
    }
}

pub fn restore(
    ctx: &mut Ctx,
    name: &ContainerName,
    target: &Target,
    dry_run: bool,
    no_safety_snapshot: bool,
) -> Result<()> {
    let now = crate::clock::now()?;
    let t = match target {
        Target::Time(e) => Ok(e),
        Target::Snapshot(s) => Err(s),
    };
    let r = timetravel::restore(&mut ctx.store, name, t, &now, !no_safety_snapshot, dry_run)?;
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Table => println!("{}", describe(&r, target)),
    }
    Ok(())
}

fn describe(r: &RestoreReport, target: &Target) -> String {
    let why = match (target, r.target_time) {
        (Target::Time(e), Some(t)) => {
            format!(", the newest taken at or before {e} ({})", output::time(t))
        }
        (Target::Time(e), None) => format!(" ({e})"),
        (Target::Snapshot(_), _) => String::new(),
    };
    let snap = format!(
        "snapshot {} (taken {}{why})",
        r.snapshot,
        output::time(r.snapshot_created_at)
    );
    let safety = r
        .safety_snapshot
        .as_ref()
        .map(|s| format!("; safety snapshot {s} of the state before"));
    if r.dry_run {
        format!(
            "would restore container {} from {snap}{}; nothing changed (dry run)",
            r.container,
            safety
                .map(|s| s.replace("; safety snapshot", ", after taking safety snapshot"))
                .unwrap_or_else(|| ", without a safety snapshot".into())
        )
    } else {
        format!(
            "restored container {} from {snap}{}",
            r.container,
            safety.unwrap_or_else(|| "; no safety snapshot taken".into())
        )
    }
}

pub fn hold(ctx: &Ctx, name: &str, snapshot: &str, reason: Option<&str>) -> Result<()> {
    let name: ContainerName = name.parse()?;
    let s: SnapshotName = names::parse("snapshot", snapshot)?;
    let now = crate::clock::now()?;
    timetravel::hold(&ctx.store, &name, &s, reason.unwrap_or(""), &now)?;
    println!("held snapshot {s} of container {name}");
    Ok(())
}

pub fn release(ctx: &Ctx, name: &str, snapshot: &str) -> Result<()> {
    let name: ContainerName = name.parse()?;
    let s: SnapshotName = names::parse("snapshot", snapshot)?;
    timetravel::release(&ctx.store, &name, &s)?;
    println!("released snapshot {s} of container {name}");
    Ok(())
}
