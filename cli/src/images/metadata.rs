//! An image's metadata: what LXD's `metadata.yaml` says (architecture, creation date,
//! properties such as `os`, `release`, `description`).
//!
//! `metadata.yaml` is read with a deliberately small parser: top-level `key: value`
//! scalars and the one-level `properties:` map, which is all LXD images carry that we
//! show. Anything else (templates, nested maps) is kept only in `raw`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `image show` prints and the database keeps (as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMetadata {
    pub architecture: Option<String>,
    /// Unix seconds, as in `metadata.yaml`.
    pub creation_date: Option<i64>,
    pub properties: BTreeMap<String, String>,
    /// The file the image was imported from.
    pub source_file: String,
}

impl ImageMetadata {
    pub fn description(&self) -> &str {
        self.properties
            .get("description")
            .map(String::as_str)
            .unwrap_or("")
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Parses the parts of `metadata.yaml` we use; unknown keys are ignored.
pub fn parse_metadata_yaml(text: &str) -> ImageMetadata {
    let mut md = ImageMetadata::default();
    let mut in_properties = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if !indented {
            in_properties = key == "properties" && value.is_empty();
            match key {
                "architecture" => md.architecture = Some(unquote(value)),
                "creation_date" => md.creation_date = unquote(value).parse().ok(),
                _ => {}
            }
        } else if in_properties && !value.is_empty() {
            md.properties.insert(key.to_string(), unquote(value));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lxd_metadata() {
        let text = "architecture: x86_64\ncreation_date: 1795420800\nproperties:\n  architecture: amd64\n  description: Debian bookworm (12) minbase amd64, built with debootstrap\n  os: debian\n  release: bookworm\n  serial: \"20261123\"\ntemplates: {}\n";
        let md = parse_metadata_yaml(text);
        assert_eq!(md.architecture.as_deref(), Some("x86_64"));
        assert_eq!(md.creation_date, Some(1795420800));
        assert_eq!(md.properties["os"], "debian");
        assert_eq!(md.properties["serial"], "20261123");
        assert_eq!(
            md.description(),
            "Debian bookworm (12) minbase amd64, built with debootstrap"
        );
        assert!(!md.properties.contains_key("templates"));
    }

    #[test]
    fn nested_maps_after_properties_are_not_properties() {
        let md = parse_metadata_yaml(
            "properties:\n  os: x\ntemplates:\n  /etc/hosts:\n    when: create\n",
        );
        assert_eq!(md.properties.len(), 1);
    }
}
