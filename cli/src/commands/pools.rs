//! `pool create|list|show|delete`.

use anyhow::Result;
use cairn_backends::{Bytes, DriverKind, PoolName, PoolSource};
use serde::Serialize;

use super::Ctx;
use crate::cli::{Format, PoolCommand};
use crate::names;
use crate::output;
use crate::pools;
use crate::state::PoolRecord;

#[derive(Serialize)]
struct PoolView<'a> {
    name: &'a str,
    driver: &'a str,
    source: &'a PoolSource,
    created_at: jiff::Timestamp,
}

fn view(r: &PoolRecord) -> PoolView<'_> {
    PoolView {
        name: r.name.as_str(),
        driver: r.driver.as_str(),
        source: &r.spec.source,
        created_at: r.created_at,
    }
}

fn source_text(s: &PoolSource) -> String {
    match s {
        PoolSource::StateDir => "state directory".into(),
        PoolSource::Directory { path } => path.display().to_string(),
        PoolSource::Device { path, .. } => format!("device {}", path.display()),
        PoolSource::LoopFile { path, size } => format!("loop file {} ({size})", path.display()),
        PoolSource::Existing { name } => format!("existing {name}"),
    }
}

pub fn run(ctx: &Ctx, cmd: PoolCommand) -> Result<()> {
    match cmd {
        PoolCommand::Create(c) => {
            let name: PoolName = names::parse("pool", &c.name)?;
            let driver: DriverKind = c
                .driver
                .parse()
                .map_err(|e| anyhow::anyhow!("pool {name}: {e}"))?;
            let size = c
                .size
                .as_deref()
                .map(|s| {
                    s.parse::<Bytes>()
                        .map_err(|e| anyhow::anyhow!("pool {name}: --size: {e}"))
                })
                .transpose()?;
            let rec = pools::create(&ctx.store, &name, driver, c.source.as_deref(), size)?;
            println!(
                "created pool {} ({}, {})",
                rec.name,
                rec.driver,
                source_text(&rec.spec.source)
            );
        }
        PoolCommand::List => {
            let all = ctx.store.pools()?;
            match ctx.format {
                Format::Json => output::json(&all.iter().map(view).collect::<Vec<_>>()),
                Format::Table => {
                    let rows: Vec<Vec<String>> = all
                        .iter()
                        .map(|r| {
                            vec![
                                r.name.to_string(),
                                r.driver.to_string(),
                                source_text(&r.spec.source),
                                output::time(r.created_at),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["NAME", "DRIVER", "SOURCE", "CREATED"], &rows)
                    );
                }
            }
        }
        PoolCommand::Show { name } => {
            let d = pools::show(&ctx.store, &name)?;
            match ctx.format {
                Format::Json => output::json(&serde_json::json!({
                    "name": d.record.name,
                    "driver": d.record.driver,
                    "source": d.record.spec.source,
                    "state_dir": d.record.spec.state_dir,
                    "created_at": d.record.created_at,
                    "capabilities": d.info.capabilities,
                    "usage": d.usage,
                    "containers": d.containers,
                    "images": d.images,
                })),
                Format::Table => {
                    let space = d
                        .usage
                        .map(|u| {
                            format!(
                                "{} used, {} free of {}",
                                Bytes(u.used),
                                Bytes(u.free),
                                Bytes(u.total)
                            )
                        })
                        .unwrap_or_else(|| "-".into());
                    print!(
                        "{}",
                        output::fields(&[
                            ("name", d.record.name.to_string()),
                            ("driver", d.record.driver.to_string()),
                            ("source", source_text(&d.record.spec.source)),
                            ("created", output::time(d.record.created_at)),
                            ("space", space),
                            ("copy-on-write", d.info.capabilities.cow_clone.to_string()),
                            ("containers", d.containers.len().to_string()),
                            ("images", d.images.len().to_string()),
                        ])
                    );
                }
            }
        }
        PoolCommand::Delete { name } => {
            let name: PoolName = names::parse("pool", &name)?;
            pools::delete(&ctx.store, name.as_str())?;
            println!("deleted pool {name}");
        }
    }
    Ok(())
}
