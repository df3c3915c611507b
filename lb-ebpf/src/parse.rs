//! Classification of a frame: what the load balancer needs to decide its fate.
//!
//! [`parse`] reads Ethernet, IPv4 (any valid IHL) or IPv6, then TCP, UDP or
//! ICMP through checked views ([`crate::wire::packet::View`]): each header's
//! bounds are checked once, when its view is taken, and every length field
//! against the frame. It never reads outside the frame.

use lb_common::flow::{FAMILY_V4, FAMILY_V6, PROTO_TCP, PROTO_UDP};

use crate::wire::{
    ethernet::{ETH_LEN, ETH_P_IP, ETH_P_IPV6, EthHdr},
    icmp::{ICMP_LEN, IcmpHdr},
    ipv4::{IP_MF, IP_OFFSET, IPPROTO_ICMP, IPV4_LEN, Ipv4Hdr},
    ipv6::{IP6_OFFSET, IPPROTO_FRAGMENT, IPPROTO_ICMPV6, IPV6_LEN, Ipv6FragHdr, Ipv6Hdr},
    packet::Packet,
    tcp::{TCP_LEN, TcpHdr},
    udp::{UDP_LEN, UdpHdr},
};

/// What a frame is, as far as the load balancer cares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not IPv4/IPv6 (ARP, VLAN-tagged, ...), or too short to carry an IP
    /// destination: never for a VIP as far as anyone can tell.
    #[default]
    NotIp,
    /// IP destination known, but a header is truncated or a length field lies.
    Malformed,
    /// An IPv4 fragment or an IPv6 packet with a fragment header.
    /// Ports are filled for a first fragment that carries them, else zero.
    Fragment,
    /// TCP with a valid header.
    Tcp,
    /// UDP with a valid header.
    Udp,
    /// ICMP (IPv4) or ICMPv6 with at least its 8-byte header.
    Icmp,
    /// Another protocol (or an IPv6 extension header other than fragment).
    Other,
}

/// The parse result: a flat, copyable summary (verifier- and cache-friendly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Classification.
    pub kind: Kind,
    /// `FAMILY_V4` / `FAMILY_V6` (0 for [`Kind::NotIp`]).
    pub family: u8,
    /// Upper-layer protocol (after an IPv6 fragment header, its next header).
    pub protocol: u8,
    /// TCP flags (0 otherwise).
    pub tcp_flags: u8,
    /// Source address, network order (IPv4 in word 0).
    pub src: [u32; 4],
    /// Destination address, network order (IPv4 in word 0).
    pub dst: [u32; 4],
    /// Source port, network order (0 when unknown).
    pub src_port: u16,
    /// Destination port, network order (0 when unknown).
    pub dst_port: u16,
    /// Offset of the upper-layer header from the frame start.
    pub l4_off: usize,
    /// Length of the IP packet (header included) per its length fields.
    pub ip_len: usize,
}

/// Classifies the frame in `pkt`.
#[inline(always)]
pub fn parse(pkt: &Packet) -> Parsed {
    let mut out = Parsed::default();
    let Some(eth) = pkt.view::<EthHdr>(0) else {
        return out;
    };
    let ether_type = u16::from_be(eth.ether_type());
    if ether_type == ETH_P_IP {
        parse_v4(pkt, &mut out);
    } else if ether_type == ETH_P_IPV6 {
        parse_v6(pkt, &mut out);
    }
    out
}

/// The destination address (network-order words, IPv4 in word 0) and
/// family of an IPv4 or IPv6 frame, read with no other check; `None` for a
/// frame that is not IP or too short for its IP header (which [`parse`] calls
/// [`Kind::NotIp`]). What the VIP filter needs to pass traffic that is not for
/// a VIP before the rest is parsed: [`parse`] reads the same field at the
/// same offset.
#[inline(always)]
pub fn destination(pkt: &Packet) -> Option<([u32; 4], u8)> {
    let ether_type = u16::from_be(pkt.view::<EthHdr>(0)?.ether_type());
    if ether_type == ETH_P_IP {
        Some(([pkt.view::<Ipv4Hdr>(ETH_LEN)?.dst(), 0, 0, 0], FAMILY_V4))
    } else if ether_type == ETH_P_IPV6 {
        Some((pkt.view::<Ipv6Hdr>(ETH_LEN)?.dst(), FAMILY_V6))
    } else {
        None
    }
}

