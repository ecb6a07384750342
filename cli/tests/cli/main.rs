//! Integration tests: the real `cairn` binary against a temporary `--state-dir`.
//!
//! Tests that need root or the shared image print `SKIP <why>` and pass, unless
//! `CAIRN_REQUIRE` (comma-separated: `root`, `image`, `debootstrap`) names the requirement; then they fail.

mod bad_input;
mod build;
mod check;
mod concurrency;
mod diff;
mod helpers;
mod images;
mod policies;
mod pools;
mod support;
mod time_travel;
mod usage;
mod vm_pools;
mod workflow;
