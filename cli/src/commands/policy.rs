//! `policy set|show|list|unset|run|plan|log` and `daemon`.

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};

use super::Ctx;
use crate::cli::Format;
use crate::names::ContainerName;
use crate::output;
use crate::policy::{self, Changes, Policy, Target, ALL};
use crate::state::PolicyRecord;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Attach a policy to a container (or --all): a schedule and retention rules.
    Set(PolicySet),
    /// Show the policy that applies to a container (or the --all one).
    Show {
        name: Option<String>,
        /// The policy for all containers.
        #[arg(long)]
        all: bool,
    },
    /// List every policy.
    List,
    /// Remove a container's policy (or the --all one).
    Unset {
        name: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Do what is due now (take, then prune) and exit: for cron or a systemd timer.
    Run,
    /// What the policy would take and prune, and which rule keeps each survivor.
    Plan {
        name: String,
        /// Plan at this time instead of now (2h-ago, 2026-12-01T00:00:00Z, ...).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Run the schedule forward this long (30d, 1w...) and show what is left.
        #[arg(long, value_name = "DURATION")]
        simulate: Option<String>,
    },
    /// Show the log of snapshots deleted by pruning, with the rule that let each go.
    Log { name: Option<String> },
}

#[derive(Debug, Args)]
pub struct PolicySet {
    /// The container (or --all).
    pub name: Option<String>,
    /// The policy for every container without its own.
    #[arg(long)]
    pub all: bool,
    /// When to take snapshots: a cron line ("0 */4 * * *") or @hourly, @daily, @weekly,
    /// @monthly, @yearly; "none" for no automatic snapshots.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Retention rules: "hourly=24 daily=7 weekly=4 monthly=12 yearly=2 last=5 within=2d"
    /// (keep-last 5, keep-within 2d also read); "none" to remove.
    #[arg(long)]
    pub keep: Option<String>,
    /// A zrepl grid: "1x1h(keep=all) | 24x1h | 14x1d"; "none" to remove.
    #[arg(long)]
    pub grid: Option<String>,
    /// A command run (sh -c) before each scheduled snapshot; failing skips it.
    #[arg(long, value_name = "COMMAND")]
    pub pre_hook: Option<String>,
    /// A command run (sh -c) after each scheduled snapshot.
    #[arg(long, value_name = "COMMAND")]
    pub post_hook: Option<String>,
}

