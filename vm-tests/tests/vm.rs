//! The vm tier: `vm-tests/run` (every scenario of `scenarios.list`), its output shown as
//! it runs. See the crate documentation for when it runs.

use std::path::Path;
use std::process::Command;

#[test]
fn vm_scenarios() {
    let required = cairn_backends::testing::vm_declared();
    let opted_in = std::env::var("CAIRN_VM_TESTS").is_ok_and(|v| v == "1");
    if !required && !opted_in {
        println!(
            "SKIP vm_scenarios: the vm tier boots kernels under qemu for ~15 minutes; \
             it runs with CAIRN_REQUIRE=vm (CI) or CAIRN_VM_TESTS=1"
        );
        return;
    }
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("run");
    // Inherited stdout/stderr: the per-scenario lines and progress show live, and a
    // failing scenario's guest output and kernel messages are printed by the harness.
    let status = Command::new(&run)
        .status()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", run.display()));
    assert!(
        status.success(),
        "vm-tests/run failed ({status}): see its scenario lines and reports above"
    );
}
