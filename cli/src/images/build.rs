//! `cairn image build debian/<suite>`: a minimal Debian root filesystem made with
//! `debootstrap --variant=minbase` from the mirror the host's apt sources name, packed
//! as an LXD unified tarball (zstd) ready for [`super::import`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use cairn_backends::cmd::DEBOOTSTRAP;
use jiff::Timestamp;

use super::unpack::TAR;
use super::{Error, Result};
use crate::progress::Progress;

/// The mirror used when the apt sources name none.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

/// What to build: only `debian/<suite>` for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub suite: String,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some(("debian", suite)) = s.split_once('/') else {
            return Err("only debian/<suite> can be built (e.g. debian/bookworm)".into());
        };
        if suite.is_empty()
            || !suite
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("{suite:?} is not a Debian suite name"));
        }
        Ok(Target {
            suite: suite.into(),
        })
    }
}

/// The first non-security Debian mirror in apt's sources: deb822 `.sources` text
/// (`Types:`/`URIs:` stanzas) or one-line `sources.list` text.
pub fn mirror_from_apt(text: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if let (Some(types), Some(uris)) = (field("Types:"), field("URIs:")) {
            let uri = uris.split_whitespace().next().unwrap_or("");
            if types.split_whitespace().any(|t| t == "deb")
                && !uri.contains("security")
                && !uri.is_empty()
            {
                return Some(uri.to_string());
            }
        }
    }
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace().filter(|w| !w.starts_with('['));
        if words.next()? != "deb" {
            return None;
        }
        let uri = words.find(|w| !w.contains('='))?;
        (!uri.contains("security")).then(|| uri.to_string())
    })
}

/// Reads the host's apt sources and picks the mirror.
pub fn host_mirror() -> String {
    let mut text = String::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "sources" || e == "list") {
                text.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
                text.push_str("\n\n");
            }
        }
    }
    text.push_str(&std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    mirror_from_apt(&text).unwrap_or_else(|| FALLBACK_MIRROR.to_string())
}

fn debian_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        other => other,
    }
}

/// LXD's `metadata.yaml` for a built image.
pub fn metadata_yaml(suite: &str, now: Timestamp) -> String {
    let arch = debian_arch();
    format!(
        "architecture: {}\ncreation_date: {}\nproperties:\n  architecture: {arch}\n  description: Debian {suite} minbase {arch}, built by cairn with debootstrap\n  os: debian\n  release: {suite}\n  variant: minbase\n  serial: \"{}\"\ntemplates: {{}}\n",
        std::env::consts::ARCH,
        now.as_second(),
        now.strftime("%Y%m%d"),
    )
}

/// Removes the downloaded `.deb` files debootstrap leaves in the apt cache (as image
/// builders do); they would only make the image bigger.
fn remove_package_cache(rootfs: &Path) -> std::io::Result<()> {
    let cache = rootfs.join("var/cache/apt/archives");
    let Ok(dir) = std::fs::read_dir(&cache) else {
        return Ok(());
    };
    for entry in dir {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// Builds the image into `work` (which must not exist) and returns the tarball's path.
/// The caller removes `work` afterwards.
pub fn build(target: &Target, work: &Path, progress: &dyn Progress) -> Result<PathBuf> {
    let fail = |reason: String| Error::Build {
        target: format!("debian/{}", target.suite),
        reason,
    };
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs)
        .map_err(|e| fail(format!("create {}: {e}", rootfs.display())))?;
    let mirror = host_mirror();
    progress.phase("debootstrap", None, false);
    let args: Vec<String> = vec![
        "--variant=minbase".into(),
        target.suite.clone(),
        rootfs.display().to_string(),
        mirror,
    ];
    let mut child = DEBOOTSTRAP
        .spawn_stream(&args, Stdio::null(), Stdio::piped())
        .map_err(|e| fail(e.to_string()))?;
    let stdout = child.child.stdout.take().expect("stdout was piped");
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        progress.note(line.trim());
    }
    child.wait().map_err(|e| fail(e.to_string()))?;
    remove_package_cache(&rootfs).map_err(|e| fail(format!("clean the package cache: {e}")))?;
    std::fs::write(
        work.join("metadata.yaml"),
        metadata_yaml(&target.suite, Timestamp::now()),
    )
    .map_err(|e| fail(format!("write metadata.yaml: {e}")))?;
    progress.phase("packing", None, false);
    let out = work.join(format!("debian-{}-{}.tar.zst", target.suite, debian_arch()));
    let mut args: Vec<String> = [
        "--create",
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
        "--zstd",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--file".into(), out.display().to_string()]);
    args.extend(["--directory".into(), work.display().to_string()]);
    args.extend(["metadata.yaml".into(), "rootfs".into()]);
    TAR.run(&args).map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_from_deb822_skips_security() {
        let text = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_apt(text).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn mirror_from_one_line_format() {
        let text = "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian bookworm main\n";
        assert_eq!(
            mirror_from_apt(text).as_deref(),
            Some("http://ftp.de.debian.org/debian")
        );
        assert_eq!(
            mirror_from_apt("deb-src http://x/debian bookworm main\n"),
            None
        );
    }

    #[test]
    fn targets_parse() {
        assert_eq!(
            "debian/bookworm".parse::<Target>().unwrap().suite,
            "bookworm"
        );
        assert!("ubuntu/jammy".parse::<Target>().is_err());
        assert!("debian/../x".parse::<Target>().is_err());
    }

    #[test]
    fn built_metadata_parses_back() {
        let md = super::super::metadata::parse_metadata_yaml(&metadata_yaml(
            "bookworm",
            Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(md.properties["release"], "bookworm");
        assert_eq!(md.creation_date, Some(0));
    }
}
