//! Test-tier gating shared by every test in the workspace (unit, conformance, CLI).
//!
//! A test whose requirement is missing prints `SKIP <test>: <why>` and passes — unless
//! the environment variable `CAIRN_REQUIRE` (a comma list such as
//! `root,loop,btrfs,xfs,image`) names that requirement: then it panics, so CI, which
//! declares its requirements present, can never skip a tier silently.

use std::path::{Path, PathBuf};

/// The requirements `CAIRN_REQUIRE` declares present.
pub fn declared() -> Vec<String> {
    parse_declared(&std::env::var("CAIRN_REQUIRE").unwrap_or_default())
}

fn parse_declared(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `true` when `missing` is `None`. Otherwise prints `SKIP <test>: <why>` and returns
/// `false`, or panics when `CAIRN_REQUIRE` names `requirement`.
pub fn require(test: &str, requirement: &str, missing: Option<String>) -> bool {
    decide(test, requirement, missing, &declared())
}

fn decide(test: &str, requirement: &str, missing: Option<String>, declared: &[String]) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if declared.iter().any(|d| d == requirement) {
        panic!(
            "{test}: requirement {requirement:?} is missing ({why}) but CAIRN_REQUIRE says it must be present"
        );
    }
    eprintln!("SKIP {test}: {why}");
    false
}

/// Prints why a test (or part of one) skips for lack of `requirement`; panics instead when
/// `CAIRN_REQUIRE` names it.
pub fn skip(requirement: &str, why: &str) {
    require(requirement, requirement, Some(why.to_string()));
}

/// Why the process is not root, if it is not.
pub fn missing_root() -> Option<String> {
    (!nix::unistd::geteuid().is_root()).then(|| "not running as root".to_string())
}

/// The Debian test image: `CAIRN_TEST_IMAGE`, else `shared/images/` beside the checkout.
pub fn image_path() -> PathBuf {
    match std::env::var_os("CAIRN_TEST_IMAGE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/images/debian-bookworm-minbase-amd64.tar.zst"),
    }
}

/// Why the test image cannot be used, if it cannot.
pub fn missing_image() -> Option<String> {
    let p = image_path();
    (!p.is_file()).then(|| {
        format!(
            "test image {} not found (set CAIRN_TEST_IMAGE)",
            p.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_unless_declared() {
        let d = parse_declared("root, loop,BTRFS");
        assert_eq!(d, ["root", "loop", "btrfs"]);
        assert!(decide("t", "loop", None, &d));
        assert!(!decide("t", "xfs", Some("no xfs".into()), &d));
        let r = std::panic::catch_unwind(|| decide("t", "loop", Some("no loop".into()), &d));
        assert!(
            r.is_err(),
            "a declared requirement that is missing must fail the test"
        );
    }
}
