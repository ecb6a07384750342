//! cairn's vm tier, as a crate so `cargo test --workspace` reaches it.
//!
//! This host's kernel may have neither device-mapper nor ZFS, so the LVM thin and ZFS
//! drivers are tested inside Debian's own kernel booted under `qemu-system-x86_64 -accel
//! tcg`. The work is done by the shell harness `vm-tests/run` (see `vm-tests/README.md`):
//! it installs the host packages, caches the kernel and the zfs modules built from
//! zfs-dkms outside the checkout, builds the test binaries with the optimized `vm`
//! profile, boots one VM per scenario of `scenarios.list` with a timeout, and prints one
//! line per scenario and an `N passed, N failed` summary.
//!
//! The only test here, `vm_scenarios` (tests/vm.rs), runs that harness. It is opt-in —
//! it boots kernels for a quarter of an hour — and runs when `CAIRN_REQUIRE` names `vm`
//! (then anything missing is a failure, as in CI) or when `CAIRN_VM_TESTS=1`; otherwise
//! it prints `SKIP` and passes.
