//! The command line, as clap derives it. Shaped like LXD's `lxc`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::state::DEFAULT_STATE_DIR;

/// Snapshots and copies of Linux system containers.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, propagate_version = true)]
pub struct Cli {
    /// Where cairn keeps its database, images and default pool.
    #[arg(long, global = true, env = "CAIRN_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,

    /// Output format of listings and `info`.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from an image.
    Create {
        /// Image alias or fingerprint (a unique prefix is enough).
        image: String,
        name: String,
        /// Pool to create it in (default: the `default` pool).
        #[arg(long)]
        pool: Option<String>,
    },
    /// List containers.
    List,
    /// Show a container: pool, image, created, usage, snapshots, rootfs path.
    Info { name: String },
    /// Rename a container (its snapshots follow).
    Rename { from: String, to: String },
    /// Delete a container and its snapshots.
    Delete { name: String },
    /// Copy a container, or one of its snapshots (SRC/SNAP), to a new container.
    Copy {
        /// SRC or SRC/SNAP
        source: String,
        destination: String,
        /// Pool of the copy (default: the source's pool).
        #[arg(long)]
        pool: Option<String>,
    },
    /// Replace a container's files with a snapshot's, or with the state at a time (--to);
    /// or only some paths (--path). A safety snapshot of the live state is taken first.
    Restore {
        name: String,
        /// The snapshot (or give --to).
        snapshot: Option<String>,
        /// A time: the newest snapshot taken at or before it is restored (2h-ago,
        /// yesterday 18:00, 2026-11-23T10:00:00Z, 2026-11-23 10:00, @-1 the newest...).
        #[arg(long, value_name = "TIME", conflicts_with = "snapshot")]
        to: Option<String>,
        /// Say what would be restored, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not take the safety snapshot of the live state first.
        #[arg(long)]
        no_safety_snapshot: bool,
        /// Restore only this path, as inside the container (repeatable); the rest of the
        /// live state stays. A safety snapshot of the live state is taken first.
        #[arg(long = "path", value_name = "PATH")]
        paths: Vec<String>,
    },
    /// List what was added, modified and deleted from SNAP1 to SNAP2 (default: live).
    Diff {
        name: String,
        snap1: String,
        snap2: Option<String>,
    },
    /// Find where the database and the storage disagree; --repair fixes it.
    Check {
        /// Repair what can be repaired without losing data.
        #[arg(long)]
        repair: bool,
    },
    /// Manage snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage storage pools.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Snapshot policies: schedules, retention, hooks; run, plan, log.
    #[command(subcommand)]
    Policy(crate::commands::policy::PolicyCommand),
    /// Run snapshot policies on schedule until SIGTERM or SIGINT.
    Daemon,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Take a snapshot (named snap0, snap1... when no name is given).
    Create {
        name: String,
        snapshot: Option<String>,
        /// A label KEY=VALUE (repeatable).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Delete it by pruning this long from now (30m, 12h, 7d, 2w).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// List a container's snapshots, oldest first.
    List { name: String },
    /// Show one snapshot.
    Show { name: String, snapshot: String },
    /// Delete a snapshot.
    Delete { name: String, snapshot: String },
    /// Rename a snapshot.
    Rename {
        name: String,
        from: String,
        to: String,
    },
    /// Hold a snapshot: pruning never deletes it, and delete refuses it.
    Hold {
        name: String,
        snapshot: String,
        /// Why it is held (shown in list and show).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Release a held snapshot.
    Release { name: String, snapshot: String },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import an LXD unified tarball or a root filesystem tarball (tar, gz, xz, zstd).
    Import {
        file: PathBuf,
        /// An alias for the image (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// Pool to unpack it into (default: the `default` pool).
        #[arg(long)]
        pool: Option<String>,
    },
    /// Build an image with debootstrap (debian/<suite>) and import it.
    Build {
        /// What to build, e.g. debian/bookworm.
        target: String,
        #[arg(long = "alias")]
        aliases: Vec<String>,
        #[arg(long)]
        pool: Option<String>,
    },
    /// List images.
    List,
    /// Show an image.
    Show { image: String },
    /// Delete an image no container uses.
    Delete { image: String },
    /// Manage image aliases.
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point an alias at an image.
    Add { alias: String, image: String },
    /// Remove an alias.
    Remove { alias: String },
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a storage pool.
    Create(PoolCreate),
    /// List pools.
    List,
    /// Show a pool: driver, source, capabilities, space, users.
    Show { name: String },
    /// Delete a pool that holds no containers or images.
    Delete { name: String },
}

#[derive(Debug, Args)]
pub struct PoolCreate {
    pub name: String,
    /// Storage driver.
    #[arg(long, value_parser = ["dir", "btrfs", "lvm", "zfs"])]
    pub driver: String,
    /// A directory, a block device, or (with --size) a loop file to create; for lvm an
    /// existing VG/THINPOOL, for zfs an existing POOL/DATASET.
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Size of a loop file, e.g. 10G.
    #[arg(long)]
    pub size: Option<String>,
}
