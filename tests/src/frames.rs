//! Frame builders for the datapath fixtures and benchmarks, on etherparse.
//!
//! Every builder returns a complete Ethernet frame with correct checksums. The
//! expected outputs of the load balancer (encapsulated packets, ICMP replies)
//! are built here independently of the datapath code.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    EtherType, Ethernet2Header, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpFragOffset,
    IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, Ipv4Options, Ipv6FlowLabel, Ipv6Header, TcpHeader,
    UdpHeader, icmpv4::DestUnreachableHeader,
};

/// The client's (or the router's) MAC: source of incoming frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The load balancer's interface MAC: destination of incoming frames.
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Next-hop MAC configured on backends (BACKEND_HAS_NEXT_HOP).
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
/// Source MAC configured on backends with a next hop.
pub const EGRESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];
/// Gateway MAC of the settings fallback.
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];

/// IPv4 header knobs of a test packet.
#[derive(Clone, Debug)]
pub struct V4 {
    /// Don't-fragment flag.
    pub df: bool,
    /// More-fragments flag.
    pub mf: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Options (multiple of 4 bytes, at most 40).
    pub options: Vec<u8>,
    /// Identification.
    pub id: u16,
}

impl Default for V4 {
    fn default() -> Self {
        Self {
            df: true,
            mf: false,
            frag_offset: 0,
            dscp: 10,
            ecn: 1,
            options: vec![],
            id: 0x1234,
        }
    }
}

/// An Ethernet II frame around `payload`.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Ethernet2Header {
        source: src,
        destination: dst,
        ether_type: EtherType(ether_type),
    }
    .to_bytes()
    .to_vec();
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header with a correct checksum.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    payload_len: usize,
    opt: &V4,
) -> Ipv4Header {
    let mut h = Ipv4Header {
        dscp: Ipv4Dscp::try_new(opt.dscp).unwrap(),
        ecn: Ipv4Ecn::try_new(opt.ecn).unwrap(),
        total_len: 0,
        identification: opt.id,
        dont_fragment: opt.df,
        more_fragments: opt.mf,
        fragment_offset: IpFragOffset::try_new(opt.frag_offset).unwrap(),
        time_to_live: 63,
        protocol: IpNumber(protocol),
        header_checksum: 0,
        source: src.octets(),
        destination: dst.octets(),
        options: Ipv4Options::try_from(&opt.options[..]).unwrap(),
    };
    h.set_payload_len(payload_len).unwrap();
    h.header_checksum = h.calc_header_checksum();
    h
}

/// An IPv6 header.
pub fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: usize) -> Ipv6Header {
    Ipv6Header {
        traffic_class: 0x2a,
        flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
        payload_length: payload_len as u16,
        next_header: IpNumber(next),
        hop_limit: 63,
        source: src.octets(),
        destination: dst.octets(),
    }
}

/// TCP flags of a test segment.
#[derive(Clone, Copy, Debug)]
pub enum Tcp {
    /// SYN without ACK: a new connection.
    Syn,
    /// ACK only: an established connection.
    Ack,
}

fn tcp_header(sport: u16, dport: u16, flags: Tcp) -> TcpHeader {
    let mut t = TcpHeader::new(sport, dport, 1000, 64240);
    match flags {
        Tcp::Syn => t.syn = true,
        Tcp::Ack => {
            t.ack = true;
            t.acknowledgment_number = 5000;
        }
    }
    t
}

/// A TCP/IPv4 frame client -> VIP.
pub fn tcp_v4(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: Tcp,
    payload: &[u8],
    opt: &V4,
) -> Vec<u8> {
    let mut t = tcp_header(sport, dport, flags);
    let ip = ipv4_header(src, dst, 6, t.header_len() + payload.len(), opt);
    t.checksum = t.calc_checksum_ipv4(&ip, payload).unwrap();
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&t.to_bytes());
    p.extend_from_slice(payload);
    ethernet(LB_MAC, CLIENT_MAC, 0x0800, &p)
}

/// A TCP/IPv6 frame client -> VIP.
pub fn tcp_v6(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    flags: Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = tcp_header(sport, dport, flags);
    let ip = ipv6_header(src, dst, 6, t.header_len() + payload.len());
    t.checksum = t.calc_checksum_ipv6(&ip, payload).unwrap();
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&t.to_bytes());
    p.extend_from_slice(payload);
    ethernet(LB_MAC, CLIENT_MAC, 0x86dd, &p)
}

/// A UDP/IPv4 frame.
pub fn udp_v4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = ipv4_header(src, dst, 17, 8 + payload.len(), &V4::default());
    let u = UdpHeader::with_ipv4_checksum(sport, dport, &ip, payload).unwrap();
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&u.to_bytes());
    p.extend_from_slice(payload);
    ethernet(LB_MAC, CLIENT_MAC, 0x0800, &p)
}

