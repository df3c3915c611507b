//! Ethernet II header.

/// Length of an Ethernet header without VLAN tags.
pub const ETH_LEN: usize = 14;
/// EtherType of IPv4 (host order).
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6 (host order).
pub const ETH_P_IPV6: u16 = 0x86dd;

/// An Ethernet II header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthHdr {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// EtherType, network order.
    pub ether_type: u16,
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_14_bytes() {
        assert_eq!(core::mem::size_of::<super::EthHdr>(), super::ETH_LEN);
    }
}
