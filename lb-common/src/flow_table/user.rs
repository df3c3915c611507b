//! Userspace access to the connection table: sizing a datapath being loaded,
//! and reading or writing one flow's pin (tests, benchmarks, tools).

use core::borrow::{Borrow, BorrowMut};

use aya::maps::{Array, MapData, MapError};

use super::{FlowBucket, FlowSlot, bucket_pair, find_pin, flow_buckets, slot_for_pin};
use crate::{FlowEntry, FlowKey, GLOBAL_FLOW_BUCKET_MASK, MAP_CONNTRACK, flow_hash64};

/// The connection-table bucket mask for `entries` flows: pass it to
/// [`size_conntrack`] (the loader borrows it until it loads).
pub const fn conntrack_mask(entries: u32) -> u32 {
    flow_buckets(entries) - 1
}

/// Sizes the connection table of a datapath about to be loaded: `mask + 1`
/// buckets (from [`conntrack_mask`]), and the program's bucket mask to match.
pub fn size_conntrack<'a>(loader: &mut aya::EbpfLoader<'a>, mask: &'a u32) {
    loader.map_max_entries(MAP_CONNTRACK, *mask + 1);
    loader.override_global(GLOBAL_FLOW_BUCKET_MASK, mask, true);
}

/// Flow `key`'s two bucket indices in `table` and their contents.
fn read_pair<T: Borrow<MapData>>(
    table: &Array<T, FlowBucket>,
    key: &FlowKey,
) -> Result<([u32; 2], [FlowBucket; 2]), MapError> {
    let idx = bucket_pair(flow_hash64(key), table.len().saturating_sub(1));
    Ok((idx, [table.get(&idx[0], 0)?, table.get(&idx[1], 0)?]))
}

/// The pin of flow `key` in the connection table, if any.
pub fn conntrack_get<T: Borrow<MapData>>(
    table: &Array<T, FlowBucket>,
    key: &FlowKey,
) -> Result<Option<FlowEntry>, MapError> {
    let (_, [a, b]) = read_pair(table, key)?;
    Ok(find_pin([&a, &b], key, flow_hash64(key)).map(|(_, _, pin)| pin))
}

/// Pins flow `key` to `entry` in the connection table, choosing the slot as
/// the datapath does, seen at time 0 (the oldest there is).
pub fn conntrack_put<T: BorrowMut<MapData>>(
    table: &mut Array<T, FlowBucket>,
    key: &FlowKey,
    entry: FlowEntry,
) -> Result<(), MapError> {
    let (idx, mut pair) = read_pair(table, key)?;
    let (i, way) = slot_for_pin([&pair[0], &pair[1]], key, 0);
    pair[i].slots[way] = FlowSlot::new(key, flow_hash64(key), entry, 0);
    table.set(idx[i], pair[i], 0)
}
