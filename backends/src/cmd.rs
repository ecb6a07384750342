//! The one wrapper for every external command (btrfs, losetup, mkfs, lvm, zfs...).
//!
//! - A [`Tool`] names the binary and the Debian package that provides it; it is resolved
//!   on `PATH` (plus the sbin directories) before anything runs, so a missing tool is
//!   [`Error::ToolMissing`] naming the package, never a bare ENOENT.
//! - Every call runs with `LC_ALL=C`, logs its argv and duration at debug level, and on a
//!   non-zero exit returns a [`CommandFailure`] carrying argv, exit status and stderr.
//! - Streaming calls ([`Tool::spawn_stream`]) read the child's stderr on their own thread so
//!   the child can never block on a full stderr pipe while we read or write its stdout/stdin.
//! - Children inherit only stdin, stdout and stderr (every other descriptor is closed
//!   between fork and exec), so no child can pin a mount or a loop device we opened.
//! - Parsing a tool's output is a separate pure function in the driver's `parse.rs`.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};

/// A command that exited unsuccessfully (or could not be waited for).
#[derive(Debug, thiserror::Error)]
#[error("`{}` failed ({status}): {}", argv_string(.argv), stderr_summary(.stderr))]
pub struct CommandFailure {
    pub argv: Vec<OsString>,
    pub status: String,
    pub stderr: String,
}

fn argv_string(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn stderr_summary(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        "no error output".to_string()
    } else {
        s.to_string()
    }
}

/// An external program and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub package: &'static str,
}

pub const BTRFS: Tool = Tool {
    name: "btrfs",
    package: "btrfs-progs",
};
pub const MKFS_BTRFS: Tool = Tool {
    name: "mkfs.btrfs",
    package: "btrfs-progs",
};
pub const MKFS_XFS: Tool = Tool {
    name: "mkfs.xfs",
    package: "xfsprogs",
};
pub const MKFS_EXT4: Tool = Tool {
    name: "mkfs.ext4",
    package: "e2fsprogs",
};
pub const LOSETUP: Tool = Tool {
    name: "losetup",
    package: "mount",
};
pub const MOUNT: Tool = Tool {
    name: "mount",
    package: "mount",
};
pub const UMOUNT: Tool = Tool {
    name: "umount",
    package: "mount",
};
pub const BLKID: Tool = Tool {
    name: "blkid",
    package: "util-linux",
};
pub const ZFS: Tool = Tool {
    name: "zfs",
    package: "zfsutils-linux",
};
pub const ZPOOL: Tool = Tool {
    name: "zpool",
    package: "zfsutils-linux",
};
pub const LVM: Tool = Tool {
    name: "lvm",
    package: "lvm2",
};
pub const DMSETUP: Tool = Tool {
    name: "dmsetup",
    package: "dmsetup",
};
pub const THIN_CHECK: Tool = Tool {
    name: "thin_check",
    package: "thin-provisioning-tools",
};
pub const THIN_DELTA: Tool = Tool {
    name: "thin_delta",
    package: "thin-provisioning-tools",
};
pub const THIN_DUMP: Tool = Tool {
    name: "thin_dump",
    package: "thin-provisioning-tools",
};
pub const MODPROBE: Tool = Tool {
    name: "modprobe",
    package: "kmod",
};
/// What `cairn image build` runs to make a Debian root filesystem.
pub const DEBOOTSTRAP: Tool = Tool {
    name: "debootstrap",
    package: "debootstrap",
};

const EXTRA_PATH: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

