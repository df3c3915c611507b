//! IPv4 header (RFC 791).

/// Length of an IPv4 header without options.
pub const IPV4_LEN: usize = 20;
/// `frag_off` flag (host order): don't fragment.
pub const IP_DF: u16 = 0x4000;
/// `frag_off` flag (host order): more fragments.
pub const IP_MF: u16 = 0x2000;
/// `frag_off` mask (host order) of the fragment offset.
pub const IP_OFFSET: u16 = 0x1fff;
/// Protocol number of IPv4-in-IPv4 (defined once in [`lb_common::net`]).
pub const IPPROTO_IPIP: u8 = lb_common::net::PROTO_IPIP;
/// Protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = lb_common::net::PROTO_ICMP;

/// An IPv4 header (fixed part); multi-byte fields in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv4Hdr {
    /// Version (high nibble) and IHL in 32-bit words (low nibble).
    pub version_ihl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Total length of the IP packet.
    pub tot_len: u16,
    /// Identification.
    pub id: u16,
    /// Flags and fragment offset.
    pub frag_off: u16,
    /// Time to live.
    pub ttl: u8,
    /// Payload protocol.
    pub protocol: u8,
    /// Header checksum.
    pub check: u16,
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_20_bytes() {
        assert_eq!(core::mem::size_of::<super::Ipv4Hdr>(), super::IPV4_LEN);
    }
}
