//! The connection table (`lb_common::flow_table`): a flow's pin, and recording
//! a pick. Lock-free: a slot torn by concurrent writers fails its check word
//! and reads as empty.

use aya_ebpf::helpers::generated::bpf_jiffies64;
use lb_common::{FLOW_WAYS, FlowBucket, FlowEntry, FlowKey, FlowSlot, bucket_index};

use crate::maps::{CONNTRACK, FLOW_BUCKET_MASK};

/// The bucket of a flow of hash `hash`.
#[inline(always)]
fn bucket(hash: u64) -> Option<*mut FlowBucket> {
    // SAFETY: a plain read of a loader-set constant.
    let mask = unsafe { core::ptr::read_volatile(&FLOW_BUCKET_MASK) };
    CONNTRACK.get_ptr_mut(bucket_index(hash, mask))
}

/// Now, in jiffies (low 32 bits; the verifier inlines the helper as a load).
#[inline(always)]
fn now() -> u32 {
    // SAFETY: plain helper call.
    unsafe { bpf_jiffies64() as u32 }
}

/// The pin of flow `key` (hash `hash`), marking the flow seen now.
#[inline(always)]
pub fn lookup(key: &FlowKey, hash: u64) -> Option<FlowEntry> {
    let b = bucket(hash)?;
    // SAFETY: a map value pointer; racy reads are validated by the check word.
    let (way, pin) = unsafe { &*b }.find(key, hash)?;
    if way < FLOW_WAYS {
        let t = now();
        // SAFETY: in bounds (way < FLOW_WAYS); a plain store of one word.
        unsafe {
            let seen = core::ptr::addr_of_mut!((*b).slots[way].seen);
            if *seen != t {
                *seen = t;
            }
        }
    }
    Some(pin)
}

/// Pins flow `key` (hash `hash`) to `entry`: its own slot, else an empty one,
/// else the bucket's least recently seen one.
#[inline(always)]
pub fn record(key: &FlowKey, hash: u64, entry: FlowEntry) {
    let Some(b) = bucket(hash) else {
        return;
    };
    let t = now();
    // SAFETY: a map value pointer.
    let way = unsafe { &*b }.victim(key, t);
    if way < FLOW_WAYS {
        let slot = FlowSlot::new(key, hash, entry, t);
        // SAFETY: in bounds (way < FLOW_WAYS).
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*b).slots[way]), slot) };
    }
}
