# Boots one guest under qemu (TCG) with a host-side timeout. Sourced, not run.

VM_MEMORY_MB=${CAIRN_VM_MEMORY_MB:-1024}
VM_DISK_SIZE=${CAIRN_VM_DISK_SIZE:-4G}
VM_SCRATCH_SIZE=${CAIRN_VM_SCRATCH_SIZE:-8G}

# Boots the image for the scenario in $1 (a directory holding share/), with timeout $2
# seconds. Two fresh sparse disks appear in the guest as /dev/vda and /dev/vdb, and a
# third, /dev/vdc, becomes the guest's /tmp (ext4: user xattrs, ACLs, not RAM). The
# console (kernel messages and the scenario's output) goes to $1/console.log. Uses
# KERNEL, INITRAMFS, PAYLOAD_DIR and WORKSPACE_DIR. Returns qemu's status (124: timeout).
boot_vm() {
  local vmdir=$1 timeout_s=$2
  rm -f "$vmdir"/disk{0,1}.img "$vmdir/scratch.img"
  truncate -s "$VM_DISK_SIZE" "$vmdir/disk0.img" "$vmdir/disk1.img"
  truncate -s "$VM_SCRATCH_SIZE" "$vmdir/scratch.img"
  local args=(
    -accel tcg -cpu max -m "$VM_MEMORY_MB" -smp 1
    -nodefaults -no-user-config -display none -serial stdio -no-reboot
    -kernel "$KERNEL" -initrd "$INITRAMFS"
    -append "console=ttyS0 panic=-1 quiet loglevel=4"
    -drive "file=$vmdir/disk0.img,if=virtio,format=raw,cache=unsafe"
    -drive "file=$vmdir/disk1.img,if=virtio,format=raw,cache=unsafe"
    -drive "file=$vmdir/scratch.img,if=virtio,format=raw,cache=unsafe"
    -virtfs "local,path=$vmdir/share,mount_tag=share,security_model=none,id=share"
    -virtfs "local,path=$PAYLOAD_DIR,mount_tag=payload,security_model=none,id=payload,readonly=on"
    -virtfs "local,path=$WORKSPACE_DIR,mount_tag=src,security_model=none,id=src,readonly=on"
  )
  local rc=0
  timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 "${args[@]}" \
    </dev/null >"$vmdir/console.log" 2>&1 || rc=$?
  rm -f "$vmdir"/disk{0,1}.img "$vmdir/scratch.img"
  return "$rc"
}