/// The service port a plain TCP or UDP frame asks for, read before the
/// parse: its destination port (network order) and protocol when it is IPv4
/// without options and not a fragment, or IPv6 without extension headers
/// (`family` as [`destination`] found it), and its port bytes lie in the
/// frame; `None` for any other frame. For such a frame [`parse`] finds the
/// same port and protocol ([`Kind::Tcp`] / [`Kind::Udp`]) or calls it
/// [`Kind::Malformed`] (a length field lies), nothing else: what the VIP
/// filter needs to pass a packet to a port no service serves before the rest
/// is parsed.
#[inline(always)]
pub fn plain_service_port(pkt: &Packet, family: u8) -> Option<(u16, u8)> {
    let (protocol, l4_off) = if family == FAMILY_V4 {
        let ip = pkt.view::<Ipv4Hdr>(ETH_LEN)?;
        let (version_ihl, frag_off) = (ip.version_ihl(), ip.frag_off());
        if version_ihl != 0x45 || u16::from_be(frag_off) & (IP_MF | IP_OFFSET) != 0 {
            return None;
        }
        (ip.protocol(), ETH_LEN + IPV4_LEN)
    } else {
        (pkt.view::<Ipv6Hdr>(ETH_LEN)?.next_hdr(), ETH_LEN + IPV6_LEN)
    };
    if protocol != PROTO_TCP && protocol != PROTO_UDP {
        return None;
    }
    Some((pkt.view::<[u16; 2]>(l4_off)?.get()[1], protocol))
}

#[inline(always)]
fn parse_v4(pkt: &Packet, out: &mut Parsed) {
    let Some(ip) = pkt.view::<Ipv4Hdr>(ETH_LEN) else {
        return;
    };
    let (version_ihl, tot_len, frag_off, protocol, src, dst) = (
        ip.version_ihl(),
        ip.tot_len(),
        ip.frag_off(),
        ip.protocol(),
        ip.src(),
        ip.dst(),
    );
    out.family = FAMILY_V4;
    out.protocol = protocol;
    out.src[0] = src;
    out.dst[0] = dst;
    out.kind = Kind::Malformed;
    let ihl = ((version_ihl & 0x0f) as usize) * 4;
    if version_ihl >> 4 != 4 || ihl < IPV4_LEN {
        return;
    }
    let tot_len = u16::from_be(tot_len) as usize;
    if tot_len < ihl || ETH_LEN + tot_len > pkt.len() {
        return;
    }
    out.ip_len = tot_len;
    let l4_off = ETH_LEN + ihl;
    out.l4_off = l4_off;
    let frag_off = u16::from_be(frag_off);
    if frag_off & (IP_MF | IP_OFFSET) != 0 {
        out.kind = Kind::Fragment;
        if frag_off & IP_OFFSET == 0 {
            read_ports(pkt, out, l4_off, tot_len - ihl);
        }
        return;
    }
    parse_l4(pkt, out, l4_off, tot_len - ihl, IPPROTO_ICMP);
}

#[inline(always)]
fn parse_v6(pkt: &Packet, out: &mut Parsed) {
    let Some(ip) = pkt.view::<Ipv6Hdr>(ETH_LEN) else {
        return;
    };
    let (version, payload_len, next_hdr, src, dst) = (
        ip.version_tc_flow(),
        ip.payload_len(),
        ip.next_hdr(),
        ip.src(),
        ip.dst(),
    );
    out.family = FAMILY_V6;
    out.protocol = next_hdr;
    out.src = src;
    out.dst = dst;
    out.kind = Kind::Malformed;
    // First byte on the wire holds the version in its high nibble.
    if (u32::from_be(version) >> 28) != 6 {
        return;
    }
    let payload_len = u16::from_be(payload_len) as usize;
    // Payload length 0 (jumbogram) is not supported: malformed.
    if payload_len == 0 || ETH_LEN + IPV6_LEN + payload_len > pkt.len() {
        return;
    }
    out.ip_len = IPV6_LEN + payload_len;
    let l4_off = ETH_LEN + IPV6_LEN;
    out.l4_off = l4_off;
    if next_hdr == IPPROTO_FRAGMENT {
        let Some(fh) = pkt.view::<Ipv6FragHdr>(l4_off) else {
            return;
        };
        if payload_len < 8 {
            return;
        }
        let (nh, off) = (fh.next_hdr(), fh.frag_off());
        out.kind = Kind::Fragment;
        out.protocol = nh;
        if u16::from_be(off) & IP6_OFFSET == 0 {
            read_ports(pkt, out, l4_off + 8, payload_len - 8);
        }
        return;
    }
    parse_l4(pkt, out, l4_off, payload_len, IPPROTO_ICMPV6);
}