fn target(name: Option<String>, all: bool) -> Result<Target> {
    match (name, all) {
        (Some(n), false) => Ok(Target::Container(n.parse::<ContainerName>()?)),
        (None, true) => Ok(Target::All),
        (Some(n), true) => bail!("policy: give a container ({n}) or --all, not both"),
        (None, false) => bail!("policy: give a container name or --all"),
    }
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn shown_target(t: &str) -> String {
    if t == ALL {
        "--all".into()
    } else {
        t.into()
    }
}

fn print_policy(p: &PolicyRecord, applies_to: Option<&str>) {
    let mut f = vec![("policy", shown_target(&p.target))];
    if let Some(c) = applies_to {
        f.insert(0, ("container", c.to_string()));
    }
    f.extend([
        ("schedule", dash(&p.schedule)),
        (
            "keep",
            if p.keep.is_empty() {
                "-".into()
            } else {
                p.keep.clone()
            },
        ),
        ("grid", dash(&p.grid)),
        ("pre-hook", dash(&p.pre_hook)),
        ("post-hook", dash(&p.post_hook)),
        ("updated", output::time(p.updated_at)),
    ]);
    print!("{}", output::fields(&f));
}

pub fn run(ctx: &mut Ctx, cmd: PolicyCommand) -> Result<()> {
    let now = crate::clock::now()?;
    match cmd {
        PolicyCommand::Set(s) => {
            let t = target(s.name, s.all)?;
            let p = policy::set(
                &ctx.store,
                &t,
                Changes {
                    schedule: s.schedule,
                    keep: s.keep,
                    grid: s.grid,
                    pre_hook: s.pre_hook,
                    post_hook: s.post_hook,
                },
                &now,
            )?;
            match ctx.format {
                Format::Json => output::json(&p.record()),
                Format::Table => print_policy(&p.record(), None),
            }
        }
        PolicyCommand::Show { name, all } => {
            let t = target(name, all)?;
            let p: Policy = match &t {
                Target::All => policy::get_policy(&ctx.store, &t)?.ok_or_else(|| {
                    anyhow!("policy --all: there is no policy for all containers (cairn policy set --all --schedule ... --keep ...)")
                })?,
                Target::Container(c) => {
                    crate::containers::get(&ctx.store, c)?;
                    policy::effective(&ctx.store, c)?
                        .ok_or_else(|| policy::Error::NoPolicy(c.to_string()))?
                }
            };
            let applies = match &t {
                Target::Container(c) => Some(c.to_string()),
                Target::All => None,
            };
            match ctx.format {
                Format::Json => output::json(&p.record()),
                Format::Table => print_policy(&p.record(), applies.as_deref()),
            }
        }
        PolicyCommand::List => {
            let list: Vec<PolicyRecord> = policy::list(&ctx.store)?
                .iter()
                .map(Policy::record)
                .collect();
            match ctx.format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|p| {
                            vec![
                                shown_target(&p.target),
                                dash(&p.schedule),
                                p.keep.clone(),
                                dash(&p.grid),
                                [
                                    p.pre_hook.as_ref().map(|_| "pre"),
                                    p.post_hook.as_ref().map(|_| "post"),
                                ]
                                .into_iter()
                                .flatten()
                                .collect::<Vec<_>>()
                                .join(","),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["TARGET", "SCHEDULE", "KEEP", "GRID", "HOOKS"], &rows)
                    );
                }
            }
        }
        PolicyCommand::Unset { name, all } => {
            let t = target(name, all)?;
            policy::unset(&ctx.store, &t)?;
            println!("removed policy {t}");
        }
        PolicyCommand::Run => {
            let s = policy::run_due(&mut ctx.store, &now)?;
            if !s.failures.is_empty() {
                bail!(
                    "policy run: {} problem(s); first: {}",
                    s.failures.len(),
                    s.failures[0]
                );
            }
        }
        PolicyCommand::Plan { name, at, simulate } => {
            let name: ContainerName = name.parse()?;
            let at = at
                .map(|a| a.parse::<cairn_snapshots::TimeExpr>())
                .transpose()
                .map_err(|e| anyhow!("container {name}: --at: {e}"))?;
            let simulate = simulate
                .map(|d| cairn_snapshots::parse_positive_duration(&d))
                .transpose()
                .map_err(|e| anyhow!("container {name}: --simulate: {e}"))?;
            let r = policy::plan(&ctx.store, &name, at.as_ref(), simulate, &now)?;
            match ctx.format {
                Format::Json => output::json(&r),
                Format::Table => print_plan(&r),
            }
        }
        PolicyCommand::Log { name } => {
            let name = name.map(|n| n.parse::<ContainerName>()).transpose()?;
            let log = ctx.store.prune_log(name.as_ref().map(|n| n.as_str()))?;
            match ctx.format {
                Format::Json => output::json(&log),
                Format::Table => {
                    let rows: Vec<Vec<String>> = log
                        .iter()
                        .map(|e| {
                            vec![
                                output::time(e.at),
                                e.container.clone(),
                                e.snapshot.clone(),
                                output::time(e.created_at),
                                e.rule.clone(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["PRUNED", "CONTAINER", "SNAPSHOT", "TAKEN", "RULE"], &rows)
                    );
                }
            }
        }
    }
    Ok(())
}

fn rows_table(rows: &[policy::PlanRow]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.action.to_string(),
                r.snapshot.clone(),
                output::time(r.created_at),
                r.rule.clone(),
            ]
        })
        .collect();
    output::table(&["ACTION", "SNAPSHOT", "TAKEN", "RULE"], &rows)
}

fn print_plan(r: &policy::PlanReport) {
    let p = &r.policy;
    println!(
        "container {} at {}: policy {} (schedule {}, keep {}{})",
        r.container,
        output::time(r.at),
        shown_target(&p.target),
        dash(&p.schedule),
        if p.keep.is_empty() { "-" } else { &p.keep },
        p.grid
            .as_ref()
            .map(|g| format!(", grid {g}"))
            .unwrap_or_default()
    );
    print!("{}", rows_table(&r.plan));
    if let (Some(sim), Some(left)) = (&r.simulation, &r.survivors) {
        println!();
        println!(
            "simulated from {} to {}: {} taken, {} pruned; left at the end:",
            output::time(sim.from),
            output::time(sim.until),
            sim.taken,
            sim.pruned
        );
        print!("{}", rows_table(left));
    }
}

/// `cairn daemon`: runs policies on schedule until SIGTERM or SIGINT.
pub fn daemon(ctx: &mut Ctx) -> Result<()> {
    crate::clock::now()?;
    crate::clock::run_on();
    eprintln!("cairn daemon: running snapshot policies; stop with SIGTERM or SIGINT");
    let signal = policy::daemon(&mut ctx.store, crate::clock::now)?;
    eprintln!("cairn daemon: stopped by {signal}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// The shipped systemd units start commands this cairn understands.
    #[test]
    fn systemd_units_run_real_commands() {
        for (unit, want) in [
            (include_str!("../../systemd/cairn-policy.service"), "policy"),
            (include_str!("../../systemd/cairn-daemon.service"), "daemon"),
        ] {
            let exec = unit
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart="))
                .expect("an ExecStart line");
            let argv: Vec<&str> = exec.split_whitespace().collect();
            assert!(argv[0].ends_with("/cairn"), "{exec}");
            let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{exec}: {e}"));
            match (cli.command, want) {
                (Command::Policy(super::PolicyCommand::Run), "policy") => {}
                (Command::Daemon, "daemon") => {}
                (other, _) => panic!("{exec} parses as {other:?}"),
            }
        }
        let timer = include_str!("../../systemd/cairn-policy.timer");
        assert!(timer.contains("OnCalendar=") && timer.contains("WantedBy=timers.target"));
    }
}
