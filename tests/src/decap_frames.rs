//! GUE frames for the decapsulator's fixtures: what a load balancer sends
//! (with or without the previous-owner hint) and what `lb_decap` must forward
//! on a second chance, built with etherparse and `lb_common::gue::emit_gue`
//! (the wire contract's reference encoder), independently of the datapath.

use std::net::IpAddr;

use etherparse::UdpHeader;
use lb_common::{
    flow::{FAMILY_V4, FAMILY_V6},
    gue::{GUE_PROTO_IPV4, GUE_PROTO_IPV6, emit_gue},
};

use crate::frames::{V4, ethernet, ip_packet, ipv4_header, ipv6_header};

/// The GUE header (first word and, with `hint`, lb's private data) for the
/// inner IP packet `inner`.
pub fn gue_header(inner: &[u8], hint: Option<IpAddr>) -> Vec<u8> {
    let protocol = if inner[0] >> 4 == 4 {
        GUE_PROTO_IPV4
    } else {
        GUE_PROTO_IPV6
    };
    let hint = hint.map(|a| match a {
        IpAddr::V4(v4) => {
            let mut addr = [0u8; 16];
            addr[..4].copy_from_slice(&v4.octets());
            (FAMILY_V4, addr)
        }
        IpAddr::V6(v6) => (FAMILY_V6, v6.octets()),
    });
    let mut out = [0u8; 32];
    let len = emit_gue(&mut out, protocol, hint).expect("GUE header");
    out[..len].to_vec()
}

/// Outer header fields of a GUE frame.
#[derive(Clone, Copy, Debug)]
pub struct Outer {
    /// Destination then source MAC.
    pub macs: ([u8; 6], [u8; 6]),
    /// Outer source and destination (one family).
    pub addrs: (IpAddr, IpAddr),
    /// UDP source and destination ports.
    pub ports: (u16, u16),
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 identification (IPv6: unused).
    pub id: u16,
}

/// A GUE frame: `outer` around UDP (checksum 0) around the GUE header `gue`
/// and the IP packet `inner`. IPv4 outer headers carry the frames module's
/// default DSCP 10, ECN 1 and DF; IPv6 ones its traffic class and flow label.
pub fn gue_frame(outer: &Outer, gue: &[u8], inner: &[u8]) -> Vec<u8> {
    let udp_len = 8 + gue.len() + inner.len();
    let udp = UdpHeader {
        source_port: outer.ports.0,
        destination_port: outer.ports.1,
        length: udp_len as u16,
        checksum: 0,
    };
    let mut payload = udp.to_bytes().to_vec();
    payload.extend_from_slice(gue);
    payload.extend_from_slice(inner);
    let (dmac, smac) = outer.macs;
    match outer.addrs {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let opt = V4 {
                id: outer.id,
                ..V4::default()
            };
            let mut ip = ipv4_header(src, dst, 17, udp_len, &opt);
            ip.time_to_live = outer.ttl;
            ip.header_checksum = ip.calc_header_checksum();
            let mut p = ip.to_bytes().to_vec();
            p.extend_from_slice(&payload);
            ethernet(dmac, smac, 0x0800, &p)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut ip = ipv6_header(src, dst, 17, udp_len);
            ip.hop_limit = outer.ttl;
            let mut p = ip.to_bytes().to_vec();
            p.extend_from_slice(&payload);
            ethernet(dmac, smac, 0x86dd, &p)
        }
        _ => panic!("outer addresses of one family"),
    }
}

/// What a load balancer sends: `outer` (TTL 63 as after one router, id
/// 0x1234) around GUE with `hint` around the IP packet of `inner_frame`.
pub fn gue_from_lb(outer: Outer, hint: Option<IpAddr>, inner_frame: &[u8]) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    gue_frame(
        &Outer {
            ttl: 63,
            id: 0x1234,
            ..outer
        },
        &gue_header(inner, hint),
        inner,
    )
}

/// What `lb_decap` forwards on a second chance: `outer` (TTL 64, id 0) around
/// GUE without hint around the IP packet of `inner_frame`.
pub fn gue_forwarded(outer: Outer, inner_frame: &[u8]) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    gue_frame(
        &Outer {
            ttl: 64,
            id: 0,
            ..outer
        },
        &gue_header(inner, None),
        inner,
    )
}
