//! Whether a restarted agent adopts the pins it finds: the pure decision,
//! on facts the opener reads (state file, pinned link, interface, the pinned
//! maps' layouts). Adopting keeps every flow and counter; not adopting
//! detaches and removes the leftovers and starts empty, which is always
//! safe. Pins of an earlier release with other map types or sizes are never
//! adopted: no program runs against maps it does not understand.

use std::collections::HashMap;

use super::layout::MapLayout;

/// What the opener knows about an interface's pins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinFacts {
    /// `--fresh` was given.
    pub fresh: bool,
    /// The interface the state file was written for, when there is one.
    pub state_ifindex: Option<u32>,
    /// The interface the pinned link is attached to (0: detached), when
    /// there is a pinned link.
    pub link_ifindex: Option<u32>,
    /// The interface's ifindex now.
    pub ifindex: u32,
}

/// Why the pins are not adopted.
#[derive(Debug, thiserror::Error)]
pub enum NotAdopted {
    /// `--fresh` asked for an empty start.
    #[error("--fresh")]
    Fresh,
    /// No state file describes the maps.
    #[error("no state file")]
    NoState,
    /// No XDP link is pinned.
    #[error("no pinned link")]
    NoLink,
    /// State, link and interface disagree (the interface was re-created).
    #[error("state for ifindex {state}, link on ifindex {link}, interface now ifindex {now}")]
    Moved {
        /// The state file's interface.
        state: u32,
        /// The pinned link's interface.
        link: u32,
        /// The interface now.
        now: u32,
    },
    /// The pinned maps are not this build's.
    #[error("pinned maps of another layout ({0})")]
    Incompatible(#[source] Incompatible),
}

/// Why pinned maps cannot be used by this build.
#[derive(Debug, thiserror::Error)]
pub enum Incompatible {
    /// A map of this build is not pinned.
    #[error("{map}: not pinned")]
    NotPinned {
        /// The map.
        map: String,
    },
    /// A pinned map is not a map of this build.
    #[error("{map}: not a map of this build")]
    NotInBuild {
        /// The map.
        map: String,
    },
    /// A pinned map has another type, key or value size, or flags.
    #[error("{map}: pinned {pinned}, this build wants {wanted}")]
    Layout {
        /// The map.
        map: String,
        /// Its pinned layout.
        pinned: MapLayout,
        /// This build's.
        wanted: MapLayout,
    },
    /// A pinned connection table whose bucket count is not a power of two
    /// (the datapath masks the hash).
    #[error("{map}: {buckets} buckets, not a power of two", map = lb_common::MAP_CONNTRACK)]
    Buckets {
        /// The pinned table's entries.
        buckets: u32,
    },
    /// The pinned map could not be inspected.
    #[error("{map}: reading its pinned layout: {source}")]
    Unreadable {
        /// The map.
        map: String,
        /// The error.
        source: aya::maps::MapError,
    },
    /// The embedded object could not be parsed (a build problem).
    #[error("parsing the embedded eBPF object: {0}")]
    Object(#[source] aya_obj::ParseError),
}

/// First step: whether state file, pinned link and interface agree (then
/// the pins' layouts are checked with [`compatible`]).
pub fn may_adopt(facts: &PinFacts) -> Result<(), NotAdopted> {
    if facts.fresh {
        return Err(NotAdopted::Fresh);
    }
    match (facts.state_ifindex, facts.link_ifindex) {
        (None, _) => Err(NotAdopted::NoState),
        (_, None) => Err(NotAdopted::NoLink),
        (Some(state), Some(link)) if state == facts.ifindex && link == facts.ifindex => Ok(()),
        (Some(state), Some(link)) => Err(NotAdopted::Moved {
            state,
            link,
            now: facts.ifindex,
        }),
    }
}

/// Why pinned map `name` (layout `pinned`) cannot be adopted by a build that
/// defines it as `wanted`, if it cannot.
pub fn mismatch(
    name: &str,
    wanted: Option<&MapLayout>,
    pinned: &MapLayout,
) -> Option<Incompatible> {
    match wanted {
        None => Some(Incompatible::NotInBuild { map: name.into() }),
        Some(w) if w != pinned => Some(Incompatible::Layout {
            map: name.into(),
            pinned: *pinned,
            wanted: *w,
        }),
        Some(_) => None,
    }
}

/// Second step: every map of `names` must be pinned (`pinned`) with the
/// layout this build gives it (`wanted`).
pub fn compatible(
    names: &[&str],
    wanted: &HashMap<String, MapLayout>,
    pinned: &HashMap<String, MapLayout>,
) -> Result<(), Incompatible> {
    for name in names {
        let Some(layout) = pinned.get(*name) else {
            return Err(Incompatible::NotPinned {
                map: (*name).into(),
            });
        };
        if let Some(why) = mismatch(name, wanted.get(*name), layout) {
            return Err(why);
        }
    }
    Ok(())
}

/// The bucket count of a pinned connection table of `entries` entries
/// (must be a power of two).
pub fn bucket_count(entries: u32) -> Result<u32, Incompatible> {
    if entries.is_power_of_two() {
        Ok(entries)
    } else {
        Err(Incompatible::Buckets { buckets: entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: Option<u32>, link: Option<u32>) -> PinFacts {
        PinFacts {
            fresh: false,
            state_ifindex: state,
            link_ifindex: link,
            ifindex: 7,
        }
    }

    #[test]
    fn pins_are_adopted_only_when_state_link_and_interface_agree() {
        assert!(may_adopt(&facts(Some(7), Some(7))).is_ok());
        let fresh = PinFacts {
            fresh: true,
            ..facts(Some(7), Some(7))
        };
        assert_eq!(may_adopt(&fresh).unwrap_err().to_string(), "--fresh");
        let why = |f| may_adopt(&f).unwrap_err().to_string();
        assert_eq!(why(facts(None, Some(7))), "no state file");
        assert_eq!(why(facts(Some(7), None)), "no pinned link");
        assert_eq!(
            why(facts(Some(7), Some(0))),
            "state for ifindex 7, link on ifindex 0, interface now ifindex 7"
        );
        assert_eq!(
            why(facts(Some(3), Some(3))),
            "state for ifindex 3, link on ifindex 3, interface now ifindex 7"
        );
    }

    #[test]
    fn only_a_power_of_two_of_buckets_is_adopted() {
        assert_eq!(bucket_count(1024).unwrap(), 1024);
        let e = bucket_count(1000).unwrap_err().to_string();
        assert_eq!(e, "CONNTRACK: 1000 buckets, not a power of two");
    }

    const NOW: MapLayout = MapLayout {
        map_type: 2,
        key_size: 4,
        value_size: 256,
        flags: lb_common::BPF_F_MMAPABLE,
    };
    // The LRU hash of the previous release.
    const OLD: MapLayout = MapLayout {
        map_type: 9,
        key_size: 40,
        value_size: 8,
        flags: 0,
    };

    #[test]
    fn a_pin_of_another_layout_is_named_with_both_layouts() {
        assert!(mismatch("CONNTRACK", Some(&NOW), &NOW).is_none());
        let why = mismatch("CONNTRACK", Some(&NOW), &OLD).unwrap();
        assert_eq!(
            why.to_string(),
            "CONNTRACK: pinned type 9, key 40 B, value 8 B, flags 0x0, \
             this build wants type 2, key 4 B, value 256 B, flags 0x400"
        );
        assert_eq!(
            mismatch("OLD_MAP", None, &OLD).unwrap().to_string(),
            "OLD_MAP: not a map of this build"
        );
    }

    #[test]
    fn every_map_must_be_pinned_with_this_builds_layout() {
        let wanted: HashMap<String, MapLayout> = [("CONNTRACK".to_string(), NOW)].into();
        let names = ["CONNTRACK"];
        assert!(compatible(&names, &wanted, &wanted).is_ok());
        let none = HashMap::new();
        let e = compatible(&names, &wanted, &none).unwrap_err();
        assert_eq!(e.to_string(), "CONNTRACK: not pinned");
        let old: HashMap<String, MapLayout> = [("CONNTRACK".to_string(), OLD)].into();
        let e = NotAdopted::Incompatible(compatible(&names, &wanted, &old).unwrap_err());
        assert!(
            e.to_string()
                .starts_with("pinned maps of another layout (CONNTRACK: pinned type 9"),
            "{e}"
        );
    }
}
