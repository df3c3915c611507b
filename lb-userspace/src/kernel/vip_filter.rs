//! The VIP filter bitmap ([`lb_common::MAP_VIP_FILTER`]): one array entry
//! holding every word, which the datapath reads at a fixed address.
//!
//! Words are changed by writing the whole value back with them changed (a
//! plan's run of word writes at once): the kernel copies the value while
//! packets read it, so a word being written may read as a mix of its old and
//! new bytes. Every write the agent
//! makes only adds bits or only removes them (a plan sets the union of the
//! old and new bits first and clears the old ones last; a repair does the
//! same), so a mixed word holds every bit the old and new words share: a
//! packet never misses a bit that both the config before and the config
//! after need. Words the write does not change are copied with their own
//! bytes.

use aya::maps::{Array, Map, MapData};
use lb_common::{VIP_FILTER_WORDS, VipFilterBits};

use super::error::KernelError;

/// The filter as an array of one entry.
fn filter(map: &mut Map) -> Result<Array<&mut MapData, VipFilterBits>, KernelError> {
    Ok(Array::try_from(map)?)
}

/// Word `word` of the filter in `map`.
pub fn read_word(map: &mut Map, word: u32) -> Result<u64, KernelError> {
    let bits = filter(map)?.get(&0, 0)?;
    bits.get(word as usize)
        .copied()
        .ok_or(KernelError::FilterWord { word })
}

/// Sets word `word` of the filter in `map` to `bits` (see the module doc).
pub fn write_word(map: &mut Map, word: u32, bits: u64) -> Result<(), KernelError> {
    write_words(map, [(word, bits)])
}

/// Sets each (word, bits) of `words` in the filter in `map`, with one write
/// of the whole filter (see the module doc: each word must only gain or only
/// lose bits, as every op of a plan does).
pub fn write_words(
    map: &mut Map,
    words: impl IntoIterator<Item = (u32, u64)>,
) -> Result<(), KernelError> {
    let mut f = filter(map)?;
    let mut all = f.get(&0, 0)?;
    for (word, bits) in words {
        *all.get_mut(word as usize)
            .ok_or(KernelError::FilterWord { word })? = bits;
    }
    f.set(0, all, 0)?;
    Ok(())
}

/// Writes the whole filter in `map`: `words` (word index -> bits), every
/// other word 0. For a fresh program's filter, before it is attached.
pub fn write_all(
    map: &mut Map,
    words: &std::collections::BTreeMap<u32, u64>,
) -> Result<(), KernelError> {
    let mut all: VipFilterBits = [0; VIP_FILTER_WORDS as usize];
    for (&word, &bits) in words {
        *all.get_mut(word as usize)
            .ok_or(KernelError::FilterWord { word })? = bits;
    }
    filter(map)?.set(0, all, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_is_the_datapaths_section() {
        let layouts = crate::kernel::layout::object_layouts(crate::object::EBPF_OBJECT).unwrap();
        let f = layouts[lb_common::MAP_VIP_FILTER];
        assert_eq!(f.map_type, 2, "BPF_MAP_TYPE_ARRAY");
        assert_eq!(f.value_size as usize, size_of::<lb_common::VipFilterBits>());
    }
}
