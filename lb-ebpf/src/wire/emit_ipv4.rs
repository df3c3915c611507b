//! IPv4 headers the datapath originates: the ICMP replies' header and the
//! encapsulation's outer header (IPIP or, before UDP + GUE, `emit_gue`).

use crate::{
    checksum::fold,
    wire::{
        ipv4::{IPV4_LEN, Ipv4Hdr},
        packet::View,
    },
};

/// The varying fields of an originated IPv4 header (no options, id 0, TTL 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Fields {
    /// DSCP and ECN.
    pub tos: u8,
    /// Length of the payload after the 20-byte header (host order).
    pub payload_len: u16,
    /// Flags and fragment offset, network order (0 or DF).
    pub frag_off: u16,
    /// Payload protocol.
    pub protocol: u8,
    /// Source address, network order.
    pub src: u32,
    /// Destination address, network order.
    pub dst: u32,
}

/// Time to live of every originated header.
pub const ORIGINATED_TTL: u8 = 64;

/// The header for `f`, its checksum computed.
#[inline(always)]
pub fn ipv4_header(f: &Ipv4Fields) -> Ipv4Hdr {
    let tot_len = (IPV4_LEN as u16 + f.payload_len).to_be();
    let w0 = u16::from_ne_bytes([0x45, f.tos]);
    let w4 = u16::from_ne_bytes([ORIGINATED_TTL, f.protocol]);
    let sum = u64::from(w0)
        + u64::from(tot_len)
        + u64::from(f.frag_off)
        + u64::from(w4)
        + u64::from(f.src & 0xffff)
        + u64::from(f.src >> 16)
        + u64::from(f.dst & 0xffff)
        + u64::from(f.dst >> 16);
    Ipv4Hdr {
        version_ihl: 0x45,
        tos: f.tos,
        tot_len,
        id: 0,
        frag_off: f.frag_off,
        ttl: ORIGINATED_TTL,
        protocol: f.protocol,
        check: !fold(sum),
        src: f.src,
        dst: f.dst,
    }
}

/// Writes the header for `f` into `ip`.
#[inline(always)]
pub fn emit_ipv4(ip: &View<'_, Ipv4Hdr>, f: &Ipv4Fields) {
    ip.set(ipv4_header(f));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{checksum::sum_bytes, wire::packet::Packet};

    #[test]
    fn emitted_header_has_the_wire_bytes_and_a_valid_checksum() {
        let mut buf = [0xaau8; 20];
        let f = Ipv4Fields {
            tos: 0x2e,
            payload_len: 556,
            frag_off: 0x4000u16.to_be(),
            protocol: 1,
            src: u32::from_ne_bytes([198, 18, 100, 1]),
            dst: u32::from_ne_bytes([198, 18, 0, 1]),
        };
        emit_ipv4(&Packet::from_slice(&mut buf).view(0).unwrap(), &f);
        assert_eq!(
            buf[..12],
            [
                0x45, 0x2e, 0x02, 0x40, 0, 0, 0x40, 0, 64, 1, buf[10], buf[11]
            ]
        );
        assert_eq!(buf[12..], [198, 18, 100, 1, 198, 18, 0, 1]);
        // A header with a valid checksum sums to 0xffff.
        assert_eq!(fold(sum_bytes(&buf)), 0xffff);
    }

    #[test]
    fn checksum_matches_the_rfc_791_example() {
        // The header of checksum::tests (0xb861) with our TTL and id.
        let f = Ipv4Fields {
            tos: 0,
            payload_len: 0x73 - 20,
            frag_off: 0x4000u16.to_be(),
            protocol: 0x11,
            src: u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0x01]),
            dst: u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0xc7]),
        };
        assert_eq!(ipv4_header(&f).check.to_ne_bytes(), [0xb8, 0x61]);
    }
}
