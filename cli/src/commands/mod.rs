//! The glue between the parsed command line and the modules that do the work: parse
//! names, call, print. Errors are `anyhow` here and nowhere below.

mod containers;
mod diff;
mod images;
pub mod policy;
mod pools;
mod snapshots;
mod timetravel;

use anyhow::Result;
use cairn_backends::SnapshotName;

use crate::cli::{Cli, Command, Format};
use crate::progress::{Bar, Progress};
use crate::state::Store;

/// What every command gets.
pub struct Ctx {
    pub store: Store,
    pub format: Format,
}

impl Ctx {
    /// A progress bar for long operations: on a terminal, and not with `--format json`.
    pub fn progress(&self) -> Box<dyn Progress> {
        Bar::for_terminal(self.format == Format::Table)
    }
}

/// A snapshot name from the command line.
fn snap(s: &str) -> Result<SnapshotName> {
    Ok(crate::names::parse("snapshot", s)?)
}

pub fn run(cli: Cli) -> Result<()> {
    let store = Store::open(&cli.state_dir)?;
    let mut ctx = Ctx {
        store,
        format: cli.format,
    };
    match cli.command {
        Command::Create { image, name, pool } => {
            containers::create(&ctx, &image, &name, pool.as_deref())
        }
        Command::List => containers::list(&ctx),
        Command::Info { name } => containers::info(&ctx, &name),
        Command::Rename { from, to } => containers::rename(&ctx, &from, &to),
        Command::Delete { name } => containers::delete(&ctx, &name),
        Command::Copy {
            source,
            destination,
            pool,
        } => containers::copy(&ctx, &source, &destination, pool.as_deref()),
        Command::Restore {
            name,
            snapshot,
            to,
            dry_run,
            no_safety_snapshot,
            paths,
        } => {
            let name: crate::names::ContainerName = name.parse()?;
            let target = timetravel::target(&name, snapshot.as_deref(), to.as_deref())?;
            if paths.is_empty() {
                timetravel::restore(&mut ctx, &name, &target, dry_run, no_safety_snapshot)
            } else {
                diff::restore_paths(
                    &mut ctx,
                    &name,
                    &target,
                    &paths,
                    dry_run,
                    no_safety_snapshot,
                )
            }
        }
        Command::Diff { name, snap1, snap2 } => diff::diff(&ctx, &name, &snap1, snap2.as_deref()),
        Command::Check { repair } => containers::check(&ctx, repair),
        Command::Snapshot(c) => snapshots::run(&mut ctx, c),
        Command::Image(c) => images::run(&mut ctx, c),
        Command::Pool(c) => pools::run(&ctx, c),
        Command::Policy(c) => policy::run(&mut ctx, c),
        Command::Daemon => policy::daemon(&mut ctx),
    }
}
