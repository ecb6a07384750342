//! `diff` and `restore --path`: parse, call, print.

use anyhow::{bail, Result};

use super::{snap, Ctx};
use crate::cli::Format;
use crate::diff;
use crate::names::ContainerName;
use crate::output;
use crate::timetravel::Target;

use super::timetravel::describe;

pub fn diff(ctx: &Ctx, name: &str, from: &str, to: Option<&str>) -> Result<()> {
    let name: ContainerName = name.parse()?;
    let from = snap(from)?;
    let to = to.map(snap).transpose()?;
    let d = diff::diff(&ctx.store, &name, &from, to.as_ref())?;
    match ctx.format {
        Format::Json => output::json(&d.changes),
        Format::Table => {
            let rows: Vec<Vec<String>> = d
                .changes
                .iter()
                .map(|c| {
                    let what: Vec<&str> = c.changes.iter().map(|w| w.as_str()).collect();
                    let kind = match c.old_type {
                        Some(old) => format!("{}->{}", old.as_str(), c.kind.as_str()),
                        None => c.kind.as_str().to_string(),
                    };
                    vec![
                        c.status.as_str().to_string(),
                        kind,
                        c.display_path(),
                        what.join(","),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["STATUS", "TYPE", "PATH", "CHANGES"], &rows)
            );
        }
    }
    Ok(())
}

/// `restore NAME SNAP|--to TIME --path P... [--dry-run]`: only those paths, after a
/// safety snapshot.
pub fn restore_paths(
    ctx: &mut Ctx,
    name: &ContainerName,
    target: &Target,
    paths: &[String],
    dry_run: bool,
    no_safety_snapshot: bool,
) -> Result<()> {
    if no_safety_snapshot {
        bail!(
            "container {name}: --no-safety-snapshot: not available with --path; a --path restore always takes a safety snapshot, which cairn snapshot delete {name} SNAP removes afterwards"
        );
    }
    let parsed = diff::parse_paths(name, paths)?;
    let now = crate::clock::now()?;
    let r = diff::restore_paths(&mut ctx.store, name, target, &parsed, &now, dry_run)?;
    match ctx.format {
        Format::Json => output::json(&r),
        Format::Table => println!(
            "{}",
            describe(
                &r.restore,
                target,
                Some(&r.paths),
                r.restored.zip(r.removed)
            )
        ),
    }
    Ok(())
}
