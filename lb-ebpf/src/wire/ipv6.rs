//! IPv6 header (RFC 8200) and its fragment extension header.

/// Length of the IPv6 header.
pub const IPV6_LEN: usize = 40;
/// Next header of IPv6-in-IPv6 (defined once in [`lb_common::net`]).
pub const IPPROTO_IPV6: u8 = lb_common::net::PROTO_IPV6;
/// Next header of the fragment extension header.
pub const IPPROTO_FRAGMENT: u8 = lb_common::net::PROTO_IPV6_FRAGMENT;
/// Next header of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = lb_common::net::PROTO_ICMPV6;
/// Fragment header `frag_off` mask (host order) of the offset.
pub const IP6_OFFSET: u16 = 0xfff8;

/// The IPv6 header; multi-byte fields in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Hdr {
    /// Version (4 bits), traffic class (8), flow label (20).
    pub version_tc_flow: u32,
    /// Length of everything after this header.
    pub payload_len: u16,
    /// Next header.
    pub next_hdr: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u32; 4],
    /// Destination address.
    pub dst: [u32; 4],
}

/// The IPv6 fragment extension header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6FragHdr {
    /// Next header after the fragment header.
    pub next_hdr: u8,
    /// Reserved.
    pub reserved: u8,
    /// Offset (13 bits, in 8-byte units, shifted left 3) and M flag.
    pub frag_off: u16,
    /// Identification.
    pub id: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn headers_have_wire_sizes() {
        assert_eq!(core::mem::size_of::<super::Ipv6Hdr>(), super::IPV6_LEN);
        assert_eq!(core::mem::size_of::<super::Ipv6FragHdr>(), 8);
    }
}
