//! Helpers the time-travel, policy, diff and workflow tests share: where a container's
//! files are, running cairn on a simulated clock, and everything a refused command must
//! leave as it was.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::Cairn;

/// Where the container's files are (`cairn info`'s `rootfs`).
pub fn rootfs(c: &Cairn, name: &str) -> PathBuf {
    PathBuf::from(c.json(&["info", name])["rootfs"].as_str().unwrap())
}

/// Runs cairn with extra environment (`CAIRN_NOW`, `TZ`).
pub fn run_env(c: &Cairn, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("--state-dir")
        .arg(c.state())
        .args(args)
        .env_remove("CAIRN_STATE_DIR")
        .env_remove("CAIRN_NOW")
        .env("TZ", "UTC");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cairn")
}

/// Runs with `CAIRN_NOW=now`, expects success, returns stdout.
pub fn ok_at(c: &Cairn, now: &str, args: &[&str]) -> String {
    let out = run_env(c, &[("CAIRN_NOW", now)], args);
    assert!(
        out.status.success(),
        "cairn {args:?} at {now} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every listing a refused command must leave as it was, snapshot metadata included.
pub fn everything(c: &Cairn, containers: &[&str]) -> String {
    let mut s = c.stored();
    for ct in containers {
        s.push_str(&c.json(&["snapshot", "list", ct]).to_string());
    }
    s.push_str(&c.json(&["policy", "list"]).to_string());
    s.push_str(&c.json(&["policy", "log"]).to_string());
    s
}
