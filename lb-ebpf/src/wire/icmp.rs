//! ICMP (RFC 792) and ICMPv6 (RFC 4443) headers: both share this 8-byte layout.

/// Length of the ICMP header (including the 4 type-specific bytes).
pub const ICMP_LEN: usize = 8;
/// ICMP echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP destination unreachable.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// ICMP destination unreachable code: fragmentation needed and DF set.
pub const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMP echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// ICMPv6 packet too big.
pub const ICMPV6_PKT_TOOBIG: u8 = 2;
/// ICMPv6 echo request.
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const ICMPV6_ECHO_REPLY: u8 = 129;

/// An ICMP / ICMPv6 header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IcmpHdr {
    /// Type.
    pub type_: u8,
    /// Code.
    pub code: u8,
    /// Checksum, network order.
    pub check: u16,
    /// Type-specific word (echo id/sequence, next-hop MTU, ...), network order.
    pub rest: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_8_bytes() {
        assert_eq!(core::mem::size_of::<super::IcmpHdr>(), super::ICMP_LEN);
    }
}