/// Fills the ports of a first fragment when its TCP/UDP ports are present.
#[inline(always)]
fn read_ports(pkt: &Packet, out: &mut Parsed, off: usize, len: usize) {
    if (out.protocol == PROTO_TCP || out.protocol == PROTO_UDP)
        && len >= 4
        && let Some(ports) = pkt.view::<[u16; 2]>(off)
    {
        let ports = ports.get();
        out.src_port = ports[0];
        out.dst_port = ports[1];
    }
}

#[inline(always)]
fn parse_l4(pkt: &Packet, out: &mut Parsed, off: usize, len: usize, icmp_proto: u8) {
    let protocol = out.protocol;
    if protocol == PROTO_TCP {
        let Some(tcp) = pkt.view::<TcpHdr>(off) else {
            return;
        };
        let (src_port, dst_port, data_off, flags) =
            (tcp.src_port(), tcp.dst_port(), tcp.data_off(), tcp.flags());
        let doff = ((data_off >> 4) as usize) * 4;
        if len < TCP_LEN || doff < TCP_LEN || doff > len {
            return;
        }
        out.src_port = src_port;
        out.dst_port = dst_port;
        out.tcp_flags = flags;
        out.kind = Kind::Tcp;
    } else if protocol == PROTO_UDP {
        let Some(udp) = pkt.view::<UdpHdr>(off) else {
            return;
        };
        let (src_port, dst_port, ulen) = (udp.src_port(), udp.dst_port(), udp.len());
        let ulen = u16::from_be(ulen) as usize;
        if len < UDP_LEN || ulen < UDP_LEN || ulen > len {
            return;
        }
        out.src_port = src_port;
        out.dst_port = dst_port;
        out.kind = Kind::Udp;
    } else if protocol == icmp_proto {
        if pkt.view::<IcmpHdr>(off).is_none() || len < ICMP_LEN {
            return;
        }
        out.kind = Kind::Icmp;
    } else {
        out.kind = Kind::Other;
    }
}

/// The client->VIP flow an ICMP error is about (all network order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedFlow {
    /// Client address (the embedded packet's destination).
    pub client: [u32; 4],
    /// VIP (the embedded packet's source).
    pub vip: [u32; 4],
    /// Client port.
    pub client_port: u16,
    /// VIP port.
    pub vip_port: u16,
    /// TCP or UDP.
    pub protocol: u8,
}

/// The client->VIP flow that an ICMP error is about, from the packet header
/// embedded in its payload (which is VIP->client: source and destination, and
/// ports, are swapped back).
#[inline(always)]
pub fn embedded_flow(pkt: &Packet, p: &Parsed) -> Option<EmbeddedFlow> {
    let off = p.l4_off + ICMP_LEN;
    if p.family == FAMILY_V4 {
        let ip = pkt.view::<Ipv4Hdr>(off)?;
        let (vihl, protocol, src, dst) = (ip.version_ihl(), ip.protocol(), ip.src(), ip.dst());
        let ihl = ((vihl & 0x0f) as usize) * 4;
        if vihl >> 4 != 4 || ihl < IPV4_LEN || (protocol != PROTO_TCP && protocol != PROTO_UDP) {
            return None;
        }
        let ports = pkt.view::<[u16; 2]>(off + ihl)?.get();
        Some(EmbeddedFlow {
            client: [dst, 0, 0, 0],
            vip: [src, 0, 0, 0],
            client_port: ports[1],
            vip_port: ports[0],
            protocol,
        })
    } else {
        let ip = pkt.view::<Ipv6Hdr>(off)?;
        let (protocol, src, dst) = (ip.next_hdr(), ip.src(), ip.dst());
        if protocol != PROTO_TCP && protocol != PROTO_UDP {
            return None;
        }
        let ports = pkt.view::<[u16; 2]>(off + IPV6_LEN)?.get();
        Some(EmbeddedFlow {
            client: dst,
            vip: src,
            client_port: ports[1],
            vip_port: ports[0],
            protocol,
        })
    }
}

#[cfg(test)]
mod tests;
