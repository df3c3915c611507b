//! Map layouts as read: the object's (what this build defines) and the
//! pins' (what the kernel holds). [`super::adopt`] compares them.

use std::collections::HashMap;
use std::path::Path;

use super::adopt::{Incompatible, bucket_count};

/// What must match between a map of the object and its pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLayout {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// `BPF_F_*` creation flags.
    pub flags: u32,
}

impl std::fmt::Display for MapLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "type {}, key {} B, value {} B, flags {:#x}",
            self.map_type, self.key_size, self.value_size, self.flags
        )
    }
}

/// The layout of every map defined in the eBPF object `object`, by name.
pub fn object_layouts(object: &[u8]) -> Result<HashMap<String, MapLayout>, Incompatible> {
    let obj = aya_obj::Object::parse(object).map_err(Incompatible::Object)?;
    Ok(obj
        .maps
        .iter()
        .map(|(name, m)| {
            let layout = MapLayout {
                map_type: m.map_type(),
                key_size: m.key_size(),
                value_size: m.value_size(),
                flags: m.map_flags(),
            };
            (name.clone(), layout)
        })
        .collect())
}

/// The layouts of the maps of `names` pinned in `dir` (a map not pinned is
/// left out).
pub fn pinned_layouts(
    dir: &Path,
    names: &[&str],
) -> Result<HashMap<String, MapLayout>, Incompatible> {
    let mut layouts = HashMap::new();
    for name in names {
        let pin = dir.join(name);
        if !pin.exists() {
            continue;
        }
        let unreadable = |source| Incompatible::Unreadable {
            map: (*name).into(),
            source,
        };
        let info = aya::maps::MapInfo::from_pin(&pin).map_err(unreadable)?;
        let map_type = info.map_type().map_err(unreadable)? as u32;
        let layout = MapLayout {
            map_type,
            key_size: info.key_size(),
            value_size: info.value_size(),
            flags: info.map_flags(),
        };
        layouts.insert((*name).to_string(), layout);
    }
    Ok(layouts)
}

/// The bucket count of the connection table pinned in `dir`.
pub fn pinned_conntrack_buckets(dir: &Path) -> Result<u32, Incompatible> {
    let map = lb_common::MAP_CONNTRACK;
    let info =
        aya::maps::MapInfo::from_pin(dir.join(map)).map_err(|source| Incompatible::Unreadable {
            map: map.into(),
            source,
        })?;
    bucket_count(info.max_entries())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_object_defines_every_pinned_map() {
        let layouts = object_layouts(crate::object::EBPF_OBJECT).unwrap();
        for name in super::super::MAP_NAMES {
            assert!(layouts.contains_key(name), "{name} missing");
        }
        let ct = layouts[lb_common::MAP_CONNTRACK];
        assert_eq!(ct.value_size as usize, size_of::<lb_common::FlowBucket>());
        assert_eq!(ct.flags, lb_common::BPF_F_MMAPABLE);
    }
}
