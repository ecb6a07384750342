# Assembles the guest's initramfs: kernel modules in load order, LVM, thin tools, ZFS
# userland, mkfs tools, their libraries, the guest files (/init, lvm.conf), and busybox
# last so real tools win. Sourced, not run.

# Modules the guest loads; their dependencies come from modprobe --show-depends.
GUEST_MODULES=(virtio_pci virtio_blk 9pnet_virtio 9p ext4 xfs loop dm_thin_pool dm_snapshot zfs)

ZFS_USERLAND_PACKAGES=(zfsutils-linux libnvpair3linux libuutil3linux libzfs4linux libzpool5linux)

# Host tools copied in with their libraries (paths as on the host, merged /usr).
HOST_TOOLS=(
  /usr/sbin/lvm /usr/sbin/dmsetup /usr/sbin/pdata_tools
  /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/mkfs.xfs /usr/sbin/xfs_repair
  /usr/bin/mount /usr/bin/umount /usr/sbin/blkid /usr/sbin/losetup /usr/sbin/wipefs
  /usr/bin/jq /usr/bin/findmnt
  # what the backends' tests call: ACLs, xattrs, GNU tar with zstd
  /usr/bin/setfacl /usr/bin/getfacl /usr/bin/setfattr /usr/bin/getfattr /usr/bin/tar /usr/bin/zstd
)

# Maps a host path to its place in the image's merged-/usr layout.
image_path() {
  case $1 in
    /usr/*) printf '%s\n' "${1#/}" ;;
    /*) printf 'usr%s\n' "$1" ;;
  esac
}

# Copies file $2 (dereferenced) to image root $1 at its host path, then every library
# `ldd` lists (with LD_LIBRARY_PATH=$3 when given), each once.
copy_with_libs() {
  local root=$1 file=$2 libpath=${3:-} at=${4:-$2}
  install -D -m 0755 "$(readlink -f "$file")" "$root/$(image_path "$at")"
  local lib
  for lib in $(LD_LIBRARY_PATH=$libpath ldd "$file" 2>/dev/null |
    awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'); do
    local dest
    case $lib in
      /usr/lib/* | /lib/* | /lib64/*) dest="$root/$(image_path "$lib")" ;;
      *) dest="$root/usr/lib/x86_64-linux-gnu/${lib##*/}" ;; # from $libpath
    esac
    [[ -e $dest ]] || install -D -m 0755 "$(readlink -f "$lib")" "$dest"
  done
}

# Makes a symlink $2 -> $3 in the image unless something is already there.
image_link() {
  local root=$1 name=$2 target=$3
  local path
  path="$root/$(image_path "$name")"
  [[ -e $path || -L $path ]] && return 0
  mkdir -p "$(dirname "$path")"
  ln -s "$target" "$path"
}

initramfs_skeleton() {
  local root=$1
  mkdir -p "$root"/{dev,proc,sys,run,tmp,mnt,share,payload,etc/lvm,var}
  mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64}
  ln -s usr/bin "$root/bin"
  ln -s usr/sbin "$root/sbin"
  ln -s usr/lib "$root/lib"
  ln -s usr/lib64 "$root/lib64"
  ln -s /proc/self/mounts "$root/etc/mtab"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
}

