#!/bin/sh
# Captures the zfs/zpool output the zfs driver parses (fixtures for its unit tests):
# listings with cairn's user properties, a pool on a file vdev, stream headers of a full
# and an incremental `zfs send`, a resume token, and the errors the driver maps.
# shellcheck source=lib.sh
. /payload/scenarios/lib.sh

step "pool on a file vdev, cairn's layout"
truncate -s 512M /tmp/pool.img
zpool create -o ashift=12 -o cachefile=none -O mountpoint=legacy -O canmount=off \
  -O cairn:managed=cap cairn-cap /tmp/pool.img
zfs create -o cairn:managed=cap cairn-cap/cairn
zfs create -p cairn-cap/cairn/volumes/web
zfs set cairn:volume=web cairn-cap/cairn/volumes/web
zfs set cairn:volume_created_at=1795432377123456789 cairn-cap/cairn/volumes/web
zfs create cairn-cap/cairn/volumes/web/live
mkdir -p /mnt/live /mnt/snap
mount -t zfs cairn-cap/cairn/volumes/web/live /mnt/live
dd if=/dev/urandom of=/mnt/live/data bs=1M count=8 2>/dev/null
zfs snapshot -o cairn:created_at=1795432378000000001 -o cairn:name=s1 cairn-cap/cairn/volumes/web/live@s1
echo more >/mnt/live/more
zfs snapshot -o cairn:created_at=1795432379000000002 -o 'cairn:name=ünï%' \
  'cairn-cap/cairn/volumes/web/live@:C3:BCn:C3:AF:25'
zfs snapshot cairn-cap/cairn/volumes/web/live@:tclone.1
zfs clone cairn-cap/cairn/volumes/web/live@:tclone.1 cairn-cap/cairn/volumes/web/h.1
zfs destroy -d cairn-cap/cairn/volumes/web/live@:tclone.1
zfs hold cairn-send.1 cairn-cap/cairn/volumes/web/live@s1

step "listings"
zfs list -H -p -t filesystem -o name,cairn:volume,cairn:volume_created_at,creation -r cairn-cap/cairn/volumes |
  fixture zfs-list-volumes.txt
zfs list -H -p -t snapshot -o name,guid,createtxg,creation,cairn:created_at,cairn:name,defer_destroy,userrefs,clones \
  -r cairn-cap/cairn/volumes/web | fixture zfs-list-snapshots.txt
# The one listing the driver makes per operation (parse::LIST_COLS): a container, its
# filesystems and snapshots together.
zfs list -H -p -t filesystem,snapshot \
  -o name,guid,createtxg,creation,cairn:created_at,cairn:name,defer_destroy,userrefs,clones,cairn:volume,cairn:volume_created_at,cairn:managed \
  -r cairn-cap/cairn/volumes/web | fixture zfs-list-container.txt
zfs list -H -p -o name,used,available,referenced,cairn:managed cairn-cap/cairn cairn-cap/cairn/volumes/web/live |
  fixture zfs-list-space.txt
zfs get -H -p -o name,property,value,source cairn:managed cairn-cap cairn-cap/cairn cairn-cap/cairn/volumes |
  fixture zfs-get-managed.txt

step "stream headers"
zfs send cairn-cap/cairn/volumes/web/live@s1 | head -c 1024 >/tmp/full.head || true
fixture zfs-send-full.head </tmp/full.head
zfs send -i @s1 'cairn-cap/cairn/volumes/web/live@:C3:BCn:C3:AF:25' | head -c 1024 >/tmp/inc.head || true
fixture zfs-send-incremental.head </tmp/inc.head

step "resume token, and errors"
if zfs send cairn-cap/cairn/volumes/web/live@s1 | head -c 300000 | zfs receive -s -u cairn-cap/cairn/recv; then
  fail "a truncated stream was received"
fi
zfs get -H -p -o name,property,value,source receive_resume_token cairn-cap/cairn/recv |
  fixture zfs-get-resume-token.txt
{
  zfs list -H cairn-cap/cairn/nope 2>&1 || true
  zfs create cairn-cap/cairn/volumes 2>&1 || true
  zfs destroy cairn-cap/cairn/volumes/web/live@s1 2>&1 || true
  zfs destroy cairn-cap/cairn/volumes/web/live 2>&1 || true
  zfs snapshot cairn-cap/cairn/volumes/web/live@s1 2>&1 || true
  zfs receive -A cairn-cap/cairn/recv 2>&1 && echo "receive -A ok"
  zfs list -H -o name cairn-cap/cairn/recv 2>&1 || true
  zpool import -d /tmp/pool.img cairn-nope 2>&1 || true
} >/tmp/errors.txt
fixture zfs-errors.txt </tmp/errors.txt
cat /tmp/errors.txt

step "export, import from the file"
umount /mnt/live
zfs release cairn-send.1 cairn-cap/cairn/volumes/web/live@s1
zpool export cairn-cap
zpool import -d /tmp/pool.img cairn-cap
zpool list -H -o name cairn-cap
zpool destroy cairn-cap
echo "zfs capture ok"
