#!/bin/sh
# ZFS on the whole disk /dev/vdb: pool, dataset, data, snapshots, a clone, full and
# incremental send into `receive -s`, an interrupted receive resumed from its token;
# zfs/zpool list output checked.
# shellcheck source=lib.sh
. /payload/scenarios/lib.sh

step "pool and dataset"
zpool create -f -o ashift=12 -O mountpoint=none cairnpool /dev/vdb
zfs create -o mountpoint=/mnt/vol cairnpool/vol
dd if=/dev/urandom of=/mnt/vol/data bs=1M count=32 2>/dev/null
h1=$(hash_of /mnt/vol/data)
zfs snapshot cairnpool/vol@s1

step "change, second snapshot, clone of the first"
dd if=/dev/urandom of=/mnt/vol/data bs=1M count=4 seek=8 conv=notrunc 2>/dev/null
h2=$(hash_of /mnt/vol/data)
[ "$h1" != "$h2" ] || fail "live data did not change"
zfs snapshot cairnpool/vol@s2
zfs clone -o mountpoint=/mnt/clone cairnpool/vol@s1 cairnpool/clone
[ "$(hash_of /mnt/clone/data)" = "$h1" ] || fail "clone differs from @s1"

step "full send, incremental send -i, receive -s"
zfs send cairnpool/vol@s1 | zfs receive -s -o mountpoint=/mnt/copy -o readonly=on cairnpool/copy
[ "$(hash_of /mnt/copy/data)" = "$h1" ] || fail "full receive differs from @s1"
zfs send -i @s1 cairnpool/vol@s2 | zfs receive -s cairnpool/copy
[ "$(hash_of /mnt/copy/data)" = "$h2" ] || fail "incremental receive differs from @s2"

step "interrupted receive resumes from its token"
if zfs send cairnpool/vol@s2 | head -c 1000000 | zfs receive -s cairnpool/resumed; then
  fail "a truncated stream was received"
fi
token=$(zfs get -H -o value receive_resume_token cairnpool/resumed)
[ -n "$token" ] && [ "$token" != "-" ] || fail "no resume token after an interrupted receive"
zfs send -t "$token" | zfs receive -s cairnpool/resumed
zfs set mountpoint=/mnt/resumed cairnpool/resumed
zfs mount cairnpool/resumed 2>/dev/null || true
[ "$(hash_of /mnt/resumed/data)" = "$h2" ] || fail "resumed receive differs from @s2"

step "check zfs/zpool list output"
zfs list -H -p -o name,used,avail,refer,creation -t all >/tmp/zfs-list.txt
zpool list -H -p >/tmp/zpool-list.txt
expect_in /tmp/zfs-list.txt 'cairnpool/vol@s2'
expect_in /tmp/zfs-list.txt 'cairnpool/clone'
awk -F'\t' 'NF != 5 { exit 1 }' /tmp/zfs-list.txt || fail "zfs list -H lines are not 5 tab-separated fields"
awk -F'\t' '$1 == "cairnpool" && $2 > 0 { ok = 1 } END { exit !ok }' /tmp/zpool-list.txt ||
  fail "zpool list lacks cairnpool with a size"

step "tear down"
zpool export cairnpool
zpool import -d /dev cairnpool
zpool destroy cairnpool
echo "zfs pool smoke ok"
