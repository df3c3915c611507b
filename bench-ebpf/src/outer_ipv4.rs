//! The outer IPv4 header both encapsulating baselines write (`bench_encap`,
//! `bench_encap_forward`): version 4, IHL 5, DF, TTL 64, protocol IPIP, id 0,
//! its checksum computed.

/// The outer header's ten 16-bit words (network order) around an inner
/// packet of `inner_len` bytes, from `src` to `dst` (network-order bytes).
#[inline(always)]
pub fn outer_ipv4(inner_len: u16, src: [u8; 4], dst: [u8; 4]) -> [u16; 10] {
    let mut h = [
        u16::to_be(0x4500),
        u16::to_be(inner_len.wrapping_add(20)),
        0,
        u16::to_be(0x4000),
        u16::to_be(0x4004),
        0,
        u16::from_ne_bytes([src[0], src[1]]),
        u16::from_ne_bytes([src[2], src[3]]),
        u16::from_ne_bytes([dst[0], dst[1]]),
        u16::from_ne_bytes([dst[2], dst[3]]),
    ];
    let mut sum = 0u32;
    for w in h {
        sum += u32::from(w);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    h[5] = !(sum as u16);
    h
}
