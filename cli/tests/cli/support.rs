//! Running `cairn`, requirement gating, and small archives built on the fly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_backends::cmd::Tool;
use cairn_backends::testing;
use tar::{Builder, EntryType, Header};

/// The shared Debian test image: `CAIRN_TEST_IMAGE`, else `shared/images/` beside the
/// checkout (present on the development machines and in CI).
pub static SHARED_IMAGE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| testing::image_path().to_string_lossy().into_owned());

/// True if `missing` is `None`; otherwise prints `SKIP <test>: <why>` and returns false,
/// or panics when `CAIRN_REQUIRE` names `requirement` (see `cairn_backends::testing`).
/// The test is the running one (libtest names its thread after it).
pub fn require(requirement: &str, missing: Option<String>) -> bool {
    testing::require(&testing::current_test(), requirement, missing)
}

pub fn require_root() -> bool {
    require("root", testing::missing_root())
}

pub fn require_image() -> bool {
    require("image", testing::missing_image())
}

/// [`require`] for a tool, found as cairn finds it (`PATH`, the sbin directories,
/// `CAIRN_TOOL_PATH`).
pub fn require_tool(requirement: &str, tool: &Tool) -> bool {
    require(requirement, testing::missing_tool(tool))
}

/// One state directory and the binary to drive it.
pub struct Cairn {
    pub dir: tempfile::TempDir,
}

impl Cairn {
    pub fn new() -> Cairn {
        Cairn {
            dir: tempfile::Builder::new()
                .prefix("cairn-clitest-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .env_remove("CAIRN_STATE_DIR")
            .output()
            .expect("run cairn")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cairn {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns the single stderr line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "cairn {args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("error: "), "{err:?}");
        err.trim_end().to_string()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("valid JSON")
    }

    /// Everything stored, to compare before and after a refused command: the listings
    /// and the files of the state directory (lock files excepted).
    pub fn stored(&self) -> String {
        let mut s = String::new();
        for args in [&["list"][..], &["image", "list"], &["pool", "list"]] {
            s.push_str(&self.json(args).to_string());
            s.push('\n');
        }
        let mut files = Vec::new();
        walk(&self.state(), &self.state(), &mut files);
        files.sort();
        s + &files.join("\n")
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if rel.starts_with("locks") || rel.starts_with("cairn.db") {
            continue;
        }
        out.push(rel);
        if e.file_type().unwrap().is_dir() {
            walk(root, &p, out);
        }
    }
}

/// Appends a member with its name and link target written raw, so a test can build the
/// malicious archives the `tar` crate's own setters refuse to write.
pub fn put(b: &mut Builder<Vec<u8>>, kind: EntryType, path: &str, link: &str, data: &[u8]) {
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A small unified image with extra members, gzip-compressed, written to `dir/name`.
pub fn unified_image(dir: &Path, name: &str, extra: &[(EntryType, &str, &str)]) -> PathBuf {
    let mut b = Builder::new(Vec::new());
    put(
        &mut b,
        EntryType::Regular,
        "metadata.yaml",
        "",
        b"architecture: x86_64\nproperties:\n  description: tiny test image\n",
    );
    put(&mut b, EntryType::Directory, "rootfs/", "", b"");
    put(&mut b, EntryType::Directory, "rootfs/etc/", "", b"");
    put(
        &mut b,
        EntryType::Regular,
        "rootfs/etc/hostname",
        "",
        b"tiny\n",
    );
    for (kind, path, link) in extra {
        put(&mut b, *kind, path, link, b"");
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}
