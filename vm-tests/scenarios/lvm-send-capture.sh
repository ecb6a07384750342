#!/bin/sh
# What the LVM driver's native send reads, captured for its parser tests: a raw thin LV
# with blocks written, overwritten and discarded between two thin snapshots, then
# `thin_delta` between them and `thin_dump --dev-id` of the newer one, both on a
# reserved metadata snapshot. Fixtures: thin-delta-send.xml, thin-dump-dev.xml.
# Expected (64 KiB blocks): block 1 only in snap1 (discarded), block 2 different,
# block 10 only in snap2 (new), blocks 0 and 3 the same.
# shellcheck source=lib.sh
. /payload/scenarios/lib.sh

step "pool, thin LV, four written blocks, snap1"
pvcreate -q /dev/vda
vgcreate -q sendvg /dev/vda
lvcreate -q --type thin-pool -L 1G --chunksize 64k -n pool sendvg
lvcreate -q -V 1G -T sendvg/pool -n vol
dd if=/dev/urandom of=/dev/sendvg/vol bs=64K count=4 oflag=direct 2>/dev/null
lvcreate -q -s -n snap1 sendvg/vol

step "discard block 1, overwrite block 2, write block 10, snap2"
blkdiscard -o 65536 -l 65536 /dev/sendvg/vol
dd if=/dev/urandom of=/dev/sendvg/vol bs=64K count=1 seek=2 oflag=direct conv=notrunc 2>/dev/null
dd if=/dev/urandom of=/dev/sendvg/vol bs=64K count=1 seek=10 oflag=direct conv=notrunc 2>/dev/null
lvcreate -q -s -n snap2 sendvg/vol
ls /dev/mapper

step "thin_delta and thin_dump on a reserved metadata snapshot"
id1=$(lvs --noheadings -o thin_id sendvg/snap1 | tr -d ' ')
id2=$(lvs --noheadings -o thin_id sendvg/snap2 | tr -d ' ')
dmsetup message sendvg-pool-tpool 0 reserve_metadata_snap
thin_delta -m --snap1 "$id1" --snap2 "$id2" /dev/mapper/sendvg-pool_tmeta >/tmp/delta.xml
thin_dump -m --dev-id "$id2" /dev/mapper/sendvg-pool_tmeta >/tmp/dump.xml
dmsetup message sendvg-pool-tpool 0 release_metadata_snap
cat /tmp/delta.xml /tmp/dump.xml
fixture thin-delta-send.xml </tmp/delta.xml
fixture thin-dump-dev.xml </tmp/dump.xml
expect_in /tmp/delta.xml '<different begin="2" length="1"/>'
expect_in /tmp/dump.xml 'dev_id="'"$id2"'"'

step "a second reserve fails while one is held"
dmsetup message sendvg-pool-tpool 0 reserve_metadata_snap
if dmsetup message sendvg-pool-tpool 0 reserve_metadata_snap 2>/tmp/err; then
  fail "a second reserve_metadata_snap succeeded"
fi
cat /tmp/err
dmsetup message sendvg-pool-tpool 0 release_metadata_snap
if dmsetup message sendvg-pool-tpool 0 release_metadata_snap 2>/tmp/err; then
  echo "release without a reserved snapshot succeeds"
else
  echo "release without a reserved snapshot fails:"; cat /tmp/err
fi
lvs -a -o lv_name,chunk_size,discards,thin_id sendvg

step "tear down"
vgremove -q -f sendvg
echo "lvm send capture ok"
