//! Progress reporting for long operations. Library modules report through [`Progress`];
//! the CLI shows an indicatif bar only when stderr is a terminal and the output format is
//! a table, so pipes, logs and `--format json` stay quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where a long operation reports how far it got.
pub trait Progress {
    /// A new phase: `total` units (bytes or members), or unknown.
    fn phase(&self, message: &str, total: Option<u64>, bytes: bool);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// A note on the current phase (e.g. the tool's last output line).
    fn note(&self, text: &str);
    /// The whole operation is over.
    fn finish(&self);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: Option<u64>, _: bool) {}
    fn advance(&self, _: u64) {}
    fn note(&self, _: &str) {}
    fn finish(&self) {}
}

/// An indicatif bar on stderr.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar if stderr is a terminal and `enabled`, else [`Quiet`].
    pub fn for_terminal(enabled: bool) -> Box<dyn Progress> {
        if enabled && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            Box::new(Bar { bar })
        } else {
            Box::new(Quiet)
        }
    }
}

impl Progress for Bar {
    fn phase(&self, message: &str, total: Option<u64>, bytes: bool) {
        let style = match (total, bytes) {
            (Some(_), true) => "{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            (Some(_), false) => "{msg:24} [{bar:30}] {pos}/{len}",
            (None, _) => "{spinner} {msg:24} {elapsed} {wide_msg}",
        };
        let style = ProgressStyle::with_template(style)
            .expect("progress templates are valid")
            .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(message.to_string());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn note(&self, text: &str) {
        let mut t: String = text.chars().take(60).collect();
        if t.len() < text.len() {
            t.push('…');
        }
        self.bar.set_message(t);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
