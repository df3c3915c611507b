//! Userspace access to the connection table: sizing a datapath being loaded,
//! and reading or writing one flow's pin (tests, benchmarks, tools).

use core::borrow::{Borrow, BorrowMut};

use aya::maps::{Array, MapData, MapError};

use super::{FlowBucket, bucket_index, flow_buckets, flow_hash64};
use crate::{FlowEntry, FlowKey, GLOBAL_FLOW_BUCKET_MASK, MAP_CONNTRACK};

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

/// The bucket index of flow `key` in `table` (its length is a power of two).
fn index<T: Borrow<MapData>>(table: &Array<T, FlowBucket>, key: &FlowKey) -> u32 {
    bucket_index(flow_hash64(key), table.len().saturating_sub(1))
}

/// The pin of flow `key` in the connection table, if any.
pub fn conntrack_get<T: Borrow<MapData>>(
    table: &Array<T, FlowBucket>,
    key: &FlowKey,
) -> Result<Option<FlowEntry>, MapError> {
    let bucket = table.get(&index(table, key), 0)?;
    Ok(bucket.find(key, flow_hash64(key)).map(|(_, pin)| pin))
}

/// Pins flow `key` to `entry` in the connection table, as the datapath would
/// (its own slot, an empty one, or the least recently seen one), seen at
/// time 0 (the oldest there is).
pub fn conntrack_put<T: BorrowMut<MapData>>(
    table: &mut Array<T, FlowBucket>,
    key: &FlowKey,
    entry: FlowEntry,
) -> Result<(), MapError> {
    let i = index(table, key);
    let mut bucket = table.get(&i, 0)?;
    bucket.place(key, flow_hash64(key), entry, 0);
    table.set(i, bucket, 0)
}
