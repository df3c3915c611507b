//! The flow key of the connection table and the flow hash that picks a Maglev slot.
//!
//! The hash lives here, not in the datapath, so that the agent and the tests can
//! compute exactly which backend the datapath will pick for a flow.

/// Address family tag stored in keys: IPv4.
pub const FAMILY_V4: u8 = 4;
/// Address family tag stored in keys: IPv6.
pub const FAMILY_V6: u8 = 6;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// A flow's 5-tuple as seen from the client: the connection-table key.
///
/// Addresses are network-order bytes; an IPv4 address uses `src[0]`/`dst[0]`
/// (the raw `u32` as read from the header) and leaves the other words zero.
/// Ports are the raw `u16` as read from the header (network order).
#[repr(C)]
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

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;
/// Fixed seed: every load balancer node must compute the same hash.
const FLOW_HASH_SEED: u32 = 0x4c42_5f31; // "LB_1"

#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// Murmur3 finalizer: spreads every input bit over the whole word.
#[inline(always)]
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Hash of a flow's 5-tuple (murmur3 over the key's ten 32-bit words, fixed seed).
///
/// The Maglev slot of a flow is `flow_hash(key) % table_size`.
#[inline(always)]
pub fn flow_hash(key: &FlowKey) -> u32 {
    let mut h = FLOW_HASH_SEED;
    h = mix(h, key.src[0]);
    h = mix(h, key.src[1]);
    h = mix(h, key.src[2]);
    h = mix(h, key.src[3]);
    h = mix(h, key.dst[0]);
    h = mix(h, key.dst[1]);
    h = mix(h, key.dst[2]);
    h = mix(h, key.dst[3]);
    h = mix(h, (key.src_port as u32) | ((key.dst_port as u32) << 16));
    h = mix(h, (key.protocol as u32) | ((key.family as u32) << 8));
    fmix32(h ^ 40)
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
        let mut k = base;
        k.dst[3] = 1;
        assert_ne!(h, flow_hash(&k));
        // Deterministic across calls (and machines: no runtime seed).
        assert_eq!(h, flow_hash(&base));
    }

    #[test]
    fn hash_spreads_over_slots() {
        let m = 65537u32;
        let mut buckets = [0u32; 16];
        for port in 0..16_000u16 {
            let k = FlowKey {
                src: [0x0102_c6c6, 0, 0, 0],
                dst: [0x0164_12c6, 0, 0, 0],
                src_port: port,
                dst_port: 80,
                protocol: PROTO_TCP,
                family: FAMILY_V4,
                pad: [0; 2],
            };
            buckets[((flow_hash(&k) % m) * 16 / m) as usize] += 1;
        }
        for b in buckets {
            assert!((800..1200).contains(&b), "uneven bucket {b}: {buckets:?}");
        }
    }
}
