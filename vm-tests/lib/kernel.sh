# The guest kernel: Debian's linux-image-$ABI, downloaded (not installed), unpacked, and
# its uncompressed ELF vmlinux extracted for PVH boot. Cached by ABI + package version.
# Sourced, not run.

# Prints the cache directory of kernel ABI $1 (holding `vmlinux` and the unpacked package
# under `root/`), downloading and unpacking it first if absent.
guest_kernel() {
  local abi=$1
  local version
  version=$(package_version "linux-image-$abi")
  [[ -n $version ]] || { log "linux-image-$abi has no candidate version"; return 1; }
  local dest="$CACHE_DIR/kernel/$abi/$version"
  if [[ -f $dest/.complete ]]; then
    printf '%s\n' "$dest"
    return 0
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  (cd "$dest" && run_logged "$dest/download.log" apt-get download "linux-image-$abi") || return 1
  dpkg-deb -x "$dest"/linux-image-*.deb "$dest/root"
  rm -f "$dest"/linux-image-*.deb
  extract_vmlinux "$dest/root/boot/vmlinuz-$abi" "$dest/vmlinux" || return 1
  touch "$dest/.complete"
  printf '%s\n' "$dest"
}

# Finds the xz stream inside a bzImage and decompresses it to the ELF vmlinux (the same
# approach as the kernel's scripts/extract-vmlinux).
extract_vmlinux() {
  local image=$1 out=$2 offset
  for offset in $(grep -abo $'\xfd7zXZ' "$image" | cut -d: -f1); do
    tail -c "+$((offset + 1))" "$image" | xz -dc >"$out" 2>/dev/null
    if [[ $(head -c 4 "$out" | od -An -c | tr -d ' ') == '177ELF' ]]; then
      return 0
    fi
  done
  rm -f "$out"
  log "no xz-compressed ELF kernel found in $image"
  return 1
}
