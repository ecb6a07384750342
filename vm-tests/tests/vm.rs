//! The vm tier: `vm-tests/run` (every scenario of `scenarios.list`), its output shown as
//! it runs. See the crate documentation for when it runs.

use std::path::Path;
use std::process::Command;

use cairn_backends::testing;

/// The exit status of a `vm-tests/run` that skipped (`SKIP_EXIT` in lib/common.sh): a
/// requirement is missing and `vm` is not required.
const SKIP_EXIT: i32 = 77;

#[test]
fn vm_scenarios() {
    let required = testing::vm_declared();
    let opted_in = std::env::var("CAIRN_VM_TESTS").is_ok_and(|v| v == "1");
    if !required && !opted_in {
        println!(
            "SKIP vm_scenarios: the vm tier boots kernels under qemu for ~15 minutes; \
             it runs with CAIRN_REQUIRE=vm (CI) or CAIRN_VM_TESTS=1"
        );
        return;
    }
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("run");
    // CAIRN_REQUIRE is inherited: the harness reads `vm` from it as `testing::declared`
    // does (lib/common.sh, `vm_required`). Inherited stdout/stderr: the per-scenario lines
    // and progress show live, and a failing scenario's guest output and kernel messages
    // are printed by the harness.
    let status = Command::new(&run)
        .status()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", run.display()));
    if status.code() == Some(SKIP_EXIT) {
        // With vm required the harness fails instead of skipping, and a skip anyway fails
        // here (testing::require panics when CAIRN_REQUIRE names vm); otherwise SKIP.
        testing::require(
            &testing::current_test(),
            "vm",
            Some(format!(
                "{} skipped (exit {SKIP_EXIT}): its SKIP line above says what is missing and how to fix it",
                run.display()
            )),
        );
        return;
    }
    assert!(
        status.success(),
        "vm-tests/run failed ({status}): see its scenario lines and reports above"
    );
}
