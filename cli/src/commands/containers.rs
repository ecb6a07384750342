//! `create`, `list`, `info`, `rename`, `delete`, `copy`.

use anyhow::Result;
use cairn_backends::SnapshotName;
use serde::Serialize;

use super::Ctx;
use crate::cli::Format;
use crate::containers;
use crate::images::short;
use crate::names::{self, ContainerName};
use crate::output;

#[derive(Serialize)]
struct Summary<'a> {
    name: &'a str,
    pool: &'a str,
    image: Option<&'a str>,
    created_at: jiff::Timestamp,
}

pub fn create(ctx: &Ctx, image: &str, name: &str, pool: Option<&str>) -> Result<()> {
    let name: ContainerName = name.parse()?;
    let progress = ctx.progress();
    let result = containers::create(&ctx.store, image, &name, pool, progress.as_ref());
    progress.finish();
    let rec = result?;
    if ctx.format == Format::Table {
        println!("created container {} in pool {}", rec.name, rec.pool);
    } else {
        output::json(&Summary {
            name: &rec.name,
            pool: &rec.pool,
            image: rec.image.as_deref(),
            created_at: rec.created_at,
        });
    }
    Ok(())
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let all = ctx.store.containers()?;
    let rows: Vec<Summary> = all
        .iter()
        .map(|c| Summary {
            name: &c.name,
            pool: &c.pool,
            image: c.image.as_deref(),
            created_at: c.created_at,
        })
        .collect();
    match ctx.format {
        Format::Json => output::json(&rows),
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.to_string(),
                        r.pool.to_string(),
                        r.image.map(short).unwrap_or("-").to_string(),
                        output::time(r.created_at),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["NAME", "POOL", "IMAGE", "CREATED"], &cells)
            );
        }
    }
    Ok(())
}

pub fn info(ctx: &Ctx, name: &str) -> Result<()> {
    let name: ContainerName = name.parse()?;
    let info = containers::info(&ctx.store, &name)?;
    match ctx.format {
        Format::Json => output::json(&info),
        Format::Table => {
            let snaps: Vec<String> = info.snapshots.iter().map(|s| s.name.clone()).collect();
            print!(
                "{}",
                output::fields(&[
                    ("name", info.name.clone()),
                    ("pool", info.pool.clone()),
                    ("image", info.image.clone().unwrap_or_else(|| "-".into())),
                    ("created", output::time(info.created_at)),
                    ("rootfs", info.rootfs.display().to_string()),
                    (
                        "usage",
                        info.usage
                            .map(|u| cairn_backends::Bytes(u.used).to_string())
                            .unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "snapshots",
                        if snaps.is_empty() {
                            "-".into()
                        } else {
                            snaps.join(", ")
                        }
                    ),
                ])
            );
        }
    }
    Ok(())
}

pub fn rename(ctx: &Ctx, from: &str, to: &str) -> Result<()> {
    let (from, to): (ContainerName, ContainerName) = (from.parse()?, to.parse()?);
    containers::rename(&ctx.store, &from, &to)?;
    println!("renamed container {from} to {to}");
    Ok(())
}

pub fn delete(ctx: &Ctx, name: &str) -> Result<()> {
    let name: ContainerName = name.parse()?;
    containers::delete(&ctx.store, &name)?;
    println!("deleted container {name}");
    Ok(())
}

pub fn copy(ctx: &Ctx, source: &str, destination: &str, pool: Option<&str>) -> Result<()> {
    let (src, snap) = match source.split_once('/') {
        Some((c, s)) => (c, Some(s)),
        None => (source, None),
    };
    let src: ContainerName = src.parse()?;
    let snap: Option<SnapshotName> = snap.map(|s| names::parse("snapshot", s)).transpose()?;
    let dst: ContainerName = destination.parse()?;
    let progress = ctx.progress();
    let result = containers::copy(
        &ctx.store,
        &src,
        snap.as_ref(),
        &dst,
        pool,
        progress.as_ref(),
    );
    progress.finish();
    let rec = result?;
    println!(
        "copied {source} to container {} in pool {}",
        rec.name, rec.pool
    );
    Ok(())
}

pub fn check(ctx: &Ctx, repair: bool) -> Result<()> {
    let findings = crate::check::check(&ctx.store, repair)?;
    match ctx.format {
        Format::Json => output::json(&findings),
        Format::Table if findings.is_empty() => println!("no problems found"),
        Format::Table => {
            let rows: Vec<Vec<String>> = findings
                .iter()
                .map(|f| {
                    let action = match (f.repaired, f.repair.is_empty()) {
                        (true, _) => format!("repaired: {}", f.repair),
                        (false, true) => "cannot repair".to_string(),
                        (false, false) => format!("--repair would {}", f.repair),
                    };
                    vec![f.object.clone(), f.problem.clone(), action]
                })
                .collect();
            print!("{}", output::table(&["OBJECT", "PROBLEM", "ACTION"], &rows));
        }
    }
    let left = findings.iter().filter(|f| !f.repaired).count();
    if left > 0 {
        anyhow::bail!(
            "check: {left} problem(s) left{}",
            if repair {
                ""
            } else {
                "; run cairn check --repair"
            }
        );
    }
    Ok(())
}
