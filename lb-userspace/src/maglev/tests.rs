//! Properties of the weighted Maglev table.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const M: u32 = 65537;

/// Backend `i` (up to 65535) in 198.18.0.0/15.
fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8))
}

/// Backend `i` in 2001:2::/48.
fn v6(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, i as u16))
}

fn equal(addresses: impl IntoIterator<Item = IpAddr>) -> Vec<WeightedBackend> {
    addresses
        .into_iter()
        .map(|address| WeightedBackend { address, weight: 1 })
        .collect()
}

/// The table as addresses, so tables of differently ordered inputs compare.
fn by_address(table: &MaglevTable, backends: &[WeightedBackend]) -> Vec<Option<IpAddr>> {
    table
        .slots()
        .iter()
        .map(|&s| (s != NO_BACKEND).then(|| backends[s as usize].address))
        .collect()
}

/// Deterministic Fisher-Yates with an LCG (no rand dependency).
fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = ((state >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[test]
fn is_prime_small_and_large() {
    let primes = [2, 3, 5, 7, 11, 13, 97, 251, 65537, 655373, 4294967291];
    let composites = [
        0, 1, 4, 6, 9, 15, 25, 49, 91, 65536, 65535, 655371, 4294967295,
    ];
    for p in primes {
        assert!(is_prime(p), "{p} is prime");
    }
    for c in composites {
        assert!(!is_prime(c), "{c} is not prime");
    }
    // Cross-check against a sieve.
    let limit = 10_000usize;
    let mut sieve = vec![true; limit];
    sieve[0] = false;
    sieve[1] = false;
    for i in 2..limit {
        if sieve[i] {
            for j in (i * i..limit).step_by(i) {
                sieve[j] = false;
            }
        }
    }
    for (n, &p) in sieve.iter().enumerate() {
        assert_eq!(is_prime(n as u32), p, "is_prime({n})");
    }
}

#[test]
fn needs_larger_table_below_100_per_backend() {
    assert!(!needs_larger_table(65537, 655));
    assert!(needs_larger_table(65537, 656));
    assert!(!needs_larger_table(65537, 0));
}

#[test]
fn rejects_non_prime_size() {
    let backends = equal([v4(1)]);
    assert_eq!(
        MaglevTable::build(65536, &backends),
        Err(MaglevError::NotPrime(65536))
    );
    assert_eq!(
        MaglevTable::build(1, &backends),
        Err(MaglevError::NotPrime(1))
    );
    assert_eq!(
        MaglevTable::build(0, &backends),
        Err(MaglevError::NotPrime(0))
    );
}

#[test]
fn rejects_duplicate_backend() {
    let mut backends = equal([v4(1), v6(1), v4(2), v4(3)]);
    backends.push(WeightedBackend {
        address: v6(1),
        weight: 5,
    });
    assert_eq!(
        MaglevTable::build(M, &backends),
        Err(MaglevError::DuplicateBackend(v6(1)))
    );
}

#[test]
fn equal_weights_floor_or_ceil() {
    for n in [1u32, 3, 7, 100] {
        // Mix families: a third IPv6.
        let backends = equal((0..n).map(|i| if i % 3 == 2 { v6(i) } else { v4(i) }));
        let table = MaglevTable::build(M, &backends).unwrap();
        assert_eq!(table.size(), M);
        let counts = table.slot_counts(backends.len());
        let (floor, ceil) = (M / n, M.div_ceil(n));
        for (i, &c) in counts.iter().enumerate() {
            assert!(
                c == floor || c == ceil,
                "n={n} backend {i}: {c} slots, want {floor}..={ceil}"
            );
        }
        assert_eq!(counts.iter().sum::<u32>(), M);
    }
}

/// Asserts every backend's share is within 1 share point of its weight share.
fn assert_weighted_shares(m: u32, weights: &[u32]) {
    let backends: Vec<_> = weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| WeightedBackend {
            address: v4(i as u32 + 10),
            weight,
        })
        .collect();
    let table = MaglevTable::build(m, &backends).unwrap();
    let counts = table.slot_counts(backends.len());
    let total_weight: u32 = weights.iter().sum();
    for (i, (&w, &c)) in weights.iter().zip(&counts).enumerate() {
        let want = f64::from(w) / f64::from(total_weight);
        let got = f64::from(c) / f64::from(m);
        assert!(
            (got - want).abs() <= 0.01,
            "m={m} weights={weights:?} backend {i}: share {got:.4}, want {want:.4}"
        );
    }
    assert_eq!(counts.iter().sum::<u32>(), m);
}

#[test]
fn weighted_shares_within_one_percent() {
    assert_weighted_shares(M, &[1, 2, 3, 4]);
    assert_weighted_shares(M, &[1, 1, 2]);
    assert_weighted_shares(M, &[4, 3, 2, 1]);
    assert_weighted_shares(M, &[100, 1]);
    // Smallest table the rule allows for 4 backends, next prime >= 400.
    assert_weighted_shares(401, &[1, 2, 3, 4]);
    assert_weighted_shares(655373, &[1, 2, 3, 4]);
    // Many backends with mixed weights, M >= 100 N.
    let weights: Vec<u32> = (0..200).map(|i| 1 + i % 5).collect();
    assert_weighted_shares(M, &weights);
}

#[test]
fn weight_zero_gets_no_slots() {
    let backends = vec![
        WeightedBackend {
            address: v4(1),
            weight: 1,
        },
        WeightedBackend {
            address: v4(2),
            weight: 0,
        },
        WeightedBackend {
            address: v6(3),
            weight: 3,
        },
    ];
    let table = MaglevTable::build(M, &backends).unwrap();
    let counts = table.slot_counts(3);
    assert_eq!(counts[1], 0);
    assert_eq!(counts[0] + counts[2], M);
    assert!(table.slots().iter().all(|&s| s != NO_BACKEND));
}

#[test]
fn all_zero_or_empty_is_all_no_backend() {
    let zero = [
        WeightedBackend {
            address: v4(1),
            weight: 0,
        },
        WeightedBackend {
            address: v6(2),
            weight: 0,
        },
    ];
    for backends in [&zero[..], &[]] {
        let table = MaglevTable::build(M, backends).unwrap();
        assert_eq!(table.size(), M);
        assert!(table.slots().iter().all(|&s| s == NO_BACKEND));
    }
}

/// Fraction of slots that moved between two backends present in both tables.
fn disruption(before: &[Option<IpAddr>], after: &[Option<IpAddr>], kept: &[IpAddr]) -> f64 {
    let moved = before
        .iter()
        .zip(after)
        .filter(|(b, a)| match (b, a) {
            (Some(b), Some(a)) => b != a && kept.contains(b) && kept.contains(a),
            _ => false,
        })
        .count();
    moved as f64 / before.len() as f64
}

#[test]
fn one_backend_change_moves_at_most_one_percent() {
    let base = equal((0..100).map(v4));
    let base_table = by_address(&MaglevTable::build(M, &base).unwrap(), &base);
    let kept: Vec<IpAddr> = base.iter().map(|b| b.address).collect();

    // Add one backend (an IPv6 one and an IPv4 one).
    for extra in [v6(0x100), v4(0x100)] {
        let mut added = base.clone();
        added.push(WeightedBackend {
            address: extra,
            weight: 1,
        });
        let table = by_address(&MaglevTable::build(M, &added).unwrap(), &added);
        let fraction = disruption(&base_table, &table, &kept);
        eprintln!(
            "add {extra} to N=100, M={M}: {:.4}% of slots moved between kept backends",
            fraction * 100.0
        );
        assert!(fraction <= 0.01, "add {extra}: {fraction}");
        // The new backend takes its fair share.
        let owned = table.iter().filter(|a| **a == Some(extra)).count() as u32;
        assert!(owned == M / 101 || owned == M.div_ceil(101));
    }

    // Remove each of a few backends.
    let mut worst = 0f64;
    for removed_index in [0usize, 1, 37, 50, 99] {
        let mut removed = base.clone();
        let gone = removed.remove(removed_index).address;
        let kept: Vec<IpAddr> = removed.iter().map(|b| b.address).collect();
        let table = by_address(&MaglevTable::build(M, &removed).unwrap(), &removed);
        let fraction = disruption(&base_table, &table, &kept);
        eprintln!(
            "remove {gone} from N=100, M={M}: {:.4}% of slots moved between kept backends",
            fraction * 100.0
        );
        assert!(fraction <= 0.01, "remove {gone}: {fraction}");
        assert!(!table.contains(&Some(gone)));
        worst = worst.max(fraction);
    }
    eprintln!("worst removal disruption: {:.4}%", worst * 100.0);
}

#[test]
fn shuffled_input_gives_same_table_by_address() {
    let mut backends: Vec<_> = (0..50u32)
        .map(|i| WeightedBackend {
            address: if i % 2 == 0 { v4(i) } else { v6(i) },
            weight: i % 4,
        })
        .collect();
    let reference = by_address(&MaglevTable::build(M, &backends).unwrap(), &backends);
    for seed in 1..=5 {
        shuffle(&mut backends, seed);
        let table = by_address(&MaglevTable::build(M, &backends).unwrap(), &backends);
        assert!(table == reference, "seed {seed}: table differs by address");
    }
}

#[test]
fn repeated_builds_are_identical() {
    let backends = equal((0..100).map(v4));
    let first = MaglevTable::build(M, &backends).unwrap();
    for _ in 0..3 {
        assert_eq!(MaglevTable::build(M, &backends).unwrap(), first);
    }
}

#[test]
fn slot_indices_point_into_input() {
    let backends = equal((0..7).map(v6));
    let table = MaglevTable::build(M, &backends).unwrap();
    assert!(table.slots().iter().all(|&s| (s as usize) < backends.len()));
    // Each backend's first preferred slot (its offset) is usually its own;
    // at least check every backend owns something.
    let counts: HashMap<u32, u32> = table.slots().iter().fold(HashMap::new(), |mut m, &s| {
        *m.entry(s).or_default() += 1;
        m
    });
    assert_eq!(counts.len(), 7);
}

#[test]
fn fingerprint_depends_on_slot_addresses_only() {
    let a: IpAddr = "198.18.3.2".parse().unwrap();
    let b: IpAddr = "198.18.3.3".parse().unwrap();
    let wa = WeightedBackend {
        address: a,
        weight: 1,
    };
    let wb = WeightedBackend {
        address: b,
        weight: 1,
    };
    let ab = MaglevTable::build(13, &[wa, wb]).unwrap();
    let ba = MaglevTable::build(13, &[wb, wa]).unwrap();
    // Input order changes indices, not the slot -> address map.
    assert_eq!(ab.fingerprint(&[wa, wb]), ba.fingerprint(&[wb, wa]));
    // Two slots swapped: another fingerprint.
    let mut slots = ab.slots().to_vec();
    let j = slots.iter().position(|&s| s != slots[0]).unwrap();
    slots.swap(0, j);
    assert_ne!(fingerprint(&slots, &[a, b]), ab.fingerprint(&[wa, wb]));
    // Same slots naming other addresses: another fingerprint.
    assert_ne!(fingerprint(ab.slots(), &[b, a]), ab.fingerprint(&[wa, wb]));
    // Empty vs one-slot-empty tables differ, and the value is fixed.
    assert_ne!(fingerprint(&[], &[]), fingerprint(&[NO_BACKEND], &[]));
    assert_eq!(fingerprint_hex(0xab), "000000ab");
}
