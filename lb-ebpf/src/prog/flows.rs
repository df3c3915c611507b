//! The connection table (`lb_common::flow_table`): a flow's pin, and recording
//! a pick within the insert budget. Lock-free: a slot torn by concurrent
//! writers fails its check and reads as empty.

use aya_ebpf::helpers::generated::{bpf_jiffies64, bpf_ktime_get_coarse_ns};
use lb_common::{
    BackendId, FLOW_WAYS, FlowBucket, FlowEntry, FlowHashKey, FlowKey, FlowPlace, FlowSlot,
    GlobalCounter, bucket_pair, flow_place, slot_for_pin,
};

use crate::maps::{CONNTRACK, FLOW_BUCKET_MASK, FLOW_INSERTS, FLOW_TABLE_CONFIG};
use crate::prog::counters::count;

/// The all-zero secret, used only if the config map cannot be read.
static NO_KEY: FlowHashKey = FlowHashKey {
    words: [0; 10],
    finish: [0; 2],
};

/// Where flow `key` lives in the connection table (keyed with the host's secret).
#[inline(always)]
pub fn place(key: &FlowKey) -> FlowPlace {
    let secret = match FLOW_TABLE_CONFIG.get_ptr(0) {
        // SAFETY: a map value pointer; the agent writes the secret before attaching.
        Some(c) => unsafe { &(*c).key },
        None => &NO_KEY,
    };
    flow_place(key, secret)
}

/// The indices of the two buckets of a flow of placement hash `hash`.
#[inline(always)]
fn bucket_indices(hash: u64) -> [u32; 2] {
    // SAFETY: a plain read of a loader-set constant.
    let mask = unsafe { core::ptr::read_volatile(&FLOW_BUCKET_MASK) };
    bucket_pair(hash, mask)
}

/// The two buckets of a flow of placement hash `hash` (an insert reads both).
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

/// The pin of the flow at `place` and its second-chance hint, marking the
/// flow seen now. The second bucket is only read when the first does not
/// hold the flow.
#[inline(always)]
pub fn lookup(place: &FlowPlace) -> Option<(FlowEntry, Option<BackendId>)> {
    let [a, b] = bucket_indices(place.hash);
    let mut bucket = CONNTRACK.get_ptr_mut(a)?;
    // SAFETY: a map value pointer; racy reads are validated by the tag check.
    let mut found = unsafe { &*bucket }.find_hinted(place.fingerprint);
    if found.is_none() {
        bucket = CONNTRACK.get_ptr_mut(b)?;
        // SAFETY: as above.
        found = unsafe { &*bucket }.find_hinted(place.fingerprint);
    }
    let (way, pin, hint) = found?;
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
    Some((pin, hint))
}

/// Pins the flow at `place` to `entry` with second-chance hint `hint` (its
/// own slot, else an empty one, else the least recently seen one of its two
/// buckets) when this CPU's insert budget allows; otherwise counts
/// `ConntrackInsertSkipped` and records nothing.
#[inline(always)]
pub fn record(place: &FlowPlace, entry: FlowEntry, hint: Option<BackendId>) {
    if !within_budget() {
        count(GlobalCounter::ConntrackInsertSkipped);
        return;
    }
    let Some(pair) = buckets(place.hash) else {
        return;
    };
    let t = now();
    // SAFETY: map value pointers.
    let (i, way) = slot_for_pin(unsafe { [&*pair[0], &*pair[1]] }, place.fingerprint, t);
    if i < 2 && way < FLOW_WAYS {
        let slot = FlowSlot::hinted(place.fingerprint, entry, hint, t);
        // SAFETY: in bounds.
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*pair[i]).slots[way]), slot) };
    }
}

/// Whether this CPU may insert one more flow this second (and counts it).
#[inline(always)]
fn within_budget() -> bool {
    let Some(config) = FLOW_TABLE_CONFIG.get_ptr(0) else {
        return true;
    };
    // SAFETY: a map value pointer.
    let budget = u64::from(unsafe { (*config).insert_budget });
    if budget == 0 {
        return true;
    }
    let Some(w) = FLOW_INSERTS.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: plain helper call.
    let window = unsafe { bpf_ktime_get_coarse_ns() } / 1_000_000_000;
    // SAFETY: this CPU's slot; XDP runs without preemption.
    unsafe {
        if (*w).window != window {
            (*w).window = window;
            (*w).inserts = 0;
        }
        if (*w).inserts >= budget {
            return false;
        }
        (*w).inserts += 1;
    }
    true
}
