//! The population loop: permutations generated incrementally, one table
//! allocation, no per-slot work beyond probing.

use super::hash::{OFFSET_SEED, SKIP_SEED, hash_address};
use super::{NO_BACKEND, WeightedBackend};

/// Where one backend is in its permutation, and its weight credit.
struct Cursor {
    /// The backend's next preferred slot (`offset + j * skip mod M`).
    next: u32,
    /// Permutation step, in `1..M`.
    skip: u32,
    /// Weight earned and not yet spent on slots.
    credit: u64,
    /// Weight added to `credit` every round.
    weight: u64,
    /// Index into the caller's slice (the value written into slots).
    input_index: u32,
}

/// Fills a table of prime size `m`: backends with non-zero weight, visited in
/// `order` (input indices sorted by address), claim slots in turn.
pub(super) fn populate(m: u32, backends: &[WeightedBackend], order: &[u32]) -> Vec<u32> {
    let mut table = vec![NO_BACKEND; m as usize];
    let mut cursors: Vec<Cursor> = order
        .iter()
        .map(|&i| (i, &backends[i as usize]))
        .filter(|(_, b)| b.weight > 0)
        .map(|(i, b)| {
            let offset = (hash_address(&b.address, OFFSET_SEED) % u64::from(m)) as u32;
            let skip = if m > 1 {
                (hash_address(&b.address, SKIP_SEED) % u64::from(m - 1)) as u32 + 1
            } else {
                1
            };
            Cursor {
                next: offset,
                skip,
                credit: 0,
                weight: u64::from(b.weight),
                input_index: i,
            }
        })
        .collect();
    let Some(max_weight) = cursors.iter().map(|c| c.weight).max() else {
        return table;
    };
    let mut filled = 0u32;
    loop {
        for cursor in &mut cursors {
            cursor.credit += cursor.weight;
            if cursor.credit < max_weight {
                continue;
            }
            // weight <= max_weight, so credit < 2 * max_weight: one claim.
            cursor.credit -= max_weight;
            loop {
                let candidate = cursor.next;
                // next + skip - m, without overflowing u32 for m > 2^31.
                cursor.next = if cursor.next >= m - cursor.skip {
                    cursor.next - (m - cursor.skip)
                } else {
                    cursor.next + cursor.skip
                };
                let slot = &mut table[candidate as usize];
                if *slot == NO_BACKEND {
                    *slot = cursor.input_index;
                    break;
                }
            }
            filled += 1;
            if filled == m {
                return table;
            }
        }
    }
}
