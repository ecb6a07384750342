//! Unpacking a scanned image into a volume with GNU tar, through the storage layer's
//! command wrapper: numeric owners, permissions, xattrs (all namespaces), ACLs, device
//! nodes, hard links and mtimes are kept exactly. Only run on archives [`super::scan`]
//! accepted, from the copy kept in the state directory.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use cairn_backends::cmd::Tool;

use super::format::Compression;
use super::scan::{Layout, RootMeta};
use crate::progress::Progress;

pub const TAR: Tool = Tool {
    name: "tar",
    package: "tar",
};

/// GNU tar's arguments to unpack `file` into `dest`.
pub fn tar_args(
    file: &Path,
    compression: Compression,
    layout: &Layout,
    dest: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--extract",
        "--verbose",
        "--numeric-owner",
        "--same-owner",
        "--preserve-permissions",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if let Some(opt) = compression.tar_option() {
        args.push(opt.into());
    }
    args.push("--file".into());
    args.push(file.into());
    args.push("--directory".into());
    args.push(dest.into());
    if let Layout::Unified { prefix } = layout {
        let strip = prefix.split('/').count();
        args.push(format!("--strip-components={strip}").into());
        args.push("--".into());
        args.push(prefix.into());
    }
    args
}

/// Unpacks the archive, reporting one unit per member. `root_meta` (the archive's own
/// entry for the root directory) is applied to `dest` itself afterwards.
pub fn unpack(
    file: &Path,
    compression: Compression,
    layout: &Layout,
    root_meta: Option<RootMeta>,
    dest: &Path,
    members: u64,
    progress: &dyn Progress,
) -> cairn_backends::Result<()> {
    progress.phase("unpacking", Some(members), false);
    let args = tar_args(file, compression, layout, dest);
    let mut child = TAR.spawn_stream(&args, Stdio::null(), Stdio::piped())?;
    let stdout = child.child.stdout.take().expect("stdout was piped");
    for line in BufReader::new(stdout).split(b'\n') {
        if line.is_err() {
            break;
        }
        progress.advance(1);
    }
    child.wait()?;
    if let Some(m) = root_meta {
        apply_root_meta(dest, m)
            .map_err(|e| cairn_backends::Error::io("set owner and mode of", dest, e))?;
    }
    Ok(())
}

fn apply_root_meta(dest: &Path, m: RootMeta) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(dest, Some(m.uid as u32), Some(m.gid as u32))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode & 0o7777))?;
    let c = std::ffi::CString::new(dest.as_os_str().as_bytes())?;
    let t = libc::timespec {
        tv_sec: m.mtime as libc::time_t,
        tv_nsec: m.mtime_nsec as libc::c_long,
    };
    let times = [t, t];
    // SAFETY: `c` is a valid NUL-terminated path and `times` holds two timespecs.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_strips_the_prefix_and_names_it_after_double_dash() {
        let args = tar_args(
            Path::new("/s/images/ab"),
            Compression::Zstd,
            &Layout::Unified {
                prefix: "./rootfs".into(),
            },
            Path::new("/p/v"),
        );
        let s: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(s.contains(&"--zstd".to_string()));
        assert!(s.contains(&"--numeric-owner".to_string()));
        assert!(s.contains(&"--xattrs-include=*".to_string()));
        assert_eq!(
            &s[s.len() - 3..],
            ["--strip-components=2", "--", "./rootfs"]
        );
        let plain = tar_args(
            Path::new("/f"),
            Compression::None,
            &Layout::Rootfs,
            Path::new("/d"),
        );
        assert_eq!(plain.last().unwrap(), "/d");
    }
}
