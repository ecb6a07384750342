//! Pure parsers of LVM's JSON reports (`lvs`/`vgs`/`pvs --reportformat json --units b
//! --nosuffix`) and of `thin_delta` XML, tested on output captured in the test VM
//! (`tests/fixtures/`, from `vm-tests`).

use serde::Deserialize;

use super::naming;
use crate::error::{Error, Result};
use crate::names::{SnapshotName, VolumeName};

/// The `-o` fields asked of `lvs`; [`parse_lvs`] reads exactly these.
pub const LVS_FIELDS: &str = "lv_name,lv_attr,lv_size,segtype,data_percent,metadata_percent,thin_id,lv_active,lv_uuid,lv_tags";
/// The `-o` fields asked of `vgs`; [`parse_vgs`] reads exactly these.
pub const VGS_FIELDS: &str = "vg_name,vg_tags";
/// The `-o` fields asked of `pvs`; [`parse_pvs`] reads exactly these.
pub const PVS_FIELDS: &str = "pv_name,vg_name";

/// One logical volume as `lvs` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lv {
    pub name: String,
    /// The 10-character attribute string (`Vwi-aotz-k`).
    pub attr: String,
    pub size: u64,
    pub segtype: String,
    pub data_percent: Option<f64>,
    pub metadata_percent: Option<f64>,
    pub thin_id: Option<u32>,
    pub active: bool,
    /// LVM's UUID of the LV (kept across renames).
    pub uuid: String,
    pub tags: Vec<String>,
}

impl Lv {
    pub fn is_thin_pool(&self) -> bool {
        self.segtype == "thin-pool"
    }
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
    /// The value of the first tag `<key>=<value>`.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }
    /// Whether the LV is a snapshot: it has a `cairn-s=` tag (valid or not).
    pub fn is_snapshot(&self) -> bool {
        self.tag_value(naming::KEY_SNAPSHOT).is_some()
    }
    /// The volume its `cairn-v=` tag names, if the tag is there and decodes to a valid name.
    pub fn volume_name(&self) -> Option<VolumeName> {
        naming::decode(self.tag_value(naming::KEY_VOLUME)?)?
            .parse()
            .ok()
    }
    /// The snapshot its `cairn-s=` tag names, if the tag is there and decodes to a valid
    /// name.
    pub fn snapshot_name(&self) -> Option<SnapshotName> {
        naming::decode(self.tag_value(naming::KEY_SNAPSHOT)?)?
            .parse()
            .ok()
    }
    /// Attribute 2 (permissions) is `r` for a read-only LV.
    pub fn read_only(&self) -> bool {
        self.attr.as_bytes().get(1) == Some(&b'r')
    }
}

/// One volume group as `vgs` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vg {
    pub name: String,
    pub tags: Vec<String>,
}

/// One physical volume as `pvs` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pv {
    pub name: String,
    /// Empty for a PV in no VG.
    pub vg: String,
}

#[derive(Deserialize)]
struct Report<T> {
    report: Vec<T>,
}

#[derive(Deserialize)]
struct LvSection {
    #[serde(default)]
    lv: Vec<RawLv>,
}

#[derive(Deserialize)]
struct VgSection {
    #[serde(default)]
    vg: Vec<RawVg>,
}

#[derive(Deserialize)]
struct PvSection {
    #[serde(default)]
    pv: Vec<RawPv>,
}

#[derive(Deserialize)]
struct RawLv {
    lv_name: String,
    lv_attr: String,
    lv_size: String,
    segtype: String,
    data_percent: String,
    metadata_percent: String,
    thin_id: String,
    lv_active: String,
    lv_uuid: String,
    lv_tags: String,
}

#[derive(Deserialize)]
struct RawVg {
    vg_name: String,
    vg_tags: String,
}

#[derive(Deserialize)]
struct RawPv {
    pv_name: String,
    vg_name: String,
}

fn bad(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Invalid {
        op: "parse",
        object: what.to_string(),
        reason: reason.to_string(),
    }
}

fn number(what: &str, field: &str, s: &str) -> Result<u64> {
    s.trim()
        .parse()
        .map_err(|_| bad(what, format!("{field} {s:?} is not a byte count")))
}

fn percent(what: &str, field: &str, s: &str) -> Result<Option<f64>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| bad(what, format!("{field} {s:?} is not a percentage")))
}

fn tags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

