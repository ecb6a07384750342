#!/usr/bin/env bash
# The main job on the default setup (a dir pool and local state), on a fresh Debian machine,
# as root:   ./demo.sh              builds a Debian bookworm image with debootstrap
#            ./demo.sh IMAGE.tar.zst imports an image you give (LXD unified or rootfs tarball)
# Then: create a container, snapshot it, change a file, restore, clone it into a test copy,
# list everything. State lives in $CAIRN_STATE_DIR (default /var/lib/cairn).
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (containers keep numeric owners and device nodes)" >&2; exit 1; }

# The Rust toolchain is not a Debian package here: bookworm's cargo is older than the
# workspace's rust-version.
want=$(sed -n -E 's/^rust-version = "([0-9.]+)"/\1/p' Cargo.toml)
command -v cargo >/dev/null || {
  echo "demo.sh: cargo not found: install Rust $want or newer (https://rustup.rs), then run again" >&2
  exit 1
}
have=$(cargo --version | awk '{print $2}')
if [ -z "$want" ] || [ -z "$have" ] ||
  [ "$(printf '%s\n%s\n' "$want" "${have%%-*}" | sort -V | head -n1)" != "$want" ]; then
  echo "demo.sh: cargo ${have:-of unknown version} is older than the workspace's rust-version ${want:-(not found in Cargo.toml)}: rustup update (https://rustup.rs)" >&2
  exit 1
fi

# Debian packages the build and the demo need (libclang for bindgen, libbtrfsutil to link).
pkgs=(build-essential pkg-config libclang-dev libbtrfsutil-dev tar zstd)
[ $# -ge 1 ] || pkgs+=(debootstrap)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade "${missing[@]}"
fi

step "building cairn"
cargo build --release --locked -p cairn-cli
cairn() { ./target/release/cairn "$@"; }

if ! cairn image show debian/bookworm >/dev/null 2>&1; then
  if [ $# -ge 1 ]; then
    step "importing $1"
    cairn image import "$1" --alias debian/bookworm
  else
    step "building a Debian bookworm image with debootstrap (a few minutes)"
    cairn image build debian/bookworm --alias debian/bookworm
  fi
fi

# The demo's own containers, from an earlier run, go first.
for c in web1-test web1; do cairn info "$c" >/dev/null 2>&1 && cairn delete "$c"; done

step "cairn create debian/bookworm web1   (a copy-on-write clone of the image's base volume)"
cairn create debian/bookworm web1
rootfs=$(cairn info web1 | awk '/^rootfs:/ {print $2}')
# Everything below writes under $rootfs as root: an empty or wrong path would be the host's /.
[ -n "$rootfs" ] && [ -d "$rootfs/etc" ] || {
  echo "demo.sh: 'cairn info web1' gave no usable rootfs (got '$rootfs', which has no etc/); stopping before writing anything" >&2
  exit 1
}
echo "web1's files are in $rootfs"

step "cairn snapshot create web1 before-change"
cairn snapshot create web1 before-change --label why=demo

before=$(cat "$rootfs/etc/motd" "$rootfs/etc/hostname" | sha256sum)

step "changing /etc/motd and deleting /etc/hostname inside web1"
echo "changed by the demo" > "$rootfs/etc/motd"
rm -f "$rootfs/etc/hostname"
echo "motd now: $(cat "$rootfs/etc/motd")"

step "cairn restore web1 before-change"
cairn restore web1 before-change
after=$(cat "$rootfs/etc/motd" "$rootfs/etc/hostname" | sha256sum)
[ "$before" = "$after" ] || { echo "demo.sh: restore did not bring the files back" >&2; exit 1; }
echo "/etc/motd and /etc/hostname are back, byte for byte"

step "cairn copy web1/before-change web1-test   (a test copy of the snapshot)"
cairn copy web1/before-change web1-test

step "cairn list"
cairn list
step "cairn snapshot list web1"
cairn snapshot list web1
step "cairn image list"
cairn image list
step "cairn pool list"
cairn pool list
step "cairn info web1 --format json"
cairn info web1 --format json
