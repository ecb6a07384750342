//! `restore NAME SNAP | --to TIME [--dry-run] [--no-safety-snapshot]` and
//! `snapshot hold|release`.

use anyhow::{anyhow, Result};
use cairn_backends::SnapshotName;

use super::Ctx;
use crate::cli::Format;
use crate::names::{self, ContainerName};
use crate::output;
use crate::timetravel::{self, RestoreReport, Target};

/// Parses `SNAP` (or `NAME/SNAP` for the container's own) or `--to TIME`; clap asks for
/// one of them and refuses both.
pub fn target(name: &ContainerName, snapshot: Option<&str>, to: Option<&str>) -> Result<Target> {
    if let Some(t) = to {
        return Ok(Target::Time(
            t.parse()
                .map_err(|e| anyhow!("container {name}: --to: {e}"))?,
        ));
    }
    let s = snapshot.unwrap_or_default();
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

pub fn restore(
    ctx: &mut Ctx,
    name: &ContainerName,
    target: &Target,
    dry_run: bool,
    no_safety_snapshot: bool,
) -> Result<()> {
    let now = crate::clock::now()?;
    let r = timetravel::restore(
        &mut ctx.store,
        name,
        target,
        &now,
        !no_safety_snapshot,
        dry_run,
    )?;
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Table => println!("{}", describe(&r, target)),
    }
    Ok(())
}

/// `snapshot NAME (taken T[, the newest taken at or before EXPR (T')])`.
pub fn restored_snapshot(r: &RestoreReport, target: &Target) -> String {
    let why = match (target, r.target_time) {
        (Target::Time(e), Some(t)) => {
            format!(", the newest taken at or before {e} ({})", output::time(t))
        }
        (Target::Time(e), None) => format!(" ({e})"),
        (Target::Snapshot(_), _) => String::new(),
    };
    format!(
        "snapshot {} (taken {}{why})",
        r.snapshot,
        output::time(r.snapshot_created_at)
    )
}

fn describe(r: &RestoreReport, target: &Target) -> String {
    let snap = restored_snapshot(r, target);
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
