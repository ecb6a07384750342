//! `snapshot create|list|show|delete|rename|hold|release`.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};

use super::{snap, Ctx};
use crate::cli::{Format, SnapshotCommand};
use crate::names::ContainerName;
use crate::output;
use crate::snapshots::{self, SnapshotView};

fn hold_text(v: &SnapshotView) -> String {
    match (&v.hold_reason, v.held) {
        (Some(r), _) => format!("yes: {r}"),
        (None, true) => "yes".into(),
        (None, false) => String::new(),
    }
}

fn labels_text(v: &SnapshotView) -> String {
    let l: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    l.join(",")
}

pub fn run(ctx: &mut Ctx, cmd: SnapshotCommand) -> Result<()> {
    match cmd {
        SnapshotCommand::Create {
            name,
            snapshot,
            labels,
            expires,
        } => {
            let name: ContainerName = name.parse()?;
            let now = crate::clock::now()?;
            let expires_at = expires
                .map(|e| crate::timetravel::expiry(&e, &now))
                .transpose()
                .map_err(|e| anyhow!("container {name}: --expires: {e}"))?;
            let snapshot = snapshot.as_deref().map(snap).transpose()?;
            let labels = labels
                .iter()
                .map(|l| snapshots::parse_label(l).map_err(|e| anyhow!("container {name}: {e}")))
                .collect::<Result<BTreeMap<_, _>>>()?;
            let v = snapshots::create(
                &mut ctx.store,
                &name,
                snapshot,
                &labels,
                now.timestamp(),
                expires_at,
            )?;
            match ctx.format {
                Format::Json => output::json(&v),
                Format::Table => println!("created snapshot {} of container {name}", v.name),
            }
        }
        SnapshotCommand::List { name } => {
            let name: ContainerName = name.parse()?;
            let list = snapshots::list(&ctx.store, &name)?;
            match ctx.format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|s| {
                            vec![
                                s.name.clone(),
                                output::time(s.created_at),
                                labels_text(s),
                                s.expires_at.map(output::time).unwrap_or_default(),
                                hold_text(s),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["NAME", "CREATED", "LABELS", "EXPIRES", "HELD"], &rows)
                    );
                }
            }
        }
        SnapshotCommand::Show { name, snapshot } => {
            let name: ContainerName = name.parse()?;
            let v = snapshots::show(&ctx.store, &name, &snap(&snapshot)?)?;
            match ctx.format {
                Format::Json => output::json(&v),
                Format::Table => print!(
                    "{}",
                    output::fields(&[
                        ("container", name.to_string()),
                        ("name", v.name.clone()),
                        ("created", output::time(v.created_at)),
                        ("labels", labels_text(&v)),
                        ("origin", v.origin.clone()),
                        (
                            "expires",
                            v.expires_at
                                .map(output::time)
                                .unwrap_or_else(|| "never".into()),
                        ),
                        ("held", if v.held { hold_text(&v) } else { "no".into() }),
                    ])
                ),
            }
        }
        SnapshotCommand::Delete { name, snapshot } => {
            let name: ContainerName = name.parse()?;
            let s = snap(&snapshot)?;
            snapshots::delete(&mut ctx.store, &name, &s)?;
            println!("deleted snapshot {s} of container {name}");
        }
        SnapshotCommand::Rename { name, from, to } => {
            let name: ContainerName = name.parse()?;
            let (from, to) = (snap(&from)?, snap(&to)?);
            snapshots::rename(&ctx.store, &name, &from, &to)?;
            println!("renamed snapshot {from} of container {name} to {to}");
        }
        SnapshotCommand::Hold {
            name,
            snapshot,
            reason,
        } => super::timetravel::hold(ctx, &name, &snapshot, reason.as_deref())?,
        SnapshotCommand::Release { name, snapshot } => {
            super::timetravel::release(ctx, &name, &snapshot)?
        }
    }
    Ok(())
}