fn report<T: for<'de> Deserialize<'de>>(what: &str, json: &str) -> Result<Vec<T>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let r: Report<T> = serde_json::from_str(json).map_err(|e| bad(what, e))?;
    Ok(r.report)
}

/// Parses `lvs --reportformat json --units b --nosuffix -o` [`LVS_FIELDS`].
pub fn parse_lvs(json: &str) -> Result<Vec<Lv>> {
    const WHAT: &str = "lvs JSON report";
    let mut out = Vec::new();
    for section in report::<LvSection>(WHAT, json)? {
        for r in section.lv {
            let thin_id = match r.thin_id.trim() {
                "" => None,
                s => Some(
                    s.parse()
                        .map_err(|_| bad(WHAT, format!("thin_id {s:?} is not a number")))?,
                ),
            };
            out.push(Lv {
                size: number(WHAT, "lv_size", &r.lv_size)?,
                data_percent: percent(WHAT, "data_percent", &r.data_percent)?,
                metadata_percent: percent(WHAT, "metadata_percent", &r.metadata_percent)?,
                thin_id,
                active: r.lv_active == "active",
                uuid: r.lv_uuid,
                tags: tags(&r.lv_tags),
                name: r.lv_name,
                attr: r.lv_attr,
                segtype: r.segtype,
            });
        }
    }
    Ok(out)
}

/// Parses `vgs --reportformat json --units b --nosuffix -o` [`VGS_FIELDS`].
pub fn parse_vgs(json: &str) -> Result<Vec<Vg>> {
    const WHAT: &str = "vgs JSON report";
    let mut out = Vec::new();
    for section in report::<VgSection>(WHAT, json)? {
        for r in section.vg {
            out.push(Vg {
                tags: tags(&r.vg_tags),
                name: r.vg_name,
            });
        }
    }
    Ok(out)
}

/// Parses `pvs --reportformat json --units b --nosuffix -o` [`PVS_FIELDS`].
pub fn parse_pvs(json: &str) -> Result<Vec<Pv>> {
    const WHAT: &str = "pvs JSON report";
    let mut out = Vec::new();
    for section in report::<PvSection>(WHAT, json)? {
        for r in section.pv {
            out.push(Pv {
                name: r.pv_name,
                vg: r.vg_name,
            });
        }
    }
    Ok(out)
}

/// A run of data blocks (in units of the pool's block size) of a thin device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRange {
    pub begin: u64,
    pub length: u64,
}

/// What `thin_delta` says about two thin devices (`--snap1` the base, `--snap2` the newer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinDelta {
    /// The pool's block size in 512-byte sectors.
    pub data_block_size: u64,
    /// Blocks to send: `<different>` (remapped) and `<right_only>` (mapped in snap2 only).
    pub changed: Vec<BlockRange>,
    /// Blocks mapped in snap1 only (`<left_only>`): discarded since, they read as zeros.
    pub discarded: Vec<BlockRange>,
}

/// The mapped blocks of one thin device as `thin_dump --dev-id` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinMapping {
    /// The pool's block size in 512-byte sectors.
    pub data_block_size: u64,
    pub mapped: Vec<BlockRange>,
}

/// The value of attribute `name` in one XML start tag.
fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

/// Appends `r`, merged into the last range when adjacent.
fn push_merged(ranges: &mut Vec<BlockRange>, r: BlockRange) {
    match ranges.last_mut() {
        Some(last) if last.begin + last.length == r.begin => last.length += r.length,
        _ => ranges.push(r),
    }
}

/// Calls `f(kind, field)` for every start tag of `xml`; `field(name)` reads a number.
fn each_tag(
    what: &str,
    xml: &str,
    mut f: impl FnMut(&str, &dyn Fn(&str) -> Result<u64>) -> Result<()>,
) -> Result<()> {
    for raw in xml.split('<').skip(1) {
        let tag = raw.split('>').next().unwrap_or("");
        let tag = tag.trim_end_matches('/');
        let kind = tag.split_whitespace().next().unwrap_or("");
        let field = |name: &str| -> Result<u64> {
            xml_attr(tag, name)
                .ok_or_else(|| bad(what, format!("<{kind}> has no {name}")))?
                .parse()
                .map_err(|_| bad(what, format!("<{kind}> {name} is not a number")))
        };
        f(kind, &field)?;
    }
    Ok(())
}

