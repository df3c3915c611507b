//! The connection table (`lb_common::flow_table`): a flow's pin, and recording
//! a pick. Lock-free: a slot torn by concurrent writers fails its check word
//! and reads as empty.

use aya_ebpf::helpers::generated::bpf_jiffies64;
use lb_common::{FLOW_WAYS, FlowBucket, FlowEntry, FlowKey, FlowSlot, bucket_pair, slot_for_pin};

use crate::maps::{CONNTRACK, FLOW_BUCKET_MASK};

/// The indices of the two buckets of a flow of hash `hash`.
#[inline(always)]
fn bucket_indices(hash: u64) -> [u32; 2] {
    // SAFETY: a plain read of a loader-set constant.
    let mask = unsafe { core::ptr::read_volatile(&FLOW_BUCKET_MASK) };
    bucket_pair(hash, mask)
}

/// The two buckets of a flow of hash `hash` (for an insert, which reads both).
#[inline(always)]
fn buckets(hash: u64) -> Option<[*mut FlowBucket; 2]> {
    let [a, b] = bucket_indices(hash);
    Some([CONNTRACK.get_ptr_mut(a)?, CONNTRACK.get_ptr_mut(b)?])
}

/// Now, in jiffies (low 32 bits; the verifier inlines the helper as a load).
#[inline(always)]
fn now() -> u32 {
    // SAFETY: plain helper call.
    unsafe { bpf_jiffies64() as u32 }
}

/// The pin of flow `key` (hash `hash`), marking the flow seen now. The
/// second bucket is only read when the first does not hold the flow.
#[inline(always)]
pub fn lookup(key: &FlowKey, hash: u64) -> Option<FlowEntry> {
    let [a, b] = bucket_indices(hash);
    let mut bucket = CONNTRACK.get_ptr_mut(a)?;
    // SAFETY: a map value pointer; racy reads are validated by the check word.
    let mut found = unsafe { &*bucket }.find(key, hash);
    if found.is_none() {
        bucket = CONNTRACK.get_ptr_mut(b)?;
        // SAFETY: as above.
        found = unsafe { &*bucket }.find(key, hash);
    }
    let (way, pin) = found?;
    if way < FLOW_WAYS {
        let t = now();
        // SAFETY: in bounds; a plain store of one word.
        unsafe {
            let seen = core::ptr::addr_of_mut!((*bucket).slots[way].seen);
            if *seen != t {
                *seen = t;
            }
        }
    }
    Some(pin)
}

/// Pins flow `key` (hash `hash`) to `entry`: its own slot, else an empty one,
/// else the least recently seen one of its two buckets.
#[inline(always)]
pub fn record(key: &FlowKey, hash: u64, entry: FlowEntry) {
    let Some(pair) = buckets(hash) else {
        return;
    };
    let t = now();
    // SAFETY: map value pointers.
    let (i, way) = slot_for_pin(unsafe { [&*pair[0], &*pair[1]] }, key, t);
    if i < 2 && way < FLOW_WAYS {
        let slot = FlowSlot::new(key, hash, entry, t);
        // SAFETY: in bounds.
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*pair[i]).slots[way]), slot) };
    }
}
