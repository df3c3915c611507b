//! The connection table (`lb_common::flow_table`): a flow's pin, and recording
//! a pick within the insert budget. Lock-free: a slot torn by concurrent
//! writers fails its check and reads as empty.
//!
//! Other CPUs write the buckets at any time, so they are never borrowed as
//! Rust references: every slot is read with a volatile read into a local
//! copy ([`read_slot`]) and written with a volatile write.

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::helpers::generated::{bpf_jiffies64, bpf_ktime_get_coarse_ns};
use lb_common::{
    BackendId, FLOW_WAYS, FlowBucket, FlowEntry, FlowKey, FlowPlace, FlowSlot, GlobalCounter,
    bucket_pair, flow_place, seen_is_stale, slot_for_pin,
};

use crate::maps::{CONNTRACK, FLOW_BUCKET_MASK, FLOW_INSERTS, LIVE_FLOW_TABLE_CONFIG};
use crate::prog::counters::count;

/// Where flow `key` lives in the connection table (keyed with the host's secret).
#[inline(always)]
pub fn place(key: &FlowKey) -> FlowPlace {
    // SAFETY: a global of the program; the agent writes the secret before
    // attaching the program and never changes it afterwards.
    let secret = unsafe { &*addr_of!(LIVE_FLOW_TABLE_CONFIG.key) };
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

/// Slot `way` of the bucket at `bucket`, as one read of the shared memory.
#[inline(always)]
fn read_slot(bucket: *const FlowBucket, way: usize) -> FlowSlot {
    // SAFETY: `bucket` is a CONNTRACK value pointer (valid for the program's
    // run) and `way < FLOW_WAYS` (callers loop below it); volatile because
    // other CPUs write the slot concurrently: a torn copy fails its tag check.
    unsafe { read_volatile(addr_of!((*bucket).slots[way])) }
}

/// A copy of the bucket at `bucket`, slot by slot (see [`read_slot`]).
#[inline(always)]
fn read_bucket(bucket: *const FlowBucket) -> FlowBucket {
    let mut copy = FlowBucket::default();
    for way in 0..FLOW_WAYS {
        copy.slots[way] = read_slot(bucket, way);
    }
    copy
}

/// The way of the bucket at `bucket` holding the flow of `fingerprint`, its
/// pin and its second-chance hint.
#[inline(always)]
fn find(
    bucket: *const FlowBucket,
    fingerprint: u64,
) -> Option<(usize, FlowEntry, Option<BackendId>)> {
    for way in 0..FLOW_WAYS {
        if let Some((pin, hint)) = read_slot(bucket, way).hinted_pin_of(fingerprint) {
            return Some((way, pin, hint));
        }
    }
    None
}

/// Now, in jiffies (low 32 bits; the verifier inlines the helper as a load).
#[inline(always)]
fn now() -> u32 {
    // SAFETY: plain helper call.
    unsafe { bpf_jiffies64() as u32 }
}

/// The pin of the flow at `place` and its second-chance hint, marking the
/// flow seen now when its `seen` is stale ([`seen_is_stale`]: about once a
/// second, so that a hit leaves the line clean in between). The second
/// bucket is only read when the first does not hold the flow.
#[inline(always)]
pub fn lookup(place: &FlowPlace) -> Option<(FlowEntry, Option<BackendId>)> {
    let [a, b] = bucket_indices(place.hash);
    let mut bucket = CONNTRACK.get_ptr_mut(a)?;
    let mut found = find(bucket, place.fingerprint);
    if found.is_none() {
        bucket = CONNTRACK.get_ptr_mut(b)?;
        found = find(bucket, place.fingerprint);
    }
    let (way, pin, hint) = found?;
    if way < FLOW_WAYS {
        let t = now();
        // SAFETY: `bucket` is a CONNTRACK value pointer and `way` one of its
        // slots; one word, read and written volatile (other CPUs race on it:
        // `seen` is a hint, any of the racing values will do).
        unsafe {
            let seen = addr_of_mut!((*bucket).slots[way].seen);
            if seen_is_stale(read_volatile(seen), t) {
                write_volatile(seen, t);
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
    let copies = [read_bucket(pair[0]), read_bucket(pair[1])];
    let (i, way) = slot_for_pin([&copies[0], &copies[1]], place.fingerprint, t);
    if i < 2 && way < FLOW_WAYS {
        let slot = FlowSlot::hinted(place.fingerprint, entry, hint, t);
        // SAFETY: `pair[i]` is a CONNTRACK value pointer and `way` one of its
        // slots; volatile: other CPUs read and write it concurrently.
        unsafe { write_volatile(addr_of_mut!((*pair[i]).slots[way]), slot) };
    }
}

/// Whether this CPU may insert one more flow this second (and counts it).
#[inline(always)]
fn within_budget() -> bool {
    // SAFETY: a global of the program; volatile: the agent may change the
    // budget while packets are read (one aligned word).
    let budget =
        u64::from(unsafe { read_volatile(addr_of!(LIVE_FLOW_TABLE_CONFIG.insert_budget)) });
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
