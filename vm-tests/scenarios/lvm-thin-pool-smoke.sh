#!/bin/sh
# LVM thin on /dev/vda: a thin pool, a thin LV with ext4, data, a thin snapshot activated
# with -K and mounted ro,noload, its content compared; thin_delta between two thin
# devices on a reserved metadata snapshot; lvs/vgs JSON captured as parser fixtures.
# shellcheck source=lib.sh
. /payload/scenarios/lib.sh

step "pool and volume"
pvcreate -q /dev/vda
vgcreate -q cairnvg /dev/vda
lvcreate -q --type thin-pool -L 2G -n pool cairnvg
lvcreate -q -V 1G -T cairnvg/pool -n vol
mkfs.ext4 -q /dev/cairnvg/vol
mkdir -p /mnt/vol /mnt/snap
mount /dev/cairnvg/vol /mnt/vol

step "data and thin snapshot"
dd if=/dev/urandom of=/mnt/vol/data bs=1M count=32 2>/dev/null
sync
before=$(hash_of /mnt/vol/data)
lvcreate -q -s -n snap1 cairnvg/vol
dd if=/dev/urandom of=/mnt/vol/data bs=1M count=4 seek=8 conv=notrunc 2>/dev/null
sync
[ "$(hash_of /mnt/vol/data)" != "$before" ] || fail "live data did not change"

step "activate the snapshot with -K and compare"
lvs --noheadings -o lv_attr cairnvg/snap1 | grep -q 'k' || fail "snapshot lacks the skip-activation flag"
lvchange -ay -K cairnvg/snap1
mount -o ro,noload /dev/cairnvg/snap1 /mnt/snap
[ "$(hash_of /mnt/snap/data)" = "$before" ] || fail "snapshot content differs from before"
if touch /mnt/snap/x 2>/dev/null; then fail "read-only snapshot mount is writable"; fi

step "thin_delta between the snapshot and the origin"
lvcreate -q -s -n snap2 cairnvg/vol
id1=$(lvs --noheadings -o thin_id cairnvg/snap1 | tr -d ' ')
id2=$(lvs --noheadings -o thin_id cairnvg/snap2 | tr -d ' ')
dmsetup message cairnvg-pool-tpool 0 reserve_metadata_snap
thin_delta -m --snap1 "$id1" --snap2 "$id2" /dev/mapper/cairnvg-pool_tmeta >/tmp/delta.xml
dmsetup message cairnvg-pool-tpool 0 release_metadata_snap
fixture thin-delta.xml </tmp/delta.xml
expect_in /tmp/delta.xml '<different'

step "capture lvs/vgs JSON"
lvs -a --reportformat json --units b --nosuffix \
  -o lv_name,vg_name,lv_attr,lv_size,segtype,pool_lv,origin,data_percent,metadata_percent,thin_id,lv_active,lv_time,lv_uuid,lv_tags \
  cairnvg >/tmp/lvs.json
fixture lvs-thin.json </tmp/lvs.json
vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free,vg_uuid,vg_tags cairnvg |
  fixture vgs.json
jq -e '.report[0].lv | map(.lv_name) | index("snap1") and index("pool") and index("vol")' \
  /tmp/lvs.json >/dev/null || fail "lvs JSON lacks pool, vol or snap1"
jq -e '.report[0].lv[] | select(.lv_name == "pool") | .data_percent | tonumber > 0' \
  /tmp/lvs.json >/dev/null || fail "thin pool data_percent is not positive"

step "tear down"
umount /mnt/snap /mnt/vol
vgremove -q -f cairnvg
echo "lvm thin-pool smoke ok"
