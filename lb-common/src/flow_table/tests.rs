extern crate std;

use super::*;
use crate::FlowKey;
use crate::flow::FAMILY_V6;
use core::mem::size_of;

use crate::flow::test_key as key;

/// The secret of these tests.
fn secret() -> FlowHashKey {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    FlowHashKey::from_random(&bytes)
}

fn fp(key: &FlowKey) -> u64 {
    flow_place(key, &secret()).fingerprint
}

fn hash(key: &FlowKey) -> u64 {
    flow_place(key, &secret()).hash
}

fn pin(id: u32) -> FlowEntry {
    FlowEntry {
        backend_id: id,
        generation: 7,
    }
}

#[test]
fn a_bucket_is_one_cache_line_of_compact_slots() {
    assert_eq!(size_of::<FlowSlot>(), 16);
    assert_eq!(size_of::<FlowBucket>(), 64);
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
    let (i, way) = slot_for_pin([&pair[0], &pair[1]], fp(key), now);
    pair[i].slots[way] = FlowSlot::new(fp(key), entry, now);
    (i, way)
}

fn find(pair: &[FlowBucket; 2], key: &FlowKey) -> Option<(usize, usize, FlowEntry)> {
    find_pin([&pair[0], &pair[1]], fp(key))
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
    assert_eq!(slot_for_pin([&pair[0], &pair[1]], fp(&k), 60), (1, 1));
    place(&mut pair, &k, pin(9), 60);
    assert_eq!(find(&pair, &k), Some((1, 1, pin(9))));
    assert_eq!(find(&pair, &key(5)), None);
    // Ages wrap with the 32-bit clock: seen just before the wrap is older.
    let mut pair = [FlowBucket::default(); 2];
    for (n, t) in [2u32, 3, 4, u32::MAX - 5, 5, 5, 5, 5].iter().enumerate() {
        place(&mut pair, &key(n as u16), pin(1), *t);
    }
    assert_eq!(slot_for_pin([&pair[0], &pair[1]], fp(&key(9)), 6), (0, 3));
}

#[test]
fn a_torn_slot_reads_as_empty() {
    let mut pair = [FlowBucket::default(); 2];
    let k = key(1);
    place(&mut pair, &k, pin(3), 1);
    let intact = pair[0].slots[0];
    // Another writer's backend or generation under this fingerprint (the two
    // 8-byte halves of a slot written by different CPUs): the check fails.
    let other = FlowSlot::new(fp(&key(2)), pin(4), 1);
    pair[0].slots[0].tag = (intact.tag & FINGERPRINT_MASK) | (4 << FINGERPRINT_BITS);
    assert_eq!(find(&pair, &k), None);
    pair[0].slots[0] = intact;
    pair[0].slots[0].generation = 8;
    assert_eq!(find(&pair, &k), None);
    pair[0].slots[0] = FlowSlot {
        tag: intact.tag,
        generation: other.generation + 1,
        seen: other.seen,
    };
    assert_eq!(find(&pair, &k), None);
    pair[0].slots[0] = intact;
    assert_eq!(find(&pair, &k), Some((0, 0, pin(3))));
    // An empty slot never matches any fingerprint, zero included.
    let empty = [FlowBucket::default(); 2];
    assert_eq!(find_pin([&empty[0], &empty[1]], 0), None);
    assert_eq!(find(&empty, &FlowKey::default()), None);
}

#[test]
fn the_keyed_place_depends_on_every_field_and_on_the_secret() {
    let a = key(1);
    let base = flow_place(&a, &secret());
    let mut v6 = a;
    v6.family = FAMILY_V6;
    let mut variants = std::vec![v6];
    for f in 0..6 {
        let mut b = a;
        match f {
            0 => b.src_port = 2,
            1 => b.dst_port = 81,
            2 => b.protocol = 17,
            3 => b.src[0] ^= 1,
            4 => b.dst[0] ^= 1 << 31,
            _ => b.family = 0,
        }
        variants.push(b);
    }
    for w in 1..4 {
        let mut b = v6;
        b.src[w] = 1;
        variants.push(b);
        let mut b = v6;
        b.dst[w] = 1;
        variants.push(b);
    }
    for b in &variants {
        let p = flow_place(b, &secret());
        assert_ne!(p.hash, base.hash, "{b:?}");
        assert_ne!(p.fingerprint, base.fingerprint, "{b:?}");
    }
    let mut other = secret();
    other.words[0] ^= 1;
    assert_ne!(flow_place(&a, &other), base);
    let mut other = secret();
    other.finish[1] ^= 1;
    let p = flow_place(&a, &other);
    assert_eq!(p.hash, base.hash);
    assert_ne!(p.fingerprint, base.fingerprint);
    assert!(base.fingerprint <= FINGERPRINT_MASK);
}

