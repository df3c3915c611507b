//! The packet-rate generator's template frame and what the sink should see
//! (pure).

use std::net::Ipv4Addr;

/// Length of every generated frame.
pub const FRAME_LEN: usize = 64;

/// Mirrors `bench-ebpf`'s `GenTemplate`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GenTemplate {
    /// The frame; the generator rewrites bytes 28..30 (source address), 34..36
    /// (source port) and 24..26 (IPv4 checksum) on every run.
    pub frame: [u8; FRAME_LEN],
    /// Number of distinct flows (source address and port pairs).
    pub flows: u32,
    /// Zero.
    pub pad: u32,
}
// SAFETY: repr(C), bytes and integers only, no padding (64 + 4 + 4).
unsafe impl aya::Pod for GenTemplate {}

/// Mirrors `bench-ebpf`'s `Forward`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Forward {
    /// Egress ifindex.
    pub ifindex: u32,
    /// Destination MAC to write.
    pub dst: [u8; 6],
    /// Source MAC to write.
    pub src: [u8; 6],
}
// SAFETY: repr(C), no padding (4 + 6 + 6).
unsafe impl aya::Pod for Forward {}

/// A 64-byte UDP/IPv4 frame `dst_mac <- src_mac`, from `src` (the generator
/// overwrites its last two octets and the port) to `dst:port`; IPv4 checksum
/// left zero (the generator computes it), UDP checksum 0 (none).
pub fn udp_template(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (FRAME_LEN - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64; // TTL
    f[23] = 17; // UDP
    f[26..30].copy_from_slice(&src.octets());
    f[30..34].copy_from_slice(&dst.octets());
    f[34..36].copy_from_slice(&1024u16.to_be_bytes());
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// What the sink counts (indices of `SINK_COUNTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// IPv4-in-IPv4 (lb's encapsulated packets).
    Ipip = 1,
    /// UDP to the VIP (forwarded or routed unchanged).
    UdpToVip = 2,
    /// Anything else IPv4 (e.g. DNAT'ed to a backend).
    Other = 3,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header checksum of a frame (what the generator writes).
    fn ipv4_checksum(frame: &[u8; FRAME_LEN]) -> u16 {
        let mut sum = 0u32;
        for i in (14..34).step_by(2) {
            if i != 24 {
                sum += u32::from(u16::from_be_bytes([frame[i], frame[i + 1]]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn template_is_a_valid_udp_frame_once_checksummed() {
        let mut f = udp_template(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(198, 19, 0, 0),
            Ipv4Addr::new(198, 18, 100, 1),
            7777,
        );
        let c = ipv4_checksum(&f);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let parsed = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().destination(), [198, 18, 100, 1]);
        assert_eq!(ip.header().total_len(), 50);
        assert!(ip.header().to_header().calc_header_checksum() == c);
        let Some(etherparse::TransportSlice::Udp(udp)) = parsed.transport else {
            panic!("not UDP")
        };
        assert_eq!(udp.destination_port(), 7777);
        assert_eq!(udp.length(), 30);
    }
}
