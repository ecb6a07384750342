//! `restore NAME SNAP | --to TIME [--dry-run] [--no-safety-snapshot]` and
//! `snapshot hold|release`.

use anyhow::{anyhow, Result};
use cairn_backends::SnapshotName;

use super::Ctx;
use crate::cli::Format;
use crate::names::{self, ContainerName};
use crate::output;
use crate::timetravel::{self, RestoreReport, Target};

/// Parses `SNAP` (or `NAME/SNAP` for the container's own) or `--to TIME`; clap refuses
/// both, and giving neither is refused here, saying what to give.
pub fn target(name: &ContainerName, snapshot: Option<&str>, to: Option<&str>) -> Result<Target> {
    if let Some(t) = to {
        return Ok(Target::Time(
            t.parse()
                .map_err(|e| anyhow!("container {name}: --to: {e}"))?,
        ));
    }
    let Some(s) = snapshot else {
        return Err(anyhow!(
            "container {name}: give a snapshot name or --to TIME (2h-ago, yesterday 18:00, @-1, ...)"
        ));
    };
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
        Format::Table => println!("{}", describe(&r, target, None, None)),
    }
    Ok(())
}

/// `snapshot NAME (taken T[, the newest taken at or before EXPR (T')])`.
fn restored_snapshot(r: &RestoreReport, target: &Target) -> String {
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

/// What a restore did, or with `--dry-run` would do: of the whole container, or of
/// `paths` only, with `counts` (put back, removed) once done.
pub fn describe(
    r: &RestoreReport,
    target: &Target,
    paths: Option<&[String]>,
    counts: Option<(u64, u64)>,
) -> String {
    let what = match paths {
        Some(p) => format!("{} of container {}", p.join(", "), r.container),
        None => format!("container {}", r.container),
    };
    let snap = restored_snapshot(r, target);
    let safety = r.safety_snapshot.as_deref();
    if r.dry_run {
        let first = match safety {
            Some(s) => format!(", after taking safety snapshot {s}"),
            None => ", without a safety snapshot".into(),
        };
        return format!("would restore {what} from {snap}{first}; nothing changed (dry run)");
    }
    let safety = match safety {
        Some(s) => format!("safety snapshot {s} of the state before"),
        None => "no safety snapshot taken".into(),
    };
    match counts {
        Some((restored, removed)) => format!(
            "restored {what} from {snap} ({restored} put back, {removed} removed; {safety})"
        ),
        None => format!("restored {what} from {snap}; {safety}"),
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
