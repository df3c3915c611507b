//! The table fingerprint: a short hash of a Maglev table as slot -> backend
//! address, so that nodes can check at a glance that their tables agree.
//!
//! Backend ids are local (a node with another history may have given other
//! ids), so the fingerprint hashes each slot's backend *address*, never its
//! id: two tables have the same fingerprint when every slot sends new flows to
//! the same backend. The hash is fixed-seed, so it is equal across processes,
//! restarts and machines. 32 bits, so that a metric holds it exactly.

use std::net::IpAddr;

use super::NO_BACKEND;
use super::hash::{hash_address, mix64};

/// Seed of the per-address hash folded into a fingerprint.
const FINGERPRINT_SEED: u64 = 0x6c62_6669_6e67_6572; // "lbfinger"
/// Stands for a slot without backend.
const EMPTY_SLOT: u64 = 0x6e6f_5f62_6163_6b65; // "no_backe"

/// Fingerprint of a table given as input indices per slot (`slots`, with
/// [`NO_BACKEND`] for none) over backends whose addresses are `addresses`
/// (indexed like the input). An empty table (no backend takes new flows)
/// has a fingerprint too, the same everywhere.
pub fn fingerprint(slots: &[u32], addresses: &[IpAddr]) -> u32 {
    let hashes: Vec<u64> = addresses
        .iter()
        .map(|a| hash_address(a, FINGERPRINT_SEED))
        .collect();
    let mut h = mix64(FINGERPRINT_SEED);
    for &slot in slots {
        let value = if slot == NO_BACKEND {
            EMPTY_SLOT
        } else {
            hashes[slot as usize]
        };
        h = mix64(h ^ value);
    }
    h = mix64(h ^ slots.len() as u64);
    (h ^ (h >> 32)) as u32
}

/// A fingerprint as shown: 8 lowercase hex digits.
pub fn fingerprint_hex(fingerprint: u32) -> String {
    format!("{fingerprint:08x}")
}
