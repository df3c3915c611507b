//! Userspace access to the connection table: sizing a datapath being loaded,
//! its secret, and reading or writing one flow's pin (tests, benchmarks,
//! tools).

use core::borrow::{Borrow, BorrowMut};

use aya::maps::{Array, MapData, MapError};

use super::{
    FlowBucket, FlowHashKey, FlowSlot, bucket_pair, find_pin, flow_buckets, flow_place,
    slot_for_pin,
};
use crate::{FlowEntry, FlowKey, FlowTableConfig, GLOBAL_FLOW_BUCKET_MASK, MAP_CONNTRACK};

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

/// A fresh secret from the kernel's random source (`getrandom(2)`).
pub fn random_flow_key() -> std::io::Result<FlowHashKey> {
    let mut bytes = [0u8; 64];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: writes at most rest.len() bytes into rest.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(FlowHashKey::from_random(&bytes))
}

/// The table configuration (secret, insert budget) in `config`.
pub fn flow_table_config<T: Borrow<MapData>>(
    config: &Array<T, FlowTableConfig>,
) -> Result<FlowTableConfig, MapError> {
    config.get(&0, 0)
}

/// Writes the table configuration.
pub fn set_flow_table_config<T: BorrowMut<MapData>>(
    config: &mut Array<T, FlowTableConfig>,
    value: FlowTableConfig,
) -> Result<(), MapError> {
    config.set(0, value, 0)
}

/// Flow `key`'s two bucket indices in `table` (secret `secret`) and their contents.
fn read_pair<T: Borrow<MapData>>(
    table: &Array<T, FlowBucket>,
    secret: &FlowHashKey,
    key: &FlowKey,
) -> Result<([u32; 2], [FlowBucket; 2]), MapError> {
    let idx = bucket_pair(flow_place(key, secret).hash, table.len().saturating_sub(1));
    Ok((idx, [table.get(&idx[0], 0)?, table.get(&idx[1], 0)?]))
}

/// The pin of flow `key` in the connection table placed with `secret`, if any.
pub fn conntrack_get<T: Borrow<MapData>>(
    table: &Array<T, FlowBucket>,
    secret: &FlowHashKey,
    key: &FlowKey,
) -> Result<Option<FlowEntry>, MapError> {
    let (_, [a, b]) = read_pair(table, secret, key)?;
    let fingerprint = flow_place(key, secret).fingerprint;
    Ok(find_pin([&a, &b], fingerprint).map(|(_, _, pin)| pin))
}

/// Pins flow `key` to `entry` in the connection table placed with `secret`,
/// choosing the slot as the datapath does, seen at time 0 (the oldest there
/// is).
pub fn conntrack_put<T: BorrowMut<MapData>>(
    table: &mut Array<T, FlowBucket>,
    secret: &FlowHashKey,
    key: &FlowKey,
    entry: FlowEntry,
) -> Result<(), MapError> {
    let (idx, mut pair) = read_pair(table, secret, key)?;
    let fingerprint = flow_place(key, secret).fingerprint;
    let (i, way) = slot_for_pin([&pair[0], &pair[1]], fingerprint, 0);
    pair[i].slots[way] = FlowSlot::new(fingerprint, entry, 0);
    table.set(idx[i], pair[i], 0)
}
