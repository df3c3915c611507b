//! The VIP filter bitmap ([`lb_common::MAP_VIP_FILTER`]): one array entry
//! holding every word, which the datapath reads at a fixed address.
//!
//! Words are changed by writing the whole value back with them changed (a
//! plan's run of word writes at once): the kernel copies the value while
//! packets read it, so a word being written may read as a mix of its old and
//! new bytes. Every write the agent makes only adds bits or only removes them
//! (a plan sets the union of the old and new bits first and clears the old
//! ones last; a repair does the same), so a mixed word holds every bit the
//! old and new words share: a packet never misses a bit that both the config
//! before and the config after need. Words the write does not change are
//! copied with their own bytes.

use aya::Ebpf;
use lb_common::{MAP_VIP_FILTER, VIP_FILTER_WORDS, VipFilterBits};

use super::error::KernelError;
use super::one_entry;

/// Each word of `words` in the filter of `ebpf`, as (word, bits), with one
/// read of the whole filter.
pub fn read_words(
    ebpf: &mut Ebpf,
    words: impl IntoIterator<Item = u32>,
) -> Result<Vec<(u32, u64)>, KernelError> {
    let all: VipFilterBits = one_entry(ebpf, MAP_VIP_FILTER)?.get(&0, 0)?;
    words
        .into_iter()
        .map(|word| {
            all.get(word as usize)
                .map(|&bits| (word, bits))
                .ok_or(KernelError::FilterWord { word })
        })
        .collect()
}

/// Sets each (word, bits) of `words` in the filter of `ebpf`, with one write
/// of the whole filter (see the module doc: each word must only gain or only
/// lose bits, as every op of a plan does).
pub fn write_words(
    ebpf: &mut Ebpf,
    words: impl IntoIterator<Item = (u32, u64)>,
) -> Result<(), KernelError> {
    let mut f = one_entry(ebpf, MAP_VIP_FILTER)?;
    let mut all = f.get(&0, 0)?;
    set(&mut all, words)?;
    f.set(0, all, 0)?;
    Ok(())
}

/// Writes the whole filter of `ebpf`: `words` (word index -> bits), every
/// other word 0. For a fresh program's filter, before it is attached.
pub fn write_all(
    ebpf: &mut Ebpf,
    words: &std::collections::BTreeMap<u32, u64>,
) -> Result<(), KernelError> {
    let mut all: VipFilterBits = [0; VIP_FILTER_WORDS as usize];
    set(&mut all, words.iter().map(|(&w, &b)| (w, b)))?;
    one_entry::<VipFilterBits>(ebpf, MAP_VIP_FILTER)?.set(0, all, 0)?;
    Ok(())
}

/// Sets each (word, bits) of `words` in `all`.
fn set(
    all: &mut VipFilterBits,
    words: impl IntoIterator<Item = (u32, u64)>,
) -> Result<(), KernelError> {
    for (word, bits) in words {
        *all.get_mut(word as usize)
            .ok_or(KernelError::FilterWord { word })? = bits;
    }
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