impl Tool {
    /// The absolute path of the program, or `ToolMissing`. Searched in `CAIRN_TOOL_PATH`
    /// alone when it is set (a `:` list: to run specific builds of the tools), else in
    /// `PATH` and then the sbin directories.
    pub fn resolve(&self) -> Result<PathBuf> {
        let dirs: Vec<PathBuf> = match std::env::var_os("CAIRN_TOOL_PATH") {
            Some(p) => std::env::split_paths(&p).collect(),
            None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .chain(EXTRA_PATH.iter().map(PathBuf::from))
                .collect(),
        };
        dirs.into_iter()
            .map(|dir| dir.join(self.name))
            .find(|p| is_executable(p))
            .ok_or(Error::ToolMissing {
                tool: self.name,
                package: self.package,
            })
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<(Command, Vec<OsString>)> {
        let program = self.resolve()?;
        let mut cmd = Command::new(&program);
        cmd.args(args).env("LC_ALL", "C").env("LANG", "C");
        // Close every descriptor above stderr in the child: C libraries we link
        // (libbtrfsutil) open directories without O_CLOEXEC, and a child holding one keeps
        // a mount busy long after we closed our copy.
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut argv = vec![OsString::from(self.name)];
        argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        Ok((cmd, argv))
    }

    /// Runs the tool to completion and returns its stdout.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        let (mut cmd, argv) = self.command(args)?;
        cmd.stdin(Stdio::null());
        let start = Instant::now();
        let out = cmd
            .output()
            .map_err(|e| Error::io("run", PathBuf::from(self.name), e))?;
        tracing::debug!(argv = %argv_string(&argv), elapsed_ms = start.elapsed().as_millis() as u64, status = %out.status, "command");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(CommandFailure {
                argv,
                status: status_string(out.status),
                stderr,
            }
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Spawns the tool for streaming: stdin and stdout as given, stderr collected on its
    /// own thread. Finish with [`StreamChild::wait`].
    pub fn spawn_stream<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        stdin: Stdio,
        stdout: Stdio,
    ) -> Result<StreamChild> {
        let (mut cmd, argv) = self.command(args)?;
        cmd.stdin(stdin).stdout(stdout).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io("spawn", PathBuf::from(self.name), e))?;
        let mut stderr = child.stderr.take().expect("stderr was piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        tracing::debug!(argv = %argv_string(&argv), "spawned stream");
        Ok(StreamChild {
            child,
            argv,
            stderr_thread: Some(stderr_thread),
            start: Instant::now(),
        })
    }
}

/// A running streaming child (`btrfs send`, `btrfs receive`, `zfs send`...).
pub struct StreamChild {
    pub child: Child,
    argv: Vec<OsString>,
    stderr_thread: Option<JoinHandle<String>>,
    start: Instant,
}

impl StreamChild {
    /// Waits for the child; a non-zero exit becomes a `CommandFailure` with its stderr.
    pub fn wait(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("wait for", PathBuf::from(&self.argv[0]), e))?;
        let stderr = self
            .stderr_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        tracing::debug!(argv = %argv_string(&self.argv), elapsed_ms = self.start.elapsed().as_millis() as u64, %status, "stream finished");
        if status.success() {
            Ok(())
        } else {
            Err(CommandFailure {
                argv: self.argv.clone(),
                status: status_string(status),
                stderr,
            }
            .into())
        }
    }

    /// Copies the child's stdout (piped) to `out`, then waits for it: the bytes copied.
    /// A read or write error kills the child and is returned as `op` on `what`.
    pub fn copy_stdout_to(
        mut self,
        out: &mut dyn std::io::Write,
        op: &'static str,
        what: &str,
    ) -> Result<u64> {
        let mut stdout = self.child.stdout.take().expect("stdout was piped");
        let copied = std::io::copy(&mut stdout, out);
        drop(stdout);
        match copied {
            Ok(bytes) => {
                self.wait()?;
                Ok(bytes)
            }
            Err(e) => {
                self.kill();
                Err(Error::io(op, what, e))
            }
        }
    }

    /// Kills the child (used when our side of the stream failed) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}

fn status_string(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tool = Tool {
        name: "sh",
        package: "dash",
    };

    #[test]
    fn missing_tool_names_the_package() {
        let t = Tool {
            name: "cairn-no-such-tool",
            package: "cairn-pkg",
        };
        let e = t.run(&["x"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cairn-no-such-tool is not installed: apt-get install cairn-pkg"
        );
    }

    #[test]
    fn failure_carries_argv_status_and_stderr() {
        let e = SH.run(&["-c", "echo boom >&2; exit 3"]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`sh -c echo boom >&2; exit 3`"), "{msg}");
        assert!(msg.contains("exit status 3"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn runs_in_c_locale_and_returns_stdout() {
        assert_eq!(SH.run(&["-c", "echo $LC_ALL"]).unwrap(), "C\n");
    }

    #[test]
    fn stream_child_does_not_block_on_large_stderr() {
        // 1 MiB of stderr would fill the pipe if nobody read it concurrently.
        let child = SH
            .spawn_stream(
                &["-c", "head -c 1048576 /dev/zero >&2; exit 4"],
                Stdio::null(),
                Stdio::null(),
            )
            .unwrap();
        let e = child.wait().unwrap_err();
        assert!(e.to_string().contains("exit status 4"));
    }

    #[test]
    fn children_inherit_no_descriptor_above_stderr() {
        // An fd opened without O_CLOEXEC, as libbtrfsutil does.
        let fd = unsafe { libc::open(c"/".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        assert!(fd > 2);
        let out = SH.run(&[
            "-c",
            &format!("test -e /proc/self/fd/{fd} && echo open || echo closed"),
        ]);
        unsafe { libc::close(fd) };
        assert_eq!(out.unwrap(), "closed\n");
    }
}
