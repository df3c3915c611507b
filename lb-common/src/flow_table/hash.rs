//! The connection table's keyed hash: where a flow lives and the fingerprint
//! that recognises it, under a per-host secret.
//!
//! Without a secret, anyone who can copy the hash can compute a flow's buckets
//! and send a few flows of their own that land in them, pushing the victim
//! out. [`flow_place`] is an NH hash (the universal hash of UMAC: sums of
//! products of key-offset 32-bit words; two different flows collide with
//! probability at most 2^-32 over the choice of the key) finished by two
//! keyed murmur3 finalizers, one for the buckets and one for the fingerprint.
//! The secret ([`FlowHashKey`]) is drawn by the agent from the kernel's random
//! source when it creates the datapath and kept in the pinned
//! [`crate::MAP_FLOW_TABLE_CONFIG`] with the table it placed. Maglev's pick
//! uses the unkeyed [`crate::flow_hash`], so every node of a tier still picks
//! the same backend for a flow.

use super::FINGERPRINT_MASK;
use crate::flow::{FAMILY_V4, FlowKey, fmix64};

/// The per-host secret of the connection table's hash: 10 words that offset
/// the 5-tuple's words (4 used for IPv4, 10 for IPv6) and 2 finalizer keys.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowHashKey {
    /// NH key words, one per 32-bit word of the hashed 5-tuple.
    pub words: [u32; 10],
    /// Keys of the placement and of the fingerprint finalizer.
    pub finish: [u64; 2],
}

impl FlowHashKey {
    /// The key made of `bytes` (64 random bytes; the tail beyond the key's
    /// 56 bytes is ignored).
    pub fn from_random(bytes: &[u8; 64]) -> Self {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut words = [0u32; 10];
        for (i, w) in words.iter_mut().enumerate() {
            *w = word(4 * i);
        }
        let wide = |i: usize| u64::from(word(i)) | (u64::from(word(i + 4)) << 32);
        Self {
            words,
            finish: [wide(40), wide(48)],
        }
    }
}

/// Where a flow lives in the connection table and how its slot recognises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowPlace {
    /// Placement hash: [`super::bucket_pair`] takes the flow's two buckets from it.
    pub hash: u64,
    /// 48-bit fingerprint ([`FINGERPRINT_MASK`] bits).
    pub fingerprint: u64,
}

/// One NH term: the product of two key-offset words.
#[inline(always)]
fn nh(a: u32, ka: u32, b: u32, kb: u32) -> u64 {
    u64::from(a.wrapping_add(ka)) * u64::from(b.wrapping_add(kb))
}

/// The keyed placement and fingerprint of flow `key` under secret `k`: two NH
/// terms for IPv4, five for IPv6, then two finalizers.
#[inline(always)]
pub fn flow_place(key: &FlowKey, k: &FlowHashKey) -> FlowPlace {
    let ports = u32::from(key.src_port) | (u32::from(key.dst_port) << 16);
    let tags = u32::from(key.protocol) | (u32::from(key.family) << 8);
    let mut sum = nh(key.src[0], k.words[0], key.dst[0], k.words[1])
        .wrapping_add(nh(ports, k.words[2], tags, k.words[3]));
    if key.family != FAMILY_V4 {
        sum = sum
            .wrapping_add(nh(key.src[1], k.words[4], key.dst[1], k.words[5]))
            .wrapping_add(nh(key.src[2], k.words[6], key.dst[2], k.words[7]))
            .wrapping_add(nh(key.src[3], k.words[8], key.dst[3], k.words[9]));
    }
    FlowPlace {
        hash: fmix64(sum ^ k.finish[0]),
        fingerprint: fmix64(sum ^ k.finish[1]) & FINGERPRINT_MASK,
    }
}
