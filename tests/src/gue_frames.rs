//! Expected GUE frames (`lb_common::gue`) of the balancer, built with
//! etherparse for the outer IP and UDP headers and with the contract's
//! reference encoder `lb_common::gue::emit_gue` for the GUE header, so that
//! the datapath's own header writers (`lb_ebpf::wire::emit_gue` and
//! `emit_ipv4`) are checked against independent code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Ipv6Header, UdpHeader};
use lb_common::flow::{FAMILY_V4, FAMILY_V6};
use lb_common::gue::{GUE_PROTO_IPV4, GUE_PROTO_IPV6, emit_gue};

use crate::frames::{ethernet, ip_packet, ipv6_header, outer_ipv4};

/// The outer UDP ports of a GUE frame (host order).
#[derive(Clone, Copy, Debug)]
pub struct GuePorts {
    /// Source port (`gue_source_port(flow hash)`).
    pub src: u16,
    /// Destination port (the configured GUE port).
    pub dst: u16,
}

/// The GUE header bytes for an inner packet of `inner_protocol` with the
/// previous owner `hint`.
fn gue_header(inner_protocol: u8, hint: Option<IpAddr>) -> Vec<u8> {
    let hint = hint.map(|a| match a {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (FAMILY_V4, b)
        }
        IpAddr::V6(a) => (FAMILY_V6, a.octets()),
    });
    let mut out = [0u8; 32];
    let len = emit_gue(&mut out, inner_protocol, hint).expect("a valid GUE header");
    out[..len].to_vec()
}

/// UDP header and GUE header around `inner`.
fn udp_gue(ports: GuePorts, inner_protocol: u8, hint: Option<IpAddr>, inner: &[u8]) -> Vec<u8> {
    let gue = gue_header(inner_protocol, hint);
    let udp = UdpHeader {
        source_port: ports.src,
        destination_port: ports.dst,
        length: (8 + gue.len() + inner.len()) as u16,
        checksum: 0,
    };
    let mut p = udp.to_bytes().to_vec();
    p.extend_from_slice(&gue);
    p.extend_from_slice(inner);
    p
}

/// The expected IPv4 GUE frame: outer header per the DSR rules (TTL 64, id 0,
/// DSCP/ECN and DF copied from the inner header, protocol 17), UDP with
/// checksum 0, GUE (with `hint` when given), the inner packet.
pub fn gue_v4(
    macs: ([u8; 6], [u8; 6]),
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    ports: GuePorts,
    hint: Option<Ipv4Addr>,
    inner_frame: &[u8],
) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    let payload = udp_gue(ports, GUE_PROTO_IPV4, hint.map(IpAddr::V4), inner);
    let p = outer_ipv4(outer_src, outer_dst, 17, inner, &payload);
    ethernet(macs.0, macs.1, 0x0800, &p)
}

/// The expected IPv6 GUE frame: outer traffic class and flow label copied,
/// hop limit 64, next header 17, then UDP, GUE and the inner packet.
pub fn gue_v6(
    macs: ([u8; 6], [u8; 6]),
    outer_src: Ipv6Addr,
    outer_dst: Ipv6Addr,
    ports: GuePorts,
    hint: Option<Ipv6Addr>,
    inner_frame: &[u8],
) -> Vec<u8> {
    let inner = ip_packet(inner_frame);
    let (ih, _) = Ipv6Header::from_slice(inner).unwrap();
    let payload = udp_gue(ports, GUE_PROTO_IPV6, hint.map(IpAddr::V6), inner);
    let mut outer = ipv6_header(outer_src, outer_dst, 17, payload.len());
    outer.traffic_class = ih.traffic_class;
    outer.flow_label = ih.flow_label;
    outer.hop_limit = 64;
    let mut p = outer.to_bytes().to_vec();
    p.extend_from_slice(&payload);
    ethernet(macs.0, macs.1, 0x86dd, &p)
}