fn block_size(what: &str, size: Option<u64>) -> Result<u64> {
    match size {
        None => Err(bad(what, "no <superblock> with a data_block_size")),
        Some(0) => Err(bad(what, "data_block_size is 0")),
        Some(n) => Ok(n),
    }
}

/// Parses `thin_delta -m` XML: `<different>` and `<right_only>` ranges are changed,
/// `<left_only>` ones discarded, `<same>` ones neither. Adjacent ranges are merged.
pub fn parse_thin_delta(xml: &str) -> Result<ThinDelta> {
    const WHAT: &str = "thin_delta XML";
    let mut size = None;
    let (mut changed, mut discarded) = (Vec::new(), Vec::new());
    each_tag(WHAT, xml, |kind, field| {
        let range = || -> Result<BlockRange> {
            Ok(BlockRange {
                begin: field("begin")?,
                length: field("length")?,
            })
        };
        match kind {
            "superblock" => size = Some(field("data_block_size")?),
            "different" | "right_only" => push_merged(&mut changed, range()?),
            "left_only" => push_merged(&mut discarded, range()?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(ThinDelta {
        data_block_size: block_size(WHAT, size)?,
        changed,
        discarded,
    })
}

/// Parses `thin_dump -m --dev-id <dev_id>` XML: the `<range_mapping>` and
/// `<single_mapping>` entries of device `dev_id`, merged where adjacent. Fails when the
/// dump does not hold that device.
pub fn parse_thin_dump(xml: &str, dev_id: u32) -> Result<ThinMapping> {
    const WHAT: &str = "thin_dump XML";
    let mut size = None;
    let mut in_device = None;
    let mut found = false;
    let mut mapped = Vec::new();
    each_tag(WHAT, xml, |kind, field| {
        match kind {
            "superblock" => size = Some(field("data_block_size")?),
            "device" => {
                let this = field("dev_id")? == u64::from(dev_id);
                found |= this;
                in_device = Some(this);
            }
            "range_mapping" if in_device == Some(true) => push_merged(
                &mut mapped,
                BlockRange {
                    begin: field("origin_begin")?,
                    length: field("length")?,
                },
            ),
            "single_mapping" if in_device == Some(true) => push_merged(
                &mut mapped,
                BlockRange {
                    begin: field("origin_block")?,
                    length: 1,
                },
            ),
            "range_mapping" | "single_mapping" if in_device.is_none() => {
                return Err(bad(WHAT, format!("<{kind}> outside a <device>")))
            }
            _ => {}
        }
        Ok(())
    })?;
    if !found {
        return Err(bad(WHAT, format!("the dump holds no device {dev_id}")));
    }
    Ok(ThinMapping {
        data_block_size: block_size(WHAT, size)?,
        mapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_lvs() {
        let lvs = parse_lvs(include_str!("../../tests/fixtures/lvs-thin.json")).unwrap();
        assert_eq!(lvs.len(), 7);
        let pool = lvs.iter().find(|l| l.name == "pool").unwrap();
        assert!(pool.is_thin_pool());
        assert_eq!(pool.size, 2 << 30);
        assert_eq!(pool.data_percent, Some(4.16));
        assert_eq!(pool.metadata_percent, Some(12.40));
        let snap = lvs.iter().find(|l| l.name == "snap2").unwrap();
        assert_eq!(snap.segtype, "thin");
        assert_eq!(snap.size, 1 << 30);
        assert_eq!(snap.uuid, "aDAcHg-rwR7-Vw0n-8kFW-YzpU-04yx-Cjl9Gc");
        assert_eq!(snap.thin_id, Some(3));
        assert!(!snap.active);
        assert!(!snap.read_only());
        assert_eq!(snap.data_percent, None);
        let vol = lvs.iter().find(|l| l.name == "vol").unwrap();
        assert!(vol.active && vol.tags.is_empty());
    }

    #[test]
    fn parses_tags_and_attrs() {
        let json = r#"{"report":[{"lv":[{"lv_name":"x","vg_name":"g","lv_attr":"Vri---tz-k",
            "lv_size":"1","segtype":"thin","data_percent":"","metadata_percent":"",
            "thin_id":"","lv_active":"","lv_uuid":"","lv_tags":"cairn,cairn-v=web,cairn-t=12"}]}]}"#;
        let lv = &parse_lvs(json).unwrap()[0];
        assert!(lv.read_only());
        assert!(lv.has_tag("cairn"));
        assert_eq!(lv.tag_value("cairn-v"), Some("web"));
        assert_eq!(lv.tag_value("cairn-t"), Some("12"));
        assert_eq!(lv.tag_value("cairn"), None);
    }

    #[test]
    fn parses_captured_vgs_and_pvs() {
        let vgs = parse_vgs(include_str!("../../tests/fixtures/vgs.json")).unwrap();
        assert_eq!(
            vgs,
            vec![Vg {
                name: "cairnvg".into(),
                tags: vec![],
            }]
        );
        let vgs =
            parse_vgs(r#"{"report":[{"vg":[{"vg_name":"a","vg_tags":"cairn,cairn-pool=p"}]}]}"#)
                .unwrap();
        assert_eq!(vgs[0].tags, ["cairn", "cairn-pool=p"]);
        let pvs = parse_pvs(
            r#"{"report":[{"pv":[{"pv_name":"/dev/loop0","vg_name":"v"},{"pv_name":"/dev/vdb","vg_name":""}]}]}"#,
        )
        .unwrap();
        assert_eq!(pvs[0].name, "/dev/loop0");
        assert_eq!(pvs[0].vg, "v");
        assert_eq!(pvs[1].vg, "", "a PV in no VG");
        assert!(parse_vgs("").unwrap().is_empty());
        assert!(parse_lvs("{not json").is_err());
        assert!(
            parse_vgs(r#"{"report":[{"vg":[{"vg_tags":""}]}]}"#).is_err(),
            "no vg_name"
        );
    }

    #[test]
    fn parses_captured_thin_delta() {
        let ranges = |v: &[(u64, u64)]| -> Vec<BlockRange> {
            v.iter()
                .map(|&(begin, length)| BlockRange { begin, length })
                .collect()
        };
        let d = parse_thin_delta(include_str!("../../tests/fixtures/thin-delta.xml")).unwrap();
        assert_eq!(d.data_block_size, 128);
        assert_eq!(d.changed, ranges(&[(0, 1), (9, 1), (2304, 64), (8192, 2)]));
        assert!(d.discarded.is_empty());
        // Block 1 discarded, 2 overwritten, 10 new between the two snapshots.
        let d = parse_thin_delta(include_str!("../../tests/fixtures/thin-delta-send.xml")).unwrap();
        assert_eq!(d.changed, ranges(&[(2, 1), (10, 1)]));
        assert_eq!(d.discarded, ranges(&[(1, 1)]));
        let merged = parse_thin_delta(
            r#"<superblock data_block_size="8"><diff left="1" right="2">
            <right_only begin="0" length="2"/><different begin="2" length="3"/>
            <left_only begin="9" length="1"/><left_only begin="10" length="2"/></diff></superblock>"#,
        )
        .unwrap();
        assert_eq!(merged.changed, ranges(&[(0, 5)]));
        assert_eq!(merged.discarded, ranges(&[(9, 3)]));
        assert!(parse_thin_delta("<diff/>").is_err());
        assert!(parse_thin_delta(
            r#"<superblock data_block_size="8"><different begin="x" length="1"/>"#
        )
        .is_err());
    }

    #[test]
    fn parses_captured_thin_dump() {
        let xml = include_str!("../../tests/fixtures/thin-dump-dev.xml");
        let m = parse_thin_dump(xml, 3).unwrap();
        assert_eq!(m.data_block_size, 128);
        assert_eq!(
            m.mapped,
            [(0, 1), (2, 2), (10, 1)].map(|(begin, length)| BlockRange { begin, length })
        );
        assert!(parse_thin_dump(xml, 7).is_err(), "a device not in the dump");
        // Runs of blocks come as range_mapping; other devices are skipped.
        let m = parse_thin_dump(
            r#"<superblock data_block_size="128">
              <device dev_id="1"><range_mapping origin_begin="0" data_begin="0" length="9" time="0"/></device>
              <device dev_id="2"><range_mapping origin_begin="4" data_begin="7" length="3" time="0"/>
              <single_mapping origin_block="7" data_block="1" time="0"/>
              <single_mapping origin_block="20" data_block="2" time="0"/></device></superblock>"#,
            2,
        )
        .unwrap();
        assert_eq!(
            m.mapped,
            [(4, 4), (20, 1)].map(|(begin, length)| BlockRange { begin, length })
        );
        assert!(
            parse_thin_dump(r#"<superblock data_block_size="0"><device dev_id="1"/>"#, 1).is_err()
        );
    }
}
