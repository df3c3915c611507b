//! UDP header (RFC 768).

/// Length of the UDP header.
pub const UDP_LEN: usize = 8;

/// A UDP header; fields in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpHdr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header and data.
    pub len: u16,
    /// Checksum.
    pub check: u16,
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_8_bytes() {
        assert_eq!(core::mem::size_of::<super::UdpHdr>(), super::UDP_LEN);
    }
}
