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

/// Hash of a flow's 5-tuple: the high half of [`crate::flow_hash64`].
///
/// The Maglev slot of a flow is `flow_hash(key) % table_size`.
#[inline(always)]
pub fn flow_hash(key: &FlowKey) -> u32 {
    (crate::flow_hash64(key) >> 32) as u32
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
