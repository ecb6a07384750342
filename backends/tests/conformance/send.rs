//! Native send/receive between two pools of the same driver.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};

use cairn_backends::Backend;

use crate::fixture::{Fixture, Tier};
use crate::harness::Req;
use crate::util::*;

/// Full then incremental send into a second pool: the received snapshots are the sent
/// ones, and the incremental stream carries only the change. Drivers without a native
/// stream say `NotSupported`.
pub fn native_send_receive(tier: Tier, test: &str) {
    let Some(fx) = Fixture::new(tier, test, &[Req::Image]) else {
        return;
    };
    let b = fx.pool.as_ref();
    let v = vol("web");
    let (s1, s2) = (snap("s1"), snap("s2"));
    let caps = b.info().capabilities;
    if !caps.native_send {
        tree_volume(b, &v, 31);
        b.create_snapshot(&v, &s1).unwrap();
        assert_err(
            b.send(&v, &s1, None, &mut std::io::sink()),
            is_not_supported,
            "send without native_send",
        );
        assert_err(
            b.receive(&vol("in"), &s1, &mut std::io::empty()),
            is_not_supported,
            "receive without native_send",
        );
        assert_eq!(volume_names(b), ["web"], "a refused receive made a volume");
        return;
    }
    let m1 = image_volume(b, &v, fx.tier.image());
    b.create_snapshot(&v, &s1).unwrap();
    let live = b.mount_volume(&v).unwrap();
    modify_small(&live, "sent");
    write_noise(&live.join("root/new-data"), 100_000, 5);
    let m2 = manifest(&live);
    b.create_snapshot(&v, &s2).unwrap();

    let dst = fx.new_pool("p2");
    let full = send_to_file(&fx, b, &v, &s1, None, "full.stream");
    let info = receive_file(dst.as_ref(), &v, &s1, &full);
    assert_eq!((info.volume.as_str(), info.name.as_str()), ("web", "s1"));
    assert_eq!(volume_names(dst.as_ref()), ["web"]);
    assert_eq!(snapshot_names(dst.as_ref(), &v), ["s1"]);
    assert_same(
        &m1,
        &snap_manifest(dst.as_ref(), &v, &s1),
        "received full snapshot",
    );
    assert_same(
        &m1,
        &vol_manifest(dst.as_ref(), &v),
        "live state made by receive",
    );
    dst.unmount_volume(&v).unwrap();

    if !caps.incremental_send {
        assert_err(
            b.send(&v, &s2, Some(&s1), &mut std::io::sink()),
            is_not_supported,
            "incremental send without incremental_send",
        );
        return;
    }
    let inc = send_to_file(&fx, b, &v, &s2, Some(&s1), "inc.stream");
    let (full_len, inc_len) = (len(&full), len(&inc));
    assert!(
        inc_len * 20 < full_len,
        "incremental stream {inc_len} bytes is not much smaller than the full one {full_len}"
    );
    // Into a volume or a pool without the base it is refused, leaving nothing.
    let stray = vol("stray");
    let r = dst.receive(&stray, &s2, &mut BufReader::new(File::open(&inc).unwrap()));
    assert!(
        r.is_err(),
        "incremental receive into a volume without the base: {r:?}"
    );
    assert_eq!(
        volume_names(dst.as_ref()),
        ["web"],
        "failed receive left a volume"
    );
    let bare = fx.new_pool("p3");
    let r = bare.receive(&v, &s2, &mut BufReader::new(File::open(&inc).unwrap()));
    assert!(
        r.is_err(),
        "incremental receive without its base succeeded: {r:?}"
    );
    assert_eq!(
        volume_names(bare.as_ref()),
        Vec::<String>::new(),
        "failed receive left a volume"
    );

    receive_file(dst.as_ref(), &v, &s2, &inc);
    assert_eq!(snapshot_names(dst.as_ref(), &v), ["s1", "s2"]);
    assert_same(
        &m2,
        &snap_manifest(dst.as_ref(), &v, &s2),
        "received incremental snapshot",
    );
    assert_same(
        &m1,
        &snap_manifest(dst.as_ref(), &v, &s1),
        "base after incremental receive",
    );
    // Sent snapshots are untouched on the source.
    assert_same(&m1, &snap_manifest(b, &v, &s1), "source s1");
    assert_same(&m2, &snap_manifest(b, &v, &s2), "source s2");
}

fn send_to_file(
    fx: &Fixture,
    b: &dyn Backend,
    v: &cairn_backends::VolumeName,
    s: &cairn_backends::SnapshotName,
    base: Option<&cairn_backends::SnapshotName>,
    name: &str,
) -> std::path::PathBuf {
    let path = fx.root().join(name);
    let mut out = BufWriter::new(File::create(&path).unwrap());
    let stats = b
        .send(v, s, base, &mut out)
        .unwrap_or_else(|e| panic!("send {v}@{s} (base {base:?}): {e}"));
    out.flush().unwrap();
    drop(out);
    assert_eq!(stats.bytes, len(&path), "SendStats.bytes vs bytes written");
    path
}

fn receive_file(
    b: &dyn Backend,
    v: &cairn_backends::VolumeName,
    s: &cairn_backends::SnapshotName,
    path: &std::path::Path,
) -> cairn_backends::SnapshotInfo {
    let info = b
        .receive(v, s, &mut BufReader::new(File::open(path).unwrap()))
        .unwrap_or_else(|e| panic!("receive {v}@{s} from {}: {e}", path.display()));
    // What receive returns is what a listing says of the snapshot.
    let listed = b.list_snapshots(v).unwrap();
    let listed = listed.iter().find(|i| &i.name == s);
    assert_eq!(Some(&info), listed, "receive's answer vs list_snapshots");
    info
}

fn len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}