/// The attack of the hardening issue: a copy of the hash predicts a victim's
/// buckets. Under an unknown secret, flows crafted to share the victim's
/// buckets under another secret land anywhere.
#[test]
fn flows_aimed_with_another_secret_miss_the_victims_buckets() {
    let mask = (1 << 16) - 1;
    let victim = key(1);
    let guess = FlowHashKey::default();
    let target = bucket_pair(flow_place(&victim, &guess).hash, mask);
    let mut aimed = std::vec::Vec::new();
    let mut k = key(0);
    for src in 0..2_000_000u32 {
        k.src[0] = src;
        if bucket_pair(flow_place(&k, &guess).hash, mask)[0] == target[0] {
            aimed.push(k);
        }
    }
    assert!(aimed.len() >= 9, "only {} aimed flows", aimed.len());
    let real = bucket_pair(hash(&victim), mask);
    let hits = aimed
        .iter()
        .filter(|k| bucket_pair(hash(k), mask).iter().any(|b| real.contains(b)))
        .count();
    assert!(hits <= 1, "{hits} of {} aimed flows hit", aimed.len());
}

#[test]
fn buckets_spread_evenly() {
    let mask = 255;
    let mut counts = [0u32; 256];
    let mut second = [0u32; 256];
    for port in 0..25_600u16 {
        let [a, b] = bucket_pair(hash(&key(port)), mask);
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
            let place = flow_place(&k, &secret());
            let [a, b] = bucket_pair(place.hash, BUCKETS as u32 - 1);
            let (a, b) = (
                a as usize,
                if two_choices { b as usize } else { a as usize },
            );
            let now = round * u32::from(flows) + u32::from(port);
            if find_pin([&table[a], &table[b]], place.fingerprint).is_some() {
                continue;
            }
            if round == 2 {
                misses += 1;
            }
            let (i, way) = slot_for_pin([&table[a], &table[b]], place.fingerprint, now);
            table[[a, b][i]].slots[way] = FlowSlot::new(place.fingerprint, pin(1), now);
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

#[test]
fn a_slot_carries_a_second_chance_hint_covered_by_its_check() {
    let k = key(1);
    for hint in [None, Some(0), Some(17), Some(crate::MAX_BACKENDS - 1)] {
        let slot = FlowSlot::hinted(fp(&k), pin(3), hint, 5);
        assert_eq!(slot.hinted_pin_of(fp(&k)), Some((pin(3), hint)));
        assert_eq!(slot.pin_of(fp(&k)), Some(pin(3)));
    }
    // A plain slot reads as "no hint"; generations compare modulo 2^15.
    let plain = FlowSlot::new(fp(&k), pin(3), 5);
    assert_eq!(plain.hinted_pin_of(fp(&k)), Some((pin(3), None)));
    let wide = FlowEntry {
        backend_id: 3,
        generation: PIN_GENERATION_MASK + 8,
    };
    let slot = FlowSlot::new(fp(&k), wide, 5);
    assert_eq!(slot.pin_of(fp(&k)).unwrap().generation, 7);
    // A torn hint fails the check like a torn pin.
    let mut torn = FlowSlot::hinted(fp(&k), pin(3), Some(9), 5);
    torn.generation = pin_word(7, Some(10));
    assert_eq!(torn.hinted_pin_of(fp(&k)), None);
    let mut bucket = FlowBucket::default();
    bucket.slots[2] = FlowSlot::hinted(fp(&k), pin(3), Some(9), 5);
    assert_eq!(bucket.find_hinted(fp(&k)), Some((2, pin(3), Some(9))));
}

#[test]
fn seen_is_rewritten_only_once_it_is_a_refresh_window_old() {
    let w = SEEN_REFRESH_JIFFIES;
    assert!(!seen_is_stale(1000, 1000));
    assert!(!seen_is_stale(1000, 1000 + w - 1));
    assert!(seen_is_stale(1000, 1000 + w));
    // Across the wrap of the jiffies' low 32 bits.
    assert!(!seen_is_stale(u32::MAX - 10, 5));
    assert!(seen_is_stale(u32::MAX - 10, w));
    // A racing CPU's slightly later `now` already written: old, rewritten.
    assert!(seen_is_stale(1001, 1000));
    // A slot written by the agent (seen 0) is refreshed on its first hit.
    assert!(seen_is_stale(0, 5_000_000));
}

#[test]
fn a_refresh_window_of_hits_keeps_a_busy_flow_ahead_of_an_idle_one() {
    // Eight flows fill a pair at time 0; flow 0 is hit every tick for four
    // windows (its `seen` refreshed as the datapath does), the others never.
    let keys: [FlowKey; 8] = core::array::from_fn(|p| key(5000 + p as u16));
    let mut pair = [FlowBucket::default(); 2];
    for (i, k) in keys.iter().enumerate() {
        let (b, w) = (i / FLOW_WAYS, i % FLOW_WAYS);
        pair[b].slots[w] = FlowSlot::new(fp(k), pin(1), 0);
    }
    let mut writes = 0;
    for now in 1..=4 * SEEN_REFRESH_JIFFIES {
        let s = &mut pair[0].slots[0];
        if seen_is_stale(s.seen, now) {
            s.seen = now;
            writes += 1;
        }
    }
    assert_eq!(writes, 4, "one write per window, not one per tick");
    // A new flow replaces one of the idle seven, never the busy flow.
    let (b, w) = slot_for_pin(
        [&pair[0], &pair[1]],
        fp(&key(9999)),
        4 * SEEN_REFRESH_JIFFIES,
    );
    assert_ne!((b, w), (0, 0));
}
