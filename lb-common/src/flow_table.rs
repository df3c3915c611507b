//! The connection table's layout: a set-associative flow table.
//!
//! [`crate::MAP_CONNTRACK`] is an array of [`FlowBucket`]s, a power of two of
//! them. A flow lives in one of the two buckets [`bucket_pair`] of its
//! [`crate::flow_hash64`], in one of [`FLOW_WAYS`] slots each. A lookup reads the
//! first bucket (four cache lines), then the second if needed, and compares
//! keys; an insert overwrites the flow's own slot, else an empty one, else the
//! least recently seen of the eight: LRU replacement within each pair of
//! buckets, as a CPU cache does within a set. `seen` is in jiffies: flows seen
//! within the same tick are equally recent. Nothing is locked: a slot carries a check word
//! computed over its key hash and value, so a slot torn by two CPUs writing it
//! at once reads as empty (the flow re-picks, as after an eviction).

use crate::{BackendId, FlowEntry, flow::FlowKey};

/// Slots per bucket.
pub const FLOW_WAYS: usize = 4;

/// One connection-table slot: a flow and the backend it is pinned to.
/// 64 bytes, one cache line. An all-zero slot is empty.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlot {
    /// The flow.
    pub key: FlowKey,
    /// The backend the flow is pinned to.
    pub backend_id: BackendId,
    /// The backend's generation when the flow was pinned.
    pub generation: u32,
    /// When the flow was last seen, in jiffies (low 32 bits).
    pub seen: u32,
    /// [`slot_check`] of the key's hash and the value; 0 = empty slot.
    pub check: u32,
    /// Zero.
    pub pad: [u32; 2],
}

/// One bucket of [`FLOW_WAYS`] slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowBucket {
    /// The slots.
    pub slots: [FlowSlot; FLOW_WAYS],
}

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc4ce_b9fe_1a85_ec53;

/// Most buckets a connection table may have (2^26: 268M flows, 16 GiB).
pub const MAX_FLOW_BUCKETS: u32 = 1 << 26;

/// Buckets of a connection table for `entries` flows: `entries / FLOW_WAYS`
/// rounded up to a power of two (at least 1, at most [`MAX_FLOW_BUCKETS`]).
pub const fn flow_buckets(entries: u32) -> u32 {
    let b = entries.div_ceil(FLOW_WAYS as u32);
    if b <= 1 {
        1
    } else if b >= MAX_FLOW_BUCKETS {
        MAX_FLOW_BUCKETS
    } else {
        b.next_power_of_two()
    }
}

/// The two buckets a flow of hash `hash` may live in, in a table of
/// `mask + 1` buckets (from the low and the high half of the hash; they may
/// coincide). Two choices keep buckets evenly filled: with one, buckets that
/// draw more than four active flows thrash long before the table is full.
#[inline(always)]
pub fn bucket_pair(hash: u64, mask: u32) -> [u32; 2] {
    [(hash as u32) & mask, ((hash >> 32) as u32) & mask]
}

/// The check word of a slot holding a flow of hash `hash` pinned to
/// (`backend_id`, `generation`); never 0.
#[inline(always)]
pub fn slot_check(hash: u64, backend_id: BackendId, generation: u32) -> u32 {
    let v = (u64::from(backend_id) << 32) | u64::from(generation);
    let x = (hash ^ v.wrapping_mul(K2)).wrapping_mul(K0);
    ((x >> 32) as u32) | 1
}

/// Whether two flow keys are the same flow (one branch: the five words are
/// compared with XOR and OR; `pad` is always zero).
#[inline(always)]
pub fn same_flow(a: &FlowKey, b: &FlowKey) -> bool {
    let (a, b) = (a.words(), b.words());
    ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0
}

impl FlowSlot {
    /// A slot pinning flow `key` (hash `hash`) to `entry`, seen at `now`.
    #[inline(always)]
    pub fn new(key: &FlowKey, hash: u64, entry: FlowEntry, now: u32) -> Self {
        Self {
            key: *key,
            backend_id: entry.backend_id,
            generation: entry.generation,
            seen: now,
            check: slot_check(hash, entry.backend_id, entry.generation),
            pad: [0; 2],
        }
    }

    /// The slot's pin when it holds `key` (hash `hash`) and is intact.
    #[inline(always)]
    pub fn pin_of(&self, key: &FlowKey, hash: u64) -> Option<FlowEntry> {
        if !same_flow(&self.key, key) {
            return None;
        }
        let (backend_id, generation) = (self.backend_id, self.generation);
        if self.check != slot_check(hash, backend_id, generation) {
            return None;
        }
        Some(FlowEntry {
            backend_id,
            generation,
        })
    }
}

impl FlowBucket {
    /// The way holding flow `key` (hash `hash`) and its pin.
    #[inline(always)]
    pub fn find(&self, key: &FlowKey, hash: u64) -> Option<(usize, FlowEntry)> {
        for way in 0..FLOW_WAYS {
            if same_flow(&self.slots[way].key, key) {
                return self.slots[way].pin_of(key, hash).map(|e| (way, e));
            }
        }
        None
    }
}

/// Where flow `key` (hash `hash`) is pinned among its two buckets
/// ([`bucket_pair`]): (bucket 0 or 1, way, pin).
#[inline(always)]
pub fn find_pin(
    pair: [&FlowBucket; 2],
    key: &FlowKey,
    hash: u64,
) -> Option<(usize, usize, FlowEntry)> {
    if let Some((way, pin)) = pair[0].find(key, hash) {
        return Some((0, way, pin));
    }
    pair[1].find(key, hash).map(|(way, pin)| (1, way, pin))
}

/// The slot (bucket 0 or 1 of the pair, way) a new pin of flow `key` goes to
/// at time `now`: the flow's own slot in either bucket, else the first empty
/// one (bucket 0 first), else the least recently seen of the eight.
#[inline(always)]
pub fn slot_for_pin(pair: [&FlowBucket; 2], key: &FlowKey, now: u32) -> (usize, usize) {
    let mut victim = (0, 0);
    let mut oldest = 0;
    for (i, bucket) in pair.iter().enumerate() {
        for way in 0..FLOW_WAYS {
            let s = &bucket.slots[way];
            if same_flow(&s.key, key) {
                return (i, way);
            }
            let age = if s.check == 0 {
                u32::MAX
            } else {
                now.wrapping_sub(s.seen)
            };
            if (i == 0 && way == 0) || age > oldest {
                oldest = age;
                victim = (i, way);
            }
        }
    }
    victim
}

#[cfg(test)]
mod tests;
#[cfg(feature = "user")]
pub mod user;