# A modules tree for depmod: the kernel's own modules hard-linked, zfs's in extra/.
module_tree() {
  local tree=$1 kernel=$2 zfsmods=$3 abi=$4
  local moddir="$tree/lib/modules/$abi"
  mkdir -p "$moddir/extra"
  cp -al "$kernel/root/lib/modules/$abi/." "$moddir/" 2>/dev/null ||
    cp -a "$kernel/root/lib/modules/$abi/." "$moddir/"
  cp "$zfsmods"/*.ko "$moddir/extra/"
  depmod -b "$tree" "$abi"
}

# Copies GUEST_MODULES and their dependencies, writing the load order to etc/modules,
# and indexes them so the kernel's own module requests (busybox modprobe) work too.
add_modules() {
  local root=$1 tree=$2 abi=$3
  local order="$root/etc/modules" mod line path rel
  : >"$order"
  for mod in "${GUEST_MODULES[@]}"; do
    modprobe -d "$tree" -S "$abi" --show-depends "$mod" >"$root/.deps" ||
      { log "module $mod not found for $abi"; return 1; }
    while read -r line; do
      [[ $line == insmod\ * ]] || continue
      path=$(awk '{ print $2 }' <<<"$line")
      rel=${path#"$tree"/}
      grep -qxF "$rel" "$order" && continue
      install -D -m 0644 "$path" "$root/$rel"
      echo "$rel" >>"$order"
    done <"$root/.deps"
  done
  rm -f "$root/.deps"
  cp "$tree/lib/modules/$abi"/modules.{builtin,builtin.modinfo,order} "$root/lib/modules/$abi/"
  depmod -b "$root" "$abi"
}

# Unpacks the ZFS userland packages once per version into the cache.
zfs_userland() {
  local version=$1
  local dest="$CACHE_DIR/zfs-userland/$version"
  if [[ ! -f $dest/.complete ]]; then
    rm -rf "$dest"
    mkdir -p "$dest/debs"
    (cd "$dest/debs" && run_logged "$dest/download.log" \
      apt-get download "${ZFS_USERLAND_PACKAGES[@]}") || return 1
    local deb
    for deb in "$dest"/debs/*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
    rm -rf "$dest/debs"
    touch "$dest/.complete"
  fi
  printf '%s\n' "$dest/root"
}

add_tools() {
  local root=$1 zfsroot=$2
  local tool link
  for tool in "${HOST_TOOLS[@]}"; do copy_with_libs "$root" "$tool"; done
  # lvm's commands and pdata_tools's thin_*/cache_*/era_* are symlinks to one binary.
  while read -r link; do
    image_link "$root" "$link" "$(basename "$(readlink "$link")")"
  done < <(find /usr/sbin -maxdepth 1 \( -lname lvm -o -lname '*/lvm' \
    -o -lname pdata_tools -o -lname '*/pdata_tools' \))
  image_link "$root" /usr/sbin/mkfs.ext4 mke2fs
  image_link "$root" /usr/sbin/mkfs.ext2 mke2fs
  cp /etc/mke2fs.conf "$root/etc/"
  local zlib="$zfsroot/lib/x86_64-linux-gnu"
  for tool in zpool zfs mount.zfs; do
    copy_with_libs "$root" "$zfsroot/sbin/$tool" "$zlib" "/usr/sbin/$tool"
  done
}

add_guest_files() {
  local root=$1
  install -m 0755 "$VM_TESTS_DIR/guest/init" "$root/init"
  install -m 0644 "$VM_TESTS_DIR/guest/lvm.conf" "$root/etc/lvm/lvm.conf"
}

# busybox last: an applet link only where no real tool is.
add_busybox() {
  local root=$1 applet
  install -m 0755 /bin/busybox "$root/usr/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    image_link "$root" "/$applet" /usr/bin/busybox
  done
}

# Builds the initramfs at $1 for kernel dir $2, zfs module dir $3, ABI $4, ZFS version $5.
build_initramfs() {
  local out=$1 kernel=$2 zfsmods=$3 abi=$4 zfsversion=$5
  local stage="$out.d"
  rm -rf "$stage" "$out"
  mkdir -p "$stage/root"
  local root="$stage/root"
  local zfsroot
  zfsroot=$(zfs_userland "$zfsversion") || return 1
  initramfs_skeleton "$root"
  module_tree "$stage/modtree" "$kernel" "$zfsmods" "$abi" || return 1
  add_modules "$root" "$stage/modtree" "$abi" || return 1
  add_tools "$root" "$zfsroot" || return 1
  add_guest_files "$root"
  add_busybox "$root"
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"
  rm -rf "$stage"
}
