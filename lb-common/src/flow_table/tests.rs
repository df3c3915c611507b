use super::*;
use crate::flow::{FAMILY_V4, FAMILY_V6, PROTO_TCP};
use core::mem::size_of;

fn key(port: u16) -> FlowKey {
    FlowKey {
        src: [0x0102_12c6, 0, 0, 0],
        dst: [0x0164_12c6, 0, 0, 0],
        src_port: port,
        dst_port: 80,
        protocol: PROTO_TCP,
        family: FAMILY_V4,
        pad: [0; 2],
    }
}

fn pin(id: u32) -> FlowEntry {
    FlowEntry {
        backend_id: id,
        generation: 7,
    }
}

#[test]
fn slots_are_cache_lines() {
    assert_eq!(size_of::<FlowSlot>(), 64);
    assert_eq!(size_of::<FlowBucket>(), 64 * FLOW_WAYS);
}

#[test]
fn buckets_round_up_to_powers_of_two() {
    assert_eq!(flow_buckets(0), 1);
    assert_eq!(flow_buckets(1), 1);
    assert_eq!(flow_buckets(4), 1);
    assert_eq!(flow_buckets(5), 2);
    assert_eq!(flow_buckets(4096), 1024);
    assert_eq!(flow_buckets(4097), 2048);
    assert_eq!(flow_buckets(crate::DEFAULT_CONNTRACK_ENTRIES), 524_288);
    assert_eq!(flow_buckets(u32::MAX), MAX_FLOW_BUCKETS);
}

#[test]
fn a_placed_flow_is_found_with_its_pin() {
    let mut b = FlowBucket::default();
    let k = key(1);
    let h = flow_hash64(&k);
    assert_eq!(b.find(&k, h), None);
    b.place(&k, h, pin(3), 100);
    assert_eq!(b.find(&k, h), Some((0, pin(3))));
    // Re-pinning overwrites the flow's own slot.
    b.place(&k, h, pin(4), 101);
    assert_eq!(b.find(&k, h), Some((0, pin(4))));
    assert_eq!(b.slots[1], FlowSlot::default());
    // Another flow is not found, and goes to an empty slot.
    let k2 = key(2);
    let h2 = flow_hash64(&k2);
    assert_eq!(b.find(&k2, h2), None);
    b.place(&k2, h2, pin(5), 102);
    assert_eq!(b.find(&k2, h2), Some((1, pin(5))));
    assert_eq!(b.find(&k, h), Some((0, pin(4))));
}

#[test]
fn a_full_bucket_replaces_its_least_recently_seen_flow() {
    let mut b = FlowBucket::default();
    let seen = [50u32, 10, 40, 30];
    for (way, t) in seen.iter().enumerate() {
        let k = key(way as u16);
        b.place(&k, flow_hash64(&k), pin(way as u32), *t);
    }
    let k = key(9);
    assert_eq!(b.victim(&k, 60), 1);
    b.place(&k, flow_hash64(&k), pin(9), 60);
    assert_eq!(b.find(&k, flow_hash64(&k)), Some((1, pin(9))));
    let gone = key(1);
    assert_eq!(b.find(&gone, flow_hash64(&gone)), None);
    // Ages wrap with the 32-bit clock: seen just before the wrap is older.
    let mut b = FlowBucket::default();
    for (way, t) in [u32::MAX - 5, 2, 3, 4].iter().enumerate() {
        let k = key(way as u16);
        b.place(&k, flow_hash64(&k), pin(1), *t);
    }
    assert_eq!(b.victim(&key(9), 5), 0);
}

#[test]
fn a_torn_slot_reads_as_empty() {
    let mut b = FlowBucket::default();
    let k = key(1);
    let h = flow_hash64(&k);
    b.place(&k, h, pin(3), 1);
    // Another writer's value under this key: the check word no longer matches.
    b.slots[0].backend_id = 4;
    assert_eq!(b.find(&k, h), None);
    b.slots[0].backend_id = 3;
    b.slots[0].generation = 8;
    assert_eq!(b.find(&k, h), None);
    b.slots[0].generation = 7;
    assert_eq!(b.find(&k, h), Some((0, pin(3))));
    // An empty slot never matches, even the all-zero key.
    let zero = FlowKey::default();
    assert_eq!(FlowBucket::default().find(&zero, flow_hash64(&zero)), None);
}

#[test]
fn same_flow_compares_every_field() {
    let a = key(1);
    assert!(same_flow(&a, &a));
    let mut b = a;
    b.src_port = 2;
    assert!(!same_flow(&a, &b));
    let mut b = a;
    b.dst[3] = 1;
    assert!(!same_flow(&a, &b));
    let mut b = a;
    b.family = FAMILY_V6;
    assert!(!same_flow(&a, &b));
    let mut b = a;
    b.protocol = 17;
    assert!(!same_flow(&a, &b));
}

#[test]
fn buckets_spread_evenly() {
    let mask = 255;
    let mut counts = [0u32; 256];
    for port in 0..25_600u16 {
        counts[bucket_index(flow_hash64(&key(port)), mask) as usize] += 1;
    }
    for c in counts {
        assert!((50..160).contains(&c), "uneven bucket {c}");
    }
}
