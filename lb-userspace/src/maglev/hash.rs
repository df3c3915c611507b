//! Fixed-seed 64-bit hashing of backend identities.
//!
//! The seeds are constants, so every node (and every run) computes the same
//! permutation for the same backend: never replace this with a per-process
//! random hasher.

use std::net::IpAddr;

/// Seed of the hash that gives a backend's permutation offset.
pub(super) const OFFSET_SEED: u64 = 0x6c62_6d61_676c_6576; // "lbmaglev"
/// Seed of the hash that gives a backend's permutation skip.
pub(super) const SKIP_SEED: u64 = 0x736b_6970_5f73_6565; // "skip_see"

/// The splitmix64 finalizer: a bijective, well-avalanching 64-bit mix.
pub(super) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes `bytes` with `seed`: each 8-byte little-endian word is folded in
/// and mixed, then the length is folded in.
pub(super) fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    let mut h = mix64(seed);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    mix64(h ^ bytes.len() as u64)
}

/// Hashes an address: a family tag byte then the address bytes, so that an
/// IPv4 address and an IPv6 address never share their bytes' hash.
pub(super) fn hash_address(address: &IpAddr, seed: u64) -> u64 {
    let mut buf = [0u8; 17];
    let len = match address {
        IpAddr::V4(v4) => {
            buf[0] = 4;
            buf[1..5].copy_from_slice(&v4.octets());
            5
        }
        IpAddr::V6(v6) => {
            buf[0] = 6;
            buf[1..17].copy_from_slice(&v6.octets());
            17
        }
    };
    hash_bytes(&buf[..len], seed)
}