/// A UDP/IPv6 frame.
pub fn udp_v6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ip = ipv6_header(src, dst, 17, 8 + payload.len());
    let u = UdpHeader::with_ipv6_checksum(sport, dport, &ip, payload).unwrap();
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&u.to_bytes());
    p.extend_from_slice(payload);
    ethernet(LB_MAC, CLIENT_MAC, 0x86dd, &p)
}

/// An ICMPv4 frame of type `t` with `payload`, src -> dst, MACs given.
pub fn icmp_v4(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    t: Icmpv4Type,
    payload: &[u8],
) -> Vec<u8> {
    let icmp = Icmpv4Header::with_checksum(t, payload);
    let opt = V4 {
        df: false,
        dscp: 0,
        ecn: 0,
        id: 0,
        ..V4::default()
    };
    let mut ip = ipv4_header(src, dst, 1, icmp.header_len() + payload.len(), &opt);
    ip.time_to_live = ttl;
    ip.header_checksum = ip.calc_header_checksum();
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&icmp.to_bytes());
    p.extend_from_slice(payload);
    ethernet(dmac, smac, 0x0800, &p)
}

/// An ICMPv6 frame of type `t` with `payload`.
pub fn icmp_v6(
    dmac: [u8; 6],
    smac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    t: Icmpv6Type,
    payload: &[u8],
) -> Vec<u8> {
    let icmp = Icmpv6Header::with_checksum(t, src.octets(), dst.octets(), payload).unwrap();
    let mut ip = ipv6_header(src, dst, 58, icmp.header_len() + payload.len());
    ip.traffic_class = 0;
    ip.flow_label = Ipv6FlowLabel::ZERO;
    ip.hop_limit = hop_limit;
    let mut p = ip.to_bytes().to_vec();
    p.extend_from_slice(&icmp.to_bytes());
    p.extend_from_slice(payload);
    ethernet(dmac, smac, 0x86dd, &p)
}

/// ICMP "fragmentation needed" type.
pub fn frag_needed(next_hop_mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu })
}

/// The IP packet inside an Ethernet frame (bytes after the 14-byte header).
pub fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// The expected IPv4-in-IPv4 frame: outer header per the DSR rules (TTL 64,
/// id 0, DSCP/ECN and DF copied from the inner header).
pub fn ipip(
    dmac: [u8; 6],
    smac: [u8; 6],
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    inner_frame: &[u8],
) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    let p = outer_ipv4(outer_src, outer_dst, 4, inner, inner);
    ethernet(dmac, smac, 0x0800, &p)
}

/// An outer IPv4 packet of `protocol` carrying `payload` around the inner
/// IPv4 packet `inner`, per the DSR rules (TTL 64, id 0, DSCP/ECN and DF
/// copied from `inner`): what IPIP (`payload` = `inner`) and GUE (`payload` =
/// UDP + GUE + `inner`) both expect.
pub fn outer_ipv4(
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    protocol: u8,
    inner: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let (ih, _) = Ipv4Header::from_slice(inner).unwrap();
    let opt = V4 {
        df: ih.dont_fragment,
        mf: false,
        frag_offset: 0,
        dscp: ih.dscp.value(),
        ecn: ih.ecn.value(),
        options: vec![],
        id: 0,
    };
    let mut outer = ipv4_header(outer_src, outer_dst, protocol, payload.len(), &opt);
    outer.time_to_live = 64;
    outer.header_checksum = outer.calc_header_checksum();
    let mut p = outer.to_bytes().to_vec();
    p.extend_from_slice(payload);
    p
}

/// The expected IPv6-in-IPv6 frame: outer traffic class and flow label copied,
/// hop limit 64, next header 41.
pub fn ip6ip6(
    dmac: [u8; 6],
    smac: [u8; 6],
    outer_src: Ipv6Addr,
    outer_dst: Ipv6Addr,
    inner_frame: &[u8],
) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    let (ih, _) = Ipv6Header::from_slice(inner).unwrap();
    let mut outer = ipv6_header(outer_src, outer_dst, 41, inner.len());
    outer.traffic_class = ih.traffic_class;
    outer.flow_label = ih.flow_label;
    outer.hop_limit = 64;
    let mut p = outer.to_bytes().to_vec();
    p.extend_from_slice(inner);
    ethernet(dmac, smac, 0x86dd, &p)
}

/// Replaces the destination MAC and returns the frame (decap inputs).
pub fn with_macs(mut frame: Vec<u8>, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
    frame
}

/// An ICMPv6 "packet too big" type.
pub fn packet_too_big(mtu: u32) -> Icmpv6Type {
    Icmpv6Type::PacketTooBig { mtu }
}
