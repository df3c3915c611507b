extern crate std;

use super::*;
use crate::flow::{FAMILY_V6, flow_hash64};
use core::mem::size_of;

use crate::flow::test_key as key;

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

/// Places `key` into `pair` as the datapath does.
fn place(pair: &mut [FlowBucket; 2], key: &FlowKey, entry: FlowEntry, now: u32) -> (usize, usize) {
    let (i, way) = slot_for_pin([&pair[0], &pair[1]], key, now);
    pair[i].slots[way] = FlowSlot::new(key, flow_hash64(key), entry, now);
    (i, way)
}

fn find(pair: &[FlowBucket; 2], key: &FlowKey) -> Option<(usize, usize, FlowEntry)> {
    find_pin([&pair[0], &pair[1]], key, flow_hash64(key))
}

#[test]
fn a_placed_flow_is_found_with_its_pin() {
    let mut pair = [FlowBucket::default(); 2];
    let k = key(1);
    assert_eq!(find(&pair, &k), None);
    assert_eq!(place(&mut pair, &k, pin(3), 100), (0, 0));
    assert_eq!(find(&pair, &k), Some((0, 0, pin(3))));
    // Re-pinning overwrites the flow's own slot.
    assert_eq!(place(&mut pair, &k, pin(4), 101), (0, 0));
    assert_eq!(find(&pair, &k), Some((0, 0, pin(4))));
    assert_eq!(pair[0].slots[1], FlowSlot::default());
    // Another flow is not found, and goes to the first empty slot.
    let k2 = key(2);
    assert_eq!(find(&pair, &k2), None);
    assert_eq!(place(&mut pair, &k2, pin(5), 102), (0, 1));
    assert_eq!(find(&pair, &k2), Some((0, 1, pin(5))));
    assert_eq!(find(&pair, &k), Some((0, 0, pin(4))));
}

#[test]
fn the_second_bucket_takes_flows_once_the_first_is_full() {
    let mut pair = [FlowBucket::default(); 2];
    for port in 0..4 {
        assert_eq!(place(&mut pair, &key(port), pin(1), 10), (0, port as usize));
    }
    assert_eq!(place(&mut pair, &key(4), pin(2), 11), (1, 0));
    assert_eq!(find(&pair, &key(4)), Some((1, 0, pin(2))));
    // A flow of the second bucket is re-pinned in place, even when the first
    // has room again: a second, stale copy could outlive the first.
    pair[0].slots[2] = FlowSlot::default();
    assert_eq!(place(&mut pair, &key(4), pin(3), 12), (1, 0));
    assert_eq!(find(&pair, &key(4)), Some((1, 0, pin(3))));
}

#[test]
fn a_full_pair_replaces_its_least_recently_seen_flow() {
    let mut pair = [FlowBucket::default(); 2];
    let seen = [50u32, 45, 40, 35, 30, 10, 20, 25];
    for (n, t) in seen.iter().enumerate() {
        place(&mut pair, &key(n as u16), pin(n as u32), *t);
    }
    let k = key(9);
    assert_eq!(slot_for_pin([&pair[0], &pair[1]], &k, 60), (1, 1));
    place(&mut pair, &k, pin(9), 60);
    assert_eq!(find(&pair, &k), Some((1, 1, pin(9))));
    assert_eq!(find(&pair, &key(5)), None);
    // Ages wrap with the 32-bit clock: seen just before the wrap is older.
    let mut pair = [FlowBucket::default(); 2];
    for (n, t) in [2u32, 3, 4, u32::MAX - 5, 5, 5, 5, 5].iter().enumerate() {
        place(&mut pair, &key(n as u16), pin(1), *t);
    }
    assert_eq!(slot_for_pin([&pair[0], &pair[1]], &key(9), 6), (0, 3));
}

#[test]
fn a_torn_slot_reads_as_empty() {
    let mut pair = [FlowBucket::default(); 2];
    let k = key(1);
    place(&mut pair, &k, pin(3), 1);
    // Another writer's value under this key: the check word no longer matches.
    pair[0].slots[0].backend_id = 4;
    assert_eq!(find(&pair, &k), None);
    pair[0].slots[0].backend_id = 3;
    pair[0].slots[0].generation = 8;
    assert_eq!(find(&pair, &k), None);
    pair[0].slots[0].generation = 7;
    assert_eq!(find(&pair, &k), Some((0, 0, pin(3))));
    // An empty slot never matches, even the all-zero key.
    let zero = FlowKey::default();
    assert_eq!(find(&[FlowBucket::default(); 2], &zero), None);
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
    let mut second = [0u32; 256];
    for port in 0..25_600u16 {
        let [a, b] = bucket_pair(flow_hash64(&key(port)), mask);
        counts[a as usize] += 1;
        second[b as usize] += 1;
    }
    for c in counts.iter().chain(&second) {
        assert!((50..160).contains(c), "uneven bucket {c}");
    }
}

/// Misses in the third round of cyclic access to `flows` flows (the worst
/// case for LRU replacement) in a table of `BUCKETS` buckets, with two
/// buckets per flow or (`two_choices == false`) only the first.
fn cyclic_misses(flows: u16, two_choices: bool) -> u32 {
    const BUCKETS: usize = 4096;
    let mut table = std::vec![FlowBucket::default(); BUCKETS];
    let mut misses = 0;
    for round in 0..3u32 {
        for port in 0..flows {
            let k = key(port);
            let h = flow_hash64(&k);
            let [a, b] = bucket_pair(h, BUCKETS as u32 - 1);
            let (a, b) = (
                a as usize,
                if two_choices { b as usize } else { a as usize },
            );
            let now = round * u32::from(flows) + u32::from(port);
            if find_pin([&table[a], &table[b]], &k, h).is_some() {
                continue;
            }
            if round == 2 {
                misses += 1;
            }
            let (i, way) = slot_for_pin([&table[a], &table[b]], &k, now);
            table[[a, b][i]].slots[way] = FlowSlot::new(&k, h, pin(1), now);
        }
    }
    misses
}

/// A half-full table under cyclic access: with one bucket per flow, crowded
/// buckets thrash (about 15 % of the flows); with two, almost none do.
#[test]
fn two_choices_keep_a_half_full_table_from_thrashing() {
    let flows = (4096 * FLOW_WAYS / 2) as u16;
    let one = cyclic_misses(flows, false);
    let two = cyclic_misses(flows, true);
    assert!(one * 10 > u32::from(flows), "one choice: {one} misses");
    assert!(
        two * 200 < u32::from(flows),
        "two choices: {two} misses of {flows}"
    );
}
