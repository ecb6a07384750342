//! `cairn`: snapshots and copies of Linux system containers.
//!
//! This crate holds the command line (parsing in [`cli`], glue in [`commands`], tables
//! and JSON in [`output`], progress bars in [`progress`]). The work lives in modules that
//! know nothing of the command line and could move to their own crate: [`state`] (the
//! SQLite store and locks), [`pools`], [`images`], [`containers`], [`snapshots`].
//!
//! Errors print as one line, `error: <object>: <problem>`, with exit status 1 (2 for
//! command-line usage errors).

mod check;
mod cli;
mod clock;
mod commands;
mod containers;
mod diff;
mod images;
mod names;
mod output;
mod policy;
mod pools;
mod progress;
mod snapshots;
mod state;
mod timetravel;
mod transfer;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

/// One line for a clap error: `error: <argument>: <problem>`.
fn usage_error_line(err: &clap::Error) -> String {
    let ctx = |k| match err.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    match err.kind() {
        ErrorKind::InvalidValue => {
            let arg = ctx(ContextKind::InvalidArg);
            let arg = arg.split_whitespace().next().unwrap_or("argument");
            format!(
                "{arg} {:?}: invalid value; use one of: {}",
                ctx(ContextKind::InvalidValue),
                ctx(ContextKind::ValidValue)
            )
        }
        ErrorKind::MissingRequiredArgument => {
            format!("missing {}; see --help", ctx(ContextKind::InvalidArg))
        }
        _ => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid usage");
            format!("{}; see --help", first.trim_start_matches("error: "))
        }
    }
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`cairn list | head`) instead of panicking on EPIPE.
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            let _ = e.print();
            return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Err(e) => {
            eprintln!("error: {}", usage_error_line(&e));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = e.to_string().replace('\n', "; ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}
