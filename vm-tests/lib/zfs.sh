# The zfs and spl kernel modules, built from Debian contrib's zfs-dkms source against
# the headers of the guest kernel, stripped, and cached by kernel ABI + ZFS version.
# Sourced, not run.

# Prints the cache directory holding the stripped .ko files for ABI $1 and zfs-dkms
# version $2, building them first if absent (~8 minutes on 2 cores).
zfs_modules() {
  local abi=$1 version=$2
  local dest="$CACHE_DIR/zfs-modules/$abi/$version"
  if [[ -f $dest/.complete ]]; then
    printf '%s\n' "$dest"
    return 0
  fi
  local build="$CACHE_DIR/build/zfs-$abi-$version"
  rm -rf "$build" "$dest"
  mkdir -p "$build" "$dest"
  log "building zfs modules $version for $abi (about 8 minutes; cached afterwards)"
  local t0
  t0=$(now)
  zfs_fetch_source "$build" || return 1
  zfs_configure_and_make "$build" "$abi" || return 1
  find "$build/src/module" -name '*.ko' -exec cp {} "$dest/" \;
  local count
  count=$(find "$dest" -name '*.ko' | wc -l)
  [[ $count -ge 2 && -f $dest/zfs.ko && -f $dest/spl.ko ]] || {
    log "zfs build produced $count modules, zfs.ko or spl.ko missing"
    return 1
  }
  strip --strip-debug "$dest"/*.ko
  touch "$dest/.complete"
  rm -rf "$build"
  log "zfs modules built in $(elapsed_since "$t0") s ($count modules)"
  printf '%s\n' "$dest"
}

# Downloads and unpacks zfs-dkms (never installed: dkms would build for the host kernel).
zfs_fetch_source() {
  local build=$1
  (cd "$build" && run_logged "$build/download.log" apt-get download zfs-dkms) || return 1
  dpkg-deb -x "$build"/zfs-dkms_*.deb "$build/pkg"
  local src
  src=$(find "$build/pkg/usr/src" -mindepth 1 -maxdepth 1 -type d -name 'zfs-*' | head -n1)
  [[ -n $src ]] || { log "no source tree in zfs-dkms"; return 1; }
  mv "$src" "$build/src"
}

zfs_configure_and_make() {
  local build=$1 abi=$2
  local common="/usr/src/linux-headers-${abi%-amd64}-common"
  local obj="/usr/src/linux-headers-$abi"
  [[ -d $common && -d $obj ]] || { log "kernel headers missing: $obj"; return 1; }
  local logs="$CACHE_DIR/logs"
  (
    cd "$build/src" || return 1
    run_logged "$logs/zfs-configure.log" ./configure --with-config=kernel \
      --with-linux="$common" --with-linux-obj="$obj" &&
      run_logged "$logs/zfs-make.log" make -C module -j"$(nproc)"
  )
}
