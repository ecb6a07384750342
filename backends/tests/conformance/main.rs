//! The conformance suite: one set of test bodies, run against every driver.
//!
//! Each body is a function `fn(Tier, &str)` in a module below; the `tiers!` macro
//! instantiates every body once per tier as `<tier>::<body>`, so the tier shows in the
//! test name (`cargo test --test conformance loop_` runs the loop tier). A body gets its
//! pool from [`fixture::Fixture`], which skips (or, under `CAIRN_REQUIRE`, fails) when the
//! machine lacks a requirement, and checks real bytes through `cairn_backends::manifest`.
//!
//! To add a backend: a `Tier` variant in `fixture.rs` and one `tier!` line here.

mod crash;
mod diff;
mod errors;
mod fixture;
mod harness;
mod send;
mod snapshots;
mod util;
mod volumes;

/// Instantiates every body for one tier.
macro_rules! tier {
    ($tier:ident, $kind:expr) => {
        tier!(@bodies $tier, $kind;
            volumes::image_extracts_exactly,
            volumes::operations_are_idempotent,
            volumes::delete_volume_removes_snapshots,
            volumes::rename_volume_and_snapshot,
            volumes::usage_reflects_writes,
            snapshots::snapshot_restore_exact,
            snapshots::special_files_survive,
            snapshots::clone_is_independent,
            snapshots::restore_older_keeps_newer,
            snapshots::snapshot_is_read_only,
            send::native_send_receive,
            errors::bad_input_is_refused,
            errors::no_space_is_clean,
            crash::kill9_leaves_no_half_object,
            diff::diff_and_partial_restore,
        );
    };
    (@bodies $tier:ident, $kind:expr; $($m:ident :: $body:ident),* $(,)?) => {
        mod $tier {
            $(
                #[test]
                fn $body() {
                    crate::$m::$body($kind, concat!(stringify!($tier), "::", stringify!($body)));
                }
            )*
        }
    };
}

tier!(dir, crate::fixture::Tier::Dir);
tier!(loop_dir_xfs, crate::fixture::Tier::LoopDirXfs);
tier!(loop_btrfs, crate::fixture::Tier::LoopBtrfs);
tier!(vm_lvm, crate::fixture::Tier::VmLvm);
tier!(vm_zfs, crate::fixture::Tier::VmZfs);

/// Not a test: the body of the child process `crash::kill9_leaves_no_half_object` kills.
/// Does nothing unless `CAIRN_CONFORMANCE_CHILD` is set.
#[test]
fn crash_child() {
    crash::child_main();
}
