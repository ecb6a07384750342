//! `--help` and `--version` everywhere.

use crate::support::Cairn;

#[test]
fn help_and_version() {
    let c = Cairn::new();
    assert!(c.ok(&["--version"]).starts_with("cairn "));
    for args in [
        &["--help"][..],
        &["create", "--help"],
        &["snapshot", "--help"],
        &["snapshot", "create", "--help"],
        &["image", "import", "--help"],
        &["image", "alias", "add", "--help"],
        &["pool", "create", "--help"],
    ] {
        let out = c.ok(args);
        assert!(out.contains("Usage: cairn"), "{args:?}: {out}");
    }
    assert!(c
        .ok(&["pool", "create", "--help"])
        .contains("--driver <DRIVER>"));
    assert!(c.ok(&["--help"]).contains("--state-dir"));
}
