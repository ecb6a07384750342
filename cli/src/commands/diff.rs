//! `diff` and `restore --path`: parse, call, print.

use anyhow::Result;
use cairn_backends::SnapshotName;

use super::Ctx;
use crate::cli::Format;
use crate::diff;
use crate::names::{self, ContainerName};
use crate::output;

fn snap(s: &str) -> Result<SnapshotName> {
    Ok(names::parse("snapshot", s)?)
}

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

/// `restore NAME SNAP --path P...`: only those paths, after a safety snapshot.
pub fn restore_paths(
    ctx: &mut Ctx,
    name: &ContainerName,
    s: &SnapshotName,
    paths: &[String],
) -> Result<()> {
    let parsed = diff::parse_paths(name, paths)?;
    let now = crate::clock::now()?;
    let r = diff::restore_paths(&mut ctx.store, name, s, &parsed, &now)?;
    let list: Vec<String> = parsed.iter().map(|p| p.to_string()).collect();
    println!(
        "restored {} of container {name} from snapshot {s} ({} put back, {} removed; safety snapshot {})",
        list.join(", "),
        r.stats.restored,
        r.stats.removed,
        r.safety_snapshot
    );
    Ok(())
}
