//! TCP header (RFC 9293), fixed part.

/// Length of a TCP header without options.
pub const TCP_LEN: usize = 20;
/// Flag: SYN.
pub const TCP_SYN: u8 = 0x02;
/// Flag: ACK.
pub const TCP_ACK: u8 = 0x10;

/// A TCP header; multi-byte fields in network order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHdr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Data offset in 32-bit words (high nibble).
    pub data_off: u8,
    /// Flags (CWR ECE URG ACK PSH RST SYN FIN).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Checksum.
    pub check: u16,
    /// Urgent pointer.
    pub urg: u16,
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_20_bytes() {
        assert_eq!(core::mem::size_of::<super::TcpHdr>(), super::TCP_LEN);
    }
}
