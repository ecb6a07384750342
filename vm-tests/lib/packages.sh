# Host packages: contrib in the apt sources, the tools the image is assembled from, and
# the build dependencies of zfs-dkms's configure. Sourced, not run.

DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources

# Packages installed on the host (the kernel headers are added once the ABI is known).
HOST_PACKAGES=(
  qemu-system-x86 busybox-static lvm2 thin-provisioning-tools cpio kmod xz-utils
  e2fsprogs xfsprogs jq acl attr zstd
  # zfs-dkms configure + make against the kernel headers
  build-essential autoconf automake libtool gawk
  libelf-dev libssl-dev uuid-dev libblkid-dev libudev-dev zlib1g-dev libaio-dev
  libtirpc-dev libattr1-dev libcurl4-openssl-dev python3
)

# Adds `contrib` to every deb822 stanza that lacks it (zfs-dkms and zfsutils-linux live
# there). Returns 0 if the file changed, so the caller knows to run apt-get update.
ensure_contrib() {
  [[ -f $DEBIAN_SOURCES ]] || return 1
  grep -Eq '^Components:.*\bcontrib\b' "$DEBIAN_SOURCES" && return 1
  sed -i -E '/^Components:/{/\bcontrib\b/!s/$/ contrib/}' "$DEBIAN_SOURCES"
  log "added contrib to $DEBIAN_SOURCES"
}

apt_has() { apt-cache show "$1" >/dev/null 2>&1; }

# Whether every package in $@ is installed (dpkg-query: no apt lock, no network).
all_installed() {
  local status
  status=$(dpkg-query -W -f '${db:Status-Status}\n' "$@" 2>/dev/null) || return 1
  ! grep -qvx installed <<<"$status"
}

# Installs the host packages (and the headers of kernel $1). --no-upgrade: never upgrade
# a library that is already installed. When all of them are installed and zfs-dkms is
# known to apt (CI prepares, then the test run prepares again) it runs no apt-get.
install_host_packages() {
  local abi=$1
  if all_installed "${HOST_PACKAGES[@]}" "linux-headers-$abi" && apt_has zfs-dkms; then
    log "host packages already installed (headers of $abi included)"
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ensure_contrib || ! apt_has zfs-dkms; then
    run_logged "$CACHE_DIR/logs/apt-update.log" apt-get update || return 1
  fi
  apt_has zfs-dkms || { log "zfs-dkms not found in apt sources (contrib)"; return 1; }
  run_logged "$CACHE_DIR/logs/apt-install.log" \
    apt-get install -y --no-upgrade --no-install-recommends \
    "${HOST_PACKAGES[@]}" "linux-headers-$abi"
}

# The kernel ABI linux-image-amd64 currently points at, e.g. 6.1.0-56-amd64.
kernel_abi() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n -E 's/^ *Depends: linux-image-([0-9].*-amd64)$/\1/p' | head -n1
}

# Candidate version of a package, e.g. 2.1.11-1+deb12u1.
package_version() {
  apt-cache policy "$1" 2>/dev/null | sed -n -E 's/^ *Candidate: (.*)$/\1/p' | head -n1
}
