//! Whether pinned maps have this build's layout. Pins of an earlier release
//! with other map types or sizes are not adopted: the agent starts fresh
//! instead (its flows are then re-picked by Maglev), never runs a program
//! against maps it does not understand.

use std::collections::HashMap;
use std::path::Path;

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
pub fn object_layouts(object: &[u8]) -> Result<HashMap<String, MapLayout>, String> {
    let obj = aya_obj::Object::parse(object).map_err(|e| format!("eBPF object: {e}"))?;
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

/// Why pinned map `name` (layout `pinned`) cannot be adopted by a build that
/// defines it as `wanted`, if it cannot.
pub fn mismatch(name: &str, wanted: Option<&MapLayout>, pinned: &MapLayout) -> Option<String> {
    match wanted {
        None => Some(format!("{name}: not a map of this build")),
        Some(w) if w != pinned => Some(format!("{name}: pinned {pinned}, this build wants {w}")),
        Some(_) => None,
    }
}

/// The layout of the map pinned at `pin`.
fn pinned_layout(pin: &Path) -> Result<MapLayout, String> {
    let info = aya::maps::MapInfo::from_pin(pin).map_err(|e| format!("{}: {e}", pin.display()))?;
    let map_type = info
        .map_type()
        .map(|t| t as u32)
        .map_err(|e| format!("{}: {e}", pin.display()))?;
    Ok(MapLayout {
        map_type,
        key_size: info.key_size(),
        value_size: info.value_size(),
        flags: info.map_flags(),
    })
}

/// Checks every map of `names` pinned in `dir` against the object's layouts.
/// `Err` says which map differs and how.
pub fn check_pins(dir: &Path, names: &[&str], object: &[u8]) -> Result<(), String> {
    let wanted = object_layouts(object)?;
    for name in names {
        let pin = dir.join(name);
        if !pin.exists() {
            return Err(format!("{name}: not pinned"));
        }
        if let Some(why) = mismatch(name, wanted.get(*name), &pinned_layout(&pin)?) {
            return Err(why);
        }
    }
    Ok(())
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

    #[test]
    fn a_pin_of_another_layout_is_named_with_both_layouts() {
        let now = MapLayout {
            map_type: 2,
            key_size: 4,
            value_size: 256,
            flags: lb_common::BPF_F_MMAPABLE,
        };
        assert_eq!(mismatch("CONNTRACK", Some(&now), &now), None);
        // The LRU hash of the previous release.
        let old = MapLayout {
            map_type: 9,
            key_size: 40,
            value_size: 8,
            flags: 0,
        };
        let why = mismatch("CONNTRACK", Some(&now), &old).unwrap();
        assert_eq!(
            why,
            "CONNTRACK: pinned type 9, key 40 B, value 8 B, flags 0x0, \
             this build wants type 2, key 4 B, value 256 B, flags 0x400"
        );
        assert!(
            mismatch("OLD_MAP", None, &old)
                .unwrap()
                .contains("not a map of this build")
        );
    }
}
