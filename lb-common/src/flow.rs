//! The flow key of the connection table and the flow hash that picks a flow's
//! Maglev slot.
//!
//! The hash lives here, not in the datapath, so that the agent and the tests can
//! compute exactly which backend the datapath will pick for a flow. It has no
//! secret: every node of a tier picks the same backend for a flow. The
//! connection table places flows with its own keyed hash
//! ([`crate::flow_table::flow_place`]).

pub use crate::net::{FAMILY_V4, FAMILY_V6, PROTO_TCP, PROTO_UDP};

/// A flow's 5-tuple as seen from the client: the connection-table key.
///
/// Addresses are network-order bytes; an IPv4 address uses `src[0]`/`dst[0]`
/// (the raw `u32` as read from the header) and leaves the other words zero.
/// Ports are the raw `u16` as read from the header (network order).
/// 8-byte aligned, so that a key compares as five 64-bit words.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Client address.
    pub src: [u32; 4],
    /// VIP address.
    pub dst: [u32; 4],
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// VIP port.
    pub dst_port: u16,
    /// IP protocol number ([`PROTO_TCP`] or [`PROTO_UDP`]).
    pub protocol: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    pub family: u8,
    /// Always zero (explicit padding so the key hashes identically everywhere).
    pub pad: [u8; 2],
}

impl FlowKey {
    /// The key as five 64-bit words (40 bytes, 8-byte aligned, no implicit padding).
    #[inline(always)]
    pub fn words(&self) -> &[u64; 5] {
        // SAFETY: same size, alignment satisfied, every bit pattern is a valid u64.
        unsafe { &*(self as *const Self as *const [u64; 5]) }
    }
}

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xff51_afd7_ed55_8ccd;
const K2: u64 = 0xc4ce_b9fe_1a85_ec53;

#[inline(always)]
fn absorb(h: u64, w: u64) -> u64 {
    let h = (h ^ w).wrapping_mul(K0);
    h ^ (h >> 32)
}

/// Murmur3's 64-bit finalizer.
#[inline(always)]
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(K1);
    h ^= h >> 33;
    h = h.wrapping_mul(K2);
    h ^ (h >> 33)
}

/// 64-bit hash of a flow key: two words for IPv4, five for IPv6, then a
/// finalizer. Deterministic (no seed): every node computes the same value.
#[inline(always)]
pub fn flow_hash64(key: &FlowKey) -> u64 {
    let tail = u64::from(key.src_port)
        | (u64::from(key.dst_port) << 16)
        | (u64::from(key.protocol) << 32)
        | (u64::from(key.family) << 40);
    let mut h = 0x4c42_5f31_u64;
    h = absorb(h, u64::from(key.src[0]) | (u64::from(key.dst[0]) << 32));
    if key.family != FAMILY_V4 {
        h = absorb(h, u64::from(key.src[1]) | (u64::from(key.src[2]) << 32));
        h = absorb(h, u64::from(key.src[3]) | (u64::from(key.dst[1]) << 32));
        h = absorb(h, u64::from(key.dst[2]) | (u64::from(key.dst[3]) << 32));
    }
    h = absorb(h, tail);
    fmix64(h)
}

/// The Maglev hash of a flow whose [`flow_hash64`] is `hash64`: its high half.
#[inline(always)]
pub fn maglev_hash(hash64: u64) -> u32 {
    (hash64 >> 32) as u32
}

/// Hash of a flow's 5-tuple for Maglev: [`maglev_hash`] of [`flow_hash64`].
///
/// The Maglev slot of a flow is `flow_hash(key) % table_size`.
#[inline(always)]
pub fn flow_hash(key: &FlowKey) -> u32 {
    maglev_hash(flow_hash64(key))
}

/// An IPv4 TCP flow to port 80 from client port `port` (tests).
#[cfg(test)]
pub(crate) fn test_key(port: u16) -> FlowKey {
    FlowKey {
        src: [0x0102_c6c6, 0, 0, 0],
        dst: [0x0164_12c6, 0, 0, 0],
        src_port: port,
        dst_port: 80,
        protocol: PROTO_TCP,
        family: FAMILY_V4,
        pad: [0; 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_field() {
        let base = FlowKey {
            src: [0x0102_c6c6, 0, 0, 0],
            dst: [0x0164_12c6, 0, 0, 0],
            src_port: 1234,
            dst_port: 80,
            protocol: PROTO_TCP,
            family: FAMILY_V4,
            pad: [0; 2],
        };
        let h = flow_hash(&base);
        let mut k = base;
        k.src_port = 1235;
        assert_ne!(h, flow_hash(&k));
        let mut k = base;
        k.protocol = PROTO_UDP;
        assert_ne!(h, flow_hash(&k));
        let mut v6 = base;
        v6.family = FAMILY_V6;
        let h6 = flow_hash(&v6);
        assert_ne!(h, h6);
        for word in 1..4 {
            let mut k = v6;
            k.src[word] = 1;
            assert_ne!(h6, flow_hash(&k));
            let mut k = v6;
            k.dst[word] = 1;
            assert_ne!(h6, flow_hash(&k));
        }
        // Deterministic across calls (and machines: no runtime seed).
        assert_eq!(h, flow_hash(&base));
    }

    #[test]
    fn hash_spreads_over_slots() {
        let m = 65537u32;
        let mut buckets = [0u32; 16];
        for port in 0..16_000u16 {
            let k = test_key(port);
            buckets[((flow_hash(&k) % m) * 16 / m) as usize] += 1;
        }
        for b in buckets {
            assert!((800..1200).contains(&b), "uneven bucket {b}: {buckets:?}");
        }
    }
}
